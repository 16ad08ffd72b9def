"""Widgets draw against `viz.host.WidgetHost`, not the app: every pane section runs here against a fake host,
in a headless imgui frame (no window, no GL), and a click on a button reaches the host's named action."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

imgui = pytest.importorskip("imgui_bundle").imgui

from viz.gfx.mesh_view import GeometrySettings  # noqa: E402
from viz.inspector import InspectorState  # noqa: E402
from viz.jobs.exporter import ExportSettings  # noqa: E402
from viz.jobs.photo_fit import PhotoFit, PhotoSettings  # noqa: E402
from viz.pane import SECTIONS  # noqa: E402
from viz.path_editor import PathEditor  # noqa: E402
from viz.resolution import ResolutionPolicy  # noqa: E402
from viz.state import VizState  # noqa: E402
from viz.training_run import TrainingRun  # noqa: E402
from viz.ui_state import PerfStats, UiState  # noqa: E402
from viz.widgets import status  # noqa: E402


class FakeHost(SimpleNamespace):
    """Just what viz.host.WidgetHost names, with actions that only record their calls."""

    def __init__(self):
        super().__init__(
            state=VizState(),
            ui=UiState(),
            geometry=GeometrySettings(),
            export_settings=ExportSettings(),
            item_rects={},
            model=None,
            shown=None,
            quality=ResolutionPolicy(),
            engine=None,
            loader=SimpleNamespace(loading=None),
            worker=SimpleNamespace(busy=False, busy_since=None, dropped=0),
            mesher=SimpleNamespace(busy=False),
            mesh_view=SimpleNamespace(mesh=None),
            exporter=SimpleNamespace(job=None, busy=False, cancel=lambda: None),
            presenter=SimpleNamespace(path="cpu-upload", fallback_reason="no CUDA device", upload_ms=0.0),
            recent=SimpleNamespace(items=[]),
            perf=PerfStats(),
            session=SimpleNamespace(discarded=0, last_frame_ms=0.0),
            device_name="cpu",
            inspector=SimpleNamespace(state=InspectorState()),
            training=TrainingRun(),
            paths=PathEditor(),
            photo=PhotoFit(),
            photo_settings=PhotoSettings(),
            calls=[],
        )

    def log(self, message: str) -> None:
        self.calls.append(("log", message))

    def load_model(self, path: str, keep_view: bool = False) -> None:
        self.calls.append(("load_model", path, keep_view))

    def open_photo(self, path: str) -> None:
        self.calls.append(("open_photo", path))

    def start_fit(self) -> None:
        self.calls.append(("start_fit",))

    def reset_camera(self) -> None:
        self.calls.append(("reset_camera",))

    def random_seed(self) -> None:
        self.calls.append(("random_seed",))

    def save_render(self):
        self.calls.append(("save_render",))

    def save_window(self, path=None) -> None:
        self.calls.append(("save_window", path))

    def render_rect(self):
        return (380.0, 0.0, 900.0, 774.0)


@pytest.fixture
def frame():
    """Runs one headless imgui frame per call of the returned function, drawing every pane section."""
    ctx = imgui.create_context()
    io = imgui.get_io()
    io.set_ini_filename(None)
    io.display_size = imgui.ImVec2(1280, 800)
    io.backend_flags |= imgui.BackendFlags_.renderer_has_textures.value  # no GL: imgui keeps its atlas itself

    def run(host: FakeHost) -> None:
        io.delta_time = 1 / 60
        imgui.new_frame()
        imgui.set_next_window_pos(imgui.ImVec2(0, 0))
        imgui.set_next_window_size(imgui.ImVec2(380, 2400))
        imgui.begin("controls")
        for title, _, draw in SECTIONS:
            if imgui.collapsing_header(title, imgui.TreeNodeFlags_.default_open.value):
                imgui.push_id(title)
                draw(host)
                imgui.pop_id()
        imgui.end()
        status.draw(host, 1280, 800)
        imgui.render()

    yield run
    imgui.destroy_context(ctx)


def test_every_section_draws_against_a_fake_host(frame):
    host = FakeHost()
    for _ in range(3):
        frame(host)
    assert {"seed", "seed_random", "psi"} <= set(host.item_rects)
    assert "no model loaded" in " ".join(text for _, text in status.parts(host))


def test_a_click_reaches_the_hosts_named_action(frame):
    host = FakeHost()
    frame(host)
    x0, y0, x1, y1 = host.item_rects["seed_random"]
    io = imgui.get_io()
    io.add_mouse_pos_event((x0 + x1) / 2, (y0 + y1) / 2)
    frame(host)
    io.add_mouse_button_event(0, True)
    frame(host)
    io.add_mouse_button_event(0, False)
    frame(host)
    assert ("random_seed",) in host.calls
