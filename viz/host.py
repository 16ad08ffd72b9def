"""What the parts of the viewer see of it, as Protocols: widgets get a `WidgetHost` (the state they edit,
read-only views of what runs, named actions), the viewer's own modules (pane, pacing, canvas, actions, job
results) a `ViewerHost`. `viz.app.App` satisfies both; nothing but the composition root imports `viz.app`, so a
widget can be drawn against a fake host in a test."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any, Protocol

from renderer.engine import RenderEngine

from .config import AppConfig
from .gfx.mesh_view import GeometrySettings, MeshView, PreviewMesher
from .gfx.present import Presenter
from .gfx.textures import ImageTextures
from .input import InputHandler
from .inspector import Inspector
from .jobs.exporter import Exporter, ExportSettings
from .jobs.loader import LoadedModel, ModelLoader
from .jobs.photo_fit import PendingFit, PhotoFit, PhotoSettings
from .jobs.worker import LatestWinsWorker
from .path_editor import PathEditor
from .recent import RecentFiles
from .resolution import ResolutionPolicy
from .session import FrameOut, RenderSession
from .state import VizState
from .training_run import TrainingRun
from .ui_state import PerfStats, UiState


class WidgetHost(Protocol):
    """The narrow interface a widget draws against."""

    state: VizState
    """The render state the widgets edit (camera, latent, truncation, view)."""
    ui: UiState
    """UI-only state and the status line's messages."""
    geometry: GeometrySettings
    export_settings: ExportSettings
    item_rects: dict[str, tuple[float, float, float, float]]
    """Widget rectangles by name (window coordinates), so tests can click them."""
    model: LoadedModel | None
    shown: FrameOut | None
    """The frame on screen (read only)."""
    loader: ModelLoader
    worker: LatestWinsWorker[Any]
    mesher: PreviewMesher
    mesh_view: MeshView
    exporter: Exporter
    presenter: Presenter
    recent: RecentFiles
    perf: PerfStats
    session: RenderSession
    """The render session (read only: stamps, the frame in flight, timings)."""
    device_name: str
    inspector: Inspector
    """The inspector's choices and cached captures (layers, plane PCA, slices, probe)."""
    training: TrainingRun
    """The training-run folder the model panel shows."""
    textures: ImageTextures
    """Named GL textures for the images widgets show."""
    paths: PathEditor
    """The camera path being composed (keyframes, timeline, files)."""
    photo: PhotoFit
    """The photo being prepared or fitted (Photo panel)."""
    photo_settings: PhotoSettings

    @property
    def engine(self) -> RenderEngine | None: ...
    @property
    def quality(self) -> ResolutionPolicy:
        """The adaptive-quality policy of the current model (read only; its fields are edited in place)."""
        ...

    def log(self, message: str) -> None: ...
    def load_model(self, path: str, keep_view: bool = False) -> None: ...
    def reset_camera(self) -> None: ...
    def random_seed(self) -> None: ...
    def save_render(self) -> Path | None: ...
    def save_window(self, path: str | PathLike | None = None) -> None: ...
    def render_rect(self) -> tuple[float, float, float, float]: ...
    def open_photo(self, path: str) -> None: ...
    def recrop_photo(self) -> None: ...
    def start_fit(self) -> None: ...
    def open_fit(self, path: str) -> None: ...


class ViewerHost(WidgetHost, Protocol):
    """What the viewer's own modules use besides: the window, the loop's parts and the rest of the actions."""

    window: Any
    config: AppConfig
    input: InputHandler
    model_id: int
    mesh_key: tuple | None
    fits: int
    pending_fit: PendingFit | None

    def render_rect_fb(self) -> tuple[int, int, int, int]: ...
    def toggle_help(self) -> None: ...
    def close_help(self) -> None: ...
    def toggle_pane(self) -> None: ...
    def toggle_inspector(self) -> None: ...
    def notify(self, text: str) -> None: ...
    def quit(self) -> None: ...
