"""The viewer window's composition root and frame loop: GLFW + imgui, a loop that never waits on a render.

Each `step()` is one UI frame: poll events (the input handler edits the state), adopt what background jobs
finished, draw the control pane (widgets edit the state), hand the state to the render session (a request
for the latest-wins render thread when it changed), upload the newest finished frame through the presenter,
draw the render area and swap. The last good frame stays on screen while a render is in flight. `run()` is
the interactive loop: it sleeps between frames when nothing moves (viz/pacing.py).
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import glfw  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from imgui_bundle import imgui  # noqa: E402

from renderer.engine import RenderEngine  # noqa: E402
from renderer.fit.saved import opens_as_fit  # noqa: E402

from . import (  # noqa: E402
    actions,
    canvas,  # noqa: E402
    pane,
    results,  # noqa: E402
)
from .config import AppConfig, device_name  # noqa: E402
from .gfx.gl import GLCheckError, check_gl_error  # noqa: E402
from .gfx.gui import Gui  # noqa: E402
from .gfx.mesh_view import GeometrySettings, PreviewMesher  # noqa: E402
from .gfx.window import DisplayError, create_window, destroy_window, gl_info  # first: imgui_bundle before glfw
from .input import InputHandler  # noqa: E402
from .inspector import Inspector  # noqa: E402
from .jobs.exporter import Exporter, ExportSettings  # noqa: E402
from .jobs.loader import LoadedModel, ModelLoader  # noqa: E402
from .jobs.photo_fit import PendingFit, PhotoFit, PhotoSettings  # noqa: E402
from .layout import PANE_WIDTH, STATUS_HEIGHT  # noqa: E402
from .pacing import Pacer  # noqa: E402
from .path_editor import PathEditor  # noqa: E402
from .recent import RecentFiles  # noqa: E402
from .resolution import ResolutionPolicy  # noqa: E402
from .session import FrameOut, RenderSession  # noqa: E402
from .state import VizState  # noqa: E402
from .training_run import TrainingRun  # noqa: E402
from .ui_state import PerfStats, UiState  # noqa: E402

__all__ = ["App", "AppConfig", "DisplayError"]


class App:
    """The viewer: owns the window, imgui, the presenter, the render session and the background jobs."""

    def __init__(self, config: AppConfig | None = None, state: VizState | None = None):
        self.config = config = config or AppConfig()
        self.log: Callable[[str], None] = config.log or (lambda msg: print(msg, file=sys.stderr))
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        self.state = state or VizState()
        self.ui = UiState(out_dir=config.out_dir)
        self.perf = PerfStats()
        self.item_rects: dict[str, tuple[float, float, float, float]] = {}
        """Widget rectangles by name (window coordinates), so tests can click them."""
        self.model: LoadedModel | None = None
        self.model_id = 0
        self.shown: FrameOut | None = None
        self.presented: deque[int] = deque(maxlen=256)
        """Stamps of the results uploaded to the screen, oldest first."""
        self.frame_counter = 0
        """UI loop iterations (also while minimized)."""
        self.drawn_frames = 0
        """Frames actually drawn and swapped."""
        self.gl_errors = 0
        self.pacer = Pacer()
        self._save_window_to: Path | None = None
        self._last_time = time.perf_counter()
        self._closed = False
        self.device_name = device_name(config.device)

        self.window = create_window(
            config.title, config.width, config.height, visible=config.visible, headless=config.headless
        )
        try:
            info = gl_info()
            self.gl_version = f"{info['GL_VERSION']} on {info['GL_RENDERER']}"
            self.input = InputHandler(self, log=self.log)
            self.input.install(self.window)  # before imgui's backend, which then chains to these callbacks
            self.gui = Gui(self.window, config.interop, config.headless, self.log)
        except BaseException:
            destroy_window(self.window)
            raise
        self.presenter, self.mesh_view, self.textures = self.gui.presenter, self.gui.mesh_view, self.gui.textures
        self.recent = RecentFiles.load()
        if self.recent.warning:
            self.log(f"warning: {self.recent.warning}")
        self.session = RenderSession(config, on_done=glfw.post_empty_event)
        self.worker = self.session.worker
        self.loader = ModelLoader(config.device)
        self.geometry = GeometrySettings()
        self.mesher = PreviewMesher()
        self.mesh_key: tuple | None = None
        """Key of the mesh in the mesh view (see viz.results.geometry_key)."""
        self.export_settings = ExportSettings()
        self.exporter = Exporter(log=self.log)
        self.inspector = Inspector(on_done=glfw.post_empty_event)
        self.training = TrainingRun()
        self.paths = PathEditor()
        self.photo = PhotoFit(on_change=glfw.post_empty_event)
        self.photo_settings = PhotoSettings()
        self.fits = 0
        """Photo fits adopted so far (names their custom latents)."""
        self.pending_fit: PendingFit | None = None
        """A fit whose model is loading (a tuned fit's, or an opened fit's network): adopted once loaded."""
        if config.checkpoint:
            self.load_model(config.checkpoint)

    def close(self) -> None:
        """Stop the threads and release GL, imgui and the window (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        self.worker.stop()
        self.photo.stop()
        self.inspector.stop()
        self.exporter.stop()
        self.mesher.stop()
        self.loader.stop()
        self.gui.release()
        destroy_window(self.window)

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- what the render session holds
    @property
    def engine(self) -> RenderEngine | None:
        """The current model's engine (None before a model is loaded)."""
        return self.model.engine if self.model is not None else None

    @property
    def quality(self) -> ResolutionPolicy:
        """The adaptive-quality policy of the current model."""
        return self.session.quality

    # ----------------------------------------------------------------- geometry
    def render_rect(self) -> tuple[float, float, float, float]:
        """(x, y, w, h) of the render area in window coordinates (cursor units), top-left origin."""
        w, h = glfw.get_window_size(self.window)
        pane_w = PANE_WIDTH if self.ui.show_pane else 0
        return (float(pane_w), 0.0, float(max(w - pane_w, 0)), float(max(h - STATUS_HEIGHT, 0)))

    def render_rect_fb(self) -> tuple[int, int, int, int]:
        """The render area in framebuffer pixels (differs from window coordinates on HiDPI screens)."""
        ww, wh = glfw.get_window_size(self.window)
        fw, fh = glfw.get_framebuffer_size(self.window)
        sx, sy = (fw / ww if ww else 1.0), (fh / wh if wh else 1.0)
        x, y, w, h = self.render_rect()
        return int(round(x * sx)), int(round(y * sy)), int(round(w * sx)), int(round(h * sy))

    def minimized(self) -> bool:
        """True when there is nothing to draw into (iconified, or a zero-sized framebuffer)."""
        fw, fh = glfw.get_framebuffer_size(self.window)
        return fw <= 0 or fh <= 0 or bool(glfw.get_window_attrib(self.window, glfw.ICONIFIED))

    # ----------------------------------------------------------------- named actions (keys, buttons, widgets)
    def actions(self) -> dict[str, Callable[[], None]]:
        """Key action ids (viz.bindings) -> this app's actions (see viz.actions.ACTIONS)."""

        def bound(f: Callable[[App], object]) -> Callable[[], None]:
            def call() -> None:
                f(self)

            return call

        return {name: bound(f) for name, f in actions.ACTIONS.items()}

    def load_model(self, path: str, keep_view: bool = False) -> None:
        """Start loading a checkpoint in the background (the current model stays until it succeeds); `keep_view`
        keeps the latent and camera (another snapshot of a training run)."""
        if not keep_view and opens_as_fit(path):
            self.open_fit(path)  # a saved fit's folder, fit.json or w.npy: its latent, in its model
            return
        if self.pending_fit is not None and self.pending_fit.model_path != str(path):
            self.pending_fit = None  # another model was asked for: the fit waiting for its model is dropped
        self.ui.model_path, self.ui.load_error = str(path), None
        self.loader.start(path, keep_view=keep_view)

    def open_fit(self, path: str) -> None:
        """Show a saved fit (folder, fit.json or w.npy): its latent at its camera, in its model."""
        actions.open_fit(self, path)

    def open_photo(self, path: str) -> None:
        """Prepare a picture for a fit (crop and camera estimate, in the background); the Photo panel opens."""
        actions.open_photo(self, path)

    def recrop_photo(self) -> None:
        """Prepare the picture again from the Photo panel's edited box."""
        actions.recrop_photo(self)

    def start_fit(self) -> None:
        """Fit the prepared picture with the Photo panel's camera and settings (background, cancellable)."""
        actions.start_fit(self)

    def reset_camera(self) -> None:
        self.state.reset_camera()

    def toggle_help(self) -> None:
        self.ui.show_help = not self.ui.show_help

    def close_help(self) -> None:
        self.ui.show_help = False

    def toggle_inspector(self) -> None:
        self.inspector.state.open = not self.inspector.state.open

    def toggle_pane(self) -> None:
        self.ui.show_pane = not self.ui.show_pane

    def notify(self, text: str) -> None:
        """A passing note in the status line (expires)."""
        self.ui.info = text

    def quit(self) -> None:
        """Close the window at the end of this frame (the loop ends; `close` releases everything)."""
        glfw.set_window_should_close(self.window, True)

    def step_seed(self, delta: int) -> None:
        actions.step_seed(self, delta)

    def random_seed(self) -> None:
        actions.random_seed(self)

    def save_render(self) -> Path | None:
        """Save the shown render (or the geometry view's mesh) as PNG + metadata; see viz.actions.save_render."""
        return actions.save_render(self)

    def save_window(self, path: str | os.PathLike | None = None) -> None:
        """Save the whole window (framebuffer read-back) as PNG at the end of this frame."""
        self._save_window_to = actions.window_png_path(self, path)

    # ----------------------------------------------------------------- the frame loop
    def run(self, max_frames: int | None = None, max_seconds: float | None = None) -> None:
        """The interactive loop until the window is closed (or `max_frames` / `max_seconds` pass): it sleeps
        in GLFW's event wait whenever nothing moves, so an idle window leaves the cores to rendering."""
        n, end = 0, None if max_seconds is None else time.monotonic() + max_seconds
        while not glfw.window_should_close(self.window) and (max_frames is None or n < max_frames):
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                break
            self.wait_for_work(left)
            self.step()
            n += 1

    def wait_for_work(self, limit: float | None = None) -> float:
        """Sleep until there is something to draw, at most `limit` seconds (viz/pacing.py)."""
        return self.pacer.wait(self, limit)

    def run_frames(self, n: int) -> None:
        """Exactly n UI frames (tests)."""
        for _ in range(n):
            self.step()

    def run_until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        """Step frames until predicate() holds or timeout seconds pass (tests); returns predicate()."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            if predicate():
                return True
        return bool(predicate())

    def idle(self) -> bool:
        """True when no load or render runs and the shown frame is the last request's."""
        return (
            self.loader.loading is None
            and not self.worker.busy
            and self.session.pending is None
            and not self.quality.moving(time.perf_counter())
            and (
                self.model is None
                or (
                    self.shown is not None
                    and self.shown.stamp == self.session.stamp
                    and self.shown.job.quality in (None, self.quality.full)
                )
                or self.ui.render_error is not None
            )
        )

    def step(self) -> None:
        """One UI frame (see the module docstring)."""
        now = time.perf_counter()
        dt, self._last_time = now - self._last_time, now
        self.gui.make_current()
        glfw.poll_events()
        results.take_loaded_model(self)
        results.follow_training_run(self, now)
        minimized = self.minimized()
        if not minimized:
            self.state.latent.advance(min(dt, 0.1))
            self.paths.advance(self.state, min(dt, 0.1))
        self.session.take_result(self.model_id, self.ui, self.log)
        results.take_exports(self)
        results.take_fit(self)
        self.ui.expire()
        self.pacer.trim_when_idle(self, now)
        self.frame_counter += 1
        if minimized:  # nothing to draw into: no GL calls, no new renders, a slow idle loop
            time.sleep(0.02)
            return
        self.perf.add(dt)
        imgui.backends.opengl3_new_frame()
        imgui.backends.glfw_new_frame()
        imgui.new_frame()
        self.inspector.seen()
        pane.draw_ui(self)
        imgui.render()
        self.session.submit(self.state, self.model, self.model_id, self.ui, capture=self.inspector.wants_frame_layers)
        self._upload_pending()
        self.inspector.update(self.shown, self.engine.G if self.engine else None, self.model_id, self.quality.full)
        results.update_geometry(self)
        canvas.draw_render_area(self)
        imgui.backends.opengl3_render_draw_data(imgui.get_draw_data())
        if self._save_window_to is not None:
            actions.write_window_png(self, self._save_window_to)
            self._save_window_to = None
        if self.config.debug_gl:
            try:
                check_gl_error(f"frame {self.frame_counter}")
            except GLCheckError as e:
                self.gl_errors += 1
                self.ui.gl_error = str(e)
                self.log(str(e))
        glfw.swap_buffers(self.window)
        self.drawn_frames += 1
        self.pacer.drew()
        self._limit_rate(now)

    def _limit_rate(self, start: float) -> None:
        if self.config.max_fps and self.config.max_fps > 0:
            left = 1.0 / self.config.max_fps - (time.perf_counter() - start)
            if left > 0:
                time.sleep(left)

    def _upload_pending(self) -> None:
        """Upload the newest finished frame (done while drawing, so never into a minimized window)."""
        out, self.session.pending = self.session.pending, None
        if out is None:
            return
        self.presenter.upload(out.frame, out.ready)
        self.shown = out
        self.presented.append(out.stamp)

    # ----------------------------------------------------------------- read-outs (tests, logs)
    def status_text(self) -> str:
        """The status line as plain text."""
        return pane.status_text(self)

    def read_render_area(self) -> np.ndarray:
        """(h, w, 3) uint8 pixels of the render area as drawn in the last frame (re-draws it)."""
        return canvas.read_render_area(self)
