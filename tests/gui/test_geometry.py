"""The geometry view and the export panel in the real window on Xvfb, driven by X input (xdotool).

The golden small network's density fills much of its box, so its preview mesh covers most of the
view; previews use a 48^3 grid to stay quick on 2 cores. Pixels come from the render area as drawn.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("imgui_bundle")
pytest.importorskip("glfw")
pytest.importorskip("OpenGL")

from PIL import Image  # noqa: E402
from test_app import click_item, differs, drag, golden_window, hover, render_centre, settle  # noqa: E402
from xdo import XDo  # noqa: E402

from renderer.camera import default_camera  # noqa: E402
from renderer.cli import main as cli_main  # noqa: E402
from renderer.export.screenshot import read_metadata  # noqa: E402
from renderer.export.video import read_video_info  # noqa: E402
from viz import results  # noqa: E402
from viz.app import App  # noqa: E402
from viz.gfx.mesh_view import project_ndc, square_fit  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool missing: apt-get install xdotool"),
]

TITLE = "triplane-viz geometry test"
BACKGROUND = np.array([0.1, 0.1, 0.12]) * 255


@pytest.fixture(scope="module")
def app(xvfb_display, golden_native_checkpoint, tmp_path_factory):
    """The viewer with the golden network, raw view at 32, 48^3 previews, GL errors checked."""
    with golden_window(golden_native_checkpoint, tmp_path_factory, TITLE, geometry_resolution=48) as a:
        yield a


@pytest.fixture(scope="module")
def xdo(app):
    return XDo(TITLE)


def start(app: App) -> None:
    """Seed 0, psi 0.7, raw view at 32, default camera, no overlay; settled."""
    s = app.state
    s.latent = replace(s.latent, seed=0.0, interp=False, playing=False, t=0.0, mix=False, seed_b=1)
    s.trunc.psi, s.trunc.cutoff = 0.7, None
    s.view.view, s.view.neural_rendering_resolution = "raw", 32
    s.reset_camera()
    app.geometry.overlay, app.geometry.mode = False, "colours"
    app.ui.export_error = None
    settle(app)


def mesh_ready(app: App, timeout: float = 60.0) -> None:
    """Frames until the preview mesh of the shown latent is in the mesh view."""
    ok = app.run_until(
        lambda: (
            app.idle()
            and not app.mesher.busy
            and app.mesh_view.mesh is not None
            and app.mesh_key == results.geometry_key(app, app.shown)
        ),
        timeout,
    )
    assert ok, (app.status_text(), app.ui.geometry_error)
    app.run_frames(2)


def scroll_to(app: App, xdo: XDo, name: str) -> None:
    """Scroll the control pane (mouse wheel over it) until the widget `name` is fully visible."""
    bottom = app.render_rect()[3]
    for _ in range(60):
        rect = app.item_rects.get(name)
        if rect is not None and rect[1] >= 0 and rect[3] <= bottom:
            return
        hover(app, xdo, 200, bottom / 2)
        xdo.click(5 if rect is None or rect[3] > bottom else 4)
        app.run_frames(3)
    raise AssertionError(f"{name} never came into view: {app.item_rects.get(name)}")


def click(app: App, xdo: XDo, name: str) -> None:
    """Scroll the widget into view, then click it."""
    scroll_to(app, xdo, name)
    click_item(app, xdo, name)


def wait_export(app: App, timeout: float = 120.0) -> None:
    assert app.run_until(lambda: not app.exporter.busy, timeout), app.status_text()
    app.run_frames(2)


# ----------------------------------------------------------------- the geometry view
def test_geometry_view_draws_and_orbits_without_neural_renders(app, xdo):
    start(app)
    click(app, xdo, "view_geometry")
    assert app.state.view.view == "geometry"
    mesh_ready(app)
    first = app.read_render_area()
    sx, sy, side, _ = square_fit(0, 0, first.shape[1], first.shape[0])
    square = first[sy : sy + side, sx : sx + side]
    covered = (np.abs(square.astype(float) - BACKGROUND).max(-1) > 3).mean()
    assert covered > 0.2, covered  # the mesh is drawn
    stats, stamp = app.engine.stats, app.session.stamp
    renders, draws = stats.renders, app.mesh_view.draws
    cx, cy = render_centre(app)
    drag(app, xdo, cx, cy, 80, 30)  # orbit
    assert app.state.camera.yaw != 0
    app.run_frames(3)
    moved = app.read_render_area()
    assert differs(moved, first) > 0.05
    assert stats.renders == renders and app.session.stamp == stamp  # no neural render for camera moves
    assert app.mesh_view.draws > draws + 5  # redrawn every frame at display rate
    for mode in ("normals", "clay"):
        click(app, xdo, f"geometry_{mode}")
        assert app.geometry.mode == mode
        assert differs(app.read_render_area(), moved) > 0.05, mode
    assert stats.renders == renders


def test_mesh_projection_matches_the_renderers_pixels(app):
    """A vertex projected by the GL matrices lands on the pixel the renderer's ray for it goes through."""
    from renderer.model.volume import sample_rays

    cam = default_camera(app.engine.G.rendering_kwargs, yaw=0.4, pitch=-0.2)
    res = 64
    o, d = sample_rays(cam[None, :16].view(1, 4, 4), cam[None, 16:].view(1, 3, 3), res)
    rows, cols = np.array([3, 20, 40, 60]), np.array([5, 33, 12, 58])
    pts = (o + 2.6 * d)[0].numpy()[rows * res + cols]
    ndc = project_ndc(cam.numpy(), pts)
    assert np.allclose((ndc[:, 0] + 1) / 2 * res - 0.5, cols, atol=1e-3)
    assert np.allclose((1 - ndc[:, 1]) / 2 * res - 0.5, rows, atol=1e-3)
    assert square_fit(380, 0, 580, 974) == (380, 197, 580, 580)


