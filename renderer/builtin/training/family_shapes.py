"""The second-edition family's geometry: per-head placements (Layout) and the parts' signed distances.

Every function takes points (N, M, 3) for N heads; each part is a 1-Lipschitz bound (or a convex blend of
them), so the head's SDF `sdf` can be sphere-traced exactly (family.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .family_params import BOUND, PIVOT, STYLES, HeadParams
from .sdf_primitives import capsule, col, ellipsoid, front_z, mirror, round_box, smin, torus_y, torus_z, vec


class Layout:
    """Derived per-head placements: centres (N, 1, 3), radii (N, 1, 3) or (N, 1), heights (N, 1)."""

    def __init__(self, p: HeadParams):
        n = len(p)
        zero = torch.zeros(n)
        self.skull_c = vec(zero, 0.07, -0.02)
        self.skull_r = torch.stack([p.head_w, p.head_h, p.head_d], -1)[:, None]
        self.jaw_c = vec(zero, -0.02 - p.jaw_len * 0.6, 0.035)
        self.jaw_r = torch.stack([p.jaw_w, p.jaw_len, p.head_d * 0.72], -1)[:, None]
        sc, sr, jc, jr = self.skull_c[:, 0], self.skull_r[:, 0], self.jaw_c[:, 0], self.jaw_r[:, 0]

        def face_z(x, y):
            return torch.maximum(front_z(sc, sr, x, y), front_z(jc, jr, x, y))

        nose_y = torch.full((n,), -0.035)
        fz = face_z(zero, nose_y)
        self.nose_c = vec(zero, nose_y, fz - 0.02 + p.nose_len * 0.45)
        self.nose_r = torch.stack([p.nose_w * 0.85, 0.05 + 0.3 * p.nose_len, p.nose_len * 0.5 + 0.01], -1)[:, None]
        tip_r = p.nose_w * (0.55 + 0.35 * p.nose_tip)
        self.tip_c = vec(zero, nose_y - 0.035 - 0.012 * p.nose_droop, fz + p.nose_len * 0.8 - tip_r)
        self.tip_r = col(tip_r)
        self.ear_c = vec(p.head_w * 0.97, -0.02 + 0.0 * p.ear_size, -0.03)
        self.ear_r = torch.stack([torch.full((n,), 0.014), p.ear_size, p.ear_size * p.ear_aspect], -1)[:, None]
        eye_front = face_z(p.eye_sep, p.eye_y)
        self.eye_c = vec(p.eye_sep, p.eye_y, eye_front - 0.15 * p.eye_r)
        self.eye_r = col(p.eye_r)
        self.mouth_y = col(self.jaw_c[:, 0, 1] + 0.35 * self.jaw_r[:, 0, 1])
        self.mouth_z = col(face_z(zero, self.mouth_y[:, 0]))
        self.chin_y = col(self.jaw_c[:, 0, 1] - 0.75 * self.jaw_r[:, 0, 1])
        self.chin_z = col(face_z(zero, self.chin_y[:, 0]))
        # glasses: rings in front of the eyes, their outer edge inside the head's width
        ring = (p.eye_r * (1.2 + 0.45 * p.glasses_size)).minimum(0.96 * p.head_w - p.eye_sep).clamp_min(p.eye_r + 0.006)
        self.ring_r = col(ring)
        self.ring_c = vec(p.eye_sep, p.eye_y, self.eye_c[:, 0, 2] + p.eye_r + 0.022)
        # hair: its thickness per style, blended like the shapes (the hat sits on it)
        sel = p.selector("hair")
        thick = torch.stack(
            [torch.full((n,), -0.01), 0.6 * p.hair_thick, p.hair_thick, 0.7 * p.hair_thick, p.hair_thick,
             0.065 + 0.035 * p.hair_len],
            -1,
        )  # fmt: skip
        self.hair_thick = (sel * thick).sum(-1)
        self.hair_c = vec(zero, 0.085, -0.03)


def _ear(q: torch.Tensor, angle: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Ear SDF in its local frame: a thin ellipsoid turned by `angle` (N, 1) about y (outwards, backwards)."""
    ca, sa = torch.cos(angle), torch.sin(angle)
    x = ca * q[..., 0] - sa * q[..., 2]
    z = sa * q[..., 0] + ca * q[..., 2]
    return ellipsoid(torch.stack([x, q[..., 1], z], -1), r)


def _cap(x: torch.Tensor, L: Layout, thick: torch.Tensor, hairline: torch.Tensor, back: torch.Tensor):
    """A hair cap: the skull inflated by thick (N, 1), above a hairline at height `hairline` (N, 1) in front
    that drops with slope `back` (N, 1) towards the back."""
    shell = ellipsoid(x - L.hair_c, L.skull_r + thick[..., None])
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
    out = col(NONE_OFFSET * w[:, 0])
    for k, (option, _) in enumerate(STYLES[name]):
        if k > 0 and bool((w[:, k] > 0).any()):
            out = out + col(w[:, k] / rest) * shapes[option]()
    return out.expand(-1, m) if out.shape[1] == 1 else out


