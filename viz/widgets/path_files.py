"""Path panel part 'files and video': save / load the path (our JSON; Load also reads nerfstudio's camera_path.json),
export nerfstudio's format, and render the path to MP4 (optionally a PNG sequence with depth and cameras.json) in
the background with progress and Cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ..exports import export_nerfstudio_path, load_camera_path, save_camera_path, start_path_video
from ._ui import LABEL_WIDTH, choice, help_marker, mark

if TYPE_CHECKING:
    from viz.host import WidgetHost

VIDEO_VIEWS = ("image", "raw", "depth")


def draw(app: WidgetHost) -> None:
    ed = app.paths
    imgui.set_next_item_width(-LABEL_WIDTH)
    _, ed.file = imgui.input_text("path file", ed.file)
    mark(app, "path_file", "path file")
    help_marker("A .json file: empty = camera_path.json in the output folder; relative paths are inside it.")
    imgui.begin_disabled(ed.path is None)
    if imgui.button("save"):
        save_camera_path(app)
    mark(app, "path_save")
    imgui.end_disabled()
    imgui.same_line()
    if imgui.button("load"):
        load_camera_path(app)
    mark(app, "path_load")
    imgui.same_line()
    imgui.begin_disabled(ed.path is None)
    if imgui.button("export nerfstudio"):
        export_nerfstudio_path(app)
    mark(app, "path_nerfstudio")
    help_marker(
        "nerfstudio's camera_path.json (per-frame camera-to-world in its OpenGL camera axes, vertical FOV), "
        "written beside the path file as NAME.nerfstudio.json: render the same shot in nerfstudio."
    )
    ed.video_view = choice("video view", ed.video_view, VIDEO_VIEWS)
    _, ed.png_sequence = imgui.checkbox("also PNG frames + depth + cameras.json", ed.png_sequence)
    imgui.set_next_item_width(-LABEL_WIDTH)
    _, ed.video_path = imgui.input_text("path video", ed.video_path)
    mark(app, "path_video_file", "path video")
    busy = app.exporter.busy
    imgui.begin_disabled(busy)
    if imgui.button("render path video"):
        start_path_video(app)
    mark(app, "path_render")
    imgui.end_disabled()
    imgui.end_disabled()
    job = app.exporter.job
    if job is not None and not job.done and job.kind == "path video":
        imgui.progress_bar(job.progress, imgui.ImVec2(-80, 0), f"{job.stage} {100 * job.progress:.0f}%")
        mark(app, "path_progress")
        imgui.same_line()
        if imgui.button("cancel##path"):
            app.exporter.cancel()
        mark(app, "path_cancel")
    if ed.error:
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(imgui.ImVec4(1.0, 0.7, 0.3, 1.0), ed.error)
        imgui.pop_text_wrap_pos()
