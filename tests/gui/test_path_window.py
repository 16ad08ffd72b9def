"""Camera paths in the real window on Xvfb, driven by X input (xdotool): keyframes added with K at orbited cameras,
picked, moved, deleted and re-timed in the list; the timeline scrubbed and played (the view follows the path, a drag
on the render takes it back); a path video cancelled (nothing left) and rendered (read back); the path file saved,
loaded and exported in nerfstudio's format through the panel.

Every check compares what the window shows (the state's camera, the shown frame's request) with the path sampled
offline (renderer.paths.interpolate.sample)."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("imgui_bundle")
pytest.importorskip("glfw")
pytest.importorskip("OpenGL")

from test_app import click_item, drag, golden_window, hover, settle, type_into  # noqa: E402
from xdo import XDo  # noqa: E402

from renderer.export.video import read_video_info  # noqa: E402
from renderer.paths.files import load_any, load_path  # noqa: E402
from renderer.paths.interpolate import frame_times, sample  # noqa: E402
from renderer.paths.keyframes import camera25  # noqa: E402
from viz.app import App  # noqa: E402
from viz.orbit import OrbitCamera  # noqa: E402
from viz.path_editor import PathEditor, camera_of  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool missing: apt-get install xdotool"),
]

TITLE = "triplane-viz path test"


@pytest.fixture(scope="module")
def app(xvfb_display, golden_native_checkpoint, tmp_path_factory):
    with golden_window(golden_native_checkpoint, tmp_path_factory, TITLE) as a:
        yield a


@pytest.fixture(scope="module")
def xdo(app):
    return XDo(TITLE)


def cam25(cam: OrbitCamera) -> np.ndarray:
    """The orbit camera's EG3D camera in float64 (what a keyframe of it must hold)."""
    return np.array(camera25(cam.cam2world(), cam.fov_deg))


def gap(a, b) -> float:
    """Largest difference between two 25-value cameras."""
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def shown_camera(app: App) -> tuple[float, ...]:
    return app.shown.job.request.camera


def start(app: App, xdo: XDo) -> None:
    """No path, seed 0, raw view at 32, default camera; the pane scrolled to the Path section (its jump button)."""
    app.paths = PathEditor()
    s = app.state
    s.latent_override = None
    s.latent = replace(s.latent, seed=0.0, interp=False, playing=False, t=0.0, mix=False)
    s.view.view, s.view.neural_rendering_resolution = "raw", 32
    s.reset_camera()
    settle(app)
    click_item(app, xdo, "jump_path")
    app.run_frames(3)
    assert "keyframe_add" in app.item_rects


def render_centre(app: App) -> tuple[float, float]:
    x, y, w, h = app.render_rect()
    return x + w / 2, y + h / 2


def add_by_key(app: App, xdo: XDo) -> None:
    """K with the pointer over the render."""
    hover(app, xdo, *render_centre(app))
    xdo.key("k")
    app.run_frames(4)


def orbit_on_render(app: App, xdo: XDo, dx: float, dy: float) -> None:
    drag(app, xdo, *render_centre(app), dx, dy)


def three_keyframes(app: App, xdo: XDo) -> tuple[list[OrbitCamera], list[float]]:
    """Three keyframes added with K at seeds 0, 1, 2, the camera orbited by a drag before each later one."""
    cams, seeds = [], []
    for i, (dx, dy) in enumerate(((0, 0), (90, 30), (-160, -50))):
        if i:
            orbit_on_render(app, xdo, dx, dy)
            xdo.key("Right")  # next seed
            app.run_frames(3)
        settle(app)
        add_by_key(app, xdo)
        cams.append(app.state.camera)
        seeds.append(app.shown.job.request.latent.seed)
    return cams, seeds


