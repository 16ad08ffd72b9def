"""Photo to 3D in the real window on Xvfb: a picture dropped on the window is prepared (crop, camera estimate), the
fit runs with real clicks and typed settings, becomes the current latent at its camera, can be orbited; a cancel
keeps the view as it was; a broken picture is a clear message and the viewer keeps running.

The built-in model (an object model: segmentation and a rendered pose search) keeps the fit quick on 2 cores."""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("imgui_bundle")
pytest.importorskip("glfw")
pytest.importorskip("OpenGL")

from PIL import Image  # noqa: E402
from test_app import click_item, drag, hover, settle, type_into  # noqa: E402
from xdo import XDo  # noqa: E402

from renderer.builtin import WEIGHTS  # noqa: E402
from renderer.camera import camera_tuple, default_camera  # noqa: E402
from renderer.engine import LatentSpec, RenderRequest  # noqa: E402
from renderer.engine.frames import to_uint8  # noqa: E402
from renderer.export.screenshot import custom_ws_from_metadata, read_metadata  # noqa: E402
from renderer.fit import load_image, prepare  # noqa: E402
from viz.app import App, AppConfig  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool missing: apt-get install xdotool"),
]

TITLE = "triplane-viz photo test"


@contextmanager
def builtin_window(tmp_path_factory):
    old = os.environ.get("TRIPLANE_VIZ_CONFIG_DIR")
    os.environ["TRIPLANE_VIZ_CONFIG_DIR"] = str(tmp_path_factory.mktemp("config"))
    a = App(
        AppConfig(
            checkpoint="builtin",
            width=1000,
            height=1000,
            title=TITLE,
            debug_gl=True,
            out_dir=str(tmp_path_factory.mktemp("shots")),
            log=lambda msg: None,
        )
    )
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
def app(xvfb_display, tmp_path_factory):
    with builtin_window(tmp_path_factory) as a:
        yield a


@pytest.fixture(scope="module")
def xdo(app):
    return XDo(TITLE)


@pytest.fixture(scope="module")
def photo(app, tmp_path_factory) -> str:
    """A picture of seed 7 from a side view, rendered by the model itself."""
    G = app.engine.G
    cam = camera_tuple(default_camera(G.rendering_kwargs, yaw=0.35, pitch=0.1))
    front = camera_tuple(default_camera(G.rendering_kwargs))
    res = app.engine.render(RenderRequest(LatentSpec(seed=7), cam, front, psi=0.7))
    path = tmp_path_factory.mktemp("photos") / "seed7.png"
    Image.fromarray(to_uint8(res.image).numpy()).save(path)
    return str(path)


def prepared(app: App, timeout: float = 120.0) -> None:
    ok = app.run_until(lambda: app.photo.view.stage in ("ready", "failed"), timeout)
    assert ok and app.photo.view.stage == "ready", app.photo.view.error
    app.run_frames(3)


def test_drop_confirm_fit_and_orbit(app, xdo, photo):
    settle(app)
    before = app.read_render_area()
    app.input.on_drop(app.window, [photo])  # X drag-and-drop can't be faked: the GLFW drop callback itself
    app.run_frames(3)
    assert app.photo.view.stage == "preparing" and app.photo_settings.path == photo
    prepared(app)
    v = app.photo.view
    assert v.crop is not None and v.crop.shape == (128, 128, 3) and "photo_crop" in app.item_rects
    assert app.state.latent.custom is None  # nothing changes before Fit
    type_into(app, xdo, "photo_steps", "4", ctrl_click=False)
    assert app.photo_settings.steps == 4
    click_item(app, xdo, "photo_fit_button", 0.5)
    assert app.photo.view.stage == "fitting"
    assert app.run_until(lambda: app.photo.view.stage in ("done", "failed"), 300), app.photo.view
    assert app.photo.view.stage == "done", app.photo.view.error
    assert len(app.photo.view.losses) == 4 and app.photo.view.preview is not None
    settle(app)
    lat = app.shown.job.request.latent
    assert lat.custom is not None and lat.custom == app.state.latent.custom  # the fit is the current latent
    assert app.state.latent.custom_label == "seed7.png"
    assert (app.read_render_area() != before).any(axis=-1).mean() > 0.02
    yaw = app.state.camera.yaw
    x, y, w, h = app.render_rect()
    drag(app, xdo, x + w / 2, y + h / 2, 80, 0)  # orbit the fitted head
    assert app.state.camera.yaw != yaw
    settle(app)
    assert app.shown.job.request.latent.custom == lat.custom


