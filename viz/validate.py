"""Checks on values the user types into the control pane (pure, no GL): clamp to a range, refuse non-numbers.

imgui lets Ctrl+click type any number into a slider or drag field, beyond its range and including
nan/inf. Every typed number goes through `clamp_input`, which keeps it inside the widget's range
and leaves a one-line note (what was typed, what was used) for the status line.
"""

from __future__ import annotations

import math
from typing import Protocol


class NoteTarget(Protocol):
    """Where the note goes: the app's UiState (its `input_error` field)."""

    input_error: str | None


def clamp_input(ui: NoteTarget, name: str, value: float, lo: float, hi: float, old: float) -> float:
    """`value` clamped to [lo, hi]; a non-finite value keeps `old`. Both cases set `ui.input_error`;
    an accepted value clears it."""
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        v = math.nan
    if not math.isfinite(v):
        ui.input_error = f"{name}: {value!r} is not a finite number; kept {_num(old)}"
        return old
    clamped = min(max(v, lo), hi)
    if clamped != v:
        ui.input_error = f"{name}: {_num(v)} is outside {_num(lo)} .. {_num(hi)}; using {_num(clamped)}"
    else:
        ui.input_error = None
    return clamped


def _num(x: float) -> str:
    """A number as typed: whole numbers in full (seeds), others in %g."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def clamp_int(ui: NoteTarget, name: str, value: int, lo: int, hi: int, old: int) -> int:
    """`clamp_input` for integer fields."""
    return int(clamp_input(ui, name, value, lo, hi, old))
