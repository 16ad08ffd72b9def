"""Generator API behaviour on small random models: the planes/render split, sampling modes,
point queries against a slow reference, SR modules, option handling and config errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from tiny_model import tiny_generator, tiny_spec

import renderer
from renderer.camera import default_camera, orbit_camera
from renderer.checkpoint.spec import LoadedCheckpoint, ModelSpec
from renderer.errors import CheckpointError
from renderer.model.generator import TriPlaneGenerator
from renderer.model.volume import ray_march, sample_rays


@pytest.fixture(scope="module")
def G():
    return tiny_generator()


@pytest.fixture(scope="module")
def latent(G):
    z = torch.from_numpy(np.random.RandomState(1).randn(1, G.z_dim).astype(np.float32))
    c = default_camera(G.rendering_kwargs)[None]
    return G.mapping(z, c, truncation_psi=0.7), orbit_camera(0.3, -0.1, 2.7, (0, 0, 0.2), focal=4.26)[None]


def test_attributes(G):
    assert (G.z_dim, G.c_dim, G.w_dim, G.num_ws, G.img_resolution) == (64, 25, 64, 14, 128)
    assert G.neural_rendering_resolution == 32 and G.rendering_kwargs["depth_resolution"] == 12
    assert G.num_parameters() == sum(p.numel() for p in G.parameters()) > 0


def test_planes_render_split_equals_synthesis(G, latent):
    ws, c = latent
    full = G.synthesis(ws, c)
    planes = G.planes(ws)
    split = G.render_planes(planes, ws, c)
    again = G.render_planes(planes, ws, c)
    for k in ("image", "image_raw", "image_depth", "image_alpha"):
        assert torch.equal(full[k], split[k]) and torch.equal(split[k], again[k]), k
    assert full["image"].shape == (1, 3, 128, 128) and full["image_raw"].shape == (1, 3, 32, 32)
    assert full["image_depth"].shape == full["image_alpha"].shape == (1, 1, 32, 32)


def test_stochastic_mode(G, latent):
    ws, c = latent
    planes = G.planes(ws)
    a = G.render_planes(planes, ws, c, sampling="stochastic", generator=torch.Generator().manual_seed(5))
    b = G.render_planes(planes, ws, c, sampling="stochastic", generator=torch.Generator().manual_seed(5))
    d = G.render_planes(planes, ws, c, sampling="stochastic", generator=torch.Generator().manual_seed(6))
    det = G.render_planes(planes, ws, c)
    assert torch.equal(a["image_depth"], b["image_depth"])
    assert not torch.equal(a["image_depth"], d["image_depth"])
    assert not torch.equal(a["image_depth"], det["image_depth"])
    with pytest.raises(ValueError, match="sampling"):
        G.render_planes(planes, ws, c, sampling="random")


def test_resolution_and_depth_options_have_no_side_effects(G, latent):
    ws, c = latent
    planes = G.planes(ws)
    out = G.render_planes(planes, ws, c, neural_rendering_resolution=16, depth_multiplier=2)
    assert out["image_raw"].shape == (1, 3, 16, 16) and out["image"].shape == (1, 3, 128, 128)
    assert G.neural_rendering_resolution == 32
    raw_only = G.render_planes(planes, ws, c, superresolution=False)
    assert "image" not in raw_only
    one = G.render_planes(planes, ws, c)
    two = G.render_planes(planes, ws, c, depth_multiplier=2, importance_multiplier=1)
    assert torch.equal(one["image_raw"], raw_only["image_raw"])
    assert not torch.equal(one["image_depth"], two["image_depth"])


def _slow_plane_features(planes: np.ndarray, pts: np.ndarray, box_warp: float) -> np.ndarray:
    """Float64 bilinear lookup with the reference's plane axes (x,y), (x,z), (z,x); zeros outside."""
    _, c, h, w = planes.shape
    q = pts * (2 / box_warp)
    coords = [(q[:, 0], q[:, 1]), (q[:, 0], q[:, 2]), (q[:, 2], q[:, 0])]
    out = np.zeros((3, c, len(pts)))
    for k, (g1, g2) in enumerate(coords):
        x = ((g1 + 1) * w - 1) / 2
        y = ((g2 + 1) * h - 1) / 2
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        for dx in (0, 1):
            for dy in (0, 1):
                xi, yi = x0 + dx, y0 + dy
                wgt = (1 - np.abs(x - xi)) * (1 - np.abs(y - yi))
                ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
                vals = np.where(ok, planes[k][:, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)], 0)
                out[k] += wgt * vals
    return out


def test_sample_matches_slow_reference(G):
    """G.sample reads planes with the reference's axis quirk and decodes like the OSG decoder."""
    gen = torch.Generator().manual_seed(3)
    planes = torch.randn(1, 3, 32, 256, 256, generator=gen)
    pts = (torch.rand(1, 500, 3, generator=gen) - 0.5) * 1.1  # some points outside the box
    out = G.sample(pts, planes)
    assert out["sigma"].shape == (1, 500, 1) and out["rgb"].shape == (1, 500, 32)
    feats = _slow_plane_features(planes[0].numpy().astype(np.float64), pts[0].numpy().astype(np.float64), 1.0)
    f = feats.mean(0).T  # (M, C)
    w0, b0 = (
        G.decoder.net[0].weight.double().numpy() * G.decoder.net[0].weight_gain,
        G.decoder.net[0].bias.double().numpy(),
    )
    w2, b2 = (
        G.decoder.net[2].weight.double().numpy() * G.decoder.net[2].weight_gain,
        G.decoder.net[2].bias.double().numpy(),
    )
    h = np.logaddexp(f @ w0.T + b0, 0)
    o = h @ w2.T + b2
    assert np.abs(out["sigma"][0, :, 0].numpy() - o[:, 0]).max() < 1e-4
    rgb = 1 / (1 + np.exp(-o[:, 1:])) * 1.002 - 0.001
    assert np.abs(out["rgb"][0].numpy() - rgb).max() < 1e-5