def test_an_edited_box_recrops_the_picture(app, xdo, photo):
    app.input.on_drop(app.window, [photo])
    prepared(app)
    assert app.photo.view.box == (0, 0, 128, 128)  # an object model: the whole picture
    before = app.photo.view.crop
    type_box(app, xdo, ("24", "4", "100", "120"))
    assert app.photo_settings.box == [24, 4, 100, 120]
    click_item(app, xdo, "photo_recrop", 0.5)
    prepared(app)
    v = app.photo.view
    assert v.box == (24, 4, 100, 120) and not np.array_equal(v.crop, before)
    rgb, _ = load_image(photo)
    offline = prepare(app.engine.G, rgb, None, box=(24, 4, 100, 120))  # the same preparation, offline
    assert np.array_equal(v.crop, offline.crop)
    assert (v.guess.yaw, v.guess.pitch) == (offline.camera.yaw, offline.camera.pitch)
    # a box outside the picture: one clear line, and the fields stay to correct it
    type_box(app, xdo, (None, None, "200", None))
    click_item(app, xdo, "photo_recrop", 0.5)
    assert app.run_until(lambda: app.photo.view.stage in ("failed", "ready"), 60)
    v = app.photo.view
    assert v.stage == "failed" and "does not lie inside the 128x128 picture" in v.error
    app.run_frames(3)
    assert app.photo_settings.box == [24, 4, 200, 120]  # the edit is kept
    type_box(app, xdo, (None, None, "90", None))
    assert app.photo_settings.box == [24, 4, 90, 120]
    click_item(app, xdo, "photo_recrop", 0.5)
    prepared(app)
    assert app.photo.view.box == (24, 4, 90, 120)


def type_box(app, xdo, values) -> None:
    """Click into each of the Photo panel's four box fields and type its value (None: leave it)."""
    x0, y0, x1, y1 = app.item_rects["photo_box"]
    quarter = (x1 - x0) / 4
    for i, value in enumerate(values):
        if value is None:
            continue
        hover(app, xdo, x0 + (i + 0.5) * quarter, (y0 + y1) / 2)
        xdo.click(1)
        app.run_frames(3)
        xdo.key("ctrl+a")
        app.run_frames(3)
        xdo.type(value)
        app.run_frames(len(value) + 8)
        xdo.key("Return")
        app.run_frames(5)


def test_cancel_keeps_the_view(app, xdo, photo):
    app.input.on_drop(app.window, [photo])
    prepared(app)
    latent, fits = app.state.latent.custom, app.fits
    type_into(app, xdo, "photo_steps", "300", ctrl_click=False)
    click_item(app, xdo, "photo_fit_button", 0.5)
    assert app.run_until(lambda: app.photo.view.step >= 1, 120), app.photo.view
    click_item(app, xdo, "photo_cancel", 0.5)
    assert app.photo.view.stage == "cancelled"
    app.run_frames(5)
    assert app.state.latent.custom == latent and app.fits == fits  # nothing adopted
    assert app.photo.poll() is None


def test_a_broken_picture_is_a_clear_message(app, xdo, tmp_path):
    bad = tmp_path / "not-a-picture.png"
    bad.write_bytes(b"this is text, not a PNG")
    app.input.on_drop(app.window, [str(bad)])
    assert app.run_until(lambda: app.photo.view.stage in ("failed", "ready"), 60)
    v = app.photo.view
    assert v.stage == "failed" and "not-a-picture.png" in v.error and "\n" not in v.error
    hover(app, xdo, 200, 300)
    settle(app)  # the viewer renders on
    assert app.ui.render_error is None and np.isfinite(app.state.camera.yaw)


def open_refine(app, xdo, **counts: str) -> None:
    """Unfold the Photo panel's slower phases (a click on the folded node) and type their step counts."""
    if not app.photo_settings.refine:
        click_item(app, xdo, "photo_refine", 0.3)
    assert app.photo_settings.refine
    for name, text in counts.items():
        type_into(app, xdo, name, text, ctrl_click=False)


def spy_outcomes(app, monkeypatch) -> list:
    """The fits the window adopts, as `take_fit` receives them (the real poll runs)."""
    seen: list = []
    real = app.photo.poll

    def poll():
        out = real()
        if out is not None:
            seen.append(out)
        return out

    monkeypatch.setattr(app.photo, "poll", poll)
    return seen


