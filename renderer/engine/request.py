"""What a frame is (RenderRequest: frozen, hashable, the cache and de-duplication key) and what it gives.

A request is a frozen description of a frame (latent, truncation, cameras, render options);
`stamp` orders requests so a consumer can drop stale results. RenderResult holds one request's
outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from ..camera import Camera


@dataclass(frozen=True)
class LatentSpec:
    """Which latent to render.

    A fractional `seed` blends the w of its two neighbouring integer seeds (as the reference
    visualizer does when dragging the seed). With `seed_b`, the latent moves from `seed` (t=0)
    to `seed_b` (t=1): linearly in W, or along the great circle in Z (slerp, then mapping).
    `mix_seed` replaces ws[mix_start:mix_end] with that seed's (style mixing).
    With `blend_to`, the latent above (seed, seed_b, t) moves on to that second latent (blend_t=0: this
    one, 1: `blend_to`'s seed/seed_b/t), again in `space` (W lerp or Z slerp); camera paths use it between
    keyframes that are themselves A/B blends. Mixing is this spec's; `blend_to`'s own mixing is ignored.
    `custom` names ws registered with the engine (`RenderEngine.set_custom_latent`, e.g. a photo's fitted
    latent): they are rendered as they are (no mapping, no truncation); the seed fields are then unused.
    """

    seed: float = 0.0
    seed_b: float | None = None
    t: float = 0.0
    space: Literal["w", "z"] = "w"
    mix_seed: int | None = None
    mix_start: int = 7
    mix_end: int | None = None
    blend_to: LatentSpec | None = None
    blend_t: float = 0.0
    custom: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.blend_to, dict):  # read back from JSON (asdict nests it)
            object.__setattr__(self, "blend_to", LatentSpec(**self.blend_to))


@dataclass(frozen=True)
class RenderRequest:
    """A frozen frame description; `stamp` orders requests so stale results can be dropped."""

    latent: LatentSpec
    camera: Camera
    cond_camera: Camera
    psi: float = 1.0
    cutoff: int | None = None
    noise_mode: Literal["const", "random", "none"] = "const"
    sampling: Literal["deterministic", "stochastic"] = "deterministic"
    neural_rendering_resolution: int | None = None
    depth_multiplier: float = 1.0
    importance_multiplier: float | None = None
    superresolution: bool = True
    rng_seed: int | None = None
    """Seed of the stochastic sampler's draws (reproducible frames); None = the global RNG."""
    bf16: bool = False
    """Render and super-resolve under bf16 autocast: a cheaper, less exact preview (never the full-quality frame)."""
    stamp: int = 0


@dataclass
class RenderResult:
    """Outputs of one request, on the model's device, batch dimension removed."""

    stamp: int
    image: torch.Tensor | None
    """(3, R, R) final image on [-1, 1] (not clamped); None when super-resolution was skipped."""
    raw: torch.Tensor
    """(3, r, r) volume-rendered RGB on [-1, 1]."""
    depth: torch.Tensor
    """(1, r, r) distance along the ray."""
    alpha: torch.Tensor
    """(1, r, r) accumulated opacity."""
    ws: torch.Tensor
    timings: dict[str, float] = field(default_factory=dict)
    """Milliseconds per stage: mapping, backbone, render, superres (0 when cached/skipped)."""
    backbone_ran: bool = False
    nonfinite: bool = False
    """True if any output held NaN or inf."""
    planes: torch.Tensor | None = None
    """(1, 3, 32, P, P) tri-planes the frame was rendered from (for mesh extraction without the backbone)."""
    features: torch.Tensor | None = None
    """(32, r, r) the volume-rendered feature image super-resolution starts from (raw RGB is its first three)."""