def _hair(x: torch.Tensor, p: HeadParams, L: Layout) -> torch.Tensor:
    """The hair's SDF: every style's shape blended by the hair selector."""
    n = len(p)
    zero = torch.zeros(n)
    t, ln, back = col(p.hair_thick), col(p.hair_len), col(p.hair_back)
    hl = torch.full_like(t, 0.115)

    def long_() -> torch.Tensor:
        drop = 0.12 + 0.2 * p.hair_len
        c = vec(zero, 0.06 - drop * 0.8, -0.07)
        r = torch.stack([p.head_w + p.hair_thick + 0.012, 0.2 + drop * 0.8, p.head_d * 0.8 + p.hair_thick], -1)
        curtain = torch.maximum(ellipsoid(x - c, r[:, None]), x[..., 2] - 0.02 + 0.25 * (x[..., 1] - 0.05))
        curtain = torch.maximum(curtain, -0.46 - x[..., 1])
        return smin(_cap(x, L, t, hl, back), curtain, 0.03)

    def bun() -> torch.Tensor:
        c = vec(zero, 0.17 + 0.02 * p.hair_len, -0.02 - p.head_d - 0.02)
        return smin(_cap(x, L, 0.7 * t, hl + 0.005, back), (x - c).norm(dim=-1) - (0.05 + 0.035 * ln), 0.03)

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


def _facial_hair(x: torch.Tensor, p: HeadParams, L: Layout) -> torch.Tensor:
    """Facial hair: shaven / moustache / goatee / full beard, blended by the selector."""
    n = len(p)
    zero = torch.zeros(n)
    t = col(p.beard_thick)
    w = p.selector("facial")
    if not bool((w[:, 1:] > 0).any()):
        return torch.full(x.shape[:2], NONE_OFFSET)
    mo_c = vec(zero, L.mouth_y[:, 0] + p.lip_full + 0.013, L.mouth_z[:, 0] + 0.006)
    mo_r = torch.stack([p.lip_w * 0.95, torch.full((n,), 0.013), torch.full((n,), 0.022)], -1)[:, None]
    moustache = ellipsoid(x - mo_c, mo_r)
    mouth_hole = ellipsoid(
        x - vec(zero, L.mouth_y[:, 0], L.mouth_z[:, 0]),
        torch.stack([p.lip_w + 0.008, p.lip_full + 0.008, torch.full((n,), 0.09)], -1)[:, None],
    )
    shell = ellipsoid(x - L.jaw_c, L.jaw_r + t[..., None])

    def beard() -> torch.Tensor:
        below = x[..., 1] - (L.mouth_y + 0.035 - 0.4 * x[..., 0].abs())
        d = torch.maximum(torch.maximum(shell, below), -0.02 - x[..., 2])
        return smin(torch.maximum(d, -mouth_hole), moustache, 0.015)

    def goatee() -> torch.Tensor:
        chin = (x - vec(zero, L.chin_y[:, 0] + 0.015, L.chin_z[:, 0] - 0.02)).norm(dim=-1) - 0.06
        return smin(torch.maximum(torch.maximum(shell, chin), -mouth_hole), moustache, 0.015)

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


def _glasses(x: torch.Tensor, p: HeadParams, L: Layout) -> torch.Tensor:
    """Glasses: two rings, a bridge and temples to the ears (tube radius 8 mm), optional dark lenses; absent
    ones shrink below zero thickness (no head with glasses: the constant 0.02, beyond the 1.2 cm that
    the training's density targets resolve)."""
    if not bool((p.glasses > 0).any()):
        return torch.full(x.shape[:2], 0.02)
    n = len(p)
    zero = torch.zeros(n)
    xm = torch.cat([x[..., :1].abs(), x[..., 1:]], -1)  # mirror symmetric
    q = xm - L.ring_c
    frame = torus_z(q, L.ring_r, 0.008)
    centre = vec(zero, L.ring_c[:, 0, 1] + 0.012, L.ring_c[:, 0, 2] + 0.004)
    bridge = capsule(xm, centre, L.ring_c - vec(L.ring_r[:, 0], -0.006, 0.0), 0.007)
    outer = L.ring_c + vec(L.ring_r[:, 0], 0.0, 0.0)
    hinge = L.ear_c + vec(zero + 0.015, 0.035, 0.02)
    temple = capsule(xm, outer, hinge, 0.007)
    frame = torch.minimum(torch.minimum(frame, bridge), temple)
    tint = col(p.lens_tint.clamp_min(0))
    lens = torch.maximum(q[..., :2].norm(dim=-1) - L.ring_r, q[..., 2].abs() - 0.004)
    lens = lens + 0.012 * (1 - 3 * tint).clamp_min(0)
    worn = col(p.glasses)
    # a head without glasses gets exactly the constant, as when it is evaluated alone (batch-independent)
    return torch.where(worn > 0, torch.minimum(frame, lens) + 0.02 * (1 - worn), 0.02)


