"""Signed-distance primitives and per-head broadcasting helpers, shared by both editions of the family.

Points are (N, M, 3) for N heads; per-head values are (N,) tensors, made (N, 1) or (N, 1, 3) by `col` and `vec`.
"""

from __future__ import annotations

import torch


def ellipsoid(p: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Approximate (bound-preserving near the surface) SDF of an origin-centred ellipsoid, radii r (..., 3)."""
    k0 = (p / r).norm(dim=-1)
    k1 = (p / (r * r)).norm(dim=-1).clamp_min(1e-9)
    return k0 * (k0 - 1) / k1


def round_box(p: torch.Tensor, half: torch.Tensor, rounding: float) -> torch.Tensor:
    """SDF of an origin-centred box with half extents `half` (..., 3) and rounded edges."""
    q = p.abs() - (half - rounding)
    return q.clamp_min(0).norm(dim=-1) + q.amax(-1).clamp_max(0) - rounding


def capsule(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor, r: float) -> torch.Tensor:
    """SDF of the segment a-b (N, 1, 3) thickened by r."""
    pa, ba = p - a, b - a
    h = ((pa * ba).sum(-1, keepdim=True) / (ba * ba).sum(-1, keepdim=True)).clamp(0, 1)
    return (pa - ba * h).norm(dim=-1) - r


def torus_z(p: torch.Tensor, big: torch.Tensor, small: float) -> torch.Tensor:
    """SDF of an origin-centred ring in the xy plane: radius big (N, 1), tube radius small."""
    q = torch.stack([p[..., :2].norm(dim=-1) - big, p[..., 2]], -1)
    return q.norm(dim=-1) - small


def torus_y(p: torch.Tensor, big: torch.Tensor, small: float) -> torch.Tensor:
    """SDF of an origin-centred ring in the xz plane (around the y axis)."""
    q = torch.stack([torch.stack([p[..., 0], p[..., 2]], -1).norm(dim=-1) - big, p[..., 1]], -1)
    return q.norm(dim=-1) - small


def smin(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """Polynomial smooth minimum (blend width k)."""
    h = (0.5 + 0.5 * (b - a) / k).clamp(0, 1)
    return b + (a - b) * h - k * h * (1 - h)


def col(t: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N, 1) to broadcast against the points axis."""
    return t[:, None]


def vec(x, y, z) -> torch.Tensor:
    """Stack per-head coordinates into (N, 1, 3)."""
    n = max(v.shape[0] for v in (x, y, z) if torch.is_tensor(v))
    parts = [v if torch.is_tensor(v) else torch.full((n,), float(v)) for v in (x, y, z)]
    return torch.stack(parts, -1)[:, None, :]


def front_z(c: torch.Tensor, r: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z of an ellipsoid's front surface at (x, y) (its centre's z if (x, y) lies outside); c, r (N, 3)."""
    q = 1 - ((x - c[..., 0]) / r[..., 0]) ** 2 - ((y - c[..., 1]) / r[..., 1]) ** 2
    return c[..., 2] + r[..., 2] * q.clamp_min(0).sqrt()


def mirror(v: torch.Tensor) -> torch.Tensor:
    """v (..., 3) mirrored in the x = 0 plane."""
    return v * torch.tensor([-1.0, 1.0, 1.0], device=v.device)
