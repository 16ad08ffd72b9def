"""The window's imgui layer: the control pane (a jump row, then one collapsing section per widget), the
overlay text on an empty render area, the depth legend, the inspector window with its slice outline and pixel
probe, the status line and the help overlay."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import glfw
from imgui_bundle import imgui

from .layout import PANE_WIDTH, STATUS_HEIGHT
from .widgets import (
    camera,
    depth_legend,
    export,
    geometry,
    help,
    inspector,
    latent,
    model,
    path,
    path_overlay,
    perf,
    photo,
    probe,
    slice_outline,
    status,
    truncation,
    view,
)
from .widgets._ui import mark

if TYPE_CHECKING:
    from .host import ViewerHost

SECTIONS = (
    ("Model", "Model", model.draw),
    ("Latent", "Latent", latent.draw),
    ("Camera", "Camera", camera.draw),
    ("Path", "Path", path.draw),
    ("Photo", "Photo", photo.draw),
    ("Truncation", "Trunc", truncation.draw),
    ("View", "View", view.draw),
    ("Geometry", "Geometry", geometry.draw),
    ("Export", "Export", export.draw),
    ("Performance", "Perf", perf.draw),
)
"""(title, jump-row label, draw) of the control pane's sections, top to bottom."""
CLOSED_AT_START = frozenset({"Path", "Photo"})
"""Sections that start folded (one line), so the ones below stay in view; the jump row opens them."""


def draw_ui(app: ViewerHost) -> None:
    """Control pane (left, fixed width, scrolls; Tab hides it), overlays, status line (bottom), help."""
    w, h = glfw.get_window_size(app.window)
    app.item_rects.clear()  # only widgets drawn this frame
    if app.ui.show_pane:
        _draw_pane(app, h)
    _draw_overlay_text(app)
    depth_legend.draw(app)
    slice_outline.draw(app)
    path_overlay.draw(app)
    inspector.draw(app)
    status.draw(app, w, h)
    probe.draw(app)
    help.draw(app)


def _draw_overlay_text(app: ViewerHost) -> None:
    """'loading NAME…' (or 'rendering…' before a model's first frame) centred on the empty render area."""
    loading = app.loader.loading
    if loading is not None:
        text = f"loading {Path(str(loading)).name}…"
    elif app.model is not None and app.shown is None and app.state.view.view != "geometry":
        text = "rendering the first frame…"
    else:
        return
    x, y, w, h = app.render_rect()
    size = imgui.calc_text_size(text)
    imgui.get_foreground_draw_list().add_text(
        imgui.ImVec2(x + (w - size.x) / 2, y + (h - size.y) / 2),
        imgui.get_color_u32(imgui.ImVec4(0.9, 0.9, 0.9, 1.0)),
        text,
    )


def _draw_pane(app: ViewerHost, h: int) -> None:
    """A row of section names that jump to their section (opening it), then the sections in a scrolling child,
    so every panel is one click away at any window height."""
    flags = (
        imgui.WindowFlags_.no_move
        | imgui.WindowFlags_.no_resize
        | imgui.WindowFlags_.no_collapse
        | imgui.WindowFlags_.no_title_bar
        | imgui.WindowFlags_.no_saved_settings
        | imgui.WindowFlags_.no_bring_to_front_on_focus
    )
    imgui.set_next_window_pos(imgui.ImVec2(0, 0))
    imgui.set_next_window_size(imgui.ImVec2(PANE_WIDTH, max(h - STATUS_HEIGHT, 1)))
    imgui.begin("controls", None, flags.value)
    imgui.text("triplane-viz")
    imgui.same_line()
    imgui.text_disabled("F1 / ? keys · Tab hides this pane")
    for i, (title, short, _) in enumerate(SECTIONS):
        if i and i != 5:  # two rows: Model .. Photo, then Trunc .. Perf
            imgui.same_line(spacing=3)
        if imgui.small_button(short):
            app.ui.jump_to = title
        mark(app, f"jump_{title.lower()}")
    imgui.begin_child("sections")
    for title, _, draw in SECTIONS:
        jump = app.ui.jump_to == title
        if jump:
            imgui.set_next_item_open(True)
        folded = 0 if title in CLOSED_AT_START else imgui.TreeNodeFlags_.default_open.value
        if imgui.collapsing_header(title, folded):
            if jump:
                imgui.set_scroll_here_y(0.0)
            imgui.push_id(title)
            draw(app)
            imgui.pop_id()
        elif jump:
            imgui.set_scroll_here_y(0.0)
        if jump:
            app.ui.jump_to = None
    imgui.end_child()
    imgui.end()


def status_text(app: ViewerHost) -> str:
    """The status line as plain text (tests, logs)."""
    return "  |  ".join(text for _, text in status.parts(app))
