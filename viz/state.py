"""The viewer's state (UI thread, mutable dataclasses) and its snapshot into a frozen RenderRequest."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal, cast

from renderer.camera import DEFAULT_FOV_DEG, camera_tuple, default_focal, focal_to_fov
from renderer.engine import LatentSpec, RenderRequest
from renderer.engine.frames import View

from .orbit import OrbitCamera, Vec3

CondMode = Literal["front", "camera", "custom"]
ViewName = View | Literal["geometry"]
"""What the View section shows: a rendered view, or the preview mesh ('geometry')."""


@dataclass
class LatentState:
    """Seed (fractional while dragging), A->B interpolation with playback, style mixing."""

    seed: float = 0.0
    interp: bool = False
    seed_b: int = 1
    t: float = 0.0
    space: Literal["w", "z"] = "w"
    playing: bool = False
    pingpong: bool = True
    speed: float = 0.25
    """Interpolation parameter units per second while playing."""
    direction: float = 1.0
    mix: bool = False
    mix_seed: int = 1
    mix_start: int = 7
    custom: str | None = None
    """A fitted photo latent's name (RenderEngine.custom_latents) shown instead of the seeds; None: seeds."""
    custom_label: str = ""
    """What the Latent panel calls the custom latent (the photo's file name)."""

    def spec(self) -> LatentSpec:
        """The frozen latent description for the engine."""
        if self.custom is not None:
            return LatentSpec(custom=self.custom)
        return LatentSpec(
            seed=self.seed,
            seed_b=float(self.seed_b) if self.interp else None,
            t=self.t if self.interp else 0.0,
            space=self.space,
            mix_seed=self.mix_seed if self.mix else None,
            mix_start=self.mix_start,
        )

    def advance(self, dt: float) -> bool:
        """Move the playing animation by dt seconds; True if t changed."""
        if not (self.interp and self.playing) or dt <= 0:
            return False
        t = self.t + self.direction * self.speed * dt
        if self.pingpong:
            while t > 1 or t < 0:
                if t > 1:
                    t, self.direction = 2 - t, -1.0
                if t < 0:
                    t, self.direction = -t, 1.0
        else:
            t = t % 1.0
        self.t = t
        return True


@dataclass
class CondState:
    """The pose given to the mapping network: frontal (default), follow the render camera, or its own."""

    mode: CondMode = "front"
    yaw: float = 0.0
    pitch: float = 0.0


@dataclass
class TruncState:
    """Truncation psi and cutoff (None = all ws), backbone noise mode."""

    psi: float = 0.7
    cutoff: int | None = None
    noise_mode: Literal["const", "random", "none"] = "const"


@dataclass
class ViewState:
    """What to show and how to render it."""

    view: ViewName = "image"
    depth_locked: bool = False
    depth_range: tuple[float, float] = (2.25, 3.3)
    depth_multiplier: float = 1.0
    importance_multiplier: float = 1.0
    neural_rendering_resolution: int | None = None
    """None = the model's own."""
    sampling: Literal["deterministic", "stochastic"] = "deterministic"


