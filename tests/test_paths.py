"""Camera paths (issue 17): keyframes, C1 interpolation, files (ours and nerfstudio's), rendering, CLI."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import replace

import numpy as np
import pytest

from renderer import load_generator
from renderer.cli import main
from renderer.engine import LatentSpec, RenderEngine, RenderRequest
from renderer.errors import Cancelled, ExportError
from renderer.export.video import read_video_info
from renderer.paths import files as F
from renderer.paths.interpolate import frame_times, sample
from renderer.paths.keyframes import CameraPath, Keyframe
from renderer.paths.render import PathRenderOptions, render_path_frames, write_path_video


def four(**kw) -> CameraPath:
    kfs = (
        Keyframe(0.0, yaw=0.0, seed=1),
        Keyframe(1.0, yaw=0.5, pitch=-0.2, radius=3.0, seed=2, psi=0.7),
        Keyframe(2.5, yaw=-0.3, pitch=0.1, pivot=(0.1, 0.0, 0.2), seed=2, seed_b=5, t=0.5),
        Keyframe(3.0, yaw=0.1, fov_deg=25.0, roll=0.1, seed=4),
    )
    return CameraPath(kfs, **kw)


ALL = [dict(mode=m, loop=lo) for m in ("spline", "orbit") for lo in (False, True)]


def pos(path, t):
    return sample(path, t).cam2world[:3, 3]


def linear_pos(path, t):
    """A deliberately C0-only interpolation: piecewise-linear positions between the keyframes."""
    ts = path.times
    ps = np.array([k.cam2world()[:3, 3] for k in path.keyframes])
    return np.array([np.interp(t, ts, ps[:, i]) for i in range(3)])


def velocity_jumps(f, path, eps=1e-5):
    """|v_after - v_before| / |v| at every inner keyframe, by one-sided finite differences."""
    out = []
    for k in path.keyframes[1:-1]:
        v0 = (f(path, k.time) - f(path, k.time - eps)) / eps
        v1 = (f(path, k.time + eps) - f(path, k.time)) / eps
        out.append(np.linalg.norm(v1 - v0) / max(np.linalg.norm(v0), np.linalg.norm(v1)))
    return out


# ----------------------------------------------------------------- keyframes and validation
def test_validation_messages():
    with pytest.raises(ValueError, match="at least one keyframe"):
        CameraPath(())
    with pytest.raises(ValueError, match="must increase"):
        CameraPath((Keyframe(1.0), Keyframe(1.0, yaw=0.1)))
    with pytest.raises(ValueError, match="finite"):
        Keyframe(math.nan)
    with pytest.raises(ValueError, match="fov_deg"):
        Keyframe(0.0, fov_deg=190)
    with pytest.raises(ValueError, match="view"):
        Keyframe(0.0, view="x")
    with pytest.raises(ValueError, match="loop's duration"):
        four(loop=True, duration=2.0)


def test_editing_returns_sorted_new_paths():
    p = four()
    q = p.add_keyframe(Keyframe(0.5, yaw=0.2))
    assert [k.time for k in q.keyframes] == [0.0, 0.5, 1.0, 2.5, 3.0] and len(p.keyframes) == 4
    q = q.move_keyframe(1, 2.0)
    assert [k.time for k in q.keyframes] == [0.0, 1.0, 2.0, 2.5, 3.0] and q.keyframes[2].yaw == 0.2
    q = q.update_keyframe(2, psi=0.5).delete_keyframe(0)
    assert [k.time for k in q.keyframes] == [1.0, 2.0, 2.5, 3.0] and q.keyframes[1].psi == 0.5
    with pytest.raises(ValueError, match="already a keyframe"):
        q.add_keyframe(Keyframe(1.0))


def test_keyframe_camera_is_the_viewer_orbit_camera():
    from viz.orbit import OrbitCamera

    k = Keyframe(0.0, yaw=0.3, pitch=-0.2, radius=2.5, pivot=(0.0, 0.1, 0.2), center=(0.1, 0, 0), fov_deg=20)
    o = OrbitCamera(0.3, -0.2, 2.5, (0.0, 0.1, 0.2), (0.1, 0, 0), 20)
    assert np.allclose(k.camera25(), o.to_camera().numpy(), atol=1e-6)


# ----------------------------------------------------------------- interpolation
@pytest.mark.parametrize("kw", ALL)
def test_keyframes_are_reproduced(kw):
    p = four(**kw)
    for i, k in enumerate(p.keyframes):
        s = sample(p, k.time)
        assert np.abs(np.array(s.camera) - np.array(k.camera25())).max() <= 1e-6
        assert s.latent == LatentSpec(seed=k.seed, seed_b=k.seed_b, t=k.t, space="w")
        assert (s.psi, s.cutoff, s.view, s.at_keyframe) == (k.psi, k.cutoff, k.view, i)


@pytest.mark.parametrize("kw", ALL)
def test_velocity_is_continuous_across_keyframes(kw):
    p = four(**kw)
    assert max(velocity_jumps(pos, p)) < 0.01
    rot = lambda path, t: sample(path, t).cam2world[:3, :3].reshape(-1)  # noqa: E731
    assert max(velocity_jumps(rot, p)) < 0.01
    assert min(velocity_jumps(linear_pos, p)) > 0.1  # the same check catches a C0-only path


def test_latent_between_keyframes():
    p = four(latent_space="z")
    s = sample(p, 0.25)
    assert s.latent == LatentSpec(seed=1, seed_b=2, t=0.25, space="z") and (s.index, s.next_index) == (0, 1)
    s = sample(p, 2.0)  # seed 2 -> the A/B blend 2 -> 5 at 0.5
    assert s.latent.blend_to == LatentSpec(seed=2, seed_b=5, t=0.5, space="z")
    assert s.latent.blend_t == pytest.approx(2 / 3)
    assert 0.7 < sample(p, 1.5).psi < 1.0  # psi moves smoothly from 0.7 towards 1


def test_no_flips_on_a_350_degree_turn():
    n = 8
    kfs = tuple(Keyframe(float(i), yaw=math.radians(350) * i / (n - 1), pitch=0.1 * math.sin(i)) for i in range(n))
    for mode in ("spline", "orbit"):
        p = CameraPath(kfs, mode=mode, fps=24)
        mats = [sample(p, float(t)).cam2world[:3, :3] for t in frame_times(p)]
        angles = [math.acos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1)) for a, b in zip(mats, mats[1:])]
        assert max(angles) < math.radians(5), mode
        total = sum(angles)
        assert math.radians(340) < total < math.radians(370), mode


def test_constant_speed_gives_equal_steps():
    kfs = (Keyframe(0.0), Keyframe(0.5, yaw=0.3), Keyframe(2.5, yaw=0.5, pitch=-0.2), Keyframe(3.0, yaw=1.2))
    p = CameraPath(kfs, fps=20, constant_speed=True)
    ts = frame_times(p)
    steps = np.linalg.norm(np.diff([pos(p, float(t)) for t in ts], axis=0), axis=1)
    assert steps.max() / steps.min() < 1.02
    assert np.allclose(pos(p, 3.0), kfs[-1].cam2world()[:3, 3])  # still ends on the last keyframe
    plain = np.linalg.norm(np.diff([pos(replace(p, constant_speed=False), float(t)) for t in ts], axis=0), axis=1)
    assert plain.max() / plain.min() > 1.5


def test_loop_closes_smoothly():
    p = four(loop=True)
    d = p.total_duration
    assert np.allclose(sample(p, d).camera, sample(p, 0.0).camera, atol=1e-9)
    eps = 1e-5
    v0 = (pos(p, d) - pos(p, d - eps)) / eps
    v1 = (pos(p, eps) - pos(p, 0.0)) / eps
    assert np.linalg.norm(v1 - v0) / np.linalg.norm(v0) < 0.01


def test_frame_count_is_fps_times_duration():
    assert len(frame_times(four(fps=30, duration=2.0))) == 60
    assert len(frame_times(four(fps=24, duration=3.5, loop=True))) == 84
    p = four(fps=10)  # default: last keyframe + one frame, so the last frame is the last keyframe
    ts = frame_times(p)
    assert len(ts) == 31 and ts[-1] == pytest.approx(3.0)
    p = four(fps=10, loop=True)  # loops leave out the frame that repeats the first
    assert len(frame_times(p)) == 40 and frame_times(p)[-1] < p.total_duration


# ----------------------------------------------------------------- files
def test_json_round_trip_is_identical(tmp_path):
    p = four(mode="orbit", loop=True, tension=0.25, latent_space="z", fps=24, duration=4.5, constant_speed=True)
    f = F.save_path(p, tmp_path / "shot.json")
    assert F.load_path(f) == p and F.load_any(f)[1] == "triplane-viz"
    with pytest.raises(ExportError, match="exists"):
        F.save_path(p, f)
    data = json.loads(f.read_text())
    data["keyframes"][1]["orbit"]["yaw"] = 1.0
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ExportError, match="bad.json: keyframe 1: .*disagree"):
        F.load_path(tmp_path / "bad.json")
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(ExportError, match="neither"):
        F.load_any(tmp_path / "x.json")


def test_keyframe_from_a_camera_keeps_roll():
    m = Keyframe(0.0, yaw=0.4, pitch=-0.3, roll=0.7, radius=2.0).cam2world()
    k = F.keyframe_from_cam2world(m, 20.0, 0.0)
    assert np.abs(k.cam2world() - m).max() < 1e-9 and k.roll == pytest.approx(0.7)


@pytest.mark.parametrize("loop", [False, True])
def test_nerfstudio_round_trip_and_projection(loop):
    p = four(loop=loop, fps=10)
    ns = json.loads(json.dumps(F.to_nerfstudio(p, 96, 64)))
    assert {"camera_path", "keyframes", "render_height", "render_width", "fps", "seconds", "is_cycle"} <= set(ns)
    assert ns["camera_type"] == "perspective" and len(ns["camera_path"]) == p.frame_count
    q = F.from_nerfstudio(ns, seed=3)
    ours = [sample(p, float(t)) for t in frame_times(p)]
    back = [sample(q, float(t)) for t in frame_times(q)]
    assert len(back) == len(ours)
    for a, b in zip(ours, back):
        assert np.abs(np.array(a.camera) - np.array(b.camera)).max() <= 1e-6
        assert b.latent == LatentSpec(seed=3)
    # a world point lands on the same pixel under each convention's own projection
    W, H = 96, 64
    X = np.array([0.05, 0.1, 0.15])
    for s, frame in zip(ours, ns["camera_path"]):
        c2w = s.cam2world
        xc = c2w[:3, :3].T @ (X - c2w[:3, 3])  # OpenCV: x right, y down, z forward
        f_px = s.focal * H
        uv_cv = (W / 2 + f_px * xc[0] / xc[2], H / 2 + f_px * xc[1] / xc[2])
        gl = np.array(frame["camera_to_world"]).reshape(4, 4)
        xg = gl[:3, :3].T @ (X - gl[:3, 3])  # OpenGL: x right, y up, z back; nerfstudio's pinhole
        fy = (H / 2) / math.tan(math.radians(frame["fov"]) / 2)
        uv_gl = (W / 2 + fy * xg[0] / -xg[2], H / 2 - fy * xg[1] / -xg[2])
        assert np.allclose(uv_cv, uv_gl, atol=1e-6)


def test_nerfstudio_import_errors():
    with pytest.raises(ValueError, match="not a nerfstudio"):
        F.from_nerfstudio({"keyframes": []})
    bad = {"camera_path": [{"camera_to_world": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], "fov": 50}]}
    with pytest.raises(ValueError, match="seconds"):
        F.from_nerfstudio(bad)
    with pytest.raises(ValueError, match="frame 0: .*orthonormal"):
        F.from_nerfstudio({**bad, "seconds": 1, "camera_path": [{"camera_to_world": [2] + [0] * 15, "fov": 50}]})


# ----------------------------------------------------------------- rendering
@pytest.fixture(scope="module")
def engine(golden_native_checkpoint):
    return RenderEngine(load_generator(golden_native_checkpoint), timed=False)


def small(**kw) -> CameraPath:
    kfs = (
        Keyframe(0.0, seed=1, view="raw"),
        Keyframe(0.2, yaw=0.4, seed=2, view="raw"),
        Keyframe(0.3, yaw=-0.2, seed=2),
    )
    return CameraPath(kfs, fps=10, **kw)


def test_two_renders_give_identical_frames(engine):
    opts = PathRenderOptions(neural_rendering_resolution=32)
    a = [px for _, _, px in render_path_frames(engine, small(), opts)]
    engine._ws.clear(), engine._planes.clear()
    b = [px for _, _, px in render_path_frames(engine, small(), opts)]
    assert len(a) == small().frame_count == 4
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], a[1])


def test_path_video_with_png_sequence_and_cancel(engine, tmp_path):
    opts = PathRenderOptions(neural_rendering_resolution=32)
    seen = []
    s = write_path_video(
        engine, small(), tmp_path / "v.mp4", opts, progress=lambda f, _: seen.append(f), png_dir=tmp_path / "seq"
    )
    info = read_video_info(s.path)
    assert info["frames"] == 4 and info["size"] == (32, 32) and seen[-1] == 1.0
    names = sorted(p.name for p in (tmp_path / "seq").iterdir())
    assert "cameras.json" in names and "frame_00003.png" in names and "depth_00003.npy" in names
    cams = json.loads((tmp_path / "seq" / "cameras.json").read_text())
    assert len(cams["frames"]) == 4 and len(cams["frames"][0]["camera"]) == 25
    cancel = threading.Event()

    def progress(f, stage):
        if f >= 0.5:
            cancel.set()

    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(Cancelled):
        write_path_video(
            engine, small(), tmp_path / "c.mp4", opts, progress=progress, cancel=cancel, png_dir=tmp_path / "cseq"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_blend_to_latent_is_the_lerp_of_the_two_blends(engine):
    G = engine.G
    from renderer.camera import camera_tuple, default_camera

    cam = camera_tuple(default_camera(G.rendering_kwargs))

    def ws(lat):
        return engine.ws_for(RenderRequest(latent=lat, camera=cam, cond_camera=cam))

    a, b = LatentSpec(seed=2, seed_b=5, t=0.5), LatentSpec(seed=7)
    mid = ws(replace(a, blend_to=b, blend_t=0.25))
    assert np.allclose(mid.numpy(), (0.75 * ws(a) + 0.25 * ws(b)).numpy(), atol=1e-5)
    assert np.array_equal(ws(replace(a, blend_to=b, blend_t=0.0)).numpy(), ws(a).numpy())
    z = ws(LatentSpec(seed=2, seed_b=5, t=0.5, space="z", blend_to=LatentSpec(seed=7, space="z"), blend_t=0.5))
    assert z.shape == mid.shape and np.isfinite(z.numpy()).all()


# ----------------------------------------------------------------- CLI
@pytest.mark.slow
def test_video_cli_with_path_files(tmp_path, golden_native_checkpoint, capsys):
    ours = F.save_path(small(), tmp_path / "shot.json")
    ns = tmp_path / "camera_path.json"
    ns.write_text(json.dumps(F.to_nerfstudio(small(), 64, 64)))
    base = ["video", "--network", str(golden_native_checkpoint), "--nrr", "32", "--quiet"]
    assert main([*base, "--path", str(ours), "--out", str(tmp_path / "a.mp4")]) == 0
    assert read_video_info(tmp_path / "a.mp4")["frames"] == 4
    argv = [*base, "--path", str(ns), "--seeds", "3", "--view", "raw", "--fps", "20", "--out", str(tmp_path / "b.mp4")]
    assert main(argv) == 0
    info = read_video_info(tmp_path / "b.mp4")
    assert info["frames"] == 8 and info["fps"] == pytest.approx(20)
    capsys.readouterr()
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    for extra, fragment in (
        (["--path", str(tmp_path / "bad.json")], "neither"),
        (["--path", str(tmp_path / "missing.json")], "no such file"),
        (["--path", str(ours), "--seeds", "1"], "carries its own latent"),
        ([], "needs --seeds"),
    ):
        with pytest.raises(SystemExit) as e:
            main([*base, *extra, "--out", str(tmp_path / "c.mp4")])
        err = capsys.readouterr().err
        assert e.value.code == 2 and fragment in err and err.count("\n") == 1, err
    assert not (tmp_path / "c.mp4").exists()
