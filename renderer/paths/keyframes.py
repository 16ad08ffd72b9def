"""Camera-path keyframes and paths: frozen values, validated on creation, edited by returning new paths.

A Keyframe holds what the viewer shows at one moment: the camera in the viewer's orbit terms
(renderer.camera / viz.orbit.OrbitCamera: the camera sits at `center` + `radius` along (yaw, pitch)
and looks at `pivot`; fov_deg is the reference's diagonal-of-unit-square FOV) plus a `roll` about the
viewing axis (0 in the viewer; imported cameras may have one), the latent (seed, or an A/B blend
seed -> seed_b at t), truncation psi and cutoff, and the view mode. `camera25()` is its EG3D camera
(16 OpenCV cam2world values, row-major, then 9 normalised intrinsics), computed in float64.

Times are seconds from the start of the video. A CameraPath's frames are at i * duration / N for
i < N = round(fps * duration) (renderer.paths.interpolate.frame_times): the end is excluded, so the
default duration of an open path is the last keyframe's time plus one frame (its last frame shows the
last keyframe), and a loop's default adds the mean keyframe spacing (the closing segment).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from ..camera import Camera, fov_to_focal, intrinsics, look_at, orbit_position

Vec3 = tuple[float, float, float]
VIEWS = ("image", "raw", "depth", "normals")
MODES = ("spline", "orbit")
SPACES = ("w", "z")
MAX_SEED = 2**32 - 1
PITCH_MAX = math.pi / 2 - 1e-5
"""|pitch| above this is clamped by renderer.camera.orbit_position, so a keyframe could not be reproduced."""


def _finite(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return v


def _vec3(name: str, value) -> Vec3:
    try:
        t = tuple(float(v) for v in value)
    except TypeError:
        raise ValueError(f"{name} must be three numbers (x, y, z), got {value!r}") from None
    if len(t) != 3 or not all(math.isfinite(v) for v in t):
        raise ValueError(f"{name} must be three finite numbers (x, y, z), got {value!r}")
    return (t[0], t[1], t[2])


def roll_matrix(roll: float) -> np.ndarray:
    """3x3 rotation about the camera's z (viewing) axis; cam2world[:3, :3] @ roll_matrix(r) rolls the camera."""
    c, s = math.cos(roll), math.sin(roll)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def orbit_cam2world(
    yaw: float, pitch: float, radius: float, pivot, center=(0.0, 0.0, 0.0), roll: float = 0.0
) -> np.ndarray:
    """4x4 OpenCV cam2world (float64) of an orbit camera, rolled by `roll` radians about its viewing axis."""
    m = look_at(orbit_position(yaw, pitch, radius, center), pivot)
    if roll:
        m[:3, :3] = m[:3, :3] @ roll_matrix(roll)
    return m


def camera25(cam2world: np.ndarray, fov_deg: float) -> Camera:
    """The EG3D 25-value camera (float64 values) of a cam2world and a reference-style FOV."""
    f = fov_to_focal(fov_deg)
    return tuple(float(v) for v in np.concatenate([np.asarray(cam2world).reshape(16), intrinsics(f).reshape(9)]))


