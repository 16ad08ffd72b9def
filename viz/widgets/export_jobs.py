"""Mesh and video exports in the export panel: settings, start buttons, progress bar and cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ..exports import start_mesh, start_video
from ..jobs.exporter import MESH_FORMATS, MESH_RESOLUTIONS, VIDEO_KINDS
from ..validate import clamp_input, clamp_int
from ._ui import LABEL_WIDTH, choice, help_marker, mark
from .geometry import LEVEL_LIMIT

if TYPE_CHECKING:
    from viz.host import WidgetHost

MAX_VIDEO_FRAMES = 100000


def draw(app: WidgetHost) -> None:
    s = app.export_settings
    busy = app.exporter.busy
    imgui.text("mesh")
    s.mesh_resolution = choice("resolution", s.mesh_resolution, MESH_RESOLUTIONS, [f"{r}^3" for r in MESH_RESOLUTIONS])
    changed, default = imgui.checkbox("model's level##mesh", s.mesh_level is None)
    if changed:
        s.mesh_level = None if default else 10.0
    if s.mesh_level is not None:
        imgui.same_line()
        imgui.set_next_item_width(-LABEL_WIDTH)
        changed, level = imgui.input_float("level##mesh", s.mesh_level, 1.0, 10.0, "%.2f")
        if changed:
            s.mesh_level = clamp_input(app.ui, "mesh level", level, -LEVEL_LIMIT, LEVEL_LIMIT, s.mesh_level)
    s.mesh_format = choice("format", s.mesh_format, MESH_FORMATS)
    help_marker(
        ".ply binary with colours and normals, .obj, .glb, or .mrc: the raw density volume "
        "(ChimeraX: surface level 10)."
    )
    imgui.set_next_item_width(-LABEL_WIDTH)
    _, s.mesh_path = imgui.input_text("mesh file", s.mesh_path)
    mark(app, "mesh_path")
    help_marker("Empty: an automatic name in the output folder. Relative paths are inside it.")
    imgui.begin_disabled(busy)
    if imgui.button("export mesh"):
        start_mesh(app)
    mark(app, "export_mesh")
    imgui.end_disabled()
    imgui.same_line()
    _, s.overwrite = imgui.checkbox("overwrite", s.overwrite)

    imgui.text("video")
    s.video_kind = choice("kind", s.video_kind, VIDEO_KINDS)
    help_marker(
        "orbit: the camera circles the current seed (the reference's yaw/pitch path). interp: the "
        "latent goes seed A -> seed B (Latent section) and back while the camera orbits. Uses the "
        "current view, truncation and sampling settings."
    )
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, frames = imgui.input_int("frames", s.video_frames, 10, 60)
    if changed:
        s.video_frames = clamp_int(app.ui, "frames", frames, 1, MAX_VIDEO_FRAMES, s.video_frames)
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, fps = imgui.input_float("fps", s.video_fps, 1.0, 10.0, "%.0f")
    if changed:
        s.video_fps = clamp_input(app.ui, "fps", fps, 1.0, 240.0, s.video_fps)
    imgui.set_next_item_width(-LABEL_WIDTH)
    _, s.video_path = imgui.input_text("video file", s.video_path)
    imgui.begin_disabled(busy)
    if imgui.button("record video"):
        start_video(app)
    mark(app, "export_video")
    imgui.end_disabled()

    job = app.exporter.job
    if job is not None and not job.done:
        imgui.progress_bar(job.progress, imgui.ImVec2(-80, 0), f"{job.kind}: {job.stage} {100 * job.progress:.0f}%")
        mark(app, "export_progress")
        imgui.same_line()
        if imgui.button("cancel"):
            app.exporter.cancel()
        mark(app, "export_cancel")
