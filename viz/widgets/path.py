"""The Path section: keyframes, the timeline, files and the path video (each its own widget module)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from . import keyframes, path_files, timeline

if TYPE_CHECKING:
    from viz.host import WidgetHost


def draw(app: WidgetHost) -> None:
    keyframes.draw(app)
    timeline.draw(app)
    imgui.separator()
    path_files.draw(app)
