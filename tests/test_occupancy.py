"""Empty-space skipping: the occupancy grid never loses a surface, and a skipping render matches the full one."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from analytic_model import analytic_generator

from renderer.camera import camera_tuple, orbit_camera
from renderer.engine import LatentSpec, RenderEngine, RenderRequest
from renderer.model import occupancy as occ
from renderer.model.volume import sample_rays


def _random_rays(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    origins = torch.nn.functional.normalize(torch.randn(1, n, 3, generator=g), dim=-1) * 2.7
    target = (torch.rand(1, n, 3, generator=g) - 0.5) * 0.9
    return origins, F.normalize(target - origins, dim=-1)


def test_ray_ranges_bracket_every_occupied_cell():
    """Rays probed densely against the undilated grid: each crossing lies inside the ray's [near, far]."""
    res, voxel, origin = 24, 1 / 23, -0.5
    g = torch.Generator().manual_seed(1)
    core = torch.rand(1, res, res, res, generator=g) < 0.004  # scattered single cells: the hardest case
    grid = occ.OccupancyGrid(F.max_pool3d(core.float()[:, None], 3, 1, 1)[:, 0] > 0, origin, voxel)
    origins, dirs = _random_rays(4000, 2)
    near, far, hit = occ.ray_ranges(grid, origins, dirs, 2.0, 3.4)
    t = torch.linspace(2.0, 3.4, 4000)
    idx = ((origins[..., None, :] + t[:, None] * dirs[..., None, :] - origin) / voxel).round().long()
    inside = ((idx >= 0) & (idx < res)).all(-1)
    idx = idx.clamp(0, res - 1)
    crossing = core[0][idx[..., 0], idx[..., 1], idx[..., 2]] & inside
    crossed = crossing.any(-1)
    assert crossed.sum() > 100  # the check has teeth
    assert hit[crossed].all()
    tt = t.expand_as(crossing)
    first = torch.where(crossing, tt, torch.full_like(tt, 9.0)).amin(-1)
    last = torch.where(crossing, tt, torch.full_like(tt, 0.0)).amax(-1)
    assert (near[..., 0][crossed] <= first[crossed]).all() and (far[..., 0][crossed] >= last[crossed]).all()
    assert hit.float().mean() < 0.9  # and it does skip rays


def _sphere():
    G, planes = analytic_generator(S=20000.0, R=0.25, depth=24, nrr=48)
    return G, planes


def test_skipping_render_matches_full_render():
    G, planes = _sphere()
    ws = torch.zeros(1, G.num_ws, G.w_dim)
    grid = occ.build(G, planes, resolution=32)
    assert 0.01 < grid.occupied.float().mean() < 0.2
    for yaw, pitch in ((0.0, 0.0), (1.2, 0.4)):
        c = orbit_camera(yaw, pitch, 2.7, (0, 0, 0), fov_deg=18)[None]
        full = G.render_planes(planes, ws, c, superresolution=False, skip_empty=False)
        fast = G.render_planes(planes, ws, c, superresolution=False, skip_empty=True, occupancy=grid)
        a, b = full["image_alpha"] > 0.5, fast["image_alpha"] > 0.5
        assert (a & b).sum() / (a | b).sum() > 0.99
        assert a.float().mean() > 0.1
        both = a & b
        assert (full["image_depth"] - fast["image_depth"])[both].abs().mean() < 2e-3
        assert (full["image_raw"] - fast["image_raw"]).abs().amax(1, keepdim=True)[both].mean() < 0.01
        empty = fast["image_alpha"] == 0
        assert empty.float().mean() > 0.3  # background rays skipped entirely ...
        assert (full["image_alpha"][empty] < 1e-4).all()  # ... and the full render agrees they are empty
        assert (fast["image_raw"][empty.expand_as(fast["image_raw"])] == -1).all()


def test_engine_builds_the_grid_once_per_latent(monkeypatch):
    G, planes = _sphere()
    G.rendering_kwargs["occupancy_resolution"] = 24
    builds = []
    real = occ.build
    monkeypatch.setattr(occ, "build", lambda *a, **k: builds.append(1) or real(*a, **k))
    engine = RenderEngine(G)
    monkeypatch.setattr(G, "planes", lambda ws, **k: planes)
    front = camera_tuple(orbit_camera(0.0, 0.0, 2.7, (0, 0, 0), fov_deg=18))
    for yaw in (0.0, 0.3, 0.6):
        cam = camera_tuple(orbit_camera(yaw, 0.0, 2.7, (0, 0, 0), fov_deg=18))
        res = engine.render(
            RenderRequest(latent=LatentSpec(seed=0), camera=cam, cond_camera=front, superresolution=False)
        )
        assert res.alpha.mean() > 0.05
    assert len(builds) == 1


def test_not_declared_means_full_sampling():
    G, planes = _sphere()
    assert not occ.declared(G)
    c = orbit_camera(0.0, 0.0, 2.7, (0, 0, 0), fov_deg=18)[None]
    ws = torch.zeros(1, G.num_ws, G.w_dim)
    a = G.render_planes(planes, ws, c, superresolution=False)
    b = G.render_planes(planes, ws, c, superresolution=False, skip_empty=False)
    assert torch.equal(a["image_raw"], b["image_raw"]) and torch.equal(a["image_depth"], b["image_depth"])
    o, d = sample_rays(c[:, :16].view(-1, 4, 4), c[:, 16:25].view(-1, 3, 3), 8)
    assert o.shape == (1, 64, 3)
