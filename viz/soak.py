"""Soak test driver: a seeded random walk of user input through a live App, with leak and error counters.

The walk mixes drags (orbit and pan), wheel and Ctrl+wheel, keys, typed seeds and psi (including
out-of-range values), interpolation and view changes, neural-resolution changes, window resizes
(to zero too), model reloads and exports cancelled midway. Input goes through an `Inputs`
backend: `DirectInput` calls the handlers GLFW's callbacks call (fast, works headless); the GUI
tests plug in real X events (xdotool). `Soak.run` returns a `SoakReport` with frames, exceptions,
GL errors (the app runs with debug_gl), RSS after warm-up and at the end, and files left over.
"""

from __future__ import annotations

import gc
import math
import random
import re
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import glfw
import torch
from imgui_bundle import imgui

from renderer.engine import memory
from renderer.seeds import SEED_MAX, check_seed

from . import orbit
from .exports import start_mesh, start_video
from .validate import clamp_input
from .widgets.truncation import PSI_RANGE

KEYS = ("r", "Left", "Right", "space", "F1", "question", "Escape", "s")
"""X keysym names the walk presses (viz.input.KEY_ACTIONS and CHAR_ACTIONS)."""
PROBLEM = re.compile(r"error|failed|Traceback", re.IGNORECASE)
"""Log lines that count as problems (a cancelled export logs 'cancelled', not 'failed')."""


class Inputs(Protocol):
    """How the walk produces input: pointer moves, buttons (X numbering: 1 left, 2 middle, 3 right),
    the wheel, keys by X keysym name."""

    def move(self, x: float, y: float) -> None: ...
    def press(self, button: int) -> None: ...
    def release(self, button: int) -> None: ...
    def wheel(self, up: bool, ctrl: bool) -> None: ...
    def key(self, name: str) -> None: ...


_GLFW_BUTTONS = {1: glfw.MOUSE_BUTTON_LEFT, 2: glfw.MOUSE_BUTTON_MIDDLE, 3: glfw.MOUSE_BUTTON_RIGHT}
_GLFW_KEYS = {
    "r": glfw.KEY_R,
    "s": glfw.KEY_S,
    "Left": glfw.KEY_LEFT,
    "Right": glfw.KEY_RIGHT,
    "space": glfw.KEY_SPACE,
    "F1": glfw.KEY_F1,
    "Escape": glfw.KEY_ESCAPE,
}


class DirectInput:
    """Calls the app's input handlers as the GLFW callbacks do (imgui is told the pointer position).

    GLFW cannot fake a held Ctrl key, so Ctrl+wheel applies the handler's own FOV step."""

    def __init__(self, app):
        self.app = app

    def move(self, x: float, y: float) -> None:
        glfw.set_cursor_pos(self.app.window, x, y)
        imgui.get_io().add_mouse_pos_event(x, y)
        self.app.input.on_cursor_pos(self.app.window, x, y)

    def press(self, button: int) -> None:
        self.app.input.on_mouse_button(self.app.window, _GLFW_BUTTONS[button], glfw.PRESS, 0)

    def release(self, button: int) -> None:
        self.app.input.on_mouse_button(self.app.window, _GLFW_BUTTONS[button], glfw.RELEASE, 0)

    def wheel(self, up: bool, ctrl: bool) -> None:
        if ctrl:
            s = self.app.state
            s.camera = orbit.zoom_fov(s.camera, 1.0 if up else -1.0)
        else:
            self.app.input.on_scroll(self.app.window, 0.0, 1.0 if up else -1.0)

    def key(self, name: str) -> None:
        if name == "question":
            self.app.input.on_char(self.app.window, ord("?"))
        else:
            self.app.input.on_key(self.app.window, _GLFW_KEYS[name], 0, glfw.PRESS, 0)


