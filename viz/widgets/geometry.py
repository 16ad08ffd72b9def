"""Geometry widget: overlay switch, shading, preview mesh resolution and iso-level, preview status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ..gfx.mesh_view import GEOMETRY_MODES, PREVIEW_RESOLUTIONS
from ..validate import clamp_input
from ._ui import LABEL_WIDTH, choice, help_marker, mark

if TYPE_CHECKING:
    from viz.host import WidgetHost

LEVEL_LIMIT = 1e4
"""Iso-levels are kept inside [-LEVEL_LIMIT, LEVEL_LIMIT] (raw density units)."""


def draw(app: WidgetHost) -> None:
    """Shown in the control pane; the 'geometry' view itself is picked in the View section."""
    g = app.geometry
    changed, g.overlay = imgui.checkbox("overlay mesh on the render", g.overlay)
    mark(app, "geometry_overlay")
    help_marker(
        "Draws the preview mesh over the neural render with the shown frame's camera, so you can "
        "see how the extracted surface lines up with the image."
    )
    if g.overlay:
        imgui.set_next_item_width(-LABEL_WIDTH)
        changed, opacity = imgui.slider_float("opacity", g.opacity, 0.05, 1.0, "%.2f")
        if changed:
            g.opacity = clamp_input(app.ui, "opacity", opacity, 0.05, 1.0, g.opacity)
    for i, name in enumerate(GEOMETRY_MODES):
        if i:
            imgui.same_line()
        if imgui.radio_button(name, g.mode == name):
            g.mode = name
        mark(app, f"geometry_{name}")
    g.resolution = choice("preview res", g.resolution, PREVIEW_RESOLUTIONS, [f"{r}^3" for r in PREVIEW_RESOLUTIONS])
    help_marker(
        "Grid of the preview mesh, extracted in the background after each latent change "
        "(128^3 takes a few seconds on a CPU)."
    )
    changed, default = imgui.checkbox("model's level", g.level is None)
    if changed:
        g.level = None if default else 10.0
    if g.level is not None:
        imgui.same_line()
        imgui.set_next_item_width(-LABEL_WIDTH)
        changed, level = imgui.input_float(
            "level", g.level, 1.0, 10.0, "%.2f", imgui.InputTextFlags_.enter_returns_true.value
        )
        if changed:
            g.level = clamp_input(app.ui, "level", level, -LEVEL_LIMIT, LEVEL_LIMIT, g.level)
    help_marker("Iso-level on the raw density. 10 is the reference recipe (its ChimeraX level).")
    mv = app.mesh_view
    if app.ui.geometry_error:
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(imgui.ImVec4(1.0, 0.45, 0.4, 1.0), app.ui.geometry_error)
        imgui.pop_text_wrap_pos()
    if app.mesher.busy:
        imgui.text_colored(imgui.ImVec4(1.0, 0.8, 0.3, 1.0), "extracting preview mesh…")
    elif mv.mesh is not None:
        imgui.text_disabled(
            f"mesh: {mv.mesh.n_vertices:,} vertices, {mv.mesh.n_faces:,} faces, level {mv.mesh.level:g}"
        )
    elif app.state.view.view != "geometry" and not g.overlay:
        imgui.text_disabled("pick the 'geometry' view or the overlay to see the mesh")
