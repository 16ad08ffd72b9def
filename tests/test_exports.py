"""Screenshot metadata and `images --from-png`, depth export, videos, and the `mesh`/`video` commands."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from renderer import load_generator
from renderer.camera import camera_tuple, default_camera
from renderer.cli import main
from renderer.engine import LatentSpec, RenderEngine, RenderRequest
from renderer.engine.frames import view_pixels
from renderer.errors import Cancelled, ExportError
from renderer.export import screenshot as X
from renderer.export.video import VideoSpec, frame_requests, orbit_offsets, read_video_info, write_video


@pytest.fixture(scope="module")
def engine(golden_native_checkpoint):
    return RenderEngine(load_generator(golden_native_checkpoint), timed=False)


def fancy_request(G, **kw) -> RenderRequest:
    """Interpolation + style mixing + cutoff + an off-centre camera + raw view at 32."""
    rk = G.rendering_kwargs
    base = dict(
        latent=LatentSpec(seed=3.0, seed_b=8.0, t=0.3125, space="z", mix_seed=5, mix_start=6),
        camera=camera_tuple(default_camera(rk, yaw=0.31, pitch=-0.17)),
        cond_camera=camera_tuple(default_camera(rk, yaw=0.05)),
        psi=0.65,
        cutoff=8,
        neural_rendering_resolution=32,
        depth_multiplier=0.75,
        importance_multiplier=1.25,
        superresolution=False,
    )
    base.update(kw)
    return RenderRequest(**base)


def shoot(engine, req, view, path, model) -> np.ndarray:
    res = engine.render(req)
    pixels = view_pixels(view, res.image, res.raw, res.depth, res.alpha)
    X.save_screenshot(pixels, path, X.screenshot_metadata(req, view, str(model)))
    return pixels


# ----------------------------------------------------------------- metadata
def test_request_round_trips_exactly_through_json(engine):
    req = fancy_request(engine.G, sampling="stochastic", rng_seed=77, noise_mode="none")
    back = X.request_from_dict(json.loads(json.dumps(X.request_to_dict(req))))
    assert back == req and back.camera == req.camera  # every float bit-identical


def test_screenshot_carries_chunks_and_sidecar(engine, tmp_path, golden_native_checkpoint):
    req = fancy_request(engine.G)
    path = tmp_path / "shot.png"
    pixels = shoot(engine, req, "raw", path, golden_native_checkpoint)
    with Image.open(path) as im:
        text = dict(im.text)
        assert np.array_equal(np.asarray(im), pixels)
    for key in (
        "model",
        "seed",
        "seeds",
        "interpolation",
        "style mixing",
        "psi",
        "cutoff",
        "camera",
        "conditioning camera",
        "sampling",
        X.META_KEY,
    ):
        assert key in text, key
    assert text["seeds"] == "3,8,5" and text["cutoff"] == "8" and "t=0.3125" in text["interpolation"]
    assert text["psi"] == "0.65" and len(text["camera"].split()) == 25
    assert text["sampling"].startswith("deterministic, neural resolution 32, depth x0.75, importance x1.25")
    side = json.loads((tmp_path / "shot.json").read_text())
    assert side["image"] == "shot.png" and side["model"] == str(golden_native_checkpoint)
    assert side["cameras"]["camera"]["c25"] == list(req.camera)
    assert np.allclose(np.array(side["cameras"]["camera"]["cam2world"]).reshape(-1), req.camera[:16])
    assert side["cameras"]["conditioning"]["c25"] == list(req.cond_camera)
    assert side["cameras"]["camera"]["orbit_about_origin"]["yaw"] == pytest.approx(0.31, abs=1e-3)
    meta = X.read_metadata(path)
    assert X.request_from_metadata(meta) == (req, "raw")


def test_metadata_errors(tmp_path):
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(plain)
    with pytest.raises(ExportError, match="holds no triplane-viz metadata"):
        X.read_metadata(plain)
    with pytest.raises(ExportError, match="no such file"):
        X.read_metadata(tmp_path / "missing.png")
    (tmp_path / "plain.json").write_text("{not json")
    with pytest.raises(ExportError, match="not valid JSON"):
        X.read_metadata(plain)


@pytest.mark.parametrize("view", ["raw", "depth"])
def test_from_png_rerenders_identical_pixels(engine, tmp_path, golden_native_checkpoint, view, capsys):
    shot = tmp_path / f"shot-{view}.png"
    pixels = shoot(engine, fancy_request(engine.G), view, shot, golden_native_checkpoint)
    assert main(["images", "--from-png", str(shot)]) == 0
    out = capsys.readouterr().out
    assert "identical pixels" in out
    again = tmp_path / f"shot-{view}-rerender.png"
    assert np.array_equal(np.asarray(Image.open(again)), pixels)
    assert X.read_metadata(again)["request"] == X.read_metadata(shot)["request"]  # re-renderable in turn


@pytest.mark.slow
def test_from_png_image_view_with_superresolution(engine, tmp_path, golden_native_checkpoint, capsys):
    shot = tmp_path / "shot.png"
    req = fancy_request(engine.G, superresolution=True, neural_rendering_resolution=None)
    pixels = shoot(engine, req, "image", shot, golden_native_checkpoint)
    outdir = tmp_path / "again"
    assert (
        main(["images", "--from-png", str(shot), "--outdir", str(outdir), "--network", str(golden_native_checkpoint)])
        == 0
    )
    assert "identical pixels" in capsys.readouterr().out
    assert np.array_equal(np.asarray(Image.open(outdir / "shot-rerender.png")), pixels)


def test_from_png_rerenders_a_fitted_latent_from_the_ws_it_carries(engine, tmp_path, golden_native_checkpoint, capsys):
    G = engine.G
    seed5 = engine.ws_for(fancy_request(G, latent=LatentSpec(seed=5.0)))[0]
    ws = (seed5 + 0.1 * torch.randn(seed5.shape, generator=torch.Generator().manual_seed(0))).numpy()
    engine.set_custom_latent("fit-1", ws)
    req = fancy_request(G, latent=LatentSpec(seed=0.0, custom="fit-1"))
    res = engine.render(req)
    pixels = view_pixels("raw", res.image, res.raw, res.depth, res.alpha)
    with pytest.raises(ExportError, match="no ws to record"):
        X.screenshot_metadata(req, "raw", str(golden_native_checkpoint))
    meta = X.screenshot_metadata(req, "raw", str(golden_native_checkpoint), custom_ws=engine.custom_latents["fit-1"])
    assert np.array_equal(X.custom_ws_from_metadata(json.loads(json.dumps(meta))), ws)  # bit for bit through JSON
    shot = tmp_path / "fit.png"
    X.save_screenshot(pixels, shot, meta)
    assert main(["images", "--from-png", str(shot)]) == 0  # a fresh engine: the ws come from the screenshot
    assert "identical pixels" in capsys.readouterr().out
    again = np.asarray(Image.open(tmp_path / "fit-rerender.png"))
    assert np.array_equal(again, pixels)
    plain = engine.render(replace(req, latent=LatentSpec(seed=0.0)))
    assert not np.array_equal(again, view_pixels("raw", plain.image, plain.raw, plain.depth, plain.alpha))
    # a record without the ws (edited, or from elsewhere): one line, nothing written
    bare = {k: v for k, v in meta.items() if k != X.CUSTOM_KEY}
    X.save_screenshot(pixels, tmp_path / "bare.png", bare)
    with pytest.raises(SystemExit) as e:
        main(["images", "--from-png", str(tmp_path / "bare.png")])
    assert e.value.code == 2
    assert "does not carry its ws" in capsys.readouterr().err
    assert not (tmp_path / "bare-rerender.png").exists()


def test_from_png_cli_errors(tmp_path, capsys):
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(plain)
    for argv, fragment in (
        (["images", "--from-png", str(plain)], "holds no triplane-viz metadata"),
        (["images", "--from-png", str(plain), "--seeds", "1"], "leave out --seeds"),
        (["images", "--outdir", str(tmp_path)], "required: --seeds"),
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("triplane-render: error: ") and fragment in err[0], err


def test_from_png_refuses_to_replace_an_existing_rerender(engine, tmp_path, golden_native_checkpoint, capsys):
    shot = tmp_path / "shot.png"
    pixels = shoot(engine, fancy_request(engine.G), "raw", shot, golden_native_checkpoint)
    again = tmp_path / "shot-rerender.png"
    again.write_bytes(b"precious")
    with pytest.raises(SystemExit) as e:
        main(["images", "--from-png", str(shot)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(again) in err[0] and "exists" in err[0] and "--force" in err[0], err
    assert again.read_bytes() == b"precious"
    assert main(["images", "--from-png", str(shot), "--force"]) == 0
    assert "identical pixels" in capsys.readouterr().out
    assert np.array_equal(np.asarray(Image.open(again)), pixels)


def save_depth_like_the_viewer(engine, req, stem, model):
    """What the viewer's "save depth" writes: STEM.npy and the 16-bit STEM.png with the screenshot record."""
    res = engine.render(req)
    return res, X.save_depth(res.depth, res.alpha, stem, meta=X.screenshot_metadata(req, "depth", str(model)))


