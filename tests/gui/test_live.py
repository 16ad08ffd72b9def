"""The live loop as a user feels it, through the real window and real X input (xdotool) on the golden network:
an idle window sleeps, a drag that pauses and resumes gets its preview while a slow full frame is cut short,
zoom keeps the object, exports equal the screen, messages expire, Tab and Ctrl+Q work."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("imgui_bundle")

import glfw  # noqa: E402
from test_app import baseline, golden_window, hover, render_centre, settle  # noqa: E402
from xdo import XDo  # noqa: E402

import viz.layout as layout  # noqa: E402
import viz.ui_state as ui_state  # noqa: E402
from renderer.export.video import frame_pixels, frame_requests, orbit_camera_at, read_video_info  # noqa: E402
from viz import (
    canvas,  # noqa: E402
    orbit,  # noqa: E402
)
from viz.app import App  # noqa: E402
from viz.exports import latent_name, start_video, video_spec  # noqa: E402
from viz.session import render_pixels  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool missing: apt-get install xdotool"),
]

TITLE = "triplane-viz live test"


@pytest.fixture(scope="module")
def app(xvfb_display, golden_native_checkpoint, tmp_path_factory):
    with golden_window(golden_native_checkpoint, tmp_path_factory, TITLE) as a:
        yield a


@pytest.fixture(scope="module")
def xdo(app):
    return XDo(TITLE)


def visible(app: App) -> float:
    """Share of the shown frame that is opaque."""
    return float((app.shown.result.alpha > 0.5).float().mean())


def test_an_idle_window_sleeps_and_wakes_on_input(app, xdo):
    """With nothing moving the interactive loop draws (almost) nothing and sleeps in the event wait;
    a mouse move wakes it at once."""
    baseline(app)
    hover(app, xdo, *render_centre(app))
    app.run(max_seconds=0.5)  # the input's settle frames
    frames, waited, t0 = app.drawn_frames, app.pacer.waited_s, time.perf_counter()
    app.run(max_seconds=2.0)
    wall = time.perf_counter() - t0
    assert app.drawn_frames - frames <= 2, "an idle window keeps drawing"
    assert app.pacer.waited_s - waited >= 0.8 * wall  # asleep, not polling
    frames = app.drawn_frames
    cx, cy = render_centre(app)
    threading.Timer(0.3, lambda: xdo.move(cx + 30, cy + 10)).start()
    app.run(max_seconds=1.0)
    assert app.drawn_frames - frames >= 1  # the move woke the loop


def test_a_pause_in_a_drag_starts_a_full_frame_that_the_resumed_drag_cuts_short(app, xdo, monkeypatch):
    """Adaptive quality: a drag shows previews; pausing 0.5 s starts the (here slowed down) full-quality
    frame; resuming the drag cancels it at its next ray chunk and the next preview reaches the screen."""
    baseline(app)
    app.state.view.neural_rendering_resolution = None  # the model's own resolution: adaptive previews
    settle(app)
    engine, G = app.model.engine, app.model.engine.G
    slow = threading.local()
    real_render, real_chunk = engine.render, G._render_chunk

    def render(req, should_stop=None):
        slow.on = req.neural_rendering_resolution is None  # a full-quality frame
        try:
            return real_render(req, should_stop=should_stop)
        finally:
            slow.on = False

    def chunk(*args, **kwargs):
        if getattr(slow, "on", False):
            time.sleep(0.05)  # ~16 chunks of 1024 rays: a full frame of about a second
        return real_chunk(*args, **kwargs)

    monkeypatch.setattr(engine, "render", render)
    monkeypatch.setattr(G, "_render_chunk", chunk)
    cancelled0 = app.worker.cancelled
    cx, cy = render_centre(app)
    hover(app, xdo, cx, cy)
    xdo.down(1)
    try:
        for i in range(6):
            xdo.move(cx + 8 * i, cy)
            app.run_frames(2)
        t0 = time.perf_counter()  # the pause: the loop runs, the mouse rests, until the full frame renders
        while time.perf_counter() - t0 < 0.5 or (
            app.worker.running_stamp != app.session.stamp and time.perf_counter() - t0 < 10
        ):
            app.step()
        assert app.worker.running_stamp == app.session.stamp and app.quality.full == app.session.last_quality
        full_stamp = app.session.stamp
        after = []  # qualities of the frames shown after the resume, while the drag goes on
        for i in range(40):  # the resumed drag: a move every ~2 frames, as a hand does
            xdo.move(cx + 60 + 4 * i, cy + 5)
            for _ in range(2):
                app.step()
                if app.shown.stamp > full_stamp and (not after or after[-1][0] != app.shown.stamp):
                    after.append((app.shown.stamp, app.shown.job.quality))
            if after:
                break
    finally:
        xdo.up(1)
    assert app.worker.cancelled > cancelled0
    assert full_stamp not in app.presented  # the stopped full frame never reached the screen
    assert after and after[0][1] != app.quality.full, after  # the resumed drag got its preview
    monkeypatch.undo()
    settle(app)
    assert app.shown.job.quality == app.quality.full  # and full quality once the view rests


@pytest.mark.parametrize("button", [4, 5])  # wheel up (closer), wheel down (farther)
def test_zooming_to_the_limit_keeps_the_object_on_screen(app, xdo, button):
    """Notch by notch to the zoom limit: the object stays visible (the ray range follows the camera);
    past the limit the radius holds and a note says why."""
    baseline(app)
    hover(app, xdo, *render_centre(app))
    lo, hi = app.state.defaults.radius_range
    radii = []
    for _ in range(40):
        before = app.state.camera.radius
        xdo.click(button)
        app.run_frames(3)
        settle(app)
        if app.state.camera.radius == before:
            break
        radii.append(app.state.camera.radius)
        assert visible(app) > 0.01, f"the object vanished at radius {app.state.camera.radius:.2f}"
    assert radii, "the wheel did not zoom"
    if button == 4:
        assert min(radii) == pytest.approx(lo)
    else:
        assert max(radii) == pytest.approx(hi)
    assert "zoom limit" in app.status_text()
    app.reset_camera()


def test_info_messages_expire_and_errors_wait_to_be_dismissed(app, xdo, monkeypatch):
    baseline(app)
    monkeypatch.setitem(ui_state.MESSAGE_TTL_S, "info", 0.5)
    app.notify("a passing note")
    app.ui.export_error = "a failure to read"
    app.run_frames(2)
    assert "a passing note" in app.status_text() and "a failure to read" in app.status_text()
    app.run(max_seconds=1.0)  # the loop wakes for the expiry by itself
    assert "a passing note" not in app.status_text()
    assert "a failure to read" in app.status_text()
    hover(app, xdo, 10, app.render_rect()[3] + 8)  # on the status line
    xdo.click(1)
    app.run_frames(3)
    assert app.ui.export_error is None and "a failure to read" not in app.status_text()
    for i in range(5):  # never a pile: the newest two and a count
        app.ui.export_error, app.ui.render_error, app.ui.gl_error = f"e{i}", f"r{i}", f"g{i}"
    app.run_frames(1)
    assert "+1 older" in app.status_text()
    app.ui.dismiss()


def test_status_line_at_rest_says_what_is_on_screen(app):
    baseline(app)
    text = app.status_text()
    assert "seed 0 · psi 0.70 · raw 32px" in text and " ms" in text
    app.state.latent.seed_b, app.state.latent.interp, app.state.latent.t = 7, True, 0.37
    settle(app)
    assert "seed 0 -> 7 t 0.37 · psi 0.70 · raw 32px" in app.status_text()
    app.state.latent.interp = False


def test_tab_hides_the_pane_and_ctrl_q_quits(app, xdo):
    baseline(app)
    hover(app, xdo, *render_centre(app))
    xdo.key("Tab")
    app.run_frames(3)
    assert app.render_rect()[0] == 0 and "seed" not in app.item_rects
    xdo.key("Tab")
    app.run_frames(3)
    assert app.render_rect()[0] == layout.PANE_WIDTH and "seed" in app.item_rects
    xdo.key("ctrl+q")
    app.run_frames(2)
    try:
        assert glfw.window_should_close(app.window)
    finally:
        glfw.set_window_should_close(app.window, False)  # the module's window lives on


def _export_video(app: App, tmp_path) -> dict:
    """Record the panel's 2-frame orbit video of what is on screen; returns its info."""
    s = app.export_settings
    s.video_kind, s.video_frames, s.video_path = "orbit", 2, str(tmp_path / "shot.mp4")
    job = start_video(app)
    assert job is not None, app.ui.export_error
    assert app.run_until(lambda: job.done, 120) and job.ok, job.message
    app.run_frames(2)  # the loop takes the finished job
    return read_video_info(tmp_path / "shot.mp4")


