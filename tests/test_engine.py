"""RenderEngine caching and latent handling, and display packing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from tiny_model import tiny_generator

from renderer.camera import camera_tuple, default_camera
from renderer.engine import LatentSpec, RenderEngine, RenderRequest, seed_z, slerp
from renderer.engine.frames import depth_range, pack_frame, to_uint8, unpack_depth


@pytest.fixture(scope="module")
def engine():
    return RenderEngine(tiny_generator())


def request(G, **kw) -> RenderRequest:
    rk = G.rendering_kwargs
    base = dict(
        latent=LatentSpec(seed=3),
        camera=camera_tuple(default_camera(rk, yaw=0.2)),
        cond_camera=camera_tuple(default_camera(rk)),
        psi=0.7,
    )
    base.update(kw)
    return RenderRequest(**base)


def test_camera_only_change_skips_mapping_and_backbone(engine):
    G = engine.G
    r1 = engine.render(request(G, stamp=1))
    calls = (engine.stats.backbone_calls, engine.stats.mapping_calls)
    r2 = engine.render(request(G, camera=camera_tuple(default_camera(G.rendering_kwargs, yaw=-0.3)), stamp=2))
    r3 = engine.render(request(G, superresolution=False, neural_rendering_resolution=16, stamp=3))
    assert (engine.stats.backbone_calls, engine.stats.mapping_calls) == calls
    assert not r2.backbone_ran and not r3.backbone_ran and r2.stamp == 2
    assert not torch.equal(r1.raw, r2.raw)
    assert r3.image is None and r3.raw.shape == (3, 16, 16)
    r4 = engine.render(request(G, psi=0.5))
    assert r4.backbone_ran and engine.stats.backbone_calls == calls[0] + 1
    assert set(r1.timings) == {"mapping", "backbone", "render", "superres"}


def test_engine_matches_direct_api(engine):
    G = engine.G
    req = request(G, latent=LatentSpec(seed=11))
    res = engine.render(req)
    z = torch.from_numpy(seed_z(11, G.z_dim))
    ws = G.mapping(z, torch.tensor(req.cond_camera, dtype=torch.float32)[None], truncation_psi=0.7)
    out = G.synthesis(ws, torch.tensor(req.camera, dtype=torch.float32)[None])
    assert torch.equal(res.image, out["image"][0]) and torch.equal(res.depth, out["image_depth"][0])


def test_interpolation_endpoints_and_midpoint(engine):
    G = engine.G
    a = engine.render(request(G, latent=LatentSpec(seed=1)))
    b = engine.render(request(G, latent=LatentSpec(seed=2)))
    for space in ("w", "z"):
        t0 = engine.render(request(G, latent=LatentSpec(seed=1, seed_b=2, t=0.0, space=space)))
        t1 = engine.render(request(G, latent=LatentSpec(seed=1, seed_b=2, t=1.0, space=space)))
        mid = engine.render(request(G, latent=LatentSpec(seed=1, seed_b=2, t=0.5, space=space)))
        assert torch.equal(t0.image, a.image)
        assert (t1.image - b.image).abs().max() < 1e-5
        assert (mid.image - a.image).abs().mean() > 1e-3 and (mid.image - b.image).abs().mean() > 1e-3
    frac = engine.render(request(G, latent=LatentSpec(seed=1.5)))
    lerp = engine.render(request(G, latent=LatentSpec(seed=1, seed_b=2, t=0.5)))
    assert torch.equal(frac.ws, lerp.ws)


def test_style_mixing_replaces_selected_ws(engine):
    G = engine.G
    base = engine.render(request(G, latent=LatentSpec(seed=1))).ws
    mix = engine.render(request(G, latent=LatentSpec(seed=2))).ws
    mixed = engine.render(request(G, latent=LatentSpec(seed=1, mix_seed=2, mix_start=7))).ws
    assert torch.equal(mixed[:, :7], base[:, :7]) and torch.equal(mixed[:, 7:], mix[:, 7:])


def test_slerp_properties():
    a, b = seed_z(1, 64), seed_z(2, 64)
    assert np.allclose(slerp(a, b, 0), a, atol=1e-6) and np.allclose(slerp(a, b, 1), b, atol=1e-5)
    m = slerp(a, b, 0.5)
    assert np.linalg.norm(m) == pytest.approx((np.linalg.norm(a) + np.linalg.norm(b)) / 2, rel=1e-5)


def test_bad_inputs():
    with pytest.raises(ValueError):
        seed_z(-1, 8)
    with pytest.raises(ValueError):
        camera_tuple([0.0] * 24)
    with pytest.raises(ValueError):
        camera_tuple([float("nan")] * 25)


def test_nonfinite_frames_are_flagged(engine):
    G = engine.G
    bad = list(request(G).camera)
    bad[16] = 0.0  # zero focal length: rays become NaN
    res = engine.render(request(G, camera=tuple(bad)))
    assert res.nonfinite
    frame = pack_frame(res.image, res.raw, res.depth, res.alpha, "image")
    assert frame.rgba.dtype == torch.uint8  # still displayable


def test_pack_frame_rgb_and_depth(engine):
    G = engine.G
    res = engine.render(request(G))
    img = pack_frame(res.image, res.raw, res.depth, res.alpha, "image")
    assert img.kind == "rgb" and img.rgba.shape == (128, 128, 4)
    assert torch.equal(img.rgba[..., :3], to_uint8(res.image)) and bool((img.rgba[..., 3] == 255).all())
    raw = pack_frame(None, res.raw, res.depth, res.alpha, "image")  # no SR: falls back to raw
    assert raw.rgba.shape == (32, 32, 4)
    d = pack_frame(res.image, res.raw, res.depth, res.alpha, "depth")
    near, far = depth_range(res.depth, res.alpha)
    assert d.kind == "depth" and (d.near, d.far) == (near, far)
    inside = (res.depth[0] >= near) & (res.depth[0] <= far)
    err = (unpack_depth(d) - res.depth[0]).abs()[inside]
    assert err.max() <= (far - near) / 65535 + 1e-6  # 16-bit depth precision
    locked = pack_frame(res.image, res.raw, res.depth, res.alpha, "normals", locked_range=(2.0, 4.0))
    assert (locked.near, locked.far) == (2.0, 4.0)
    with pytest.raises(ValueError):
        pack_frame(res.image, res.raw, res.depth, res.alpha, "bogus")


def test_requests_are_hashable_and_frozen(engine):
    req = request(engine.G)
    assert hash(req) == hash(dataclasses.replace(req))
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.psi = 2  # type: ignore[misc]


def test_a_render_stops_when_asked_and_leaves_nothing_wrong_behind(engine):
    """should_stop() is asked between stages and ray chunks: True stops the render (RenderCancelled)
    before its end; ws and planes stay cached, and the next render equals an uninterrupted one."""
    from renderer.errors import RenderCancelled

    G = engine.G
    req = request(G, latent=LatentSpec(seed=21))
    asked = []

    def stop_on_third():
        asked.append(1)
        return len(asked) >= 3

    with pytest.raises(RenderCancelled):
        engine.render(req, should_stop=stop_on_third)
    assert len(asked) == 3
    calls = engine.stats.backbone_calls
    again = engine.render(req, should_stop=lambda: False)
    assert engine.stats.backbone_calls == calls  # the planes of the stopped render were kept
    fresh = RenderEngine(G).render(req)
    for k in ("image", "raw", "depth", "alpha"):
        assert torch.equal(getattr(again, k), getattr(fresh, k)), k


def test_chunked_render_checks_between_chunks():
    """The ray loop asks should_stop once per chunk: a stop after the first chunk ends it there."""
    from renderer.errors import RenderCancelled
    from renderer.model import generator as triplane

    G = tiny_generator()
    rk = G.rendering_kwargs
    ws = G.mapping(torch.from_numpy(seed_z(0, G.z_dim)), default_camera(rk)[None])
    planes = G.planes(ws)
    asked = []
    old = triplane.CHUNK_POINTS
    triplane.CHUNK_POINTS = 64 * max(rk["depth_resolution"], rk["depth_resolution_importance"])  # 64-ray chunks
    try:
        with pytest.raises(RenderCancelled):
            G.render_planes(
                planes,
                ws,
                default_camera(rk)[None],
                should_stop=lambda: asked.append(1) or len(asked) > 1,
                skip_empty=False,
            )
    finally:
        triplane.CHUNK_POINTS = old
    assert len(asked) == 2


def test_ray_range_follows_the_camera_distance():
    """At the model's radius the range is the model's own (parity); nearer or farther it moves with the
    camera, so a zoomed camera still sees the object, where the fixed range would see nothing."""
    import renderer
    from renderer.camera import orbit_camera

    G = renderer.load_generator("builtin")
    rk = G.rendering_kwargs
    r0, pivot = rk["avg_camera_radius"], rk["avg_camera_pivot"]
    focal = float(default_camera(rk)[16])
    assert G.ray_range_for(default_camera(rk, yaw=0.4, pitch=-0.2)) == (rk["ray_start"], rk["ray_end"])
    ws = G.mapping(torch.from_numpy(seed_z(0, G.z_dim)), default_camera(rk)[None], truncation_psi=0.7)
    planes = G.planes(ws)
    for radius in (1.8, 4.1):
        c = orbit_camera(0.0, 0.0, radius, pivot, focal=focal)
        start, end = G.ray_range_for(c)
        assert start == pytest.approx(rk["ray_start"] + radius - r0, abs=1e-5)
        assert end == pytest.approx(rk["ray_end"] + radius - r0, abs=1e-5)
        kw = dict(superresolution=False, neural_rendering_resolution=32)
        follows = G.render_planes(planes, ws, c[None], **kw)
        fixed = G.render_planes(planes, ws, c[None], ray_range=(rk["ray_start"], rk["ray_end"]), **kw)
        seen = (follows["image_alpha"] > 0.5).float().mean()
        assert follows["image_alpha"][0, 0, 14:18, 14:18].min() > 0.9 and seen > 0.05, radius  # the head, centred
        assert (fixed["image_alpha"] > 0.5).float().mean() < 0.5 * seen, radius


def test_custom_latent_renders_its_ws_as_they_are_and_a_new_value_drops_the_cache(engine):
    G = engine.G
    rng = np.random.default_rng(5)
    w = G.backbone.mapping.w_avg[None, None].repeat(1, G.num_ws, 1) + torch.from_numpy(
        rng.normal(0, 0.5, (1, G.num_ws, G.w_dim)).astype(np.float32)
    )
    engine.set_custom_latent("fit-a", w[0].numpy())
    req = request(G, latent=LatentSpec(custom="fit-a"), psi=0.5)  # psi does not apply to a custom latent
    res = engine.render(req)
    out = G.synthesis(w, torch.tensor(req.camera, dtype=torch.float32)[None])
    assert torch.equal(res.image, out["image"][0]) and torch.equal(res.ws, w)
    engine.set_custom_latent("fit-a", (w * 0.5)[0].numpy())  # the same name, new values: nothing stale
    again = engine.render(req)
    assert again.backbone_ran and torch.equal(again.ws, w * 0.5)
    with pytest.raises(ValueError, match="no custom latent"):
        engine.render(request(G, latent=LatentSpec(custom="missing")))
    with pytest.raises(ValueError, match="finite values"):
        engine.set_custom_latent("bad", np.full((G.num_ws, G.w_dim), np.nan))
    assert G.num_ws != G.w_dim  # a transposed array has as many values, in the wrong layout: refused too
    with pytest.raises(ValueError, match=rf"not an array of shape \({G.w_dim}, {G.num_ws}\)"):
        engine.set_custom_latent("bad", np.zeros((G.w_dim, G.num_ws), np.float32))
