"""CUDA-graph replay of the camera-only frame on a GPU.

A camera-only frame at a fixed resolution and sample count has fixed shapes and, in
deterministic mode, no host synchronisation, so its few hundred kernels can be captured once
per (planes, ws, render options) and replayed with a single launch: the camera goes into a
static input tensor. A key is captured only after it was rendered eagerly `warm_frames` times
in a row (an orbit or a drag, not a one-off frame). The first replay after a capture (a new
camera) is checked against an eager render of the same camera; a mismatch or any capture error
switches graphs off for the engine's lifetime, with the reason in `disabled`, and frames render
eagerly as before.

What keeps a replay right (issue 14's D1-D3 and R1; the README's "The GPU path"):

* **A graph owns every tensor whose address it baked in (D1).** A graph keeps alive only what it
  allocated during its capture; it reads everything else (parameters, planes, ws, the static
  camera, the planes' lookup table from `TriPlaneGenerator._plane_table`'s 2-entry LRU, autocast's
  cached bf16 weights, ...) at the addresses it saw. While a frame is captured, FrameGraphs records
  every tensor an operation reads that the same render call did not make itself (`_Pins`), and the
  captured frame holds them (`_Captured.keep`) for as long as it can be replayed. Visiting other
  latents can evict the table from the LRU; the graph's reference keeps its memory from being freed
  and reused.
* **A failed capture leaves the caller's stream current (D2).** torch's graph context ends the
  capture before it restores the stream, so a capture that fails inside (a host synchronisation,
  say) would leave its side stream current on the render thread; `capture_cuda` restores the
  caller's stream whatever happens. Frames that synchronise with the host are not captured at all
  (`capturable`: models with 'auto' ray limits).
* **One capture at a time, isolated from other threads (D3).** `capture_cuda` captures on a stream
  of its own with `capture_error_mode="thread_local"` (CUDA calls of other threads, such as the GUI's
  upload or an exporter's synchronisation, are not errors for this capture), under a process-wide
  lock (`CAPTURE_LOCK`). The viewer's export engine runs without graphs.
* **Replay-vs-eager tolerance (R1).** `_same` allows 8 units in the last place of each output's
  precision, and never less than 1e-3: 1e-3 for the fp32 render outputs, 8 * 2^-10 ~ 7.8e-3 (one step
  of the 8-bit display) for the super-resolved image, whose blocks run in fp16 on a GPU, and
  8 * 2^-7 for bf16 previews. cuDNN may pick another algorithm for the same convolution, so replay
  and eager can differ by a few fp16 units; a stale or wrong replay differs by far more.
* **Precision settings are part of the key.** A capture freezes the kernels chosen under torch's
  precision settings (TF32, matmul precision) and the lookup's exact/elementwise branch
  (renderer.model.decoder); changing a setting re-captures instead of replaying the old kernels.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

Frame = tuple[dict, "torch.Tensor | None"]
"""render_planes' outputs (superresolution=False) and the super-resolved image (or None)."""

CAPTURE_LOCK = threading.Lock()
"""Held by capture_cuda from its warm-up to the end of its capture: one capture at a time in the process
(torch: "only one capture may be underway at a time in the process")."""

REPLAY_ULPS = 8
"""Replay-vs-eager tolerance in units in the last place of the output's precision (floor 1e-3)."""


@dataclass
class _Captured:
    key: tuple
    planes: torch.Tensor
    ws: torch.Tensor
    camera: torch.Tensor
    """Static (1, 25) input the graph reads."""
    replay: Callable[[], None]
    frame: Frame
    """Static outputs the graph writes."""
    keep: tuple = ()
    """Every tensor the captured render read but did not make (D1): held while the graph can replay."""
    verified: bool = False


class _Pins(TorchDispatchMode):
    """Records the tensors that operations read which the same call did not make (see `recording`)."""

    def __init__(self):
        super().__init__()
        self.tensors: dict[int, torch.Tensor] = {}
        """id -> tensor, strong references: what a graph captured in these calls reads from outside."""
        self._made: set[int] = set()

    def recording(self, render: Callable) -> Callable:
        """render, recording the outside tensors each call reads (a fresh 'made' set per call: a table
        rebuilt in a warm-up call and read by the captured call counts as outside for the latter)."""

        def call(*args, **kwargs):
            self._made = set()
            with self:
                return render(*args, **kwargs)

        return call

    @staticmethod
    def _address(t: torch.Tensor) -> int | None:
        try:
            return t.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError):  # no storage (not in this renderer): keep it anyway
            return None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        for x in tree_flatten((args, kwargs))[0]:
            if isinstance(x, torch.Tensor) and id(x) not in self.tensors:
                address = self._address(x)
                if address is None or address not in self._made:
                    self.tensors[id(x)] = x
        out = func(*args, **kwargs)
        for y in tree_flatten(out)[0]:
            if isinstance(y, torch.Tensor):
                address = self._address(y)
                if address is not None:
                    self._made.add(address)
        return out


def _clone(frame: Frame) -> Frame:
    out, image = frame
    return {k: v.clone() for k, v in out.items()}, (image.clone() if image is not None else None)


def _tolerance(x: torch.Tensor, at_least: torch.dtype = torch.float32) -> float:
    """REPLAY_ULPS units in the last place of x's precision (or of `at_least`, if coarser), at least 1e-3."""
    eps = max(torch.finfo(x.dtype).eps if x.dtype.is_floating_point else 0.0, torch.finfo(at_least).eps)
    return max(1e-3, REPLAY_ULPS * eps)


