"""View samplers: which cameras a seed is rendered from.

Every draw comes from a generator seeded by (seed, view index) alone, never by the order in which
seeds or shards are rendered, so a sample's camera is the same however the work is split.

* `gaussian`: the reference's Gaussian pose sampler around the frontal view (EG3D camera_utils'
  GaussianCameraPoseSampler / LookAtPoseSampler maths, which renderer.camera.orbit_position implements):
  yaw and pitch offsets drawn from N(0, yaw_std) and N(0, pitch_std), the camera on the model's average
  radius around the world origin, looking at its average pivot. Defaults 0.3 and 0.155 rad: the
  face-dataset spread of the pi-GAN sampler EG3D's is taken from (FFHQ poses are near this).
* `uniform`: yaw and pitch uniform over ranges (default: a full circle of yaw, pitch in [-0.6, 0.6]).
* `orbit`: N evenly spaced yaws around the full circle at one pitch (no randomness).
* `list`: a fixed list of cameras from a JSON file (load_camera_list), the same for every seed.
* `training`: the model's own training pose distribution: for the built-in model, `uniform` over the
  yaw and pitch it was trained on (renderer.builtin.config); for ShapeNet-like models (white background)
  `uniform` over the full circle and the upper hemisphere; otherwise (FFHQ-like) `gaussian`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..builtin import BUILTIN
from ..builtin.config import PITCH_RANGE, YAW_RANGE
from ..camera import Camera, camera_tuple, default_focal, fov_to_focal, orbit_camera

SAMPLERS = ("training", "gaussian", "uniform", "orbit", "list")
GAUSSIAN_STD = (0.3, 0.155)
"""(yaw, pitch) standard deviations of the `gaussian` sampler, radians."""
UNIFORM_YAW = (-math.pi, math.pi)
UNIFORM_PITCH = (-0.6, 0.6)
SHAPENET_PITCH = (-math.pi / 2 + 0.05, 0.0)
"""Upper hemisphere (+pitch moves the camera down), kept off the pole where look-at has no up vector."""
_STREAM = 0x76696577  # "view": keeps these draws apart from any other use of (seed, view)


@dataclass(frozen=True)
class ViewSpec:
    """How a seed's views are chosen (JSON-able: part of the dataset settings)."""

    sampler: str = "training"
    views: int = 8
    yaw_std: float = GAUSSIAN_STD[0]
    pitch_std: float = GAUSSIAN_STD[1]
    yaw_range: tuple[float, float] = UNIFORM_YAW
    pitch_range: tuple[float, float] = UNIFORM_PITCH
    orbit_pitch: float = 0.0
    fov_deg: float | None = None
    """Field of view (reference convention) for sampled cameras; None: the model's focal."""
    cameras: tuple[Camera, ...] = field(default=())
    """The `list` sampler's cameras (25 values each)."""

    def check(self) -> None:
        """ValueError naming what is wrong."""
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown view sampler {self.sampler!r}: use one of {', '.join(SAMPLERS)}")
        if self.sampler == "list":
            if not self.cameras:
                raise ValueError("the camera list is empty")
            if self.views != len(self.cameras):
                raise ValueError(f"{self.views} views asked but the camera list holds {len(self.cameras)}")
        elif self.views < 1:
            raise ValueError("at least one view per seed")
        for name in ("yaw_std", "pitch_std"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite number >= 0")
        for name in ("yaw_range", "pitch_range"):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ValueError(f"{name} must be two finite numbers, low <= high")
        if self.fov_deg is not None:
            fov_to_focal(self.fov_deg)

    def resolved(self, network: str, rendering_kwargs: dict) -> ViewSpec:
        """This spec with `training` replaced by the model's own distribution (see the module doc)."""
        if self.sampler != "training":
            return self
        if network == BUILTIN:
            yaw, pitch = (float(YAW_RANGE[0]), float(YAW_RANGE[1])), (float(PITCH_RANGE[0]), float(PITCH_RANGE[1]))
            return replace(self, sampler="uniform", yaw_range=yaw, pitch_range=pitch)
        if rendering_kwargs.get("white_back"):
            return replace(self, sampler="uniform", yaw_range=UNIFORM_YAW, pitch_range=SHAPENET_PITCH)
        return replace(self, sampler="gaussian")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (the sampled distribution only: unused fields are left out)."""
        d: dict[str, Any] = {"sampler": self.sampler, "views": self.views, "fov_deg": self.fov_deg}
        if self.sampler == "gaussian":
            d.update(yaw_std=self.yaw_std, pitch_std=self.pitch_std)
        elif self.sampler == "uniform":
            d.update(yaw_range=list(self.yaw_range), pitch_range=list(self.pitch_range))
        elif self.sampler == "orbit":
            d.update(orbit_pitch=self.orbit_pitch)
        elif self.sampler == "list":
            d.update(cameras=[list(c) for c in self.cameras])
        else:
            d.update(
                yaw_std=self.yaw_std,
                pitch_std=self.pitch_std,
                yaw_range=list(self.yaw_range),
                pitch_range=list(self.pitch_range),
            )
        return d


@dataclass(frozen=True)
class View:
    """One sampled view: its index, camera (25 values) and the orbit offsets it was drawn at (None for `list`)."""

    index: int
    camera: Camera
    yaw: float | None
    pitch: float | None


def view_uniforms(seed: int, view: int, n: int = 2) -> np.ndarray:
    """n uniform doubles in [0, 1) that depend on (seed, view) only (PCG64 doubles: stable across numpy)."""
    ss = np.random.SeedSequence([int(seed), int(view), _STREAM])
    return np.random.Generator(np.random.PCG64(ss)).random(n)


def view_rng_seed(seed: int, view: int) -> int:
    """A 63-bit seed for the stochastic depth sampler of sample (seed, view)."""
    ss = np.random.SeedSequence([int(seed), int(view), _STREAM + 1])
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _normals(u: np.ndarray) -> tuple[float, float]:
    """Two independent standard normal draws from two uniforms (Box-Muller), computed here so the
    values never depend on numpy's normal-sampling algorithm."""
    r = math.sqrt(-2.0 * math.log(1.0 - float(u[0])))
    return r * math.cos(2 * math.pi * float(u[1])), r * math.sin(2 * math.pi * float(u[1]))


def sample_views(spec: ViewSpec, seed: int, rendering_kwargs: dict) -> list[View]:
    """The views of one seed under a resolved spec (ViewSpec.resolved), in view-index order."""
    if spec.sampler == "list":
        return [View(i, camera_tuple(c), None, None) for i, c in enumerate(spec.cameras)]
    if spec.sampler == "training":
        raise ValueError("resolve the 'training' sampler against the model first (ViewSpec.resolved)")
    radius = float(rendering_kwargs.get("avg_camera_radius", 2.7))
    pivot = [float(p) for p in rendering_kwargs.get("avg_camera_pivot", (0, 0, 0.2))]
    focal = default_focal(rendering_kwargs) if spec.fov_deg is None else fov_to_focal(spec.fov_deg)
    views = []
    for i in range(spec.views):
        if spec.sampler == "orbit":
            yaw, pitch = 2 * math.pi * i / spec.views, spec.orbit_pitch
        elif spec.sampler == "gaussian":
            n1, n2 = _normals(view_uniforms(seed, i))
            yaw, pitch = spec.yaw_std * n1, spec.pitch_std * n2
        elif spec.sampler == "uniform":
            u = view_uniforms(seed, i)
            yaw = spec.yaw_range[0] + (spec.yaw_range[1] - spec.yaw_range[0]) * float(u[0])
            pitch = spec.pitch_range[0] + (spec.pitch_range[1] - spec.pitch_range[0]) * float(u[1])
        else:
            raise ValueError(f"unknown view sampler {spec.sampler!r}")
        cam = camera_tuple(orbit_camera(yaw, pitch, radius, pivot, focal=focal).double())
        views.append(View(i, cam, yaw, pitch))
    return views


def load_camera_list(path: str | os.PathLike) -> tuple[Camera, ...]:
    """Cameras from a JSON file: a list of 25-value cameras, {"cameras": [...]}, or an EG3D dataset.json
    ({"labels": [[name, 25 values], ...]}). ValueError says what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise ValueError(f"cannot read the camera list {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"the camera list {path} is not valid JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("labels"), list):
        items = [entry[1] if isinstance(entry, list) and len(entry) == 2 else entry for entry in data["labels"]]
    elif isinstance(data, dict) and isinstance(data.get("cameras"), list):
        items = data["cameras"]
    elif isinstance(data, list):
        items = data
    else:
        raise ValueError(f"{path}: expected a list of 25-value cameras, {{\"cameras\": [...]}} or an EG3D dataset.json")
    cams = []
    for i, c in enumerate(items):
        try:
            cams.append(camera_tuple(c))
        except (TypeError, ValueError):
            raise ValueError(f"{path}: camera {i} is not 25 finite numbers") from None
    if not cams:
        raise ValueError(f"{path} holds no cameras")
    return tuple(cams)


__all__ = [
    "GAUSSIAN_STD",
    "SAMPLERS",
    "View",
    "ViewSpec",
    "load_camera_list",
    "sample_views",
    "view_rng_seed",
    "view_uniforms",
]
