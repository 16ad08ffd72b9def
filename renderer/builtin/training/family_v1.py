"""The first edition's procedural family (the shipped model learned it): heads as an SDF + colour field.

World frame as in EG3D: y up, the face looks along +z, the head sits in the unit box around the
origin. A Gaussian latent z (N, 512) maps smoothly and deterministically to HeadParams (a fixed
orthonormal projection of the normalised z, pushed through the normal CDF onto each parameter's
range), so seeds give different heads and latent interpolation morphs them. Every query is
batched: points (N, M, 3) for N heads. Renders are exact (sphere tracing, one ray per pixel
centre, like the volume renderer), so density, colour, depth, silhouettes and part masks are
known for any latent and camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from .latent_projection import Z_DIM as Z_DIM  # re-exported: the family's latent size
from .latent_projection import coordinates, orthonormal_rows
from .sdf_primitives import col, ellipsoid, front_z, smin, vec

PART_NAMES = ("skull", "jaw", "neck", "nose", "ear_l", "ear_r", "eye_l", "eye_r", "hair")
"""Parts in the order of `part_sdfs`' last axis; ids in part masks index this tuple (-1 = background)."""
SMALL_PARTS = ("nose", "ear_l", "ear_r", "eye_l", "eye_r")
"""The small parts whose presence the evaluation checks one by one."""
LIGHT = (0.35, 0.55, 0.76)
"""Fixed light direction (object frame) of the baked, view-independent shading."""

_RANGES = {  # parameter -> (low, high); values are box units unless noted
    "head_w": (0.175, 0.215),
    "head_h": (0.215, 0.255),
    "head_d": (0.215, 0.25),
    "jaw_w": (0.125, 0.165),
    "jaw_len": (0.12, 0.16),
    "nose_len": (0.055, 0.09),
    "nose_w": (0.028, 0.042),
    "ear_size": (0.055, 0.075),
    "ear_angle": (0.15, 0.55),  # radians the ear turns outwards
    "eye_r": (0.034, 0.045),
    "eye_sep": (0.065, 0.085),
    "hair_thick": (0.02, 0.045),
    "hair_back": (0.55, 1.2),  # slope of the back hairline
    "skin": (0.0, 1.0),
    "hair_hue": (0.0, 1.0),
    "iris": (0.0, 1.0),  # palette positions
}


@dataclass
class HeadParams:
    """One value per head (tensors of shape (N,)) for each shape and colour parameter."""

    head_w: torch.Tensor
    head_h: torch.Tensor
    head_d: torch.Tensor
    jaw_w: torch.Tensor
    jaw_len: torch.Tensor
    nose_len: torch.Tensor
    nose_w: torch.Tensor
    ear_size: torch.Tensor
    ear_angle: torch.Tensor
    eye_r: torch.Tensor
    eye_sep: torch.Tensor
    hair_thick: torch.Tensor
    hair_back: torch.Tensor
    skin: torch.Tensor
    hair_hue: torch.Tensor
    iris: torch.Tensor

    def __len__(self) -> int:
        return self.head_w.shape[0]

    def index(self, i) -> "HeadParams":
        """The heads selected by an index or slice (kept batched)."""
        return HeadParams(**{f.name: getattr(self, f.name)[i].reshape(-1) for f in fields(self)})

    def as_dict(self, i: int = 0) -> dict[str, float]:
        """Head i's parameters as plain floats."""
        return {f.name: float(getattr(self, f.name)[i]) for f in fields(self)}


PARAM_NAMES = tuple(f.name for f in fields(HeadParams))


_PROJ = orthonormal_rows(20240604, len(PARAM_NAMES))
"""The fixed orthonormal rows (P, 512) that read each parameter off the latent."""


def projection() -> torch.Tensor:
    """A copy of the parameter directions (P, 512), float32: parameter k is Phi(row_k . z / rms(z)) on its range."""
    return _PROJ.float().clone()


def params_from_z(z: torch.Tensor) -> HeadParams:
    """Latents (N, 512) -> HeadParams: smooth, deterministic, each parameter ~uniform on its range."""
    u = coordinates(z, _PROJ)
    s = 0.5 * (1 + torch.erf(u / math.sqrt(2)))
    vals = {}
    for k, name in enumerate(PARAM_NAMES):
        lo, hi = _RANGES[name]
        vals[name] = (lo + (hi - lo) * s[:, k]).float()
    return HeadParams(**vals)


