"""The real viewer window on Xvfb with the golden small network, driven by real X input (xdotool).

One window serves the module (opening one costs ~1 s, the first render of a latent ~1.5 s on
2 cores). Renders use the raw view at neural resolution 32 unless a check needs the image
view. Pixels are read back from the render area (`App.read_render_area`, a glReadPixels of the
back buffer after re-drawing the shown frame).
One file of 700+ lines on purpose: its tests share that one window (module fixture), which a split would
open again per file.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("imgui_bundle")
pytest.importorskip("glfw")
pytest.importorskip("OpenGL")

import glfw  # noqa: E402  (after imgui_bundle, via importorskip)
from PIL import Image  # noqa: E402
from xdo import XDo  # noqa: E402

from renderer.engine import RenderEngine  # noqa: E402
from renderer.engine.frames import view_pixels  # noqa: E402
from viz import orbit  # noqa: E402
from viz.app import App, AppConfig  # noqa: E402
from viz.state import VizState  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool missing: apt-get install xdotool"),
]

TITLE = "triplane-viz gui test"
WIDTH, HEIGHT = 960, 1000


@contextmanager
def golden_window(
    checkpoint,
    tmp_path_factory,
    title: str,
    geometry_resolution: int | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
):
    """The viewer on the golden network in a width x height window (default WIDTH x HEIGHT): raw view at neural
    resolution 32, GL errors checked at the end, settings in a temp config folder, log lines kept in
    `app.test_logs`."""
    config_dir = tmp_path_factory.mktemp("config")
    old = os.environ.get("TRIPLANE_VIZ_CONFIG_DIR")
    os.environ["TRIPLANE_VIZ_CONFIG_DIR"] = str(config_dir)
    state = VizState()
    state.view.view, state.view.neural_rendering_resolution = "raw", 32
    logs: list[str] = []
    a = App(
        AppConfig(
            checkpoint=str(checkpoint),
            width=width,
            height=height,
            title=title,
            debug_gl=True,
            out_dir=str(tmp_path_factory.mktemp("shots")),
            log=logs.append,
        ),
        state=state,
    )
    a.test_logs = logs
    if geometry_resolution is not None:
        a.geometry.resolution = geometry_resolution
    try:
        assert a.run_until(lambda: a.model is not None and a.idle(), 60), a.status_text()
        yield a
        assert a.gl_errors == 0, a.ui.gl_error
    finally:
        a.close()
        if old is None:
            os.environ.pop("TRIPLANE_VIZ_CONFIG_DIR", None)
        else:
            os.environ["TRIPLANE_VIZ_CONFIG_DIR"] = old


@pytest.fixture(scope="module")
def app(xvfb_display, golden_native_checkpoint, tmp_path_factory):
    """The viewer with the golden network loaded, raw view at neural resolution 32, GL errors checked."""
    with golden_window(golden_native_checkpoint, tmp_path_factory, TITLE) as a:
        yield a


@pytest.fixture(scope="module")
def xdo(app):
    return XDo(TITLE)


def settle(app: App, timeout: float = 60.0) -> None:
    """Step frames until the last request is rendered and on screen."""
    assert app.run_until(app.idle, timeout), f"not idle after {timeout} s: {app.status_text()}"
    app.run_frames(2)


def baseline(app: App) -> np.ndarray:
    """Seed 0, psi 0.7, raw view at 32, default camera, no interpolation; returns the settled pixels."""
    s = app.state
    s.latent = replace(s.latent, seed=0.0, interp=False, playing=False, t=0.0, mix=False, seed_b=1)
    s.trunc.psi, s.trunc.cutoff, s.trunc.noise_mode = 0.7, None, "const"
    s.view.view, s.view.neural_rendering_resolution, s.view.depth_locked = "raw", 32, False
    s.cond.mode = "front"
    s.reset_camera()
    app.ui.show_help = False
    settle(app)
    return app.read_render_area()


def hover(app: App, xdo: XDo, x: float, y: float) -> None:
    """Put the pointer at (x, y) and let imgui see it (its want_capture_mouse lags one frame)."""
    xdo.move(x, y)
    app.run_frames(3)


def drag(app: App, xdo: XDo, x: float, y: float, dx: float, dy: float, button: int = 1, steps: int = 6) -> None:
    """Press at (x, y), move by (dx, dy) in `steps` moves, release; frames run in between."""
    hover(app, xdo, x, y)
    xdo.down(button)
    app.run_frames(1)
    for i in range(1, steps + 1):
        xdo.move(x + dx * i / steps, y + dy * i / steps)
        app.run_frames(1)
    xdo.up(button)
    app.run_frames(2)


def click_item(app: App, xdo: XDo, name: str, fx: float = 0.5) -> None:
    """Left-click a widget recorded by the app (fx: horizontal position inside it, 0..1)."""
    x0, y0, x1, y1 = app.item_rects[name]
    assert 0 <= y0 and y1 <= app.render_rect()[3], f"{name} is scrolled out of the pane: {app.item_rects[name]}"
    hover(app, xdo, x0 + (x1 - x0) * fx, (y0 + y1) / 2)
    xdo.click(1)
    app.run_frames(3)


def render_centre(app: App) -> tuple[float, float]:
    x, y, w, h = app.render_rect()
    return x + w / 2, y + h / 2


def differs(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels (any channel) that differ."""
    return float((a != b).any(axis=-1).mean())