def test_rays_match_pinhole_model():
    """Every ray leaves the camera centre through its pixel centre (OpenCV pinhole, normalised K)."""
    c = orbit_camera(0.4, -0.2, 2.7, (0, 0, 0.2), focal=4.26)[None]
    res = 8
    origins, dirs = sample_rays(c[:, :16].view(1, 4, 4), c[:, 16:].view(1, 3, 3), res)
    m = c[0, :16].view(4, 4).double().numpy()
    for i in range(res):
        for j in range(res):
            d_cam = np.array([((j + 0.5) / res - 0.5) / 4.26, ((i + 0.5) / res - 0.5) / 4.26, 1.0])
            d = m[:3, :3] @ d_cam
            assert np.allclose(dirs[0, i * res + j].numpy(), d / np.linalg.norm(d), atol=1e-6)
            assert np.allclose(origins[0, i * res + j].numpy(), m[:3, 3], atol=1e-6)


def test_ray_march_on_a_known_slab():
    """An opaque slab at depth 2.6 gives alpha ~1 and depth ~2.6; empty space gives alpha 0, far depth."""
    t = torch.linspace(2.0, 3.0, 201).view(1, 1, 1, -1).repeat(1, 1, 2, 1)
    sigma = torch.full_like(t, -50.0)
    sigma[:, :, 0, t[0, 0, 0] >= 2.6] = 1e4
    colors = torch.zeros(1, 3, 2, t.shape[-1])
    colors[:, 0] = 1.0
    r = ray_march(colors, sigma, t)
    alpha = r.weights.sum(-1)
    assert alpha[0, 0, 0] == pytest.approx(1, abs=1e-4) and r.depth[0, 0, 0] == pytest.approx(2.6, abs=0.005)
    assert r.rgb[0, 0, 0] == pytest.approx(1, abs=1e-3) and r.rgb[0, 1, 0] == pytest.approx(-1, abs=1e-3)
    assert alpha[0, 0, 1] < 1e-6 and r.depth[0, 0, 1] == pytest.approx(3.0)


@pytest.mark.parametrize(
    "sr,nrr,out_res", [("SuperresolutionHybrid2X", 64, 128), ("SuperresolutionHybrid4X", 128, 256)]
)
def test_same_resolution_sr_and_raw_aliasing(sr, nrr, out_res):
    """2X/4X modules at their input resolution: image_raw is the true render unless raw_aliasing
    asks for the reference's in-place value (render + first block's ToRGB); image is the same."""
    torch.manual_seed(1)
    g = TriPlaneGenerator(tiny_spec(sr=sr, nrr=nrr, image_resolution=out_res))
    ws = g.mapping(torch.randn(1, 64), default_camera(g.rendering_kwargs)[None])
    c = default_camera(g.rendering_kwargs, yaw=0.2)[None]
    planes = g.planes(ws)
    plain = g.render_planes(planes, ws, c)
    aliased = g.render_planes(planes, ws, c, raw_aliasing=True)
    raw = g.render_planes(planes, ws, c, superresolution=False)["image_raw"]
    assert plain["image"].shape == (1, 3, out_res, out_res)
    assert torch.equal(plain["image"], aliased["image"])
    assert torch.equal(plain["image_raw"], raw)
    assert (aliased["image_raw"] - raw).abs().max() > 1e-3


def _ckpt(spec, sd):
    return LoadedCheckpoint(spec=spec, state_dict=sd, path="model.safetensors", source_format="native")


def test_config_and_tensor_errors(G):
    sd = {k: v.clone() for k, v in G.state_dict().items()}
    assert renderer.build_generator(_ckpt(G.spec, sd)) is not None
    bad_sr = copy.deepcopy(G.spec.rendering_kwargs)
    bad_sr["superresolution_module"] = "training.superresolution.Nope"
    with pytest.raises(CheckpointError, match="model.safetensors.*Nope"):
        renderer.build_generator(_ckpt(ModelSpec(G.spec.init_kwargs, bad_sr, 32), sd))
    missing = dict(sd)
    missing.pop("decoder.net.0.weight")
    with pytest.raises(CheckpointError, match="missing tensors decoder.net.0.weight"):
        renderer.build_generator(_ckpt(G.spec, missing))
    wrong = dict(sd, **{"decoder.net.0.weight": torch.zeros(3, 3)})
    with pytest.raises(CheckpointError, match="shape mismatch"):
        renderer.build_generator(_ckpt(G.spec, wrong))
    extra = dict(sd, **{"foo.bar": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="unexpected tensors foo.bar"):
        renderer.build_generator(_ckpt(G.spec, extra))
    no_key = copy.deepcopy(G.spec.init_kwargs)
    del no_key["w_dim"]
    with pytest.raises(CheckpointError, match="w_dim"):
        renderer.build_generator(_ckpt(ModelSpec(no_key, G.spec.rendering_kwargs, 32), sd))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp16_superresolution_close_to_fp32(G, latent):
    """On CUDA the SR blocks run in fp16 as in the reference; the image stays close to fp32 CPU."""
    ws, c = latent
    ref = G.synthesis(ws, c)
    g = copy.deepcopy(G).cuda()
    out = g.synthesis(ws.cuda(), c.cuda())
    assert (out["image_raw"].cpu() - ref["image_raw"]).abs().max() < 1e-3
    assert (out["image"].cpu() - ref["image"]).abs().max() < 5e-2
