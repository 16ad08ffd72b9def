"""The viewer window: GLFW + imgui frame loop that never waits on a render.

Each `step()` is one UI frame: poll events (the input handler edits the state), draw the
control pane (widgets edit the state), freeze the state into a RenderRequest and submit it to
the latest-wins render thread if it differs from the last one submitted (stamps increase by
one per submission), take the newest finished result (if it belongs to the current model),
upload it through the Presenter, draw it into the render area and swap. The last good frame
stays on screen while a render is in flight; the status line says what is going on.
"""
from __future__ import annotations

import ctypes
import dataclasses
import math
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .window import DisplayError, create_window, destroy_window, gl_info  # first: imgui_bundle before glfw

import glfw  # noqa: E402
import imgui_bundle  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from imgui_bundle import imgui  # noqa: E402
from OpenGL import GL  # noqa: E402

from renderer.camera import camera_tuple  # noqa: E402
from renderer.engine import RenderEngine, RenderRequest, RenderResult, memory  # noqa: E402
from renderer.engine.cpu import cpu_bf16_units  # noqa: E402
from renderer.engine.frames import DisplayFrame, pack_frame, view_pixels  # noqa: E402
from renderer.errors import RenderCancelled  # noqa: E402
from renderer.seeds import SEED_MAX, seed_label  # noqa: E402

from .exporter import ExportSettings, Exporter, save_screenshot_now  # noqa: E402
from .gl import GLCheckError, check_gl_error  # noqa: E402
from .input import InputHandler  # noqa: E402
from .loader import LoadedModel, ModelLoader  # noqa: E402
from .mesh_view import GeometrySettings, MeshView, PreviewMesher, square_fit  # noqa: E402
from .present import Presenter, frame_ready  # noqa: E402
from .recent import RecentFiles  # noqa: E402
from .resolution import Quality, ResolutionPolicy  # noqa: E402
from .state import VizState  # noqa: E402
from .widgets import camera as camera_widget  # noqa: E402
from .widgets import depth_legend as depth_legend_widget  # noqa: E402
from .widgets import export as export_widget  # noqa: E402
from .widgets import geometry as geometry_widget  # noqa: E402
from .widgets import help as help_widget  # noqa: E402
from .widgets import latent as latent_widget  # noqa: E402
from .widgets import model as model_widget  # noqa: E402
from .widgets import perf as perf_widget  # noqa: E402
from .widgets import status as status_widget  # noqa: E402
from .widgets import truncation as truncation_widget  # noqa: E402
from .widgets import view as view_widget  # noqa: E402
from .widgets._ui import mark  # noqa: E402
from .worker import LatestWinsWorker  # noqa: E402

__all__ = ["App", "AppConfig", "DisplayError"]

PANE_SECTIONS = (("Model", "Model", model_widget.draw), ("Latent", "Latent", latent_widget.draw),
                 ("Camera", "Camera", camera_widget.draw), ("Truncation", "Trunc", truncation_widget.draw),
                 ("View", "View", view_widget.draw), ("Geometry", "Geometry", geometry_widget.draw),
                 ("Export", "Export", export_widget.draw), ("Performance", "Perf", perf_widget.draw))
"""(title, jump-row label, draw) of the control pane's sections, top to bottom."""
PANE_WIDTH = 380
"""Control pane width in window coordinates."""
STATUS_HEIGHT = 26
"""Status line height in window coordinates."""
FONT_SIZE = 15.0
IDLE_WAKE_S = 5.0
"""Longest sleep of an idle window (a safety net: every wake-up source posts an event or has a deadline)."""
PROGRESS_TICK_S = 0.25
"""Redraw interval while work runs in the background (live render timer, export progress)."""
SETTLE_FRAMES = 3
"""Frames drawn after input without further input, so imgui sees queued presses and releases and hover settles."""
BUSY_UI_FPS = 20.0
"""UI redraws per second while a render is in flight and nothing new is on its way to the screen: a frame
of llvmpipe-drawn UI costs a core-share the render thread needs (the new frame itself is drawn at once)."""


DEFAULT_OUT_DIR = str(Path("~") / "Pictures" / "triplane-viz")
"""Where saved renders, meshes and videos go unless told otherwise: per user, never the working folder."""


