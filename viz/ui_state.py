"""UI-only state (not part of a render request): text fields, overlays, timed status-line messages, UI timing."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from .config import DEFAULT_OUT_DIR

MESSAGE_KINDS: dict[str, str] = {
    "last_saved": "info",
    "info": "info",
    "input_error": "warn",
    "render_warning": "warn",
    "load_error": "error",
    "render_error": "error",
    "export_error": "error",
    "gl_error": "error",
    "geometry_error": "error",
}
"""UiState's message fields and their kind. Info and warnings expire after MESSAGE_TTL_S[kind]; errors stay
until the same field is set again, the user dismisses them (click the status line), or what failed succeeds."""
MESSAGE_TTL_S = {"info": 5.0, "warn": 8.0}
STICKY = ("render_warning",)
"""Warnings that describe the frame on screen: they last as long as it does, not a fixed time."""


@dataclass
class UiState:
    """UI-only state (not part of a render request): text fields, overlays, messages (timed: see MESSAGE_KINDS)."""

    model_path: str = ""
    out_dir: str = DEFAULT_OUT_DIR
    show_help: bool = False
    show_pane: bool = True
    """The control pane (Tab hides it: the render takes the whole window)."""
    jump_to: str | None = None
    """A pane section to scroll to (and open) on the next frame (the jump row)."""
    last_saved: str | None = None
    info: str | None = None
    """A passing note (e.g. an export cancelled), shown like 'saved ...'."""
    export_error: str | None = None
    load_error: str | None = None
    render_error: str | None = None
    render_warning: str | None = None
    gl_error: str | None = None
    geometry_error: str | None = None
    input_error: str | None = None
    """The last typed value that was clamped or refused (viz/validate.py)."""
    set_at: dict[str, float] = field(default_factory=dict, repr=False, compare=False)
    """When each message field got its current text (time.perf_counter, the frame loop's clock)."""

    def __setattr__(self, name: str, value) -> None:
        if name in MESSAGE_KINDS and "set_at" in self.__dict__:
            if value is None:
                self.set_at.pop(name, None)
            else:
                self.set_at[name] = time.perf_counter()
        object.__setattr__(self, name, value)

    def messages(self) -> list[tuple[str, str, str]]:
        """(field, kind, text) of the messages showing, newest first."""
        shown = [(f, MESSAGE_KINDS[f], getattr(self, f)) for f in self.set_at if getattr(self, f)]
        return sorted(shown, key=lambda m: -self.set_at[m[0]])

    def _expiries(self) -> dict[str, float]:
        """perf_counter time at which each timed message (a note or a warning that is not STICKY) expires."""
        return {
            f: self.set_at[f] + MESSAGE_TTL_S[k]
            for f, k, _ in self.messages()
            if k in MESSAGE_TTL_S and f not in STICKY
        }

    def next_expiry(self) -> float:
        """perf_counter time at which the next timed message expires (inf when none)."""
        return min(self._expiries().values(), default=math.inf)

    def expire(self) -> None:
        """Clear the info and warning messages whose time is up."""
        now = time.perf_counter()
        for f, at in self._expiries().items():
            if now >= at:
                setattr(self, f, None)

    def dismiss(self) -> None:
        """Clear every message (the user clicked the status line)."""
        for f in list(self.set_at):
            setattr(self, f, None)


@dataclass
class PerfStats:
    """UI frame timing (exponential moving average)."""

    fps: float = 0.0
    frame_ms: float = 0.0

    def add(self, dt: float) -> None:
        """Fold one frame's duration (seconds) into the averages."""
        ms = dt * 1000.0
        self.frame_ms = ms if self.frame_ms == 0 else 0.9 * self.frame_ms + 0.1 * ms
        self.fps = 1000.0 / self.frame_ms if self.frame_ms > 0 else 0.0
