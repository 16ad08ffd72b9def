"""Videos: a camera orbit or a latent interpolation, rendered through the engine into an MP4.

Orbit path (as the reference's gen_videos.py), t = frame / frames:
    yaw = 0.35 * sin(2 pi t),  pitch = -0.05 + 0.25 * cos(2 pi t)
as offsets from the frontal view, at the model's average radius and pivot and its focal length.
`orbit`: one full orbit of `frames` frames per seed, seeds one after the other. `interp`: the
latent moves seed_0 -> seed_1 -> ... -> seed_0 (a loop; W-space lerp, `frames` frames per step)
while the camera makes one orbit over the whole video. Frames are written with imageio-ffmpeg's
bundled ffmpeg (libx264, yuv420p) to a temp file beside the target, which is renamed into place
only when complete; cancel or failure leaves nothing.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from ..camera import Camera, camera_tuple, default_camera
from ..engine import LatentSpec, RenderEngine, RenderRequest, RenderResult
from ..engine.frames import view_pixels
from ..errors import ExportError
from ..progress import CancelToken, ProgressFn, check_cancel, report
from .files import atomic_write, check_target

KINDS = ("orbit", "interp")
VIEWS = ("image", "raw", "depth")
MAX_FRAMES = 100_000
YAW_AMPLITUDE, PITCH_OFFSET, PITCH_AMPLITUDE = 0.35, -0.05, 0.25


def orbit_offsets(t: float) -> tuple[float, float]:
    """(yaw, pitch) offsets from the frontal view at path position t in [0, 1)."""
    return YAW_AMPLITUDE * math.sin(2 * math.pi * t), PITCH_OFFSET + PITCH_AMPLITUDE * math.cos(2 * math.pi * t)


def orbit_camera_at(rendering_kwargs: dict, t: float) -> Camera:
    """The orbit path's camera at t (model's average radius, pivot and focal)."""
    yaw, pitch = orbit_offsets(t)
    return camera_tuple(default_camera(rendering_kwargs, yaw=yaw, pitch=pitch))


@dataclass
class VideoSpec:
    """What to record."""

    seeds: list[float]
    """Seeds in order (the viewer's may be fractional: a blend of the two neighbouring seeds)."""
    kind: str = "orbit"
    frames: int = 120
    """Frames per seed (orbit) or per interpolation step (interp)."""
    fps: float = 30.0
    psi: float = 1.0
    cutoff: int | None = None
    view: str = "image"
    neural_rendering_resolution: int | None = None
    depth_multiplier: float = 1.0
    noise_mode: Literal["const", "random", "none"] = "const"
    cond: str = "front"
    """Conditioning camera: 'front' (the reference scripts) or 'render' (follows the orbit)."""
    latent: LatentSpec | None = None
    """The exact latent on the viewer's screen (style mixing, interpolation space; for an orbit also the A/B
    blend at its t): orbit frames render it; interp frames keep its mixing and space and move between
    `seeds`. None: plain seeds, as the reference scripts."""
    importance_multiplier: float | None = None
    sampling: Literal["deterministic", "stochastic"] = "deterministic"
    rng_seed: int = 0
    """Stochastic sampling draws frame i with seed rng_seed + i, so two renders of a video are identical."""
    extra: dict = field(default_factory=dict)

    def check(self) -> None:
        """Raise ExportError for values that cannot make a video."""
        if self.kind not in KINDS:
            raise ExportError(f"video kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.view not in VIEWS:
            raise ExportError(f"video view must be one of {', '.join(VIEWS)}, not {self.view!r}")
        if not self.seeds:
            raise ExportError("a video needs at least one seed")
        if self.kind == "interp" and len(self.seeds) < 2:
            raise ExportError("an interpolation video needs at least two seeds")
        if not 1 <= int(self.frames) <= MAX_FRAMES:
            raise ExportError(f"frames must be in 1..{MAX_FRAMES}, got {self.frames}")
        if not (math.isfinite(self.fps) and 0 < self.fps <= 240):
            raise ExportError(f"fps must be in (0, 240], got {self.fps}")
        if self.cond not in ("front", "render"):
            raise ExportError(f"cond must be 'front' or 'render', not {self.cond!r}")
        if self.sampling not in ("deterministic", "stochastic"):
            raise ExportError(f"sampling must be 'deterministic' or 'stochastic', not {self.sampling!r}")

    def total_frames(self) -> int:
        return int(self.frames) * len(self.seeds)


def frame_requests(spec: VideoSpec, rendering_kwargs: dict) -> Iterator[RenderRequest]:
    """The RenderRequest of every frame, in order."""
    spec.check()
    total = spec.total_frames()
    front = camera_tuple(default_camera(rendering_kwargs))
    for i in range(total):
        if spec.kind == "orbit":
            seed, j = spec.seeds[i // spec.frames], i % spec.frames
            camera = orbit_camera_at(rendering_kwargs, j / spec.frames)
            latent = spec.latent if spec.latent is not None and len(spec.seeds) == 1 else LatentSpec(seed=float(seed))
        else:
            k, j = divmod(i, spec.frames)
            a, b = spec.seeds[k], spec.seeds[(k + 1) % len(spec.seeds)]
            camera = orbit_camera_at(rendering_kwargs, i / total)
            base = spec.latent or LatentSpec(seed=0.0, space="w")
            latent = (
                replace(base, seed=float(a), seed_b=float(b), t=j / spec.frames)
                if j
                else replace(base, seed=float(a), seed_b=None, t=0.0)
            )
        yield RenderRequest(
            latent=latent,
            camera=camera,
            cond_camera=camera if spec.cond == "render" else front,
            psi=spec.psi,
            cutoff=spec.cutoff,
            noise_mode=spec.noise_mode,
            sampling=spec.sampling,
            neural_rendering_resolution=spec.neural_rendering_resolution,
            depth_multiplier=spec.depth_multiplier,
            importance_multiplier=spec.importance_multiplier,
            superresolution=spec.view == "image",
            rng_seed=spec.rng_seed + i if spec.sampling == "stochastic" else None,
            stamp=i,
        )


def frame_pixels(engine: RenderEngine, req: RenderRequest, view: str) -> np.ndarray:
    """(H, W, 3) uint8 of one frame (depth as grey RGB), padded by edge copies to even sizes (yuv420p)."""
    return result_pixels(engine.render(req), view)


def result_pixels(res: RenderResult, view: str) -> np.ndarray:
    """frame_pixels of a render's result."""
    px = view_pixels(view, res.image, res.raw, res.depth, res.alpha)
    px = np.repeat(px[..., None], 3, axis=2) if px.ndim == 2 else px
    h, w = px.shape[:2]
    if h % 2 or w % 2:
        px = np.pad(px, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return px


@dataclass
class VideoSummary:
    path: Path
    frames: int
    size: tuple[int, int]
    fps: float
    seconds: float

    def line(self) -> str:
        w, h = self.size
        return f"wrote {self.path} ({self.frames} frames, {w}x{h}, {self.fps:g} fps, {self.seconds:.1f} s)"


def write_video(
    engine: RenderEngine,
    spec: VideoSpec,
    path: str | os.PathLike,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    quality: float | None = None,
    bitrate: str | None = "10M",
) -> VideoSummary:
    """Render every frame of `spec` and encode an MP4 at `path` (checked first; atomic; cancellable)."""
    t0 = time.perf_counter()
    spec.check()
    p = check_target(path, overwrite, (".mp4",), "video")
    total = spec.total_frames()
    requests = frame_requests(spec, engine.G.rendering_kwargs)
    pixels = (frame_pixels(engine, req, spec.view) for req in requests)
    size = encode_mp4(p, pixels, total, spec.fps, overwrite, progress, cancel, quality, bitrate)
    return VideoSummary(p, total, size, spec.fps, time.perf_counter() - t0)


def encode_mp4(
    p: Path,
    frames: Iterable[np.ndarray],
    total: int,
    fps: float,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    quality: float | None = None,
    bitrate: str | None = "10M",
) -> tuple[int, int]:
    """Encode (H, W, 3) uint8 frames (even sizes) into the MP4 `p` atomically (cancel or failure leaves
    nothing); the cancel token is checked before each frame is made. Returns the size (w, h)."""
    import imageio_ffmpeg

    state: dict = {}
    it = iter(frames)

    def encode(tmp: Path) -> None:
        writer = None
        try:
            for i in range(total):
                check_cancel(cancel)
                px = next(it)
                if writer is None:
                    h, w = px.shape[:2]
                    state["size"] = (w, h)
                    writer = imageio_ffmpeg.write_frames(
                        str(tmp),
                        (w, h),
                        fps=fps,
                        codec="libx264",
                        pix_fmt_out="yuv420p",
                        quality=quality,
                        bitrate=None if quality is not None else bitrate,
                        macro_block_size=1,
                        output_params=["-movflags", "+faststart"],
                        ffmpeg_log_level="error",
                    )
                    writer.send(None)
                if px.shape[:2] != (state["size"][1], state["size"][0]):
                    raise ExportError("frame size changed during the video")
                writer.send(np.ascontiguousarray(px))
                report(progress, (i + 1) / total, f"frame {i + 1}/{total}")
            check_cancel(cancel)
        finally:
            if writer is not None:
                writer.close()

    try:
        atomic_write(p, encode, overwrite)
    except (RuntimeError, BrokenPipeError) as e:  # ffmpeg died (e.g. odd frame size, disk full in ffmpeg)
        raise ExportError(f"could not encode {p}: {e}; nothing was written") from None
    return state.get("size", (0, 0))


def read_video_info(path: str | os.PathLike) -> dict:
    """frames, size (w, h), fps and codec of an MP4 as ffmpeg reads it back (decodes every frame)."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = gen.__next__()
    n = sum(1 for _ in gen)
    return {
        "frames": n,
        "size": tuple(meta["size"]),
        "fps": float(meta["fps"]),
        "codec": meta.get("codec"),
        "pix_fmt": meta.get("pix_fmt"),
    }
