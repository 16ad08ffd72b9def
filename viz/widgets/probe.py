"""The pixel probe: with the inspector open, hovering the render shows for that pixel its depth, opacity, the world
point where the ray stops, the density there and the conditioning camera in use."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ..gfx.mesh_view import square_fit

if TYPE_CHECKING:
    from viz.host import WidgetHost


def pixel_under_mouse(app: WidgetHost, resolution: int) -> tuple[int, int] | None:
    """(x, y) pixel of a resolution x resolution render under the mouse, or None when it is not over the render."""
    pos = imgui.get_io().mouse_pos
    fx, fy, fw, fh = square_fit(*(int(v) for v in app.render_rect()))
    if fw <= 0 or not (fx <= pos.x < fx + fw and fy <= pos.y < fy + fh):
        return None
    x = min(int((pos.x - fx) / fw * resolution), resolution - 1)
    y = min(int((pos.y - fy) / fh * resolution), resolution - 1)
    return x, y


def draw(app: WidgetHost) -> None:
    """The probe's tooltip when the mouse rests on the render (not on a window) and the inspector is open."""
    ins = app.inspector
    ins.probed = None
    out = app.shown
    if not (ins.state.open and ins.state.probe) or out is None or app.state.view.view == "geometry":
        return
    if imgui.get_io().want_capture_mouse or app.loader.loading:
        return
    pixel = pixel_under_mouse(app, int(out.result.depth.shape[-1]))
    if pixel is None:
        return
    p = ins.probe_frame(out, *pixel)
    if p is None:
        return
    ins.probed = p
    r = int(out.result.depth.shape[-1])
    cond = app.state.cond_camera()
    imgui.begin_tooltip()
    imgui.text(f"pixel ({p.pixel[0]}, {p.pixel[1]}) of the {r} x {r} render")
    imgui.text(f"depth {p.depth:.4f}   opacity {p.opacity:.3f}")
    imgui.text("ray stops at ({:+.4f}, {:+.4f}, {:+.4f})".format(*(float(v) for v in p.point)))
    imgui.text(f"density there: raw {p.sigma:+.3f}, activated {p.density:.3f} (softplus(raw - 1))")
    imgui.text_disabled(
        f"conditioning camera: {app.state.cond.mode}, yaw {math.degrees(cond.yaw):+.1f} deg, "
        f"pitch {math.degrees(cond.pitch):+.1f} deg, fov {cond.fov_deg:.1f} deg"
    )
    imgui.end_tooltip()