def test_from_png_on_a_16bit_depth_png_compares_depth(engine, tmp_path, golden_native_checkpoint, capsys):
    """A "save depth" PNG is re-rendered as a 16-bit depth PNG and compared value for value (not as the 8-bit view)."""
    res, (_, png) = save_depth_like_the_viewer(
        engine, fancy_request(engine.G), tmp_path / "depth-shot", golden_native_checkpoint
    )
    assert main(["images", "--from-png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "identical depth values to depth-shot.png" in out, out
    again = tmp_path / "depth-shot-rerender.png"
    with Image.open(png) as a, Image.open(again) as b:
        assert b.mode == a.mode and np.asarray(b).dtype == np.uint16
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert (b.text["depth_near"], b.text["depth_far"]) == (a.text["depth_near"], a.text["depth_far"])
    np.testing.assert_array_equal(X.read_depth_png(again), X.read_depth_png(png))
    meta = X.read_metadata(again)
    assert meta["request"] == X.read_metadata(png)["request"] and meta["rerendered_from"] == "depth-shot.png"


def test_from_png_on_a_changed_depth_png_reports_the_difference(engine, tmp_path, golden_native_checkpoint, capsys):
    _, (_, png) = save_depth_like_the_viewer(engine, fancy_request(engine.G), tmp_path / "d", golden_native_checkpoint)
    with Image.open(png) as im:
        original = np.asarray(im)
        record = im.text[X.META_KEY]
    v = original.copy()
    v[v > 0] = np.minimum(v[v > 0].astype(np.int64) + 7, 65535).astype(np.uint16)  # everything 7 levels nearer
    from PIL.PngImagePlugin import PngInfo

    chunks = PngInfo()
    chunks.add_itxt(X.META_KEY, record)
    Image.fromarray(v).save(png, pnginfo=chunks)
    assert main(["images", "--from-png", str(png), "--outdir", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    changed = int(((original > 0) & (original < 65535)).sum())
    assert changed > 100 and f"{changed} pixels differ from d.png" in out, out


def test_from_png_refuses_a_16bit_png_without_the_depth_range(engine, tmp_path, golden_native_checkpoint, capsys):
    """A 16-bit PNG with a screenshot record but no depth_near/depth_far cannot be compared: refused, nothing
    written."""
    req = fancy_request(engine.G)
    info = X._png_info(X.screenshot_metadata(req, "depth", str(golden_native_checkpoint)))
    png = tmp_path / "odd.png"
    Image.fromarray(np.full((32, 32), 1000, np.uint16)).save(png, pnginfo=info)
    with pytest.raises(SystemExit) as e:
        main(["images", "--from-png", str(png)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "odd.png" in err and "depth_near/depth_far" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.png"]


# ----------------------------------------------------------------- depth
def test_depth_npy_and_16bit_png(engine, tmp_path):
    res = engine.render(fancy_request(engine.G))
    npy, png = X.save_depth(res.depth, res.alpha, tmp_path / "d", meta={"model": "golden"})
    d = np.load(npy)
    assert d.dtype == np.float32 and np.array_equal(d, res.depth[0].numpy())
    with Image.open(png) as im:
        v = np.asarray(im)
        assert v.dtype == np.uint16 and im.text["depth_encoding"].startswith("depth = far")
    opaque = res.alpha[0].numpy() > 0.5
    assert opaque.any() and (~opaque).any()
    assert (v[~opaque] == 0).all() and (v[opaque] >= 1).all() and v[opaque].max() == 65535
    decoded = X.read_depth_png(png)
    near, far = float(d[opaque].min()), float(d[opaque].max())
    assert np.abs(decoded[opaque] - d[opaque]).max() <= (far - near) / 65534 * 0.51 + 1e-6
    assert np.isnan(decoded[~opaque]).all()
    with pytest.raises(ExportError, match="exists"):
        X.save_depth(res.depth, res.alpha, tmp_path / "d.npy")


# ----------------------------------------------------------------- video
def test_orbit_path_is_the_reference_path(engine):
    assert orbit_offsets(0.0) == pytest.approx((0.0, 0.2))
    assert orbit_offsets(0.25) == pytest.approx((0.35, -0.05))
    assert orbit_offsets(0.5) == pytest.approx((0.0, -0.3))
    reqs = list(frame_requests(VideoSpec(seeds=[4, 9], kind="orbit", frames=4), engine.G.rendering_kwargs))
    assert [r.latent.seed for r in reqs] == [4, 4, 4, 4, 9, 9, 9, 9]
    assert reqs[1].camera == camera_tuple(default_camera(engine.G.rendering_kwargs, yaw=0.35, pitch=-0.05))
    reqs = list(frame_requests(VideoSpec(seeds=[4, 9], kind="interp", frames=2), engine.G.rendering_kwargs))
    lat = [(r.latent.seed, r.latent.seed_b, r.latent.t) for r in reqs]
    assert lat == [(4, None, 0.0), (4, 9, 0.5), (9, None, 0.0), (9, 4, 0.5)]  # loops back to the first seed


def test_orbit_video_reads_back(engine, tmp_path):
    spec = VideoSpec(seeds=[0], kind="orbit", frames=5, fps=24, view="raw", neural_rendering_resolution=32)
    seen = []
    summary = write_video(engine, spec, tmp_path / "orbit.mp4", progress=lambda f, s: seen.append(f))
    info = read_video_info(summary.path)
    assert info["frames"] == 5 and info["size"] == (32, 32) and info["fps"] == pytest.approx(24)
    assert info["codec"].startswith("h264") and seen[-1] == 1.0 and len(seen) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orbit.mp4"]


def test_video_cli_interp_and_errors(tmp_path, golden_native_checkpoint, capsys):
    out = tmp_path / "v.mp4"
    argv = [
        "video",
        "--network",
        str(golden_native_checkpoint),
        "--seeds",
        "0,1",
        "--kind",
        "interp",
        "--frames",
        "2",
        "--view",
        "depth",
        "--nrr",
        "33",
        "--fps",
        "12",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    info = read_video_info(out)
    assert info["frames"] == 4 and info["size"] == (34, 34) and info["fps"] == pytest.approx(12)  # odd -> even
    for extra, fragment in (
        (["--seeds", "0"], "at least two seeds"),
        ([], "exists"),
        (["--out", str(tmp_path / "v.avi")], "unknown video format"),
    ):
        with pytest.raises(SystemExit):
            main(argv + extra)
        err = capsys.readouterr().err
        assert fragment in err and err.count("\n") == 1, err


def test_video_cancel_leaves_nothing(engine, tmp_path):
    cancel = threading.Event()

    def progress(f, stage):
        if f >= 0.5:
            cancel.set()

    spec = VideoSpec(seeds=[0], kind="orbit", frames=6, view="raw", neural_rendering_resolution=32)
    with pytest.raises(Cancelled):
        write_video(engine, spec, tmp_path / "v.mp4", progress=progress, cancel=cancel)
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------- mesh command
def test_mesh_cli_writes_a_reloadable_glb_and_runs_the_backbone_once(
    tmp_path, golden_native_checkpoint, capsys, monkeypatch
):
    import trimesh

    from renderer.model.generator import TriPlaneGenerator

    calls = []
    real = TriPlaneGenerator.planes
    monkeypatch.setattr(TriPlaneGenerator, "planes", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    out = tmp_path / "m.glb"
    assert (
        main(
            [
                "mesh",
                "--network",
                str(golden_native_checkpoint),
                "--seed",
                "2",
                "--res",
                "32",
                "--trunc",
                "0.7",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    line = capsys.readouterr().out
    assert line.startswith(f"wrote {out}") and "32^3, level 10" in line
    assert calls == [1]
    (mesh,) = trimesh.load(out, process=False).geometry.values()  # a scene keeps the colours
    assert len(mesh.vertices) > 100 and mesh.visual.material.metallicFactor == 0  # a matte material
    assert mesh.visual.vertex_attributes["color"].shape == (len(mesh.vertices), 3)  # COLOR_0 (linear, float)
    assert np.abs(mesh.vertices).max() <= 0.5 + 1e-6  # world units inside the box
    for argv, fragment in (
        (["--out", str(out)], "exists"),
        (["--out", str(tmp_path / "m.stl")], "'.stl'"),
        (["--res", "4096", "--out", str(tmp_path / "n.ply")], "expected an integer in 16..1024"),
        (["--level", "1e9", "--out", str(tmp_path / "n.ply")], "no surface at level"),
    ):
        with pytest.raises(SystemExit):
            main(["mesh", "--network", str(golden_native_checkpoint), "--res", "16", "--quiet", *argv])
        err = capsys.readouterr().err
        assert fragment in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.glb"]
    assert (
        main(
            [
                "mesh",
                "--network",
                str(golden_native_checkpoint),
                "--res",
                "16",
                "--level",
                "auto",
                "--out",
                str(tmp_path / "a.ply"),
                "--quiet",
            ]
        )
        == 0
    )
    assert "the raw density where the render's surfaces lie" in capsys.readouterr().err
    assert math.isfinite(float(trimesh.load(tmp_path / "a.ply", process=False).vertices.mean()))
