"""Loading checkpoints off the UI thread: load_generator -> RenderEngine on a background thread.

The UI calls `start(path)` and `poll()` once per frame. A failed load yields an error line and
leaves whatever model the app already has untouched; a newer `start` supersedes a pending one
(its outcome is dropped), so the last file the user asked for wins.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from renderer import load_generator
from renderer.engine import RenderEngine
from renderer.errors import CheckpointError

from ..state import ModelDefaults


@dataclass
class LoadedModel:
    """A ready-to-render model: its engine and the camera defaults read from it."""

    path: str
    engine: RenderEngine
    defaults: ModelDefaults
    seconds: float


@dataclass
class LoadOutcome:
    """What one load produced: `model`, or `error` (one line) with `details` (traceback for bugs)."""

    path: str
    model: LoadedModel | None = None
    error: str | None = None
    details: str | None = None
    keep_view: bool = False
    """Keep the latent and camera when adopting the model (stepping through a training run's snapshots)."""


def load_model(path: str, device: str = "cpu") -> LoadedModel:
    """Read a checkpoint and wrap it in an engine (blocking; runs on the loader thread)."""
    t0 = time.perf_counter()
    G = load_generator(path, device=device)  # also accepts the name 'builtin' (the shipped model)
    G.eval()
    defaults = ModelDefaults.from_rendering_kwargs(G.rendering_kwargs, G.num_ws)
    return LoadedModel(path, RenderEngine(G), defaults, time.perf_counter() - t0)


def error_line(e: BaseException) -> str:
    """One readable line for a failed load: the CheckpointError text, else 'Type: message'."""
    text = str(e) if isinstance(e, CheckpointError) else f"{type(e).__name__}: {e}"
    return " ".join(text.split())


class ModelLoader:
    """Runs at most one load at a time on a daemon thread; `poll` hands back the newest outcome."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._lock = threading.Lock()
        self._generation = 0
        self._outcome: LoadOutcome | None = None
        self._loading: str | None = None
        self._threads: list[threading.Thread] = []

    @property
    def loading(self) -> str | None:
        """The path being loaded, or None."""
        with self._lock:
            return self._loading

    def start(self, path: str | os.PathLike, keep_view: bool = False) -> None:
        """Begin loading `path` in the background; supersedes a load still running (`keep_view`: see LoadOutcome)."""
        path = os.fspath(path)
        with self._lock:
            self._generation += 1
            gen = self._generation
            self._loading = path
            self._outcome = None
        thread = threading.Thread(target=self._run, args=(path, gen, keep_view), name="model-loader", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def stop(self, timeout: float = 120.0) -> None:
        """Wait for running loads to finish: a thread left inside torch when the interpreter exits
        aborts the process ('terminate called without an active exception')."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]

    def poll(self) -> LoadOutcome | None:
        """The finished outcome of the latest `start`, once; None while loading or when nothing new."""
        with self._lock:
            out, self._outcome = self._outcome, None
            return out

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until no load runs (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.loading is None:
                return True
            time.sleep(0.01)
        return False

    def _run(self, path: str, gen: int, keep_view: bool) -> None:
        try:
            out = LoadOutcome(path, model=load_model(path, self.device), keep_view=keep_view)
        except CheckpointError as e:
            out = LoadOutcome(path, error=error_line(e))
        except Exception as e:  # a bug or an odd file: shown in the window, the old model stays
            out = LoadOutcome(path, error=error_line(e), details=traceback.format_exc())
        with self._lock:
            if gen == self._generation:
                self._outcome = out
                self._loading = None


def display_name(path: str) -> str:
    """The file name shown in the status line."""
    return Path(path).name or path
