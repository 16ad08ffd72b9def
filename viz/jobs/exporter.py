"""The viewer's export thread: meshes and videos on a background thread with progress and cancel
(viz/exports.py starts them from what is on screen).

One background job runs at a time. Its progress (fraction and stage text) is read by the export
panel every frame; Cancel sets its token, and the renderer's exporters then stop at the next chunk
or frame and remove their temp file, so a cancelled or failed export never leaves a file. Every
outcome is one line in the panel and the status bar; the window keeps running whatever happens.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from renderer.errors import Cancelled, ExportError
from renderer.export.mesh_files import FORMATS

MESH_RESOLUTIONS = (64, 128, 256, 384, 512)
MESH_FORMATS = tuple(f.lstrip(".") for f in FORMATS)
VIDEO_KINDS = ("orbit", "interp")


@dataclass
class ExportSettings:
    """What the export panel edits."""

    mesh_resolution: int = 256
    mesh_level: float | None = None
    """None = the model's default level (10)."""
    mesh_format: str = "ply"
    mesh_path: str = ""
    """Empty = an automatic name in the output folder."""
    overwrite: bool = False
    video_kind: str = "orbit"
    video_frames: int = 60
    video_fps: float = 30.0
    video_path: str = ""
    views_count: int = 24
    """Views of the latent on screen that 'export views' writes (a transforms.json dataset)."""
    views_sampler: str = "training"
    views_raw: bool = False
    views_normals: bool = False
    views_path: str = ""


@dataclass
class ExportJob:
    """A running or finished background export."""

    kind: str
    target: str
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: float = 0.0
    stage: str = "starting"
    started: float = field(default_factory=time.monotonic)
    done: bool = False
    message: str | None = None
    """The outcome line: 'wrote …', 'cancelled …' or the error."""
    ok: bool = False
    cancelled: bool = False


class Exporter:
    """Runs at most one export job on a daemon thread."""

    def __init__(self, log: Callable[[str], None] = print):
        self.log = log
        self.job: ExportJob | None = None
        self._finished: ExportJob | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.done

    def start(self, kind: str, target: str, work: Callable[[ExportJob], str]) -> ExportJob:
        """Run work(job) in the background; it returns the success line and may raise ExportError/Cancelled."""
        if self.busy:
            assert self.job is not None  # busy means a job is set
            raise ExportError(f"an export is already running ({self.job.kind}); wait or cancel it")
        job = ExportJob(kind, target)
        self.job = job
        self._thread = threading.Thread(target=self._run, args=(job, work), name=f"export-{kind}", daemon=True)
        self._thread.start()
        return job

    def _run(self, job: ExportJob, work: Callable[[ExportJob], str]) -> None:
        try:
            job.message, job.ok = work(job), True
        except Cancelled:
            job.message, job.cancelled = f"{job.kind} export cancelled; nothing was written", True
        except ExportError as e:
            job.message = f"{job.kind} export failed: {window_words(str(e))}"
        except Exception as e:  # a bug: the window keeps running, the log gets the traceback
            job.message = f"{job.kind} export failed: {type(e).__name__}: {e}"
            self.log(traceback.format_exc())
        job.progress = 1.0 if job.ok else job.progress
        job.done = True
        with self._lock:
            self._finished = job

    def cancel(self) -> None:
        """Ask the running job to stop."""
        if self.job is not None and not self.job.done:
            self.job.cancel.set()

    def poll(self) -> ExportJob | None:
        """The job that finished since the last poll, once."""
        with self._lock:
            job, self._finished = self._finished, None
            return job

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until no job runs (tests, shutdown)."""
        t = self._thread
        if t is not None:
            t.join(timeout)
        return not self.busy

    def stop(self) -> None:
        self.cancel()
        self.wait(10.0)


CLI_HINTS = {"allow overwriting: --force": "or tick 'overwrite' in the Export panel"}
"""Command-line advice in renderer messages, and what the window says instead."""


def window_words(message: str) -> str:
    """A renderer message with its command-line advice replaced by the window's controls."""
    for cli, window in CLI_HINTS.items():
        message = message.replace(cli, window)
    return message