def _same(a: Frame, b: Frame) -> bool:
    """Whether two frames agree within the replay tolerance (R1; NaN where the other has NaN too).

    The super-resolved image is held to fp16's precision: its blocks run in fp16 on CUDA."""
    pairs = [(a[0][k], b[0][k], torch.float32) for k in ("image_raw", "image_depth", "image_alpha")]
    if (a[1] is None) != (b[1] is None):
        return False
    if a[1] is not None:
        pairs.append((a[1], b[1], torch.float16))
    for x, y, at_least in pairs:
        tol = max(_tolerance(x, at_least), _tolerance(y, at_least))
        if x.shape != y.shape or not torch.allclose(x.float(), y.float(), rtol=tol, atol=tol, equal_nan=True):
            return False
    return True


def _precision_key() -> tuple:
    """torch's precision settings as they are now (a setting torch refuses to read reads as its error)."""
    b = torch.backends
    readers = (
        torch.get_float32_matmul_precision,
        lambda: b.cuda.matmul.allow_tf32,
        lambda: b.cudnn.allow_tf32,
        lambda: b.fp32_precision,  # type: ignore[attr-defined]  # torch >= 2.9, not in stubs
        lambda: b.cuda.matmul.fp32_precision,
        lambda: b.cudnn.conv.fp32_precision,  # type: ignore[attr-defined]  # torch >= 2.9, not in stubs
        lambda: b.mkldnn.matmul.fp32_precision,  # type: ignore[attr-defined]  # torch >= 2.9, not in stubs
        lambda: b.mkldnn.conv.fp32_precision,  # type: ignore[attr-defined]  # torch >= 2.9, not in stubs
        lambda: b.cuda.matmul.allow_fp16_reduced_precision_reduction,
        lambda: b.cuda.matmul.allow_bf16_reduced_precision_reduction,
    )
    values = []
    for read in readers:
        try:
            values.append(read())
        except Exception as e:  # noqa: BLE001 - AttributeError in older torch, RuntimeError for mixed APIs
            values.append(type(e).__name__)
    return tuple(values)


def capturable(G) -> bool:
    """Whether G's camera-only frame runs without host synchronisation, so it can be captured (D2).

    'auto' ray limits (ShapeNet-style models) pick their depth range with data-dependent indexing
    (renderer.model.volume.stratified_depths), which synchronises with the host: never captured."""
    rk = G.rendering_kwargs
    return not (isinstance(rk.get("ray_start"), str) or isinstance(rk.get("ray_end"), str))


def capture_cuda(render: Callable[[torch.Tensor], Frame], camera: torch.Tensor, warmup: int = 2, cuda=None):
    """Capture render(static camera) into a CUDA graph; returns (static camera, replay, static outputs).

    Warm-up and capture run on a side stream of their own, the capture in thread-local mode, under
    CAPTURE_LOCK (D3). The caller's stream is current again afterwards whether or not the capture
    succeeded (D2). `cuda` stands for torch.cuda (tests pass a stand-in)."""
    cuda = torch.cuda if cuda is None else cuda
    device = camera.device
    with CAPTURE_LOCK, cuda.device(device):
        caller = cuda.current_stream(device)
        try:
            static = camera.clone()
            side = cuda.Stream(device)
            side.wait_stream(caller)
            with cuda.stream(side):  # library workspaces (cuBLAS, cuDNN) are set up outside the capture
                for _ in range(warmup):
                    render(static)
            caller.wait_stream(side)
            graph = cuda.CUDAGraph()
            with cuda.graph(graph, stream=side, capture_error_mode="thread_local"):
                frame = render(static)
        finally:  # torch's graph.__exit__ skips restoring the stream when capture_end raises
            cuda.set_stream(caller)
    return static, graph.replay, frame


class FrameGraphs:
    """One captured camera-only frame at a time (see the module docstring)."""

    def __init__(self, warm_frames: int = 2, capture=capture_cuda):
        self.warm_frames = warm_frames
        self.capture = capture
        self.current: _Captured | None = None
        self.disabled: str | None = None
        self.replays = 0
        self.captures = 0
        self._seen: tuple | None = None
        self._count = 0

    def frame(
        self,
        key: tuple,
        planes: torch.Tensor,
        ws: torch.Tensor,
        camera: torch.Tensor,
        render: Callable[[torch.Tensor], Frame],
    ) -> Frame:
        """The frame for `camera`: replayed when `key` (with these very planes and ws, under the same precision
        settings) is captured, else rendered eagerly by `render` (capturing once the key has been seen
        warm_frames times in a row)."""
        key = (key, _precision_key())
        g = self.current
        if self.disabled is None and g is not None and g.key == key and g.planes is planes and g.ws is ws:
            g.camera.copy_(camera)
            g.replay()
            self.replays += 1
            if not g.verified:  # once per capture: the replay must follow the camera like an eager frame
                eager = render(camera)
                if not _same(g.frame, eager):
                    self.current, self.disabled = None, "CUDA graphs off: a replayed frame differs from the eager one"
                    return eager
                g.verified = True
            return _clone(g.frame)
        eager = render(camera)
        if self.disabled is not None:
            return eager
        full_key = (key, id(planes), id(ws))
        self._count = self._count + 1 if full_key == self._seen else 1
        self._seen = full_key
        if self._count >= self.warm_frames:
            self._capture(key, planes, ws, camera, render, eager)
        return eager

    def _capture(self, key, planes, ws, camera, render, eager: Frame) -> None:
        self.current = None  # the previous graph's memory goes back first
        pins = _Pins()
        try:
            static, replay, frame = self.capture(pins.recording(render), camera)
        except Exception as e:  # noqa: BLE001 - any failure means: render eagerly from now on
            self.disabled = f"CUDA graphs off: {e}"
            return
        self.captures += 1
        self.current = _Captured(key, planes, ws, static, replay, frame, keep=tuple(pins.tensors.values()))
