"""Inspector tab 'Slices': a cross-section of the volume along x, y or z (or facing the camera) at a position you
drag: raw density with a colour map and the mesh's iso level as a contour, beside the decoded colour. Sampled from
the cached planes (a slice move never runs the backbone); its plane is drawn into the render (slice_outline)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from imgui_bundle import imgui

from renderer.export.mesh import default_level
from renderer.inspect.slices import slice_colour_image, slice_image

from ..gfx.textures import Same
from ._ui import LABEL_WIDTH, help_marker, mark, show_image

if TYPE_CHECKING:
    from viz.host import WidgetHost

AXES: tuple[Literal["x", "y", "z", "camera"], ...] = ("x", "y", "z", "camera")
LEVEL_RANGE = (-100.0, 1000.0)


def draw(app: WidgetHost) -> None:
    """Axis, position, iso level, 'show in the render', then the density and colour images."""
    ins, s = app.inspector, app.inspector.state
    src = ins.source
    if src is None:
        imgui.text_disabled("no frame yet")
        return
    spec = s.slice
    for i, axis in enumerate(AXES):
        if i:
            imgui.same_line()
        if imgui.radio_button(f"{axis}##slice", spec.axis == axis):
            spec = replace(spec, axis=axis)
        mark(app, f"slice_axis_{axis}")
    half = float(src.G.rendering_kwargs.get("box_warp", 1.0)) / 2
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, pos = imgui.slider_float("position", spec.position, -half, half, "%+.3f")
    mark(app, "slice_position", "position")
    if changed:
        spec = replace(spec, position=float(pos))
    s.slice = spec
    model_level = default_level(src.G)
    level = model_level if s.slice_level is None else s.slice_level
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, level = imgui.drag_float("iso level", level, 0.5, *LEVEL_RANGE, "%.2f")
    mark(app, "slice_level", "iso level")
    if changed:
        s.slice_level = min(max(float(level), LEVEL_RANGE[0]), LEVEL_RANGE[1])
    help_marker(f"The contour's level on the raw density (the mesh export's default is {model_level:g}).")
    changed, on = imgui.checkbox("show the slice plane in the render", s.slice_in_view)
    mark(app, "slice_in_view")
    if changed:
        s.slice_in_view = on

    sl = ins.result("slice")  # the last slice computed (shown while the next one is sampled)
    if sl is None:
        imgui.text_disabled(ins.errors.get("slice") or "sampling the slice...")
        return
    if ins.current("slice") is None:
        imgui.text_disabled("sampling...")
    else:
        imgui.text(f"{sl.spec.axis} = {sl.spec.position:+.3f}: density (contour at {level:g}) | colour")
    spacing = imgui.get_style().item_spacing.x
    width = (imgui.get_content_region_avail().x - spacing) / 2
    tex = app.textures.get("slice_density", (Same(sl), level), lambda: slice_image(sl, level))
    show_image(app, "slice_density", tex, width)
    imgui.same_line()
    tex = app.textures.get("slice_colour", Same(sl), lambda: slice_colour_image(sl))
    show_image(app, "slice_colour", tex, width)
