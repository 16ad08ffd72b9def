"""The inference fast path against the straightforward one: the embedding_bag tri-plane lookup
against grid_sample + mean, ray chunking against one chunk, and the plane-table cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_model import tiny_generator

import renderer.model.generator as triplane
from renderer.camera import default_camera, orbit_camera
from renderer.model.decoder import lookup, plane_table, reference_plane_axes, sample_from_planes


def _rotation_axes() -> torch.Tensor:
    """Three plane matrices that are not permutations (a rotated frame), so projection really multiplies."""
    a, b = 0.3, -0.7
    rz = torch.tensor([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]], dtype=torch.float32)
    rx = torch.tensor([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]], dtype=torch.float32)
    return torch.stack([rz, rx, rz @ rx])


@pytest.mark.parametrize("axes_kind", ["reference", "rotated"])
@pytest.mark.parametrize("box_warp", [1.0, 2.5])
def test_lookup_matches_grid_sample(axes_kind, box_warp):
    """Inside, on the border, just outside and far outside the planes: the mean feature agrees."""
    gen = torch.Generator().manual_seed(0)
    axes = reference_plane_axes() if axes_kind == "reference" else _rotation_axes()
    planes = torch.randn(3, 8, 16, 24, generator=gen)  # non-square planes catch swapped axes
    pts = (torch.rand(4000, 3, generator=gen) - 0.5) * (1.6 * box_warp)
    edge = box_warp / 2
    pts[:200, 0] = edge  # exactly on the border of the box
    pts[200:400] *= 4  # far outside: all zero padding
    ref = sample_from_planes(axes, planes[None], pts[None], box_warp).mean(1)[0].t()
    got = lookup(plane_table(axes, planes, box_warp), pts)
    assert got.shape == ref.shape == (4000, 8)
    assert (got - ref).abs().max() <= 1e-5  # rounding of the coordinates; a texel off would be O(1)
    assert (ref[200:400].abs().sum(1) == 0).sum() > 100  # the far points really read zeros...
    assert torch.equal(got[200:400] == 0, ref[200:400] == 0)  # ...and so does the lookup


def test_lookup_keeps_fp32_coordinates_under_bf16_autocast():
    """bf16 previews cast matmuls; the texel coordinates must not be among them (0.5 texel errors)."""
    gen = torch.Generator().manual_seed(1)
    table = plane_table(reference_plane_axes(), torch.randn(3, 8, 256, 256, generator=gen), 1.0)
    pts = torch.rand(2000, 3, generator=gen) - 0.5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = lookup(table, pts)
    assert torch.equal(cast, lookup(table, pts))


@pytest.fixture(scope="module")
def scene():
    G = tiny_generator()
    z = torch.from_numpy(np.random.RandomState(3).randn(1, G.z_dim).astype(np.float32))
    ws = G.mapping(z, default_camera(G.rendering_kwargs)[None], truncation_psi=0.7)
    cams = torch.stack(
        [orbit_camera(0.4, -0.1, 2.7, (0, 0, 0.2), focal=4.26), orbit_camera(-0.5, 0.2, 2.7, (0, 0, 0.2), focal=4.26)]
    )
    return G, ws.repeat(2, 1, 1), cams


@pytest.mark.parametrize("sampling", ["deterministic", "stochastic"])
def test_ray_chunks_do_not_change_the_render(scene, monkeypatch, sampling):
    """Odd-sized chunks and one chunk give the same frame: draws keep their order, depth its batch-wide clamp."""
    G, ws, cams = scene
    planes = G.planes(ws)

    def render():
        return G.render_planes(
            planes, ws, cams, sampling=sampling, superresolution=False, generator=torch.Generator().manual_seed(9)
        )

    monkeypatch.setattr(triplane, "CHUNK_POINTS", 10**8)
    whole = render()
    monkeypatch.setattr(triplane, "CHUNK_POINTS", 37 * 12)  # 37 rays of the tiny model's 12 + 12 samples
    chunked = render()
    for k in ("image_raw", "image_depth", "image_alpha", "features"):  # a summation order apart (7e-7 seen on
        assert (whole[k] - chunked[k]).abs().max() <= 1e-5, k  # depth ~3; out-of-order draws give 1e-3)
    assert whole["image_depth"].std() > 1e-3 and whole["image_raw"].std() > 1e-3  # a frame with structure


def test_fast_path_matches_the_grid_sample_path(scene):
    """Colours and sigma of the inference decoder equal the autograd-friendly `_decode` (training's path)."""
    G, _, _ = scene
    planes = torch.randn(1, 3, 32, 64, 64, generator=torch.Generator().manual_seed(4))
    pts = torch.rand(1, 3000, 3) - 0.5
    rgb, sigma = G._decode(pts, planes)
    with torch.no_grad():
        rows = G.decoder.rows()(lookup(plane_table(G.plane_axes, planes[0], 1.0), pts[0]))
    assert (rows[:, 0] - sigma[0, 0]).abs().max() <= 1e-5
    assert (rows[:, 1:].t() - rgb[0]).abs().max() <= 1e-5


def test_plane_table_cache_follows_edits(scene):
    """Editing cached planes in place (outside inference mode) is seen by the next render."""
    G, ws, cams = scene
    planes = G.planes(ws[:1]).clone()
    before = G.render_planes(planes, ws[:1], cams[:1], superresolution=False)
    with torch.no_grad():
        planes.mul_(0.5)
    after = G.render_planes(planes, ws[:1], cams[:1], superresolution=False)
    fresh = G.render_planes(planes.clone(), ws[:1], cams[:1], superresolution=False)
    assert not torch.equal(before["image_raw"], after["image_raw"])
    assert torch.equal(after["image_raw"], fresh["image_raw"])


def test_a_copy_of_the_generator_starts_without_plane_tables(scene):
    """The cache is keyed by the planes' data pointers: a copy (the photo fit's tuned model) keeping the
    original's keys could match its own planes later put at a freed address, and sample a stale table."""
    import copy

    G, ws, cams = scene
    planes = G.planes(ws[:1])
    first = G.render_planes(planes, ws[:1], cams[:1], superresolution=False)
    assert G._tables
    twin = copy.deepcopy(G)
    assert twin._tables == {} and G._tables  # the original keeps its cache
    again = twin.render_planes(planes, ws[:1], cams[:1], superresolution=False)
    assert torch.equal(first["image_raw"], again["image_raw"]) and len(twin._tables) == 1  # its own table


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("clamp", [None, 0.5])
def test_fused_synthesis_layer_matches_the_plain_one(monkeypatch, up, clamp):
    """oneDNN's conv + bias + lrelu (gain folded in) against conv, bias_act, gain and clamp one by one."""
    import renderer.model.layers as layers

    torch.manual_seed(0)
    layer = layers.SynthesisLayer(8, 6, 16, 16, up=up, conv_clamp=clamp)
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(1, 8, 16 // up, 16 // up).contiguous(memory_format=torch.channels_last)
    w = torch.randn(1, 16)
    assert not layers.fused_conv_available(x)  # autograd on: training never takes the fused op (no backward)
    with torch.no_grad():
        assert layers.fused_conv_available(x) and not layers.fused_conv_available(x.contiguous())
        fused = layer(x, w, noise_mode="none")
        monkeypatch.setattr(layers, "_HAS_FUSED_CONV", False)
        plain = layer(x, w, noise_mode="none")
    assert fused.shape == plain.shape == (1, 6, 16, 16)
    assert (fused - plain).abs().max() <= 1e-5 * max(1.0, float(plain.abs().max()))
    if clamp is not None:
        assert plain.abs().max() == clamp  # the clamp really bites in this case


def test_fused_softplus_matches_plain_also_past_its_limit():
    """-log(sigmoid(-z)) inside oneDNN's matmul equals matmul + softplus; past the limit (sigmoid(-z)
    would underflow) softplus(z) = z is taken from z itself."""
    import dataclasses

    from renderer.model.decoder import FUSED_SOFTPLUS_LIMIT, OSGDecoder

    torch.manual_seed(0)
    dec = OSGDecoder()
    x = torch.randn(5000, 32) * 3
    assert dec.rows().negated is None  # autograd on: the fused op has no backward
    with torch.no_grad():
        rows = dec.rows()
        assert rows.negated is not None
        plain_rows = dataclasses.replace(rows, negated=None)
        rgb, sigma = dec(x.t()[None, None].expand(1, 3, -1, -1))  # the module's own forward
        fused = rows(x)
        assert (fused[:, 0] - sigma[0, 0]).abs().max() <= 1e-5 and (fused[:, 1:].t() - rgb[0]).abs().max() <= 1e-5
        big = x * 200  # pre-activations far past the limit
        assert (big @ plain_rows.w0 + plain_rows.b0).max() > 2 * FUSED_SOFTPLUS_LIMIT
        out, plain = rows(big), plain_rows(big)
        assert torch.isfinite(out).all()
        assert (out - plain).abs().max() <= 1e-6 * float(plain.abs().max())


def test_lookup_turns_a_nan_point_into_nan_features_only():
    """A NaN point (e.g. rays of a zero focal length) must poison its own features, as grid_sample
    does, so the frame is flagged non-finite, and must not read outside the table."""
    table = plane_table(reference_plane_axes(), torch.randn(3, 8, 16, 16), 1.0)
    pts = torch.rand(10, 3) - 0.5
    pts[3, 1] = float("nan")
    out = lookup(table, pts)
    assert torch.isnan(out[3]).all() and torch.isfinite(out[torch.arange(10) != 3]).all()


@pytest.mark.parametrize("clamp", [None, 0.3])
def test_fused_torgb_matches_the_plain_one(monkeypatch, clamp):
    """The 1x1 modulated conv as oneDNN conv + bias + hardtanh clamp, against bmm + bias_act."""
    import renderer.model.layers as layers

    torch.manual_seed(1)
    layer = layers.ToRGBLayer(16, 3, 8, conv_clamp=clamp)
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(1, 16, 12, 12).contiguous(memory_format=torch.channels_last)
    w = torch.randn(1, 8)
    with torch.no_grad():
        fused = layer(x, w)
        monkeypatch.setattr(layers, "_HAS_FUSED_CONV", False)
        plain = layer(x, w)
    assert fused.shape == plain.shape == (1, 3, 12, 12)
    assert (fused - plain).abs().max() <= 1e-5
    if clamp is not None:
        assert plain.abs().max() == clamp


@pytest.mark.parametrize("precision", ["bf16", "tf32"])
def test_lookup_stays_exact_under_reduced_matmul_precision(precision):
    """A user's TF32 / bf16 matmul setting must not touch the texel coordinates or corner rows."""
    gen = torch.Generator().manual_seed(2)
    table = plane_table(reference_plane_axes(), torch.randn(3, 8, 256, 256, generator=gen), 1.0)
    pts = torch.rand(3000, 3, generator=gen) - 0.5
    exact = lookup(table, pts)
    setting = torch.backends.mkldnn.matmul
    before = setting.fp32_precision
    setting.fp32_precision = precision  # a global setting: restored below whatever happens
    try:
        reduced = lookup(table, pts)
    finally:
        setting.fp32_precision = before
    assert setting.fp32_precision == before
    assert torch.equal(exact, reduced)