def test_the_slower_phases_run_after_the_steps_with_the_camera_kept(app, xdo, photo, monkeypatch):
    app.input.on_drop(app.window, [photo])
    prepared(app)
    outcomes = spy_outcomes(app, monkeypatch)
    type_into(app, xdo, "photo_steps", "2", ctrl_click=False)
    open_refine(app, xdo, photo_w_plus="1", photo_polish="1", photo_newton="0")
    if not app.photo_settings.fixed_camera:
        click_item(app, xdo, "photo_fixed_camera", 0.05)
    s = app.photo_settings
    assert (s.steps, s.w_plus_steps, s.polish_steps, s.newton_steps, s.fixed_camera) == (2, 1, 1, 0, True)
    click_item(app, xdo, "photo_fit_button", 0.5)
    assert app.run_until(lambda: app.photo.view.stage in ("done", "failed"), 300), app.photo.view
    assert app.photo.view.stage == "done", app.photo.view.error
    settle(app)
    assert len(outcomes) == 1
    result = outcomes[0].result
    assert [r.phase for r in result.history] == ["pose", "detail", "w+", "polish"]
    yaw, pitch = np.radians(s.yaw_deg), np.radians(s.pitch_deg)
    assert {(r.yaw, r.pitch) for r in result.history} == {(result.yaw, result.pitch)}  # the camera never moved
    assert abs(result.yaw - yaw) < 1e-6 and abs(result.pitch - pitch) < 1e-6
    assert abs(app.state.camera.yaw - yaw) < 1e-6  # adopted at the kept camera
    assert app.state.latent.custom == app.shown.job.request.latent.custom is not None
    # save the fit's files, as the CLI writes them, into a new folder of the output folder (twice: no overwriting)
    out_dir = Path(app.ui.out_dir)
    folders = []
    for _ in range(2):
        click_item(app, xdo, "photo_save", 0.5)
        assert app.exporter.wait(120) and app.ui.export_error is None, app.ui.export_error
        app.run_frames(3)
        folders = sorted(out_dir.glob("fit-seed7-*"))
    assert [f.name for f in folders] == ["fit-seed7-0001", "fit-seed7-0002"]
    for folder in folders:
        assert sorted(f.name for f in folder.iterdir()) == ["crop.png", "fit.json", "sheet.png", "w.npy"]
        assert np.array_equal(np.load(folder / "w.npy"), result.ws)
        record = json.loads((folder / "fit.json").read_text())
        assert abs(record["yaw"] - result.yaw) < 1e-5 and record["photo"] == photo
        assert record["settings"]["polish_steps"] == 1 and record["settings"]["optimise_pose"] is False
        assert [h["phase"] for h in record["history"]] == ["pose", "detail", "w+", "polish"]
        crop = np.asarray(Image.open(folder / "crop.png"))
        board = np.asarray(Image.open(folder / "sheet.png"))
        assert board.shape == (crop.shape[0], 6 * crop.shape[1], 3) and np.array_equal(board[:, : crop.shape[1]], crop)
    # an output folder that is a file: one clear line, nothing written, the viewer keeps running
    blocker = out_dir / "not-a-folder"
    blocker.write_text("x")
    app.ui.out_dir = str(blocker)
    try:
        click_item(app, xdo, "photo_save", 0.5)
        app.exporter.wait(120)
        app.run_frames(3)
        assert app.exporter.job is not None and not app.exporter.job.ok
        message = app.exporter.job.message
        assert "cannot create the folder" in message and "not-a-folder" in message and "\n" not in message
    finally:
        app.ui.out_dir = str(out_dir)
    assert sorted(out_dir.glob("fit-seed7-*")) == folders


def test_a_newton_step_shows_its_phase_and_cancels_between_renders(app, xdo, photo):
    app.input.on_drop(app.window, [photo])
    prepared(app)
    latent, fits = app.state.latent.custom, app.fits
    type_into(app, xdo, "photo_steps", "2", ctrl_click=False)
    open_refine(app, xdo, photo_w_plus="0", photo_polish="0", photo_newton="1")
    if app.photo_settings.fixed_camera:
        click_item(app, xdo, "photo_fixed_camera", 0.05)
    assert not app.photo_settings.fixed_camera and app.photo_settings.newton_steps == 1
    click_item(app, xdo, "photo_fit_button", 0.5)
    assert app.run_until(lambda: app.photo.view.step >= 2, 120), app.photo.view
    v = app.photo.view
    assert (v.stage, v.phase, v.step, v.total) == ("fitting", "newton", 2, 3)  # the bar names the phase now running
    estimate = v.time_left  # a newton step: a render per latent coordinate and camera parameter
    assert estimate is not None and estimate > 0
    thread = app.photo._thread
    click_item(app, xdo, "photo_cancel", 0.5)
    assert app.photo.view.stage == "cancelled"
    t0 = time.perf_counter()
    assert app.run_until(lambda: not thread.is_alive(), 60)
    stopped = time.perf_counter() - t0
    assert stopped < max(2.0, estimate / 4), (stopped, estimate)  # between the Jacobian's renders, not after the step
    app.run_frames(5)
    assert app.state.latent.custom == latent and app.fits == fits  # nothing adopted


@pytest.fixture(scope="module")
def saved_fit(tmp_path_factory):
    """A fit of seed 3 written as `triplane-render fit` writes it (its own model instance, off the window's)."""
    from test_fit_saved import write_saved_fit

    from renderer import load_generator

    G = load_generator("builtin")
    folder = tmp_path_factory.mktemp("saved") / "fit-portrait"
    return folder, write_saved_fit(G, folder, yaw=0.45, pitch=0.15), G


