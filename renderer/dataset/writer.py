"""One seed's samples, written as one folder that appears complete or not at all.

`render_seed` renders a seed's views and writes them into a hidden folder under OUT/.partial/, with the
manifest (sha256 and size of every file) written last, then renames the folder to OUT/seedNNNNN in one
step: a seed folder that exists is complete. The final RGB images are then hard-linked (copied where the
file system has no hard links) into OUT/eg3d/seedNNNNN/, the tree EG3D's dataset.json points into (EG3D's
loader takes every image below its root, so depth and mask PNGs must stay out of it).

`export_seed` is the same for a single seed into a folder of the caller's choosing (the viewer's "export
views of this latent"): progress and cancel, nothing left behind when cancelled.

Files of a seed folder (VVVV: the view index, 4 digits):

| file | content |
|---|---|
| `rgb/VVVV.png` | final image (img_resolution), RGB uint8 as the reference scripts convert |
| `raw/VVVV.png` | (with `raw`) the volume-rendered RGB at the neural rendering resolution |
| `depth/VVVV.npy` | float32 ray distance (the renderer's depth), neural rendering resolution |
| `depth/VVVV.png` | the same as the viewer's 16-bit depth PNG (renderer.export.screenshot.save_depth_png) |
| `depth_mm/VVVV.png` | nerfstudio's depth: z-depth in 1/1000 world units, uint16, 0 = background |
| `mask/VVVV.png` | accumulated opacity, round(255 * alpha), uint8 |
| `normals/VVVV.png` | (with `normals`) world-space normals from the depth map, (n + 1) / 2 * 255, background 0 |
| `z.npy`, `w.npy` | the latent (1, z_dim) and the ws rendered (1, num_ws, w_dim), float32 |
| `seed.json` | seed, settings, and per view: the 25-value camera (EG3D label), yaw/pitch drawn, files |
| `transforms.json` | nerfstudio / instant-ngp cameras of the seed (renderer.dataset.formats) |
| `manifest.json` | sha256 and bytes of every other file, settings hash, code version |
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..builtin import resolve
from ..camera import camera_tuple, default_camera
from ..engine import LatentSpec, RenderEngine, RenderRequest
from ..engine.frames import to_uint8
from ..engine.latents import seed_z
from ..errors import ExportError
from ..export.screenshot import depth_to_uint16, save_depth_png
from ..progress import CancelToken, ProgressFn, check_cancel, report
from .formats import depth_mm, eg3d_label, normals_from_depth, normals_to_uint8, transforms_json
from .settings import FORMAT, VERSION, DatasetSettings, canonical_json, code_version, seed_dir_name, with_network
from .views import sample_views, view_rng_seed

PARTIAL = ".partial"
"""Folder under OUT holding seeds being written (removed at the start of each run)."""
EG3D = "eg3d"
"""Folder under OUT holding dataset.json and links to the final RGB images (EG3D's dataset root)."""
MANIFEST = "manifest.json"


@dataclass
class SeedResult:
    """What render_seed did for one seed."""

    seed: int
    samples: int
    bytes: int
    written: bool
    """False when another writer had already committed the seed (its folder was kept)."""


def resolve_settings(settings: DatasetSettings, rendering_kwargs: dict) -> DatasetSettings:
    """Settings with the 'training' sampler replaced by the model's distribution (what gets recorded)."""
    return replace(settings, views=settings.views.resolved(settings.network, rendering_kwargs))


def _png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG")
    return buf.getvalue()


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


class _Files:
    """Writes files into a folder and remembers their hashes for the manifest."""

    def __init__(self, root: Path):
        self.root = root
        self.records: dict[str, dict[str, Any]] = {}
        self.io_seconds = 0.0

    def put(self, rel: str, data: bytes) -> None:
        t0 = time.perf_counter()
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "xb") as f:
            f.write(data)
        self.records[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        self.io_seconds += time.perf_counter() - t0

    def write_with(self, rel: str, write: Callable[[Path], object]) -> None:
        """write(path) makes the file itself; its bytes are read back for the manifest."""
        t0 = time.perf_counter()
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        write(p)
        data = p.read_bytes()
        self.records[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        self.io_seconds += time.perf_counter() - t0


def render_seed_files(
    engine: RenderEngine,
    settings: DatasetSettings,
    seed: int,
    folder: Path,
    code: dict[str, str] | None = None,
    on_sample: Callable[[int], None] | None = None,
    cancel: CancelToken | None = None,
    latent: LatentSpec | None = None,
    timing: dict[str, float] | None = None,
) -> int:
    """Render a seed's views into an empty `folder` (settings resolved: resolve_settings), manifest last;
    returns the bytes written. on_sample(view_index) after each view; Cancelled between views.
    `latent` replaces the seed's own latent (the viewer's current one); the views are still drawn from `seed`."""
    started = time.perf_counter()
    G = engine.G
    rk = G.rendering_kwargs
    views = sample_views(settings.views, seed, rk)
    spec = LatentSpec(seed=float(seed)) if latent is None else latent
    fov = settings.views.fov_deg
    cond = camera_tuple(default_camera(rk, fov_deg=fov) if settings.cond_camera is None else settings.cond_camera)
    files = _Files(folder)
    render_s = 0.0
    entries, frames = [], []
    ws = None
    for view in views:
        check_cancel(cancel)
        req = RenderRequest(
            latent=spec,
            camera=view.camera,
            cond_camera=cond,
            psi=settings.psi,
            cutoff=settings.cutoff,
            sampling=settings.sampling,  # type: ignore[arg-type]  # checked by DatasetSettings.check
            rng_seed=view_rng_seed(seed, view.index) if settings.sampling == "stochastic" else None,
            neural_rendering_resolution=settings.neural_rendering_resolution,
            depth_multiplier=settings.depth_multiplier,
            superresolution=True,
        )
        t0 = time.perf_counter()
        res = engine.render(req)
        if res.image is None:
            raise ExportError("the render returned no final image")
        rgb = to_uint8(res.image).cpu().numpy()
        depth = res.depth[0].float().cpu().numpy()
        alpha = res.alpha[0].float().cpu().numpy()
        raw = to_uint8(res.raw).cpu().numpy() if settings.raw else None
        ws = res.ws
        render_s += time.perf_counter() - t0
        name = f"{view.index:04d}"
        record: dict[str, Any] = {"rgb": f"rgb/{name}.png"}
        files.put(record["rgb"], _png_bytes(rgb))
        if raw is not None:
            record["raw"] = f"raw/{name}.png"
            files.put(record["raw"], _png_bytes(raw))
        record["depth"] = f"depth/{name}.npy"
        files.put(record["depth"], _npy_bytes(depth.astype(np.float32)))
        record["depth_png"] = f"depth/{name}.png"
        v16, near, far = depth_to_uint16(depth, alpha)
        files.write_with(
            record["depth_png"], partial(save_depth_png, v16, near, far, meta={"seed": seed, "view": view.index})
        )
        record["depth_mm"] = f"depth_mm/{name}.png"
        files.put(record["depth_mm"], _png_bytes(depth_mm(depth, alpha, view.camera)))
        record["mask"] = f"mask/{name}.png"
        files.put(record["mask"], _png_bytes(np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8)))
        if settings.normals:
            record["normals"] = f"normals/{name}.png"
            files.put(record["normals"], _png_bytes(normals_to_uint8(normals_from_depth(depth, alpha, view.camera))))
        entries.append(
            {"index": view.index, "camera": eg3d_label(view.camera), "yaw": view.yaw, "pitch": view.pitch, **record}
        )
        frames.append(
            {
                "file_path": record["rgb"],
                "depth_file_path": record["depth_mm"],
                "mask_file_path": record["mask"],
                "eg3d_label": eg3d_label(view.camera),
            }
        )
        if on_sample is not None:
            on_sample(view.index)
    check_cancel(cancel)
    res_hw = G.img_resolution
    if latent is None or (latent == LatentSpec(seed=float(seed))):
        files.put("z.npy", _npy_bytes(seed_z(seed, G.z_dim).astype(np.float32)))
    assert ws is not None
    files.put("w.npy", _npy_bytes(ws.float().cpu().numpy().astype(np.float32)))
    seed_record: dict[str, Any] = {
        "format": f"{FORMAT} seed",
        "version": VERSION,
        "seed": seed,
        "latent": None if latent is None else asdict(latent),
        "settings": settings.to_dict(),
        "image_resolution": res_hw,
        "neural_rendering_resolution": settings.neural_rendering_resolution or G.neural_rendering_resolution,
        "conditioning_camera": list(cond),
        "views": entries,
    }
    files.put("seed.json", canonical_json(seed_record))
    files.put("transforms.json", canonical_json(transforms_json(frames, [v.camera for v in views], res_hw, res_hw)))
    manifest = {
        "format": f"{FORMAT} seed manifest",
        "version": VERSION,
        "seed": seed,
        "samples": len(views),
        "settings_sha256": settings.sha256(),
        "code_version": code if code is not None else code_version(),
        "files": dict(sorted(files.records.items())),
    }
    files.put(MANIFEST, canonical_json(manifest))
    if timing is not None:
        timing["render_s"] = timing.get("render_s", 0.0) + render_s
        timing["write_s"] = timing.get("write_s", 0.0) + files.io_seconds
        timing["output_s"] = timing.get("output_s", 0.0) + (time.perf_counter() - started) - render_s
    return sum(r["bytes"] for r in files.records.values())


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """A seed folder's manifest, or None if it is missing or unreadable."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_finished(folder: Path, settings_sha256: str) -> bool:
    """True if `folder` is a committed seed folder written with these settings."""
    m = read_manifest(folder)
    return m is not None and m.get("settings_sha256") == settings_sha256 and isinstance(m.get("files"), dict)


def new_partial(out: Path, name: str) -> Path:
    """A fresh hidden folder under OUT/.partial for a seed being written."""
    p = out / PARTIAL / f"{name}.{os.getpid()}.{secrets.token_hex(4)}"
    p.mkdir(parents=True)
    return p


def commit(tmp: Path, final: Path) -> bool:
    """Rename a finished seed folder into place in one step; False (and tmp removed) if another writer got
    there first."""
    try:
        os.rename(tmp, final)
        return True
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        return False


def link_eg3d(out: Path, seed: int) -> None:
    """OUT/eg3d/seedNNNNN/VVVV.png: hard links to the seed's final RGB images (copies without hard links);
    made in a hidden folder and renamed into place, so it too is complete or absent."""
    name = seed_dir_name(seed)
    final = out / EG3D / name
    if final.is_dir():
        return
    src = out / name / "rgb"
    tmp = out / EG3D / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        for f in sorted(src.iterdir()):
            try:
                os.link(f, tmp / f.name)
            except OSError:
                shutil.copyfile(f, tmp / f.name)
        commit(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def render_seed(
    engine: RenderEngine,
    settings: DatasetSettings,
    seed: int,
    out: Path,
    code: dict[str, str] | None = None,
    on_sample: Callable[[int], None] | None = None,
    cancel: CancelToken | None = None,
    timing: dict[str, float] | None = None,
) -> SeedResult:
    """Render one seed of a dataset into OUT/seedNNNNN (atomically) and link its images into OUT/eg3d."""
    name = seed_dir_name(seed)
    tmp = new_partial(out, name)
    try:
        nbytes = render_seed_files(engine, settings, seed, tmp, code, on_sample, cancel, timing=timing)
        written = commit(tmp, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    link_eg3d(out, seed)
    return SeedResult(seed, settings.views.views, nbytes, written)


def export_seed(
    engine: RenderEngine,
    settings: DatasetSettings,
    seed: int,
    folder: str | os.PathLike,
    latent: LatentSpec | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    overwrite: bool = False,
) -> Path:
    """Write one seed's views (transforms.json, images, depth, masks, z/w, manifest) into `folder`, complete
    or not at all: the viewer's "export views of this latent", as a background job.

    `latent` is the latent to render (default: the seed's own); `seed` draws the views. `settings.network`
    should name the engine's model (it is recorded, and picks the 'training' sampler). progress(fraction,
    stage) after each view; `cancel` (e.g. a threading.Event) stops between views with Cancelled, leaving
    nothing behind. An existing `folder` is refused (ExportError) unless `overwrite`."""
    settings.check()
    if settings.network_sha256 is None and os.path.isfile(resolve(settings.network)):
        settings = with_network(settings, settings.network)  # a checkpoint is recorded by path and content hash
    settings = resolve_settings(settings, engine.G.rendering_kwargs)
    final = Path(os.path.expanduser(os.fspath(folder)))
    if final.exists() and not overwrite:
        raise ExportError(f"{final} exists; not overwriting it (choose another folder, or allow overwriting)")
    parent = final.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = parent / f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.partial"
        tmp.mkdir()
    except OSError as exc:
        raise ExportError(f"cannot write to folder {parent}: {exc.strerror or exc}") from None
    n = settings.views.views
    try:
        report(progress, 0.0, f"view 0/{n}")
        render_seed_files(
            engine,
            settings,
            seed,
            tmp,
            on_sample=lambda i: report(progress, (i + 1) / n, f"view {i + 1}/{n}"),
            cancel=cancel,
            latent=latent,
        )
        if overwrite and final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    except OSError as exc:
        raise ExportError(f"could not write {final}: {exc.strerror or exc}; nothing was written") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


__all__ = [
    "EG3D",
    "MANIFEST",
    "PARTIAL",
    "SeedResult",
    "commit",
    "export_seed",
    "is_finished",
    "link_eg3d",
    "read_manifest",
    "render_seed",
    "render_seed_files",
    "resolve_settings",
]
