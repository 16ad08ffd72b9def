"""Truncation widget: psi (−1…2), cutoff (0…num_ws or all), backbone noise mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from imgui_bundle import imgui

from ..validate import clamp_input, clamp_int
from ._ui import LABEL_WIDTH, choice, help_marker, mark

if TYPE_CHECKING:
    from viz.host import WidgetHost

NOISE_MODES: tuple[Literal["const", "random", "none"], ...] = ("const", "random", "none")
PSI_RANGE = (-1.0, 2.0)


def draw(app: WidgetHost) -> None:
    """psi slider, cutoff with an 'all' switch, noise mode."""
    tr = app.state.trunc
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, psi = imgui.slider_float("psi", tr.psi, *PSI_RANGE, "%.3f")
    mark(app, "psi", label="psi")
    if changed:
        tr.psi = clamp_input(app.ui, "psi", psi, *PSI_RANGE, tr.psi)
    help_marker(
        "Truncation: 1 = no truncation, 0 = the average face, below 0 = the opposite side. Ctrl+click to type a value."
    )
    num_ws = app.state.defaults.num_ws
    changed, all_ws = imgui.checkbox("all ws", tr.cutoff is None)
    if changed:
        tr.cutoff = None if all_ws else num_ws
    if tr.cutoff is not None:
        imgui.same_line()
        imgui.set_next_item_width(-LABEL_WIDTH)
        changed, cut = imgui.slider_int("cutoff", tr.cutoff, 0, num_ws)
        if changed:
            tr.cutoff = clamp_int(app.ui, "cutoff", cut, 0, num_ws, tr.cutoff)
        help_marker("Truncate only the first N ws (the coarse layers).")
    tr.noise_mode = choice("noise", tr.noise_mode, NOISE_MODES)
    help_marker("Backbone noise: const (cached, default), random (re-runs the backbone every frame), none.")