@dataclass(frozen=True)
class Keyframe:
    """One keyframe: time (s), orbit camera (+ roll), latent, truncation and view."""

    time: float
    yaw: float = 0.0
    pitch: float = 0.0
    radius: float = 2.7
    pivot: Vec3 = (0.0, 0.0, 0.2)
    center: Vec3 = (0.0, 0.0, 0.0)
    fov_deg: float = 18.837
    roll: float = 0.0
    seed: float = 0.0
    seed_b: float | None = None
    t: float = 0.0
    psi: float = 1.0
    cutoff: int | None = None
    view: str = "image"

    def __post_init__(self) -> None:
        for name in ("time", "yaw", "pitch", "radius", "fov_deg", "roll", "seed", "t", "psi"):
            object.__setattr__(self, name, _finite(name, getattr(self, name)))
        object.__setattr__(self, "pivot", _vec3("pivot", self.pivot))
        object.__setattr__(self, "center", _vec3("center", self.center))
        if self.time < 0:
            raise ValueError(f"keyframe time must be >= 0 seconds, got {self.time}")
        if not self.radius > 0:
            raise ValueError(f"radius must be > 0, got {self.radius}")
        if abs(self.pitch) > PITCH_MAX:
            raise ValueError(
                f"pitch must be inside (-pi/2, pi/2) (the camera cannot look along the up axis), got {self.pitch}"
            )
        if not 0 < self.fov_deg < 180:
            raise ValueError(f"fov_deg must be in (0, 180) degrees, got {self.fov_deg}")
        for name in ("seed", "seed_b"):
            v = getattr(self, name)
            if v is not None:
                v = _finite(name, v)
                if not 0 <= v <= MAX_SEED:
                    raise ValueError(f"{name} {v:g} is outside 0…{MAX_SEED}")
                object.__setattr__(self, name, v)
        if not 0 <= self.t <= 1:
            raise ValueError(f"t (the A/B blend) must be in [0, 1], got {self.t}")
        if self.cutoff is not None:
            if isinstance(self.cutoff, bool) or int(self.cutoff) != self.cutoff or self.cutoff < 0:
                raise ValueError(f"cutoff must be a whole number >= 0 or None, got {self.cutoff!r}")
            object.__setattr__(self, "cutoff", int(self.cutoff))
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}, not {self.view!r}")
        if np.allclose(orbit_position(self.yaw, self.pitch, self.radius, self.center), self.pivot, rtol=0, atol=1e-9):
            raise ValueError("the keyframe's camera sits on its pivot; move the pivot or change the radius")

    def cam2world(self) -> np.ndarray:
        """4x4 OpenCV cam2world (float64)."""
        return orbit_cam2world(self.yaw, self.pitch, self.radius, self.pivot, self.center, self.roll)

    def camera25(self) -> Camera:
        """The EG3D camera: 16 cam2world (row-major) + 9 normalised intrinsics, as float64 values."""
        return camera25(self.cam2world(), self.fov_deg)

    @property
    def focal(self) -> float:
        """Normalised focal length of fov_deg."""
        return fov_to_focal(self.fov_deg)

    def latent_key(self) -> tuple[float, float | None, float]:
        """(seed, seed_b, t) with the trivial blends folded: t=0 is plain seed, t=1 plain seed_b."""
        if self.seed_b is None or self.t == 0:
            return (self.seed, None, 0.0)
        if self.t == 1:
            return (self.seed_b, None, 0.0)
        return (self.seed, self.seed_b, self.t)


def _default_duration(keyframes: tuple[Keyframe, ...], loop: bool, fps: float) -> float:
    first, last = keyframes[0].time, keyframes[-1].time
    if loop and len(keyframes) > 1:
        return last + (last - first) / (len(keyframes) - 1)
    return last + 1.0 / fps


