"""Camera-path files: our JSON format, and nerfstudio's camera_path.json (export and import).

Our format (save_path / load_path), one JSON object:
    {"format": "triplane-viz camera path", "version": 1,
     "mode": "spline"|"orbit", "loop": bool, "constant_speed": bool, "tension": float,
     "latent_space": "w"|"z", "fps": float, "duration": float|null,
     "keyframes": [{"time": s,
                    "camera": [25 EG3D values: OpenCV cam2world row-major, normalised intrinsics],
                    "orbit": {"yaw", "pitch", "radius", "pivot": [x,y,z], "center": [x,y,z], "roll", "fov_deg"},
                    "latent": {"seed", "seed_b", "t"}, "psi", "cutoff", "view"}, ...]}
Floats are written with Python's repr, so a round trip gives the identical path. On reading, "orbit"
is what the keyframe is made of; "camera" must agree with it (1e-5), and a keyframe with only a
"camera" is turned into orbit terms (keyframe_from_cam2world). Unknown top-level keys are kept.

nerfstudio (to_nerfstudio / from_nerfstudio). What this relies on, from nerfstudio's viewer export
(nerfstudio/viewer/render_panel.py, `_write_json`) and its loader (nerfstudio/cameras/camera_paths.py,
`get_path_from_json`, used by `ns-render camera-path`):
* top level: "camera_type" ("perspective"), "render_height", "render_width", "fps", "seconds",
  "is_cycle", "smoothness_value", "default_fov", "default_transition_sec", "keyframes" (each
  "matrix": a flattened 4x4 camera-to-world, "fov", "aspect", "override_transition_enabled",
  "override_transition_sec") and "camera_path": the frames, each "camera_to_world" (16 floats, the 4x4
  row-major: the loader does tensor(...).view(4, 4)), "fov" and "aspect" (width / height);
* "fov" is the vertical field of view in degrees: the loader's focal length in pixels is
  (render_height / 2) / tan(fov / 2), the same for x and y, principal point at the image centre;
* the camera convention is OpenGL's (x right, y up, z backwards: the viewer rotates its OpenCV-style
  camera 180 degrees about x before writing), in nerfstudio's world coordinates.
Conversion: cam2world_nerfstudio = cam2world_eg3d @ diag(1, -1, -1, 1) (the camera's y and z axes
flip; position unchanged), and back the same way. No world-frame change is applied: world
coordinates are EG3D's (y up, the head near the origin) as they are. (A NeRF trained with
nerfstudio's dataparser orientation/scale normalisation lives in transformed coordinates; apply that
dataparser transform yourself.) Intrinsics: EG3D's normalised focal f (image size 1) becomes the
vertical FOV 2 atan(1 / (2 f)); for a non-square render the height keeps EG3D's framing and the width
extends it. Import makes every frame a keyframe at its frame time i * seconds / N, duration = seconds
(is_cycle -> loop), fps = N / seconds, so our frame times hit the frames exactly.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..camera import focal_to_fov
from ..errors import ExportError
from ..export.files import atomic_write
from .interpolate import frame_times, sample
from .keyframes import PITCH_MAX, CameraPath, Keyframe

FORMAT = "triplane-viz camera path"
VERSION = 1
GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])
"""Right-multiplied onto a cam2world, flips the camera's y and z axes (OpenCV <-> OpenGL); its own inverse."""
_SETTINGS = ("mode", "loop", "constant_speed", "tension", "latent_space", "fps", "duration")


