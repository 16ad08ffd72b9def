"""The inspector in the real window on Xvfb, driven by X input (xdotool): layers and channels, plane views and the
texel tooltip, a dragged density slice, the pixel probe, and a training-run folder followed while snapshots appear.

Every number the window shows is compared with the same thing computed offline from the engine's own tensors."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("imgui_bundle")
pytest.importorskip("glfw")
pytest.importorskip("OpenGL")

import torch  # noqa: E402
from eg3d_pickle import write_eg3d_pickle  # noqa: E402
from PIL import Image  # noqa: E402
from test_app import click_item, drag, golden_window, hover, settle, type_into  # noqa: E402
from xdo import XDo  # noqa: E402

from renderer.checkpoint.spec import ModelSpec  # noqa: E402
from renderer.inspect.layers import capture_backbone, capture_render  # noqa: E402
from renderer.inspect.planes import texel_info  # noqa: E402
from renderer.inspect.slices import density_slice, slice_points  # noqa: E402
from viz.app import App  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool missing: apt-get install xdotool"),
]

TITLE = "triplane-viz inspector test"
WIDTH, HEIGHT = 1270, 1000  # inside the 1280 x 1024 Xvfb screen (the pointer cannot leave it)


@pytest.fixture(scope="module")
def app(xvfb_display, golden_native_checkpoint, tmp_path_factory):
    with golden_window(golden_native_checkpoint, tmp_path_factory, TITLE, width=WIDTH, height=HEIGHT) as a:
        yield a


@pytest.fixture(scope="module")
def xdo(app):
    return XDo(TITLE)


def start(app: App, xdo: XDo, tab: str) -> None:
    """Seed 0, raw view at 32, default camera; the inspector opened with the I key on `tab` (clicked)."""
    s = app.state
    s.latent = replace(s.latent, seed=0.0, interp=False, playing=False, t=0.0, mix=False)
    s.view.view, s.view.neural_rendering_resolution = "raw", 32
    s.reset_camera()
    settle(app)
    if not app.inspector.state.open:
        hover(app, xdo, 200, 500)
        xdo.key("i")
        app.run_frames(4)
    assert app.inspector.state.open
    click_item(app, xdo, f"inspector_tab_{tab}")
    assert app.inspector.state.tab == tab


def ready(app: App, kinds: tuple[str, ...], timeout: float = 60.0) -> None:
    """Frames until the inspector holds `kinds` for the frame on screen."""
    ok = app.run_until(lambda: app.idle() and all(app.inspector.current(k) is not None for k in kinds), timeout)
    assert ok, (app.status_text(), app.inspector.errors)
    app.run_frames(3)


def shown_inputs(app: App):
    out = app.shown
    return app.engine.G, out.result.planes, out.result.ws, out.job.request


# ----------------------------------------------------------------- layers
def test_i_key_opens_the_layers_and_stats_match_an_offline_capture(app, xdo):
    start(app, xdo, "layers")
    ready(app, ("backbone", "render"))
    G, planes, ws, req = shown_inputs(app)
    names = [layer.name for layer, _ in app.inspector.layers()]
    assert names[0] == "mapping.ws" and "planes" in names and "render.depth" in names
    offline, offline_planes = capture_backbone(G, ws)
    assert torch.equal(offline_planes, planes)  # the capture's planes are the frame's
    offline += capture_render(G, planes, ws, req.camera, neural_rendering_resolution=32)
    by_name = {layer.name: layer.tensor.double().numpy() for layer in offline}
    for name in (names[3], "render.depth"):  # a backbone block and a render-side layer, clicked in the list
        if name not in app.item_rects:
            continue  # below the list's fold; the other one is checked
        click_item(app, xdo, f"layer_{name}", 0.2)
        assert app.inspector.state.layer == name
        shown = app.inspector.shown_stats
        t = by_name[name]
        assert shown["mean"] == pytest.approx(t.mean(), abs=1e-5)
        assert shown["std"] == pytest.approx(t.std(), abs=1e-5)
        assert shown["max"] == pytest.approx(t.max(), abs=1e-5)
        assert shown["min"] == pytest.approx(t.min(), abs=1e-5)


def test_channel_slider_rgb_and_fft_change_the_layer_image(app, xdo, tmp_path):
    start(app, xdo, "layers")
    ready(app, ("backbone",))
    name = next(layer.name for layer, _ in app.inspector.layers() if layer.name.endswith(".x"))
    click_item(app, xdo, f"layer_{name}", 0.2)

    def image() -> np.ndarray:
        path = tmp_path / f"w{time.monotonic_ns()}.png"
        app.save_window(path)
        app.run_frames(2)
        x0, y0, x1, y1 = (int(v) for v in app.item_rects["layer_image"])
        return np.asarray(Image.open(path).convert("RGB"))[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1]

    first = image()
    click_item(app, xdo, "layer_channel", 0.8)
    assert app.inspector.state.layer_view.channel > 0
    second = image()
    assert (first != second).any()
    click_item(app, xdo, "layer_rgb", 0.05)
    assert app.inspector.state.layer_view.rgb
    rgb = image()
    assert (np.abs(rgb[..., 0].astype(int) - rgb[..., 1]) > 8).mean() > 0.05  # colour, not grey
    click_item(app, xdo, "layer_fft", 0.05)
    assert app.inspector.state.layer_view.fft
    assert (image() != rgb).any()
    click_item(app, xdo, "layer_fft", 0.05)
    click_item(app, xdo, "layer_rgb", 0.05)


def test_a_camera_move_with_the_inspector_open_runs_no_backbone(app, xdo):
    start(app, xdo, "layers")
    ready(app, ("backbone", "render"))
    calls = app.engine.stats.backbone_calls
    captures, renders = app.inspector.runs["backbone"], app.inspector.runs["render"]
    x, y, w, h = app.render_rect()
    drag(app, xdo, x + 80, y + h / 2, 90, 0)
    assert app.state.camera.yaw != 0.0
    ready(app, ("backbone", "render"))
    assert app.inspector.runs["render"] > renders  # the render-side layers follow the camera...
    assert app.engine.stats.backbone_calls == calls  # ...the backbone ran neither for the frame
    assert app.inspector.runs["backbone"] == captures  # nor for the inspector


# ----------------------------------------------------------------- tri-planes
def test_plane_views_and_the_texel_tooltip(app, xdo):
    start(app, xdo, "planes")
    ready(app, ("pca",))
    G, planes, _, _ = shown_inputs(app)
    ev = app.inspector.current("pca").pca.explained
    assert 0 < ev.sum() <= 1 and ev[0] >= ev[1] >= ev[2]
    x0, y0, x1, y1 = app.item_rects["plane_2"]
    size = planes.shape[-1]
    row, col = 5, size - 3
    hover(app, xdo, x0 + (col + 0.5) * (x1 - x0) / size, y0 + (row + 0.5) * (y1 - y0) / size)
    k, info = app.inspector.hovered_texel
    want = texel_info(planes[0], 2, row, col, G.plane_axes, float(G.rendering_kwargs["box_warp"]))
    assert (k, info.row, info.col, info.axes) == (2, row, col, ("z", "x"))
    assert info.u_world == want.u_world and info.v_world == want.v_world
    assert np.array_equal(info.values, want.values)
    click_item(app, xdo, "plane_mode_channel", 0.1)
    assert app.inspector.state.plane_mode == "channel"
    click_item(app, xdo, "plane_channel", 0.9)
    assert app.inspector.state.plane_channel > 20
    click_item(app, xdo, "plane_mode_pca", 0.1)


# ----------------------------------------------------------------- slices
def test_dragging_the_slice_resamples_the_cached_planes(app, xdo, tmp_path):
    start(app, xdo, "slices")
    ready(app, ("slice",))
    calls, captures = app.engine.stats.backbone_calls, app.inspector.runs["backbone"]
    x0, y0, x1, y1 = app.item_rects["slice_position"]
    drag(app, xdo, (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 0.3, 0)
    spec = app.inspector.state.slice
    assert spec.axis == "z" and spec.position > 0.05
    ready(app, ("slice",))
    G, planes, _, req = shown_inputs(app)
    sl = app.inspector.current("slice")
    assert sl.spec == spec
    pivot = G.rendering_kwargs.get("avg_camera_pivot", (0, 0, 0))
    points, corners = slice_points(G, spec, camera=req.camera, pivot=pivot)
    assert np.array_equal(sl.points, points) and np.array_equal(sl.corners, corners)
    fresh = density_slice(G, planes, spec, camera=req.camera, pivot=pivot)
    assert np.array_equal(sl.sigma, fresh.sigma)
    flat = torch.from_numpy(points.reshape(1, -1, 3))
    assert np.array_equal(G.sample(flat, planes)["sigma"][0, :, 0].numpy().reshape(sl.sigma.shape), sl.sigma)
    assert app.engine.stats.backbone_calls == calls and app.inspector.runs["backbone"] == captures
    # the slice's plane over the render: drawn where the corners project, and gone when switched off
    outline = np.array(app.inspector.outline)
    assert outline.shape == (4, 2)
    cx, cy = outline.mean(axis=0)
    cx = min(cx, app.item_rects["inspector_window"][0] - 20)  # a point of the quad left of the inspector
    with_plane = tmp_path / "with.png"
    app.save_window(with_plane)
    app.run_frames(2)
    click_item(app, xdo, "slice_in_view", 0.05)
    assert not app.inspector.state.slice_in_view
    without = tmp_path / "without.png"
    app.save_window(without)
    app.run_frames(2)
    a = np.asarray(Image.open(with_plane).convert("RGB")).astype(int)
    b = np.asarray(Image.open(without).convert("RGB")).astype(int)
    patch = (slice(int(cy) - 3, int(cy) + 3), slice(int(cx) - 3, int(cx) + 3))
    assert (a[patch][..., 0] - b[patch][..., 0]).mean() > 5  # tinted orange inside the quad
    click_item(app, xdo, "slice_in_view", 0.05)


# ----------------------------------------------------------------- probe
def test_hover_probe_reports_the_engines_depth(app, xdo):
    start(app, xdo, "layers")
    out = app.shown
    alpha, depth = out.result.alpha[0].numpy(), out.result.depth[0].numpy()
    r = depth.shape[0]
    x, y, w, h = app.render_rect()
    side = min(w, h)
    fx, fy = x + (w - side) // 2, y + (h - side) // 2
    left_of_window = app.item_rects["inspector_window"][0] - 10
    candidates = [(px, py) for py in range(r) for px in range(r) if alpha[py, px] > 0.9]
    candidates = [(px, py) for px, py in candidates if fx + (px + 1) * side / r < left_of_window]
    assert candidates, "no opaque pixel left of the inspector window"
    px, py = candidates[len(candidates) // 2]
    hover(app, xdo, fx + (px + 0.5) * side / r, fy + (py + 0.5) * side / r)
    p = app.inspector.probed
    assert p is not None and p.pixel == (px, py)
    assert p.depth == pytest.approx(float(depth[py, px]), abs=1e-6)
    assert p.opacity == pytest.approx(float(alpha[py, px]), abs=1e-6)
    origin, direction = np.asarray(p.origin), np.asarray(p.direction)
    assert np.allclose(np.asarray(p.point), origin + p.depth * direction, atol=1e-5)
    assert p.density > 0  # an opaque pixel's ray stops inside matter


# ----------------------------------------------------------------- training runs
def write_snapshot(folder, kimg: int, weights, halves_apart: float = 0.3) -> None:
    """A training snapshot written the way training writes it (straight to its name), in two halves."""
    cfg, sd = weights
    spec = ModelSpec(cfg["init_kwargs"], cfg["rendering_kwargs"], int(cfg["neural_rendering_resolution"]))
    tmp = folder / f".tmp-{kimg}"
    write_eg3d_pickle(tmp, spec, sd, module_src="")
    data = tmp.read_bytes()
    tmp.unlink()
    target = folder / f"network-snapshot-{kimg:06d}.pkl"
    with open(target, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(halves_apart)
        f.write(data[len(data) // 2 :])


def test_following_a_run_loads_new_snapshots_in_order_keeping_the_view(app, xdo, tmp_path, golden_weights):
    start(app, xdo, "layers")
    run = tmp_path / "run"
    run.mkdir()
    write_snapshot(run, 0, golden_weights)
    app.state.camera = replace(app.state.camera, yaw=0.3)
    app.state.latent.seed = 3.0
    hover(app, xdo, 200, 300)  # the model panel is at the top of the pane
    type_into(app, xdo, "run_folder", str(run), ctrl_click=False)
    assert app.training.opened == str(run) and [s.kimg for s in app.training.snapshots] == [0]
    click_item(app, xdo, "run_follow", 0.05)
    assert app.training.follow
    loaded: list[str] = []

    def note() -> bool:
        if app.model is not None and (not loaded or loaded[-1] != app.model.path):
            loaded.append(app.model.path)
        return False

    for kimg in (40, 80, 120):
        app.run_until(note, 0.5)
        write_snapshot(run, kimg, golden_weights)
        written = time.monotonic()
        want = str(run / f"network-snapshot-{kimg:06d}.pkl")
        assert app.run_until(lambda w=want: note() or (app.model.path == w and app.idle()), 15), app.status_text()
        assert time.monotonic() - written < 5.0 + 1.0  # appears within 5 s (+1 s for the render after the load)
    note()
    kimgs = [int(p[-10:-4]) for p in loaded if "network-snapshot" in p]
    assert kimgs == sorted(kimgs) and kimgs[-3:] == [40, 80, 120]
    assert app.ui.load_error is None  # no half-written file was loaded
    assert app.state.camera.yaw == 0.3 and app.state.latent.seed == 3.0  # the view was kept
    # step back through the run with the buttons
    app.training.follow = False
    click_item(app, xdo, "run_prev", 0.5)
    assert app.run_until(lambda: app.model.path.endswith("000080.pkl") and app.idle(), 15)
    assert app.state.camera.yaw == 0.3
