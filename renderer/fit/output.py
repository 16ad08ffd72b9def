"""What a fit leaves behind: crop.png, fit.json, w.npy, sheet.png and (after tuning) tuned.safetensors.

Every file is written atomically; when one fails, the ones already written by this call are removed,
so a folder holds a whole fit or none of it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..camera import camera_to_orbit, orbit_camera
from ..checkpoint import write_native
from ..errors import ExportError
from ..export.files import atomic_write, describe_os_error, write_png_atomic
from ..model.generator import TriPlaneGenerator
from .compare import to_uint8
from .crop import Prepared
from .settings import FitResult, FitSettings

FILES = ("crop.png", "fit.json", "w.npy", "sheet.png")
TUNED = "tuned.safetensors"
NOVEL_VIEWS = ((-0.5, 0.0), (0.5, 0.0), (0.0, -0.25), (0.0, 0.25))
"""Yaw/pitch offsets (radians) of the sheet's 4 novel views from the fitted camera."""


def output_paths(folder: str | os.PathLike, tune: bool) -> list[Path]:
    """The files a fit writes into folder."""
    names = list(FILES) + ([TUNED] if tune else [])
    return [Path(folder) / n for n in names]


@torch.no_grad()
def sheet(G: TriPlaneGenerator, crop: np.ndarray, result: FitResult) -> np.ndarray:
    """uint8 (R, 6R, 3): the input crop, the fit in the input view, and 4 novel views."""
    gen = result.tuned or G
    dev = gen.backbone.mapping.w_avg.device
    ws = torch.from_numpy(result.ws)[None].to(dev)
    planes = gen.planes(ws)
    pivot = [float(p) for p in G.rendering_kwargs.get("avg_camera_pivot", (0, 0, 0))]
    cams = [torch.tensor(result.camera, dtype=torch.float32)]
    cams += [
        orbit_camera(result.yaw + dy, result.pitch + dp, result.radius, pivot, focal=result.focal)
        for dy, dp in NOVEL_VIEWS
    ]
    tiles = [crop]
    for c in cams:
        img = gen.render_planes(planes, ws, c[None].to(dev))["image"][0]
        tiles.append(to_uint8(img))
    return np.concatenate(tiles, axis=1)


def fit_record(
    G: TriPlaneGenerator, prepared: Prepared, result: FitResult, settings: FitSettings, network: str, photo: str
) -> dict:
    """The fit.json content."""
    orbit = camera_to_orbit(np.asarray(result.camera))
    return {
        "photo": photo,
        "network": network,
        "subject": prepared.subject,
        "yaw": orbit.yaw,
        "pitch": orbit.pitch,
        "radius": orbit.radius,
        "focal": orbit.focal,
        "fov_deg": orbit.fov_deg,
        "camera": list(result.camera),
        "camera_estimate": dataclasses.asdict(prepared.camera),
        "psnr": result.psnr,
        "psnr_raw": result.psnr_raw,
        "w_shape": list(result.ws.shape),
        "tuned_checkpoint": TUNED if result.tuned is not None else None,
        "steps": result.steps,
        "seconds": round(result.seconds, 2),
        "settings": settings.as_json(),
        "crop": {"notes": prepared.notes, **prepared.boxes},
        "history": [
            {"step": r.step, "phase": r.phase, "loss": r.loss, "psnr_raw": r.psnr, "yaw": r.yaw, "pitch": r.pitch}
            for r in result.history
        ],
        "convention": "yaw/pitch in radians as `triplane-render images --yaw/--pitch`; camera = 16 cam2world "
        "(OpenCV, row-major) + 9 normalised intrinsics; G.synthesis(w[None], camera[None])['image'] is the fit",
    }


def write_fit(
    folder: str | os.PathLike,
    G: TriPlaneGenerator,
    prepared: Prepared,
    result: FitResult,
    settings: FitSettings,
    network: str = "",
    photo: str = "",
    overwrite: bool = False,
) -> list[Path]:
    """Write the fit's files into folder (created if missing, and removed again when nothing could be written into
    it); all or nothing. ExportError names the file or folder and the reason."""
    out = Path(folder)
    record = fit_record(G, prepared, result, settings, network, photo)
    if not all(math.isfinite(v) for v in result.camera) or not np.isfinite(result.ws).all():
        raise ExportError("the fit diverged (non-finite latent or camera); nothing was written")
    board = sheet(G, prepared.crop, result)
    written: list[Path] = []
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the folder {out}: {describe_os_error(exc)}; nothing was written") from None
    try:
        p = out / "crop.png"
        write_png_atomic(prepared.crop, p, overwrite=overwrite)
        written.append(p)
        p = out / "w.npy"
        atomic_write(p, lambda tmp: np.save(tmp, result.ws.astype(np.float32)), overwrite=overwrite)
        written.append(p)
        p = out / "sheet.png"
        write_png_atomic(board, p, overwrite=overwrite)
        written.append(p)
        if result.tuned is not None:
            p = out / TUNED
            if p.exists() and not overwrite:
                raise ExportError(f"{p} exists; not overwriting it (allow overwriting: --force)")
            spec = dataclasses.replace(
                G.spec, extra={**G.spec.extra, "fit": {"photo": photo, "network": network, "pivot_w": "w.npy"}}
            )
            write_native(p, spec, {k: v.detach().clone() for k, v in result.tuned.state_dict().items()})
            written.append(p)
        p = out / "fit.json"
        text = json.dumps(record, indent=1)
        atomic_write(p, lambda tmp: Path(tmp).write_text(text), overwrite=overwrite)
        written.append(p)
    except BaseException:
        for w in written:
            try:
                w.unlink()
            except OSError:
                pass
        if created:
            try:
                out.rmdir()  # only if empty: a folder this call made and could not fill
            except OSError:
                pass
        raise
    return written


def side_by_side(a: np.ndarray, b: np.ndarray) -> Image.Image:
    """Two uint8 images next to each other (a preview helper)."""
    return Image.fromarray(np.concatenate([a, b], axis=1))
