"""Turn render outputs into 8-bit frames: PNG images and the viewer's RGBA8 display texture.

Depth views travel as 16-bit depth (normalised to a near/far range) in R and G plus opacity in
B, so the display texture stays RGBA8 (what CUDA-GL interop registers) while the shader still
gets enough depth precision to compute normals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

View = Literal["image", "raw", "depth", "normals"]
VIEWS: tuple[View, ...] = ("image", "raw", "depth", "normals")

OPAQUE = 0.5
"""Accumulated opacity above which a pixel is opaque (depth ranges, the 8-bit and 16-bit depth maps);
at or below it a pixel is background: 0 in both depth maps."""


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """(3, H, W) image on [-1, 1] -> (H, W, 3) uint8, as the reference scripts convert (NaN -> 0)."""
    x = torch.nan_to_num(img.float(), nan=-1.0)
    return (x * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0)


def depth_range(depth: torch.Tensor, alpha: torch.Tensor | None = None) -> tuple[float, float]:
    """Auto range (near, far) of a depth map: over pixels with opacity > OPAQUE (0.5) when there are any."""
    d = depth.float().flatten()
    if alpha is not None:
        mask = alpha.flatten() > OPAQUE
        if bool(mask.any()):
            d = d[mask]
    d = d[torch.isfinite(d)]
    if d.numel() == 0:
        return 0.0, 1.0
    lo, hi = float(d.min()), float(d.max())
    return (lo, hi) if hi > lo else (lo, lo + 1e-6)


def depth_to_grey(depth: torch.Tensor, near: float, far: float) -> torch.Tensor:
    """(1, H, W) depth -> (H, W) uint8, near = bright, far = dark."""
    t = ((torch.nan_to_num(depth[0].float(), nan=far) - near) / max(far - near, 1e-12)).clamp(0, 1)
    return ((1 - t) * 255 + 0.5).to(torch.uint8)


def depth_grey(depth: torch.Tensor, alpha: torch.Tensor | None = None) -> torch.Tensor:
    """The 8-bit depth view: (1, H, W) depth -> (H, W) uint8, min-max normalised over the opaque pixels
    (near = 255, the farthest opaque point 0); background (opacity <= OPAQUE, or no finite depth) is 0."""
    grey = depth_to_grey(depth, *depth_range(depth, alpha))
    background = ~torch.isfinite(depth[0].float())
    if alpha is not None:
        background |= ~(alpha[0].float() > OPAQUE)
    return grey.masked_fill(background.to(grey.device), 0)


def view_pixels(
    view: str, image: torch.Tensor | None, raw: torch.Tensor, depth: torch.Tensor, alpha: torch.Tensor | None = None
) -> np.ndarray:
    """The PNG pixels of a view at its native resolution: RGB uint8 for image/raw, 8-bit grey depth
    (depth_grey: auto range over opaque pixels, near = bright, background 0) for depth; the CLI and the
    viewer's "save render"."""
    if view == "image":
        if image is None:
            raise ValueError("the image view needs the super-resolved image")
        return to_uint8(image).cpu().numpy()
    if view == "raw":
        return to_uint8(raw).cpu().numpy()
    if view == "depth":
        return depth_grey(depth, alpha).cpu().numpy()
    raise ValueError(f"view must be image, raw or depth, not {view!r}")


@dataclass(frozen=True)
class DisplayFrame:
    """An (H, W, 4) uint8 RGBA frame on the render device, plus what the shader needs to decode it."""

    rgba: torch.Tensor
    kind: Literal["rgb", "depth"]
    near: float = 0.0
    far: float = 1.0


def pack_frame(
    image: torch.Tensor | None,
    raw: torch.Tensor,
    depth: torch.Tensor,
    alpha: torch.Tensor,
    view: View,
    locked_range: tuple[float, float] | None = None,
) -> DisplayFrame:
    """Pack one render for display: RGB views as RGBA8, depth views as 16-bit depth in R,G + opacity in B."""
    if view in ("image", "raw"):
        src = image if (view == "image" and image is not None) else raw
        rgb = to_uint8(src)
        a = torch.full_like(rgb[..., :1], 255)
        return DisplayFrame(torch.cat([rgb, a], dim=-1).contiguous(), "rgb")
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, not {view!r}")
    near, far = locked_range if locked_range is not None else depth_range(depth, alpha)
    t = ((torch.nan_to_num(depth[0].float(), nan=far) - near) / max(far - near, 1e-12)).clamp(0, 1)
    q = (t * 65535 + 0.5).to(torch.int32)
    hi, lo = (q >> 8).to(torch.uint8), (q & 255).to(torch.uint8)
    a = (alpha[0].float().clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    rgba = torch.stack([hi, lo, a, torch.full_like(a, 255)], dim=-1).contiguous()
    return DisplayFrame(rgba, "depth", near, far)


def unpack_depth(frame: DisplayFrame) -> torch.Tensor:
    """Depth (H, W) float32 decoded from a depth DisplayFrame (the shader's decoding, for tests)."""
    q = frame.rgba[..., 0].int() * 256 + frame.rgba[..., 1].int()
    return frame.near + q.float() / 65535 * (frame.far - frame.near)