@pytest.mark.parametrize("case", ["fractional seed", "A/B at t=0.37 with mixing"])
def test_a_video_renders_exactly_the_latent_on_screen(app, tmp_path, case):
    """The export's frames are the shown latent: the first frame's request, seen from the screen's camera,
    renders the screen's pixels bit for bit; the file name says which latent it holds."""
    baseline(app)
    lat = app.state.latent
    if case == "fractional seed":
        lat.seed = 5.8
    else:
        lat.seed, lat.seed_b, lat.interp, lat.t, lat.mix, lat.mix_seed = 2.0, 7, True, 0.37, True, 3
    rk = app.model.engine.G.rendering_kwargs
    app.state.camera = orbit.from_camera(orbit_camera_at(rk, 0.0), app.state.defaults.pivot)
    settle(app)
    shown = app.shown
    spec = video_spec(app, shown)
    first = next(frame_requests(spec, rk))
    assert first.latent == shown.job.request.latent
    same_camera = replace(first, camera=shown.job.request.camera, stamp=shown.job.request.stamp)
    assert same_camera == shown.job.request  # every other setting is the screen's
    px = frame_pixels(app.model.engine, same_camera, "raw")
    assert np.array_equal(px, render_pixels(shown))
    assert np.abs(np.asarray(first.camera) - np.asarray(shown.job.request.camera)).max() < 1e-5
    info = _export_video(app, tmp_path)
    assert info["frames"] == 2
    name = app.ui.last_saved or ""
    assert name.endswith("shot.mp4")
    expected = "seed5.80" if case == "fractional seed" else "seed2-to-7-t0.37-mix3"
    assert latent_name(shown.job.request.latent) == expected
    lat.interp, lat.mix = False, False