# ----------------------------------------------------------------- cameras
def keyframe_from_cam2world(cam2world, fov_deg: float, time: float, **latent) -> Keyframe:
    """A keyframe whose camera is exactly this OpenCV cam2world (rotation + position, any roll).

    The pivot is put on the viewing ray, at the point closest to the world origin (1 unit ahead if
    that is behind the camera), and the orbit centre on the pivot. A camera looking straight up or
    down (along world y) cannot be expressed in orbit terms: ValueError."""
    m = np.asarray(cam2world, dtype=np.float64).reshape(4, 4)
    r = m[:3, :3]
    if not (np.all(np.isfinite(m)) and np.allclose(r.T @ r, np.eye(3), atol=1e-5) and np.linalg.det(r) > 0):
        raise ValueError("a camera's rotation must be orthonormal and right-handed")
    p, f = m[:3, 3], m[:3, 2] / np.linalg.norm(m[:3, 2])
    d = float(np.dot(-p, f))
    d = d if d > 1e-3 else 1.0
    pivot = p + d * f
    pitch = float(f[1]) * math.pi / 2
    if abs(pitch) > PITCH_MAX:
        raise ValueError("the camera looks straight up or down (along world y); orbit keyframes cannot hold it")
    yaw = math.atan2(-float(f[0]), -float(f[2]))
    k = Keyframe(
        time=time,
        yaw=yaw,
        pitch=pitch,
        radius=d,
        pivot=tuple(pivot),  # type: ignore[arg-type]
        center=tuple(pivot),  # type: ignore[arg-type]
        fov_deg=fov_deg,
        **latent,
    )
    base = k.cam2world()
    x, right, down = m[:3, 0], base[:3, 0], base[:3, 1]
    roll = math.atan2(float(np.dot(x, down)), float(np.dot(x, right)))
    if roll:
        k = Keyframe(**{**_fields(k), "roll": roll})
    return k


def _fields(k: Keyframe) -> dict[str, Any]:
    return {name: getattr(k, name) for name in k.__dataclass_fields__}


def vertical_fov(focal: float) -> float:
    """nerfstudio's vertical FOV (degrees) of an EG3D normalised focal length."""
    return math.degrees(2 * math.atan(0.5 / focal))


def focal_from_vertical_fov(fov: float) -> float:
    """EG3D normalised focal length of nerfstudio's vertical FOV (degrees)."""
    if not 0 < fov < 180:
        raise ValueError(f"fov must be in (0, 180) degrees, got {fov}")
    return 0.5 / math.tan(math.radians(fov) / 2)


def to_gl(cam2world: np.ndarray) -> np.ndarray:
    """OpenCV cam2world -> OpenGL cam2world (same world frame)."""
    return np.asarray(cam2world, dtype=np.float64) @ GL_FROM_CV


def from_gl(cam2world: np.ndarray) -> np.ndarray:
    """OpenGL cam2world -> OpenCV cam2world (same world frame)."""
    return np.asarray(cam2world, dtype=np.float64) @ GL_FROM_CV


# ----------------------------------------------------------------- our JSON
def _keyframe_dict(k: Keyframe) -> dict[str, Any]:
    return {
        "time": k.time,
        "camera": list(k.camera25()),
        "orbit": {
            "yaw": k.yaw,
            "pitch": k.pitch,
            "radius": k.radius,
            "pivot": list(k.pivot),
            "center": list(k.center),
            "roll": k.roll,
            "fov_deg": k.fov_deg,
        },
        "latent": {"seed": k.seed, "seed_b": k.seed_b, "t": k.t},
        "psi": k.psi,
        "cutoff": k.cutoff,
        "view": k.view,
    }


def path_to_dict(path: CameraPath) -> dict[str, Any]:
    """Our JSON object of a path."""
    d: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    d.update({name: getattr(path, name) for name in _SETTINGS})
    d["keyframes"] = [_keyframe_dict(k) for k in path.keyframes]
    for key, value in path.extra.items():
        d.setdefault(key, value)
    return d