# ----------------------------------------------------------------- presenter, layout
def test_cpu_upload_path_in_use(app):
    assert app.presenter.path == "cpu-upload"
    assert app.presenter.fallback_reason  # it says why (no CUDA device here)
    assert any(m.startswith("present: cpu-upload") for m in app.test_logs)
    x, y, w, h = app.render_rect()
    assert (x, y) == (380.0, 0.0) and w > 0 and h > 0


# ----------------------------------------------------------------- mouse
def test_left_drag_orbits_by_the_expected_angle(app, xdo):
    start = baseline(app)
    cam0 = app.state.camera
    h = app.render_rect()[3]
    cx, cy = render_centre(app)
    drag(app, xdo, cx, cy, 60, 24)
    cam = app.state.camera
    assert cam.yaw == pytest.approx(cam0.yaw - 60 * orbit.ORBIT_SPEED / h, abs=1e-9)
    assert cam.pitch == pytest.approx(cam0.pitch - 24 * orbit.ORBIT_SPEED / h, abs=1e-9)
    assert (cam.radius, cam.pivot) == (cam0.radius, cam0.pivot)
    settle(app)
    assert differs(app.read_render_area(), start) > 0.05


def test_drag_on_the_control_pane_does_not_orbit(app, xdo):
    baseline(app)
    cam0 = app.state.camera
    drag(app, xdo, 260, 14, 60, 0)  # on the pane's title text (not a widget)
    assert app.state.camera == cam0
    assert {"psi", "seed", "view_raw", "save_render"} <= set(app.item_rects)  # no section collapsed


def test_wheel_zooms_and_ctrl_wheel_changes_fov(app, xdo):
    start = baseline(app)
    r0, fov0 = app.state.camera.radius, app.state.camera.fov_deg
    hover(app, xdo, *render_centre(app))
    xdo.click(4, repeat=2)  # wheel up twice: closer
    app.run_frames(3)
    assert app.state.camera.radius == pytest.approx(r0 * orbit.ZOOM_STEP**2)
    xdo.click(5)
    app.run_frames(3)
    assert app.state.camera.radius == pytest.approx(r0 * orbit.ZOOM_STEP)
    xdo.key_down("ctrl")
    try:
        xdo.click(4)
        app.run_frames(3)
    finally:
        xdo.key_up("ctrl")
    assert app.state.camera.fov_deg == pytest.approx(fov0 * orbit.FOV_STEP)
    assert app.state.camera.radius == pytest.approx(r0 * orbit.ZOOM_STEP)
    settle(app)
    assert differs(app.read_render_area(), start) > 0.05


