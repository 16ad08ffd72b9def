"""Rendering a camera path: one RenderRequest per frame, an MP4, and optionally a PNG sequence.

Frames are at frame_times(path) (N = round(fps * duration)). Requests use deterministic sampling and
constant noise by default, so two renders of one path give identical frames. The MP4 goes through
renderer.export.video.encode_mp4 (temp file + rename: complete or absent). The PNG sequence
(`png_dir`) is written into a hidden temp folder beside it and renamed into place after the MP4, so a
cancel or a failure leaves neither: frame_00000.png (the video's view), depth_00000.npy (float32 ray
distance, NaN-free as rendered) + depth_00000.png (16-bit, the depth PNG of renderer.export.screenshot)
and cameras.json (every frame's time, EG3D camera, OpenCV cam2world, FOV, latent, psi).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from ..camera import camera_tuple, default_camera
from ..engine import RenderEngine, RenderRequest, RenderResult
from ..engine.frames import view_pixels
from ..errors import ExportError
from ..export.files import check_target, describe_os_error
from ..export.screenshot import save_depth
from ..export.video import VIEWS, VideoSummary, encode_mp4, result_pixels
from ..progress import CancelToken, ProgressFn, check_cancel
from .interpolate import PathSample, frame_times, sample
from .keyframes import CameraPath

CAMERAS_FORMAT = "triplane-viz camera path frames"


@dataclass(frozen=True)
class PathRenderOptions:
    """How to render a path's frames (the path itself holds latent, psi, cutoff and cameras)."""

    view: str | None = None
    """image, raw or depth for the whole video; None: the first keyframe's view."""
    neural_rendering_resolution: int | None = None
    depth_multiplier: float = 1.0
    importance_multiplier: float | None = None
    cond: Literal["front", "render"] = "front"
    """Conditioning camera: the model's frontal camera (as the reference videos) or each frame's."""
    noise_mode: Literal["const", "random", "none"] = "const"
    sampling: Literal["deterministic", "stochastic"] = "deterministic"
    rng_seed: int = 0
    """Stochastic sampling draws frame i with seed rng_seed + i (reproducible)."""

    def video_view(self, path: CameraPath) -> str:
        view = self.view if self.view is not None else path.keyframes[0].view
        if view not in VIEWS:
            raise ExportError(f"a video shows one of {', '.join(VIEWS)}, not {view!r}; pick a view for the video")
        return view


def sample_request(
    s: PathSample, rendering_kwargs: dict, options: PathRenderOptions, view: str, index: int = 0
) -> RenderRequest:
    """The RenderRequest of one path sample."""
    front = camera_tuple(default_camera(rendering_kwargs))
    return RenderRequest(
        latent=s.latent,
        camera=s.camera,
        cond_camera=s.camera if options.cond == "render" else front,
        psi=s.psi,
        cutoff=s.cutoff,
        noise_mode=options.noise_mode,
        sampling=options.sampling,
        neural_rendering_resolution=options.neural_rendering_resolution,
        depth_multiplier=options.depth_multiplier,
        importance_multiplier=options.importance_multiplier,
        superresolution=view == "image",
        rng_seed=options.rng_seed + index if options.sampling == "stochastic" else None,
        stamp=index,
    )


def path_requests(path: CameraPath, rendering_kwargs: dict, options: PathRenderOptions | None = None):
    """(sample, request) of every frame, in order."""
    options = options or PathRenderOptions()
    view = options.video_view(path)
    for i, t in enumerate(frame_times(path)):
        s = sample(path, float(t))
        yield s, sample_request(s, rendering_kwargs, options, view, i)


def render_path_frames(
    engine: RenderEngine,
    path: CameraPath,
    options: PathRenderOptions | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[tuple[PathSample, RenderResult, np.ndarray]]:
    """(sample, result, (H, W, 3) uint8 pixels of the video's view) of every frame; cancel is checked
    before each frame (Cancelled)."""
    options = options or PathRenderOptions()
    view = options.video_view(path)
    for s, req in path_requests(path, engine.G.rendering_kwargs, options):
        check_cancel(cancel)
        res = engine.render(req)
        yield s, res, result_pixels(res, view)


def _frame_record(i: int, s: PathSample, req_psi: float) -> dict:
    return {
        "index": i,
        "time": s.time,
        "image": f"frame_{i:05d}.png",
        "depth": f"depth_{i:05d}.npy",
        "depth_png": f"depth_{i:05d}.png",
        "camera": list(s.camera),
        "cam2world_opencv": [float(v) for v in s.cam2world.reshape(16)],
        "fov_deg": s.fov_deg,
        "focal": s.focal,
        "latent": asdict(s.latent),
        "psi": req_psi,
        "cutoff": s.cutoff,
    }


def _check_png_dir(png_dir: str | os.PathLike, overwrite: bool) -> Path:
    d = Path(os.path.expanduser(os.fspath(png_dir)))
    if d.exists() and not d.is_dir():
        raise ExportError(f"{d} is a file; give a folder for the PNG sequence")
    if d.is_dir() and any(d.iterdir()):
        if not overwrite:
            raise ExportError(f"{d} is not empty; not writing into it (choose another folder, or --force)")
    try:
        d.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot write to folder {d.parent}: {describe_os_error(exc)}") from None
    return d


def write_path_video(
    engine: RenderEngine,
    path: CameraPath,
    out: str | os.PathLike,
    options: PathRenderOptions | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    png_dir: str | os.PathLike | None = None,
    quality: float | None = None,
    bitrate: str | None = "10M",
) -> VideoSummary:
    """Render every frame of `path` into the MP4 `out` (and the PNG sequence in `png_dir`): checked
    first, atomic, cancellable; progress(fraction, 'frame i/N')."""
    t0 = time.perf_counter()
    options = options or PathRenderOptions()
    view = options.video_view(path)
    p = check_target(out, overwrite, (".mp4",), "video")
    seq = _check_png_dir(png_dir, overwrite) if png_dir is not None else None
    total = path.frame_count
    tmp_dir = None
    if seq is not None:
        tmp_dir = seq.with_name(f".{seq.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        tmp_dir.mkdir()
    records: list[dict] = []

    def frames() -> Iterator[np.ndarray]:
        for i, (s, res, px) in enumerate(render_path_frames(engine, path, options)):
            if tmp_dir is not None:
                native = view_pixels(view, res.image, res.raw, res.depth, res.alpha)
                Image.fromarray(native).save(tmp_dir / f"frame_{i:05d}.png")
                save_depth(res.depth, res.alpha, tmp_dir / f"depth_{i:05d}")
                records.append(_frame_record(i, s, s.psi))
            yield px

    try:
        size = encode_mp4(p, frames(), total, path.fps, overwrite, progress, cancel, quality, bitrate)
        if tmp_dir is not None and seq is not None:
            doc = {"format": CAMERAS_FORMAT, "version": 1, "fps": path.fps, "view": view, "frames": records}
            (tmp_dir / "cameras.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
            if seq.is_dir():
                shutil.rmtree(seq) if overwrite else seq.rmdir()
            os.replace(tmp_dir, seq)
            tmp_dir = None
    except OSError as exc:
        p.unlink(missing_ok=True)  # all or nothing: the MP4 was written, the sequence was not
        raise ExportError(f"could not write the PNG sequence {seq}: {describe_os_error(exc)}") from None
    finally:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return VideoSummary(p, total, size, path.fps, time.perf_counter() - t0)
