"""The inspector's model side (renderer.inspect, issue 16): captured layers, their statistics and images,
tri-plane labels / PCA / channels / texels, density slices, the pixel probe and training-run folders.

Runs on the built-in model (planes and a frame in well under a second on 2 cores)."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch

from renderer import load_generator
from renderer.camera import default_camera, orbit_camera
from renderer.export.mesh import default_level
from renderer.inspect import layers as L
from renderer.inspect import planes as PL
from renderer.inspect import runs as RU
from renderer.inspect import slices as SL
from renderer.inspect.probe import probe_pixel
from renderer.model.decoder import project_onto_planes, reference_plane_axes, sample_from_planes
from renderer.model.volume import sample_rays


@pytest.fixture(scope="module")
def G():
    return load_generator("builtin")


@pytest.fixture(scope="module")
def camera(G):
    return default_camera(G.rendering_kwargs)


@pytest.fixture(scope="module")
def ws(G, camera):
    z = torch.from_numpy(np.random.RandomState(3).randn(1, G.z_dim).astype(np.float32))
    return G.mapping(z, camera[None])


@pytest.fixture(scope="module")
def captured(G, ws):
    return L.capture_backbone(G, ws)


@pytest.fixture(scope="module")
def planes(captured):
    return captured[1]


def hook_count(G) -> int:
    return sum(len(m._forward_hooks) for m in G.modules())


# ----------------------------------------------------------------- layers
def test_capture_backbone_layers_and_planes(G, ws, captured):
    layers, planes = captured
    assert torch.equal(planes, G.planes(ws))
    names = [layer.name for layer in layers]
    blocks = [f"b{r}" for r in G.backbone.synthesis.block_resolutions]
    expected = ["mapping.ws"] + [f"backbone.{b}.{k}" for b in blocks for k in ("x", "img")] + ["planes"]
    assert names == expected
    assert [layer.stage for layer in layers] == ["mapping"] + ["backbone"] * 2 * len(blocks) + ["planes"]
    P = G.plane_resolution
    by_name = {layer.name: layer for layer in layers}
    assert by_name["mapping.ws"].shape == (G.num_ws, G.w_dim)
    assert torch.equal(by_name["mapping.ws"].tensor, ws[0])
    assert by_name["planes"].shape == (96, P, P)
    assert torch.equal(by_name["planes"].tensor, planes[0].reshape(96, P, P))
    # the last block's running RGB sum is the backbone's output: the planes
    assert torch.equal(by_name[f"backbone.b{P}.img"].tensor, by_name["planes"].tensor)
    for layer in layers:
        t = layer.tensor
        assert t.dtype == torch.float32 and t.device.type == "cpu" and not t.requires_grad
        assert layer.shape == tuple(t.shape)
    for b in blocks:
        r = int(b[1:])
        assert by_name[f"backbone.{b}.img"].shape == (96, r, r)
        assert by_name[f"backbone.{b}.x"].shape[1:] == (r, r)
    assert hook_count(G) == 0


def test_capture_render_matches_render_planes_and_superresolve(G, ws, planes, camera):
    layers = L.capture_render(G, planes, ws, camera.numpy())
    by_name = {layer.name: layer for layer in layers}
    assert [layer.name for layer in layers] == [
        "decoder.hidden",
        "render.features",
        "render.image_raw",
        "render.depth",
        "render.alpha",
        "superres.block0.x",
        "superres.block0.img",
        "superres.block1.x",
        "superres.block1.img",
        "image",
    ]
    ref = G.render_planes(planes, ws, camera[None], sampling="deterministic")
    r, R = G.neural_rendering_resolution, G.img_resolution
    for key, name in (
        ("features", "render.features"),
        ("image_raw", "render.image_raw"),
        ("image_depth", "render.depth"),
        ("image_alpha", "render.alpha"),
        ("image", "image"),
    ):
        assert (by_name[name].tensor - ref[key][0]).abs().max() <= 1e-6, name
    assert by_name["decoder.hidden"].shape == (G.decoder.hidden_dim, r, r)
    assert by_name["render.features"].shape == (32, r, r)
    assert by_name["image"].shape == (3, R, R)
    assert torch.equal(by_name["superres.block1.img"].tensor, by_name["image"].tensor)
    assert hook_count(G) == 0


def test_a_camera_already_on_the_models_device_is_taken_as_it_is():
    # capture_render hands frame_layers the camera tensor it made on the planes' device; on a GPU that tensor
    # cannot go through numpy. The meta device stands in for a GPU (it has no data to read either).
    cam = default_camera({"avg_camera_radius": 2.7, "avg_camera_pivot": [0, 0, 0.2]})
    meta = L._camera_tensor(cam.to("meta"), torch.device("meta"))
    assert meta.device.type == "meta" and meta.shape == (1, 25)
    for given in (cam, cam.numpy(), [float(v) for v in cam]):
        assert torch.equal(L._camera_tensor(given, torch.device("cpu")), cam.float()[None])
    with pytest.raises(ValueError, match="25 numbers"):
        L._camera_tensor(cam[:16], torch.device("cpu"))


def test_decoder_hidden_is_the_mlp_at_the_expected_termination_point(G, ws, planes, camera):
    res = 16
    layers = L.capture_render(G, planes, ws, camera, neural_rendering_resolution=res, superresolution=False)
    by_name = {layer.name: layer for layer in layers}
    assert "image" not in by_name
    o, d = sample_rays(camera[None, :16].view(1, 4, 4), camera[None, 16:].view(1, 3, 3), res)
    y, x = 9, 7
    depth = by_name["render.depth"].tensor[0, y, x]
    point = (o[0, y * res + x] + depth * d[0, y * res + x])[None, None]
    feats = sample_from_planes(G.plane_axes, planes, point, G.rendering_kwargs["box_warp"]).mean(1)  # (1, 32, 1)
    fc0 = G.decoder.net[0]
    hidden = torch.nn.functional.softplus(fc0.weight * fc0.weight_gain @ feats[0, :, 0] + fc0.bias * fc0.bias_gain)
    assert torch.allclose(by_name["decoder.hidden"].tensor[:, y, x], hidden, rtol=1e-4, atol=1e-4)


def test_hooks_record_only_on_the_capturing_thread(G, ws):
    b4 = G.backbone.synthesis.b4
    recorder = L.HookRecorder({"b4": b4})
    with recorder.record() as outputs:
        assert hook_count(G) == 1
        other = threading.Thread(target=lambda: G.planes(ws))
        other.start()
        other.join()
        assert outputs == {}  # the other thread ran b4 with the hook installed: nothing recorded
        G.planes(ws)
        assert set(outputs) == {"b4"}
    assert hook_count(G) == 0


def test_capture_while_another_thread_renders(G, ws, captured, camera):
    """A render thread running the same modules during a capture changes nothing in it."""
    stop = threading.Event()
    ws2 = ws.flip(1).contiguous()  # another latent, so foreign outputs would show

    def render_loop():
        while not stop.is_set():
            G.planes(ws2)

    t = threading.Thread(target=render_loop)
    t.start()
    try:
        for _ in range(3):
            layers, planes = L.capture_backbone(G, ws)
            for a, b in zip(layers, captured[0]):
                assert torch.equal(a.tensor, b.tensor), a.name
    finally:
        stop.set()
        t.join()
    assert hook_count(G) == 0


def test_hooks_removed_when_capture_fails(G, ws):
    with pytest.raises(RuntimeError):
        L.capture_backbone(G, ws[:, :1])  # too few ws: the backbone raises
    assert hook_count(G) == 0


def test_layer_stats_match_numpy(captured):
    for layer in captured[0]:
        x = layer.tensor.numpy().astype(np.float64)
        s = L.layer_stats(layer.tensor)
        expected = {"mean": x.mean(), "std": x.std(), "min": x.min(), "max": x.max()}
        for k, v in expected.items():
            assert abs(s[k] - v) <= 1e-5 * max(1.0, abs(v)), (layer.name, k)


def test_layer_image_channels_normalisation_scale_and_fft():
    t = torch.zeros(5, 4, 6)
    t[0] = 1.0
    t[0, 0, 0] = -1.0
    t[4] = torch.arange(24.0).reshape(4, 6)
    assert L.channels(t) == 5 and L.channels(torch.zeros(12, 256)) == 1
    raw = L.layer_image(t, L.LayerView(channel=0, normalize=False))
    assert raw.shape == (4, 6, 3) and raw.dtype == np.uint8
    assert (raw[0, 0] == 0).all() and (raw[1, 1] == 255).all()  # -1 -> black, 1 -> white
    assert (L.layer_image(t, L.LayerView(channel=1, normalize=False)) == 128).all()  # 0 -> mid-grey
    half = L.layer_image(t, L.LayerView(channel=0, normalize=False, scale_db=-20 * np.log10(2)))
    assert half[1, 1, 0] == round(1.5 * 127.5)  # 1/2 -> 191
    x = t[0].double()
    norm = L.layer_image(t, L.LayerView(channel=0))
    assert norm[0, 0, 0] == np.uint8(np.clip(round((-1 / float(x.std(correction=0)) + 1) * 127.5), 0, 255))
    rgb = L.layer_image(t, L.LayerView(channel=4, rgb=True, normalize=False))  # start clamped to 2
    assert rgb.shape == (4, 6, 3)
    assert (rgb[..., 0] == 128).all() and (rgb[..., 2].ravel()[1:] == 255).all() and rgb[0, 0, 2] == 128
    spec = L.layer_image(t, L.LayerView(channel=4, fft=True))
    mag = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(t[4].double().numpy()))))
    assert spec[..., 0].argmax() == mag.argmax()  # the DC term, at the centre after fftshift
    assert np.unravel_index(spec[..., 0].argmax(), (4, 6)) == (2, 3)
    assert spec.max() == 255 and spec.min() == 0
    ws_img = L.layer_image(torch.randn(12, 256), L.LayerView())
    assert ws_img.shape == (12, 256, 3)


# ----------------------------------------------------------------- planes
def test_reference_plane_labels_and_permuted_axes():
    ref = reference_plane_axes()
    assert PL.plane_axes_labels(ref) == [("x", "y"), ("x", "z"), ("z", "x")]
    assert PL.plane_label(ref, 2) == "plane 2: (z, x)"
    permuted = ref[[2, 0, 1]]
    assert PL.plane_axes_labels(permuted) == [("z", "x"), ("x", "y"), ("x", "z")]
    zy = torch.tensor([[[0.0, 0, 1], [0, 1, 0], [1, 0, 0]]] * 3)  # reads (z, y)
    assert PL.plane_axes_labels(zy)[0] == ("z", "y")
    # the labels are what project_onto_planes really reads
    p = torch.tensor([[[0.1, 0.2, 0.3]]])
    coords = project_onto_planes(ref, p)[:, 0]
    value = {"x": 0.1, "y": 0.2, "z": 0.3}
    for k, (u, v) in enumerate(PL.plane_axes_labels(ref)):
        assert coords[k].tolist() == pytest.approx([value[u], value[v]])


def test_pca_deterministic_ranked_and_shared(planes):
    a, b = PL.fit_pca(planes), PL.fit_pca(planes.clone())
    for f in ("mean", "components", "explained", "lo", "hi"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    assert ((a.explained >= 0) & (a.explained <= 1)).all()
    assert a.explained[0] >= a.explained[1] >= a.explained[2]
    assert 0 < a.total <= 1 and a.total == pytest.approx(a.explained.sum())
    assert np.allclose(a.components @ a.components.T, np.eye(3), atol=1e-9)
    for comp in a.components:
        assert comp[np.argmax(np.abs(comp))] > 0
    imgs = PL.pca_images(planes, a)
    P = planes.shape[-1]
    assert imgs.shape == (3, P, P, 3) and imgs.dtype == np.uint8
    edited = planes.clone()
    edited[0, 1, :, 5, 7] = planes[0, 0, :, 40, 50]  # a texel of plane 0 copied into plane 1
    shown = PL.pca_images(edited, a)
    assert np.array_equal(shown[1, 5, 7], imgs[0, 40, 50])
    # the explained ratios are those of the texels' covariance
    x = planes[0].double().permute(0, 2, 3, 1).reshape(-1, 32).numpy()
    ev = np.linalg.eigvalsh(np.cov(x.T))[::-1]
    assert np.allclose(a.explained, ev[:3] / ev.sum(), atol=1e-9)
    strided = PL.fit_pca(planes, stride=4)
    assert np.array_equal(strided.components, PL.fit_pca(planes, stride=4).components)


def test_channel_images_share_one_range_and_grid_layout(planes):
    edited = planes.clone()
    edited[0, 2, 3, 10, 11] = planes[0, 0, 3, 20, 21]
    imgs = PL.channel_images(edited, 3)
    P = planes.shape[-1]
    assert imgs.shape == (3, P, P) and imgs.dtype == np.uint8
    assert imgs[2, 10, 11] == imgs[0, 20, 21]
    grid = PL.channel_grid(planes, 1, columns=8)
    assert grid.shape == (4 * P + 3, 8 * P + 7)
    assert (grid[P, :] == 0).all() and (grid[:, P] == 0).all()  # separators
    one = planes[0, 1, 9].double().numpy()  # channel 9: row 1, column 1
    lo, hi = np.percentile(one, PL.PCA_PERCENTILES)
    expected = (np.clip((one - lo) / (hi - lo), 0, 1) * 255).round().astype(np.uint8)
    assert np.array_equal(grid[P + 1 : 2 * P + 1, P + 1 : 2 * P + 1], expected)


def test_texel_info_world_coordinates(G, planes):
    P = planes.shape[-1]
    box = G.rendering_kwargs["box_warp"]
    info = PL.texel_info(planes, 2, row=0, col=P - 1, plane_axes=G.plane_axes, box_warp=box)
    assert info.axes == ("z", "x")
    assert info.u_world == pytest.approx((1 - 1 / P) * box / 2)
    assert info.v_world == pytest.approx(-(1 - 1 / P) * box / 2)
    assert info.point.tolist() == pytest.approx([info.v_world, 0.0, info.u_world])  # (z, x) plane
    assert np.array_equal(info.values, planes[0, 2, :, 0, P - 1].double().numpy())
    # bilinear sampling exactly at the texel centre reads that texel alone
    pt = torch.tensor(info.point, dtype=torch.float32)[None, None]
    feats = sample_from_planes(G.plane_axes, planes, pt, box)[0, 2, :, 0]
    assert torch.allclose(feats, planes[0, 2, :, 0, P - 1], atol=1e-6)
    with pytest.raises(ValueError):
        PL.texel_info(planes, 3, 0, 0, G.plane_axes, box)


# ----------------------------------------------------------------- slices
@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_axis_slice_points_are_upright_and_span_the_box(G, axis):
    spec = SL.SliceSpec(axis=axis, position=0.1, resolution=8)
    pts, corners = SL.slice_points(G, spec)
    half = G.rendering_kwargs["box_warp"] / 2
    i = "xyz".index(axis)
    assert pts.shape == (8, 8, 3) and pts.dtype == np.float32
    assert np.allclose(pts[..., i], 0.1)
    assert np.allclose(corners[:, i], 0.1)
    others = [j for j in range(3) if j != i]
    assert np.allclose(np.abs(corners[:, others]), half)
    assert np.abs(pts[..., others]).max() == pytest.approx(half * (1 - 1 / 8))
    right, up = corners[1] - corners[0], corners[0] - corners[3]  # TL->TR, BL->TL
    assert np.allclose(pts[0, -1] - pts[0, 0], right * 7 / 8) and np.allclose(pts[0, 0] - pts[-1, 0], up * 7 / 8)
    if axis in ("x", "z"):
        assert up[1] > 0  # y goes up
    # seen from the positive side: right x up points at the viewer, along +axis
    assert np.cross(right, up)[i] > 0


def test_camera_slice_faces_the_camera(G, camera):
    spec = SL.SliceSpec(axis="camera", position=0.05, resolution=4)
    pivot = G.rendering_kwargs["avg_camera_pivot"]
    pts, corners = SL.slice_points(G, spec, camera=camera, pivot=pivot)
    c2w = camera[:16].view(4, 4).double().numpy()
    forward = c2w[:3, 2]
    centre = corners.mean(0)
    assert np.allclose(centre, np.asarray(pivot) + 0.05 * forward)
    assert np.allclose((pts.reshape(-1, 3) - centre) @ forward, 0, atol=1e-6)
    assert np.dot(corners[1] - corners[0], c2w[:3, 0]) > 0  # image right = camera right
    assert np.dot(corners[0] - corners[3], c2w[:3, 1]) < 0  # image up = -camera y (OpenCV y is down)
    assert np.linalg.norm(corners[1] - corners[0]) == pytest.approx(G.rendering_kwargs["box_warp"])


def test_density_slice_equals_sample_at_the_same_points(G, planes):
    s = SL.density_slice(G, planes, SL.SliceSpec(axis="x", position=0.02, resolution=32))
    ref = G.sample(torch.from_numpy(s.points.reshape(1, -1, 3)), planes)
    assert np.array_equal(s.sigma, ref["sigma"][0, :, 0].numpy().reshape(32, 32))
    assert np.array_equal(s.rgb, np.clip(ref["rgb"][0, :, :3].numpy().reshape(32, 32, 3), 0, 1))
    assert s.corners.shape == (4, 3)


def test_slice_image_contour_lies_where_sigma_crosses_the_level(G, planes):
    s = SL.density_slice(G, planes, SL.SliceSpec(axis="z", position=0.0, resolution=64))
    level = default_level(G)
    assert (s.sigma > level).any() and (s.sigma < level).any()  # the head crosses the slice
    img = SL.slice_image(s, level)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    red = (img == np.array(SL.CONTOUR_COLOUR, np.uint8)).all(-1)
    assert red.any()
    assert np.array_equal(red, SL.contour_mask(s.sigma, level))
    pad = np.pad(s.sigma, 1, constant_values=np.inf)
    for r, c in zip(*np.nonzero(red)):
        assert s.sigma[r, c] >= level
        neighbours = [pad[r, c + 1], pad[r + 2, c + 1], pad[r + 1, c], pad[r + 1, c + 2]]
        assert min(neighbours) < level
    colour = SL.slice_colour_image(s)
    assert colour.shape == (64, 64, 3) and np.array_equal(colour, (s.rgb * 255).round().astype(np.uint8))


def test_colour_map_ends():
    assert SL.colour_map(np.array([0.0, 1.0])).tolist() == [list(SL.VIRIDIS[0]), list(SL.VIRIDIS[-1])]


# ----------------------------------------------------------------- probe
def test_probe_ray_depth_and_density(G, ws, planes):
    cam = orbit_camera(
        0.3, -0.1, 2.7, G.rendering_kwargs["avg_camera_pivot"], focal=G.rendering_kwargs["default_focal"]
    )
    res = 32
    out = G.render_planes(planes, ws, cam[None], neural_rendering_resolution=res, superresolution=False)
    depth, alpha = out["image_depth"][0], out["image_alpha"][0]
    _, dirs = sample_rays(cam[None, :16].view(1, 4, 4), cam[None, 16:].view(1, 3, 3), res)
    ys, xs = np.nonzero(alpha[0].numpy() > 0.5)
    y, x = int(ys[len(ys) // 2]), int(xs[len(xs) // 2])
    p = probe_pixel(G, planes, cam.numpy(), depth, alpha, x, y)
    assert np.array_equal(p.direction, dirs[0, y * res + x].double().numpy())
    assert p.depth == float(depth[0, y, x]) and p.opacity == float(alpha[0, y, x])
    assert np.allclose(p.point, p.origin + p.depth * p.direction, atol=1e-6)
    ref = G.sample(torch.tensor(p.point, dtype=torch.float32).view(1, 1, 3), planes)
    assert p.sigma == pytest.approx(float(ref["sigma"][0, 0, 0]), rel=1e-5, abs=1e-4)
    assert p.density == pytest.approx(float(torch.nn.functional.softplus(torch.tensor(p.sigma - 1.0))), rel=1e-6)
    assert p.sigma > default_level(G) - 50  # an opaque pixel's ray stops near the surface
    with pytest.raises(ValueError):
        probe_pixel(G, planes, cam, depth[0], alpha[0], res, 0)


# ----------------------------------------------------------------- training runs
def write_snapshot(folder, kimg: int, data: bytes = b"x", mtime: float | None = None):
    p = folder / f"network-snapshot-{kimg:06d}.pkl"
    p.write_bytes(data)
    if mtime is not None:
        os.utime(p, (mtime, mtime))
    return p


def test_list_snapshots_sorted_by_kimg(tmp_path):
    for k in (200, 4, 1000, 40):
        write_snapshot(tmp_path, k)
    (tmp_path / "network-snapshot-000008.pkl.tmp").write_bytes(b"x")
    (tmp_path / "log.txt").write_text("x")
    (tmp_path / "fakes000200.png").write_bytes(b"x")
    (tmp_path / "network-snapshot-000300.pkl").mkdir()
    snaps = RU.list_snapshots(tmp_path)
    assert [s.kimg for s in snaps] == [4, 40, 200, 1000]
    assert snaps[0] == RU.Snapshot(4, str(tmp_path / "network-snapshot-000004.pkl"))
    assert RU.SNAPSHOT_PATTERN.fullmatch("network-snapshot-001234.pkl").group(1) == "001234"
    with pytest.raises(OSError, match="missing-run"):
        RU.list_snapshots(tmp_path / "missing-run")
    with pytest.raises(OSError, match="log.txt"):
        RU.list_snapshots(tmp_path / "log.txt")


def test_run_follower_waits_for_a_settled_file_and_returns_each_newer_one_once(tmp_path):
    f = RU.RunFollower(tmp_path, settle_s=1.0)
    assert f.poll(0.0) is None and f.seen == []
    write_snapshot(tmp_path, 0, b"a" * 10, mtime=1000)
    assert f.poll(10.0) is None  # first seen now
    assert f.poll(10.5) is None
    got = f.poll(11.0)
    assert got is not None and got.kimg == 0
    assert f.poll(12.0) is None  # returned once
    # a snapshot still being written: it grows, so it is not settled
    p = write_snapshot(tmp_path, 4, b"b" * 5, mtime=1001)
    assert f.poll(20.0) is None
    p.write_bytes(b"b" * 50)
    os.utime(p, (1002, 1002))
    assert f.poll(20.9) is None
    assert f.poll(21.5) is None  # changed at 20.9: settles at 21.9
    os.utime(p, (1003, 1003))  # touched: mtime changes, the clock starts again
    assert f.poll(22.0) is None
    assert f.poll(22.9) is None
    got = f.poll(23.0)
    assert got is not None and got.kimg == 4
    assert [s.kimg for s in f.seen] == [0, 4]
    # two new ones at once: only the newest is returned
    write_snapshot(tmp_path, 8, mtime=1004)
    write_snapshot(tmp_path, 12, mtime=1004)
    assert f.poll(30.0) is None
    assert f.poll(31.0).kimg == 12
    assert f.last.kimg == 12
    # an older file appearing later is not newer than the last returned
    write_snapshot(tmp_path, 2, mtime=1005)
    assert f.poll(40.0) is None and f.poll(50.0) is None


def test_run_follower_skips_what_the_caller_has_and_empty_files(tmp_path):
    write_snapshot(tmp_path, 40)
    f = RU.RunFollower(tmp_path, settle_s=0.5, after=40)
    assert f.poll(0.0) is None and f.poll(5.0) is None
    write_snapshot(tmp_path, 80, b"")
    assert f.poll(6.0) is None and f.poll(9.0) is None  # empty: not written yet
    write_snapshot(tmp_path, 80, b"data", mtime=2000)
    assert f.poll(10.0) is None
    assert f.poll(10.5).kimg == 80
