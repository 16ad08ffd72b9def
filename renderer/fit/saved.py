"""A fit read back from the folder `triplane-render fit` (or the window's "save fit files") wrote: the fitted ws,
the camera and the model to render them with, so a viewer can show the fit again without fitting.

The files are data only: w.npy is read without pickles, fit.json as plain JSON. Every problem is a
FitInputError whose one line names the file and what to do.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..builtin import BUILTIN
from ..camera import camera_to_orbit
from .crop import FitInputError
from .output import TUNED

RECORD = "fit.json"
LATENT = "w.npy"


@dataclass(frozen=True)
class SavedFit:
    """A fit on disk: its ws (num_ws, w_dim) float32 and camera (orbit about the origin, as the viewer's camera),
    the model to load (the tuned checkpoint beside it when there is one, else the network the fit used)."""

    folder: Path
    ws: np.ndarray
    yaw: float
    pitch: float
    radius: float
    focal: float
    network: str
    tuned: bool
    label: str
    """What the Latent panel calls it: the picture's file name."""


def fit_folder(path: str | os.PathLike) -> Path | None:
    """The fit folder `path` names (the folder itself, its fit.json, w.npy or tuned checkpoint), or None when
    `path` is not part of a saved fit."""
    p = Path(os.path.expanduser(os.fspath(path)))
    folder = p if p.is_dir() else p.parent
    if p.is_dir() or p.name in (RECORD, LATENT, TUNED):
        return folder if (folder / RECORD).is_file() else None
    return None


def opens_as_fit(path: str | os.PathLike) -> bool:
    """Whether opening `path` means showing a saved fit: its folder, fit.json or w.npy. Its tuned checkpoint opens as
    a model, and brings the fit with it."""
    return Path(os.fspath(path)).name != TUNED and fit_folder(path) is not None


def read_fit(path: str | os.PathLike) -> SavedFit:
    """Read the fit at `path` (see fit_folder); FitInputError names what is wrong."""
    folder = fit_folder(path)
    if folder is None:
        raise FitInputError(f"{path} is not a saved fit: give the folder `triplane-render fit` wrote (with {RECORD})")
    record_path = folder / RECORD
    try:
        record = json.loads(record_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FitInputError(f"{record_path} cannot be read as JSON ({e}); write the fit again") from None
    if not isinstance(record, dict):
        raise FitInputError(f"{record_path} is not a fit record (a JSON object); write the fit again")
    camera = record.get("camera")
    if not (isinstance(camera, list) and len(camera) == 25 and all(_finite(v) for v in camera)):
        raise FitInputError(f"{record_path}: 'camera' must be 25 finite numbers; write the fit again")
    orbit = camera_to_orbit(np.asarray(camera, dtype=np.float64))
    ws = _read_ws(folder / LATENT)
    shape = record.get("w_shape")
    if shape is not None and list(ws.shape) != shape:
        raise FitInputError(f"{folder / LATENT} holds {tuple(ws.shape)} ws but {RECORD} says {tuple(shape)}")
    tuned = (folder / TUNED).is_file()
    network = str(folder / TUNED) if tuned else _network(folder, record.get("network"))
    photo = record.get("photo")
    label = Path(photo).name if isinstance(photo, str) and photo else folder.name
    return SavedFit(folder, ws, orbit.yaw, orbit.pitch, orbit.radius, orbit.focal, network, tuned, label)


def _finite(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _read_ws(path: Path) -> np.ndarray:
    """w.npy as float32 (num_ws, w_dim), finite; never unpickled."""
    try:
        ws = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FitInputError(f"{path} is missing: the fit's latent is not there; write the fit again") from None
    except ValueError as e:
        raise FitInputError(f"{path} is not a plain array ({e}); refusing it, as a pickle could run code") from None
    except OSError as e:
        raise FitInputError(f"{path} cannot be read: {e}") from None
    if ws.ndim != 2 or ws.dtype.kind != "f" or ws.size == 0:
        raise FitInputError(f"{path} must hold ws as a (num_ws, w_dim) float array, not {ws.dtype} {ws.shape}")
    if not np.isfinite(ws).all():
        raise FitInputError(f"{path} holds non-finite values (the fit diverged); fit the picture again")
    return ws.astype(np.float32)


def _network(folder: Path, network) -> str:
    """The model the fit used: 'builtin', or its path as given to the fit (relative to where the fit ran, else
    to the fit folder)."""
    if not isinstance(network, str) or not network:
        raise FitInputError(f"{folder / RECORD} names no network; open the model first, then the fit's folder")
    if network == BUILTIN:
        return network
    p = Path(os.path.expanduser(network))
    for candidate in (p,) if p.is_absolute() else (p, folder / p):
        if candidate.is_file():
            return str(candidate)
    raise FitInputError(f"the fit's network {network} was not found (named in {folder / RECORD}); put it there")