def test_right_drag_pans_the_pivot(app, xdo):
    baseline(app)
    cam0 = app.state.camera
    drag(app, xdo, *render_centre(app), 40, 0, button=3)
    cam = app.state.camera
    assert cam.pivot != cam0.pivot and (cam.yaw, cam.pitch) == (cam0.yaw, cam0.pitch)
    assert cam.pivot[0] < cam0.pivot[0]  # dragging right moves the scene right: the pivot goes left (-x)


def test_r_key_and_double_click_reset_to_the_start_image(app, xdo):
    start = baseline(app)
    cx, cy = render_centre(app)
    drag(app, xdo, cx, cy, -50, 30)
    settle(app)
    assert differs(app.read_render_area(), start) > 0.05
    xdo.key("r")
    app.run_frames(3)
    assert app.state.camera == app.state.defaults.camera()
    settle(app)
    assert np.array_equal(app.read_render_area(), start)

    drag(app, xdo, cx, cy, 40, 0)
    assert app.state.camera != app.state.defaults.camera()
    hover(app, xdo, cx, cy)
    xdo.click(1, repeat=2)  # double-click
    app.run_frames(3)
    assert app.state.camera == app.state.defaults.camera()
    settle(app)
    assert np.array_equal(app.read_render_area(), start)


# ----------------------------------------------------------------- latent, truncation
def test_seed_keys_and_buttons_change_the_image(app, xdo):
    start = baseline(app)
    hover(app, xdo, *render_centre(app))
    xdo.key("Right")
    app.run_frames(3)
    assert app.state.latent.seed == 1.0
    settle(app)
    seed1 = app.read_render_area()
    assert differs(seed1, start) > 0.05
    xdo.key("Left")
    app.run_frames(3)
    assert app.state.latent.seed == 0.0
    settle(app)
    assert np.array_equal(app.read_render_area(), start)
    click_item(app, xdo, "seed_random")
    assert app.state.latent.seed != 0.0


def test_interpolation_endpoints_equal_seed_renders(app, xdo):
    start = baseline(app)  # seed 0 = A
    app.state.latent.seed = 1.0
    settle(app)
    seed_b = app.read_render_area()
    app.state.latent.seed = 0.0
    app.state.latent.interp = True  # A = 0, B = 1, t = 0
    app.state.latent.seed_b = 1
    app.run_frames(3)  # the t slider appears
    for space in ("w", "z"):
        app.state.latent.space = space
        click_item(app, xdo, "interp_t", fx=0.015)  # slider's left end: t = 0
        assert app.state.latent.t == 0.0
        settle(app)
        assert np.array_equal(app.read_render_area(), start), space
        click_item(app, xdo, "interp_t", fx=0.985)  # right end: t = 1
        assert app.state.latent.t == 1.0
        settle(app)
        assert np.array_equal(app.read_render_area(), seed_b), space
        click_item(app, xdo, "interp_t", fx=0.5)
        assert 0.3 < app.state.latent.t < 0.7
        settle(app)
        mid = app.read_render_area()
        assert differs(mid, start) > 0.05 and differs(mid, seed_b) > 0.05, space


def test_space_plays_and_pauses_the_interpolation(app, xdo):
    baseline(app)
    hover(app, xdo, *render_centre(app))
    xdo.key("space")
    app.run_frames(2)
    lat = app.state.latent
    assert lat.interp and lat.playing
    t0 = lat.t
    app.run_frames(10)
    assert lat.t != t0
    xdo.key("space")
    app.run_frames(2)
    assert not app.state.latent.playing
    t1 = app.state.latent.t
    app.run_frames(5)
    assert app.state.latent.t == t1


def type_into(app: App, xdo: XDo, name: str, text: str, ctrl_click: bool = True) -> None:
    """Type `text` into a widget and press Enter (a slider needs Ctrl+click to become a text field)."""
    x0, y0, x1, y1 = app.item_rects[name]
    hover(app, xdo, (x0 + x1) / 2, (y0 + y1) / 2)
    if ctrl_click:
        xdo.key_down("ctrl")
    try:
        xdo.click(1)
        app.run_frames(3)
    finally:
        if ctrl_click:
            xdo.key_up("ctrl")
    app.run_frames(3)
    xdo.key("ctrl+a")
    app.run_frames(5)
    if text.startswith("-"):  # xdotool would read "-5" as an option
        xdo.key("minus")
        text = text[1:]
    xdo.type(text)
    app.run_frames(len(text) + 8)  # imgui trickles queued key events, about one per frame
    xdo.key("Return")
    app.run_frames(10)


