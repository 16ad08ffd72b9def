"""What the keys and buttons do beyond editing the state: the key-action table, seed steps, saving renders
and the window. Errors go to the status line; nothing here raises into the frame loop."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import glfw
import numpy as np

from renderer.export.files import next_free, write_png_atomic
from renderer.fit.crop import FitInputError
from renderer.fit.saved import read_fit
from renderer.seeds import SEED_MAX

from .canvas import geometry_pixels, read_back
from .exports import latent_name, out_folder, save_screenshot_now
from .results import adopt_fit, pending_of
from .session import render_pixels

if TYPE_CHECKING:
    from .host import ViewerHost

ACTIONS: dict[str, Callable[[ViewerHost], object]] = {
    "reset": lambda app: app.reset_camera(),
    "screenshot": lambda app: app.save_render(),
    "help": lambda app: app.toggle_help(),
    "close_help": lambda app: app.close_help(),
    "play": lambda app: toggle_play(app),
    "seed_prev": lambda app: step_seed(app, -1),
    "seed_next": lambda app: step_seed(app, 1),
    "toggle_pane": lambda app: app.toggle_pane(),
    "inspector": lambda app: app.toggle_inspector(),
    "keyframe_add": lambda app: add_keyframe(app),
    "keyframe_next": lambda app: app.paths.step_keyframe(app.state, 1),
    "keyframe_prev": lambda app: app.paths.step_keyframe(app.state, -1),
    "quit": lambda app: app.quit(),
}
"""What each key action id of viz.bindings does to the app."""


def toggle_play(app: ViewerHost) -> None:
    """Play/pause the A->B interpolation (switches interpolation on if it was off)."""
    lat = app.state.latent
    if not lat.interp:
        lat.interp, lat.playing = True, True
    else:
        lat.playing = not lat.playing


def open_photo(app: ViewerHost, path: str) -> None:
    """Start preparing a picture for a fit (needs a model); the Photo panel opens to show it."""
    app.photo_settings.path = str(path)
    app.ui.jump_to = "Photo"
    if app.model is None:
        app.ui.load_error = "load a model before fitting a photo"
        return
    app.photo.open(app.model.engine.G, str(path))


def open_fit(app: ViewerHost, path: str) -> None:
    """Show a saved fit (its folder, fit.json, w.npy): its ws become the current latent at its camera, in the model it
    was fitted with (its tuned checkpoint when it has one), loaded first unless it is the model on screen. A broken
    fit is one line in the Model panel, and nothing changes."""
    try:
        fit = read_fit(path)
    except FitInputError as e:
        app.ui.load_error = str(e)
        app.log(f"open fit failed: {e}")
        return
    pending = pending_of(fit)
    if app.model is not None and not fit.tuned and same_model(app.model.path, fit.network):
        if adopt_fit(app, pending):
            app.ui.model_path = app.model.path  # the field names the model, not the fit's file
            app.notify(f"opened the fit of {fit.label}")
        return
    app.load_model(fit.network)
    app.pending_fit = pending  # after load_model: a load started for the fit carries it
    app.notify(f"opening the fit of {fit.label}: loading {fit.network}")


def same_model(a: str, b: str) -> bool:
    """Whether two model paths (or 'builtin') name the same checkpoint."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def recrop_photo(app: ViewerHost) -> None:
    """Prepare the picture again from the panel's edited box (a wrong detection, a tighter object region)."""
    if app.model is None or not app.photo_settings.path:
        return
    x, y, w, h = (int(v) for v in app.photo_settings.box)
    app.photo.open(app.model.engine.G, app.photo_settings.path, (x, y, w, h))


def start_fit(app: ViewerHost) -> None:
    """Fit the prepared picture from the panel's (possibly adjusted) camera estimate."""
    s, v = app.photo_settings, app.photo.view
    if app.model is None or v.guess is None:
        return
    guess = dataclasses.replace(v.guess, yaw=math.radians(s.yaw_deg), pitch=math.radians(s.pitch_deg))
    app.photo.fit(app.model.engine.G, app.model_id, s.fit_settings(), guess, app.model.path)


def add_keyframe(app: ViewerHost) -> None:
    """Add a keyframe of the current view to the camera path (a refusal is the Path panel's note)."""
    try:
        i = app.paths.add(app.state)
        app.paths.error = None
        app.notify(f"keyframe {i + 1} added at {app.paths.time:.2f} s")
    except ValueError as e:
        app.paths.error = str(e)


def step_seed(app: ViewerHost, delta: int) -> None:
    """Previous/next integer seed (from a fitted latent: back to seeds, at the next/previous one)."""
    lat = app.state.latent
    base = math.floor(lat.seed) if delta > 0 else math.ceil(lat.seed)  # from 3.4: next 4, previous 3
    lat.seed, lat.custom = float(min(max(base + delta, 0), SEED_MAX)), None


def random_seed(app: ViewerHost) -> None:
    """Jump to a random seed."""
    app.state.latent.seed, app.state.latent.custom = float(np.random.randint(0, 100000)), None


def _out_folder(app: ViewerHost) -> Path:
    """The output folder, created if missing (saving writes into it at once)."""
    folder = out_folder(app)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_render(app: ViewerHost) -> Path | None:
    """Save the shown render at its native resolution as PNG with metadata chunks + .json sidecar
    (atomic); in the geometry view, the drawn mesh. The path or error goes to the UI."""
    out = app.shown
    if out is None:
        app.ui.export_error = "nothing to save yet: no render on screen"
        return None
    if app.state.view.view != "geometry" and out.job.quality not in (None, app.quality.full):
        app.ui.export_error = "not saved: the frame on screen is a moving preview; save once the view rests"
        return None
    try:
        view = app.state.view.view if out.job.pack_view == "depth" else out.job.pack_view
        if app.state.view.view == "geometry":
            view = "geometry"
        path = next_free(_out_folder(app), f"render-{latent_name(out.job.request.latent)}-{view}", ".png")
        if view == "geometry":
            pixels, out = (
                geometry_pixels(app),
                dataclasses.replace(
                    out, job=dataclasses.replace(out.job, request=app.state.snapshot(0), pack_view="geometry")
                ),
            )
        else:
            pixels = render_pixels(out)
        save_screenshot_now(app, pixels, out, view, path)
    except Exception as e:  # shown in the window, never a crash
        app.ui.export_error = f"save failed: {type(e).__name__}: {e}"
        app.log(app.ui.export_error)
        return None
    app.ui.export_error, app.ui.last_saved = None, str(path)
    app.log(f"saved {path}")
    return path


def window_png_path(app: ViewerHost, path: str | os.PathLike | None) -> Path | None:
    """Where `save window` writes: the given path, or the next free name in the output folder (None: error shown)."""
    if path is not None:
        return Path(path)
    try:
        return next_free(_out_folder(app), "window", ".png")
    except OSError as e:
        app.ui.export_error = f"save failed: {e}"
        return None


def write_window_png(app: ViewerHost, path: Path) -> None:
    """Read back the back buffer (before the swap) and write it as PNG, atomically."""
    try:
        pixels = read_back(app.window, 0, 0, *glfw.get_framebuffer_size(app.window))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_png_atomic(pixels, path)
    except Exception as e:
        app.ui.export_error = f"save window failed: {type(e).__name__}: {e}"
        app.log(app.ui.export_error)
        return
    app.ui.export_error, app.ui.last_saved = None, str(path)
    app.log(f"saved {path}")
