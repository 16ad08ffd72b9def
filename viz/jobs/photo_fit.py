"""A photo fit in the viewer, on its own daemon thread: read and prepare the picture (crop and camera estimate),
then, once the user confirms, fit it step by step (renderer.fit.Fitter) with a preview every few steps, the loss
history and the time left; Cancel stops at the next step. The UI thread reads `view` (a snapshot it may show) and
takes the finished result once with `poll`."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from renderer.errors import Cancelled
from renderer.fit import CameraGuess, FitResult, FitSettings, Fitter
from renderer.fit.crop import FitInputError, Prepared, load_image, prepare
from renderer.model.generator import TriPlaneGenerator

PREVIEW_EVERY = 5
"""Steps between live previews (a preview is one render of the fit at the model's resolution)."""
Stage = Literal["idle", "preparing", "ready", "fitting", "done", "failed", "cancelled"]


@dataclass
class FitView:
    """What the Photo panel shows (replaced as a whole by the thread, so a read is consistent)."""

    stage: Stage = "idle"
    path: str = ""
    crop: np.ndarray | None = None
    """The prepared crop (R, R, 3) uint8: what the fit compares against."""
    guess: CameraGuess | None = None
    box: tuple[int, int, int, int] | None = None
    """The box the crop came from (x, y, w, h, picture pixels): the face box found or given, for objects the
    region segmented (the whole picture unless one was given); a failed preparation keeps the box it was given."""
    picture_size: tuple[int, int] = (0, 0)
    """The picture's width and height."""
    notes: tuple[str, ...] = ()
    preview: np.ndarray | None = None
    """The fit in the input view, every PREVIEW_EVERY steps."""
    preview_step: int = 0
    losses: tuple[float, ...] = ()
    psnr: float | None = None
    phase: str = ""
    """The phase now running (the last one's name once done): a newton step can take a minute on a CPU."""
    step: int = 0
    total: int = 0
    time_left: float | None = None
    error: str | None = None
    version: int = 0
    """Bumped with every change (the panel re-uploads images when it moves)."""


@dataclass
class FitOutcome:
    """A finished fit, handed to the UI thread once: the result and which picture and model it belongs to."""

    path: str
    model_id: int
    result: FitResult
    settings: FitSettings = field(default_factory=FitSettings)
    """As the fit ran them (resolved for the model)."""
    prepared: Prepared | None = None
    """The crop and camera estimate the fit started from (what fit.json and sheet.png record)."""
    G: TriPlaneGenerator | None = None
    """The model it was fitted in (before any tuning)."""
    network: str = ""
    """That model's path, as the window opened it."""


class PhotoFit:
    """One picture at a time: `open` prepares it, `fit` fits it, `cancel` stops either."""

    def __init__(self, on_change: Callable[[], None] | None = None):
        self.view = FitView()
        self._on_change = on_change
        self._prepared: Prepared | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._outcome: FitOutcome | None = None
        self.finished: FitOutcome | None = None
        """The last fit that finished, for 'save fit files' (cleared when another picture or fit starts)."""
        self._lock = threading.Lock()
        self._generation = 0
        """Which start the thread's updates belong to (a cancelled or replaced one's are ignored)."""

    # ----------------------------------------------------------------- UI thread
    @property
    def busy(self) -> bool:
        return self.view.stage in ("preparing", "fitting")

    def open(self, G: TriPlaneGenerator, path: str, box: tuple[int, int, int, int] | None = None) -> None:
        """Read and prepare a picture in the background (the crop and camera estimate appear when ready);
        `box` (x, y, w, h) replaces the detector's face box (objects: the region holding the object)."""
        self.cancel()
        self._prepared, self.finished = None, None
        gen = self._start_generation()
        self._set(FitView(stage="preparing", path=str(path), box=box), gen)
        self._start(self._prepare, gen, G, str(path), box)

    def fit(
        self, G: TriPlaneGenerator, model_id: int, settings: FitSettings, guess: CameraGuess, network: str = ""
    ) -> None:
        """Fit the prepared picture from `guess` (the estimate, possibly adjusted by the user); `network` names the
        model in the fit's files."""
        if self._prepared is None or self.busy:
            return
        self.finished = None
        gen = self._start_generation()
        total = sum(n for _, n in settings.phases())
        started = replace(self.view, stage="fitting", guess=guess, losses=(), step=0, total=total, phase="starting")
        self._set(replace(started, error=None, preview=None, time_left=None), gen)
        self._start(self._fit, gen, G, model_id, settings, guess, network)

    def cancel(self) -> None:
        """Stop a preparation or fit (its thread ends at its next step; nothing is kept from it). Never waits."""
        if self.busy:
            self._cancel.set()
            stage: Stage = "cancelled" if self.view.stage == "fitting" else "idle"
            self._set(replace(self.view, stage=stage), self._start_generation())

    def _start_generation(self) -> int:
        self._cancel = threading.Event()
        self._generation += 1
        return self._generation

    def has_outcome(self) -> bool:
        """A finished fit waits for `poll` (the loop wakes for it)."""
        return self._outcome is not None

    def poll(self) -> FitOutcome | None:
        """The finished fit, once."""
        with self._lock:
            out, self._outcome = self._outcome, None
        return out

    def stop(self) -> None:
        """Cancel and wait for the thread (shutdown)."""
        self.cancel()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # ----------------------------------------------------------------- the thread
    def _start(self, fn, gen: int, *args) -> None:
        cancel = self._cancel
        self._thread = threading.Thread(target=self._guarded, args=(fn, gen, cancel, *args), daemon=True, name="fit")
        self._thread.start()

    def _guarded(self, fn, gen: int, cancel: threading.Event, *args) -> None:
        try:
            fn(gen, cancel, *args)
        except Cancelled:
            self._set(replace(self.view, stage="cancelled", error=None), gen)
        except (FitInputError, OSError, ValueError) as e:
            self._set(replace(self.view, stage="failed", error=" ".join(str(e).split())), gen)
        except Exception as e:  # a bug: shown in the panel, the window keeps running
            traceback.print_exc()
            self._set(replace(self.view, stage="failed", error=f"{type(e).__name__}: {e}"), gen)

    def _prepare(
        self, gen: int, cancel: threading.Event, G: TriPlaneGenerator, path: str, box: tuple[int, int, int, int] | None
    ) -> None:
        rgb, alpha = load_image(path)
        size = (int(rgb.shape[1]), int(rgb.shape[0]))
        self._set(replace(self.view, picture_size=size), gen)
        p = prepare(G, rgb, alpha, cancel=cancel, box=box)
        if cancel.is_set():
            raise Cancelled("cancelled")
        self._prepared = p
        x, y, w, h = (int(b) for b in (box if box is not None else p.boxes.get("face", (0, 0, *size))))
        v = replace(self.view, stage="ready", crop=p.crop, guess=p.camera, notes=tuple(p.notes))
        self._set(replace(v, box=(x, y, w, h)), gen)

    def _fit(
        self,
        gen: int,
        cancel: threading.Event,
        G: TriPlaneGenerator,
        model_id: int,
        settings: FitSettings,
        guess: CameraGuess,
        network: str,
    ) -> None:
        prepared = self._prepared
        assert prepared is not None  # fit() checks
        fitter = Fitter(G, prepared.target(), guess, settings, cancel=cancel)
        self._set(replace(self.view, phase=fitter.phase), gen)
        while not fitter.done:
            rec = fitter.step()
            v = replace(
                self.view,
                losses=self.view.losses + (rec.loss,),
                psnr=rec.psnr,
                phase=rec.phase if fitter.done else fitter.phase,
                step=len(fitter.history),
                total=fitter.total_steps,
                time_left=fitter.time_left(),
            )
            if len(fitter.history) % PREVIEW_EVERY == 1 or fitter.done:
                v = replace(v, preview=fitter.preview(), preview_step=len(fitter.history))
            if not self._set(v, gen):
                return  # cancelled or replaced meanwhile
        result = fitter.result()
        if gen != self._generation:
            return
        outcome = FitOutcome(self.view.path, model_id, result, fitter.settings, prepared, G, network)
        with self._lock:
            self._outcome = self.finished = outcome
        done = replace(self.view, stage="done", preview=fitter.preview(), psnr=result.psnr, time_left=0.0)
        self._set(replace(done, step=result.steps), gen)

    def _set(self, view: FitView, gen: int) -> bool:
        """Show `view` if it belongs to the current start (False: a stale thread's update, dropped)."""
        if gen != self._generation:
            return False
        self.view = replace(view, version=self.view.version + 1)
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:  # waking the UI is best effort
                pass
        return True


@dataclass
class PendingFit:
    """A fit's latent (and camera) waiting for its model to load: a tuned fit's new checkpoint, or the network of a
    saved fit the user opened. Applied when the load of `model_path` finishes; dropped if that load fails."""

    model_path: str
    ws: np.ndarray
    """(num_ws, w_dim) float32."""
    label: str
    orbit: tuple[float, float, float, float] | None = None
    """yaw, pitch, radius, focal to look from (None: keep the camera)."""


def label_of(path: str) -> str:
    """A fitted latent's name in the Latent panel: the picture's file name."""
    return Path(path).name


@dataclass
class PhotoSettings:
    """What the Photo panel edits."""

    path: str = ""
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    guess_version: int = -1
    """The estimate's FitView.version last copied into yaw/pitch (a new picture's estimate replaces them)."""
    box: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    """The crop's box as edited (x, y, w, h), copied from each new preparation (or failed one)."""
    box_version: int = -1
    """The FitView.version last copied into `box`."""
    steps: int = 60
    refine: bool = False
    """Whether the panel shows the slower phases' settings."""
    w_plus_steps: int = 0
    polish_steps: int = 0
    newton_steps: int = 0
    fixed_camera: bool = False
    """Keep the (adjusted) camera estimate and fit the latent only."""
    tune: bool = False
    tune_steps: int = 40

    def fit_settings(self) -> FitSettings:
        """The fit these settings ask for (the CLI's `fit` flags, as the panel edits them)."""
        return FitSettings(
            steps=self.steps,
            w_plus_steps=self.w_plus_steps,
            polish_steps=self.polish_steps,
            newton_steps=self.newton_steps,
            optimise_pose=not self.fixed_camera,
            tune_steps=self.tune_steps if self.tune else 0,
        )
