"""The inspector's slice plane drawn into the render area: its quad projected with the camera of the frame on
screen (the live camera in the geometry view), so you see where the slice cuts the object."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from imgui_bundle import imgui

from ..projection import project, to_window

if TYPE_CHECKING:
    from viz.host import WidgetHost

FILL = (1.0, 0.55, 0.1, 0.18)
EDGE = (1.0, 0.6, 0.15, 0.95)


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
    if np.isnan(uv).any():  # a corner behind the camera
        return
    pts = [imgui.ImVec2(float(x), float(y)) for x, y in to_window(app.render_rect(), uv)]
    dl = imgui.get_background_draw_list()
    p1, p2, p3, p4 = pts
    dl.add_quad_filled(p1, p2, p3, p4, imgui.get_color_u32(imgui.ImVec4(*FILL)))
    dl.add_quad(p1, p2, p3, p4, imgui.get_color_u32(imgui.ImVec4(*EDGE)), 2.0)
    ins.outline = [(p.x, p.y) for p in pts]
