"""Latents of the reference scripts: a seed's z, and the spherical interpolation between two z."""

from __future__ import annotations

import math

import numpy as np


def seed_z(seed: int, z_dim: int) -> np.ndarray:
    """The reference scripts' latent for a seed: RandomState(seed).randn(1, z_dim) as float32."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    return np.random.RandomState(seed).randn(1, z_dim).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of two latent vectors (norm interpolated linearly); exactly a at t=0 and b at
    t=1, so an interpolation's end frames equal its seeds' on every CPU."""
    if t == 0 or t == 1:
        return (a if t == 0 else b).astype(np.float32)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    ua, ub = a / na, b / nb
    omega = math.acos(float(np.clip(np.sum(ua * ub), -1, 1)))
    if omega < 1e-6:
        direction = (1 - t) * ua + t * ub
    else:
        direction = (math.sin((1 - t) * omega) * ua + math.sin(t * omega) * ub) / math.sin(omega)
    return (direction * ((1 - t) * na + t * nb)).astype(np.float32)