@dataclass
class AppConfig:
    """How to start the viewer (the command-line options)."""

    checkpoint: str | None = None
    device: str = "cpu"
    interop: str = "auto"
    width: int = 1280
    height: int = 800
    headless: bool = False
    """GLFW's NULL platform + EGL: no X server needed, nothing visible (screenshots, CI)."""
    visible: bool = True
    debug_gl: bool = False
    """Check glGetError after every frame; errors are logged and counted."""
    title: str = "triplane-viz"
    max_fps: float = 60.0
    """UI frame-rate cap, so the UI loop leaves the CPU to the render thread."""
    idle_trim_s: float = 5.0
    """Seconds without rendering or loading after which the heap's free pages go back to the OS (the render
    memory policy, renderer/engine/memory.py, keeps them while frames come)."""
    torch_threads: int | None = 2
    out_dir: str = DEFAULT_OUT_DIR
    log: Callable[[str], None] | None = None
    adaptive: bool = True
    """Render cheaper previews while the view moves (see viz/resolution.py); full quality at rest."""
    target_ms: float = 100.0
    """Frame time the previews aim for."""
    bf16_previews: bool | None = False
    """Render previews under bf16 autocast; None: where the model runs on a CPU with bf16 units. Off by default:
    the fp32 path's fused oneDNN kernels now beat it (bf16 previews measure 0.5-0.9x of fp32 in
    bench/bench_orbit.py), and each new preview size first pays oneDNN's bf16 set-up."""


MESSAGE_KINDS: dict[str, str] = {
    "last_saved": "info", "info": "info", "input_error": "warn", "render_warning": "warn",
    "load_error": "error", "render_error": "error", "export_error": "error", "gl_error": "error",
    "geometry_error": "error"}
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
    """When each message field got its current text (time.monotonic)."""

    def __setattr__(self, name: str, value) -> None:
        if name in MESSAGE_KINDS and "set_at" in self.__dict__:
            if value is None:
                self.set_at.pop(name, None)
            else:
                self.set_at[name] = time.monotonic()
        object.__setattr__(self, name, value)

    def messages(self) -> list[tuple[str, str, str]]:
        """(field, kind, text) of the messages showing, newest first."""
        shown = [(f, MESSAGE_KINDS[f], getattr(self, f)) for f in self.set_at if getattr(self, f)]
        return sorted(shown, key=lambda m: -self.set_at[m[0]])

    def next_expiry(self, now_perf: float) -> float:
        """perf_counter time at which the next timed message expires (inf when none)."""
        now = time.monotonic()
        left = [self.set_at[f] + MESSAGE_TTL_S[k] - now for f, k, _ in self.messages()
                if k in MESSAGE_TTL_S and f not in STICKY]
        return now_perf + max(min(left), 0.0) if left else math.inf

    def expire(self) -> None:
        """Clear the info and warning messages whose time is up."""
        now = time.monotonic()
        for f, k, _ in self.messages():
            if k in MESSAGE_TTL_S and f not in STICKY and now - self.set_at[f] >= MESSAGE_TTL_S[k]:
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


@dataclass(frozen=True)
class RenderJob:
    """One request for the render thread: what to render and how to pack it for display."""

    stamp: int
    request: RenderRequest
    pack_view: str
    """'image', 'raw' or 'depth' (normals travel as depth; the shader derives them)."""
    locked_range: tuple[float, float] | None
    engine: RenderEngine
    model_id: int
    quality: Quality | None = None
    """The adaptive-quality level this job was rendered at (None: the request as the user set it)."""
    cancellable: bool = False
    """A full-quality refinement of a view that moved: it stops at the next chunk once a newer request waits."""


@dataclass
class FrameOut:
    """A finished render: the engine's result (for saving) and the packed display frame."""

    stamp: int
    job: RenderJob
    result: RenderResult
    frame: DisplayFrame
    ready: object = None
    """present.frame_ready(frame): the producing stream's event the presenter's copy waits for (None on a CPU)."""


def render_job(job: RenderJob, should_stop: Callable[[], bool]) -> FrameOut:
    """Run on the render thread: one engine call (interrupted for a newer request when the job is
    cancellable), then packing for the display texture."""
    res = job.engine.render(job.request, should_stop=should_stop if job.cancellable else None)
    frame = pack_frame(res.image, res.raw, res.depth, res.alpha, job.pack_view, job.locked_range)
    return FrameOut(job.stamp, job, res, frame, frame_ready(frame))


def pack_view_of(view: str) -> str:
    """The packing a view needs: depth and normals share the depth packing; geometry needs only planes."""
    return "depth" if view in ("depth", "normals") else "raw" if view == "geometry" else view


GEOMETRY_NRR = 16
"""Neural resolution of the planes-only render behind the geometry view (its pixels are not shown)."""


def render_pixels(out: FrameOut) -> np.ndarray:
    """The saved form of a render at its native resolution (the CLI's conversion: RGB, or grey depth)."""
    r = out.result
    return view_pixels(out.job.pack_view, r.image, r.raw, r.depth, r.alpha)


def next_free(folder: Path, stem: str) -> Path:
    """folder/stem-0001.png, or the first number not taken yet."""
    for n in range(1, 100000):
        p = folder / f"{stem}-{n:04d}.png"
        if not p.exists():
            return p
    raise OSError(f"no free file name for {stem} in {folder}")


