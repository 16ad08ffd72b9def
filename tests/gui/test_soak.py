"""A short soak in CI: a few hundred frames of seeded random input through real X events (xdotool) on
Xvfb, with GL errors checked every frame. The full 10,000-frame run, with its RSS bound, is
`python bench/soak.py`."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("imgui_bundle")

from xdo import XDo  # noqa: E402

from viz.app import App, AppConfig  # noqa: E402
from viz.soak import Soak, SoakConfig  # noqa: E402
from viz.state import VizState  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool missing: apt-get install xdotool"),
]

TITLE = "triplane-viz soak"
FRAMES = 250


class XdoInput:
    """The soak's Inputs backend through xdotool: real X pointer, wheel and key events."""

    def __init__(self, xdo: XDo):
        self.xdo = xdo
        self.ctrl = False

    def move(self, x: float, y: float) -> None:
        self.xdo.move(x, y)

    def press(self, button: int) -> None:
        self.xdo.down(button)

    def release(self, button: int) -> None:
        self.xdo.up(button)

    def wheel(self, up: bool, ctrl: bool) -> None:
        if ctrl:
            self.xdo.key_down("ctrl")
        try:
            self.xdo.click(4 if up else 5)
        finally:
            if ctrl:
                self.xdo.key_up("ctrl")

    def key(self, name: str) -> None:
        self.xdo.key(name)


def test_short_soak_with_real_input(xvfb_display, golden_native_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIPLANE_VIZ_CONFIG_DIR", str(tmp_path / "config"))
    state = VizState()
    state.view.view, state.view.neural_rendering_resolution = "raw", 32
    logs: list[str] = []
    config = SoakConfig(
        frames=FRAMES, seed=7, warmup=FRAMES // 4, checkpoint=str(golden_native_checkpoint), sample_every=20
    )
    with App(
        AppConfig(
            checkpoint=str(golden_native_checkpoint),
            width=config.base_size[0],
            height=config.base_size[1],
            title=TITLE,
            debug_gl=True,
            torch_threads=1,
            out_dir=str(tmp_path / "out"),
            log=logs.append,
        ),
        state=state,
    ) as app:
        assert app.run_until(lambda: app.model is not None and app.idle(), 60), app.status_text()
        soak = Soak(app, config, XdoInput(XDo(TITLE)))
        soak.actions = [a for a in soak.actions if a[1] != "idle"] + [(10, "idle", soak.idle)]  # busier walk
        report = soak.run(logs)
        assert app.model is not None  # still alive and usable after the walk
    print(f"\n[soak] {report.summary()}")
    assert report.frames == FRAMES
    assert report.exceptions == []
    assert report.gl_errors == 0
    assert report.leftovers == []
    # RSS is printed, not bounded here: 250 frames cannot warm up every render path (the full run's
    # bound is in bench/soak.py)
    for gesture in ("drag", "wheel", "key", "view", "resize"):  # the walk really covered the input kinds
        assert report.actions[gesture] > 0, report.actions
