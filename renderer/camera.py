"""EG3D cameras: the 25-value vector (OpenCV cam2world, row-major | normalised intrinsics), look-at orbits.

Conventions (eg3d-reference §3, eg3d-math §11): world y is up; the camera sits on a sphere
of `radius` around `center` (the world origin in the reference) and looks at `pivot`; yaw and
pitch are offsets in radians from the frontal camera on +z. +yaw moves the camera towards +x,
+pitch moves it down (pitch is linear in cos(polar angle), as in the reference). The "FOV" is
the reference's: focal = 1 / (tan(fov/2) * 1.414), a diagonal FOV of the unit image square.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

_PI_REF = 3.14159  # the reference's FOV_to_intrinsics uses this value of pi
_SQRT2_REF = 1.414
DEFAULT_FOV_DEG = 18.837
"""FFHQ/AFHQ default FOV (focal 4.2634); the ShapeNet model was trained at focal 1.7074."""
SHAPENET_FOCAL = 1.7074

Camera = tuple[float, ...]
"""A 25-value camera as a hashable tuple (what a RenderRequest holds: a cache and de-duplication key)."""


def camera_tuple(c) -> Camera:
    """A 25-value camera (tensor, array or sequence) as a tuple of floats."""
    t = tuple(float(v) for v in np.asarray(c, dtype=np.float64).reshape(-1))
    if len(t) != 25 or not all(math.isfinite(v) for v in t):
        raise ValueError("a camera is 25 finite numbers (16 cam2world + 9 intrinsics)")
    return t


def fov_to_focal(fov_deg: float) -> float:
    """Normalised focal length for a reference-style FOV in degrees (18.837 -> 4.2634)."""
    if not 0 < fov_deg < 180:
        raise ValueError(f"FOV must be in (0, 180) degrees, got {fov_deg}")
    return float(1 / (math.tan(fov_deg * _PI_REF / 360) * _SQRT2_REF))


def focal_to_fov(focal: float) -> float:
    """Inverse of fov_to_focal."""
    if not focal > 0:
        raise ValueError(f"focal length must be > 0, got {focal}")
    return float(math.atan(1 / (focal * _SQRT2_REF)) * 360 / _PI_REF)


def intrinsics(focal: float, cx: float = 0.5, cy: float = 0.5) -> np.ndarray:
    """3x3 normalised intrinsics [[f,0,cx],[0,f,cy],[0,0,1]]."""
    return np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1]], dtype=np.float64)


def look_at(origin: Sequence[float] | np.ndarray, target: Sequence[float] | np.ndarray) -> np.ndarray:
    """4x4 OpenCV cam2world at `origin` looking at `target`, world up +y (columns right, down, forward)."""
    o = np.asarray(origin, dtype=np.float64)
    f = np.asarray(target, dtype=np.float64) - o
    norm = np.linalg.norm(f)
    if norm == 0:
        raise ValueError("camera position equals its look-at target")
    f = f / norm
    right = -np.cross([0.0, 1.0, 0.0], f)
    if np.linalg.norm(right) < 1e-12:
        raise ValueError("camera looks straight along the up axis; pitch must stay inside (-pi/2, pi/2)")
    right /= np.linalg.norm(right)
    up = np.cross(f, right)
    up /= np.linalg.norm(up)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, f, o
    return m


def orbit_position(yaw: float, pitch: float, radius: float, center: Sequence[float] = (0, 0, 0)) -> np.ndarray:
    """Camera position for yaw/pitch offsets from the frontal view (reference LookAtPoseSampler maths)."""
    h = math.pi / 2 + yaw
    v = min(max(math.pi / 2 + pitch, 1e-5), math.pi - 1e-5)
    phi = math.acos(1 - 2 * v / math.pi)
    pos = np.array(
        [
            radius * math.sin(phi) * math.cos(math.pi - h),
            radius * math.cos(phi),
            radius * math.sin(phi) * math.sin(math.pi - h),
        ]
    )
    return pos + np.asarray(center, dtype=np.float64)


def make_camera(cam2world: np.ndarray, focal: float) -> torch.Tensor:
    """25-value camera (float32) from a 4x4 cam2world and a normalised focal length."""
    return torch.from_numpy(
        np.concatenate([np.asarray(cam2world).reshape(16), intrinsics(focal).reshape(9)]).astype(np.float32)
    )


def orbit_camera(
    yaw: float,
    pitch: float,
    radius: float,
    pivot: Sequence[float],
    fov_deg: float | None = None,
    focal: float | None = None,
    center: Sequence[float] = (0, 0, 0),
) -> torch.Tensor:
    """The 25-value camera on the orbit sphere at (yaw, pitch), looking at pivot; give fov_deg or focal."""
    if (fov_deg is None) == (focal is None):
        raise ValueError("give exactly one of fov_deg and focal")
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    if focal is None:
        assert fov_deg is not None  # exactly one of the two was given
        f = fov_to_focal(fov_deg)
    else:
        f = float(focal)
    if not (f > 0 and math.isfinite(f)):
        raise ValueError(f"focal length must be a finite number > 0, got {focal}")
    return make_camera(look_at(orbit_position(yaw, pitch, radius, center), pivot), f)


@dataclass(frozen=True)
class Orbit:
    """A camera expressed in orbit terms (the inverse of orbit_camera)."""

    yaw: float
    pitch: float
    radius: float
    focal: float

    @property
    def fov_deg(self) -> float:
        """Reference-style FOV of this camera."""
        return focal_to_fov(self.focal)


def camera_to_orbit(c: torch.Tensor | np.ndarray, center: Sequence[float] = (0, 0, 0)) -> Orbit:
    """Yaw, pitch, radius (about `center`) and focal of a 25-value camera."""
    c = np.asarray(c, dtype=np.float64).reshape(25)
    pos = c[:16].reshape(4, 4)[:3, 3] - np.asarray(center, dtype=np.float64)
    radius = float(np.linalg.norm(pos))
    if radius == 0:
        raise ValueError("camera sits at the orbit centre")
    cos_phi = float(np.clip(pos[1] / radius, -1, 1))
    pitch = -cos_phi * math.pi / 2
    yaw = math.atan2(pos[0], pos[2])
    return Orbit(yaw=yaw, pitch=pitch, radius=radius, focal=float(c[16]))


def default_focal(rendering_kwargs: dict) -> float:
    """The focal length a model was trained at: stored 'default_focal', ShapeNet-like (white background), or FFHQ."""
    if "default_focal" in rendering_kwargs:
        return float(rendering_kwargs["default_focal"])
    return SHAPENET_FOCAL if rendering_kwargs.get("white_back") else fov_to_focal(DEFAULT_FOV_DEG)


def default_camera(
    rendering_kwargs: dict, yaw: float = 0.0, pitch: float = 0.0, fov_deg: float | None = None
) -> torch.Tensor:
    """Camera at the model's average radius and pivot (frontal when yaw = pitch = 0)."""
    radius = float(rendering_kwargs.get("avg_camera_radius", 2.7))
    pivot = [float(p) for p in rendering_kwargs.get("avg_camera_pivot", (0, 0, 0.2))]
    focal = default_focal(rendering_kwargs) if fov_deg is None else fov_to_focal(fov_deg)
    return orbit_camera(yaw, pitch, radius, pivot, focal=focal)