def test_psi_typed_into_the_slider_changes_the_image(app, xdo):
    start = baseline(app)
    type_into(app, xdo, "psi", "0.2")
    assert app.state.trunc.psi == pytest.approx(0.2, abs=1e-6)
    settle(app)
    assert differs(app.read_render_area(), start) > 0.05


@pytest.mark.parametrize("typed", ["4294967295", "3000000000", "0"])
def test_seeds_at_the_range_ends_are_taken_exactly(app, xdo, typed):
    """Seeds are whole numbers 0…2**32-1 in the window as on the command line: no int32 wrap, no float."""
    baseline(app)
    type_into(app, xdo, "seed", typed, ctrl_click=False)
    assert app.state.latent.seed == float(int(typed)) and app.ui.input_error is None
    settle(app)
    assert app.ui.render_error is None and app.shown.job.request.latent.seed == int(typed)
    assert f"seed {typed} ·" in app.status_text()


@pytest.mark.parametrize(
    "widget, typed, field, expected, note",
    [
        ("psi", "7", ("trunc", "psi"), 2.0, "psi: 7 is outside -1 .. 2; using 2"),
        ("psi", "nan", ("trunc", "psi"), 0.7, "psi: nan is not a finite number; kept 0.7"),
        ("seed", "-5", ("latent", "seed"), 3.0, "seed -5 is outside 0…4294967295; kept 3"),
        ("seed", "4294967296", ("latent", "seed"), 3.0, "seed 4294967296 is outside 0…4294967295; kept 3"),
        ("seed", "99999999999999", ("latent", "seed"), 3.0, "seed 99999999999999 is outside 0…4294967295"),
    ],
)
def test_bad_typed_values_are_clamped_or_refused_with_a_note(app, xdo, widget, typed, field, expected, note):
    baseline(app)
    app.state.latent.seed = 3.0
    type_into(app, xdo, widget, typed, ctrl_click=widget != "seed")
    assert getattr(getattr(app.state, field[0]), field[1]) == pytest.approx(expected)
    assert note in app.status_text()
    settle(app)  # the app keeps rendering with the clamped value
    assert app.ui.render_error is None
    type_into(app, xdo, widget, "1", ctrl_click=widget != "seed")  # a good value clears the note
    assert app.ui.input_error is None


# ----------------------------------------------------------------- views, screenshot
def test_views_differ_and_saved_render_equals_the_engine(app, xdo):
    raw = baseline(app)
    shots = {}
    for view in ("depth", "normals", "image"):
        click_item(app, xdo, f"view_{view}")
        assert app.state.view.view == view
        settle(app, timeout=120)
        shots[view] = app.read_render_area()
        hover(app, xdo, *render_centre(app))
        xdo.key("s")
        app.run_frames(2)
        saved = np.asarray(Image.open(app.ui.last_saved))
        out = app.shown
        ref = RenderEngine(app.engine.G).render(out.job.request)  # a fresh engine, same request
        expect = view_pixels("depth" if view == "normals" else view, ref.image, ref.raw, ref.depth, ref.alpha)
        assert saved.shape == expect.shape and np.array_equal(saved, expect), view
        if view == "image":
            assert saved.shape == (512, 512, 3)  # native resolution, not the window's
    shots["raw"] = raw
    names = list(shots)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert differs(shots[a], shots[b]) > 0.05, (a, b)


def test_saving_a_moving_preview_is_refused_with_a_reason(app, tmp_path):
    baseline(app)
    out, folder = app.shown, Path(app.ui.out_dir)
    before = set(folder.iterdir()) if folder.exists() else set()
    preview = app.quality.levels[0]
    assert preview != app.quality.full
    app.shown = replace(out, job=replace(out.job, quality=preview))  # what is on screen mid-drag
    try:
        assert app.save_render() is None
        assert "moving preview" in app.ui.export_error and "moving preview" in app.status_text()
        assert (set(folder.iterdir()) if folder.exists() else set()) == before
    finally:
        app.shown = out
    assert app.save_render() is not None and app.ui.export_error is None