@dataclass(frozen=True)
class CameraPath:
    """Keyframes sorted by time, and how to play them. Editing helpers return new paths."""

    keyframes: tuple[Keyframe, ...]
    loop: bool = False
    mode: Literal["spline", "orbit"] = "spline"
    constant_speed: bool = False
    tension: float = 0.0
    """Kochanek-Bartels tension in [-1, 1]: tangents are scaled by (1 - tension); 0 is Catmull-Rom, 1 stops
    at every keyframe."""
    latent_space: Literal["w", "z"] = "w"
    fps: float = 30.0
    duration: float | None = None
    """Seconds of video; None: the last keyframe's time plus one frame (open) or plus the mean keyframe
    spacing (loop: the closing segment)."""
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    """Unknown settings read from a file, written back unchanged."""

    def __post_init__(self) -> None:
        kfs = tuple(self.keyframes)
        object.__setattr__(self, "keyframes", kfs)
        if not kfs:
            raise ValueError("a camera path needs at least one keyframe")
        for i, k in enumerate(kfs):
            if not isinstance(k, Keyframe):
                raise ValueError(f"keyframe {i} is a {type(k).__name__}, not a Keyframe")
        for i in range(1, len(kfs)):
            if not kfs[i].time > kfs[i - 1].time:
                raise ValueError(
                    f"keyframe times must increase: keyframe {i} is at {kfs[i].time:g} s, "
                    f"keyframe {i - 1} at {kfs[i - 1].time:g} s"
                )
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.latent_space not in SPACES:
            raise ValueError(f"latent_space must be 'w' or 'z', not {self.latent_space!r}")
        object.__setattr__(self, "tension", _finite("tension", self.tension))
        if not -1 <= self.tension <= 1:
            raise ValueError(f"tension must be in [-1, 1], got {self.tension}")
        object.__setattr__(self, "fps", _finite("fps", self.fps))
        if not 0 < self.fps <= 240:
            raise ValueError(f"fps must be in (0, 240], got {self.fps}")
        if self.duration is not None:
            d = _finite("duration", self.duration)
            object.__setattr__(self, "duration", d)
            if not d > 0:
                raise ValueError(f"duration must be > 0 seconds, got {d}")
            span = kfs[-1].time - kfs[0].time
            if self.loop and not d > span:
                raise ValueError(
                    f"a loop's duration ({d:g} s) must be longer than its keyframes' span ({span:g} s): "
                    "the rest is the way back to the first keyframe"
                )
        object.__setattr__(self, "loop", bool(self.loop))
        object.__setattr__(self, "constant_speed", bool(self.constant_speed))

    # ------------------------------------------------------------ derived
    @property
    def total_duration(self) -> float:
        """The duration in seconds (the default when `duration` is None)."""
        if self.duration is not None:
            return self.duration
        return _default_duration(self.keyframes, self.loop, self.fps)

    @property
    def frame_count(self) -> int:
        """round(fps * duration), at least 1."""
        return max(1, round(self.fps * self.total_duration))

    @property
    def times(self) -> tuple[float, ...]:
        return tuple(k.time for k in self.keyframes)

    # ------------------------------------------------------------ editing
    def with_keyframes(self, keyframes) -> CameraPath:
        """This path with other keyframes (sorted by time)."""
        return replace(self, keyframes=tuple(sorted(keyframes, key=lambda k: k.time)))

    def add_keyframe(self, keyframe: Keyframe) -> CameraPath:
        """A new path with `keyframe` inserted at its time (an existing keyframe at that time: ValueError)."""
        if any(k.time == keyframe.time for k in self.keyframes):
            raise ValueError(f"there is already a keyframe at {keyframe.time:g} s; update it or pick another time")
        return self.with_keyframes((*self.keyframes, keyframe))

    def _index(self, index: int) -> int:
        if not -len(self.keyframes) <= index < len(self.keyframes):
            raise IndexError(f"no keyframe {index} (the path has {len(self.keyframes)})")
        return index % len(self.keyframes)

    def update_keyframe(self, index: int, keyframe: Keyframe | None = None, **changes) -> CameraPath:
        """A new path with keyframe `index` replaced by `keyframe` or changed by `changes` (re-sorted)."""
        i = self._index(index)
        new = keyframe if keyframe is not None else self.keyframes[i]
        new = replace(new, **changes) if changes else new
        rest = [k for j, k in enumerate(self.keyframes) if j != i]
        if any(k.time == new.time for k in rest):
            raise ValueError(f"there is already a keyframe at {new.time:g} s; pick another time")
        return self.with_keyframes((*rest, new))

    def delete_keyframe(self, index: int) -> CameraPath:
        """A new path without keyframe `index` (deleting the only keyframe: ValueError)."""
        i = self._index(index)
        if len(self.keyframes) == 1:
            raise ValueError("cannot delete the only keyframe of a path")
        return self.with_keyframes(k for j, k in enumerate(self.keyframes) if j != i)

    def move_keyframe(self, index: int, time: float) -> CameraPath:
        """A new path with keyframe `index` at `time` seconds (re-sorted)."""
        return self.update_keyframe(index, time=time)

    def index_at(self, time: float) -> int | None:
        """The index of the keyframe at exactly `time`, or None."""
        for i, k in enumerate(self.keyframes):
            if k.time == time:
                return i
        return None
