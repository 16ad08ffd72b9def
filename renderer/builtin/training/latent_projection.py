"""How a procedural family reads its parameters off a latent: fixed orthonormal directions, applied to the
latent normalised as the mapping network normalises it (both editions of the built-in family)."""

from __future__ import annotations

import torch

Z_DIM = 512


def orthonormal_rows(seed: int, count: int) -> torch.Tensor:
    """`count` fixed orthonormal rows (count, Z_DIM), float64, drawn from a seeded Gaussian."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(Z_DIM, count, generator=g, dtype=torch.float64))
    return q.t().contiguous()


def coordinates(z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Latents (N, Z_DIM) -> (N, count) float64: each row's dot product with z / rms(z), ~N(0, 1) per coordinate."""
    z = torch.as_tensor(z, dtype=torch.float64).reshape(-1, Z_DIM)
    zn = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()  # as the mapping network's normalisation
    return zn @ rows.to(zn.device).t()
