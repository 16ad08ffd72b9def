"""Rays from 25-value cameras, stratified + importance depths, and the MipNeRF ray marcher (eg3d-math §10).

Sampling is 'deterministic' (zero jitter, importance u = linspace(0, 1, N): flicker-free) or
'stochastic' (jitter drawn as in training, optionally from a given torch.Generator so the
reference's draws can be replayed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

SAMPLING_MODES = ("deterministic", "stochastic")


def sample_rays(cam2world: torch.Tensor, intrinsics: torch.Tensor, resolution: int):
    """cam2world (N,4,4), normalised K (N,3,3) -> origins, unit directions (N, R*R, 3), rays row-major."""
    n, m = cam2world.shape[0], resolution**2
    dev = cam2world.device
    cam_locs = cam2world[:, :3, 3]
    fx, fy = intrinsics[:, 0, 0], intrinsics[:, 1, 1]
    cx, cy, sk = intrinsics[:, 0, 2], intrinsics[:, 1, 2], intrinsics[:, 0, 1]
    ar = torch.arange(resolution, dtype=torch.float32, device=dev)
    uv = torch.stack(torch.meshgrid(ar, ar, indexing="ij")) * (1.0 / resolution) + (0.5 / resolution)
    uv = uv.flip(0).reshape(2, -1).transpose(1, 0).unsqueeze(0).repeat(n, 1, 1)
    x_cam, y_cam = uv[:, :, 0].view(n, -1), uv[:, :, 1].view(n, -1)
    z_cam = torch.ones((n, m), device=dev)
    fx, fy, cx, cy, sk = (t.unsqueeze(-1) for t in (fx, fy, cx, cy, sk))
    x_lift = (x_cam - cx + cy * sk / fy - sk * y_cam / fy) / fx * z_cam
    y_lift = (y_cam - cy) / fy * z_cam
    pts = torch.stack((x_lift, y_lift, z_cam, torch.ones_like(z_cam)), dim=-1)
    world = torch.bmm(cam2world, pts.permute(0, 2, 1)).permute(0, 2, 1)[:, :, :3]
    dirs = F.normalize(world - cam_locs[:, None, :], dim=2)
    origins = cam_locs.unsqueeze(1).repeat(1, m, 1)
    return origins, dirs


def ray_box_limits(origins: torch.Tensor, dirs: torch.Tensor, box_side: float):
    """Slab test against [-b/2, b/2]^3 -> (t_min, t_max) (..., 1); misses get t_min=-1, t_max=-2."""
    o, d = origins.detach(), dirs.detach()
    half = box_side / 2
    inv = 1 / d
    near = torch.where(inv >= 0, torch.full_like(o, -half), torch.full_like(o, half))
    far = -near
    t_near, t_far = (near - o) * inv, (far - o) * inv
    t_min, t_max = t_near[..., 0], t_far[..., 0]
    valid = torch.ones_like(t_min, dtype=torch.bool)
    for a in (1, 2):
        valid &= ~((t_min > t_far[..., a]) | (t_near[..., a] > t_max))
        t_min = torch.max(t_min, t_near[..., a])
        t_max = torch.min(t_max, t_far[..., a])
    t_min = torch.where(valid, t_min, torch.full_like(t_min, -1))
    t_max = torch.where(valid, t_max, torch.full_like(t_max, -2))
    return t_min.unsqueeze(-1), t_max.unsqueeze(-1)


def stratified_depths(
    origins: torch.Tensor,
    dirs: torch.Tensor,
    ray_start,
    ray_end,
    n_samples: int,
    box_warp: float,
    jitter: Callable | None,
) -> torch.Tensor:
    """Coarse depths (N, 1, M, D): linspace between the limits plus jitter*step (none when deterministic)."""
    n, m, _ = origins.shape
    dev = origins.device
    if ray_start == ray_end == "auto":
        start, end = ray_box_limits(origins, dirs, box_warp)
        valid = end > start
        if valid.any():
            start = torch.where(valid, start, start[valid].min())
            end = torch.where(valid, end, start[valid].max())
        return depths_between(start, end, n_samples, jitter)
    depths = torch.linspace(ray_start, ray_end, n_samples, device=dev).reshape(1, 1, 1, n_samples).repeat(n, 1, m, 1)
    if jitter is not None:
        depths += jitter(depths.shape) * ((ray_end - ray_start) / (n_samples - 1))
    return depths


def depths_between(start: torch.Tensor, end: torch.Tensor, n_samples: int, jitter: Callable | None) -> torch.Tensor:
    """Coarse depths (N, 1, M, D) from per-ray limits (N, M, 1): linspace plus jitter*step."""
    steps = torch.arange(n_samples, device=start.device, dtype=torch.float32) / (n_samples - 1)
    depths = start + steps * (end - start)
    if jitter is not None:
        depths = depths + jitter(depths.shape) * ((end - start) / (n_samples - 1))
    return depths.unsqueeze(1)


@dataclass
class MarchResult:
    """Composited features (N,C,M) on [-1,1], depth (N,1,M), per-interval weights (N,1,M,S-1)."""

    rgb: torch.Tensor
    depth: torch.Tensor
    weights: torch.Tensor


def march_weights(densities: torch.Tensor, depths: torch.Tensor, clamp_depth: bool = True):
    """MipNeRF weights on interval midpoints with softplus(sigma - 1) density.

    densities, depths (N, 1, M, S), sorted along S -> weights (N,1,M,S-1), depth (N,1,M)
    (weighted midpoint depth, NaN -> inf, clamped to the batch's sample range unless
    `clamp_depth` is False: a caller marching rays in chunks clamps to the whole batch's range),
    accumulated opacity (N,1,M).
    """
    deltas = depths[..., 1:] - depths[..., :-1]
    densities_mid = (densities[..., :-1] + densities[..., 1:]) / 2
    depths_mid = (depths[..., :-1] + depths[..., 1:]) / 2
    densities_mid = F.softplus(densities_mid - 1)
    alpha = 1 - torch.exp(-(densities_mid * deltas))
    alpha_shifted = torch.cat([torch.ones_like(alpha[..., :1]), 1 - alpha + 1e-10], -1)
    weights = alpha * torch.cumprod(alpha_shifted, -1)[..., :-1]
    weight_total = weights.sum(-1)
    depth = torch.sum(weights * depths_mid, -1) / weight_total
    depth = torch.nan_to_num(depth, float("inf"))
    if clamp_depth:
        depth = torch.clamp(depth, torch.min(depths), torch.max(depths))
    return weights, depth, weight_total


def sample_coefficients(weights: torch.Tensor) -> torch.Tensor:
    """Per-sample compositing weights (N,1,M,S): interval j's weight split over its two end samples,
    so sum_j w_j (c_j + c_{j+1}) / 2 = sum_s coef_s c_s without building midpoint colours."""
    return (F.pad(weights, (1, 0)) + F.pad(weights, (0, 1))) * 0.5


def ray_march(
    colors: torch.Tensor, densities: torch.Tensor, depths: torch.Tensor, white_back: bool = False
) -> MarchResult:
    """The marcher with colours: colors (N, C, M, S), densities and depths (N, 1, M, S), sorted."""
    weights, depth, weight_total = march_weights(densities, depths)
    colors_mid = (colors[..., :-1] + colors[..., 1:]) / 2
    rgb = torch.sum(weights * colors_mid, -1)
    if white_back:
        rgb = rgb + 1 - weight_total
    return MarchResult(rgb * 2 - 1, depth, weights)


def sample_pdf(
    bins: torch.Tensor, weights: torch.Tensor, n_importance: int, u: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """Inverse-CDF sampling: bins (R, K+1), weights (R, K), u (R, n) in [0, 1] -> depths (R, n)."""
    n_rays, k = weights.shape
    weights = weights + eps
    pdf = weights / torch.sum(weights, -1, keepdim=True)
    cdf = torch.cumsum(pdf, -1)
    cdf = torch.cat([torch.zeros_like(cdf[:, :1]), cdf], -1)
    u = u.contiguous()
    inds = torch.searchsorted(cdf, u, right=True)
    below = torch.clamp_min(inds - 1, 0)
    above = torch.clamp_max(inds, k)
    idx = torch.stack([below, above], -1).view(n_rays, 2 * n_importance)
    cdf_g = torch.gather(cdf, 1, idx).view(n_rays, n_importance, 2)
    bins_g = torch.gather(bins, 1, idx).view(n_rays, n_importance, 2)
    denom = cdf_g[..., 1] - cdf_g[..., 0]
    denom = torch.where(denom < eps, torch.ones_like(denom), denom)  # a mask assignment would sync a GPU
    return bins_g[..., 0] + (u - cdf_g[..., 0]) / denom * (bins_g[..., 1] - bins_g[..., 0])


@torch.no_grad()
def importance_depths(
    depths: torch.Tensor, weights: torch.Tensor, n_importance: int, draw_u: Callable | None
) -> torch.Tensor:
    """Fine depths (N, 1, M, n) from the smoothed coarse weights (N, 1, M, D-1); u = linspace(0,1,n) if no draw_u."""
    n, _, m, s = depths.shape
    z = depths.reshape(n * m, s)
    w = weights.reshape(n * m, -1)
    w = F.max_pool1d(w.unsqueeze(1).float(), 2, 1, padding=1)
    w = F.avg_pool1d(w, 2, 1).squeeze(1)
    w = w + 0.01
    z_mid = 0.5 * (z[:, :-1] + z[:, 1:])
    if draw_u is None:
        u = torch.linspace(0, 1, n_importance, device=depths.device).expand(n * m, n_importance)
    else:
        u = draw_u((n * m, n_importance))
    return sample_pdf(z_mid, w[:, 1:-1], n_importance, u).detach().reshape(n, 1, m, n_importance)


def sort_samples(d1: torch.Tensor, s1: torch.Tensor, d2: torch.Tensor, s2: torch.Tensor):
    """Concatenate coarse and fine depths/densities (N,1,M,*) and sort by depth; also return the sort index."""
    depths = torch.cat([d1, d2], dim=-1)
    densities = torch.cat([s1, s2], dim=-1)
    depths, idx = torch.sort(depths, dim=-1)
    return depths, torch.gather(densities, -1, idx), idx


def merge_samples(d1, c1, s1, d2, c2, s2):
    """Concatenate coarse and fine samples (colours included) along the last axis, sorted by depth
    (the straightforward path; used by training, where the colours need gradients through the sort)."""
    depths = torch.cat([d1, d2], dim=-1)
    colors = torch.cat([c1, c2], dim=-1)
    densities = torch.cat([s1, s2], dim=-1)
    depths, idx = torch.sort(depths, dim=-1)
    colors = torch.gather(colors, -1, idx.expand(-1, colors.shape[1], -1, -1))
    densities = torch.gather(densities, -1, idx)
    return depths, colors, densities