def shown_psnr(app, G, ws, camera) -> float:
    """PSNR of the frame on screen against the model's own render of `ws` at `camera` (as shown; at most 100 dB)."""
    import torch

    from renderer.fit.compare import psnr

    with torch.no_grad():
        want = G.synthesis(torch.from_numpy(ws)[None], torch.tensor(camera)[None])["image"][0]
    return psnr(app.shown.result.image, want)


def test_a_saved_fit_dropped_on_the_window_shows_its_latent_at_its_camera(app, xdo, saved_fit, tmp_path):
    folder, result, G = saved_fit
    app.state.latent.custom = None  # back to seeds
    settle(app)
    for path in (folder, folder / "fit.json"):
        app.state.latent.custom = None
        app.state.camera = replace(app.state.camera, yaw=-0.3)
        app.input.on_drop(app.window, [str(path)])
        settle(app)
        lat = app.shown.job.request.latent
        assert lat.custom is not None and app.state.latent.custom_label == "portrait.png"
        assert np.array_equal(app.engine.custom_latents[lat.custom][0].numpy(), result.ws)
        assert abs(app.state.camera.yaw - result.yaw) < 1e-6 and abs(app.state.camera.pitch - result.pitch) < 1e-6
        assert shown_psnr(app, G, result.ws, result.camera) > 35  # the fit, at its camera, as the model renders it
    # a screenshot of it carries the ws, so `images --from-png` re-renders it without the fit
    shot = app.save_render()
    assert shot is not None and shot.name.startswith(f"render-{app.state.latent.custom}-"), shot
    assert np.array_equal(custom_ws_from_metadata(read_metadata(shot)), result.ws)
    # the Model panel's path field takes the fit's w.npy too
    app.state.latent.custom = None
    click_item(app, xdo, "jump_model")
    type_into(app, xdo, "model_path", str(folder / "w.npy"), ctrl_click=False)
    settle(app)
    assert app.state.latent.custom is not None and app.ui.load_error is None
    # its tuned checkpoint opens as a model and brings the fit with it
    tuned = tmp_path / "tuned-fit"
    shutil.copytree(folder, tuned)
    shutil.copy(WEIGHTS, tuned / "tuned.safetensors")
    app.state.latent.custom = None
    app.input.on_drop(app.window, [str(tuned / "tuned.safetensors")])
    assert app.run_until(lambda: app.model is not None and app.model.path.endswith("tuned.safetensors"), 60)
    settle(app)
    assert app.state.latent.custom is not None and app.state.latent.custom_label == "portrait.png"
    assert shown_psnr(app, G, result.ws, result.camera) > 35
    # a broken fit (a pickled w.npy): one line in the Model panel, and nothing changes
    broken = tmp_path / "broken-fit"
    shutil.copytree(folder, broken)
    np.save(broken / "w.npy", np.array([{"not": "a latent"}], dtype=object), allow_pickle=True)
    model, latent, camera = app.model, app.state.latent.custom, app.state.camera
    app.input.on_drop(app.window, [str(broken)])
    settle(app)
    assert "w.npy is not a plain array" in app.ui.load_error and "\n" not in app.ui.load_error
    assert (app.model, app.state.latent.custom, app.state.camera) == (model, latent, camera)
    app.load_model("builtin")  # the module's other tests expect the shipped model
    assert app.run_until(lambda: app.model is not None and app.model.path == "builtin", 60)


def test_a_fit_waiting_for_its_model_is_dropped_when_another_model_is_asked_for(app, saved_fit, tmp_path):
    folder, _, _ = saved_fit
    model = tmp_path / "model.safetensors"
    shutil.copy(WEIGHTS, model)
    fit = tmp_path / "fit"
    shutil.copytree(folder, fit)
    record = json.loads((fit / "fit.json").read_text())
    (fit / "fit.json").write_text(json.dumps({**record, "network": str(model)}))
    app.state.latent.custom = None
    app.load_model(str(fit))  # the fit's model is not on screen: it loads first, the fit waits for it
    assert app.pending_fit is not None and app.pending_fit.model_path == str(model)
    app.load_model("builtin")  # another model asked for before it arrived
    assert app.pending_fit is None
    assert app.run_until(lambda: app.loader.loading is None and app.model.path == "builtin", 60)
    app.load_model(str(model))  # that model later, on its own: no fit comes with it
    assert app.run_until(lambda: app.loader.loading is None and app.model.path == str(model), 60)
    settle(app)
    assert app.state.latent.custom is None
    app.load_model("builtin")
    assert app.run_until(lambda: app.model is not None and app.model.path == "builtin", 60)