def _hat(x: torch.Tensor, p: HeadParams, L: Layout) -> torch.Tensor:
    """Hats on the hair: bare / headband / beanie / cap with a brim, blended by the selector."""
    n = len(p)
    zero = torch.zeros(n)
    over = L.hair_thick.clamp_min(0)[:, None, None] + 0.014

    def base() -> torch.Tensor:
        return ellipsoid(x - L.hair_c, L.skull_r + over)

    def cap() -> torch.Tensor:
        crown = torch.maximum(base(), 0.2 + 0.15 * x[..., 2] - x[..., 1])
        brim_c = vec(zero, 0.205 + 0.15 * L.skull_r[:, 0, 2], L.skull_r[:, 0, 2] + 0.03)
        brim_r = torch.stack([0.8 * p.head_w, torch.full((n,), 0.02), torch.full((n,), 0.12)], -1)[:, None]
        return torch.minimum(crown, ellipsoid(x - brim_c, brim_r))

    band_y = 0.19 + 0.03 * col(p.hat_h)
    beanie_y = 0.2 - 0.05 * col(p.hat_h)
    return _blend(
        p,
        "hat",
        x.shape[1],
        {
            "headband": lambda: torch.maximum(base(), (x[..., 1] - band_y - 0.3 * x[..., 2]).abs() - 0.022),
            "beanie": lambda: torch.maximum(
                ellipsoid(x - L.hair_c, L.skull_r + over + 0.006), beanie_y + 0.3 * x[..., 2] - x[..., 1]
            ),
            "cap": cap,
        },
    )


def _shirt(x: torch.Tensor, p: HeadParams) -> torch.Tensor:
    """A bust: shoulders and a rolled collar round the neck, cut to the bound and the box."""
    n = len(p)
    zero = torch.zeros(n)
    shoulders = ellipsoid(x - vec(zero, -0.6, -0.05), torch.tensor([0.4, 0.19, 0.2]).expand(n, 1, 3))
    collar = torus_y(x - vec(zero, -0.385, -0.045), col(p.neck_w) + 0.01, 0.018)
    d = smin(shoulders, collar, 0.03)
    d = torch.maximum(d, (x - torch.tensor(PIVOT)).norm(dim=-1) - BOUND + 0.005)
    return torch.maximum(d, -0.495 - x[..., 1])


def part_sdfs(points: torch.Tensor, p: HeadParams) -> torch.Tensor:
    """points (N, M, 3) -> signed distance bound of each part (N, M, len(PART_NAMES))."""
    L = Layout(p)
    x = points
    skull = ellipsoid(x - L.skull_c, L.skull_r)
    jaw_e = ellipsoid(x - L.jaw_c, L.jaw_r)
    jaw_b = round_box(x - L.jaw_c, L.jaw_r * torch.tensor([0.92, 0.95, 0.9]), 0.045)
    chin = col(p.chin)
    jaw = (1 - chin) * jaw_e + chin * jaw_b
    cheek_c = vec(0.55 * p.jaw_w, -0.005 + 0.0 * p.jaw_w, L.jaw_c[:, 0, 2] + 0.55 * L.jaw_r[:, 0, 2])
    xm = torch.cat([x[..., :1].abs(), x[..., 1:]], -1)
    cheek = (xm - cheek_c).norm(dim=-1) - (0.045 + 0.02 * col(p.cheek))
    jaw = smin(jaw, cheek, 0.04)
    # neck: vertical capped cylinder under the jaw
    q = x - vec(torch.zeros(len(p)), -0.32, -0.045)
    radial = torch.stack([q[..., 0], q[..., 2]], -1).norm(dim=-1) - col(p.neck_w)
    vertical = q[..., 1].abs() - 0.14
    neck = torch.maximum(radial, vertical).clamp_max(0) + torch.stack(
        [radial.clamp_min(0), vertical.clamp_min(0)], -1
    ).norm(dim=-1)
    nose = smin(ellipsoid(x - L.nose_c, L.nose_r), (x - L.tip_c).norm(dim=-1) - L.tip_r, 0.015)
    angle = col(p.ear_angle)
    ear_l = _ear(mirror(mirror(x) - L.ear_c), -angle, L.ear_r)
    ear_r = _ear(x - L.ear_c, angle, L.ear_r)
    eye_l = (x - mirror(L.eye_c)).norm(dim=-1) - L.eye_r
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
    d = smin(skull, jaw, 0.06)
    d = smin(d, neck, 0.05)
    d = smin(d, nose, 0.02)
    d = smin(d, torch.minimum(ear_l, ear_r), 0.012)
    d = torch.minimum(d, torch.minimum(eye_l, eye_r))
    d = torch.minimum(d, torch.minimum(hair, beard))
    return torch.minimum(torch.minimum(d, glasses), torch.minimum(hat, shirt))


def sdf(points: torch.Tensor, p: HeadParams) -> torch.Tensor:
    """Signed distance bound (N, M): negative inside the head. Heads are evaluated one by one, each with only
    the style options it wears."""
    if len(p) == 1:
        return combine(part_sdfs(points, p))
    return torch.cat([combine(part_sdfs(points[i : i + 1], p.index([i]))) for i in range(len(p))])