def test_save_window_writes_the_framebuffer(app, tmp_path):
    baseline(app)
    path = tmp_path / "window.png"
    app.save_window(path)
    app.run_frames(1)
    img = np.asarray(Image.open(path))
    assert img.shape == (HEIGHT, WIDTH, 3)
    pane, render = img[:, :380], img[: HEIGHT - 30, 380:]
    assert pane.std() > 5 and render.std() > 5  # widgets on the left, the render on the right
    assert app.ui.last_saved == str(path)


# ----------------------------------------------------------------- the loop never blocks
def test_slow_render_keeps_the_ui_live_and_drops_stale_results(app, xdo):
    baseline(app)
    engine = app.engine
    started = threading.Event()
    real = engine.render

    def slow(req, **kw):
        started.set()
        time.sleep(2.0)
        return real(req, **kw)

    engine.render = slow
    try:
        hover(app, xdo, *render_centre(app))
        stamp0, dropped0 = app.session.stamp, app.worker.dropped
        xdo.key("Right")  # request 1: seed 1, slow
        assert app.run_until(started.is_set, 5)
        assert app.session.stamp == stamp0 + 1
        frames0, t0 = app.drawn_frames, time.monotonic()
        while time.monotonic() - t0 < 0.4:
            app.step()
        assert app.drawn_frames - frames0 >= 8  # ~24 at the 60 fps cap; a blocked loop would give 0-1
        assert "rendering…" in app.status_text()
        xdo.key("Right")  # request 2: seed 2, waits behind request 1
        app.run_frames(3)
        assert app.state.latent.seed == 2.0 and app.session.stamp == stamp0 + 2
        click_item(app, xdo, "view_depth")  # request 3 replaces request 2 before it starts
        assert app.state.view.view == "depth" and app.session.stamp == stamp0 + 3
        assert app.worker.dropped == dropped0 + 1
        assert app.worker.wait_idle(30)  # request 1 finishes first, then 3, while the UI is not polling
        app.run_frames(2)
        assert app.shown.stamp == stamp0 + 3
        assert stamp0 + 1 not in app.presented and stamp0 + 2 not in app.presented  # stale: never shown
        assert app.shown.job.request.latent.seed == 2.0 and app.shown.frame.kind == "depth"
    finally:
        del engine.render


def test_idle_viewer_hands_free_heap_back_once_per_idle_spell(app, xdo, monkeypatch):
    """After idle_trim_s without renders the loop trims the heap once; a render re-arms it."""
    monkeypatch.setattr(app.config, "idle_trim_s", 0.1)
    baseline(app)
    hover(app, xdo, *render_centre(app))
    trims = app.pacer.memory_trims
    for spell in (1, 2):
        xdo.key("Right")  # a new seed: the render thread works, then the viewer idles
        settle(app)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            app.step()
        assert app.pacer.memory_trims == trims + spell  # once per idle spell, not every frame


def test_camera_only_change_skips_the_backbone(app, xdo):
    baseline(app)
    stats = app.engine.stats
    calls = (stats.backbone_calls, stats.mapping_calls, stats.renders)
    cx, cy = render_centre(app)
    drag(app, xdo, cx, cy, 30, -10)
    hover(app, xdo, cx, cy)
    xdo.click(5)
    settle(app)
    assert (stats.backbone_calls, stats.mapping_calls) == calls[:2]
    assert stats.renders > calls[2] and not app.shown.result.backbone_ran
    click_item(app, xdo, "view_depth")  # a view switch is not a backbone change either
    settle(app)
    assert (stats.backbone_calls, stats.mapping_calls) == calls[:2]


