"""Small helpers shared by the widgets (item rectangles for tests, fixed label width, images and their cells)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from imgui_bundle import imgui

if TYPE_CHECKING:
    from viz.gfx.textures import ImageTexture
    from viz.host import WidgetHost

T = TypeVar("T")

LABEL_WIDTH = 130
"""Room kept right of a field for its label (fields are given width -LABEL_WIDTH)."""


def mark(app: WidgetHost, name: str, label: str | None = None) -> None:
    """Remember the last item's rectangle (window coordinates) under `name`, so tests can click it.

    With `label`, the label drawn right of the field is cut off, leaving the field (slider track) alone.
    """
    lo, hi = imgui.get_item_rect_min(), imgui.get_item_rect_max()
    x1 = hi.x
    if label:
        x1 -= imgui.calc_text_size(label, True).x + imgui.get_style().item_inner_spacing.x
    app.item_rects[name] = (lo.x, lo.y, x1, hi.y)


def help_marker(text: str) -> None:
    """A greyed '(?)' on the same line whose tooltip explains the previous widget."""
    imgui.same_line()
    imgui.text_disabled("(?)")
    if imgui.is_item_hovered():
        imgui.set_tooltip(text)


def choice(label: str, value: T, options: Sequence[T], labels: Sequence[str] | None = None) -> T:
    """A full-width combo over `options` (shown as `labels`, default str); the chosen option, or `value`
    unchanged. A value not among the options shows as the first one."""
    imgui.set_next_item_width(-LABEL_WIDTH)
    current = options.index(value) if value in options else 0
    changed, i = imgui.combo(label, current, [str(o) for o in options] if labels is None else list(labels))
    return options[i] if changed else value


def show_image(app: WidgetHost, name: str, tex: ImageTexture, width: float) -> tuple[float, float, float, float]:
    """Draw a widget texture `width` wide (aspect kept); remember and return its rectangle (window coordinates)."""
    height = width * tex.height / max(tex.width, 1)
    imgui.image(imgui.ImTextureRef(tex.texture), imgui.ImVec2(width, height))
    mark(app, name)
    return app.item_rects[name]


def hovered_cell(rect: tuple[float, float, float, float], rows: int, cols: int) -> tuple[int, int] | None:
    """(row, col) of the grid cell under the mouse in an image drawn at `rect` with rows x cols cells, if over it."""
    pos = imgui.get_io().mouse_pos
    x0, y0, x1, y1 = rect
    if not (x0 <= pos.x < x1 and y0 <= pos.y < y1):
        return None
    col = min(int((pos.x - x0) / max(x1 - x0, 1e-6) * cols), cols - 1)
    row = min(int((pos.y - y0) / max(y1 - y0, 1e-6) * rows), rows - 1)
    return row, col