# ----------------------------------------------------------------- keyframes
def test_k_adds_keyframes_of_the_view_and_the_list_edits_them(app, xdo):
    start(app, xdo)
    cams, seeds = three_keyframes(app, xdo)
    assert seeds == [0.0, 1.0, 2.0]
    assert len({(c.yaw, c.pitch) for c in cams}) == 3  # three different poses
    path = app.paths.path
    assert path is not None and len(path.keyframes) == 3
    assert path.times == (0.0, 2.0, 4.0)
    for k, cam, seed in zip(path.keyframes, cams, seeds):
        assert gap(k.camera25(), cam25(cam)) <= 1e-6
        assert gap(k.camera25(), cam.to_camera()) <= 1e-6  # the float32 camera the view rendered with
        assert k.seed == seed and k.seed_b is None
        assert k.view == "raw" and k.psi == app.state.trunc.psi
    # a click on the first row shows keyframe 1 (the view is at keyframe 3's camera now)
    click_item(app, xdo, "keyframe_0", 0.3)
    assert app.paths.selected == 0 and app.paths.time == 0.0
    assert gap(cam25(app.state.camera), cam25(cams[0])) <= 1e-6
    settle(app)
    assert gap(shown_camera(app), path.keyframes[0].camera25()) <= 1e-6
    assert app.shown.job.request.latent.seed == 0.0
    # 'later' swaps it with the second (they exchange times); 'delete' removes it from its new place
    click_item(app, xdo, "keyframe_later")
    kfs = app.paths.path.keyframes
    assert [k.seed for k in kfs] == [1.0, 0.0, 2.0] and [k.time for k in kfs] == [0.0, 2.0, 4.0]
    assert app.paths.selected == 1
    assert gap(kfs[1].camera25(), cam25(cams[0])) <= 1e-6 and gap(kfs[0].camera25(), cam25(cams[1])) <= 1e-6
    click_item(app, xdo, "keyframe_delete")
    kfs = app.paths.path.keyframes
    assert [k.seed for k in kfs] == [1.0, 2.0] and [k.time for k in kfs] == [0.0, 4.0]
    # a time typed for the last one moves it
    click_item(app, xdo, "keyframe_1", 0.3)
    assert app.paths.selected == 1
    type_into(app, xdo, "keyframe_time", "7.5", ctrl_click=False)
    kfs = app.paths.path.keyframes
    assert [k.time for k in kfs] == [0.0, 7.5] and kfs[1].seed == 2.0
    assert app.paths.error is None


# ----------------------------------------------------------------- timeline
def test_dragging_the_timeline_shows_the_path_there(app, xdo):
    start(app, xdo)
    three_keyframes(app, xdo)
    path = app.paths.path
    before = app.state.camera
    x0, y0, x1, y1 = app.item_rects["path_timeline"]
    drag(app, xdo, x0 + 0.1 * (x1 - x0), (y0 + y1) / 2, 0.45 * (x1 - x0), 0)
    ed = app.paths
    t = ed.time
    assert 0.4 * ed.duration < t < 0.7 * ed.duration
    assert all(abs(t - kt) > 0.05 for kt in path.times)  # between keyframes
    assert ed.following and not ed.playing
    want = camera_of(sample(path, t))
    assert app.state.camera == want and want != before
    settle(app)
    assert gap(shown_camera(app), sample(path, t).camera) <= 1e-6  # exactly the frame the video renders there
    assert app.shown.job.request.latent == sample(path, t).latent  # a blend of the neighbouring seeds
    # '.' and ',' step to the next / previous keyframe
    hover(app, xdo, *render_centre(app))
    xdo.key("period")
    app.run_frames(3)
    nxt = min(kt for kt in path.times if kt > t)
    assert ed.time == nxt and gap(cam25(app.state.camera), path.keyframes[path.times.index(nxt)].camera25()) <= 1e-6
    for want_time in (max(kt for kt in path.times if kt < nxt), 0.0):
        xdo.key("comma")
        app.run_frames(3)
        assert ed.time == want_time


def test_play_moves_the_view_pause_stops_and_a_drag_takes_it_back(app, xdo):
    start(app, xdo)
    three_keyframes(app, xdo)
    app.paths.settings(duration=30.0)  # long enough not to end while this test plays it
    click_item(app, xdo, "keyframe_0", 0.3)
    settle(app)
    ed = app.paths
    cam0, stamp0 = app.state.camera, app.shown.stamp

    def presented() -> int:  # frames put on screen since stamp0 (app.presented keeps the last 256)
        return sum(1 for s in app.presented if s > stamp0)

    click_item(app, xdo, "path_play")
    assert ed.playing and ed.following
    t_start, wall = ed.time, time.monotonic()
    app.run(max_seconds=1.5)
    # on a loaded machine (other processes on the 2 cores) one render can take seconds: wait for 3 frames
    assert app.run_until(lambda: presented() >= 3, 20), (app.status_text(), app.worker.dropped)
    assert ed.playing
    assert t_start + 0.3 < ed.time <= t_start + time.monotonic() - wall + 0.2  # wall time drives it (<= 0.1 s a frame)
    assert app.state.camera != cam0
    assert app.state.camera == camera_of(sample(ed.path, ed.time))
    assert app.state.latent_override == sample(ed.path, ed.time).latent
    click_item(app, xdo, "path_play")  # now 'pause'
    assert not ed.playing and ed.following
    t_paused, cam_paused = ed.time, app.state.camera
    app.run(max_seconds=0.5)
    assert ed.time == t_paused and app.state.camera == cam_paused
    settle(app)
    assert gap(shown_camera(app), sample(ed.path, t_paused).camera) <= 1e-6  # the paused frame is on screen
    # play again, then a drag on the render: the view is the user's again
    click_item(app, xdo, "path_play")
    app.run(max_seconds=0.3)
    assert ed.playing and ed.time > t_paused
    orbit_on_render(app, xdo, 60, 0)
    assert not ed.playing and not ed.following
    assert app.state.latent_override is None
    t_released, cam_released = ed.time, app.state.camera
    app.run(max_seconds=0.5)
    assert ed.time == t_released and app.state.camera == cam_released
    settle(app)
    assert app.shown.job.request.latent.seed == app.state.latent.seed  # the Latent panel's seed shows again


