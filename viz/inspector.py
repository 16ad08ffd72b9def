"""The inspector without GL: what it shows (InspectorState) and the work behind it (Inspector).

Backbone layer captures, the planes' PCA and density slices run on a background thread from the tri-planes and ws
of the frame on screen, and are cached by what they depend on: the backbone re-runs (with capture hooks) only when
the latent changes, never for a camera move; a slice move samples the cached planes. Render-side layers (decoder,
raw render, super-resolution) are recorded by the render thread during the full-quality frame itself while the
layers tab shows (RenderJob.capture), so a camera move costs no second render; only their statistics are computed
here. The pixel probe (one point) runs on the UI thread.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from renderer.inspect.layers import Layer, LayerView, capture_backbone, layer_stats
from renderer.inspect.planes import PlanePCA, fit_pca, pca_images
from renderer.inspect.probe import Probe, probe_pixel
from renderer.inspect.slices import DensitySlice, SliceSpec, density_slice

from .jobs.worker import LatestWinsWorker

if TYPE_CHECKING:
    from renderer.model.generator import TriPlaneGenerator

    from .resolution import Quality
    from .session import FrameOut

Tab = Literal["layers", "planes", "slices"]
TABS: tuple[Tab, ...] = ("layers", "planes", "slices")
Kind = Literal["backbone", "render", "pca", "slice"]


@dataclass
class InspectorState:
    """The inspector window's choices (UI thread)."""

    open: bool = False
    tab: Tab = "layers"
    layer: str | None = None
    """The selected layer's name (None: the first)."""
    layer_view: LayerView = field(default_factory=LayerView)
    plane_mode: Literal["pca", "channel"] = "pca"
    plane_channel: int = 0
    slice: SliceSpec = field(default_factory=SliceSpec)
    slice_level: float | None = None
    """Iso level of the slice's contour; None: the model's mesh level."""
    slice_in_view: bool = True
    """Draw the slice's plane into the render area."""
    probe: bool = True
    """Hovering the render shows the pixel probe."""


@dataclass(frozen=True)
class Source:
    """What the inspector reads of the frame on screen: its planes, ws and camera, and the keys they depend on."""

    G: TriPlaneGenerator
    planes: torch.Tensor
    ws: torch.Tensor
    camera: tuple
    noise_mode: str
    neural_rendering_resolution: int | None
    latent_key: tuple
    """(model id, latent, psi, cutoff, conditioning camera, noise): what the planes depend on."""
    at_rest: bool
    """The frame is a full-quality one (not a preview while the view moves)."""
    layers: list[Layer] | None
    """The frame's render-side layers, recorded by the render thread during the frame (None: not asked for)."""
    stamp: int


def source_of(out: FrameOut | None, G: TriPlaneGenerator | None, model_id: int, full: Quality) -> Source | None:
    """The inspector's view of the frame on screen (None without a frame of the current model); `full` is the
    adaptive policy's full-quality level (frames at other levels are previews of a moving view)."""
    if out is None or G is None or out.job.model_id != model_id or out.result.planes is None:
        return None
    req = out.job.request
    latent_key = (model_id, req.latent, req.psi, req.cutoff, req.cond_camera, req.noise_mode)
    quality = out.job.quality
    return Source(
        G,
        out.result.planes,
        out.result.ws,
        tuple(req.camera),
        req.noise_mode,
        req.neural_rendering_resolution,
        latent_key,
        at_rest=out.job.pack_view != "geometry" and quality in (None, full),
        layers=out.layers,
        stamp=out.stamp,
    )


@dataclass(frozen=True)
class LayerCapture:
    """Captured layers with their statistics (computed once, off the UI thread)."""

    layers: tuple[Layer, ...]
    stats: tuple[dict[str, float], ...]

    def find(self, name: str | None) -> tuple[Layer, dict[str, float]] | None:
        for layer, stats in zip(self.layers, self.stats):
            if layer.name == name:
                return layer, stats
        return None


@dataclass(frozen=True)
class PlaneProjection:
    """A latent's PCA fit and the three planes' images under it."""

    pca: PlanePCA
    images: np.ndarray
    """(3, P, P, 3) uint8."""


@dataclass(frozen=True)
class InspectJob:
    """Work for the inspector thread: the missing (kind, key) entries for one source."""

    stamp: int
    tasks: tuple[tuple[Kind, tuple], ...]
    source: Source
    slice: SliceSpec


def _captured(layers: list[Layer]) -> LayerCapture:
    return LayerCapture(tuple(layers), tuple(layer_stats(layer.tensor) for layer in layers))


