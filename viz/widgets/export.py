"""Export widget: output folder, "save render" (native resolution PNG), "save window" (framebuffer PNG)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ._ui import LABEL_WIDTH, help_marker, mark

if TYPE_CHECKING:
    from viz.app import App


def draw(app: App) -> None:
    """Folder field, the two save buttons, the last saved path or error."""
    ui = app.ui
    imgui.set_next_item_width(-LABEL_WIDTH)
    _, ui.out_dir = imgui.input_text("output folder", ui.out_dir)
    if imgui.button("save render (S)"):
        app.save_render()
    mark(app, "save_render")
    help_marker("The current render at its native resolution: image/raw as RGB, depth and normals "
                "as the CLI's 8-bit grey depth (near = white).")
    imgui.same_line()
    if imgui.button("save window"):
        app.save_window()
    mark(app, "save_window")
    if ui.export_error:
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(imgui.ImVec4(1.0, 0.45, 0.4, 1.0), ui.export_error)
        imgui.pop_text_wrap_pos()
    elif ui.last_saved:
        imgui.push_text_wrap_pos(0.0)
        imgui.text(f"saved {ui.last_saved}")
        imgui.pop_text_wrap_pos()
