"""Depth legend: in the depth view, a colour bar with the near and far depths drawn over the render's corner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

if TYPE_CHECKING:
    from viz.host import WidgetHost

VIRIDIS_REVERSED = (
    (0.992, 0.906, 0.145),
    (0.369, 0.788, 0.384),
    (0.129, 0.569, 0.549),
    (0.231, 0.322, 0.545),
    (0.267, 0.004, 0.329),
)
"""shaders/display.frag's depth colours from near (left) to far (right): viridis reversed, its five stops."""
BAR_WIDTH, BAR_HEIGHT, MARGIN = 180.0, 10.0, 12.0


def draw(app: WidgetHost) -> None:
    """The bar and its labels, bottom-right of the render area, when the depth view shows a frame."""
    out = app.shown
    if app.state.view.view != "depth" or out is None or out.frame.kind != "depth" or app.loader.loading:
        return
    x, y, w, h = app.render_rect()
    if w < BAR_WIDTH + 2 * MARGIN or h < 60:
        return
    dl = imgui.get_foreground_draw_list()
    x1, y1 = x + w - MARGIN, y + h - MARGIN - 18
    x0, y0 = x1 - BAR_WIDTH, y1 - BAR_HEIGHT
    dl.add_rect_filled(
        imgui.ImVec2(x0 - 6, y0 - 6),
        imgui.ImVec2(x1 + 6, y1 + 22),
        imgui.get_color_u32(imgui.ImVec4(0.0, 0.0, 0.0, 0.55)),
        4.0,
    )
    step = BAR_WIDTH / (len(VIRIDIS_REVERSED) - 1)
    for i, (a, b) in enumerate(zip(VIRIDIS_REVERSED, VIRIDIS_REVERSED[1:])):
        ca, cb = (imgui.get_color_u32(imgui.ImVec4(*c, 1.0)) for c in (a, b))
        dl.add_rect_filled_multi_color(
            imgui.ImVec2(x0 + i * step, y0), imgui.ImVec2(x0 + (i + 1) * step, y1), ca, cb, cb, ca
        )
    white = imgui.get_color_u32(imgui.ImVec4(0.95, 0.95, 0.95, 1.0))
    near, far = f"near {out.frame.near:.3f}", f"far {out.frame.far:.3f}"
    dl.add_text(imgui.ImVec2(x0, y1 + 3), white, near)
    dl.add_text(imgui.ImVec2(x1 - imgui.calc_text_size(far).x, y1 + 3), white, far)
    app.item_rects["depth_legend"] = (x0, y0, x1, y1)