# ----------------------------------------------------------------- SDF primitives


@dataclass
class _Layout:
    """Derived per-head placements (N,)-tensors: centres and radii of the primitives."""

    skull_c: torch.Tensor
    skull_r: torch.Tensor
    jaw_c: torch.Tensor
    jaw_r: torch.Tensor
    nose_c: torch.Tensor
    nose_r: torch.Tensor
    ear_c: torch.Tensor
    ear_r: torch.Tensor
    eye_c: torch.Tensor
    eye_r: torch.Tensor
    hair_c: torch.Tensor
    hair_r: torch.Tensor


def layout(p: HeadParams) -> _Layout:
    """Primitive centres/radii from the parameters (all (N, 1, 3) or (N, 1))."""
    n = len(p)
    zero = torch.zeros(n)
    skull_c = vec(zero, 0.07, -0.02)
    skull_r = torch.stack([p.head_w, p.head_h, p.head_d], -1)[:, None]
    jaw_c = vec(zero, -0.02 - p.jaw_len * 0.6, 0.035)
    jaw_r = torch.stack([p.jaw_w, p.jaw_len, p.head_d * 0.72], -1)[:, None]
    nose_y = torch.full((n,), -0.035)
    face_z = torch.maximum(
        front_z(skull_c[:, 0], skull_r[:, 0], zero, nose_y), front_z(jaw_c[:, 0], jaw_r[:, 0], zero, nose_y)
    )
    nose_c = vec(zero, nose_y, face_z - 0.02 + p.nose_len * 0.45)
    nose_r = torch.stack([p.nose_w, 0.05 + 0.3 * p.nose_len, p.nose_len * 0.55 + 0.01], -1)[:, None]
    ear_c = vec(p.head_w * 0.97, -0.02, -0.03)
    ear_r = torch.stack([torch.full((n,), 0.014), p.ear_size, p.ear_size * 0.62], -1)[:, None]
    eye_y = torch.full((n,), 0.06)
    eye_front = torch.maximum(
        front_z(skull_c[:, 0], skull_r[:, 0], p.eye_sep, eye_y), front_z(jaw_c[:, 0], jaw_r[:, 0], p.eye_sep, eye_y)
    )
    eye_c = vec(p.eye_sep, eye_y, eye_front - 0.15 * p.eye_r)
    hair_c = vec(zero, 0.085, -0.03)
    hair_r = skull_r + p.hair_thick[:, None, None]
    return _Layout(
        skull_c, skull_r, jaw_c, jaw_r, nose_c, nose_r, ear_c, ear_r, eye_c, p.eye_r[:, None], hair_c, hair_r
    )


