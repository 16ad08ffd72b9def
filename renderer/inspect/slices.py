"""Density and colour cross-sections of the volume, from cached tri-planes (no backbone run).

Axis-aligned slices span the model's box [-box_warp/2, box_warp/2] on the other two axes and are seen
from the positive side of their axis, upright: 'z' has x right and y up (the frontal view), 'x' has
-z right and y up (seen from +x), 'y' has x right and -z up (seen from above, the front at the bottom).
A 'camera' slice faces the camera: its right and up vectors (OpenCV cam2world: x right, y down,
z forward), through pivot + position * forward, one box side wide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

SLICE_AXES = ("x", "y", "z", "camera")
_FRAMES = {  # axis -> (normal, right, up)
    "x": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0)),
    "y": ((0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "z": ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
}
VIRIDIS = np.array(
    [
        (68, 1, 84),
        (72, 40, 120),
        (62, 74, 137),
        (49, 104, 142),
        (38, 130, 142),
        (31, 158, 137),
        (53, 183, 121),
        (110, 206, 88),
        (181, 222, 43),
        (253, 231, 37),
    ],
    dtype=np.float64,
)
"""Viridis at 10 evenly spaced stops (interpolated linearly): a perceptually uniform map, no matplotlib."""
CONTOUR_COLOUR = (255, 48, 48)
"""The iso-level contour's colour: red, apart from every viridis colour."""


@dataclass(frozen=True)
class SliceSpec:
    """Which cross-section: an axis, a position along it (world units; for 'camera' along the view
    direction from the pivot) and the image size in pixels (square)."""

    axis: Literal["x", "y", "z", "camera"] = "z"
    position: float = 0.0
    resolution: int = 128


def slice_frame(G, spec: SliceSpec, camera=None, pivot: Sequence[float] = (0, 0, 0)):
    """(centre, right, up, half-width) of a slice in world units (right and up unit vectors)."""
    if spec.axis not in SLICE_AXES:
        raise ValueError(f"slice axis must be one of {', '.join(SLICE_AXES)}, not {spec.axis!r}")
    if spec.resolution < 1:
        raise ValueError(f"slice resolution must be >= 1, got {spec.resolution}")
    half = float(G.rendering_kwargs["box_warp"]) / 2
    if spec.axis == "camera":
        if camera is None:
            raise ValueError("a 'camera' slice needs the 25-value camera")
        c2w = np.asarray(camera.detach().cpu() if isinstance(camera, torch.Tensor) else camera, np.float64)
        c2w = c2w.reshape(-1)[:16].reshape(4, 4)
        right, up, forward = c2w[:3, 0], -c2w[:3, 1], c2w[:3, 2]
        centre = np.asarray(pivot, np.float64) + spec.position * forward
        return centre, right / np.linalg.norm(right), up / np.linalg.norm(up), half
    normal, right, up = (np.array(v) for v in _FRAMES[spec.axis])
    return normal * spec.position, right, up, half


def slice_points(G, spec: SliceSpec, camera=None, pivot: Sequence[float] = (0, 0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """World points at the pixel centres (H, W, 3) float32, row 0 at the top, and the quad's corners (4, 3)
    in order top-left, top-right, bottom-right, bottom-left (the slice's outer edges)."""
    centre, right, up, half = slice_frame(G, spec, camera, pivot)
    n = spec.resolution
    s = ((2 * np.arange(n) + 1) / n - 1) * half  # pixel centres, left to right / bottom to top
    points = centre + s[None, :, None] * right + s[::-1, None, None] * up
    corners = np.stack([centre + half * (a * right + b * up) for a, b in ((-1, 1), (1, 1), (1, -1), (-1, -1))])
    return points.astype(np.float32), corners


@dataclass
class DensitySlice:
    """A slice's points and what the decoder gives there."""

    spec: SliceSpec
    points: np.ndarray
    """(H, W, 3) world points."""
    sigma: np.ndarray
    """(H, W) raw pre-activation density."""
    rgb: np.ndarray
    """(H, W, 3) decoded colour on [0, 1]: the decoder's first three colour features (as the raw render shows them)."""
    corners: np.ndarray
    """(4, 3) top-left, top-right, bottom-right, bottom-left."""


def density_slice(
    G, planes: torch.Tensor, spec: SliceSpec, camera=None, pivot: Sequence[float] = (0, 0, 0)
) -> DensitySlice:
    """Sample the decoder on a slice with `G.sample` from cached planes (the first latent's)."""
    points, corners = slice_points(G, spec, camera, pivot)
    h, w, _ = points.shape
    pts = torch.from_numpy(points.reshape(1, -1, 3)).to(planes.device)
    out = G.sample(pts, planes[:1])
    sigma = out["sigma"][0, :, 0].to("cpu", torch.float32).numpy().reshape(h, w)
    rgb = out["rgb"][0, :, :3].to("cpu", torch.float32).numpy().reshape(h, w, 3)
    return DensitySlice(spec=spec, points=points, sigma=sigma, rgb=np.clip(rgb, 0, 1), corners=corners)


def colour_map(t: np.ndarray) -> np.ndarray:
    """Values on [0, 1] (clipped; NaN -> 0) -> (..., 3) uint8 through VIRIDIS."""
    x = np.clip(np.nan_to_num(np.asarray(t, np.float64), nan=0.0), 0, 1) * (len(VIRIDIS) - 1)
    i = np.minimum(x.astype(int), len(VIRIDIS) - 2)
    f = (x - i)[..., None]
    return (VIRIDIS[i] * (1 - f) + VIRIDIS[i + 1] * f).round().astype(np.uint8)


def contour_mask(sigma: np.ndarray, level: float) -> np.ndarray:
    """(H, W) bool: pixels at or above the level with a 4-neighbour below it (the inner edge of the
    level set, one pixel wide; NaN counts as below)."""
    above = np.nan_to_num(sigma, nan=-np.inf) >= level
    below = ~above
    edge = np.zeros_like(above)
    edge[1:] |= below[:-1]
    edge[:-1] |= below[1:]
    edge[:, 1:] |= below[:, :-1]
    edge[:, :-1] |= below[:, 1:]
    return above & edge


def density_range(sigma: np.ndarray, level: float, vmax: float | None = None) -> tuple[float, float]:
    """The colour map's (low, high) on raw sigma: the 1st percentile (at most the level) to `vmax`
    (default the 99th percentile, at least a little above the level)."""
    finite = sigma[np.isfinite(sigma)]
    lo = min(float(np.percentile(finite, 1)), level) if finite.size else level - 1
    hi = float(vmax) if vmax is not None else (float(np.percentile(finite, 99)) if finite.size else level + 1)
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def slice_image(s: DensitySlice, level: float, vmax: float | None = None) -> np.ndarray:
    """(H, W, 3) uint8: raw density through VIRIDIS on `density_range`, with the iso-level contour
    (`contour_mask`) in CONTOUR_COLOUR."""
    lo, hi = density_range(s.sigma, level, vmax)
    img = colour_map((s.sigma.astype(np.float64) - lo) / (hi - lo))
    img[contour_mask(s.sigma, level)] = CONTOUR_COLOUR
    return img


def slice_colour_image(s: DensitySlice) -> np.ndarray:
    """(H, W, 3) uint8 decoded colour (colour * 255, rounded)."""
    return (np.clip(s.rgb, 0, 1) * 255).round().astype(np.uint8)