def test_latent_change_extracts_a_new_mesh_in_the_background(app, xdo):
    start(app)
    app.state.view.view = "geometry"
    mesh_ready(app)
    old_mesh, before = app.mesh_view.mesh, app.read_render_area()
    hover(app, xdo, *render_centre(app))
    xdo.key("Right")  # next seed
    frames = app.drawn_frames
    mesh_ready(app)
    assert app.drawn_frames - frames > 3  # the window kept drawing while the mesh was extracted
    assert app.mesh_view.mesh is not old_mesh and app.mesh_key[1].seed == 1.0
    assert differs(app.read_render_area(), before) > 0.05
    assert any("mesh preview:" in m for m in app.test_logs)


def test_overlay_draws_the_mesh_on_the_render(app, xdo):
    start(app)
    plain = app.read_render_area()
    click(app, xdo, "geometry_overlay")
    assert app.geometry.overlay
    mesh_ready(app)
    assert app.state.view.view == "raw" and differs(app.read_render_area(), plain) > 0.05
    app.geometry.overlay = False
    app.run_frames(2)
    assert np.array_equal(app.read_render_area(), plain)


# ----------------------------------------------------------------- the export panel
def test_mesh_export_from_the_panel_writes_the_file(app, xdo):
    import trimesh

    start(app)
    s = app.export_settings
    s.mesh_resolution, s.mesh_format, s.mesh_path, s.mesh_level = 64, "glb", "panel-head.glb", None
    click(app, xdo, "export_mesh")
    assert app.exporter.job is not None and app.exporter.job.kind == "mesh"
    wait_export(app)
    path = os.path.join(app.ui.out_dir, "panel-head.glb")
    assert app.ui.export_error is None and app.ui.last_saved == path, app.ui.export_error
    mesh = trimesh.load(path, process=False, force="mesh")
    assert len(mesh.vertices) > 100
    assert f"saved {path}" in app.status_text()

    click(app, xdo, "export_mesh")  # the same name again: refused, nothing replaced, the app goes on
    wait_export(app)
    assert "exists" in app.ui.export_error and os.path.getsize(path) > 0
    app.ui.export_error = None


