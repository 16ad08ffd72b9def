"""Empty-space skipping: a coarse occupancy grid per latent, and per-ray sample ranges from it.

For models whose empty space is truly empty (the built-in model is trained to raw sigma -10
there), rays only need samples where the grid says something is: rays that miss every occupied
cell are background (no decoder work at all) and the others spend their coarse and importance
samples on [first, last] occupied cell instead of the whole ray range. The grid is built once
per latent from cached planes (it rides along with them in the engine's cache). It is opt-in:
a model declares `occupancy_resolution` (and optionally `occupancy_threshold`) in its
rendering_kwargs; EG3D checkpoints, whose volumes hold the background, never use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .density import sample_density  # the same lattice as mesh extraction

DEFAULT_THRESHOLD = -5.0
"""Raw sigma above which a lattice point counts as occupied (softplus(-6) ~ 0.0025: far below a surface)."""


@dataclass
class OccupancyGrid:
    """occupied[n, ix, iy, iz] for lattice points origin + (ix, iy, iz) * voxel, dilated by `dilation` cells."""

    occupied: torch.Tensor
    origin: float
    voxel: float
    _bordered: torch.Tensor | None = field(default=None, init=False, repr=False)

    @property
    def resolution(self) -> int:
        return int(self.occupied.shape[-1])

    def bordered(self) -> torch.Tensor:
        """(N, (R+2)^3) flat copy with an empty border cell all round: clamped lookups outside read empty."""
        if self._bordered is None:
            self._bordered = F.pad(self.occupied, (1, 1, 1, 1, 1, 1)).reshape(self.occupied.shape[0], -1)
        return self._bordered


def declared(G) -> bool:
    """Whether the model asks for empty-space skipping."""
    return bool(G.rendering_kwargs.get("occupancy_resolution"))


@torch.no_grad()
def build(
    G, planes: torch.Tensor, resolution: int | None = None, threshold: float | None = None, dilation: int = 1
) -> OccupancyGrid:
    """Occupancy of cached planes (N, 3, C, P, P) on a resolution^3 lattice over the model's box."""
    rk = G.rendering_kwargs
    res = int(resolution or rk["occupancy_resolution"])
    thr = float(rk.get("occupancy_threshold", DEFAULT_THRESHOLD) if threshold is None else threshold)
    grids = [sample_density(G, planes[i : i + 1], res) for i in range(planes.shape[0])]
    sigma = torch.stack([torch.from_numpy(g.sigma) for g in grids]).to(planes.device)
    occ = (sigma > thr).float()[:, None]
    if dilation > 0:
        occ = F.max_pool3d(occ, 2 * dilation + 1, stride=1, padding=dilation)
    return OccupancyGrid(occ[:, 0] > 0, grids[0].origin, grids[0].voxel)


def ray_ranges(
    grid: OccupancyGrid, origins: torch.Tensor, dirs: torch.Tensor, t_start: float, t_end: float, steps: int = 64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-ray (near, far) depths (N, M, 1) bracketing the occupied cells and a hit mask (N, M).

    Rays are probed at `steps` depths (1.7 cm apart over the built-in model's range); a ray that
    passes through an occupied cell of the undilated grid crosses at least two cells of the dilated
    one, so a probe shorter than two cells always lands in it.
    """
    n, m, _ = origins.shape
    side = grid.resolution + 2
    t = torch.linspace(t_start, t_end, steps, device=origins.device)
    o = (origins - grid.origin) / grid.voxel + 1  # lattice units, shifted past the empty border
    d = dirs / grid.voxel
    p = torch.addcmul(o[..., None, :], t[:, None], d[..., None, :]).round_().clamp_(0, side - 1)
    flat = (p[..., 0] * side + p[..., 1]).mul_(side).add_(p[..., 2]).long()  # exact in float32 below 2^24
    occ = torch.gather(grid.bordered(), 1, flat.view(n, -1)).view(n, m, steps)
    hit = occ.any(-1)
    step = (t_end - t_start) / (steps - 1)
    first = occ.to(torch.uint8).argmax(-1)
    last = steps - 1 - occ.flip(-1).to(torch.uint8).argmax(-1)
    near = (t_start + (first.float() - 1) * step).clamp(min=t_start)
    far = (t_start + (last.float() + 1) * step).clamp(max=t_end)
    return near.unsqueeze(-1), far.unsqueeze(-1), hit
