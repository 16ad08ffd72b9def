"""Raw density of one latent on an N^3 lattice over the model's box, sampled from cached tri-planes.

The lattice covers [-box_warp/2, box_warp/2]^3 with voxel size box_warp/(N-1), indexed [ix, iy, iz]
with integer indices (no shear, unlike the reference's float-division indices). Raw sigma (the
decoder's pre-activation density) comes from `G.sample` in bounded chunks, so the backbone never
runs here. Mesh extraction (renderer.export.mesh) and empty-space skipping (renderer.model.occupancy)
sample the same lattice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ExportError
from ..progress import CancelToken, ProgressFn, check_cancel, report

MIN_RESOLUTION, MAX_RESOLUTION = 16, 1024
DEFAULT_CHUNK = 262_144
"""Grid points per G.sample call: about 100 MB of features and activations on the CPU."""


@dataclass
class DensityGrid:
    """Raw sigma on an N^3 grid: sigma[ix, iy, iz] at origin + (ix, iy, iz) * voxel (world units)."""

    sigma: np.ndarray
    origin: float
    voxel: float
    seconds: float = 0.0

    @property
    def resolution(self) -> int:
        return int(self.sigma.shape[0])

    def coords(self) -> np.ndarray:
        """The N grid coordinates along each axis."""
        return self.origin + np.arange(self.resolution) * self.voxel


def check_resolution(resolution: int) -> int:
    """An integer grid resolution inside [MIN_RESOLUTION, MAX_RESOLUTION], else ExportError."""
    try:
        n = int(resolution)
    except (TypeError, ValueError):
        raise ExportError(f"resolution must be an integer, got {resolution!r}") from None
    if n != resolution or not MIN_RESOLUTION <= n <= MAX_RESOLUTION:
        raise ExportError(
            f"resolution {resolution} is out of range: use {MIN_RESOLUTION}..{MAX_RESOLUTION} "
            f"(memory grows as N^3: 512^3 needs ~0.5 GB for the density alone)"
        )
    return n


def box_size(G) -> float:
    """Side of the model's box in world units (rendering_kwargs['box_warp'])."""
    return float(G.rendering_kwargs.get("box_warp", 1.0))


@torch.no_grad()
def sample_density(
    G,
    planes: torch.Tensor,
    resolution: int,
    chunk: int = DEFAULT_CHUNK,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    progress_span: tuple[float, float] = (0.0, 1.0),
) -> DensityGrid:
    """Raw sigma of one latent's cached planes (1, 3, C, P, P) on the N^3 grid over the model's box."""
    n = check_resolution(resolution)
    if planes.dim() != 5 or planes.shape[0] != 1:
        raise ValueError(f"planes must be (1, 3, C, H, W), got {tuple(planes.shape)}")
    t0 = time.perf_counter()
    box = box_size(G)
    origin, voxel = -box / 2, box / (n - 1)
    total = n**3
    chunk = max(1, int(chunk))
    out = np.empty(total, dtype=np.float32)
    dev = planes.device
    lo, hi = progress_span
    for start in range(0, total, chunk):
        check_cancel(cancel)
        idx = torch.arange(start, min(start + chunk, total), device=dev, dtype=torch.int64)
        ijk = torch.stack([idx // (n * n), (idx // n) % n, idx % n], -1)
        pts = (origin + ijk.to(torch.float32) * voxel)[None]
        sigma = G.sample(pts, planes)["sigma"][0, :, 0]
        out[start : start + len(idx)] = sigma.float().cpu().numpy()
        report(progress, lo + (hi - lo) * (start + len(idx)) / total, f"sampling {n}^3 density")
    return DensityGrid(out.reshape(n, n, n), origin, voxel, time.perf_counter() - t0)
