"""Pure viewer logic: orbit maths, state snapshots, the latest-wins render worker."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viz.jobs.worker import LatestWinsWorker
from viz.orbit import ORBIT_SPEED, PITCH_LIMIT, OrbitCamera, from_camera, orbit, pan, presets, zoom, zoom_fov
from viz.state import ModelDefaults, VizState


def _project(cam: OrbitCamera, p) -> np.ndarray:
    """Pixel coordinates (in units of viewport height) of world point p."""
    m = cam.cam2world()
    q = m[:3, :3].T @ (np.asarray(p) - m[:3, 3])
    from renderer.camera import fov_to_focal

    f = fov_to_focal(cam.fov_deg)
    return np.array([q[0] / q[2] * f, q[1] / q[2] * f])


def test_orbit_drag_amounts_and_directions():
    cam = OrbitCamera()
    right = orbit(cam, 100, 0, 500)
    assert right.yaw == pytest.approx(-100 * ORBIT_SPEED / 500) and right.pitch == 0
    down = orbit(cam, 0, 100, 500)
    assert down.pitch == pytest.approx(-100 * ORBIT_SPEED / 500)
    assert orbit(cam, 0, 1e6, 500).pitch == pytest.approx(-PITCH_LIMIT)
    assert orbit(cam, 0, -1e6, 500).pitch == pytest.approx(PITCH_LIMIT)


def test_dragging_right_turns_the_object_right():
    """A point on the object's +x side moves towards the camera's right... i.e. the view turns."""
    cam = OrbitCamera(pivot=(0, 0, 0))
    before = _project(cam, (0.3, 0, 0.3))
    after = _project(orbit(cam, 50, 0, 500), (0.3, 0, 0.3))
    assert after[0] > before[0]


@settings(max_examples=100, deadline=None)
@given(st.floats(-300, 300), st.floats(-300, 300))
def test_pan_moves_the_pivot_with_the_mouse(dx, dy):
    """After a pan the old pivot projects to where the mouse moved it (scene follows the mouse)."""
    cam = OrbitCamera(yaw=0.4, pitch=-0.2)
    moved = pan(cam, dx, dy, 600)
    p = _project(moved, cam.pivot) * 600
    assert p == pytest.approx([dx, dy], abs=1e-6 * 600 + 1e-3)
    assert np.linalg.norm(np.subtract(moved.pivot, moved.center)) == pytest.approx(
        np.linalg.norm(np.subtract(cam.pivot, cam.center))
    )


def test_zoom_and_fov():
    cam = OrbitCamera(radius=2.0, fov_deg=20)
    assert zoom(cam, 1).radius == pytest.approx(1.8) and zoom(cam, -1).radius > 2
    assert zoom(cam, 1000).radius >= 0.05
    assert zoom_fov(cam, 1).fov_deg < 20 and zoom_fov(cam, 1).radius == 2.0
    assert 1.0 <= zoom_fov(cam, 1e4).fov_deg


def test_presets_and_round_trip():
    p = presets(2.7, (0, 0, 0.2), 18.837)
    assert p["default"] == OrbitCamera()
    assert p["left"].yaw < 0 < p["right"].yaw
    assert -0.7 < p["top"].pitch < 0 < p["bottom"].pitch < 0.7  # within a face model's trained pitch range
    sphere = presets(1.7, (0, 0, 0), 45.0, full_sphere=True)  # ShapeNet-style: real top and bottom views
    assert sphere["top"].pitch < -1.4 and sphere["bottom"].pitch > 1.4
    shapenet = ModelDefaults.from_rendering_kwargs(
        {"avg_camera_radius": 1.7, "ray_start": "auto", "ray_end": "auto"}, 14
    )
    face = ModelDefaults.from_rendering_kwargs({"avg_camera_radius": 2.7, "ray_start": 2.25, "ray_end": 3.3}, 14)
    assert shapenet.full_sphere and not face.full_sphere
    assert face.radius_range == pytest.approx((0.675, 10.8))  # the ray range still starts ahead of the camera
    back = from_camera(OrbitCamera(yaw=0.3, pitch=0.1).to_camera(), pivot=(0, 0, 0.2))
    assert back.yaw == pytest.approx(0.3, abs=1e-5) and back.fov_deg == pytest.approx(18.837, abs=1e-4)


def test_state_snapshot_and_conditioning():
    s = VizState()
    s.apply_model(
        ModelDefaults.from_rendering_kwargs(
            {
                "avg_camera_radius": 1.7,
                "avg_camera_pivot": [0, 0, 0],
                "white_back": True,
                "ray_start": 0.1,
                "ray_end": 2.6,
            },
            14,
        )
    )
    assert s.camera.radius == 1.7 and s.camera.fov_deg == pytest.approx(45, abs=0.2)
    s.camera = orbit(s.camera, 80, 0, 400)
    r = s.snapshot(5)
    assert r.stamp == 5 and r.camera != r.cond_camera and r.superresolution
    s.cond.mode = "camera"
    assert s.snapshot(6).cond_camera == s.snapshot(6).camera
    s.cond.mode, s.cond.yaw = "custom", 0.2
    assert s.snapshot(7).cond_camera not in (r.cond_camera, r.camera)
    s.view.view = "depth"
    assert not s.snapshot(8).superresolution
    s.trunc.psi = math.nan
    with pytest.raises(ValueError, match="psi"):
        s.snapshot(9)


def test_interpolation_playback_pingpong_and_wrap():
    s = VizState()
    s.latent.interp, s.latent.playing, s.latent.speed = True, True, 1.0
    seen = []
    for _ in range(25):  # 2.5 units of travel: up, down, half up again
        s.latent.advance(0.1)
        seen.append(s.latent.t)
    assert max(seen) <= 1 and min(seen) >= 0 and max(seen) > 0.95 and seen[-1] == pytest.approx(0.5)
    s.latent.pingpong, s.latent.t = False, 0.95
    s.latent.advance(0.1)
    assert s.latent.t == pytest.approx(0.05)
    assert s.snapshot(1).latent.seed_b == 1.0


@dataclass(frozen=True)
class Job:
    stamp: int
    delay: float = 0.0
    fail: bool = False


def _slow(job: Job):
    time.sleep(job.delay)
    if job.fail:
        raise RuntimeError("render exploded")
    return job.stamp * 10


def wait_running(w: LatestWinsWorker, timeout: float = 5.0) -> None:
    """Until the worker's current job has started (not a fixed sleep: a loaded machine starts it late)."""
    deadline = time.monotonic() + timeout
    while w.busy_since is None and time.monotonic() < deadline:
        time.sleep(0.001)
    assert w.busy_since is not None, "the job never started"


