"""Path panel part 'timeline': play / pause and a scrubber over the path's duration; while it plays or is dragged
the view follows the path at interactive quality (adaptive previews), and keyframe times are marked under it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ..validate import clamp_input
from ._ui import LABEL_WIDTH, help_marker, mark

if TYPE_CHECKING:
    from viz.host import WidgetHost

FPS_RANGE = (1.0, 240.0)
DURATION_RANGE = (0.05, 3600.0)


def draw(app: WidgetHost) -> None:
    ed = app.paths
    path = ed.path
    if path is None:
        return
    if imgui.button("pause" if ed.playing else "play", imgui.ImVec2(60, 0)):
        ed.toggle_play(app.state)
    mark(app, "path_play")
    imgui.same_line()
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, t = imgui.slider_float("##timeline", ed.time, 0.0, max(ed.duration, 1e-3), "%.2f s")
    mark(app, "path_timeline")
    if changed:
        ed.playing = False
        ed.scrub(app.state, t)
    x0, y0, x1, y1 = app.item_rects["path_timeline"]
    dl = imgui.get_window_draw_list()
    tick = imgui.get_color_u32(imgui.ImVec4(1.0, 0.85, 0.3, 0.9))
    for k in path.keyframes:
        x = x0 + (x1 - x0) * k.time / max(ed.duration, 1e-9)
        dl.add_triangle_filled(imgui.ImVec2(x, y1 - 5), imgui.ImVec2(x - 4, y1), imgui.ImVec2(x + 4, y1), tick)
    imgui.same_line()
    imgui.text(f"/ {ed.duration:.2f} s")
    imgui.set_next_item_width(100)
    changed, fps = imgui.input_float(
        "fps##path", path.fps, 0.0, 0.0, "%.0f", imgui.InputTextFlags_.enter_returns_true.value
    )
    mark(app, "path_fps")
    if changed:
        ed.settings(fps=clamp_input(app.ui, "fps", fps, *FPS_RANGE, path.fps))
    imgui.same_line()
    imgui.set_next_item_width(100)
    changed, d = imgui.input_float(
        "duration (s)##path", path.total_duration, 0.0, 0.0, "%.2f", imgui.InputTextFlags_.enter_returns_true.value
    )
    mark(app, "path_duration")
    if changed:
        d = clamp_input(app.ui, "duration", d, *DURATION_RANGE, path.total_duration)
        try:
            ed.settings(duration=d)
            ed.error = None
        except ValueError as e:
            ed.error = str(e)
    help_marker(f"{path.frame_count} frames = fps x duration. A loop's last segment returns to the first keyframe.")
    changed, on = imgui.checkbox("show the path over the render", ed.show_overlay)
    if changed:
        ed.show_overlay = on
