"""Long jobs that report progress and can be cancelled: the callback and token types, and their checks.

A job takes a `progress(fraction, stage)` callback and a `cancel` token (anything with `is_set()`,
e.g. a threading.Event) and raises `Cancelled` between steps. The model's density sampling and every
export use these, so they live below both (renderer.model must not import renderer.export).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .errors import Cancelled

ProgressFn = Callable[[float, str], None]
"""progress(fraction in [0, 1], stage text)."""


class CancelToken(Protocol):
    """What a cancel argument must offer (threading.Event does)."""

    def is_set(self) -> bool:
        """True once the job should stop."""


def check_cancel(cancel: CancelToken | None) -> None:
    """Raise Cancelled if the token is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled; nothing was written")


def report(progress: ProgressFn | None, fraction: float, stage: str) -> None:
    """Call the progress callback if there is one (fraction clipped to [0, 1])."""
    if progress is not None:
        progress(min(max(float(fraction), 0.0), 1.0), stage)
