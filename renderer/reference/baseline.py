"""The straightforward frame, as a direct port of the reference computes it: the speed baseline.

Mapping and full synthesis every frame, tri-planes as contiguous NCHW fp32 read by one plain
`grid_sample`, the decoder as per-point linear layers on (points, channels), colours gathered
into depth order before marching, super-resolution in NCHW. It shares the generator's weights
and layers but none of the fast paths, so it is also a slow second opinion on them
(tests/test_baseline.py) and the "(a)" column of bench/bench_orbit.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model.decoder import sample_from_planes
from ..model.generator import PLANE_CHANNELS, TriPlaneGenerator
from ..model.volume import importance_depths, march_weights, sample_rays, stratified_depths


@torch.no_grad()
def reference_frame(
    G: TriPlaneGenerator,
    z: torch.Tensor,
    c: torch.Tensor,
    c_cond: torch.Tensor | None = None,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    sampling: str = "stochastic",
    generator: torch.Generator | None = None,
    noise_mode: str = "const",
) -> dict[str, torch.Tensor]:
    """z (N, z_dim), render camera c (N, 25), conditioning camera (default c) -> 'image', 'image_raw', 'image_depth',
    'image_alpha' (accumulated opacity: where depth is defined)."""
    ws = G.mapping(
        z, c if c_cond is None else c_cond, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff
    )
    p = G.backbone.synthesis(ws, noise_mode=noise_mode, generator=generator)
    planes = p.reshape(len(p), 3, PLANE_CHANNELS, p.shape[-2], p.shape[-1]).contiguous()
    draw = None
    if sampling == "stochastic":

        def draw(shape):
            return torch.rand(shape, generator=generator, device=ws.device if generator is None else generator.device)

    res = G.neural_rendering_resolution
    origins, dirs = sample_rays(c[:, :16].view(-1, 4, 4), c[:, 16:25].view(-1, 3, 3), res)
    rgb, depth, alpha = _render_rays(G, planes, origins, dirs, draw)
    n = len(ws)
    features = rgb.permute(0, 2, 1).reshape(n, -1, res, res).contiguous()
    return {
        "image": _superresolve(G, features[:, :3].clone(), features, ws),
        "image_raw": features[:, :3],
        "image_depth": depth.reshape(n, 1, res, res),
        "image_alpha": alpha.reshape(n, 1, res, res),
    }


def _render_rays(G: TriPlaneGenerator, planes, origins, dirs, draw):
    """Coarse pass, importance pass, sort all samples (colours too), march -> rgb (N, M, 32), depth and opacity
    (N, 1, M)."""
    rk = G.rendering_kwargs
    depths_c = stratified_depths(
        origins, dirs, rk["ray_start"], rk["ray_end"], rk["depth_resolution"], rk["box_warp"], draw
    )
    colors_c, sigma_c = _query(G, planes, origins, dirs, depths_c)
    depths, colors, sigma = depths_c, colors_c, sigma_c
    if rk["depth_resolution_importance"] > 0:
        coarse_weights, _, _ = march_weights(sigma_c, depths_c)
        depths_f = importance_depths(depths_c, coarse_weights, rk["depth_resolution_importance"], draw)
        colors_f, sigma_f = _query(G, planes, origins, dirs, depths_f)
        depths, idx = torch.sort(torch.cat([depths_c, depths_f], -1), -1)
        sigma = torch.gather(torch.cat([sigma_c, sigma_f], -1), -1, idx)
        gather_idx = idx[:, 0, :, :, None].expand(-1, -1, -1, colors_c.shape[-1])
        colors = torch.gather(torch.cat([colors_c, colors_f], -2), -2, gather_idx)
    weights, depth, alpha = march_weights(sigma, depths)
    colors_mid = (colors[:, :, :-1] + colors[:, :, 1:]) / 2
    rgb = torch.sum(weights[:, 0, :, :, None] * colors_mid, -2)
    if rk.get("white_back", False):
        rgb = rgb + 1 - alpha[:, 0, :, None]
    return rgb * 2 - 1, depth, alpha


def _query(G: TriPlaneGenerator, planes, origins, dirs, depths):
    """Decode the points at depths (N, 1, M, S) -> colours (N, M, S, 32), raw sigma (N, 1, M, S)."""
    n, _, m, s = depths.shape
    pts = (origins.unsqueeze(-2) + depths[:, 0, :, :, None] * dirs.unsqueeze(-2)).reshape(n, -1, 3)
    feats = sample_from_planes(G.plane_axes, planes, pts, G.rendering_kwargs["box_warp"])  # (N, 3, C, M*S)
    x = feats.mean(1).transpose(1, 2).reshape(n * m * s, -1)  # (points, channels)
    x = G.decoder.net(x)
    rgb = torch.sigmoid(x[:, 1:]) * (1 + 2 * 0.001) - 0.001
    sigma = x[:, :1]
    noise_std = G.rendering_kwargs.get("density_noise", 0) or 0
    if noise_std > 0:
        sigma = sigma + torch.randn_like(sigma) * noise_std
    return rgb.reshape(n, m, s, -1), sigma.reshape(n, 1, m, s)


def _superresolve(G: TriPlaneGenerator, rgb, x, ws):
    """The SR module's two blocks on NCHW tensors (the reference's layout)."""
    sr = G.superresolution
    r = x.shape[-1]
    if (r < sr.input_resolution) if sr.resize_only_up else (r != sr.input_resolution):
        size = (sr.input_resolution, sr.input_resolution)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=sr.sr_antialias)
        rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=sr.sr_antialias)
    ws = ws[:, -1:, :].repeat(1, 3, 1)
    noise_mode = G.rendering_kwargs.get("superresolution_noise_mode", "none")
    x, rgb = sr.block0(x, sr.skip_in(rgb), ws, noise_mode)  # relative to a declared background (superres.py)
    _, rgb = sr.block1(x, rgb, ws, noise_mode)
    return sr.skip_out(rgb)
