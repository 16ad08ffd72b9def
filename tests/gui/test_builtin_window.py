"""`python visualizer.py` with no argument: the window opens on the built-in model and shows a head."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("imgui_bundle")
pytest.importorskip("glfw")

from PIL import Image  # noqa: E402

from renderer.builtin import BUILTIN, WEIGHTS  # noqa: E402
from renderer.engine import RenderEngine  # noqa: E402
from renderer.engine.frames import view_pixels  # noqa: E402
from viz.app import App, AppConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import visualizer  # noqa: E402


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIPLANE_VIZ_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


def test_no_argument_opens_the_builtin_model(xvfb_display, config_dir):
    assert WEIGHTS.exists()
    args = visualizer.build_parser().parse_args([])
    assert args.checkpoint == BUILTIN and not args.no_model
    assert visualizer.build_parser().parse_args(["--no-model"]).no_model
    app = App(AppConfig(checkpoint=args.checkpoint, width=900, height=640, out_dir=str(config_dir / "shots")))
    try:
        assert app.run_until(lambda: app.model is not None and app.idle(), 300), app.status_text()
        app.run_frames(2)
        shown = app.read_render_area()
        job = app.shown.job
        ref = RenderEngine(app.engine.G).render(job.request)  # what the window should be showing
        expect = view_pixels(app.state.view.view, ref.image, ref.raw, ref.depth, ref.alpha)
        alpha = ref.alpha[0].numpy()
        h, w = alpha.shape
        assert alpha[h // 4 : h // 2, w // 3 : 2 * w // 3].mean() > 0.9  # a head in the middle ...
        assert alpha[:, : w // 10].mean() < 0.02 and alpha[:, -w // 10 :].mean() < 0.02  # ... on empty sides
        # the render area shows that frame, scaled to fit: compare at the frame's resolution
        side = min(shown.shape[:2])
        top, left = (shown.shape[0] - side) // 2, (shown.shape[1] - side) // 2
        square = Image.fromarray(shown[top : top + side, left : left + side]).resize(
            expect.shape[1::-1], Image.BILINEAR
        )
        err = np.abs(np.asarray(square, np.float32) - expect.astype(np.float32)).mean()
        assert err < 12, err
    finally:
        app.close()


def test_screenshot_from_the_command_line(xvfb_display, config_dir):
    shot = config_dir / "window.png"
    r = subprocess.run(
        [sys.executable, str(ROOT / "visualizer.py"), "--screenshot", str(shot), "--width", "800", "--height", "600"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    img = np.asarray(Image.open(shot).convert("RGB"), np.float32)
    assert img.shape[:2] == (600, 800)
    right = img[:, img.shape[1] // 2 :]  # the render area is right of the control pane
    bright = right.mean(-1) > 60
    assert 0.05 < bright.mean() < 0.8  # an object, not an empty or blown-out frame


def test_a_device_the_machine_lacks_is_one_line_before_any_window(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for device, says in (("cuda:3", "has 1 CUDA device(s): use cuda:0 to cuda:0"), ("quantum", "unknown device")):
        assert visualizer.main(["--device", device]) == 2
        err = capsys.readouterr().err
        assert err.startswith("triplane-viz: error: --device: ") and says in err and err.count("\n") == 1, err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert visualizer.main(["--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
