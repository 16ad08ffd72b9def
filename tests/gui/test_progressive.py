"""Progressive refinement at rest: a latent or truncation change shows a cheap preview first, then
the full-quality frame, both rendered from the same tri-planes (the backbone runs once)."""

from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("imgui_bundle")
pytest.importorskip("glfw")
pytest.importorskip("OpenGL")

from viz.app import App, AppConfig  # noqa: E402
from viz.state import VizState  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(xvfb_display, golden_native_checkpoint, tmp_path_factory):
    """The viewer on the golden network, raw view at the model's own resolution (adaptive quality applies),
    bf16 previews on."""
    state = VizState()
    state.view.view = "raw"
    a = App(
        AppConfig(
            checkpoint=str(golden_native_checkpoint),
            width=640,
            height=480,
            title="progressive test",
            out_dir=str(tmp_path_factory.mktemp("shots")),
            bf16_previews=True,
        ),
        state=state,
    )
    try:
        assert a.run_until(lambda: a.model is not None and a.idle(), 120), a.status_text()
        yield a
    finally:
        a.close()


def shown_after(app: App, change) -> tuple[list, int]:
    """Apply `change` to the state at rest, run until idle; returns the jobs shown since, and backbone runs."""
    assert app.run_until(app.idle, 120)
    jobs, submit = {}, app.worker.submit
    app.worker.submit = lambda job: (jobs.__setitem__(job.stamp, job), submit(job))
    try:
        stamp0, backbone0 = app.session.stamp, app.engine.stats.backbone_calls
        change(app.state)
        assert app.run_until(app.idle, 120), app.status_text()
    finally:
        del app.worker.submit
    return [jobs[s] for s in app.presented if s > stamp0], app.engine.stats.backbone_calls - backbone0


@pytest.mark.parametrize("what", ["seed", "psi"])
def test_change_at_rest_shows_a_preview_then_the_full_frame(app, what):
    def change(s):
        if what == "seed":
            s.latent = replace(s.latent, seed=s.latent.seed + 1)
        else:
            s.trunc.psi = 0.5 if s.trunc.psi != 0.5 else 0.8

    shown, backbone_runs = shown_after(app, change)
    full = app.quality.full
    assert len(shown) >= 2, [j.quality for j in shown]
    first, last = shown[0], shown[-1]
    assert first.quality != full and not first.request.superresolution  # cheap frame first ...
    assert first.request.neural_rendering_resolution < app.engine.G.neural_rendering_resolution
    assert last.quality == full and last.request.neural_rendering_resolution is None  # ... then the full one
    assert first.request.bf16 and not last.request.bf16  # bf16 for the preview, never for the full frame
    assert (first.request.latent, first.request.psi) == (last.request.latent, last.request.psi)  # of the new state
    assert backbone_runs == 1  # both from the same cached planes
    assert app.shown.job is last