def test_mesh_export_cancel_leaves_no_file(app, xdo):
    start(app)
    s = app.export_settings
    s.mesh_resolution, s.mesh_format, s.mesh_path = 256, "ply", "cancelled.ply"
    click(app, xdo, "export_mesh")
    assert app.run_until(lambda: app.exporter.job.progress > 0.02, 60)
    assert "exporting mesh" in app.status_text()
    click(app, xdo, "export_cancel")
    wait_export(app)
    assert app.ui.export_error is None and "cancelled" in app.ui.info  # asked for: a note, not an error
    assert "error" not in [kind for _, kind, _ in app.ui.messages()]
    folder = app.ui.out_dir
    assert not os.path.exists(os.path.join(folder, "cancelled.ply"))
    assert not [n for n in os.listdir(folder) if n.startswith(".")]  # no temp files


def test_screenshot_round_trips_through_from_png(app, xdo, capsys):
    start(app)
    hover(app, xdo, *render_centre(app))
    xdo.key("s")
    app.run_frames(2)
    shot = app.ui.last_saved
    meta = read_metadata(shot)
    assert meta["view"] == "raw" and meta["request"]["psi"] == 0.7 and os.path.exists(shot[:-4] + ".json")
    assert cli_main(["images", "--from-png", shot]) == 0
    assert "identical pixels" in capsys.readouterr().out
    assert np.array_equal(np.asarray(Image.open(shot[:-4] + "-rerender.png")), np.asarray(Image.open(shot)))


def test_depth_and_video_from_the_panel(app, xdo):
    start(app)
    click(app, xdo, "save_depth")
    npy = app.ui.last_saved.split(" + ")[0]
    assert np.load(npy).shape == (32, 32) and os.path.exists(npy[:-4] + ".png")
    s = app.export_settings
    s.video_kind, s.video_frames, s.video_fps, s.video_path = "orbit", 3, 10.0, "panel.mp4"
    click(app, xdo, "export_video")
    wait_export(app)
    info = read_video_info(os.path.join(app.ui.out_dir, "panel.mp4"))
    assert info["frames"] == 3 and info["size"] == (32, 32) and info["fps"] == pytest.approx(10)


def test_views_of_this_latent_from_the_panel(app, xdo):
    """'export views of this latent' writes a transforms.json folder of exactly the latent on screen, from the
    cameras its sampler draws; cancelling leaves nothing."""
    import json

    from renderer.dataset import camera_from_transforms

    start(app)
    app.state.latent.seed = 5.0
    settle(app)
    s = app.export_settings
    s.views_count, s.views_sampler, s.views_path = 3, "orbit", "views-five"
    click(app, xdo, "export_views")
    assert app.exporter.job is not None and app.exporter.job.kind == "views"
    wait_export(app)
    folder = os.path.join(app.ui.out_dir, "views-five")
    assert app.ui.export_error is None, app.ui.export_error
    doc = json.load(open(os.path.join(folder, "transforms.json")))
    assert len(doc["frames"]) == 3
    first = np.asarray(Image.open(os.path.join(folder, doc["frames"][0]["file_path"])).convert("RGB"))
    cam = camera_from_transforms(doc["frames"][0], doc)  # the frame's camera, converted back to EG3D's
    engine_req = replace(app.shown.job.request, camera=cam, superresolution=True)
    res = app.engine.render(engine_req)  # the same latent and settings from that camera
    from renderer.engine.frames import to_uint8

    assert np.abs(first.astype(int) - to_uint8(res.image).numpy().astype(int)).max() <= 1
    # the same folder again with a cancel midway: refused or cancelled, never a partial folder
    s.views_count, s.views_path = 200, "views-cancelled"
    click(app, xdo, "export_views")
    assert app.run_until(lambda: app.exporter.job.progress > 0.0, 60)
    click(app, xdo, "export_cancel")
    wait_export(app)
    assert not os.path.exists(os.path.join(app.ui.out_dir, "views-cancelled"))
    assert not [n for n in os.listdir(app.ui.out_dir) if n.startswith(".")]  # no partial folders
