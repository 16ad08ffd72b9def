"""When the interactive loop draws: it sleeps in GLFW's event wait whenever nothing moves, wakes for input
(coalesced to a frame-rate cap), a finished render (the worker posts an empty event), and timed things (an
animation frame, a progress tick, a message expiring, the idle trim). An idle window leaves the cores to the
render thread; while a render is in flight the UI is drawn at BUSY_UI_FPS so it does not starve it."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import glfw

from renderer.engine import memory

if TYPE_CHECKING:
    from .host import ViewerHost

IDLE_WAKE_S = 5.0
"""Longest sleep of an idle window (a safety net: every wake-up source posts an event or has a deadline)."""
PROGRESS_TICK_S = 0.25
"""Redraw interval while work runs in the background (live render timer, export progress)."""
SETTLE_FRAMES = 3
"""Frames drawn after input without further input, so imgui sees queued presses and releases and hover settles."""
BUSY_UI_FPS = 20.0
"""UI redraws per second while a render is in flight and nothing new is on its way to the screen: a frame
of llvmpipe-drawn UI costs a core-share the render thread needs (the new frame itself is drawn at once)."""


class Pacer:
    """The loop's clock: what happened since the last drawn frame, and how long it may sleep now."""

    def __init__(self):
        self.settle_frames = SETTLE_FRAMES
        self.input_pending = False
        """Input arrived since the last drawn frame (the loop draws for it, paced)."""
        self.drawn_at = 0.0
        """perf_counter time the last frame was drawn."""
        self.waited_s = 0.0
        """Seconds the interactive loop spent asleep in the event wait."""
        self.memory_trims = 0
        """Times the idle loop handed free heap pages back (memory.release)."""
        self._busy_at, self._trimmed = time.perf_counter(), True

    def trim_when_idle(self, app: ViewerHost, now: float) -> None:
        """Once per idle spell of config.idle_trim_s: free heap pages back to the OS (the next frame refaults;
        renderer/engine/memory.py keeps them while frames come)."""
        if app.worker.busy or app.loader.loading is not None:
            self._busy_at, self._trimmed = now, False
        elif not self._trimmed and now - self._busy_at > app.config.idle_trim_s:
            self._trimmed = True
            if memory.release():
                self.memory_trims += 1

    def drew(self) -> None:
        """A frame was drawn and swapped."""
        self.drawn_at = time.perf_counter()
        self.input_pending = False
        self.settle_frames = max(self.settle_frames - 1, 0)

    def wait(self, app: ViewerHost, limit: float | None = None) -> float:
        """Sleep until there is something to draw, at most `limit` seconds; returns the seconds waited."""
        t0 = time.perf_counter()
        end = math.inf if limit is None else t0 + max(limit, 0.0)
        while True:
            now = time.perf_counter()
            timeout = min(self.wake_in(app, now), end - now)
            if timeout <= 0:
                break
            events = app.input.events
            glfw.wait_events_timeout(timeout)
            if app.input.events != events:
                self.input_pending = True
                self.settle_frames = SETTLE_FRAMES  # imgui takes queued input about one event per frame
        waited = time.perf_counter() - t0
        self.waited_s += waited
        return waited

    def wake_in(self, app: ViewerHost, now: float) -> float:
        """Seconds until the loop must draw (0: now; IDLE_WAKE_S at most)."""
        if app.worker.has_result() or app.session.pending is not None:
            return 0.0  # a new frame to show
        lat = app.state.latent
        if (
            self.input_pending
            or self.settle_frames > 0
            or (lat.interp and lat.playing)
            or app.paths.playing
            or app.input.drag is not None
            or app.quality.moving(now)
            or app.loader.loading is not None
        ):
            fps = BUSY_UI_FPS if app.worker.busy else (app.config.max_fps or 60.0)
            return max(1.0 / fps - (now - self.drawn_at), 0.0)  # animating, dragging, typing: paced
        if app.inspector.has_news() or app.photo.has_outcome():
            return 0.0  # an inspector capture or a photo fit finished: show it
        waits = [IDLE_WAKE_S, app.ui.next_expiry() - now]
        follow = app.training.wake_in(now)
        if follow is not None:
            waits.append(follow)  # a followed training run is listed again
        busy = app.worker.busy or app.mesher.busy or app.inspector.busy or app.photo.busy
        if busy or (app.exporter.job is not None and not app.exporter.job.done):
            waits.append(PROGRESS_TICK_S)  # the status line's live timer and the export progress
        if not self._trimmed:
            waits.append(self._busy_at + app.config.idle_trim_s - now)
        return max(min(waits), 0.0)
