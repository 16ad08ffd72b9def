"""Latent widget: seed (−/+, random, fractional drag), A->B interpolation with playback, style mixing."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ..validate import clamp_input, clamp_int
from ._ui import LABEL_WIDTH, help_marker, mark

if TYPE_CHECKING:
    from viz.app import App

SEED_MAX = 2 ** 31 - 2
"""Largest seed the widgets offer (int32 fields; the next seed must exist for fractional drags)."""


def draw(app: App) -> None:
    """Seed controls, then interpolation and style mixing sections."""
    lat = app.state.latent
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, v = imgui.input_int("seed", int(math.floor(lat.seed)), 1, 10)
    mark(app, "seed")
    if changed:
        lat.seed = float(clamp_int(app.ui, "seed", v, 0, SEED_MAX, int(math.floor(lat.seed))))
    imgui.same_line()
    if imgui.button("random"):
        app.random_seed()
    mark(app, "seed_random")
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, v = imgui.drag_float("seed (drag)", lat.seed, 0.02, 0.0, float(SEED_MAX), "%.2f")
    mark(app, "seed_drag")
    if changed:
        lat.seed = clamp_input(app.ui, "seed", v, 0.0, float(SEED_MAX), lat.seed)
    help_marker("Drag sideways to move through seed space; fractional seeds blend the w of the two "
                "neighbouring seeds.")

    _, lat.interp = imgui.checkbox("interpolate A -> B", lat.interp)
    mark(app, "interp")
    if lat.interp:
        imgui.indent()
        lat.seed_b = _seed_field(app, "seed B", lat.seed_b)
        imgui.set_next_item_width(-LABEL_WIDTH)
        changed, t = imgui.slider_float("t", lat.t, 0.0, 1.0, "%.3f", imgui.SliderFlags_.always_clamp.value)
        mark(app, "interp_t", label="t")
        if changed:
            lat.t = clamp_input(app.ui, "t", t, 0.0, 1.0, lat.t)
        if imgui.button("pause" if lat.playing else "play", imgui.ImVec2(60, 0)):
            lat.playing = not lat.playing
        mark(app, "interp_play")
        imgui.same_line()
        _, lat.pingpong = imgui.checkbox("ping-pong", lat.pingpong)
        imgui.set_next_item_width(-LABEL_WIDTH)
        changed, speed = imgui.slider_float("speed (t/s)", lat.speed, 0.01, 2.0, "%.2f",
                                            imgui.SliderFlags_.logarithmic.value)
        if changed:
            lat.speed = clamp_input(app.ui, "speed", speed, 0.01, 2.0, lat.speed)
        if imgui.radio_button("W (lerp)", lat.space == "w"):
            lat.space = "w"
        imgui.same_line()
        if imgui.radio_button("Z (slerp)", lat.space == "z"):
            lat.space = "z"
        imgui.unindent()

    _, lat.mix = imgui.checkbox("style mixing", lat.mix)
    if lat.mix:
        imgui.indent()
        lat.mix_seed = _seed_field(app, "mix seed", lat.mix_seed)
        num_ws = app.state.defaults.num_ws
        imgui.set_next_item_width(-LABEL_WIDTH)
        changed, start = imgui.slider_int("from layer", lat.mix_start, 0, max(num_ws - 1, 0))
        if changed:
            lat.mix_start = clamp_int(app.ui, "from layer", start, 0, max(num_ws - 1, 0), lat.mix_start)
        help_marker("ws from this layer on come from the mix seed (coarse layers first).")
        imgui.unindent()


def _seed_field(app: App, label: str, seed: int) -> int:
    """A full-width integer seed field (step 1, fast step 10); typed values outside 0..SEED_MAX are refused."""
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, v = imgui.input_int(label, seed, 1, 10)
    return clamp_int(app.ui, label, v, 0, SEED_MAX, seed) if changed else seed