def test_adaptive_quality_previews_while_dragging_then_full_quality(app, xdo, monkeypatch):
    """With the model's own neural resolution, a drag renders cheap previews (lower resolution,
    no SR); once the view rests the full-quality frame follows and equals a plain render.
    With 'lock full quality' every frame is full quality."""
    baseline(app)
    app.state.view.neural_rendering_resolution = None  # adaptive quality applies
    settle(app, 120)
    full = app.quality.full
    assert app.shown.job.quality == full and app.shown.result.raw.shape[-1] == 128
    jobs = []
    submit = app.worker.submit
    monkeypatch.setattr(app.worker, "submit", lambda job: (jobs.append(job), submit(job)))
    cx, cy = render_centre(app)
    drag(app, xdo, cx, cy, 40, 0, steps=8)
    during = list(jobs)
    assert during and all(j.quality != full for j in during), [j.quality for j in during]
    assert all(not j.request.superresolution and j.request.neural_rendering_resolution < 128 for j in during)
    settle(app, 120)
    assert app.shown.job.quality == full and app.shown.stamp == jobs[-1].stamp
    assert jobs[-1].request.neural_rendering_resolution is None  # the request exactly as the user set it
    res = app.engine.render(replace(jobs[-1].request, stamp=0))
    assert np.array_equal(
        view_pixels("raw", None, res.raw, res.depth),
        view_pixels("raw", None, app.shown.result.raw, app.shown.result.depth),
    )
    app.quality.lock_full = True
    try:
        jobs.clear()
        drag(app, xdo, cx, cy, -40, 0, steps=4)
        assert jobs and all(j.quality == full for j in jobs)
    finally:
        app.quality.lock_full = False
        monkeypatch.undo()
        baseline(app)


def test_render_thread_exception_is_shown_and_the_next_request_works(app, xdo):
    start = baseline(app)
    engine = app.engine
    real = engine.render

    def fail_once(req, **kw):
        engine.render = real
        raise RuntimeError("boom in the render thread")

    engine.render = fail_once
    try:
        hover(app, xdo, *render_centre(app))
        xdo.key("Right")
        assert app.run_until(lambda: app.ui.render_error is not None, 30)
        assert "RuntimeError: boom in the render thread" in app.status_text()
        assert np.array_equal(app.read_render_area(), start)  # the last good frame stays up
        xdo.key("Right")
        settle(app)
        assert app.ui.render_error is None and app.state.latent.seed == 2.0
        assert app.shown.job.request.latent.seed == 2.0
        assert differs(app.read_render_area(), start) > 0.05
    finally:
        engine.__dict__.pop("render", None)


def test_nonfinite_frame_is_shown_with_a_warning(app):
    baseline(app)
    engine = app.engine
    real = engine.render

    def nan_render(req, **kw):
        res = real(req)
        res.raw = res.raw.clone()
        res.raw[:, :4] = float("nan")
        res.nonfinite = True
        return res

    engine.render = nan_render
    try:
        app.state.trunc.psi = 0.6
        settle(app)
        assert "NaN" in app.status_text() and app.shown.result.nonfinite
    finally:
        del engine.render
    app.state.trunc.psi = 0.7
    settle(app)
    assert app.ui.render_warning is None


# ----------------------------------------------------------------- model loading
def test_failed_load_keeps_the_model_and_shows_the_error(app, xdo, tmp_path):
    start = baseline(app)
    model = app.model
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"this is not a checkpoint" * 10)
    click_item(app, xdo, "model_path")  # type the path into the field, Enter loads
    xdo.key("ctrl+a")
    app.run_frames(5)
    xdo.type(str(bad))
    app.run_frames(len(str(bad)) + 10)  # imgui trickles queued key events, about one per frame
    xdo.key("Return")
    app.run_frames(10)
    assert app.ui.model_path == str(bad)
    assert app.run_until(lambda: app.loader.loading is None and app.ui.load_error is not None, 30)
    app.run_frames(2)
    assert app.model is model and "broken.safetensors" in app.ui.load_error
    assert "load failed" in app.status_text()
    assert np.array_equal(app.read_render_area(), start)
    app.state.latent.seed = 3.0  # the old model still renders
    settle(app)
    assert app.shown.job.request.latent.seed == 3.0 and app.model is model


