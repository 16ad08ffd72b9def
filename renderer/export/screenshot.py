"""Screenshots that carry their own recipe, and depth maps as numbers.

A screenshot is a PNG whose text chunks say how it was made: model, seed(s), interpolation and
style-mixing state, psi and cutoff, the render and conditioning cameras (25 values each),
sampling settings and the view. The chunk `triplane-viz` holds all of it as JSON (the
RenderRequest exactly: floats round-trip through JSON unchanged), the other chunks are short
human-readable copies. A `.json` sidecar beside the PNG holds the same record plus the cameras
split into cam2world and intrinsics. `request_from_metadata` rebuilds the RenderRequest, so
`triplane-render images --from-png SHOT.png` re-renders the same pixels (bit-for-bit with
deterministic sampling, on the same device and thread count).

Depth maps: float32 `.npy` of the ray distance (H, W), and a 16-bit PNG where 0 is background
(opacity <= 0.5), 65535 the nearest opaque depth and 1 the farthest; the PNG's text chunks hold
`depth_near`, `depth_far` and the decoding formula.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ..camera import camera_to_orbit, camera_tuple
from ..engine import LatentSpec, RenderRequest
from ..engine.frames import OPAQUE, depth_range
from ..errors import ExportError
from ..seeds import seed_label
from .files import atomic_write, check_target

META_KEY = "triplane-viz"
"""PNG text chunk holding the JSON record."""
FORMAT = "triplane-viz screenshot"
VERSION = 1
SOFTWARE = "triplane-viz"


# ----------------------------------------------------------------- request <-> JSON
def request_to_dict(req: RenderRequest) -> dict[str, Any]:
    """A RenderRequest as plain JSON types (stamp left out); floats are kept exactly."""
    d = {f.name: getattr(req, f.name) for f in fields(req) if f.name != "stamp"}
    d["latent"] = asdict(req.latent)
    d["camera"] = list(req.camera)
    d["cond_camera"] = list(req.cond_camera)
    return d


def request_from_dict(d: dict[str, Any]) -> RenderRequest:
    """Inverse of request_to_dict; unknown keys raise ExportError."""
    try:
        d = dict(d)
        latent = LatentSpec(**d.pop("latent"))
        camera = camera_tuple(d.pop("camera"))
        cond = camera_tuple(d.pop("cond_camera"))
        return RenderRequest(latent=latent, camera=camera, cond_camera=cond, **d)
    except (KeyError, TypeError, ValueError) as e:
        raise ExportError(f"screenshot metadata does not describe a render: {e}") from None


def camera_record(c) -> dict[str, Any]:
    """A 25-value camera as the raw vector, cam2world (4x4, OpenCV), intrinsics (3x3) and orbit terms."""
    v = np.asarray(c, dtype=np.float64).reshape(25)
    o = camera_to_orbit(v)
    return {
        "c25": v.tolist(),
        "cam2world": v[:16].reshape(4, 4).tolist(),
        "intrinsics": v[16:].reshape(3, 3).tolist(),
        "orbit_about_origin": {"yaw": o.yaw, "pitch": o.pitch, "radius": o.radius, "fov_deg": o.fov_deg},
    }


def screenshot_metadata(
    req: RenderRequest,
    view: str,
    model: str,
    saved_as: str | None = None,
    extra: dict[str, Any] | None = None,
    custom_ws: np.ndarray | torch.Tensor | None = None,
) -> dict[str, Any]:
    """The full record of a screenshot: how to re-render it and what it shows.

    view: the viewer's view (image, raw, depth, normals); saved_as: the pixels written
    (renderer.engine.frames.view_pixels' view: image, raw or depth; normals are saved as depth); custom_ws: the ws
    a custom latent (a photo fit) names, carried exactly so the screenshot re-renders without the fit."""
    saved_as = saved_as or ("depth" if view == "normals" else view)
    model = model if model == "builtin" else os.path.abspath(os.fspath(model))
    deterministic = req.sampling == "deterministic" or req.rng_seed is not None
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "software": SOFTWARE,
        "model": model,
        "view": view,
        "saved_as": saved_as,
        "request": request_to_dict(req),
        "reproducible": deterministic,
        "cameras": {"camera": camera_record(req.camera), "conditioning": camera_record(req.cond_camera)},
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if req.latent.custom is not None:
        if custom_ws is None:
            raise ExportError(f"the custom latent {req.latent.custom!r} on screen has no ws to record")
        meta[CUSTOM_KEY] = custom_latent_record(custom_ws)
    if extra:
        meta.update(extra)
    return meta


CUSTOM_KEY = "custom_latent"
"""Record key of a custom latent's ws: shape and float32 little-endian bytes in base64 (bit-exact)."""


def custom_latent_record(ws: np.ndarray | torch.Tensor) -> dict[str, Any]:
    """ws (num_ws, w_dim) or (1, num_ws, w_dim) as a JSON value that restores them bit for bit."""
    a = np.asarray(ws.detach().cpu() if isinstance(ws, torch.Tensor) else ws, dtype="<f4")
    a = a.reshape(a.shape[-2:])
    return {"shape": list(a.shape), "float32_base64": base64.b64encode(a.tobytes()).decode("ascii")}


def custom_ws_from_metadata(meta: dict[str, Any]) -> np.ndarray | None:
    """The ws a screenshot of a custom latent carries (None for seeds); ExportError when they are missing or bad."""
    if meta["request"].get("latent", {}).get("custom") is None:
        return None
    rec: Any = meta.get(CUSTOM_KEY)
    try:
        shape = tuple(int(n) for n in rec["shape"])
        ws = np.frombuffer(base64.b64decode(rec["float32_base64"], validate=True), dtype="<f4").reshape(shape)
    except (TypeError, KeyError, ValueError, binascii.Error):
        raise ExportError(
            "the screenshot shows a fitted latent but does not carry its ws; render the fit's folder with --fit"
        ) from None
    if len(shape) != 2 or not np.isfinite(ws).all():
        raise ExportError("the screenshot's fitted ws are not a finite (num_ws, w_dim) array")
    return ws.astype(np.float32)


def summary_chunks(meta: dict[str, Any]) -> dict[str, str]:
    """Short human-readable PNG text chunks (the JSON chunk is the authority)."""
    r = meta["request"]
    lat = r["latent"]
    interp = "off"
    if lat.get("seed_b") is not None:
        interp = (
            f"seed {seed_label(lat['seed'])} -> {seed_label(lat['seed_b'])}, t={lat['t']:.6g}, space={lat['space']}"
        )
    mix = "off" if lat.get("mix_seed") is None else f"seed {seed_label(lat['mix_seed'])} from ws[{lat['mix_start']}]"
    seeds = [lat["seed"]] + [s for s in (lat.get("seed_b"), lat.get("mix_seed")) if s is not None]
    nrr = r["neural_rendering_resolution"]
    imp = r["importance_multiplier"] if r["importance_multiplier"] is not None else r["depth_multiplier"]
    rng = f", rng seed {r['rng_seed']}" if r.get("rng_seed") is not None else ""
    return {
        "Software": SOFTWARE,
        "model": str(meta["model"]),
        "view": meta["view"],
        "seed": seed_label(lat["seed"]),
        "seeds": ",".join(seed_label(s) for s in seeds),
        "interpolation": interp,
        "style mixing": mix,
        "psi": f"{r['psi']:.9g}",
        "cutoff": "all" if r["cutoff"] is None else str(r["cutoff"]),
        "camera": " ".join(f"{v:.9g}" for v in r["camera"]),
        "conditioning camera": " ".join(f"{v:.9g}" for v in r["cond_camera"]),
        "sampling": (
            f"{r['sampling']}, neural resolution {nrr if nrr is not None else 'model'}, "
            f"depth x{r['depth_multiplier']:g}, importance x{imp:g}, noise {r['noise_mode']}{rng}"
        ),
    }


def _png_info(meta: dict[str, Any], chunks: dict[str, str] | None = None) -> PngInfo:
    info = PngInfo()
    for k, v in (chunks or {}).items():
        info.add_text(k, v)
    info.add_itxt(META_KEY, json.dumps(meta, separators=(",", ":")), zip=True)
    return info


def sidecar_path(png: str | os.PathLike) -> Path:
    """SHOT.png -> SHOT.json."""
    return Path(png).with_suffix(".json")


def save_screenshot(
    pixels: np.ndarray, path: str | os.PathLike, meta: dict[str, Any], overwrite: bool = False, sidecar: bool = True
) -> Path:
    """PNG with the metadata chunks, then the .json sidecar; both atomic (the PNG is removed if the
    sidecar cannot be written)."""
    p = check_target(path, overwrite, (".png",), "screenshot")
    side = sidecar_path(p)
    if sidecar:
        check_target(side, overwrite, (".json",), "sidecar")
    info = _png_info(meta, summary_chunks(meta))

    def write_png(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            Image.fromarray(np.ascontiguousarray(pixels)).save(f, format="PNG", pnginfo=info)

    atomic_write(p, write_png, overwrite)
    if sidecar:
        try:
            record = dict(meta, image=p.name)
            atomic_write(
                side, lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8"), overwrite
            )
        except BaseException:
            p.unlink(missing_ok=True)
            raise
    return p


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The record of a screenshot: its PNG chunk, else its .json sidecar; ExportError if it has neither."""
    p = Path(path)
    if not p.is_file():
        raise ExportError(f"no such file: {p}")
    text = None
    try:
        with Image.open(p) as im:
            text = getattr(im, "text", {}).get(META_KEY) or im.info.get(META_KEY)
    except OSError as e:
        raise ExportError(f"{p} is not a readable image: {e}") from None
    if text is None and sidecar_path(p).is_file():
        text = sidecar_path(p).read_text(encoding="utf-8")
    if text is None:
        raise ExportError(f"{p} holds no triplane-viz metadata (only screenshots saved by triplane-viz do)")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise ExportError(f"{p}: the triplane-viz metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "request" not in meta:
        raise ExportError(f"{p}: the metadata is not a triplane-viz screenshot record")
    if int(meta.get("version", 0)) > VERSION:
        raise ExportError(f"{p}: metadata version {meta.get('version')} is newer than this program understands")
    return meta


def request_from_metadata(meta: dict[str, Any]) -> tuple[RenderRequest, str]:
    """(RenderRequest, saved_as view) of a screenshot record."""
    saved_as = meta.get("saved_as") or meta.get("view")
    if saved_as == "geometry":
        raise ExportError(
            "this screenshot shows the geometry view (a mesh drawing), which the neural renderer "
            "does not re-render; export the mesh with `triplane-render mesh` instead"
        )
    if saved_as not in ("image", "raw", "depth"):
        raise ExportError(f"screenshot metadata names an unknown view {saved_as!r}")
    return request_from_dict(meta["request"]), saved_as


# ----------------------------------------------------------------- depth
DEPTH_FORMULA = "depth = far - (v - 1) / 65534 * (far - near) for v >= 1; v = 0: background (opacity <= 0.5)"


def depth_to_uint16(depth: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, float, float]:
    """(H, W) ray distance -> uint16 (near 65535 .. far 1, background 0), with the (near, far) used."""
    d = torch.as_tensor(np.asarray(depth, dtype=np.float32))[None]
    a = None if alpha is None else torch.as_tensor(np.asarray(alpha, dtype=np.float32))[None]
    near, far = depth_range(d, a)
    depth = np.asarray(depth, dtype=np.float64)
    t = np.clip((far - np.nan_to_num(depth, nan=far)) / max(far - near, 1e-12), 0, 1)
    v = (1 + np.round(t * 65534)).astype(np.uint16)
    mask = np.isfinite(depth) if alpha is None else (np.asarray(alpha) > OPAQUE) & np.isfinite(depth)
    v[~mask] = 0
    return v, near, far


def uint16_to_depth(v: np.ndarray, near: float, far: float) -> np.ndarray:
    """Decode a 16-bit depth PNG's values (background -> NaN)."""
    v = np.asarray(v, dtype=np.float64)
    d = far - (v - 1) / 65534 * (far - near)
    return np.where(v > 0, d, np.nan).astype(np.float32)


def save_depth(
    depth, alpha, path: str | os.PathLike, meta: dict[str, Any] | None = None, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write STEM.npy (float32 (H, W) ray distance) and STEM.png (16-bit, see module doc); path may end
    in .npy, .png or have no extension. Both or neither are left behind."""
    p = Path(os.path.expanduser(os.fspath(path)))
    stem = p.with_suffix("") if p.suffix.lower() in (".npy", ".png") else p
    npy, png = stem.with_name(stem.name + ".npy"), stem.with_name(stem.name + ".png")
    check_target(npy, overwrite, (".npy",), "depth")
    check_target(png, overwrite, (".png",), "depth")
    d = _plane(depth)
    a = None if alpha is None else _plane(alpha)
    v, near, far = depth_to_uint16(d, a)

    def write_npy(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            np.save(f, d.astype(np.float32))

    atomic_write(npy, write_npy, overwrite)
    try:
        save_depth_png(v, near, far, png, meta, overwrite)
    except BaseException:
        npy.unlink(missing_ok=True)
        raise
    return npy, png


def save_depth_png(
    v: np.ndarray,
    near: float,
    far: float,
    path: str | os.PathLike,
    meta: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write depth_to_uint16's values as the 16-bit depth PNG (text chunks depth_near, depth_far, the
    formula, and the JSON record `meta` with them), atomically; returns the path."""
    p = check_target(path, overwrite, (".png",), "depth")
    info = _png_info(
        dict(meta or {}, depth_near=near, depth_far=far, depth_encoding=DEPTH_FORMULA),
        {"Software": SOFTWARE, "depth_near": repr(near), "depth_far": repr(far), "depth_encoding": DEPTH_FORMULA},
    )

    def write_png(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            Image.fromarray(np.asarray(v, dtype=np.uint16)).save(f, format="PNG", pnginfo=info)

    return atomic_write(p, write_png, overwrite)


def is_depth_record(meta: dict[str, Any]) -> bool:
    """True for the record of a 16-bit "save depth" PNG (save_depth), not an 8-bit screenshot."""
    return "depth_encoding" in meta or "depth_near" in meta


def read_depth_png(path: str | os.PathLike) -> np.ndarray:
    """The float32 depth (NaN = background) decoded from a 16-bit depth PNG written by save_depth."""
    with Image.open(path) as im:
        near, far = float(im.text["depth_near"]), float(im.text["depth_far"])  # type: ignore[attr-defined]  # a PNG
        v = np.asarray(im)
    return uint16_to_depth(v, near, far)


def _plane(x) -> np.ndarray:
    """(1, H, W) or (H, W) tensor/array -> (H, W) float32 numpy."""
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x, dtype=np.float32)
    return x[0] if x.ndim == 3 else x
