"""Photo to 3D (issue 19): fit a picture into the generator, no GUI.

* crop.py: read and check a picture, find the subject (Haar faces, cat faces, or an object segmented from
  its background), crop it as the model's data was cropped, and estimate the camera;
* pose.py: the yaw/pitch grid search on mean-latent renders (object models);
* fit.py: `Fitter`, the optimisation (w, camera, then w+ and pivotal tuning), one step at a time;
  settings.py: what it is given and gives back (settings, target, records, result); compare.py: PSNR, the
  difference as shown, resizing;
* render.py / camera.py: the render and the orbit camera with autograd;
* output.py: fit.json, w.npy, the tuned checkpoint and the sheet; saved.py reads a saved fit back.
"""

from __future__ import annotations

from .crop import FitInputError, Prepared, load_image, prepare, prepare_face, prepare_object, run_fit, subject_kind
from .fit import Fitter
from .settings import CameraGuess, FitRecord, FitResult, FitSettings, FitTarget

__all__ = [
    "CameraGuess",
    "FitInputError",
    "FitRecord",
    "FitResult",
    "FitSettings",
    "FitTarget",
    "Fitter",
    "Prepared",
    "load_image",
    "prepare",
    "prepare_face",
    "prepare_object",
    "run_fit",
    "subject_kind",
]
