"""What a fit is given and what it gives back: the starting camera, the settings (written to fit.json as used),
the picture, one record per step and the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from ..model.generator import TriPlaneGenerator


@dataclass
class CameraGuess:
    """Where the fit starts: yaw/pitch in radians (renderer.camera convention, as `images --yaw/--pitch`);
    radius and focal default to the model's average radius and training focal length."""

    yaw: float = 0.0
    pitch: float = 0.0
    radius: float | None = None
    focal: float | None = None


@dataclass
class FitSettings:
    """Everything that shapes a fit (written to fit.json as they were used)."""

    steps: int = 60
    """Steps of the w + camera phases together (pose, then detail)."""
    pose_fraction: float = 0.6
    """Share of `steps` spent at `start_resolution` (the pose phase)."""
    start_resolution: int = 32
    resolution: int | None = None
    """Neural resolution of the detail phase (default: the model's, capped at 128)."""
    samples: tuple[int, int] = (16, 16)
    """Coarse + importance samples per ray during the fit."""
    lr_w: float = 0.1
    lr_pose: float = 0.015
    optimise_pose: bool = True
    optimise_radius: bool = False
    optimise_focal: bool = False
    image_weight: float = 1.0
    """Weight of the final (super-resolved) image's loss in the detail phase."""
    raw_weight: float = 1.0
    sr_crop: int | None = None
    """Super-resolve only a random square of this many input pixels a step (the final image's loss on that
    part: exact there, a fraction of the cost; None = the whole image). Models whose super-resolution adds
    noise ('const' or 'random') always use the whole image."""
    raw_proxy: bool | None = None
    """Whether the raw render stands for the final image (True for trained EG3D models: the dual discriminator
    ties them together). None: measured at the start (the mean latent's raw render against its final image
    downscaled, PSNR >= RAW_PROXY_DB). When it does not (random-weight networks: super-resolution makes another
    picture), every phase fits the final image at `resolution` and the raw loss weighs 0.1 as much."""
    mask_weight: float = 1.0
    """Weight of |opacity - object mask| (only when the target comes with a mask)."""
    prior_weight: float = 2e-3
    """Gaussian prior on the whitened w offset (mean square of its coordinates)."""
    w_plus_steps: int = 0
    polish_steps: int = 0
    """Steps of the L-BFGS phase (POLISH_ITERATIONS iterations each) after the Adam phases."""
    polish_samples: tuple[int, int] | None = None
    """Coarse + importance samples per ray in the polish. None: each the larger of `samples` and the model's
    own, so the polish fits the picture the model shows (the golden network's seed 1 at its true latent: 16 + 16
    sit at 37 dB from its own 48 + 48 render, 48 + 48 at 51 dB; seed 0: 51 and 57 dB). A 64^2 render with its
    gradient takes 1.1-1.4x as long: super-resolution to 512^2 costs most of it."""
    newton_steps: int = 0
    """Levenberg-Marquardt steps after the polish (each renders once per whitened w coordinate and camera
    parameter: 514 renders on an EG3D model; worth it once the polish is near the picture)."""
    newton_resolution: int | None = None
    """Neural resolution of the newton phase (None: the model's own; the golden network's seed 0 at its true
    latent rendered at 64^2 stands 57 dB from the model's 128^2 picture, about what a 2-degree camera error
    costs once the latent makes up for it)."""
    w_plus_lr: float = 0.02
    w_plus_pull: float = 0.1
    tune_steps: int = 0
    tune_lr: float = 3e-4
    tune_resolution: int | None = None
    locality_weight: float = 1.0
    locality_samples: int = 1
    pca_samples: int = 2048
    seed: int = 0

    def phases(self) -> list[tuple[str, int]]:
        """The phases a fit runs, in order, with their step counts (empty ones left out)."""
        n_pose = int(round(self.steps * self.pose_fraction))
        plan = [("pose", n_pose), ("detail", self.steps - n_pose), ("w+", self.w_plus_steps)]
        plan += [("polish", self.polish_steps), ("newton", self.newton_steps), ("tune", self.tune_steps)]
        return [(name, n) for name, n in plan if n > 0]

    def as_json(self) -> dict:
        """The settings as plain JSON values."""
        d = asdict(self)
        d["samples"] = list(self.samples)
        d["polish_samples"] = None if self.polish_samples is None else list(self.polish_samples)
        return d

    def resolved(self, G: TriPlaneGenerator) -> "FitSettings":
        """These settings with what None leaves to the model filled in (what fit.json records)."""
        if self.polish_samples is not None:
            return self
        rk = G.rendering_kwargs
        own = (int(rk.get("depth_resolution", 0)), int(rk.get("depth_resolution_importance", 0)))
        return replace(self, polish_samples=(max(self.samples[0], own[0]), max(self.samples[1], own[1])))


@dataclass
class FitTarget:
    """The picture to fit: image (3, R, R) on [-1, 1] at the model's img_resolution, and optionally an object
    mask (1, R, R) on [0, 1] (object models: the silhouette the opacity should match)."""

    image: torch.Tensor
    mask: torch.Tensor | None = None


@dataclass
class FitRecord:
    """One step: index, phase, total loss, PSNR of the raw render against the target (dB), yaw, pitch, seconds."""

    step: int
    phase: str
    loss: float
    psnr: float
    yaw: float
    pitch: float
    seconds: float


@dataclass
class FitResult:
    """The fit: ws (num_ws, w_dim) float32, camera (25,), its orbit terms, PSNR of the final image in the
    input view, the tuned generator (or None), and timings."""

    ws: np.ndarray
    camera: tuple[float, ...]
    yaw: float
    pitch: float
    radius: float
    focal: float
    psnr: float
    psnr_raw: float
    seconds: float
    steps: int
    tuned: TriPlaneGenerator | None = None
    history: list[FitRecord] = field(default_factory=list)
