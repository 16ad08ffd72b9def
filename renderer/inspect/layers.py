"""Intermediate outputs of one frame ("layers"), captured on request with thread-local forward hooks.

Hooks exist only for the duration of a capture call and record only on the capturing thread, so the
viewer's render thread can run the same modules concurrently (and pays nothing when nobody inspects).
`layer_stats` and `layer_image` turn a captured tensor into the numbers and the picture the viewer shows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn

from ..model.decoder import lookup
from ..model.volume import sample_rays


@dataclass(frozen=True)
class Layer:
    """One captured output: batch dimension removed, float32, on the CPU, detached.

    `tensor` is (C, H, W) for image-like layers, (num_ws, w_dim) for the mapping output."""

    name: str
    stage: str
    tensor: torch.Tensor

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.tensor.shape)


def _host(t: torch.Tensor) -> torch.Tensor:
    """First batch item as a detached float32 CPU copy (a copy: later in-place updates cannot change it)."""
    return t[0].detach().to("cpu", torch.float32, copy=True)


class HookRecorder:
    """Forward hooks on named modules that record outputs only when called from the thread that opened
    the recorder (`record()`); other threads running the same modules meanwhile are not recorded."""

    def __init__(self, modules: dict[str, nn.Module]):
        self.modules = modules
        self.outputs: dict[str, object] = {}
        self._thread: int | None = None

    def _hook(self, name: str):
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            if threading.get_ident() != self._thread:
                return
            self.outputs[name] = output

        return hook

    @contextmanager
    def record(self) -> Iterator[dict[str, object]]:
        """Install the hooks for the `with` body only (removed in a finally); yields the outputs dict."""
        self._thread = threading.get_ident()
        handles = [m.register_forward_hook(self._hook(name)) for name, m in self.modules.items()]
        try:
            yield self.outputs
        finally:
            for h in handles:
                h.remove()
            self._thread = None


def _block_output(outputs: dict[str, object], name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A synthesis block's recorded (x, img) output."""
    if name not in outputs:
        raise RuntimeError(f"block {name} did not run during the capture")
    return cast(tuple[torch.Tensor, torch.Tensor], outputs[name])


def capture_backbone(G, ws: torch.Tensor, noise_mode: str = "const") -> tuple[list[Layer], torch.Tensor]:
    """Run the backbone once on ws (N, num_ws, w_dim) and return its layers and the planes
    (exactly `G.planes(ws, noise_mode=noise_mode)`; layers are of the first latent).

    Layers: 'mapping.ws' (the ws given), 'backbone.b{res}.x' and 'backbone.b{res}.img' per synthesis
    block (its features and running RGB/skip sum), then 'planes' (96, P, P)."""
    synthesis = G.backbone.synthesis
    blocks = {f"b{res}": getattr(synthesis, f"b{res}") for res in synthesis.block_resolutions}
    recorder = HookRecorder(blocks)
    with recorder.record() as outputs:
        planes = G.planes(ws, noise_mode=noise_mode)
    layers = [Layer("mapping.ws", "mapping", _host(ws))]
    for name in blocks:
        x, img = _block_output(outputs, name)
        layers.append(Layer(f"backbone.{name}.x", "backbone", _host(x)))
        layers.append(Layer(f"backbone.{name}.img", "backbone", _host(img)))
    p = _host(planes)
    layers.append(Layer("planes", "planes", p.reshape(-1, p.shape[-2], p.shape[-1])))
    return layers, planes


def _camera_tensor(camera, device: torch.device) -> torch.Tensor:
    """A 25-value camera (sequence, array or tensor, on any device) as a (1, 25) float32 tensor on `device`. A
    tensor is moved, never read through numpy, which cannot read a GPU tensor (capture_render hands frame_layers
    its own)."""
    if isinstance(camera, torch.Tensor):
        c = camera.detach().to(device=device, dtype=torch.float32).reshape(-1)
    else:
        c = torch.as_tensor(np.asarray(camera, dtype=np.float32).reshape(-1), device=device)
    if c.numel() != 25:
        raise ValueError("a camera is 25 numbers (16 cam2world + 9 intrinsics)")
    return c[None]