@dataclass
class SoakConfig:
    """One soak run."""

    frames: int = 10000
    seed: int = 0
    warmup: int = 1000
    """Frames before the RSS baseline is taken."""
    checkpoint: str = ""
    """Model to reload now and then (the one the app started with)."""
    sample_every: int = 100
    """Frames between RSS samples."""
    base_size: tuple[int, int] = (960, 720)
    """The window size resizes return to."""


@dataclass
class SoakReport:
    """What a soak run saw."""

    frames: int = 0
    drawn: int = 0
    seconds: float = 0.0
    exceptions: list[str] = field(default_factory=list)
    """Exceptions out of App.step, and problem lines the app logged (handler errors, failed renders)."""
    gl_errors: int = 0
    rss_warm_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_max_mb: float = 0.0
    rss_trimmed_mb: float | None = None
    """RSS at the end after glibc's malloc_trim: what is left once freed heap pages go back to the OS."""
    gpu_warm_mb: float | None = None
    gpu_end_mb: float | None = None
    actions: Counter = field(default_factory=Counter)
    exports_cancelled: int = 0
    exports_finished: int = 0
    leftovers: list[str] = field(default_factory=list)
    """Temp files, or files of cancelled exports, found in the output folder: must be none."""

    @property
    def rss_growth_mb(self) -> float:
        """End minus warm-up RSS, both after malloc_trim where glibc has it (freed heap pages kept by the
        allocator are not growth)."""
        end = self.rss_trimmed_mb if self.rss_trimmed_mb is not None else self.rss_end_mb
        return end - self.rss_warm_mb

    def summary(self) -> str:
        gpu = "n/a" if self.gpu_end_mb is None else f"{self.gpu_warm_mb:.1f} -> {self.gpu_end_mb:.1f} MB allocated"
        return (
            f"frames {self.frames} ({self.drawn} drawn) in {self.seconds:.0f} s; exceptions "
            f"{len(self.exceptions)}; GL errors {self.gl_errors}; RSS after warm-up {self.rss_warm_mb:.1f} MB, "
            f"end {self.rss_end_mb:.1f} MB untrimmed, {self.rss_trimmed_mb or 0:.1f} MB after malloc_trim (growth "
            f"{self.rss_growth_mb:+.1f} MB, max {self.rss_max_mb:.1f} MB); "
            f"GPU {gpu}; exports cancelled {self.exports_cancelled}, finished {self.exports_finished}; "
            f"leftover files {len(self.leftovers)}; actions {dict(sorted(self.actions.items()))}"
        )


