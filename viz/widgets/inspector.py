"""The inspector window (I key, or View > inspector): tabs for the layers, the tri-planes and density slices of the
frame on screen, and the pixel probe switch. A floating window over the render's right side."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from . import layers, planes, slices
from ._ui import help_marker, mark

if TYPE_CHECKING:
    from viz.host import WidgetHost

WIDTH, MAX_HEIGHT, MARGIN = 460.0, 760.0, 8.0
TABS = (("layers", "Layers", layers.draw), ("planes", "Tri-planes", planes.draw), ("slices", "Slices", slices.draw))
"""(state name, tab title, draw) of the inspector's tabs."""


def draw(app: WidgetHost) -> None:
    """The window, when open; closing it (its x) leaves the work undone and the caches kept."""
    s = app.inspector.state
    if not s.open:
        return
    x, y, w, h = app.render_rect()
    imgui.set_next_window_pos(imgui.ImVec2(x + max(w - WIDTH - MARGIN, 0), y + MARGIN), imgui.Cond_.appearing.value)
    height = min(max(h - 2 * MARGIN, 200), MAX_HEIGHT)
    imgui.set_next_window_size(imgui.ImVec2(WIDTH, height), imgui.Cond_.appearing.value)
    expanded, opened = imgui.begin("Inspector", True, imgui.WindowFlags_.no_saved_settings.value)
    if opened is False:
        s.open = False
    pos, size = imgui.get_window_pos(), imgui.get_window_size()
    app.item_rects["inspector_window"] = (pos.x, pos.y, pos.x + size.x, pos.y + size.y)
    if expanded:
        changed, on = imgui.checkbox("pixel probe on hover", s.probe)
        mark(app, "inspector_probe")
        if changed:
            s.probe = on
        help_marker("Hover the render: depth, opacity, the world point where the ray stops and its density.")
        if imgui.begin_tab_bar("inspector_tabs"):
            asked = s.tab if s.tab != app.inspector.tab_shown else None  # set from outside (a key, a test)
            for name, title, draw_tab in TABS:
                flags = imgui.TabItemFlags_.set_selected.value if name == asked else 0
                selected, _ = imgui.begin_tab_item(title, None, flags)
                mark(app, f"inspector_tab_{name}")
                if selected:
                    s.tab = app.inspector.tab_shown = name  # type: ignore[assignment]
                    draw_tab(app)
                    imgui.end_tab_item()
            imgui.end_tab_bar()
    imgui.end()
