"""The inspector's slice plane drawn into the render area: its quad projected with the camera of the frame on
screen (the live camera in the geometry view), so you see where the slice cuts the object."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from imgui_bundle import imgui

from ..gfx.mesh_view import square_fit

if TYPE_CHECKING:
    from viz.host import WidgetHost

FILL = (1.0, 0.55, 0.1, 0.18)
EDGE = (1.0, 0.6, 0.15, 0.95)


def project(camera, points: np.ndarray) -> np.ndarray | None:
    """World points (N, 3) -> image fractions (N, 2) (x right, y down, 0..1 across the render) through a 25-value
    EG3D camera (OpenCV axes, normalised intrinsics); None when a point lies behind the camera."""
    c = np.asarray(camera, np.float64)
    cam2world, k = c[:16].reshape(4, 4), c[16:25].reshape(3, 3)
    rot, origin = cam2world[:3, :3], cam2world[:3, 3]
    p = (np.asarray(points, np.float64) - origin) @ rot  # R^T (p - o), row-wise
    if np.any(p[:, 2] <= 1e-6):
        return None
    uvw = p @ k.T
    return uvw[:, :2] / uvw[:, 2:3]


def draw(app: WidgetHost) -> None:
    """The quad of the last slice over the render, while the inspector shows slices with 'show in the render' on."""
    ins = app.inspector
    s = ins.state
    sl = ins.current("slice")
    if not (s.open and s.tab == "slices" and s.slice_in_view) or sl is None or app.loader.loading:
        return
    if app.state.view.view == "geometry":
        camera = app.state.camera.to_camera().numpy()
    elif app.shown is not None:
        camera = app.shown.job.request.camera
    else:
        return
    uv = project(camera, sl.corners)
    if uv is None:
        return
    fx, fy, fw, fh = square_fit(*(int(v) for v in app.render_rect()))
    pts = [imgui.ImVec2(fx + u * fw, fy + v * fh) for u, v in uv]
    dl = imgui.get_background_draw_list()
    p1, p2, p3, p4 = pts
    dl.add_quad_filled(p1, p2, p3, p4, imgui.get_color_u32(imgui.ImVec4(*FILL)))
    dl.add_quad(p1, p2, p3, p4, imgui.get_color_u32(imgui.ImVec4(*EDGE)), 2.0)
    ins.outline = [(p.x, p.y) for p in pts]