class Inspector:
    """The inspector's caches and background thread; `update` (once per UI frame) asks for what the window shows."""

    def __init__(self, on_done: Callable[[], None] | None = None):
        self.state = InspectorState()
        self._lock = threading.Lock()
        self._cache: dict[Kind, tuple[tuple, Any]] = {}
        self.errors: dict[Kind, str] = {}
        """The last failure of each kind of work (one line; shown in its tab)."""
        self.runs: dict[Kind, int] = {"backbone": 0, "render": 0, "pca": 0, "slice": 0}
        """How often each kind of work ran (tests: a camera move runs no backbone capture)."""
        self.source: Source | None = None
        self._stamp = 0
        self._submitted: tuple | None = None
        self._probe: tuple[tuple, Probe | None] | None = None
        self.shown_stats: dict[str, float] | None = None
        """The statistics the layers tab shows this frame (tests compare them with an offline computation)."""
        self.hovered_texel: tuple[int, Any] | None = None
        """(plane, TexelInfo) under the mouse in the tri-planes tab this frame (tests)."""
        self.probed: Probe | None = None
        """The pixel probe shown this frame (tests)."""
        self.outline: list[tuple[float, float]] | None = None
        """Window coordinates of the slice quad drawn over the render (tests)."""
        self.tab_shown: str | None = None
        """The tab the window drew last frame (a different `state.tab` selects that tab)."""
        self._version = self._seen = 0
        self.worker: LatestWinsWorker[InspectJob] = LatestWinsWorker(self._run, name="inspector", on_done=on_done)

    def stop(self) -> None:
        self.worker.stop()

    # ----------------------------------------------------------------- keys and cached results
    def keys(self, src: Source) -> dict[Kind, tuple]:
        """What each kind of result depends on, for this source and the current choices."""
        s = self.state
        slice_key = (s.slice, src.camera) if s.slice.axis == "camera" else (s.slice,)
        return {
            "backbone": src.latent_key,
            "render": src.latent_key + (src.stamp,),
            "pca": src.latent_key,
            "slice": src.latent_key + slice_key,
        }

    def result(self, kind: Kind, key: tuple | None = None) -> Any:
        """The cached result of `kind` (for `key` when given; None if it is another key's or missing)."""
        with self._lock:
            hit = self._cache.get(kind)
        if hit is None or (key is not None and hit[0] != key):
            return None
        return hit[1]

    def current(self, kind: Kind) -> Any:
        """The cached result of `kind` for the frame on screen (None while it is being computed)."""
        return None if self.source is None else self.result(kind, self.keys(self.source)[kind])

    def wanted(self, src: Source) -> list[Kind]:
        """The kinds of work the open tab needs."""
        s = self.state
        if s.tab == "layers":
            return ["backbone", "render"] if src.layers is not None else ["backbone"]
        if s.tab == "planes":
            return ["pca"] if s.plane_mode == "pca" else []
        return ["slice"]

    # ----------------------------------------------------------------- per UI frame
    def update(self, out: FrameOut | None, G: TriPlaneGenerator | None, model_id: int, full: Quality) -> None:
        """Follow the frame on screen and queue what the open tab lacks (nothing while the window is closed)."""
        self.source = src = source_of(out, G, model_id, full)
        if not self.state.open or src is None:
            return
        keys = self.keys(src)
        missing = tuple((k, keys[k]) for k in self.wanted(src) if self.result(k, keys[k]) is None)
        if not missing or missing == self._submitted:
            return
        self._submitted = missing
        self._stamp += 1
        self.worker.submit(InspectJob(self._stamp, missing, src, self.state.slice))

    @property
    def wants_frame_layers(self) -> bool:
        """Whether full-quality frames should keep their render-side layers (the layers tab is showing)."""
        return self.state.open and self.state.tab == "layers"

    @property
    def busy(self) -> bool:
        return self.worker.busy

    def has_news(self) -> bool:
        """Whether work finished (or failed) since the window last drew the inspector."""
        return self._version != self._seen

    def seen(self) -> None:
        """The window is about to draw what the caches hold now."""
        self._seen = self._version

    def _run(self, job: InspectJob) -> None:
        """On the inspector thread: compute each task, store it, note a failure (the other tasks still run)."""
        src = job.source
        for kind, key in job.tasks:
            try:
                value = self._compute(kind, src, job.slice)
            except Exception as e:  # shown in the tab; the viewer keeps running
                with self._lock:
                    self.errors[kind] = f"{type(e).__name__}: {e}"
                    self._version += 1
                traceback.print_exc()
                continue
            with self._lock:
                self._cache[kind] = (key, value)
                self.runs[kind] += 1
                self.errors.pop(kind, None)
                self._version += 1

    def _compute(self, kind: Kind, src: Source, spec: SliceSpec) -> Any:
        G = src.G
        if kind == "backbone":
            layers, _ = capture_backbone(G, src.ws, noise_mode=src.noise_mode)
            return _captured(layers)
        if kind == "render":  # the frame's own layers (recorded while it rendered): only their statistics here
            assert src.layers is not None  # wanted() asks for 'render' only then
            return _captured(src.layers)
        if kind == "pca":
            pca = fit_pca(src.planes)
            return PlaneProjection(pca, pca_images(src.planes, pca))
        pivot = tuple(float(v) for v in G.rendering_kwargs.get("avg_camera_pivot", (0.0, 0.0, 0.0)))
        return density_slice(G, src.planes, spec, camera=src.camera, pivot=pivot)

    # ----------------------------------------------------------------- layers
    def layers(self) -> list[tuple[Layer, dict[str, float]]]:
        """Every captured layer of the frame on screen, backbone then render side (the render side only once the
        view rests)."""
        out: list[tuple[Layer, dict[str, float]]] = []
        for kind in ("backbone", "render"):
            cap = self.current(kind)
            if cap is not None:
                out += list(zip(cap.layers, cap.stats))
        return out

    def slice(self) -> DensitySlice | None:
        return self.current("slice")

    # ----------------------------------------------------------------- probe
    def probe_frame(self, out: FrameOut, x: int, y: int) -> Probe | None:
        """Probe pixel (x, y) of the shown frame `out` (its depth map's resolution), caching the answer."""
        src = self.source
        if src is None:
            return None
        key = (id(src.planes), src.camera, x, y)
        if self._probe is None or self._probe[0] != key:
            r = out.result
            self._probe = (key, probe_pixel(src.G, src.planes, src.camera, r.depth, r.alpha, x, y))
        return self._probe[1]
