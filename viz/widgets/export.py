"""Export widget: output folder; save render (PNG + metadata + .json), save window, save depth; the mesh
and video exports (viz/widgets/export_jobs.py) with progress and cancel, views of the latent (export_views.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ..exports import save_depth_now
from . import export_jobs, export_views
from ._ui import LABEL_WIDTH, help_marker, mark

if TYPE_CHECKING:
    from viz.host import WidgetHost


def draw(app: WidgetHost) -> None:
    """Folder field, the quick saves, then mesh and video exports, then the last saved path or error."""
    ui = app.ui
    imgui.set_next_item_width(-LABEL_WIDTH)
    _, ui.out_dir = imgui.input_text("output folder", ui.out_dir)
    if imgui.button("save render (S)"):
        app.save_render()
    mark(app, "save_render")
    help_marker(
        "The current render at its native resolution: image/raw as RGB, depth and normals as the "
        "CLI's 8-bit grey depth (near = white). The PNG carries model, seeds, interpolation, psi, "
        "cutoff, cameras and sampling settings in text chunks, with a .json sidecar; "
        "`triplane-render images --from-png` re-renders it."
    )
    imgui.same_line()
    if imgui.button("save window"):
        app.save_window()
    mark(app, "save_window")
    imgui.same_line()
    geometry = app.state.view.view == "geometry"
    imgui.begin_disabled(geometry)
    if imgui.button("save depth"):
        save_depth_now(app)
    imgui.end_disabled()
    mark(app, "save_depth")
    help_marker(
        "Ray distance of the shown render: float32 .npy and a 16-bit PNG (0 = background, 65535 = "
        "nearest; the range is in the PNG's text chunks)." + (" Not in the geometry view." if geometry else "")
    )
    imgui.separator()
    export_jobs.draw(app)
    imgui.separator()
    export_views.draw(app)
    imgui.separator()
    if ui.export_error:
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(imgui.ImVec4(1.0, 0.45, 0.4, 1.0), ui.export_error)
        imgui.pop_text_wrap_pos()
    elif ui.last_saved:
        imgui.push_text_wrap_pos(0.0)
        imgui.text(f"saved {ui.last_saved}")
        imgui.pop_text_wrap_pos()