def _keyframe_from_dict(d: dict[str, Any]) -> Keyframe:
    if not isinstance(d, dict):
        raise ValueError("a keyframe must be a JSON object")
    unknown = set(d) - {"time", "camera", "orbit", "latent", "psi", "cutoff", "view"}
    if unknown:
        raise ValueError(f"unknown keyframe keys {sorted(unknown)}")
    lat = dict(d.get("latent") or {})
    bad = set(lat) - {"seed", "seed_b", "t"}
    if bad:
        raise ValueError(f"unknown latent keys {sorted(bad)}")
    common = dict(lat, psi=d.get("psi", 1.0), cutoff=d.get("cutoff"), view=d.get("view", "image"))
    if "time" not in d:
        raise ValueError("a keyframe needs a 'time'")
    camera = d.get("camera")
    if "orbit" in d:
        orbit = dict(d["orbit"])
        bad = set(orbit) - {"yaw", "pitch", "radius", "pivot", "center", "roll", "fov_deg"}
        if bad:
            raise ValueError(f"unknown orbit keys {sorted(bad)}")
        k = Keyframe(time=d["time"], **orbit, **common)
        if camera is not None:
            c = np.asarray(camera, dtype=np.float64)
            if c.shape != (25,):
                raise ValueError("'camera' must be 25 numbers")
            if np.abs(c - np.asarray(k.camera25())).max() > 1e-5:
                raise ValueError("its 'camera' and 'orbit' disagree (edit one and delete the other)")
        return k
    if camera is None:
        raise ValueError("a keyframe needs 'orbit' or 'camera'")
    c = np.asarray(camera, dtype=np.float64)
    if c.shape != (25,):
        raise ValueError("'camera' must be 25 numbers")
    return keyframe_from_cam2world(c[:16].reshape(4, 4), focal_to_fov(float(c[16])), d["time"], **common)


def path_from_dict(d: dict[str, Any]) -> CameraPath:
    """Inverse of path_to_dict; ValueError says what is wrong."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} (its 'format' is not {FORMAT!r})")
    if d.get("version") != VERSION:
        raise ValueError(f"version {d.get('version')!r} is not supported (this build reads version {VERSION})")
    kfs = d.get("keyframes")
    if not isinstance(kfs, list):
        raise ValueError("'keyframes' must be a list")
    keyframes = []
    for i, kd in enumerate(kfs):
        try:
            keyframes.append(_keyframe_from_dict(kd))
        except (ValueError, TypeError) as e:
            raise ValueError(f"keyframe {i}: {e}") from None
    settings = {name: d[name] for name in _SETTINGS if name in d}
    extra = {k: v for k, v in d.items() if k not in (*_SETTINGS, "format", "version", "keyframes")}
    try:
        return CameraPath(tuple(keyframes), extra=extra, **settings)
    except TypeError as e:
        raise ValueError(str(e)) from None


def _write_json(data: dict[str, Any], file: str | os.PathLike, overwrite: bool) -> Path:
    text = json.dumps(data, indent=1, allow_nan=False) + "\n"

    def write(tmp: Path) -> None:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(file, write, overwrite)


def save_path(path: CameraPath, file: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write our JSON atomically (complete or absent); an existing file is kept unless `overwrite`."""
    return _write_json(path_to_dict(path), file, overwrite)


def _read_json(file: str | os.PathLike) -> Any:
    p = Path(os.path.expanduser(os.fspath(file)))
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExportError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ExportError(f"cannot read {p}: {e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ExportError(
            f"{p} is not JSON ({e.msg} at line {e.lineno}); give a camera path saved by triplane-viz "
            "or a nerfstudio camera_path.json"
        ) from None


def load_path(file: str | os.PathLike) -> CameraPath:
    """Read our JSON; ExportError naming the file and what to fix."""
    data = _read_json(file)
    try:
        return path_from_dict(data)
    except (ValueError, TypeError) as e:
        raise ExportError(f"{file}: {e}") from None


# ----------------------------------------------------------------- nerfstudio
def to_nerfstudio(path: CameraPath, width: int, height: int) -> dict[str, Any]:
    """nerfstudio's camera_path.json object for this path: every frame of frame_times, in OpenGL convention."""
    if not (int(width) >= 1 and int(height) >= 1):
        raise ValueError(f"render size must be positive, got {width}x{height}")
    aspect = int(width) / int(height)
    frames = []
    for t in frame_times(path):
        s = sample(path, float(t))
        frames.append(
            {
                "camera_to_world": [float(v) for v in to_gl(s.cam2world).reshape(16)],
                "fov": vertical_fov(s.focal),
                "aspect": aspect,
            }
        )
    keyframes = [
        {
            "matrix": [float(v) for v in to_gl(k.cam2world()).reshape(16)],
            "fov": vertical_fov(k.focal),
            "aspect": aspect,
            "override_transition_enabled": False,
            "override_transition_sec": None,
        }
        for k in path.keyframes
    ]
    n = len(path.keyframes)
    return {
        "default_fov": vertical_fov(path.keyframes[0].focal),
        "default_transition_sec": path.total_duration / max(n if path.loop else n - 1, 1),
        "keyframes": keyframes,
        "camera_type": "perspective",
        "render_height": int(height),
        "render_width": int(width),
        "fps": path.fps,
        "seconds": path.total_duration,
        "is_cycle": path.loop,
        "smoothness_value": 0.5,
        "camera_path": frames,
    }