def _ear(q: torch.Tensor, angle: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Ear SDF in its local frame: a thin ellipsoid turned by `angle` about y (outwards, backwards)."""
    ca, sa = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
    x = ca * q[..., 0] - sa * q[..., 2]
    z = sa * q[..., 0] + ca * q[..., 2]
    return ellipsoid(torch.stack([x, q[..., 1], z], -1), r)


def part_sdfs(points: torch.Tensor, p: HeadParams) -> torch.Tensor:
    """points (N, M, 3) -> signed distance bound of each part (N, M, len(PART_NAMES))."""
    L = layout(p)
    x = points
    skull = ellipsoid(x - L.skull_c, L.skull_r)
    jaw = ellipsoid(x - L.jaw_c, L.jaw_r)
    # neck: vertical capped cylinder under the jaw
    q = x - vec(torch.zeros(len(p)), -0.32, -0.045)
    radial = torch.stack([q[..., 0], q[..., 2]], -1).norm(dim=-1) - 0.085
    vertical = q[..., 1].abs() - 0.14
    neck = torch.maximum(radial, vertical).clamp_max(0) + torch.stack(
        [radial.clamp_min(0), vertical.clamp_min(0)], -1
    ).norm(dim=-1)
    nose = ellipsoid(x - L.nose_c, L.nose_r)
    mirror = torch.tensor([-1.0, 1.0, 1.0])
    ear_l = _ear((x * mirror - L.ear_c) * mirror, -col(p.ear_angle)[..., 0], L.ear_r)
    ear_r = _ear(x - L.ear_c, col(p.ear_angle)[..., 0], L.ear_r)
    eye_l = (x - L.eye_c * mirror).norm(dim=-1) - L.eye_r
    eye_r = (x - L.eye_c).norm(dim=-1) - L.eye_r
    # hair: an ellipsoid a little larger than the skull, above a hairline that drops towards the back
    c0 = 0.115
    front = (c0 + 0.55 * x[..., 2] - x[..., 1]) / math.hypot(1, 0.55)
    back = (c0 + col(p.hair_back) * x[..., 2] - x[..., 1]) / torch.sqrt(1 + col(p.hair_back) ** 2)
    hair = torch.maximum(ellipsoid(x - L.hair_c, L.hair_r), torch.minimum(front, back))
    return torch.stack([skull, jaw, neck, nose, ear_l, ear_r, eye_l, eye_r, hair], -1)


def combine(parts: torch.Tensor) -> torch.Tensor:
    """The head's SDF from the part SDFs (N, M, P): skin parts blended smoothly, eyes and hair added crisply."""
    skull, jaw, neck, nose, ear_l, ear_r, eye_l, eye_r, hair = parts.unbind(-1)
    d = smin(skull, jaw, 0.06)
    d = smin(d, neck, 0.05)
    d = smin(d, nose, 0.02)
    d = smin(d, torch.minimum(ear_l, ear_r), 0.012)
    return torch.minimum(torch.minimum(d, torch.minimum(eye_l, eye_r)), hair)


def sdf(points: torch.Tensor, p: HeadParams) -> torch.Tensor:
    """Signed distance bound (N, M): negative inside the head."""
    return combine(part_sdfs(points, p))


# ----------------------------------------------------------------- colour
def _palette(t: torch.Tensor, colours: list[tuple[float, float, float]]) -> torch.Tensor:
    """(N,) in [0, 1] -> (N, 3): piecewise-linear walk along a list of colours."""
    c = torch.tensor(colours)
    x = t.clamp(0, 1) * (len(colours) - 1)
    i = x.floor().long().clamp(max=len(colours) - 2)
    f = (x - i)[:, None]
    return c[i] * (1 - f) + c[i + 1] * f


def palettes(p: HeadParams) -> dict[str, torch.Tensor]:
    """Per-head base colours (N, 3) in [0, 1]: skin, hair, iris, lips."""
    skin = _palette(p.skin, [(0.98, 0.84, 0.72), (0.90, 0.70, 0.55), (0.72, 0.50, 0.36), (0.48, 0.32, 0.22)])
    hair = _palette(
        p.hair_hue, [(0.08, 0.06, 0.05), (0.30, 0.18, 0.09), (0.62, 0.28, 0.10), (0.85, 0.68, 0.35), (0.55, 0.55, 0.58)]
    )
    iris = _palette(p.iris, [(0.35, 0.20, 0.08), (0.20, 0.45, 0.25), (0.20, 0.40, 0.75)])
    lips = skin * torch.tensor([0.85, 0.45, 0.45])
    return {"skin": skin, "hair": hair, "iris": iris, "lips": lips}


def normals(points: torch.Tensor, p: HeadParams, h: float = 1e-3) -> torch.Tensor:
    """Unit SDF gradient (N, M, 3) by central differences."""
    offs = torch.eye(3) * h
    g = [sdf(points + offs[k], p) - sdf(points - offs[k], p) for k in range(3)]
    return F.normalize(torch.stack(g, -1), dim=-1)


def albedo(points: torch.Tensor, p: HeadParams, parts: torch.Tensor) -> torch.Tensor:
    """Unshaded colour (N, M, 3): parts blended softly by their SDFs; lips, brows, iris and pupil painted on."""
    pal = palettes(p)
    L = layout(p)
    skin = pal["skin"][:, None]
    hair = pal["hair"][:, None]
    x = points
    # painted skin details: lips and eyebrows (front of the face only)
    front = torch.sigmoid((x[..., 2] - 0.05) / 0.01)
    mouth_y = L.jaw_c[..., 1] + 0.35 * L.jaw_r[..., 1] + 0.0
    lip = (x[..., 0] / 0.055) ** 2 + ((x[..., 1] - mouth_y) / 0.016) ** 2
    lip_w = torch.sigmoid((1 - lip) / 0.15) * front
    brow = ((x[..., 0].abs() - L.eye_c[..., 0]) / 0.042) ** 2 + ((x[..., 1] - 0.06 - 1.6 * L.eye_r) / 0.011) ** 2
    brow_w = torch.sigmoid((1 - brow) / 0.15) * front
    skin_c = skin * (1 - lip_w[..., None]) + pal["lips"][:, None] * lip_w[..., None]
    skin_c = skin_c * (1 - brow_w[..., None]) + hair * brow_w[..., None]
    # eyes: white sclera, coloured iris and black pupil around the forward direction
    ecen = torch.where(x[..., :1] < 0, L.eye_c * torch.tensor([-1.0, 1, 1]), L.eye_c)
    v = F.normalize(x - ecen, dim=-1)
    gaze = F.normalize(torch.tensor([0.0, 0.0, 1.0]) + 0.0 * v, dim=-1)
    cos = (v * gaze).sum(-1)
    iris_w = torch.sigmoid((cos - 0.80) / 0.02)[..., None]
    pupil_w = torch.sigmoid((cos - 0.94) / 0.01)[..., None]
    eye_c = torch.ones_like(skin_c) * 0.97
    eye_c = eye_c * (1 - iris_w) + pal["iris"][:, None] * iris_w
    eye_c = eye_c * (1 - pupil_w) + 0.04 * pupil_w
    # soft assignment between skin / eye / hair groups
    skin_d = parts[..., :6].amin(-1)
    eye_d = parts[..., 6:8].amin(-1)
    hair_d = parts[..., 8]
    w = torch.softmax(-torch.stack([skin_d, eye_d, hair_d], -1) / 0.002, -1)[..., None]
    return w[..., 0, :] * skin_c + w[..., 1, :] * eye_c + w[..., 2, :] * hair


def shade(n: torch.Tensor) -> torch.Tensor:
    """View-independent wrapped Lambert factor (N, M, 1) in [0.45, 1] for unit normals n."""
    light = F.normalize(torch.tensor(LIGHT), dim=0)
    return 0.45 + 0.55 * (0.5 + 0.5 * (n * light).sum(-1, keepdim=True))


def query(points: torch.Tensor, p: HeadParams) -> dict[str, torch.Tensor]:
    """points (N, M, 3) -> 'sdf' (N, M), 'rgb' (N, M, 3) shaded colour in [0, 1], 'part' (N, M) id."""
    points = points.float()
    parts = part_sdfs(points, p)
    d = combine(parts)
    rgb = (albedo(points, p, parts) * shade(normals(points, p))).clamp(0, 1)
    return {"sdf": d, "rgb": rgb, "part": parts.argmin(-1)}


# ----------------------------------------------------------------- exact rendering
def trace(
    origins: torch.Tensor,
    dirs: torch.Tensor,
    p: HeadParams,
    t_start: float,
    t_end: float,
    iters: int = 80,
    eps: float = 2e-4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sphere-trace rays (N, M, 3) -> distance to the first hit (N, M) and hit mask (N, M)."""
    t = torch.full(origins.shape[:2], float(t_start))
    done = torch.zeros_like(t, dtype=torch.bool)
    for _ in range(iters):
        d = sdf(origins + t[..., None] * dirs, p)
        d = torch.where(done, torch.zeros_like(d), d)
        t = t + 0.9 * torch.where(d < eps, torch.zeros_like(d), d)
        done = done | (d < eps) | (t > t_end)
        if bool(done.all()):
            break
    hit = sdf(origins + t[..., None] * dirs, p) < 2 * eps
    return t, hit & (t <= t_end)


def render(
    p: HeadParams, origins: torch.Tensor, dirs: torch.Tensor, t_start: float, t_end: float
) -> dict[str, torch.Tensor]:
    """Exact render of rays (N, M, 3): 'rgb' (N, M, 3) on [-1, 1] over black, 'depth' (N, M) (t_end on
    misses), 'alpha' (N, M) silhouette 0/1, 'part' (N, M) part id or -1, 'points' (N, M, 3) hit points."""
    t, hit = trace(origins, dirs, p, t_start, t_end)
    t = torch.where(hit, t, torch.full_like(t, float(t_end)))
    pts = origins + t[..., None] * dirs
    q = query(pts, p)
    rgb = torch.where(hit[..., None], q["rgb"], torch.zeros_like(q["rgb"])) * 2 - 1
    part = torch.where(hit, q["part"], torch.full_like(q["part"], -1))
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