ACTIONS: dict[str, Callable[["App"], None]] = {
    "reset": lambda app: app.reset_camera(), "screenshot": lambda app: app.save_render(),
    "help": lambda app: app.toggle_help(), "close_help": lambda app: app.close_help(),
    "play": lambda app: app.toggle_play(), "seed_prev": lambda app: app.step_seed(-1),
    "seed_next": lambda app: app.step_seed(1), "toggle_pane": lambda app: app.toggle_pane(),
    "quit": lambda app: app.quit(),
}
"""What each key action id of viz.bindings does to the app."""


class App:
    """The viewer: owns the window, imgui, the presenter, the render worker and the model loader."""

    def __init__(self, config: AppConfig | None = None, state: VizState | None = None):
        self.config = config = config or AppConfig()
        self.log = config.log or (lambda msg: print(msg, file=sys.stderr))
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
        self.discarded = 0
        """Results dropped because they came from a model that has since been replaced."""
        self.frame_counter = 0
        """UI loop iterations (also while minimized)."""
        self.drawn_frames = 0
        """Frames actually drawn and swapped."""
        self.memory_trims = 0
        """Times the idle loop handed free heap pages back (memory.release)."""
        self._busy_at = time.perf_counter()
        self._trimmed = True
        self.gl_errors = 0
        self.stamp = 0
        self._last_key: tuple | None = None
        self._last_pre: tuple | None = None
        self._pending_upload: FrameOut | None = None
        self._save_window_to: Path | None = None
        self._settle_frames = SETTLE_FRAMES
        self._input_pending = False
        """Input arrived since the last drawn frame (the interactive loop draws for it, paced)."""
        self._drawn_at = 0.0
        """perf_counter time the last frame was drawn."""
        self._jump_to: str | None = None
        """A pane section to scroll to (and open) on the next frame (the jump row)."""
        self.last_frame_ms = 0.0
        """Render time of the newest frame taken from the worker."""
        self.waited_s = 0.0
        """Seconds the interactive loop spent asleep in the event wait."""
        self._last_time = time.perf_counter()
        self._closed = False
        self.device_name = self._device_name(config.device)

        self.window = create_window(config.title, config.width, config.height,
                                    visible=config.visible, headless=config.headless)
        self._gui_parts: list[str] = []
        try:
            self._init_gui()
        except BaseException:
            self._release_gui()
            destroy_window(self.window)
            raise
        self.recent = RecentFiles.load()
        if self.recent.warning:
            self.log(f"warning: {self.recent.warning}")
        self.worker: LatestWinsWorker[RenderJob] = LatestWinsWorker(
            render_job, interruptible=True, cancelled_by=RenderCancelled, on_done=glfw.post_empty_event)
        self.loader = ModelLoader(config.device)
        self.geometry = GeometrySettings()
        self.mesher = PreviewMesher()
        self.mesh_key: tuple | None = None
        """Key of the mesh in the mesh view (see `_geometry_key`)."""
        self.export_settings = ExportSettings()
        self.exporter = Exporter(log=self.log)
        self.quality = ResolutionPolicy(target_ms=config.target_ms, lock_full=not config.adaptive)
        """Adaptive render quality; rebuilt for each model (its neural resolution is the full level)."""
        self._moved_key: tuple | None = None
        if config.checkpoint:
            self.load_model(config.checkpoint)

    # ----------------------------------------------------------------- setup / teardown
    def _init_gui(self) -> None:
        """imgui context + C++ GLFW/OpenGL3 backends (chaining to our callbacks) + presenter."""
        info = gl_info()
        self.gl_version = f"{info['GL_VERSION']} on {info['GL_RENDERER']}"
        self.input = InputHandler(self, log=self.log)
        self.input.install(self.window)  # before the backend, which then chains to these callbacks
        self._imgui_ctx = imgui.create_context()
        imgui.set_current_context(self._imgui_ctx)  # create_context keeps an existing context current
        self._gui_parts.append("imgui")
        io = imgui.get_io()
        io.set_ini_filename(None)
        imgui.style_colors_dark()
        style = imgui.get_style()
        for col, rgba in ((imgui.Col_.slider_grab, (0.26, 0.59, 0.98, 0.45)),  # see-through: the value shows
                          (imgui.Col_.slider_grab_active, (0.26, 0.59, 0.98, 0.65))):
            style.set_color_(col, imgui.ImVec4(*rgba))
        style.grab_min_size = 6.0
        font = Path(imgui_bundle.__file__).parent / "assets" / "fonts" / "Roboto" / "Roboto-Regular.ttf"
        if font.is_file():  # a readable UI font with the glyphs we use (…, −); imgui's default lacks them
            io.fonts.add_font_from_file_ttf(str(font), FONT_SIZE)
        addr = ctypes.cast(self.window, ctypes.c_void_p).value
        if not imgui.backends.glfw_init_for_opengl(addr, True):
            raise DisplayError("imgui could not attach to the GLFW window")
        self._gui_parts.append("glfw")
        if not imgui.backends.opengl3_init("#version 330"):
            raise DisplayError("imgui's OpenGL 3 renderer failed to start (no GL 3.3 function loader)")
        self._gui_parts.append("opengl3")
        if not self.config.headless:
            glfw.swap_interval(1)
        self.presenter = Presenter(self.config.interop, log=self.log)
        self._gui_parts.append("presenter")
        self.mesh_view = MeshView()
        self._gui_parts.append("mesh_view")

    def _release_gui(self) -> None:
        """Undo whatever _init_gui got done, newest first (needs the window's context current)."""
        glfw.make_context_current(self.window)
        if "imgui" in self._gui_parts:
            imgui.set_current_context(self._imgui_ctx)
        for part in reversed(self._gui_parts):
            if part == "presenter":
                self.presenter.close()
            elif part == "mesh_view":
                self.mesh_view.close()
            elif part == "opengl3":
                imgui.backends.opengl3_shutdown()
            elif part == "glfw":
                imgui.backends.glfw_shutdown()
            elif part == "imgui":
                imgui.destroy_context(self._imgui_ctx)
        self._gui_parts = []

    def close(self) -> None:
        """Stop the threads and release GL, imgui and the window (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        self.worker.stop()
        self.exporter.stop()
        self.mesher.stop()
        self.loader.stop()
        self._release_gui()
        destroy_window(self.window)

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _device_name(device: str) -> str:
        if device.startswith("cuda") and torch.cuda.is_available():
            return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
        return device

    # ----------------------------------------------------------------- properties and geometry
    @property
    def engine(self) -> RenderEngine | None:
        """The current model's engine (None before a model is loaded)."""
        return self.model.engine if self.model is not None else None

    def render_rect(self) -> tuple[float, float, float, float]:
        """(x, y, w, h) of the render area in window coordinates (cursor units), top-left origin."""
        w, h = glfw.get_window_size(self.window)
        pane = PANE_WIDTH if self.ui.show_pane else 0
        return (float(pane), 0.0, float(max(w - pane, 0)), float(max(h - STATUS_HEIGHT, 0)))

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

    # ----------------------------------------------------------------- actions
    def actions(self) -> dict[str, Callable[[], None]]:
        """Key action ids (viz.bindings) -> this app's methods (see ACTIONS)."""
        return {name: (lambda f=f: f(self)) for name, f in ACTIONS.items()}

    def load_model(self, path: str) -> None:
        """Start loading a checkpoint in the background (the current model stays until it succeeds)."""
        self.ui.model_path = str(path)
        self.ui.load_error = None
        self.loader.start(path)

    def reset_camera(self) -> None:
        """Back to the model's default camera."""
        self.state.reset_camera()

    def toggle_help(self) -> None:
        """Show or hide the bindings overlay."""
        self.ui.show_help = not self.ui.show_help

    def notify(self, text: str) -> None:
        """A passing note in the status line (expires; see MESSAGE_TTL_S)."""
        self.ui.info = text

    def toggle_pane(self) -> None:
        """Hide or show the control pane."""
        self.ui.show_pane = not self.ui.show_pane

    def quit(self) -> None:
        """Close the window at the end of this frame (the loop ends; `close` releases everything)."""
        glfw.set_window_should_close(self.window, True)

    def close_help(self) -> None:
        """Hide the bindings overlay."""
        self.ui.show_help = False

    def toggle_play(self) -> None:
        """Play/pause the A->B interpolation (switches interpolation on if it was off)."""
        lat = self.state.latent
        if not lat.interp:
            lat.interp, lat.playing = True, True
        else:
            lat.playing = not lat.playing

    def step_seed(self, delta: int) -> None:
        """Previous/next integer seed."""
        lat = self.state.latent
        base = math.floor(lat.seed) if delta > 0 else math.ceil(lat.seed)  # from 3.4: next 4, previous 3
        lat.seed = float(min(max(base + delta, 0), SEED_MAX))

    def random_seed(self) -> None:
        """Jump to a random seed."""
        self.state.latent.seed = float(np.random.randint(0, 100000))

    def save_render(self) -> Path | None:
        """Save the shown render at its native resolution as PNG with metadata chunks + .json sidecar
        (atomic); in the geometry view, the drawn mesh. The path or error goes to the UI."""
        out = self.shown
        if out is None:
            self.ui.export_error = "nothing to save yet: no render on screen"
            return None
        if self.state.view.view != "geometry" and out.job.quality not in (None, self.quality.full):
            self.ui.export_error = "not saved: the frame on screen is a moving preview; save once the view rests"
            return None
        try:
            folder = Path(os.path.expanduser(self.ui.out_dir or "."))
            folder.mkdir(parents=True, exist_ok=True)
            seed = out.job.request.latent.seed
            view = self.state.view.view if out.job.pack_view == "depth" else out.job.pack_view
            if self.state.view.view == "geometry":
                view = "geometry"
            path = next_free(folder, f"render-seed{seed_label(seed)}-{view}")
            if view == "geometry":
                pixels, out = self._geometry_pixels(), dataclasses.replace(out, job=dataclasses.replace(
                    out.job, request=self.state.snapshot(0), pack_view="geometry"))
            else:
                pixels = render_pixels(out)
            save_screenshot_now(self, pixels, out, view, path)
        except Exception as e:  # shown in the window, never a crash
            self.ui.export_error = f"save failed: {type(e).__name__}: {e}"
            self.log(self.ui.export_error)
            return None
        self.ui.export_error, self.ui.last_saved = None, str(path)
        self.log(f"saved {path}")
        return path

    def save_window(self, path: str | os.PathLike | None = None) -> None:
        """Save the whole window (framebuffer read-back) as PNG at the end of this frame."""
        if path is None:
            folder = Path(os.path.expanduser(self.ui.out_dir or "."))
            try:
                folder.mkdir(parents=True, exist_ok=True)
                path = next_free(folder, "window")
            except OSError as e:
                self.ui.export_error = f"save failed: {e}"
                return
        self._save_window_to = Path(path)

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
        """Sleep until there is something to draw: a finished render (the worker posts an empty event), input
        (coalesced to the frame-rate cap: BUSY_UI_FPS while a render is in flight, so drawing the UI does not
        starve the render thread), or the next timed thing (an animation frame, a progress tick, a message
        expiring, the idle trim); at most `limit` seconds. Returns the seconds waited."""
        t0 = time.perf_counter()
        end = math.inf if limit is None else t0 + max(limit, 0.0)
        while True:
            now = time.perf_counter()
            timeout = min(self._wake_in(now), end - now)
            if timeout <= 0:
                break
            events = self.input.events
            glfw.wait_events_timeout(timeout)
            if self.input.events != events:
                self._input_pending = True
                self._settle_frames = SETTLE_FRAMES  # imgui takes queued input about one event per frame
        waited = time.perf_counter() - t0
        self.waited_s += waited
        return waited

    def _wake_in(self, now: float) -> float:
        """Seconds until the loop must draw (0: now; IDLE_WAKE_S at most)."""
        if self.worker.has_result() or self._pending_upload is not None:
            return 0.0  # a new frame to show
        lat = self.state.latent
        if (self._input_pending or self._settle_frames > 0 or (lat.interp and lat.playing) or self.input.drag is not None
                or self.quality.moving(now) or self.loader.loading is not None):
            fps = BUSY_UI_FPS if self.worker.busy else (self.config.max_fps or 60.0)
            return max(1.0 / fps - (now - self._drawn_at), 0.0)  # animating, dragging, typing: paced
        waits = [IDLE_WAKE_S, self.ui.next_expiry(now) - now]
        if self.worker.busy or self.mesher.busy or (self.exporter.job is not None and not self.exporter.job.done):
            waits.append(PROGRESS_TICK_S)  # the status line's live timer and the export progress
        if not self._trimmed:
            waits.append(self._busy_at + self.config.idle_trim_s - now)
        return max(min(waits), 0.0)

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
        return (self.loader.loading is None and not self.worker.busy and self._pending_upload is None
                and not self.quality.moving(time.perf_counter())
                and (self.model is None or (self.shown is not None and self.shown.stamp == self.stamp
                                            and self.shown.job.quality in (None, self.quality.full))
                     or self.ui.render_error is not None))

    def step(self) -> None:
        """One UI frame (see the module docstring)."""
        now = time.perf_counter()
        dt, self._last_time = now - self._last_time, now
        glfw.make_context_current(self.window)
        imgui.set_current_context(self._imgui_ctx)
        glfw.poll_events()
        self._take_loaded_model()
        minimized = self.minimized()
        if not minimized:
            self.state.latent.advance(min(dt, 0.1))
        self._take_result()
        self._take_exports()
        self.ui.expire()
        self._trim_when_idle(now)
        self.frame_counter += 1
        if minimized:  # nothing to draw into: no GL calls, no new renders, a slow idle loop
            time.sleep(0.02)
            return
        self.perf.add(dt)
        imgui.backends.opengl3_new_frame()
        imgui.backends.glfw_new_frame()
        imgui.new_frame()
        self._draw_ui()
        imgui.render()
        self._submit()
        self._upload_pending()
        self._update_geometry()
        self._draw_gl()
        imgui.backends.opengl3_render_draw_data(imgui.get_draw_data())
        if self._save_window_to is not None:
            self._write_window_png(self._save_window_to)
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
        self._drawn_at = time.perf_counter()
        self._input_pending = False
        self._settle_frames = max(self._settle_frames - 1, 0)
        self._limit_rate(now)

    def _trim_when_idle(self, now: float) -> None:
        """Once per idle spell of config.idle_trim_s: free heap pages back to the OS (the next frame refaults)."""
        if self.worker.busy or self.loader.loading is not None:
            self._busy_at, self._trimmed = now, False
        elif not self._trimmed and now - self._busy_at > self.config.idle_trim_s:
            self._trimmed = True
            if memory.release():
                self.memory_trims += 1

    def _limit_rate(self, start: float) -> None:
        if self.config.max_fps and self.config.max_fps > 0:
            left = 1.0 / self.config.max_fps - (time.perf_counter() - start)
            if left > 0:
                time.sleep(left)

    def _take_loaded_model(self) -> None:
        """Adopt a finished load, or show why it failed (the old model stays)."""
        out = self.loader.poll()
        if out is None:
            return
        if out.error is not None:
            self.ui.load_error = out.error
            self.log(f"load failed: {out.error}")
            if out.details:
                self.log(out.details)
            return
        m = out.model
        self.model, self.model_id = m, self.model_id + 1
        self.shown = self._pending_upload = None  # never the old model's frame under the new name
        self.mesh_view.set_mesh(None)  # the old model's mesh; a new preview follows the first frame
        self.mesh_key = None
        self.state.apply_model(m.defaults)
        self.quality = ResolutionPolicy(full_resolution=m.engine.G.neural_rendering_resolution,
                                        target_ms=self.config.target_ms, lock_full=self.quality.lock_full,
                                        bf16=self._bf16_previews(m.engine))
        self.ui.load_error = self.ui.render_error = None
        self._last_key = self._last_pre = None
        self.recent.add(m.path)
        if self.recent.warning:
            self.log(f"warning: {self.recent.warning}")
            self.recent.warning = None
        self.log(f"loaded {m.path} in {m.seconds:.1f} s")

    def _bf16_previews(self, engine: RenderEngine) -> bool:
        """Whether previews render in bf16: as configured, else where the model runs on a CPU with bf16 units."""
        if self.config.bf16_previews is not None:
            return self.config.bf16_previews
        return engine.device.type == "cpu" and bool(cpu_bf16_units())

    def _submit(self) -> None:
        """Send the state to the render thread if it changed since the last submission."""
        if self.model is None:
            return
        s = self.state
        now = time.perf_counter()
        moved = (self.model_id, s.camera, s.latent.spec(), dataclasses.replace(s.cond), dataclasses.replace(s.trunc))
        if self._moved_key is not None and moved[0] == self._moved_key[0] and moved != self._moved_key:
            self.quality.note_input(now)  # the view or latent is changing: dragging, scrolling or playing
        self._moved_key = moved
        quality = self._choose_quality(now)
        pre = (self.model_id, s.camera, dataclasses.replace(s.cond), s.latent.spec(), dataclasses.replace(s.trunc),
               dataclasses.replace(s.view), s.defaults, quality)
        if pre == self._last_pre:  # cheap check first: snapshot() builds camera tensors
            return
        self._last_pre = pre
        try:
            req = self.state.snapshot(0)
        except ValueError as e:
            self.ui.render_error = f"bad settings: {e}"
            return
        v = self.state.view
        if v.view == "geometry":  # only the planes are needed: no new request for camera moves
            front = self.state.defaults.camera().to_camera()
            req = dataclasses.replace(req, camera=camera_tuple(front), neural_rendering_resolution=GEOMETRY_NRR,
                                      superresolution=False)
        elif quality is not None:  # a cheaper preview while moving (unchanged at full quality)
            req = self.quality.request_for(req, quality)
        pack = pack_view_of(v.view)
        locked = tuple(v.depth_range) if (pack == "depth" and v.depth_locked) else None
        key = (self.model_id, req, pack, locked)
        if key == self._last_key:
            return
        self._last_key = key
        self.stamp += 1
        refine = quality is not None and quality == self.quality.full and not self.quality.lock_full
        job = RenderJob(self.stamp, dataclasses.replace(req, stamp=self.stamp), pack, locked,
                        self.model.engine, self.model_id, quality, cancellable=refine)
        self.worker.submit(job)

    def _choose_quality(self, now: float) -> Quality | None:
        """The adaptive level for the next request; None where it does not apply (geometry view,
        a neural resolution the user set by hand)."""
        v = self.state.view
        if v.view == "geometry" or v.neural_rendering_resolution is not None:
            return None
        return self.quality.choose(now)

    def _take_result(self) -> None:
        """Take the newest finished render (never an older one than shown); errors go to the status line."""
        res = self.worker.poll()
        if res is None:
            return
        if res.error is not None:
            self.ui.render_error = f"render failed: {res.error}"
            self.log(self.ui.render_error)
            if res.details:
                self.log(res.details)
            return
        out: FrameOut = res.value
        if out.job.model_id != self.model_id:
            self.discarded += 1
            return
        if out.job.quality is not None:
            self.quality.record(out.job.quality, res.seconds * 1000.0)
        self.last_frame_ms = res.seconds * 1000.0
        self.ui.render_error = None
        self.ui.render_warning = ("the frame holds NaN or inf values (drawn black / far); try psi nearer 1"
                                  if out.result.nonfinite else None)
        if out.result.nonfinite:
            self.log(f"warning: frame {out.stamp} holds NaN or inf values")
        self._pending_upload = out

    def _upload_pending(self) -> None:
        """Upload the newest finished frame (done while drawing, so never into a minimized window)."""
        out, self._pending_upload = self._pending_upload, None
        if out is None:
            return
        self.presenter.upload(out.frame, out.ready)
        self.shown = out
        self.presented.append(out.stamp)

    def _draw_gl(self) -> None:
        """Clear, then draw the shown frame (or the mesh, in the geometry view) into the render area."""
        fw, fh = glfw.get_framebuffer_size(self.window)
        GL.glViewport(0, 0, fw, fh)
        GL.glClearColor(0.08, 0.08, 0.09, 1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT)
        x, y, w, h = self.render_rect_fb()
        if w <= 0 or h <= 0:
            return
        view = self.state.view.view
        if view == "geometry":
            self._draw_geometry(x, y, w, h, fh)
            return
        if self.shown is None or self.loader.loading is not None:  # a load replaces the frame: none shown meanwhile
            return
        job = self.shown.job
        mode = view if pack_view_of(view) == job.pack_view else job.pack_view
        if job.pack_view == "depth" and view not in ("depth", "normals"):
            mode = "depth"
        self.presenter.draw(x, y, w, h, fh, mode, focal=float(job.request.camera[16]))
        if self.geometry.overlay:  # with the shown frame's camera, so it lies on that frame
            fit = self.presenter.fit_rect(x, y, w, h)
            if fit is not None:
                self.mesh_view.draw(*fit, fh, job.request.camera, self.geometry.mode, self.geometry.opacity)

    def _draw_geometry(self, x: int, y: int, w: int, h: int, fb_height: int) -> None:
        """The geometry view: background, then the preview mesh under the live camera (square, as a render)."""
        GL.glEnable(GL.GL_SCISSOR_TEST)
        GL.glScissor(x, fb_height - y - h, w, h)
        GL.glClearColor(0.1, 0.1, 0.12, 1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT)
        GL.glDisable(GL.GL_SCISSOR_TEST)
        self.mesh_view.draw(*square_fit(x, y, w, h), fb_height, self.state.camera.to_camera().numpy(),
                            self.geometry.mode)

    def _geometry_pixels(self) -> np.ndarray:
        """The geometry view's square as drawn (re-drawn and read back)."""
        self._draw_gl()
        return self._read_back(*square_fit(*self.render_rect_fb()))

    # ----------------------------------------------------------------- geometry and exports
    def _geometry_key(self, out: FrameOut) -> tuple:
        req, g = out.job.request, self.geometry
        return (out.job.model_id, req.latent, req.psi, req.cutoff, req.cond_camera, req.noise_mode, g.resolution,
                g.level)

    def _update_geometry(self) -> None:
        """Adopt a finished preview mesh; start one when the geometry is shown and the latent changed."""
        res = self.mesher.poll()
        if res is not None:
            if res.error:
                self.ui.geometry_error = res.error
            if res.key is not None and (res.key[0] == self.model_id):
                self.mesh_view.set_mesh(res.mesh)
                self.mesh_key = res.key
                if res.mesh is not None:
                    self.ui.geometry_error = None
                    self.log(f"mesh preview: {res.mesh.n_vertices:,} vertices in {res.seconds:.1f} s")
        wanted = self.state.view.view == "geometry" or self.geometry.overlay
        out = self.shown
        if not wanted or out is None or out.result.planes is None or out.job.model_id != self.model_id:
            return
        key = self._geometry_key(out)
        if key != self.mesher.requested_key:
            self.mesher.request(key, self.model.engine.G, out.result.planes, self.geometry.resolution,
                                self.geometry.level)

    def _take_exports(self) -> None:
        """Show how a finished background export went."""
        job = self.exporter.poll()
        if job is None:
            return
        if job.ok:
            self.ui.export_error, self.ui.last_saved = None, job.target
        elif job.cancelled:  # the user asked for it: a note, not an error
            self.ui.export_error, self.ui.info = None, job.message
        else:
            self.ui.export_error = job.message
        self.log(job.message)

    def _write_window_png(self, path: Path) -> None:
        """Read back the back buffer (before the swap) and write it as PNG, atomically."""
        from renderer.export.files import write_png_atomic

        try:
            pixels = self._read_back(0, 0, *glfw.get_framebuffer_size(self.window))
            path.parent.mkdir(parents=True, exist_ok=True)
            write_png_atomic(pixels, path)
        except Exception as e:
            self.ui.export_error = f"save window failed: {type(e).__name__}: {e}"
            self.log(self.ui.export_error)
            return
        self.ui.export_error, self.ui.last_saved = None, str(path)
        self.log(f"saved {path}")

    def read_render_area(self) -> np.ndarray:
        """(h, w, 3) uint8 pixels of the render area as drawn in the last frame (re-draws it; tests)."""
        glfw.make_context_current(self.window)
        x, y, w, h = self.render_rect_fb()
        if w <= 0 or h <= 0:
            return np.zeros((0, 0, 3), np.uint8)
        self._draw_gl()
        return self._read_back(x, y, w, h)

    def _read_back(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        """RGB pixels of a back-buffer rectangle (x, y from the top-left), top row first."""
        fh = glfw.get_framebuffer_size(self.window)[1]
        GL.glFinish()
        GL.glReadBuffer(GL.GL_BACK)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        data = GL.glReadPixels(x, fh - y - h, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
        return np.frombuffer(data, np.uint8).reshape(h, w, 3)[::-1].copy()

    # ----------------------------------------------------------------- UI layout
    def _draw_ui(self) -> None:
        """Control pane (left, fixed width, scrolls; Tab hides it), status line (bottom), help overlay."""
        w, h = glfw.get_window_size(self.window)
        self.item_rects = {}  # only widgets drawn this frame
        if self.ui.show_pane:
            self._draw_pane(h)
        self._draw_overlay_text()
        depth_legend_widget.draw(self)
        status_widget.draw(self, w, h)
        help_widget.draw(self)

    def _draw_overlay_text(self) -> None:
        """'loading NAME…' (or 'rendering…' before a model's first frame) centred on the empty render area."""
        loading = self.loader.loading
        if loading is not None:
            text = f"loading {Path(str(loading)).name}…"
        elif self.model is not None and self.shown is None and self.state.view.view != "geometry":
            text = "rendering the first frame…"
        else:
            return
        x, y, w, h = self.render_rect()
        size = imgui.calc_text_size(text)
        imgui.get_foreground_draw_list().add_text(imgui.ImVec2(x + (w - size.x) / 2, y + (h - size.y) / 2),
                                                  imgui.get_color_u32(imgui.ImVec4(0.9, 0.9, 0.9, 1.0)), text)

    def _draw_pane(self, h: int) -> None:
        """The control pane: a row of section names that jump to their section (opening it), then one collapsing
        section per widget in a scrolling child, so every panel is one click away at any window height."""
        flags = (imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_resize | imgui.WindowFlags_.no_collapse
                 | imgui.WindowFlags_.no_title_bar | imgui.WindowFlags_.no_saved_settings
                 | imgui.WindowFlags_.no_bring_to_front_on_focus)
        imgui.set_next_window_pos(imgui.ImVec2(0, 0))
        imgui.set_next_window_size(imgui.ImVec2(PANE_WIDTH, max(h - STATUS_HEIGHT, 1)))
        imgui.begin("controls", None, flags.value)
        imgui.text("triplane-viz")
        imgui.same_line()
        imgui.text_disabled("F1 / ? keys · Tab hides this pane")
        for i, (title, short, _) in enumerate(PANE_SECTIONS):
            if i and i != 5:
                imgui.same_line(spacing=3)
            if imgui.small_button(short):
                self._jump_to = title
            mark(self, f"jump_{title.lower()}")
        imgui.begin_child("sections")
        for title, _, draw in PANE_SECTIONS:
            jump = self._jump_to == title
            if jump:
                imgui.set_next_item_open(True)
            if imgui.collapsing_header(title, imgui.TreeNodeFlags_.default_open.value):
                if jump:
                    imgui.set_scroll_here_y(0.0)
                imgui.push_id(title)
                draw(self)
                imgui.pop_id()
            elif jump:
                imgui.set_scroll_here_y(0.0)
            if jump:
                self._jump_to = None
        imgui.end_child()
        imgui.end()

    def status_text(self) -> str:
        """The status line as plain text (tests, logs)."""
        return "  |  ".join(text for _, text in status_widget.parts(self))