def save_nerfstudio(
    path: CameraPath, file: str | os.PathLike, width: int, height: int, overwrite: bool = False
) -> Path:
    """Write to_nerfstudio's object atomically."""
    return _write_json(to_nerfstudio(path, width, height), file, overwrite)


def is_nerfstudio(data: Any) -> bool:
    """True for a nerfstudio camera_path.json object (a 'camera_path' frame list with camera_to_world)."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("camera_path"), list)
        and all(isinstance(f, dict) and "camera_to_world" in f for f in data["camera_path"])
    )


def from_nerfstudio(
    data: dict[str, Any],
    seed: float = 0.0,
    psi: float = 1.0,
    cutoff: int | None = None,
    view: str = "image",
    seed_b: float | None = None,
    t: float = 0.0,
) -> CameraPath:
    """A CameraPath whose frames are the nerfstudio path's frames (see the module doc); the latent,
    psi, cutoff and view are the arguments (a nerfstudio path has none). ValueError says what is wrong."""
    if not is_nerfstudio(data):
        raise ValueError("not a nerfstudio camera path (no 'camera_path' list of frames with 'camera_to_world')")
    if data.get("camera_type", "perspective") != "perspective":
        raise ValueError(f"camera_type {data['camera_type']!r} is not supported; only 'perspective' paths")
    frames = data["camera_path"]
    n = len(frames)
    if n == 0:
        raise ValueError("the nerfstudio path has no frames ('camera_path' is empty)")
    seconds = data.get("seconds")
    if seconds is None:
        fps0 = data.get("fps")
        if not fps0:
            raise ValueError("the nerfstudio path has neither 'seconds' nor 'fps'")
        seconds = n / float(fps0)
    seconds = float(seconds)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"'seconds' must be > 0, got {data.get('seconds')!r}")
    latent = dict(seed=seed, seed_b=seed_b, t=t, psi=psi, cutoff=cutoff, view=view)
    keyframes = []
    for i, f in enumerate(frames):
        try:
            m = np.asarray(f["camera_to_world"], dtype=np.float64)
            if m.size != 16:
                raise ValueError("'camera_to_world' must be 16 numbers (a row-major 4x4)")
            fov = float(f.get("fov", data.get("default_fov", 50.0)))
            focal = focal_from_vertical_fov(fov)
            keyframes.append(
                keyframe_from_cam2world(from_gl(m.reshape(4, 4)), focal_to_fov(focal), i * seconds / n, **latent)
            )
        except (ValueError, TypeError, KeyError) as e:
            raise ValueError(f"frame {i}: {e}") from None
    fps = n / seconds
    if not 0 < fps <= 240:
        raise ValueError(f"{n} frames in {seconds:g} s is {fps:g} fps; at most 240")
    return CameraPath(tuple(keyframes), loop=bool(data.get("is_cycle", False)), fps=fps, duration=seconds)


def load_any(file: str | os.PathLike, **latent) -> tuple[CameraPath, Literal["triplane-viz", "nerfstudio"]]:
    """Our JSON or a nerfstudio camera_path.json, told apart by content; `latent` (seed, psi, cutoff,
    view, seed_b, t) is what a nerfstudio path's frames get. Returns (path, which format)."""
    data = _read_json(file)
    try:
        if isinstance(data, dict) and data.get("format") == FORMAT:
            return path_from_dict(data), "triplane-viz"
        if is_nerfstudio(data):
            return from_nerfstudio(data, **latent), "nerfstudio"
    except (ValueError, TypeError) as e:
        raise ExportError(f"{file}: {e}") from None
    raise ExportError(
        f"{file} is neither a triplane-viz camera path (\"format\": {FORMAT!r}) nor a nerfstudio "
        "camera_path.json (a \"camera_path\" list of frames); save one from the viewer or nerfstudio"
    )
