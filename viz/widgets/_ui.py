"""Small helpers shared by the widgets (item rectangles for tests, fixed label width)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from imgui_bundle import imgui

if TYPE_CHECKING:
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