def test_worker_latest_wins_and_never_stale():
    w = LatestWinsWorker(_slow)
    try:
        w.submit(Job(1, delay=0.3))
        wait_running(w)
        for s in range(2, 6):
            w.submit(Job(s))  # 2..4 are replaced before they start
        assert w.busy
        assert w.wait_idle(5)
        res = w.poll()
        assert res.stamp == 5 and res.value == 50 and w.dropped == 3
        assert w.poll() is None  # nothing new, and job 1's late result never shows
    finally:
        w.stop()


def test_worker_reports_errors_and_recovers():
    w = LatestWinsWorker(_slow)
    try:
        w.submit(Job(1, fail=True))
        w.wait_idle(5)
        res = w.poll()
        assert res.error == "RuntimeError: render exploded" and "Traceback" in res.details
        w.submit(Job(2))
        w.wait_idle(5)
        assert w.poll().value == 20
    finally:
        w.stop()


def test_worker_does_not_block_the_caller():
    w = LatestWinsWorker(_slow)
    try:
        t0 = time.perf_counter()
        w.submit(Job(1, delay=0.5))
        polls = 0
        while time.perf_counter() - t0 < 0.3:
            assert w.poll() is None
            polls += 1
        assert polls > 100 and threading.active_count() >= 2
    finally:
        w.stop()


class Stopped(Exception):
    pass


def _interruptible(job: Job, should_stop):
    """Works in 10 ms steps for job.delay seconds, stopping when asked."""
    end = time.monotonic() + job.delay
    while time.monotonic() < end:
        if should_stop():
            raise Stopped
        time.sleep(0.01)
    return job.stamp * 10


def test_interruptible_worker_stops_a_running_job_for_a_newer_one():
    """A long job stops at its next check once a newer job waits; the newer one runs at once and
    nothing of the stopped job is returned. on_done runs after every job, the stopped one too."""
    done = []
    w = LatestWinsWorker(_interruptible, interruptible=True, cancelled_by=Stopped, on_done=lambda: done.append(1))
    try:
        w.submit(Job(1, delay=30.0))
        wait_running(w)
        assert not w.superseded()
        t0 = time.monotonic()
        w.submit(Job(2))
        assert w.wait_idle(5) and time.monotonic() - t0 < 5  # not the 30 s of job 1
        res = w.poll()
        assert res.stamp == 2 and res.value == 20 and w.cancelled == 1 and w.dropped == 0
        assert w.poll() is None and len(done) == 2
    finally:
        w.stop()


def test_plain_worker_never_cancels():
    """A worker not made interruptible calls fn(job) and lets it finish."""
    w = LatestWinsWorker(_slow, cancelled_by=RuntimeError)
    try:
        w.submit(Job(1, delay=0.2))
        wait_running(w)
        w.submit(Job(2))
        assert w.wait_idle(5)
        assert w.poll().stamp == 2 and w.cancelled == 0
    finally:
        w.stop()


def test_window_messages_speak_of_the_windows_controls():
    """A renderer error's command-line advice becomes the Export panel's control in the window."""
    from viz.jobs.exporter import window_words

    msg = window_words("/x/a.ply exists; not overwriting it (choose another name, or allow overwriting: --force)")
    assert "--force" not in msg and "tick 'overwrite' in the Export panel" in msg and msg.startswith("/x/a.ply")
