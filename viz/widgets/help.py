"""Help overlay (F1 or ?): every mouse and key binding, from the one table in viz.bindings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from .. import bindings

if TYPE_CHECKING:
    from viz.host import WidgetHost


def draw(app: WidgetHost) -> None:
    """A centred window over the render area listing bindings.BINDINGS; closes with F1, ?, Esc or its button."""
    if not app.ui.show_help:
        return
    x, y, w, h = app.render_rect()
    imgui.set_next_window_pos(imgui.ImVec2(x + w / 2, y + h / 2), imgui.Cond_.always.value, imgui.ImVec2(0.5, 0.5))
    imgui.set_next_window_bg_alpha(0.92)
    flags = (
        imgui.WindowFlags_.no_collapse
        | imgui.WindowFlags_.always_auto_resize
        | imgui.WindowFlags_.no_saved_settings
        | imgui.WindowFlags_.no_move
    )
    _, still_open = imgui.begin("Mouse and keys", True, flags.value)
    if imgui.begin_table("bindings", 2, (imgui.TableFlags_.row_bg | imgui.TableFlags_.borders_inner_v).value):
        imgui.table_setup_column("input")
        imgui.table_setup_column("effect")
        imgui.table_headers_row()
        for gesture, effect in bindings.rows():
            imgui.table_next_row()
            imgui.table_next_column()
            imgui.text(gesture)
            imgui.table_next_column()
            imgui.text(effect)
        imgui.end_table()
    imgui.text_disabled("Mouse gestures act on the render area, not on the control pane.")
    if imgui.button("close"):
        still_open = False
    imgui.end()
    if not still_open:
        app.ui.show_help = False
