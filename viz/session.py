"""The render side of the viewer, without GL: what a frame asks for, what comes back, and the session that turns
the state into requests for the latest-wins render thread (deduplicated, adaptive quality, cancellable
refinements) and takes the newest result (never an older one, never another model's)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from renderer.camera import camera_tuple
from renderer.engine import RenderEngine, RenderRequest, RenderResult
from renderer.engine.cpu import cpu_bf16_units
from renderer.engine.frames import DisplayFrame, View, pack_frame, view_pixels
from renderer.errors import RenderCancelled
from renderer.inspect.layers import Layer, frame_layers, superres_recorder

from .config import AppConfig
from .gfx.present import frame_ready
from .jobs.worker import LatestWinsWorker
from .resolution import Quality, ResolutionPolicy
from .state import ViewName, VizState
from .ui_state import UiState

if TYPE_CHECKING:
    from .jobs.loader import LoadedModel


@dataclass(frozen=True)
class RenderJob:
    """One request for the render thread: what to render and how to pack it for display."""

    stamp: int
    request: RenderRequest
    pack_view: ViewName
    """'image', 'raw' or 'depth' (normals travel as depth; the shader derives them); 'geometry' only in the copy
    of a job that a saved geometry view's metadata describes (never rendered)."""
    locked_range: tuple[float, float] | None
    engine: RenderEngine
    model_id: int
    quality: Quality | None = None
    """The adaptive-quality level this job was rendered at (None: the request as the user set it)."""
    cancellable: bool = False
    """A full-quality refinement of a view that moved: it stops at the next chunk once a newer request waits."""
    capture: bool = False
    """Keep the frame's render-side layers for the inspector (recorded during the render itself)."""

    @property
    def focal(self) -> float:
        """The request camera's normalised focal length (its intrinsics' first entry): what the normals shader needs."""
        return float(self.request.camera[16])

    def display_mode(self, view: ViewName) -> str:
        """How the presenter shows this frame in `view`: the view itself when the frame was packed for it, else
        the frame's own packing (a depth-packed frame shows as depth until the new view's frame arrives)."""
        if pack_view_of(view) == self.pack_view:
            return view
        return self.pack_view


@dataclass
class FrameOut:
    """A finished render: the engine's result (for saving) and the packed display frame."""

    stamp: int
    job: RenderJob
    result: RenderResult
    frame: DisplayFrame
    ready: object = None
    """present.frame_ready(frame): the producing stream's event the presenter's copy waits for (None on a CPU)."""
    layers: list[Layer] | None = None
    """The render-side layers (decoder, render, super-resolution, image) when the job asked for them."""


def render_job(job: RenderJob, should_stop: Callable[[], bool]) -> FrameOut:
    """Run on the render thread: one engine call (interrupted for a newer request when the job is
    cancellable), then packing for the display texture."""
    assert job.pack_view != "geometry"  # submitted jobs pack geometry as 'raw' (pack_view_of)
    stop = should_stop if job.cancellable else None
    layers = None
    if job.capture:  # the inspector's render-side layers, recorded during this very render
        res, layers = _render_with_layers(job, stop)
    else:
        res = job.engine.render(job.request, should_stop=stop)
    frame = pack_frame(res.image, res.raw, res.depth, res.alpha, job.pack_view, job.locked_range)
    return FrameOut(job.stamp, job, res, frame, frame_ready(frame), layers)


def _render_with_layers(job: RenderJob, stop: Callable[[], bool] | None) -> tuple[RenderResult, list[Layer]]:
    """One engine render with the super-resolution blocks' outputs recorded (thread-local hooks), then its layers."""
    G = job.engine.G
    recorder = superres_recorder(G) if job.request.superresolution else None
    if recorder is None:
        res, sr = job.engine.render(job.request, should_stop=stop), None
    else:
        with recorder.record() as sr:
            res = job.engine.render(job.request, should_stop=stop)
    assert res.planes is not None and res.features is not None  # the engine always returns both
    rendered = {
        "features": res.features[None],
        "image_raw": res.raw[None],
        "image_depth": res.depth[None],
        "image_alpha": res.alpha[None],
    }
    if res.image is not None:
        rendered["image"] = res.image[None]
    return res, frame_layers(G, res.planes, job.request.camera, rendered, sr)


def pack_view_of(view: ViewName) -> View:
    """The packing a view needs: depth and normals share the depth packing; geometry needs only planes."""
    return "depth" if view in ("depth", "normals") else "raw" if view == "geometry" else view


GEOMETRY_NRR = 16
"""Neural resolution of the planes-only render behind the geometry view (its pixels are not shown)."""


def render_pixels(out: FrameOut) -> np.ndarray:
    """The saved form of a render at its native resolution (the CLI's conversion: RGB, or grey depth)."""
    r = out.result
    return view_pixels(out.job.pack_view, r.image, r.raw, r.depth, r.alpha)