@dataclass
class ModelDefaults:
    """Camera defaults read from a model's rendering settings."""

    radius: float = 2.7
    pivot: tuple[float, float, float] = (0.0, 0.0, 0.2)
    fov_deg: float = DEFAULT_FOV_DEG
    num_ws: int = 14
    ray_range: tuple[float, float] = (2.25, 3.3)
    full_sphere: bool = False
    """Trained from all around (ShapeNet-style 'auto' ray ranges): presets include real top and bottom views."""
    radius_range: tuple[float, float] = (0.675, 10.8)
    """Camera radii the zoom allows: near enough that the ray range (which follows the camera) still starts
    in front of it, far enough that the object stays a quarter of its default size."""

    @classmethod
    def from_rendering_kwargs(cls, rk: dict, num_ws: int) -> ModelDefaults:
        """Defaults of a loaded model (avg camera radius/pivot, trained focal length, ray range)."""
        start, end = rk.get("ray_start", 2.25), rk.get("ray_end", 3.3)
        radius = float(rk.get("avg_camera_radius", 2.7))
        rng = (float(start), float(end)) if not isinstance(start, str) else (0.0, 2 * radius)
        near = 1.5 * (radius - float(start)) if not isinstance(start, str) and float(start) < radius else 0.5 * radius
        return cls(
            radius=radius,
            pivot=cast(Vec3, tuple(float(v) for v in rk.get("avg_camera_pivot", (0, 0, 0.2)))),
            fov_deg=focal_to_fov(default_focal(rk)),
            num_ws=num_ws,
            ray_range=rng,
            full_sphere=isinstance(start, str),
            radius_range=(near, 4.0 * radius),
        )

    def camera(self) -> OrbitCamera:
        """The frontal camera at the model's defaults."""
        return OrbitCamera(0.0, 0.0, self.radius, self.pivot, (0.0, 0.0, 0.0), self.fov_deg)


@dataclass
class VizState:
    """Everything the widgets edit. `snapshot` freezes the part that decides the rendered frame."""

    camera: OrbitCamera = field(default_factory=OrbitCamera)
    cond: CondState = field(default_factory=CondState)
    latent: LatentState = field(default_factory=LatentState)
    trunc: TruncState = field(default_factory=TruncState)
    view: ViewState = field(default_factory=ViewState)
    defaults: ModelDefaults = field(default_factory=ModelDefaults)
    latent_override: LatentSpec | None = None
    """The latent a camera path's preview shows (a blend between keyframes), instead of `latent`'s."""
    camera_override: tuple[float, ...] | None = None
    """The 25-value camera a camera path's preview renders (its orientation blended by quaternions, which an orbit
    camera looking at the pivot cannot hold), instead of `camera`'s; `camera` holds its orbit approximation."""

    def latent_spec(self) -> LatentSpec:
        """The latent to render: the path preview's while it plays or is scrubbed, else the Latent panel's."""
        return self.latent_override if self.latent_override is not None else self.latent.spec()

    def reset_camera(self) -> None:
        """Back to the model's default camera."""
        self.camera = self.defaults.camera()

    def apply_model(self, defaults: ModelDefaults, keep_view: bool = False) -> None:
        """Adopt a newly loaded model's defaults; the camera resets and the depth range follows the rays, unless
        `keep_view` (another snapshot of the same training run: the same camera and latent, compared)."""
        self.defaults = defaults
        if not keep_view:
            self.camera = defaults.camera()
            self.view.depth_range = defaults.ray_range
        if self.trunc.cutoff is not None:
            self.trunc.cutoff = min(self.trunc.cutoff, defaults.num_ws)

    def cond_camera(self) -> OrbitCamera:
        """The conditioning pose for the current mode."""
        base = replace(self.defaults.camera(), fov_deg=self.camera.fov_deg)
        if self.cond.mode == "camera":
            return self.camera
        if self.cond.mode == "custom":
            return replace(base, yaw=self.cond.yaw, pitch=self.cond.pitch)
        return base

    def snapshot(self, stamp: int, superresolution: bool | None = None) -> RenderRequest:
        """A frozen request for the render thread (SR is skipped for views that do not show it)."""
        v = self.view
        sr = (v.view == "image") if superresolution is None else superresolution
        for name, value in (("psi", self.trunc.psi), ("seed", self.latent.seed)):
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number")
        return RenderRequest(
            latent=self.latent_spec(),
            camera=self.camera_override or camera_tuple(self.camera.to_camera()),
            cond_camera=camera_tuple(self.cond_camera().to_camera()),
            psi=float(self.trunc.psi),
            cutoff=self.trunc.cutoff,
            noise_mode=self.trunc.noise_mode,
            sampling=v.sampling,
            neural_rendering_resolution=v.neural_rendering_resolution,
            depth_multiplier=v.depth_multiplier,
            importance_multiplier=v.importance_multiplier,
            superresolution=sr,
            stamp=stamp,
        )
