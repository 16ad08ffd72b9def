"""The second-edition family's parameters: names, ranges, styles, and the smooth map from a latent z to them.

A Gaussian latent z (N, 512) maps smoothly and deterministically to HeadParams: a fixed orthonormal
projection of the normalised z gives one standard-normal coordinate per entry of `LATENT_COORDS`
(family.py says how continuous parameters, style selectors and optional items read it).
"""

from __future__ import annotations

import math

import torch

from .latent_projection import Z_DIM as Z_DIM  # re-exported: the family's latent size
from .latent_projection import coordinates, orthonormal_rows

VERSION = 2
PART_NAMES = (
    "skull",
    "jaw",
    "neck",
    "nose",
    "ear_l",
    "ear_r",
    "eye_l",
    "eye_r",
    "hair",
    "beard",
    "glasses",
    "hat",
    "shirt",
)
"""Parts in the order of `part_sdfs`' last axis; ids in part masks index this tuple (-1 = background)."""
SMALL_PARTS = ("nose", "ear_l", "ear_r", "eye_l", "eye_r", "glasses", "beard")
"""The small parts whose presence the evaluation checks one by one (glasses and beard where present)."""
LIGHT = (0.35, 0.55, 0.76)
"""Fixed light direction (object frame) of the baked, view-independent shading."""
PIVOT = (0.0, -0.04, 0.0)
BOUND = 0.53
"""Everything lies within BOUND of the camera pivot and inside the unit box."""
SHARPNESS = 6.0
"""Selector sharpness: one style owns >= 0.9 of its selector for most latents, yet morphs over a few steps."""
PRUNE = 0.02
"""Selector weights below PRUNE become exactly 0 (w' = max(w - PRUNE, 0) renormalised: still continuous), and
presence weights are stretched to reach exactly 0 and 1, so absent shapes need not be evaluated at all."""

CONTINUOUS: dict[str, tuple[float, float]] = {  # parameter -> (low, high); box units unless noted
    # head
    "head_w": (0.158, 0.225),
    "head_h": (0.205, 0.265),
    "head_d": (0.205, 0.255),
    "jaw_w": (0.11, 0.172),
    "jaw_len": (0.11, 0.17),
    "chin": (0.0, 1.0),  # 0 round jaw -> 1 square jaw
    "cheek": (0.0, 1.0),  # cheek fullness
    "neck_w": (0.062, 0.098),
    # nose
    "nose_len": (0.045, 0.095),
    "nose_w": (0.024, 0.046),
    "nose_tip": (0.0, 1.0),  # bulb of the tip
    "nose_droop": (-1.0, 1.0),  # tip up (-1) or down (+1)
    # ears
    "ear_size": (0.05, 0.08),
    "ear_aspect": (0.45, 0.8),  # front-back length over height
    "ear_angle": (0.1, 0.7),  # radians the ear turns outwards
    # eyes, brows, mouth
    "eye_r": (0.03, 0.045),
    "eye_sep": (0.062, 0.088),
    "eye_y": (0.045, 0.075),
    "brow_thick": (0.006, 0.016),
    "brow_tilt": (-0.35, 0.35),  # radians, inner end down (+) or up (-)
    "lip_w": (0.038, 0.064),
    "lip_full": (0.009, 0.02),
    "smile": (-0.4, 1.0),
    "mouth_open": (-1.0, 1.0),  # open by max(0, value): about half the heads keep it closed
    # hair, beard, glasses, hat
    "hair_thick": (0.015, 0.045),
    "hair_len": (0.0, 1.0),  # length of long hair, size of a bun or an afro
    "hair_back": (0.55, 1.2),  # slope of the back hairline
    "beard_thick": (0.015, 0.035),
    "glasses_size": (0.0, 1.0),
    "lens_tint": (-1.0, 1.0),  # sunglass lenses by max(0, value)
    "hat_h": (0.0, 1.0),
    # colours (palette positions or hue/saturation/value)
    "skin": (0.0, 1.0),
    "blush": (0.0, 1.0),
    "hair_col": (0.0, 1.0),
    "dye_hue": (0.0, 1.0),
    "iris": (0.0, 1.0),
    "lip_tone": (0.0, 1.0),
    "shirt_hue": (0.0, 1.0),
    "shirt_sat": (0.0, 1.0),
    "shirt_val": (0.0, 1.0),
    "hat_hue": (0.0, 1.0),
    "frame_col": (0.0, 1.0),
}
STYLES: dict[str, tuple[tuple[str, float], ...]] = {  # selector -> (option, prior logit)
    "hair": (("bald", -0.6), ("short", 0.1), ("long", 0.0), ("bun", -0.3), ("fringe", -0.1), ("afro", -0.4)),
    "facial": (("shaven", 0.5), ("moustache", -0.4), ("goatee", -0.4), ("beard", -0.2)),
    "hat": (("bare", 0.9), ("headband", -0.4), ("beanie", -0.3), ("cap", -0.3)),
}
PRESENCE: dict[str, float] = {"glasses": 0.35, "dye": 0.2}
"""Optional items and the share of heads that have them."""