def decoder_hidden(G, planes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """The decoder MLP's hidden features (post-softplus) at world points (K, 3) of planes[0] -> (K, hidden)."""
    table = G._plane_table(planes, 0)
    decode = G.decoder.rows(points.device)
    h = torch.addmm(decode.b0, lookup(table, points), decode.w0)
    return torch.nn.functional.softplus(h)


def superres_recorder(G) -> HookRecorder | None:
    """A recorder of the super-resolution blocks' outputs (None for a model without super-resolution): open it
    around a render on the render thread to capture 'superres.*' at no extra cost."""
    sr = getattr(G, "superresolution", None)
    return None if sr is None else HookRecorder({"block0": sr.block0, "block1": sr.block1})


def frame_layers(
    G,
    planes: torch.Tensor,
    camera: Sequence[float] | np.ndarray | torch.Tensor,
    rendered: dict[str, torch.Tensor],
    sr_outputs: dict[str, object] | None = None,
) -> list[Layer]:
    """The render-side layers of a frame already rendered: `rendered` holds its 'features' (N, 32, r, r),
    'image_raw', 'image_depth', 'image_alpha' and optionally 'image' (the super-resolved output); `sr_outputs`
    what superres_recorder recorded during it. Only 'decoder.hidden' costs work: one decoder layer at one
    point per ray.

    'decoder.hidden' (64, r, r) is the decoder MLP's hidden (post-softplus) features at each ray's
    expected termination point, origin + depth * direction with the rendered depth (the MLP runs at
    many samples per ray; this is the one point that stands for the pixel). Then 'render.features'
    (32, r, r), 'render.image_raw', 'render.depth', 'render.alpha', and with super-resolution
    'superres.block{0,1}.{x,img}' and 'image' (3, R, R)."""
    c = _camera_tensor(camera, planes.device)
    res = int(rendered["image_depth"].shape[-1])
    origins, dirs = sample_rays(c[:, :16].view(-1, 4, 4), c[:, 16:25].view(-1, 3, 3), res)
    depth = rendered["image_depth"][0].reshape(-1, 1).to(origins.dtype)
    with torch.no_grad():
        hidden = decoder_hidden(G, planes, origins[0] + depth * dirs[0])
    layers = [Layer("decoder.hidden", "render", _host(hidden.t().reshape(1, -1, res, res)))]
    for key, name in (
        ("features", "render.features"),
        ("image_raw", "render.image_raw"),
        ("image_depth", "render.depth"),
        ("image_alpha", "render.alpha"),
    ):
        layers.append(Layer(name, "render", _host(rendered[key])))
    if rendered.get("image") is not None:
        if sr_outputs is not None and {"block0", "block1"} <= set(sr_outputs):  # (a CUDA graph replay records none)
            for name in ("block0", "block1"):
                x, img = _block_output(sr_outputs, name)
                img = G.superresolution.skip_out(img)  # the blocks' images run relative to a declared background
                layers.append(Layer(f"superres.{name}.x", "superres", _host(x)))
                layers.append(Layer(f"superres.{name}.img", "superres", _host(img)))
        layers.append(Layer("image", "output", _host(rendered["image"])))
    return layers


def capture_render(
    G,
    planes: torch.Tensor,
    ws: torch.Tensor,
    camera: Sequence[float] | np.ndarray | torch.Tensor,
    neural_rendering_resolution: int | None = None,
    superresolution: bool = True,
) -> list[Layer]:
    """Render cached planes from one camera (deterministic sampling, no backbone run) and return its layers
    (frame_layers): the values `G.render_planes` and `G.superresolve` return, and what lies between."""
    c = _camera_tensor(camera, planes.device)
    res = int(neural_rendering_resolution or G.neural_rendering_resolution)
    out = dict(
        G.render_planes(planes, ws, c, sampling="deterministic", neural_rendering_resolution=res, superresolution=False)
    )
    recorder = superres_recorder(G) if superresolution else None
    if recorder is None:
        return frame_layers(G, planes, c, out)
    with recorder.record() as outputs:
        out["image"] = G.superresolve(out, ws)
    return frame_layers(G, planes, c, out, outputs)


def layer_stats(t: torch.Tensor) -> dict[str, float]:
    """mean, std (population: ddof 0, as numpy's default), min and max of all values, computed in float64."""
    x = t.detach().to("cpu", torch.float64).reshape(-1)
    if x.numel() == 0:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan"), "max": float("nan")}
    return {
        "mean": float(x.mean()),
        "std": float(x.std(correction=0)),
        "min": float(x.min()),
        "max": float(x.max()),
    }


@dataclass(frozen=True)
class LayerView:
    """How a layer is shown: `channel` (the first of three with `rgb`), divided by the shown channels' std
    when `normalize`, times 10**(scale_db/20); or its magnitude spectrum with `fft`."""

    channel: int = 0
    rgb: bool = False
    normalize: bool = True
    scale_db: float = 0.0
    fft: bool = False


def _as_chw(t: torch.Tensor) -> np.ndarray:
    """A layer tensor as (C, H, W) float64: 2-D (num_ws, w_dim) as one channel (rows = ws)."""
    x = t.detach().to("cpu", torch.float64).numpy()
    if x.ndim == 3:
        return x
    if x.ndim == 2:
        return x[None]
    if x.ndim == 1:
        return x[None, None]
    return x.reshape(-1, x.shape[-2], x.shape[-1])


def channels(t: torch.Tensor) -> int:
    """Channels a layer can show: C of a (C, H, W) tensor, 1 for a 2-D one."""
    return _as_chw(t).shape[0]


def shown_channels(t: torch.Tensor, view: LayerView) -> list[int]:
    """The channel indices a view shows: one, or three from `channel` (start clamped to the last valid one);
    fewer than three channels in rgb mode show the one selected as grey."""
    c = channels(t)
    if view.rgb and c >= 3:
        start = min(max(view.channel, 0), c - 3)
        return [start, start + 1, start + 2]
    return [min(max(view.channel, 0), c - 1)]


def spectrum(x: np.ndarray) -> np.ndarray:
    """Log magnitude spectra of (K, H, W) channels, centred (fftshift), normalised together to [0, 1]."""
    mag = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(x), axes=(-2, -1))))
    lo, hi = float(mag.min()), float(mag.max())
    return (mag - lo) / (hi - lo) if hi > lo else np.zeros_like(mag)


def layer_image(t: torch.Tensor, view: LayerView) -> np.ndarray:
    """A layer as an (H, W, 3) uint8 image.

    Values: divided by the std of the shown channels (if `normalize`), times 10**(scale_db/20), then
    v -> (v + 1) * 127.5 clipped to [0, 255] (so -1 is black, 0 mid-grey, 1 white). With `fft` the shown
    channels' log magnitude spectrum on [0, 1] (`spectrum`) -> [0, 255] instead (scale and normalize unused).
    """
    x = _as_chw(t)[shown_channels(t, view)]
    if view.fft:
        pix = spectrum(x) * 255.0
    else:
        if view.normalize:
            std = float(x.std())
            x = x / std if std > 0 and np.isfinite(std) else x
        x = x * 10 ** (view.scale_db / 20)
        pix = (x + 1) * 127.5
    img = np.clip(np.nan_to_num(pix, nan=0.0), 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(
        np.repeat(img, 3, axis=0).transpose(1, 2, 0) if len(img) == 1 else img.transpose(1, 2, 0)
    )
