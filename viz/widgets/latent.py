"""Latent widget: seed (−/+, random, fractional drag), A->B interpolation with playback, style mixing."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from renderer.seeds import SEED_MAX, check_seed

from ..validate import clamp_input, clamp_int
from ._ui import LABEL_WIDTH, help_marker, mark

if TYPE_CHECKING:
    from viz.host import WidgetHost

SEED_FIELD_WIDTH = 110
"""Width of a typed seed field: ten digits fit."""


def draw(app: WidgetHost) -> None:
    """Seed controls, then interpolation and style mixing sections."""
    lat = app.state.latent
    if lat.custom is not None:
        imgui.text_colored(imgui.ImVec4(0.55, 0.85, 1.0, 1.0), f"fitted latent: {lat.custom_label or lat.custom}")
        imgui.same_line()
        if imgui.small_button("back to seeds"):
            lat.custom = None
        mark(app, "latent_back_to_seeds")
        help_marker("The latent a photo fit found (Photo panel). Any seed control below goes back to seeds.")
    before = (lat.seed, lat.interp, lat.mix)
    seed = _seed_field(app, "seed", int(math.floor(lat.seed)), buttons=True)
    if seed != int(math.floor(lat.seed)):
        lat.seed = float(seed)
    imgui.same_line()
    if imgui.button("random"):
        app.random_seed()
    mark(app, "seed_random")
    imgui.same_line()
    imgui.text("seed")
    imgui.set_next_item_width(-LABEL_WIDTH)
    base = math.floor(lat.seed)  # dragged as base + fraction: float32 drags stay exact for any seed
    changed, v = imgui.drag_float("seed (drag)", lat.seed - base, 0.02, -1e9, 1e9, f"{base} + %.2f")
    mark(app, "seed_drag")
    if changed:
        lat.seed = clamp_input(app.ui, "seed", base + round(v, 4), 0.0, float(SEED_MAX), lat.seed)
        if lat.seed > SEED_MAX - 1:  # a fraction blends with the next seed, and there is none past the last
            lat.seed = float(math.floor(lat.seed))
    help_marker(
        "Drag sideways to move through seed space; fractional seeds blend the w of the two "
        f"neighbouring seeds. Seeds are whole numbers 0…{SEED_MAX}, as on the command line."
    )

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
        changed, speed = imgui.slider_float(
            "speed (t/s)", lat.speed, 0.01, 2.0, "%.2f", imgui.SliderFlags_.logarithmic.value
        )
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
    if lat.custom is not None and (lat.seed, lat.interp, lat.mix) != before:
        lat.custom = None  # a seed control was used: back to seeds


def _seed_field(app: WidgetHost, label: str, seed: int, buttons: bool = False) -> int:
    """A typed seed (0…SEED_MAX: the CLI's range and refusal message, renderer.seeds) with −/+ buttons;
    a refused value keeps the old seed and says why in the status line."""
    imgui.set_next_item_width(SEED_FIELD_WIDTH if buttons else -LABEL_WIDTH)
    flags = imgui.InputTextFlags_.chars_decimal.value | imgui.InputTextFlags_.enter_returns_true.value
    entered, text = imgui.input_text(label if not buttons else f"##{label}", str(seed), flags)
    mark(app, label.replace(" ", "_"))
    if imgui.is_item_deactivated_after_edit() or entered:
        try:
            seed = check_seed(text)
            app.ui.input_error = None
        except ValueError as e:
            app.ui.input_error = f"{e}; kept {seed}"
    if buttons:
        for sign, delta in (("-", -1), ("+", 1)):
            imgui.same_line()
            if imgui.button(f"{sign}##{label}", imgui.ImVec2(22, 0)):
                seed = min(max(seed + delta, 0), SEED_MAX)
            mark(app, f"{label.replace(' ', '_')}_{'minus' if delta < 0 else 'plus'}")
    return seed
