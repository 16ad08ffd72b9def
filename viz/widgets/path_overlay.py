"""The camera path over the render: the path of camera positions as a line, each keyframe's camera as a small
frustum (the selected one highlighted) and the timeline's camera as a dot. Always in the geometry view (under the
live camera); over rendered views when 'show the path' is ticked (under the shown frame's camera)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from imgui_bundle import imgui

from renderer.paths.interpolate import sample

from ..projection import project, to_window

if TYPE_CHECKING:
    from viz.host import WidgetHost

SAMPLES = 240
"""Points along the drawn path."""
FRUSTUM = 0.12
"""Length of a keyframe camera's drawn frustum (world units)."""
LINE = (0.35, 0.8, 1.0, 0.9)
KEY = (1.0, 0.85, 0.3, 0.95)
SELECTED = (1.0, 0.4, 0.3, 1.0)


def frustum_points(cam2world: np.ndarray, focal: float, length: float = FRUSTUM) -> np.ndarray:
    """The camera's centre and the four corners of its image plane `length` ahead (world points, (5, 3))."""
    half = 0.5 / focal * length
    corners = np.array([[-half, -half, length], [half, -half, length], [half, half, length], [-half, half, length]])
    return np.vstack([cam2world[:3, 3], corners @ cam2world[:3, :3].T + cam2world[:3, 3]])


def draw(app: WidgetHost) -> None:
    """Line, keyframe frusta and the timeline's camera, projected onto the render area."""
    ed = app.paths
    path = ed.path
    geometry = app.state.view.view == "geometry"
    if path is None or app.loader.loading or not (geometry or ed.show_overlay):
        return
    if geometry:
        camera = app.state.camera.to_camera().numpy()
    elif app.shown is not None:
        camera = app.shown.job.request.camera
    else:
        return
    rect = app.render_rect()
    dl = imgui.get_background_draw_list()
    colour = imgui.get_color_u32(imgui.ImVec4(*LINE))
    positions = ed.path_positions(SAMPLES)
    xy = to_window(rect, project(camera, positions))
    for a, b in zip(xy[:-1], xy[1:]):
        if np.isfinite(a).all() and np.isfinite(b).all():
            dl.add_line(imgui.ImVec2(*a), imgui.ImVec2(*b), colour, 2.0)
    ed.overlay_points = [tuple(p) for p in xy if np.isfinite(p).all()]
    for i, k in enumerate(path.keyframes):
        pts = to_window(rect, project(camera, frustum_points(k.cam2world(), k.focal)))
        if not np.isfinite(pts).all():
            continue
        c = imgui.get_color_u32(imgui.ImVec4(*(SELECTED if i == ed.selected else KEY)))
        apex, *corners = [imgui.ImVec2(*p) for p in pts]
        for j in range(4):
            dl.add_line(apex, corners[j], c, 1.5)
            dl.add_line(corners[j], corners[(j + 1) % 4], c, 1.5)
        ahead = np.mean(pts[1:], axis=0) - pts[0]  # where the frustum opens: the label goes the other way
        back = -ahead / max(float(np.linalg.norm(ahead)), 1e-6) * 14.0
        dl.add_text(imgui.ImVec2(apex.x + back[0] - 4, apex.y + back[1] - 8), c, str(i + 1))
    if ed.following:
        now = to_window(rect, project(camera, sample(path, ed.time).cam2world[None, :3, 3]))[0]
        if np.isfinite(now).all():
            dl.add_circle_filled(imgui.ImVec2(*now), 5.0, imgui.get_color_u32(imgui.ImVec4(*SELECTED)))
