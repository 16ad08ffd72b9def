"""The pixel probe: for one pixel of a render, the ray, where it stops and what the decoder gives there."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..model.volume import sample_rays


@dataclass(frozen=True)
class Probe:
    """One pixel (x = column, y = row) of an r x r render."""

    pixel: tuple[int, int]
    depth: float
    """The render's depth: distance along the (unit) ray."""
    opacity: float
    """The render's accumulated opacity."""
    origin: np.ndarray
    direction: np.ndarray
    """(3,) unit direction, exactly the ray renderer.model.volume.sample_rays makes for the pixel."""
    point: np.ndarray
    """(3,) origin + depth * direction: where the ray stops."""
    sigma: float
    """Raw pre-activation density at the point."""
    density: float
    """softplus(sigma - 1): the ray marcher's density activation (renderer.model.volume.march_weights)."""
    rgb: np.ndarray
    """(3,) decoded colour on [0, 1] at the point."""


def _map(m: torch.Tensor | np.ndarray) -> np.ndarray:
    """A (1, r, r) or (r, r) map as an (r, r) float64 array."""
    a = np.asarray(m.detach().cpu() if isinstance(m, torch.Tensor) else m, np.float64)
    a = a.reshape(a.shape[-2], a.shape[-1])
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"a render map is square, got {a.shape}")
    return a


def probe_pixel(G, planes: torch.Tensor, camera, depth, alpha, x: int, y: int) -> Probe:
    """Probe pixel (x, y) of a render from `camera` (25 values) with the engine's depth and alpha maps."""
    d, a = _map(depth), _map(alpha)
    r = d.shape[0]
    if not (0 <= x < r and 0 <= y < r):
        raise ValueError(f"pixel ({x}, {y}) is outside the {r}x{r} render")
    c = torch.as_tensor(np.asarray(camera.detach().cpu() if isinstance(camera, torch.Tensor) else camera, np.float32))
    c = c.reshape(-1).to(planes.device)
    origins, dirs = sample_rays(c[:16].view(1, 4, 4), c[16:25].view(1, 3, 3), r)
    origin, direction = origins[0, y * r + x], dirs[0, y * r + x]
    t = float(d[y, x])
    point = origin + t * direction
    out = G.sample(point.view(1, 1, 3), planes[:1])
    sigma = float(out["sigma"][0, 0, 0])
    rgb = out["rgb"][0, 0, :3].clamp(0, 1)
    return Probe(
        pixel=(x, y),
        depth=t,
        opacity=float(a[y, x]),
        origin=origin.cpu().double().numpy(),
        direction=direction.cpu().double().numpy(),
        point=point.cpu().double().numpy(),
        sigma=sigma,
        density=float(F.softplus(torch.tensor(sigma - 1.0, dtype=torch.float64))),
        rgb=rgb.cpu().double().numpy(),
    )