class RenderSession:
    """Requests out, results in: owns the render worker, the adaptive-quality policy and the submission keys."""

    def __init__(self, config: AppConfig, on_done: Callable[[], None] | None = None):
        self.config = config
        self.worker: LatestWinsWorker[RenderJob] = LatestWinsWorker(
            render_job, interruptible=True, cancelled_by=RenderCancelled, on_done=on_done
        )
        self.quality = ResolutionPolicy(target_ms=config.target_ms, lock_full=not config.adaptive)
        """Adaptive render quality; rebuilt for each model (its neural resolution is the full level)."""
        self.stamp = 0
        """Stamp of the newest submitted job (one more per submission)."""
        self.discarded = 0
        """Results dropped because they came from a model that has since been replaced."""
        self.last_frame_ms = 0.0
        """Render time of the newest frame taken from the worker."""
        self.pending: FrameOut | None = None
        """The newest finished frame, waiting to be uploaded by the UI thread."""
        self.last_quality: Quality | None = None
        """The quality level of the last state considered for submission."""
        self._moved_key: tuple | None = None
        """What counts as the view or latent moving (for the adaptive policy)."""
        self._state_key: tuple | None = None
        """The state last turned into a request (a cheap check before building camera tensors)."""
        self._request_key: tuple | None = None
        """The request last submitted, with its packing."""

    def adopt_model(self, model: LoadedModel) -> None:
        """A new model: its quality ladder, nothing pending, fresh keys."""
        self.quality = ResolutionPolicy(
            full_resolution=model.engine.G.neural_rendering_resolution,
            target_ms=self.config.target_ms,
            lock_full=self.quality.lock_full,
            bf16=self._bf16_previews(model.engine),
        )
        self.pending = None
        self._state_key = self._request_key = None

    def _bf16_previews(self, engine: RenderEngine) -> bool:
        """Whether previews render in bf16: as configured, else where the model runs on a CPU with bf16 units."""
        if self.config.bf16_previews is not None:
            return self.config.bf16_previews
        return engine.device.type == "cpu" and bool(cpu_bf16_units())

    def submit(
        self, state: VizState, model: LoadedModel | None, model_id: int, ui: UiState, capture: bool = False
    ) -> None:
        """Send the state to the render thread if it changed since the last submission; `capture`: full-quality
        frames also keep their render-side layers for the inspector."""
        if model is None:
            return
        s = state
        now = time.perf_counter()
        moved = (model_id, s.camera, s.latent_spec(), dataclasses.replace(s.cond), dataclasses.replace(s.trunc))
        if self._moved_key is not None and moved[0] == self._moved_key[0] and moved != self._moved_key:
            self.quality.note_input(now)  # the view or latent is changing: dragging, scrolling or playing
        self._moved_key = moved
        quality = self.last_quality = self._choose_quality(state, now)
        pre = (
            model_id,
            s.camera,
            s.camera_override,
            dataclasses.replace(s.cond),
            s.latent_spec(),
            dataclasses.replace(s.trunc),
            dataclasses.replace(s.view),
            s.defaults,
            quality,
            capture,
        )
        if pre == self._state_key:  # cheap check first: snapshot() builds camera tensors
            return
        self._state_key = pre
        try:
            req = state.snapshot(0)
        except ValueError as e:
            ui.render_error = f"bad settings: {e}"
            return
        v = state.view
        if v.view == "geometry":  # only the planes are needed: no new request for camera moves
            front = state.defaults.camera().to_camera()
            req = dataclasses.replace(
                req, camera=camera_tuple(front), neural_rendering_resolution=GEOMETRY_NRR, superresolution=False
            )
        elif quality is not None:  # a cheaper preview while moving (unchanged at full quality)
            req = self.quality.request_for(req, quality)
        pack = pack_view_of(v.view)
        locked = cast("tuple[float, float]", tuple(v.depth_range)) if (pack == "depth" and v.depth_locked) else None
        capture = capture and v.view != "geometry" and quality in (None, self.quality.full)  # never for previews
        key = (model_id, req, pack, locked, capture)
        if key == self._request_key:
            return
        self._request_key = key
        self.stamp += 1
        refine = quality is not None and quality == self.quality.full and not self.quality.lock_full
        self.worker.submit(
            RenderJob(
                self.stamp,
                dataclasses.replace(req, stamp=self.stamp),
                pack,
                locked,
                model.engine,
                model_id,
                quality,
                cancellable=refine,
                capture=capture,
            )
        )

    def _choose_quality(self, state: VizState, now: float) -> Quality | None:
        """The adaptive level for the next request; None where it does not apply (geometry view,
        a neural resolution the user set by hand)."""
        v = state.view
        if v.view == "geometry" or v.neural_rendering_resolution is not None:
            return None
        return self.quality.choose(now)

    def take_result(self, model_id: int, ui: UiState, log: Callable[[str], None]) -> None:
        """Take the newest finished render into `pending` (never an older one); errors go to the status line."""
        res = self.worker.poll()
        if res is None:
            return
        if res.error is not None:
            ui.render_error = f"render failed: {res.error}"
            log(ui.render_error)
            if res.details:
                log(res.details)
            return
        out: FrameOut = res.value
        if out.job.model_id != model_id:
            self.discarded += 1
            return
        if out.job.quality is not None:
            self.quality.record(out.job.quality, res.seconds * 1000.0)
        self.last_frame_ms = res.seconds * 1000.0
        ui.render_error = None
        ui.render_warning = (
            "the frame holds NaN or inf values (drawn black / far); try psi nearer 1" if out.result.nonfinite else None
        )
        if out.result.nonfinite:
            log(f"warning: frame {out.stamp} holds NaN or inf values")
        self.pending = out