def test_checkpoint_deleted_while_loading_keeps_the_model(app, golden_native_checkpoint, tmp_path, monkeypatch):
    import renderer.checkpoint.read as ck  # where the reader dispatches to read_native

    start = baseline(app)
    model = app.model
    doomed = tmp_path / "doomed.safetensors"
    shutil.copy(golden_native_checkpoint, doomed)
    real = ck.read_native

    def delete_midway(p, f, size):  # the reader has opened the file and read its size; then it goes away
        os.unlink(p)
        return real(p, f, size)

    monkeypatch.setattr(ck, "read_native", delete_midway)
    app.load_model(str(doomed))  # what the Load button does
    assert app.run_until(lambda: app.loader.loading is None and app.ui.load_error is not None, 30)
    assert "doomed.safetensors" in app.ui.load_error
    assert "deleted or moved while it was being read" in app.status_text()
    assert app.model is model and not doomed.exists()
    assert np.array_equal(app.read_render_area(), start)
    app.state.latent.seed = 2.0  # the old model still renders
    settle(app)
    assert app.shown.job.request.latent.seed == 2.0 and app.model is model


def scroll_into_view(app: App, xdo: XDo, name: str) -> None:
    """Scroll the control pane with the wheel until widget `name` lies fully inside it."""
    for _ in range(60):
        rect = app.item_rects.get(name)
        if rect is not None and 0 <= rect[1] and rect[3] <= app.render_rect()[3]:
            return
        hover(app, xdo, 200, app.render_rect()[3] / 2)
        xdo.click(5 if rect is None or rect[3] > app.render_rect()[3] else 4)
        app.run_frames(3)
    raise AssertionError(f"{name} never scrolled into view")


