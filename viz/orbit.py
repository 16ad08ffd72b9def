"""Mouse -> camera maths for the viewer (pure functions, no GL): orbit, zoom, FOV zoom, pan.

The camera follows the reference convention (renderer.camera): it sits on a sphere of `radius`
around `center` and looks at `pivot`. Panning moves pivot and center together, so the whole rig
translates in the image plane; orbiting turns the camera around `center`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import cast

import numpy as np

from renderer.camera import camera_to_orbit, fov_to_focal, look_at, orbit_camera, orbit_position

Vec3 = tuple[float, float, float]
"""A point or direction in world space (pivot, orbit centre)."""

PITCH_LIMIT = math.pi / 2 - 0.05
ORBIT_SPEED = math.pi
"""Radians of yaw/pitch per viewport height of mouse travel."""
ZOOM_STEP = 0.9
FOV_STEP = 0.95
RADIUS_RANGE = (0.05, 50.0)
FOV_RANGE = (1.0, 120.0)


@dataclass(frozen=True)
class OrbitCamera:
    """The render camera in orbit terms; `fov_deg` is the reference's diagonal-of-unit-square FOV."""

    yaw: float = 0.0
    pitch: float = 0.0
    radius: float = 2.7
    pivot: tuple[float, float, float] = (0.0, 0.0, 0.2)
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fov_deg: float = 18.837

    def to_camera(self):
        """The 25-value camera tensor (float32)."""
        return orbit_camera(self.yaw, self.pitch, self.radius, self.pivot, fov_deg=self.fov_deg, center=self.center)

    def cam2world(self) -> np.ndarray:
        """4x4 OpenCV cam2world (float64)."""
        return look_at(orbit_position(self.yaw, self.pitch, self.radius, self.center), self.pivot)


def clamp(x: float, lo: float, hi: float) -> float:
    """x limited to [lo, hi]."""
    return min(max(x, lo), hi)


def orbit(cam: OrbitCamera, dx: float, dy: float, viewport_h: float) -> OrbitCamera:
    """Left-drag by (dx, dy) pixels: dragging right turns the object right (yaw decreases, as in the
    reference viewer); dragging down lifts the camera (pitch decreases); pitch stays off the poles."""
    k = ORBIT_SPEED / max(viewport_h, 1.0)
    return replace(cam, yaw=_wrap(cam.yaw - dx * k), pitch=clamp(cam.pitch - dy * k, -PITCH_LIMIT, PITCH_LIMIT))


def zoom(cam: OrbitCamera, wheel: float, radius_range: tuple[float, float] = RADIUS_RANGE) -> OrbitCamera:
    """Wheel up (positive) moves the camera closer by ZOOM_STEP per notch, within `radius_range`."""
    return replace(cam, radius=clamp(cam.radius * ZOOM_STEP**wheel, *radius_range))


def zoom_fov(cam: OrbitCamera, wheel: float) -> OrbitCamera:
    """Modifier + wheel narrows (positive) or widens the field of view."""
    return replace(cam, fov_deg=clamp(cam.fov_deg * FOV_STEP**wheel, *FOV_RANGE))


def pan(cam: OrbitCamera, dx: float, dy: float, viewport_h: float) -> OrbitCamera:
    """Right/middle-drag: the scene follows the mouse; pivot and orbit centre move in the image plane."""
    m = cam.cam2world()
    right, down = m[:3, 0], m[:3, 1]
    dist = float(np.linalg.norm(np.asarray(cam.pivot) - m[:3, 3]))
    scale = dist / (fov_to_focal(cam.fov_deg) * max(viewport_h, 1.0))  # world units per pixel at the pivot
    delta = -(right * dx + down * dy) * scale
    return replace(
        cam,
        pivot=cast(Vec3, tuple(float(v) for v in np.asarray(cam.pivot) + delta)),
        center=cast(Vec3, tuple(float(v) for v in np.asarray(cam.center) + delta)),
    )


def _wrap(a: float) -> float:
    """Angle wrapped to (-pi, pi]."""
    return math.atan2(math.sin(a), math.cos(a))


def from_camera(c, pivot=(0.0, 0.0, 0.0), center=(0.0, 0.0, 0.0)) -> OrbitCamera:
    """OrbitCamera of a 25-value camera, given the pivot it looks at and its orbit centre."""
    o = camera_to_orbit(c, center)
    return OrbitCamera(o.yaw, o.pitch, o.radius, tuple(pivot), tuple(center), o.fov_deg)


def presets(radius: float, pivot, fov_deg: float, full_sphere: bool = False) -> dict[str, OrbitCamera]:
    """Named views: the model's default (frontal) and left/right/top/bottom turns. Top and bottom stay within
    what a frontal-range model (faces, cats: trained on about +-30 deg of pitch) can show; a model trained
    all around (ShapeNet-style, `full_sphere`) gets real top and bottom views."""
    base = OrbitCamera(0.0, 0.0, radius, tuple(pivot), (0.0, 0.0, 0.0), fov_deg)
    top, bottom = (-PITCH_LIMIT, PITCH_LIMIT) if full_sphere else (-0.6, 0.5)
    return {
        "default": base,
        "front": base,
        "left": replace(base, yaw=-math.pi / 2 + 0.01),
        "right": replace(base, yaw=math.pi / 2 - 0.01),
        "top": replace(base, pitch=top),
        "bottom": replace(base, pitch=bottom),
        "three-quarter": replace(base, yaw=0.5, pitch=-0.15),
    }