def test_interpolation_video_needs_interpolation_on(app, tmp_path):
    baseline(app)
    app.export_settings.video_kind = "interp"
    assert start_video(app) is None
    assert "tick 'interpolate A -> B'" in app.ui.export_error
    app.ui.export_error = None
    app.export_settings.video_kind = "orbit"


def test_jump_row_opens_and_scrolls_to_a_section(app, xdo):
    """Every panel one click away: the jump row scrolls the pane to Export and Performance."""
    from test_app import click_item

    baseline(app)
    for section, item in (("export", "save_render"), ("model", "seed")):
        click_item(app, xdo, f"jump_{section}")
        app.run_frames(3)
        x0, y0, x1, y1 = app.item_rects[item]
        assert 0 <= y0 and y1 <= app.render_rect()[3], (section, app.item_rects[item])


def test_depth_view_has_a_colour_bar_with_near_and_far(app):
    baseline(app)
    app.state.view.view = "depth"
    settle(app)
    x0, y0, x1, y1 = app.item_rects["depth_legend"]
    app.run_frames(1)
    glfw.make_context_current(app.window)
    canvas.draw_render_area(app)
    from imgui_bundle import imgui

    imgui.backends.opengl3_render_draw_data(imgui.get_draw_data())  # the overlay over the render, as drawn
    bar = canvas.read_back(app.window, int(x0) + 2, int((y0 + y1) / 2), int(x1 - x0) - 4, 1)[0].astype(int)
    assert bar[0, 0] > 200 and bar[0, 1] > 180 and bar[0, 2] < 80  # near: viridis' yellow
    assert bar[-1, 0] < 120 and bar[-1, 1] < 40 and bar[-1, 2] > 60  # far: its purple
    assert app.shown.frame.far > app.shown.frame.near
    app.state.view.view = "raw"