# ----------------------------------------------------------------- video
def files_in(folder: Path) -> set[Path]:
    return set(folder.rglob("*")) if folder.exists() else set()


def test_render_path_video_cancel_leaves_nothing_then_renders(app, xdo):
    """fps and duration typed into the timeline, the video file into the panel; raw frames at 32 (the view combo
    is set directly: the video's view is not what this checks) keep it fast."""
    start(app, xdo)
    three_keyframes(app, xdo)
    out = Path(app.ui.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    app.paths.video_view = "raw"
    type_into(app, xdo, "path_fps", "10", ctrl_click=False)
    type_into(app, xdo, "path_duration", "60", ctrl_click=False)
    assert app.paths.path.fps == 10.0 and app.paths.path.frame_count == 600
    type_into(app, xdo, "path_video_file", "cancelled.mp4", ctrl_click=False)
    before = files_in(out)
    click_item(app, xdo, "path_render")
    job = app.exporter.job
    assert app.exporter.busy and job.kind == "path video"
    # the encoder's temp file is there while it runs (so the check below would see one left behind)
    assert app.run_until(lambda: job.done or (job.progress > 0 and files_in(out) != before), 30), job.stage
    assert not job.done, f"the 600-frame render ended before it could be cancelled: {job.message}"
    assert "path_cancel" in app.item_rects and "path_progress" in app.item_rects
    click_item(app, xdo, "path_cancel")
    assert app.run_until(lambda: not app.exporter.busy, 30)
    app.run_frames(3)
    assert job.cancelled and not job.ok and job.progress < 0.5
    assert files_in(out) == before  # no MP4, no temp file
    assert app.ui.export_error is None  # a cancel asked for is a note, not an error
    # a short one to the end
    type_into(app, xdo, "path_duration", "1.2", ctrl_click=False)
    path = app.paths.path
    assert path.frame_count == 12
    type_into(app, xdo, "path_video_file", "shot.mp4", ctrl_click=False)
    click_item(app, xdo, "path_render")
    assert app.run_until(lambda: not app.exporter.busy, 120), app.exporter.job.stage
    app.run_frames(3)
    assert app.exporter.job.ok, app.exporter.job.message
    assert files_in(out) == before | {out / "shot.mp4"}
    info = read_video_info(out / "shot.mp4")
    assert info["frames"] == path.frame_count == 12
    assert info["size"] == (32, 32) and info["fps"] == pytest.approx(10.0)


# ----------------------------------------------------------------- files
def test_save_load_and_nerfstudio_export_from_the_panel(app, xdo):
    start(app, xdo)
    three_keyframes(app, xdo)
    out = Path(app.ui.out_dir)
    original = app.paths.path
    type_into(app, xdo, "path_file", "shot.json", ctrl_click=False)
    click_item(app, xdo, "path_save")
    saved = out / "shot.json"
    assert app.paths.error is None and saved.is_file()
    assert load_path(saved) == original
    # change the path in the panel, then load the file back
    click_item(app, xdo, "keyframe_0", 0.3)
    click_item(app, xdo, "keyframe_delete")
    assert len(app.paths.path.keyframes) == 2
    click_item(app, xdo, "path_load")
    assert app.paths.error is None
    assert app.paths.path == original
    assert app.paths.time == 0.0 and gap(cam25(app.state.camera), original.keyframes[0].camera25()) <= 1e-6
    click_item(app, xdo, "path_nerfstudio")
    ns = out / "shot.nerfstudio.json"
    assert app.paths.error is None and ns.is_file()
    back, kind = load_any(ns, seed=0.0, psi=0.7)
    assert kind == "nerfstudio"
    times = frame_times(original)
    assert back.frame_count == original.frame_count == len(times)
    for t in (times[0], times[len(times) // 3], times[-1]):  # the same camera at every frame
        assert gap(sample(back, float(t)).camera, sample(original, float(t)).camera) <= 1e-6