def rss_mb() -> float:
    """Resident set size of this process (Linux /proc), MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def rss_after_trim() -> float | None:
    """RSS after asking glibc to return freed heap memory (None where there is no glibc)."""
    return rss_mb() if memory.release() else None


def gpu_mb() -> float | None:
    """CUDA memory allocated by torch, MB (None without CUDA)."""
    return torch.cuda.memory_allocated() / 2**20 if torch.cuda.is_available() else None


Action = Callable[[], Iterator[None]]
"""A gesture: a generator that yields once per frame it wants run before continuing."""


class Soak:
    """Drives `app` with a seeded random walk for `config.frames` frames."""

    def __init__(self, app, config: SoakConfig, inputs: Inputs | None = None):
        self.app, self.cfg = app, config
        self.inputs = inputs or DirectInput(app)
        self.rng = random.Random(config.seed)
        self.report = SoakReport()
        self._seen_logs = 0
        self._cancelled_targets: list[Path] = []
        self._counted: list = []
        app.geometry.resolution = 48  # the smallest preview grid: geometry views stay cheap on a CPU
        self.actions: list[tuple[float, str, Action]] = [
            (20, "drag", self.drag),
            (10, "wheel", self.wheel),
            (14, "key", self.key),
            (5, "seed", self.type_seed),
            (5, "interp", self.interp),
            (3, "psi", self.type_psi),
            (5, "view", self.view),
            (2, "resolution", self.resolution),
            (2, "resize", self.resize),
            (0.3, "reload", self.reload),
            (0.4, "export", self.export_then_cancel),
            (33, "idle", self.idle),
        ]

    # ----------------------------------------------------------------- the loop
    def run(self, logs: list[str]) -> SoakReport:
        """Run the walk; `logs` is the list the app's log function appends to."""
        r, t0 = self.report, time.perf_counter()
        weights = [w for w, _, _ in self.actions]
        try:
            while r.frames < self.cfg.frames:
                _, name, action = self.rng.choices(self.actions, weights)[0]
                r.actions[name] += 1
                for _ in action():
                    if not self.frame(logs):
                        break
                else:
                    self.frame(logs)
        except Exception:
            r.exceptions.append(traceback.format_exc(limit=5))
        finally:
            self.finish(logs)
            r.seconds = time.perf_counter() - t0
        return r

    def frame(self, logs: list[str]) -> bool:
        """One UI frame plus the bookkeeping; False once the frame budget is spent."""
        r, cfg = self.report, self.cfg
        r.frames += 1
        self.app.step()  # an exception here ends the run (run's finally still reports)
        for line in logs[self._seen_logs :]:
            if PROBLEM.search(line) and "cancelled" not in line:
                r.exceptions.append(line)
        self._seen_logs = len(logs)
        if r.frames == cfg.warmup:  # trimmed like the end figure, so the growth compares live heaps
            gc.collect()
            r.rss_warm_mb, r.gpu_warm_mb = rss_after_trim() or rss_mb(), gpu_mb()
        if r.frames % cfg.sample_every == 0 and r.frames >= cfg.warmup:
            r.rss_max_mb = max(r.rss_max_mb, rss_mb())
        return r.frames < cfg.frames

    def finish(self, logs: list[str]) -> None:
        """Cancel what still runs, then count errors, memory and leftover files."""
        app, r = self.app, self.report
        running = app.exporter.job if app.exporter.busy else None
        app.exporter.stop()
        try:
            app.run_frames(2)
        except Exception:
            r.exceptions.append(traceback.format_exc(limit=3))
        if running is not None:
            if running.cancelled:
                self._cancelled_targets.append(Path(running.target))
            self._count_export(running)
        gc.collect()
        r.rss_end_mb, r.gpu_end_mb = rss_mb(), gpu_mb()
        r.rss_max_mb = max(r.rss_max_mb, r.rss_end_mb)
        r.rss_trimmed_mb = rss_after_trim()
        if r.frames < self.cfg.warmup:  # too short for a warm-up: the end is the baseline
            r.rss_warm_mb = r.rss_trimmed_mb if r.rss_trimmed_mb is not None else r.rss_end_mb
        r.gl_errors, r.drawn = app.gl_errors, app.drawn_frames
        folder = Path(app.ui.out_dir)
        r.leftovers = sorted(str(p) for p in folder.rglob("*") if ".tmp" in p.name or ".probe" in p.name)
        r.leftovers += [str(p) for p in self._cancelled_targets if p.exists()]

    # ----------------------------------------------------------------- gestures
    def _point(self) -> tuple[float, float] | None:
        x, y, w, h = self.app.render_rect()
        if w < 4 or h < 4:
            return None
        return x + self.rng.uniform(0.1, 0.9) * w, y + self.rng.uniform(0.1, 0.9) * h

    def idle(self) -> Iterator[None]:
        for _ in range(self.rng.randint(1, 6)):
            yield

    def drag(self) -> Iterator[None]:
        start = self._point()
        if start is None:
            return
        button = self.rng.choice((1, 1, 1, 2, 3))
        x, y = start
        self.inputs.move(x, y)
        yield
        self.inputs.press(button)
        yield
        for _ in range(self.rng.randint(2, 12)):
            x += self.rng.uniform(-40, 40)
            y += self.rng.uniform(-40, 40)
            self.inputs.move(x, y)
            yield
        self.inputs.release(button)

    def wheel(self) -> Iterator[None]:
        p = self._point()
        if p is None:
            return
        self.inputs.move(*p)
        yield
        ctrl = self.rng.random() < 0.3
        for _ in range(self.rng.randint(1, 4)):
            self.inputs.wheel(self.rng.random() < 0.5, ctrl)
            yield

    def key(self) -> Iterator[None]:
        p = self._point()
        if p is not None:
            self.inputs.move(*p)  # keys go to the window; the pointer over the render keeps imgui out of it
            yield
        name = self.rng.choice(KEYS[:-1]) if self.rng.random() > 0.05 else "s"  # screenshots now and then
        self.inputs.key(name)
        yield

    def type_seed(self) -> Iterator[None]:
        """A value typed into a seed field: mostly small, sometimes negative or huge (refused, seed kept)."""
        lat, ui = self.app.state.latent, self.app.ui
        typed = self.rng.choice(
            (
                self.rng.randint(0, 50),
                -self.rng.randint(1, 10**6),
                SEED_MAX,
                SEED_MAX + 1,
                self.rng.randint(0, SEED_MAX),
            )
        )
        try:
            lat.seed = float(check_seed(typed))
        except ValueError as e:
            ui.input_error = str(e)
        yield

    def type_psi(self) -> Iterator[None]:
        tr = self.app.state.trunc
        typed = self.rng.choice((self.rng.uniform(-1, 2), self.rng.uniform(-50, 50), math.nan, math.inf, 0.7))
        tr.psi = clamp_input(self.app.ui, "psi", typed, *PSI_RANGE, tr.psi)
        yield

    def interp(self) -> Iterator[None]:
        lat = self.app.state.latent
        choice = self.rng.randrange(4)
        if choice == 0:
            lat.interp = not lat.interp
        elif choice == 1:
            lat.t = self.rng.random()
        elif choice == 2:
            lat.seed_b = self.rng.randint(0, 100)
        else:
            lat.space = "z" if lat.space == "w" else "w"
        yield

    def view(self) -> Iterator[None]:
        self.app.state.view.view = self.rng.choice(("image", "raw", "raw", "depth", "normals", "geometry"))
        yield

    def resolution(self) -> Iterator[None]:
        self.app.state.view.neural_rendering_resolution = self.rng.choice((None, 32, 32, 64))
        yield

    def resize(self) -> Iterator[None]:
        w, h = self.rng.choice(
            ((0, 0), (1, 1), (400, 300), (1280, 900), (self.rng.randint(50, 1400), self.rng.randint(50, 1000)))
        )
        glfw.set_window_size(self.app.window, w, h)
        for _ in range(self.rng.randint(1, 20)):
            yield
        if self.rng.random() < 0.7:
            glfw.set_window_size(self.app.window, *self.cfg.base_size)
            yield

    def reload(self) -> Iterator[None]:
        if self.cfg.checkpoint:
            self.app.load_model(self.cfg.checkpoint)
            yield

    def export_then_cancel(self) -> Iterator[None]:
        """Start a small mesh or video export from the panel, cancel it a few frames later."""
        app = self.app
        s = app.export_settings
        s.mesh_resolution, s.mesh_format, s.video_frames, s.video_kind = 64, "ply", 12, "orbit"
        job = (start_mesh if self.rng.random() < 0.5 else start_video)(app)
        if job is None:  # refused up front (nothing on screen yet, or one still running): shown in the panel
            yield
            return
        for _ in range(self.rng.randint(1, 30)):
            yield
        app.exporter.cancel()
        for _ in range(3000):  # the exporters stop at their next chunk or frame
            if job.done:
                break
            yield
        if job.cancelled:
            self._cancelled_targets.append(Path(job.target))
        self._count_export(job)

    def _count_export(self, job) -> None:
        if job is None or not job.done or any(j is job for j in self._counted):
            return
        self._counted.append(job)
        if job.cancelled:
            self.report.exports_cancelled += 1
        elif job.ok:
            self.report.exports_finished += 1