def _names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    coords = list(CONTINUOUS)
    params = list(CONTINUOUS)
    for sel, opts in STYLES.items():
        coords += [f"{sel}_{o}" for o, _ in opts]
        params += [f"{sel}_{o}" for o, _ in opts]
    coords += list(PRESENCE)
    params += list(PRESENCE)
    return tuple(coords), tuple(params)


LATENT_COORDS, PARAM_NAMES = _names()
"""One latent coordinate per continuous parameter, selector option and optional item; as many parameters."""
RANGES = {**CONTINUOUS, **{n: (0.0, 1.0) for n in PARAM_NAMES if n not in CONTINUOUS}}
_RANGES = RANGES  # the first edition's name (tests)


class HeadParams:
    """One value per head (tensors of shape (N,)) for each name in PARAM_NAMES; attribute access by name."""

    def __init__(self, values: dict[str, torch.Tensor]):
        missing = set(PARAM_NAMES) - set(values)
        if missing:
            raise ValueError(f"missing parameters {sorted(missing)}")
        self.values = {k: values[k] for k in PARAM_NAMES}

    def __getattr__(self, name: str) -> torch.Tensor:
        values = self.__dict__.get("values")
        if values is None or name not in values:
            raise AttributeError(name)
        return values[name]

    def __len__(self) -> int:
        return self.values["head_w"].shape[0]

    def index(self, i) -> "HeadParams":
        """The heads selected by an index or slice (kept batched)."""
        return HeadParams({k: v[i].reshape(-1) for k, v in self.values.items()})

    def as_dict(self, i: int = 0) -> dict[str, float]:
        """Head i's parameters as plain floats."""
        return {k: float(v[i]) for k, v in self.values.items()}

    def selector(self, name: str) -> torch.Tensor:
        """A style's soft selector weights (N, K), in STYLES order."""
        return torch.stack([self.values[f"{name}_{o}"] for o, _ in STYLES[name]], -1)


_PROJ = orthonormal_rows(20261206, len(LATENT_COORDS))
"""The fixed orthonormal rows (C, 512) that read each latent coordinate off the latent."""


def projection() -> torch.Tensor:
    """A copy of the latent-coordinate directions (C, 512), float32 (the training's informed mapping init)."""
    return _PROJ.float().clone()


def params_from_z(z: torch.Tensor) -> HeadParams:
    """Latents (N, 512) -> HeadParams: smooth and deterministic; continuous parameters ~uniform on their range."""
    u = coordinates(z, _PROJ)
    col = {name: u[:, k] for k, name in enumerate(LATENT_COORDS)}
    vals: dict[str, torch.Tensor] = {}
    for name, (lo, hi) in CONTINUOUS.items():
        vals[name] = (lo + (hi - lo) * 0.5 * (1 + torch.erf(col[name] / math.sqrt(2)))).float()
    for sel, opts in STYLES.items():
        logits = torch.stack([col[f"{sel}_{o}"] + prior for o, prior in opts], -1)
        w = (torch.softmax(SHARPNESS * logits, -1) - PRUNE).clamp_min(0)
        w = (w / w.sum(-1, keepdim=True)).float()
        for k, (o, _) in enumerate(opts):
            vals[f"{sel}_{o}"] = w[:, k]
    normal = torch.distributions.Normal(0.0, 1.0)
    for item, share in PRESENCE.items():
        cut = float(normal.icdf(torch.tensor(1 - share)))
        g = torch.sigmoid(SHARPNESS * (col[item] - cut))
        vals[item] = ((g - PRUNE) / (1 - 2 * PRUNE)).clamp(0, 1).float()
    return HeadParams(vals)
