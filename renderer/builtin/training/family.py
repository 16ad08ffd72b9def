"""The built-in procedural family, second edition: varied stylised heads as an SDF + colour field, rendered exactly.

World frame as in EG3D: y up, the face looks along +z, the head (with a bust) sits in the unit box
around the origin and within 0.53 of the camera pivot, so the model's ray range bounds it. A
Gaussian latent z (N, 512) maps smoothly and deterministically to HeadParams: a fixed orthonormal
projection of the normalised z gives one standard-normal coordinate per entry of `LATENT_COORDS`;

* a continuous parameter is Phi(u) on its range (`CONTINUOUS`);
* a discrete style (`STYLES`: hair, facial hair, hat) is a soft selector, softmax(SHARPNESS (u_k + prior_k))
  over its options, and every option's shape is blended by those weights (a convex combination of
  1-Lipschitz SDFs is 1-Lipschitz), so interpolating latents morphs one style into another with no pop;
* an optional item (`PRESENCE`: glasses, dyed hair) has a weight sigmoid(SHARPNESS (u - Phi^-1(1 - share)));
  an absent item's SDF is pushed inside the head or shrunk below zero thickness, continuously.

Every query is batched: points (N, M, 3) for N heads. Renders are exact (sphere tracing, one ray per
pixel centre, like the volume renderer), so density, colour, depth, silhouettes and part masks are
known for any latent and camera. The first edition's family is family_v1 (the shipped first-edition
weights were trained on it; `for_model` picks the one a checkpoint was trained on).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType

import torch
import torch.nn.functional as F

VERSION = 2
Z_DIM = 512
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


def _projection() -> torch.Tensor:
    """The fixed orthonormal rows (C, 512) that read each latent coordinate off the latent."""
    g = torch.Generator().manual_seed(20261206)
    q, _ = torch.linalg.qr(torch.randn(Z_DIM, len(LATENT_COORDS), generator=g, dtype=torch.float64))
    return q.t().contiguous()


_PROJ = _projection()


def projection() -> torch.Tensor:
    """A copy of the latent-coordinate directions (C, 512), float32 (the training's informed mapping init)."""
    return _PROJ.float().clone()


def params_from_z(z: torch.Tensor) -> HeadParams:
    """Latents (N, 512) -> HeadParams: smooth and deterministic; continuous parameters ~uniform on their range."""
    z = torch.as_tensor(z, dtype=torch.float64).reshape(-1, Z_DIM)
    zn = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()  # as the mapping network's normalisation
    u = zn @ _PROJ.to(zn.device).t()
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


# ----------------------------------------------------------------- SDF primitives
def _ellipsoid(p: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Approximate (bound-preserving near the surface) SDF of an origin-centred ellipsoid, radii r (..., 3)."""
    k0 = (p / r).norm(dim=-1)
    k1 = (p / (r * r)).norm(dim=-1).clamp_min(1e-9)
    return k0 * (k0 - 1) / k1


def _round_box(p: torch.Tensor, half: torch.Tensor, rounding: float) -> torch.Tensor:
    """SDF of an origin-centred box with half extents `half` (..., 3) and rounded edges."""
    q = p.abs() - (half - rounding)
    return q.clamp_min(0).norm(dim=-1) + q.amax(-1).clamp_max(0) - rounding


def _capsule(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor, r: float) -> torch.Tensor:
    """SDF of the segment a-b (N, 1, 3) thickened by r."""
    pa, ba = p - a, b - a
    h = ((pa * ba).sum(-1, keepdim=True) / (ba * ba).sum(-1, keepdim=True)).clamp(0, 1)
    return (pa - ba * h).norm(dim=-1) - r


def _torus_z(p: torch.Tensor, big: torch.Tensor, small: float) -> torch.Tensor:
    """SDF of an origin-centred ring in the xy plane: radius big (N, 1), tube radius small."""
    q = torch.stack([p[..., :2].norm(dim=-1) - big, p[..., 2]], -1)
    return q.norm(dim=-1) - small


def _torus_y(p: torch.Tensor, big: torch.Tensor, small: float) -> torch.Tensor:
    """SDF of an origin-centred ring in the xz plane (around the y axis)."""
    q = torch.stack([torch.stack([p[..., 0], p[..., 2]], -1).norm(dim=-1) - big, p[..., 1]], -1)
    return q.norm(dim=-1) - small


def _smin(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """Polynomial smooth minimum (blend width k)."""
    h = (0.5 + 0.5 * (b - a) / k).clamp(0, 1)
    return b + (a - b) * h - k * h * (1 - h)


def _col(t: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N, 1) to broadcast against the points axis."""
    return t[:, None]


def _vec(x, y, z) -> torch.Tensor:
    """Stack per-head coordinates into (N, 1, 3)."""
    n = max(v.shape[0] for v in (x, y, z) if torch.is_tensor(v))
    parts = [v if torch.is_tensor(v) else torch.full((n,), float(v)) for v in (x, y, z)]
    return torch.stack(parts, -1)[:, None, :]


def _front_z(c: torch.Tensor, r: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z of an ellipsoid's front surface at (x, y) (its centre's z if (x, y) lies outside); c, r (N, 3)."""
    q = 1 - ((x - c[..., 0]) / r[..., 0]) ** 2 - ((y - c[..., 1]) / r[..., 1]) ** 2
    return c[..., 2] + r[..., 2] * q.clamp_min(0).sqrt()


def _mirror(v: torch.Tensor) -> torch.Tensor:
    """v (..., 3) mirrored in the x = 0 plane."""
    return v * torch.tensor([-1.0, 1.0, 1.0], device=v.device)


class _Layout:
    """Derived per-head placements: centres (N, 1, 3), radii (N, 1, 3) or (N, 1), heights (N, 1)."""

    def __init__(self, p: HeadParams):
        n = len(p)
        zero = torch.zeros(n)
        self.skull_c = _vec(zero, 0.07, -0.02)
        self.skull_r = torch.stack([p.head_w, p.head_h, p.head_d], -1)[:, None]
        self.jaw_c = _vec(zero, -0.02 - p.jaw_len * 0.6, 0.035)
        self.jaw_r = torch.stack([p.jaw_w, p.jaw_len, p.head_d * 0.72], -1)[:, None]
        sc, sr, jc, jr = self.skull_c[:, 0], self.skull_r[:, 0], self.jaw_c[:, 0], self.jaw_r[:, 0]

        def face_z(x, y):
            return torch.maximum(_front_z(sc, sr, x, y), _front_z(jc, jr, x, y))

        nose_y = torch.full((n,), -0.035)
        fz = face_z(zero, nose_y)
        self.nose_c = _vec(zero, nose_y, fz - 0.02 + p.nose_len * 0.45)
        self.nose_r = torch.stack([p.nose_w * 0.85, 0.05 + 0.3 * p.nose_len, p.nose_len * 0.5 + 0.01], -1)[:, None]
        tip_r = p.nose_w * (0.55 + 0.35 * p.nose_tip)
        self.tip_c = _vec(zero, nose_y - 0.035 - 0.012 * p.nose_droop, fz + p.nose_len * 0.8 - tip_r)
        self.tip_r = _col(tip_r)
        self.ear_c = _vec(p.head_w * 0.97, -0.02 + 0.0 * p.ear_size, -0.03)
        self.ear_r = torch.stack([torch.full((n,), 0.014), p.ear_size, p.ear_size * p.ear_aspect], -1)[:, None]
        eye_front = face_z(p.eye_sep, p.eye_y)
        self.eye_c = _vec(p.eye_sep, p.eye_y, eye_front - 0.15 * p.eye_r)
        self.eye_r = _col(p.eye_r)
        self.mouth_y = _col(self.jaw_c[:, 0, 1] + 0.35 * self.jaw_r[:, 0, 1])
        self.mouth_z = _col(face_z(zero, self.mouth_y[:, 0]))
        self.chin_y = _col(self.jaw_c[:, 0, 1] - 0.75 * self.jaw_r[:, 0, 1])
        self.chin_z = _col(face_z(zero, self.chin_y[:, 0]))
        # glasses: rings in front of the eyes, their outer edge inside the head's width
        ring = (p.eye_r * (1.2 + 0.45 * p.glasses_size)).minimum(0.96 * p.head_w - p.eye_sep).clamp_min(p.eye_r + 0.006)
        self.ring_r = _col(ring)
        self.ring_c = _vec(p.eye_sep, p.eye_y, self.eye_c[:, 0, 2] + p.eye_r + 0.022)
        # hair: its thickness per style, blended like the shapes (the hat sits on it)
        sel = p.selector("hair")
        thick = torch.stack(
            [torch.full((n,), -0.01), 0.6 * p.hair_thick, p.hair_thick, 0.7 * p.hair_thick, p.hair_thick,
             0.065 + 0.035 * p.hair_len],
            -1,
        )  # fmt: skip
        self.hair_thick = (sel * thick).sum(-1)
        self.hair_c = _vec(zero, 0.085, -0.03)


def _ear(q: torch.Tensor, angle: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Ear SDF in its local frame: a thin ellipsoid turned by `angle` (N, 1) about y (outwards, backwards)."""
    ca, sa = torch.cos(angle), torch.sin(angle)
    x = ca * q[..., 0] - sa * q[..., 2]
    z = sa * q[..., 0] + ca * q[..., 2]
    return _ellipsoid(torch.stack([x, q[..., 1], z], -1), r)


def _cap(x: torch.Tensor, L: _Layout, thick: torch.Tensor, hairline: torch.Tensor, back: torch.Tensor):
    """A hair cap: the skull inflated by thick (N, 1), above a hairline at height `hairline` (N, 1) in front
    that drops with slope `back` (N, 1) towards the back."""
    shell = _ellipsoid(x - L.hair_c, L.skull_r + thick[..., None])
    front = (hairline + 0.55 * x[..., 2] - x[..., 1]) / math.hypot(1, 0.55)
    rear = (hairline + back * x[..., 2] - x[..., 1]) / torch.sqrt(1 + back**2)
    return torch.maximum(shell, torch.minimum(front, rear))


NONE_OFFSET = 0.12
"""A style's 'none' option (bald, shaven, bare) adds NONE_OFFSET x its weight to the other options' blended SDF:
more than the thickest option (an afro, 0.1), so the shape has vanished before the weight reaches 1."""


def _blend(p: HeadParams, name: str, m: int, shapes: dict[str, Callable[[], torch.Tensor]]) -> torch.Tensor:
    """A style's SDF: its options' SDFs weighted by the selector renormalised without the first ('none')
    option, whose weight instead offsets the result outwards (NONE_OFFSET); options no head in the batch uses
    are skipped (their weight is exactly 0), and a head with no style at all gets NONE_OFFSET everywhere."""
    w = p.selector(name)
    rest = (1 - w[:, 0]).clamp_min(1e-6)
    out = _col(NONE_OFFSET * w[:, 0])
    for k, (option, _) in enumerate(STYLES[name]):
        if k > 0 and bool((w[:, k] > 0).any()):
            out = out + _col(w[:, k] / rest) * shapes[option]()
    return out.expand(-1, m) if out.shape[1] == 1 else out


def _hair(x: torch.Tensor, p: HeadParams, L: _Layout) -> torch.Tensor:
    """The hair's SDF: every style's shape blended by the hair selector."""
    n = len(p)
    zero = torch.zeros(n)
    t, ln, back = _col(p.hair_thick), _col(p.hair_len), _col(p.hair_back)
    hl = torch.full_like(t, 0.115)

    def long_() -> torch.Tensor:
        drop = 0.12 + 0.2 * p.hair_len
        c = _vec(zero, 0.06 - drop * 0.8, -0.07)
        r = torch.stack([p.head_w + p.hair_thick + 0.012, 0.2 + drop * 0.8, p.head_d * 0.8 + p.hair_thick], -1)
        curtain = torch.maximum(_ellipsoid(x - c, r[:, None]), x[..., 2] - 0.02 + 0.25 * (x[..., 1] - 0.05))
        curtain = torch.maximum(curtain, -0.46 - x[..., 1])
        return _smin(_cap(x, L, t, hl, back), curtain, 0.03)

    def bun() -> torch.Tensor:
        c = _vec(zero, 0.17 + 0.02 * p.hair_len, -0.02 - p.head_d - 0.02)
        return _smin(_cap(x, L, 0.7 * t, hl + 0.005, back), (x - c).norm(dim=-1) - (0.05 + 0.035 * ln), 0.03)

    return _blend(
        p,
        "hair",
        x.shape[1],
        {
            "short": lambda: _cap(x, L, 0.6 * t, hl + 0.01, back),
            "long": long_,
            "bun": bun,
            "fringe": lambda: _cap(x, L, t, hl - 0.075, back),
            "afro": lambda: _cap(x, L, 0.065 + 0.035 * ln, hl - 0.005, back * 0.7),
        },
    )


def _facial_hair(x: torch.Tensor, p: HeadParams, L: _Layout) -> torch.Tensor:
    """Facial hair: shaven / moustache / goatee / full beard, blended by the selector."""
    n = len(p)
    zero = torch.zeros(n)
    t = _col(p.beard_thick)
    w = p.selector("facial")
    if not bool((w[:, 1:] > 0).any()):
        return torch.full(x.shape[:2], NONE_OFFSET)
    mo_c = _vec(zero, L.mouth_y[:, 0] + p.lip_full + 0.013, L.mouth_z[:, 0] + 0.006)
    mo_r = torch.stack([p.lip_w * 0.95, torch.full((n,), 0.013), torch.full((n,), 0.022)], -1)[:, None]
    moustache = _ellipsoid(x - mo_c, mo_r)
    mouth_hole = _ellipsoid(
        x - _vec(zero, L.mouth_y[:, 0], L.mouth_z[:, 0]),
        torch.stack([p.lip_w + 0.008, p.lip_full + 0.008, torch.full((n,), 0.09)], -1)[:, None],
    )
    shell = _ellipsoid(x - L.jaw_c, L.jaw_r + t[..., None])

    def beard() -> torch.Tensor:
        below = x[..., 1] - (L.mouth_y + 0.035 - 0.4 * x[..., 0].abs())
        d = torch.maximum(torch.maximum(shell, below), -0.02 - x[..., 2])
        return _smin(torch.maximum(d, -mouth_hole), moustache, 0.015)

    def goatee() -> torch.Tensor:
        chin = (x - _vec(zero, L.chin_y[:, 0] + 0.015, L.chin_z[:, 0] - 0.02)).norm(dim=-1) - 0.06
        return _smin(torch.maximum(torch.maximum(shell, chin), -mouth_hole), moustache, 0.015)

    return _blend(
        p,
        "facial",
        x.shape[1],
        {
            "moustache": lambda: moustache,
            "goatee": goatee,
            "beard": beard,
        },
    )


def _glasses(x: torch.Tensor, p: HeadParams, L: _Layout) -> torch.Tensor:
    """Glasses: two rings, a bridge and temples to the ears (tube radius 8 mm), optional dark lenses; absent
    ones shrink below zero thickness (no head with glasses: the constant 0.02, beyond the 1.2 cm that
    the training's density targets resolve)."""
    if not bool((p.glasses > 0).any()):
        return torch.full(x.shape[:2], 0.02)
    n = len(p)
    zero = torch.zeros(n)
    xm = torch.cat([x[..., :1].abs(), x[..., 1:]], -1)  # mirror symmetric
    q = xm - L.ring_c
    frame = _torus_z(q, L.ring_r, 0.008)
    centre = _vec(zero, L.ring_c[:, 0, 1] + 0.012, L.ring_c[:, 0, 2] + 0.004)
    bridge = _capsule(xm, centre, L.ring_c - _vec(L.ring_r[:, 0], -0.006, 0.0), 0.007)
    outer = L.ring_c + _vec(L.ring_r[:, 0], 0.0, 0.0)
    hinge = L.ear_c + _vec(zero + 0.015, 0.035, 0.02)
    temple = _capsule(xm, outer, hinge, 0.007)
    frame = torch.minimum(torch.minimum(frame, bridge), temple)
    tint = _col(p.lens_tint.clamp_min(0))
    lens = torch.maximum(q[..., :2].norm(dim=-1) - L.ring_r, q[..., 2].abs() - 0.004)
    lens = lens + 0.012 * (1 - 3 * tint).clamp_min(0)
    worn = _col(p.glasses)
    # a head without glasses gets exactly the constant, as when it is evaluated alone (batch-independent)
    return torch.where(worn > 0, torch.minimum(frame, lens) + 0.02 * (1 - worn), 0.02)


def _hat(x: torch.Tensor, p: HeadParams, L: _Layout) -> torch.Tensor:
    """Hats on the hair: bare / headband / beanie / cap with a brim, blended by the selector."""
    n = len(p)
    zero = torch.zeros(n)
    over = L.hair_thick.clamp_min(0)[:, None, None] + 0.014

    def base() -> torch.Tensor:
        return _ellipsoid(x - L.hair_c, L.skull_r + over)

    def cap() -> torch.Tensor:
        crown = torch.maximum(base(), 0.2 + 0.15 * x[..., 2] - x[..., 1])
        brim_c = _vec(zero, 0.205 + 0.15 * L.skull_r[:, 0, 2], L.skull_r[:, 0, 2] + 0.03)
        brim_r = torch.stack([0.8 * p.head_w, torch.full((n,), 0.02), torch.full((n,), 0.12)], -1)[:, None]
        return torch.minimum(crown, _ellipsoid(x - brim_c, brim_r))

    band_y = 0.19 + 0.03 * _col(p.hat_h)
    beanie_y = 0.2 - 0.05 * _col(p.hat_h)
    return _blend(
        p,
        "hat",
        x.shape[1],
        {
            "headband": lambda: torch.maximum(base(), (x[..., 1] - band_y - 0.3 * x[..., 2]).abs() - 0.022),
            "beanie": lambda: torch.maximum(
                _ellipsoid(x - L.hair_c, L.skull_r + over + 0.006), beanie_y + 0.3 * x[..., 2] - x[..., 1]
            ),
            "cap": cap,
        },
    )


def _shirt(x: torch.Tensor, p: HeadParams) -> torch.Tensor:
    """A bust: shoulders and a rolled collar round the neck, cut to the bound and the box."""
    n = len(p)
    zero = torch.zeros(n)
    shoulders = _ellipsoid(x - _vec(zero, -0.6, -0.05), torch.tensor([0.4, 0.19, 0.2]).expand(n, 1, 3))
    collar = _torus_y(x - _vec(zero, -0.385, -0.045), _col(p.neck_w) + 0.01, 0.018)
    d = _smin(shoulders, collar, 0.03)
    d = torch.maximum(d, (x - torch.tensor(PIVOT)).norm(dim=-1) - BOUND + 0.005)
    return torch.maximum(d, -0.495 - x[..., 1])


def part_sdfs(points: torch.Tensor, p: HeadParams) -> torch.Tensor:
    """points (N, M, 3) -> signed distance bound of each part (N, M, len(PART_NAMES))."""
    L = _Layout(p)
    x = points
    skull = _ellipsoid(x - L.skull_c, L.skull_r)
    jaw_e = _ellipsoid(x - L.jaw_c, L.jaw_r)
    jaw_b = _round_box(x - L.jaw_c, L.jaw_r * torch.tensor([0.92, 0.95, 0.9]), 0.045)
    chin = _col(p.chin)
    jaw = (1 - chin) * jaw_e + chin * jaw_b
    cheek_c = _vec(0.55 * p.jaw_w, -0.005 + 0.0 * p.jaw_w, L.jaw_c[:, 0, 2] + 0.55 * L.jaw_r[:, 0, 2])
    xm = torch.cat([x[..., :1].abs(), x[..., 1:]], -1)
    cheek = (xm - cheek_c).norm(dim=-1) - (0.045 + 0.02 * _col(p.cheek))
    jaw = _smin(jaw, cheek, 0.04)
    # neck: vertical capped cylinder under the jaw
    q = x - _vec(torch.zeros(len(p)), -0.32, -0.045)
    radial = torch.stack([q[..., 0], q[..., 2]], -1).norm(dim=-1) - _col(p.neck_w)
    vertical = q[..., 1].abs() - 0.14
    neck = torch.maximum(radial, vertical).clamp_max(0) + torch.stack(
        [radial.clamp_min(0), vertical.clamp_min(0)], -1
    ).norm(dim=-1)
    nose = _smin(_ellipsoid(x - L.nose_c, L.nose_r), (x - L.tip_c).norm(dim=-1) - L.tip_r, 0.015)
    angle = _col(p.ear_angle)
    ear_l = _ear(_mirror(_mirror(x) - L.ear_c), -angle, L.ear_r)
    ear_r = _ear(x - L.ear_c, angle, L.ear_r)
    eye_l = (x - _mirror(L.eye_c)).norm(dim=-1) - L.eye_r
    eye_r = (x - L.eye_c).norm(dim=-1) - L.eye_r
    hair = _hair(x, p, L)
    beard = _facial_hair(x, p, L)
    glasses = _glasses(x, p, L)
    hat = _hat(x, p, L)
    shirt = _shirt(x, p)
    return torch.stack([skull, jaw, neck, nose, ear_l, ear_r, eye_l, eye_r, hair, beard, glasses, hat, shirt], -1)


def combine(parts: torch.Tensor) -> torch.Tensor:
    """The head's SDF from the part SDFs (N, M, P): skin parts blended smoothly, the rest added crisply."""
    skull, jaw, neck, nose, ear_l, ear_r, eye_l, eye_r, hair, beard, glasses, hat, shirt = parts.unbind(-1)
    d = _smin(skull, jaw, 0.06)
    d = _smin(d, neck, 0.05)
    d = _smin(d, nose, 0.02)
    d = _smin(d, torch.minimum(ear_l, ear_r), 0.012)
    d = torch.minimum(d, torch.minimum(eye_l, eye_r))
    d = torch.minimum(d, torch.minimum(hair, beard))
    return torch.minimum(torch.minimum(d, glasses), torch.minimum(hat, shirt))


def sdf(points: torch.Tensor, p: HeadParams) -> torch.Tensor:
    """Signed distance bound (N, M): negative inside the head. Heads are evaluated one by one, each with only
    the style options it wears."""
    if len(p) == 1:
        return combine(part_sdfs(points, p))
    return torch.cat([combine(part_sdfs(points[i : i + 1], p.index([i]))) for i in range(len(p))])


# ----------------------------------------------------------------- colour
def _palette(t: torch.Tensor, colours: list[tuple[float, float, float]], cyclic: bool = False) -> torch.Tensor:
    """(N,) in [0, 1] -> (N, 3): piecewise-linear walk along a list of colours (round the list if cyclic)."""
    c = torch.tensor(colours + colours[:1] if cyclic else colours)
    x = t.clamp(0, 1) * (len(c) - 1)
    i = x.floor().long().clamp(max=len(c) - 2)
    f = (x - i)[:, None]
    return c[i] * (1 - f) + c[i + 1] * f


def _hsv(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """HSV (N,) each in [0, 1] -> RGB (N, 3), continuous in h round the circle."""
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], -1)
    return v[:, None] - v[:, None] * s[:, None] * torch.minimum(k, 4 - k).clamp(0, 1)


SKIN = [(1.0, 0.87, 0.77), (0.95, 0.77, 0.63), (0.85, 0.63, 0.47), (0.69, 0.47, 0.32), (0.5, 0.33, 0.22),
        (0.3, 0.19, 0.13)]  # fmt: skip
HAIR = [(0.05, 0.04, 0.04), (0.1, 0.07, 0.05), (0.2, 0.12, 0.07), (0.36, 0.22, 0.11), (0.55, 0.38, 0.22),
        (0.58, 0.22, 0.08), (0.85, 0.42, 0.15), (0.9, 0.76, 0.45), (0.95, 0.92, 0.82), (0.62, 0.62, 0.64)]  # fmt: skip
"""Natural hair, dark to light (black and browns take half the range), then grey."""
DYE = [(0.15, 0.35, 0.95), (0.6, 0.2, 0.85), (0.98, 0.35, 0.7), (0.2, 0.8, 0.45), (0.1, 0.75, 0.85)]
IRIS = [(0.25, 0.13, 0.05), (0.45, 0.28, 0.1), (0.5, 0.45, 0.15), (0.2, 0.5, 0.25), (0.2, 0.42, 0.8),
        (0.55, 0.6, 0.65)]  # fmt: skip
FRAMES = [(0.05, 0.05, 0.05), (0.4, 0.2, 0.08), (0.85, 0.7, 0.3), (0.8, 0.1, 0.12), (0.15, 0.25, 0.7)]


def palettes(p: HeadParams) -> dict[str, torch.Tensor]:
    """Per-head base colours (N, 3) in [0, 1]: skin, lips, hair (dyed or not), brows, iris, shirt, hat, frames."""
    skin = _palette(p.skin, SKIN)
    natural = _palette(p.hair_col, HAIR)
    dye = _col(p.dye)
    hair = natural * (1 - dye) + _palette(p.dye_hue, DYE, cyclic=True) * dye
    lips = skin * torch.tensor([0.85, 0.5, 0.48])
    lipstick = torch.tensor([0.72, 0.08, 0.15]).expand_as(skin)
    lips = lips + (lipstick - lips) * _col((p.lip_tone - 0.7).clamp_min(0) / 0.3)
    return {
        "skin": skin,
        "lips": lips,
        "hair": hair,
        "brow": natural * 0.8,
        "beard": natural * 0.9,
        "iris": _palette(p.iris, IRIS),
        "shirt": _hsv(p.shirt_hue, 0.15 + 0.75 * p.shirt_sat, 0.2 + 0.75 * p.shirt_val),
        "hat": _hsv(p.hat_hue, torch.full_like(p.hat_hue, 0.7), torch.full_like(p.hat_hue, 0.8)),
        "frames": _palette(p.frame_col, FRAMES),
    }


def normals(points: torch.Tensor, p: HeadParams, h: float = 1e-3) -> torch.Tensor:
    """Unit SDF gradient (N, M, 3) by central differences."""
    offs = torch.eye(3) * h
    g = [sdf(points + offs[k], p) - sdf(points - offs[k], p) for k in range(3)]
    return F.normalize(torch.stack(g, -1), dim=-1)


def _skin_colour(x: torch.Tensor, p: HeadParams, L: _Layout, pal: dict[str, torch.Tensor]) -> torch.Tensor:
    """Skin with painted lips (smile, open mouth), brows and blush on the front of the face."""
    skin = pal["skin"][:, None].expand(-1, x.shape[1], -1)
    front = torch.sigmoid((x[..., 2] - 0.05) / 0.01)[..., None]
    lip_w, lip_h = _col(p.lip_w), _col(p.lip_full)
    my = x[..., 1] - L.mouth_y - _col(p.smile) * 6.0 * x[..., 0] ** 2  # corners up when smiling
    lip = (x[..., 0] / lip_w) ** 2 + (my / lip_h) ** 2
    lip_w8 = torch.sigmoid((1 - lip) / 0.12)[..., None] * front
    opening = _col(p.mouth_open.clamp_min(0)) * 0.85 * lip_h + 1e-4
    inside = (x[..., 0] / (0.8 * lip_w)) ** 2 + (my / opening) ** 2
    inside_w = torch.sigmoid((1 - inside) / 0.12)[..., None] * front
    teeth_w = torch.sigmoid((my - 0.3 * opening) / 0.002)[..., None] * inside_w
    cheek = ((x[..., 0].abs() - 0.6 * _col(p.jaw_w)) ** 2 + (x[..., 1] + 0.01) ** 2) / 0.045**2
    blush_w = (0.35 * _col(p.blush) * torch.exp(-cheek))[..., None] * front
    c = skin + (torch.tensor([0.85, 0.35, 0.35]) * skin.amax(-1, keepdim=True) - skin) * blush_w
    c = c + (pal["lips"][:, None] - c) * lip_w8
    c = c + (torch.tensor([0.18, 0.04, 0.05]) - c) * inside_w
    c = c + (torch.tensor([0.95, 0.93, 0.88]) - c) * teeth_w
    # brows: a tilted band above each eye
    tilt = _col(p.brow_tilt)
    bx = x[..., 0].abs() - L.eye_c[..., 0]
    by = x[..., 1] - L.eye_c[..., 1] - 1.6 * L.eye_r - 0.008 + tilt * bx
    brow = (bx / 0.042) ** 2 + (by / _col(p.brow_thick)) ** 2
    brow_w = torch.sigmoid((1 - brow) / 0.15)[..., None] * front
    return c + (pal["brow"][:, None] - c) * brow_w


def albedo(points: torch.Tensor, p: HeadParams, parts: torch.Tensor) -> torch.Tensor:
    """Unshaded colour (N, M, 3): each part group's colour, blended softly by the part SDFs."""
    pal = palettes(p)
    L = _Layout(p)
    x = points
    skin_c = _skin_colour(x, p, L, pal)
    ecen = torch.where(x[..., :1] < 0, _mirror(L.eye_c), L.eye_c)
    cos = F.normalize(x - ecen, dim=-1)[..., 2]
    iris_w = torch.sigmoid((cos - 0.80) / 0.02)[..., None]
    pupil_w = torch.sigmoid((cos - 0.94) / 0.01)[..., None]
    eye_c = torch.full_like(skin_c, 0.97)
    eye_c = eye_c + (pal["iris"][:, None] - eye_c) * iris_w
    eye_c = eye_c + (0.04 - eye_c) * pupil_w
    ones = torch.ones_like(skin_c)
    lens_dark = torch.tensor([0.08, 0.09, 0.1]) * ones
    lens_w = torch.sigmoid((L.ring_r - 0.006 - (x[..., :2].abs() - L.ring_c[..., :2]).norm(dim=-1)) / 0.002)
    glasses_c = pal["frames"][:, None] * ones
    glasses_c = glasses_c + (lens_dark - glasses_c) * lens_w[..., None]
    groups = torch.stack(
        [
            parts[..., :6].amin(-1),
            parts[..., 6:8].amin(-1),
            parts[..., 8],
            parts[..., 9],
            parts[..., 10],
            parts[..., 11],
            parts[..., 12],
        ],
        -1,
    )
    colours = torch.stack(
        [
            skin_c,
            eye_c,
            pal["hair"][:, None] * ones,
            pal["beard"][:, None] * ones,
            glasses_c,
            pal["hat"][:, None] * ones,
            pal["shirt"][:, None] * ones,
        ],
        -2,
    )
    w = torch.softmax(-groups / 0.002, -1)[..., None]
    return (w * colours).sum(-2)


def shade(n: torch.Tensor) -> torch.Tensor:
    """View-independent wrapped Lambert factor (N, M, 1) in [0.45, 1] for unit normals n."""
    light = F.normalize(torch.tensor(LIGHT), dim=0)
    return 0.45 + 0.55 * (0.5 + 0.5 * (n * light).sum(-1, keepdim=True))


def query(points: torch.Tensor, p: HeadParams, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """points (N, M, 3) -> 'sdf' (N, M), 'rgb' (N, M, 3) shaded colour in [0, 1], 'part' (N, M) id; with a
    mask (N, M), colour and part only where it is set (0 and -1 elsewhere). Heads are evaluated one by one."""
    points = points.float()
    if len(p) > 1 or mask is not None:
        d = sdf(points, p)
        rgb = torch.zeros_like(points)
        part = torch.full(d.shape, -1, dtype=torch.long)
        for i in range(len(p)):
            idx = torch.arange(points.shape[1]) if mask is None else mask[i].nonzero()[:, 0]
            if len(idx):
                q = query(points[i, idx][None], p.index([i]))
                rgb[i, idx], part[i, idx] = q["rgb"][0], q["part"][0]
        return {"sdf": d, "rgb": rgb, "part": part}
    parts = part_sdfs(points, p)
    d = combine(parts)
    rgb = (albedo(points, p, parts) * shade(normals(points, p))).clamp(0, 1)
    return {"sdf": d, "rgb": rgb, "part": parts.argmin(-1)}


def part_centres(p: HeadParams) -> torch.Tensor:
    """(N, 7, 3) centres of the small parts in SMALL_PARTS order (training aims rays and points there)."""
    L = _Layout(p)
    glasses = L.ring_c
    beard = _vec(torch.zeros(len(p)), L.chin_y[:, 0] + 0.03, L.chin_z[:, 0])
    return torch.cat([L.nose_c, _mirror(L.ear_c), L.ear_c, _mirror(L.eye_c), L.eye_c, glasses, beard], 1)


# ----------------------------------------------------------------- exact rendering
def trace(
    origins: torch.Tensor,
    dirs: torch.Tensor,
    p: HeadParams,
    t_start: float,
    t_end: float,
    iters: int = 96,
    eps: float = 2e-4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sphere-trace rays (N, M, 3) -> distance to the first hit (N, M) and hit mask (N, M).

    Rays start where they enter the bounding sphere (BOUND round PIVOT; rays that miss it are misses). All
    heads march together: each step evaluates the still-marching rays of every head at once, each ray with
    its own head's parameters (a head's unused style options weigh exactly 0 there), so the number of SDF
    calls does not grow with the batch."""
    oc = origins - torch.tensor(PIVOT)
    b = (oc * dirs).sum(-1)
    disc = b * b - (oc * oc).sum(-1) + BOUND**2
    t = (-b - disc.clamp_min(0).sqrt()).clamp_min(float(t_start))
    hit = torch.zeros_like(t, dtype=torch.bool)
    t_flat, hit_flat = t.view(-1), hit.view(-1)
    act = (disc.reshape(-1) > 0).nonzero()[:, 0]
    head = act // origins.shape[1]
    ti, o, d = t_flat[act], origins.reshape(-1, 3)[act], dirs.reshape(-1, 3)[act]
    for _ in range(iters):
        if len(act) == 0:
            break
        dist = combine(part_sdfs((o + ti[:, None] * d)[:, None], p.index(head)))[:, 0]
        h = dist < eps
        hit_flat[act[h]] = True
        t_flat[act[h]] = ti[h]
        ti = ti + 0.9 * dist
        keep = ~h & (ti <= t_end)
        t_flat[act[~keep & ~h]] = float(t_end)
        act, head, ti, o, d = act[keep], head[keep], ti[keep], o[keep], d[keep]
    return t, hit


def render(
    p: HeadParams, origins: torch.Tensor, dirs: torch.Tensor, t_start: float, t_end: float
) -> dict[str, torch.Tensor]:
    """Exact render of rays (N, M, 3): 'rgb' (N, M, 3) on [-1, 1] over black, 'depth' (N, M) (t_end on
    misses), 'alpha' (N, M) silhouette 0/1, 'part' (N, M) part id or -1, 'points' (N, M, 3) hit points."""
    t, hit = trace(origins, dirs, p, t_start, t_end)
    t = torch.where(hit, t, torch.full_like(t, float(t_end)))
    pts = origins + t[..., None] * dirs
    rgb = torch.full_like(pts, -1.0)
    part = torch.full(t.shape, -1, dtype=torch.long)
    q = query(pts, p, hit)  # colour and part only where a ray hit
    rgb = torch.where(hit[..., None], q["rgb"] * 2 - 1, rgb)
    part = q["part"]
    return {"rgb": rgb, "depth": t, "alpha": hit.float(), "part": part, "points": pts}


def render_cameras(
    p: HeadParams, cams: torch.Tensor, resolution: int, t_start: float, t_end: float
) -> dict[str, torch.Tensor]:
    """Exact images for cameras (N, 25): 'rgb' (N,3,R,R), 'depth'/'alpha'/'part' (N,1,R,R), as the renderer lays out."""
    from renderer.model.volume import sample_rays

    origins, dirs = sample_rays(cams[:, :16].view(-1, 4, 4), cams[:, 16:25].view(-1, 3, 3), resolution)
    out = render(p, origins, dirs, t_start, t_end)
    n, r = cams.shape[0], resolution
    return {
        "rgb": out["rgb"].permute(0, 2, 1).reshape(n, 3, r, r),
        "depth": out["depth"].reshape(n, 1, r, r),
        "alpha": out["alpha"].reshape(n, 1, r, r),
        "part": out["part"].reshape(n, 1, r, r),
        "points": out["points"].reshape(n, r, r, 3),
    }


def for_model(G) -> ModuleType:
    """The family a built-in checkpoint was trained on: its metadata's 'family' (1 when absent: the first
    edition's weights predate the key)."""
    extra = getattr(getattr(G, "spec", None), "extra", None) or {}
    if int(extra.get("family", 1)) == VERSION:
        import sys

        return sys.modules[__name__]
    from renderer.builtin.training import family_v1

    return family_v1