def full_disk_error(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_during_a_mesh_export_from_the_panel(app, xdo, monkeypatch):
    import renderer.export.mesh_files as M

    baseline(app)
    out = Path(app.ui.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())

    def fill_disk(mesh, path):  # part of the file is written, then the disk is full
        with open(path, "xb") as fh:
            fh.write(b"ply\n" + b"\0" * 4096)
        full_disk_error()

    monkeypatch.setitem(M.MESH_WRITERS, ".ply", fill_disk)
    s = app.export_settings
    s.mesh_resolution, s.mesh_format, s.mesh_path = 64, "ply", "full-disk.ply"
    try:
        scroll_into_view(app, xdo, "export_mesh")
        click_item(app, xdo, "export_mesh")
        job = app.exporter.job
        assert job is not None and job.kind == "mesh"
        assert app.run_until(lambda: job.done and app.ui.export_error is not None, 120), app.status_text()
    finally:
        s.mesh_path = ""
        hover(app, xdo, 200, 300)
        xdo.click(4, repeat=30)  # back to the top of the pane
        app.run_frames(5)
    assert "no space left on device" in app.ui.export_error and "nothing was written" in app.ui.export_error
    assert "mesh export failed" in app.status_text()
    assert set(out.iterdir()) == before  # no partial file, no temp file
    app.state.latent.seed = 5.0  # the window keeps working
    settle(app)
    assert app.shown.job.request.latent.seed == 5.0


@pytest.mark.parametrize("stage", ["png", "sidecar"])
def test_disk_full_while_saving_a_render(app, xdo, monkeypatch, stage):
    from PIL import Image as PILImage

    baseline(app)
    out = Path(app.ui.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    if stage == "png":
        real_save = PILImage.Image.save

        def save_then_fill(self, fp, *args, **kwargs):
            real_save(self, fp, *args, **kwargs)  # the bytes go out, then the flush hits a full disk
            full_disk_error()

        monkeypatch.setattr(PILImage.Image, "save", save_then_fill)
    else:
        monkeypatch.setattr(Path, "write_text", full_disk_error)  # the PNG is in place, the .json is not
    hover(app, xdo, *render_centre(app))
    xdo.key("s")
    app.run_frames(3)
    monkeypatch.undo()
    assert app.ui.export_error and "no space left on device" in app.ui.export_error
    assert "save failed" in app.status_text()
    assert set(out.iterdir()) == before
    xdo.key("s")  # with space again, the same key saves
    app.run_frames(3)
    assert app.ui.export_error is None and Path(app.ui.last_saved).is_file()


def test_dropped_file_loads_and_enters_the_recent_list(app, golden_native_checkpoint):
    baseline(app)
    old_id = app.model_id
    app.input.on_drop(app.window, [str(golden_native_checkpoint)])  # X drag-and-drop can't be faked
    assert "loading golden_small.safetensors…" in app.status_text()
    assert app.run_until(lambda: app.model_id == old_id + 1, 30)
    assert app.recent.items[0] == str(golden_native_checkpoint)
    settle(app)
    assert app.shown.job.model_id == app.model_id


# ----------------------------------------------------------------- keys, overlay, window size
def test_help_overlay_keys(app, xdo):
    baseline(app)
    hover(app, xdo, *render_centre(app))
    xdo.key("F1")
    app.run_frames(2)
    assert app.ui.show_help
    xdo.key("question")
    app.run_frames(2)
    assert not app.ui.show_help
    xdo.key("F1")
    app.run_frames(2)
    xdo.key("Escape")
    app.run_frames(2)
    assert not app.ui.show_help


def test_zero_sized_and_minimised_window_keep_running(app, xdo):
    baseline(app)
    frames, drawn = app.frame_counter, app.drawn_frames
    glfw.set_window_size(app.window, 0, 0)  # X clamps to 1x1: the render area is empty
    app.run_frames(5)
    x, y, w, h = app.render_rect_fb()
    assert w == 0 or h == 0
    app.state.latent.seed = 4.0
    app.run_frames(5)
    assert app.frame_counter == frames + 10 and app.drawn_frames == drawn + 10

    app.minimized = lambda: True  # what an iconified window reports (Xvfb has no window manager)
    try:
        app.run_frames(5)
        assert app.frame_counter == frames + 15 and app.drawn_frames == drawn + 10
    finally:
        del app.minimized
    glfw.set_window_size(app.window, WIDTH, HEIGHT)
    settle(app)
    assert app.shown.job.request.latent.seed == 4.0
    assert app.read_render_area().shape == (HEIGHT - 26, WIDTH - 380, 3)
    assert app.gl_errors == 0, app.ui.gl_error


def test_window_without_model_says_so(xvfb_display, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIPLANE_VIZ_CONFIG_DIR", str(tmp_path))
    with App(AppConfig(width=640, height=480, title="triplane-viz empty", debug_gl=True, log=lambda m: None)) as a:
        a.run_frames(5)
        assert a.model is None and a.shown is None and a.session.stamp == 0
        assert "no model loaded" in a.status_text()
        a.save_render()
        assert a.ui.export_error and "nothing to save" in a.ui.export_error
        assert a.gl_errors == 0


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_goes_through_interop(golden_native_checkpoint, tmp_path, monkeypatch):
    """On an NVIDIA machine (headless EGL on the GPU) frames reach the texture without the CPU."""
    monkeypatch.setenv("TRIPLANE_VIZ_CONFIG_DIR", str(tmp_path))
    state = VizState()
    state.view.view = "raw"
    logs: list[str] = []
    with App(
        AppConfig(
            checkpoint=str(golden_native_checkpoint),
            device="cuda",
            headless=True,
            width=WIDTH,
            height=HEIGHT,
            debug_gl=True,
            log=logs.append,
        ),
        state=state,
    ) as a:
        assert a.run_until(lambda: a.model is not None and a.idle(), 120), a.status_text()
        assert a.presenter.path in ("cuda-bindings", "pycuda"), (a.presenter.fallback_reason, logs)
        assert a.shown.frame.rgba.is_cuda
        pixels = a.read_render_area()
        assert pixels.std() > 5
        times = []
        for seed in range(1, 6):
            a.state.latent.seed = float(seed)
            settle(a)
            times.append(a.presenter.upload_ms)
        print(f"interop upload: {sorted(times)[len(times) // 2]:.3f} ms median")
        assert a.gl_errors == 0 and a.presenter.path in ("cuda-bindings", "pycuda")
