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

from types import ModuleType

import torch
import torch.nn.functional as F

from .family_params import (
    _RANGES,
    BOUND,
    CONTINUOUS,
    LATENT_COORDS,
    LIGHT,
    PARAM_NAMES,
    PART_NAMES,
    PIVOT,
    PRESENCE,
    RANGES,
    SMALL_PARTS,
    STYLES,
    VERSION,
    Z_DIM,
    HeadParams,
    params_from_z,
    projection,
)
from .family_shapes import Layout, combine, part_sdfs, sdf
from .sdf_primitives import col, mirror, vec

__all__ = [  # the second edition's public names, as training, evaluation and the tests read them
    "CONTINUOUS",
    "LATENT_COORDS",
    "PARAM_NAMES",
    "PART_NAMES",
    "PRESENCE",
    "RANGES",
    "SMALL_PARTS",
    "STYLES",
    "VERSION",
    "Z_DIM",
    "_RANGES",
    "HeadParams",
    "albedo",
    "for_model",
    "normals",
    "params_from_z",
    "part_centres",
    "part_sdfs",
    "projection",
    "query",
    "render",
    "render_cameras",
    "sdf",
    "trace",
]


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
    dye = col(p.dye)
    hair = natural * (1 - dye) + _palette(p.dye_hue, DYE, cyclic=True) * dye
    lips = skin * torch.tensor([0.85, 0.5, 0.48])
    lipstick = torch.tensor([0.72, 0.08, 0.15]).expand_as(skin)
    lips = lips + (lipstick - lips) * col((p.lip_tone - 0.7).clamp_min(0) / 0.3)
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


def _skin_colour(x: torch.Tensor, p: HeadParams, L: Layout, pal: dict[str, torch.Tensor]) -> torch.Tensor:
    """Skin with painted lips (smile, open mouth), brows and blush on the front of the face."""
    skin = pal["skin"][:, None].expand(-1, x.shape[1], -1)
    front = torch.sigmoid((x[..., 2] - 0.05) / 0.01)[..., None]
    lip_w, lip_h = col(p.lip_w), col(p.lip_full)
    my = x[..., 1] - L.mouth_y - col(p.smile) * 6.0 * x[..., 0] ** 2  # corners up when smiling
    lip = (x[..., 0] / lip_w) ** 2 + (my / lip_h) ** 2
    lip_w8 = torch.sigmoid((1 - lip) / 0.12)[..., None] * front
    opening = col(p.mouth_open.clamp_min(0)) * 0.85 * lip_h + 1e-4
    inside = (x[..., 0] / (0.8 * lip_w)) ** 2 + (my / opening) ** 2
    inside_w = torch.sigmoid((1 - inside) / 0.12)[..., None] * front
    teeth_w = torch.sigmoid((my - 0.3 * opening) / 0.002)[..., None] * inside_w
    cheek = ((x[..., 0].abs() - 0.6 * col(p.jaw_w)) ** 2 + (x[..., 1] + 0.01) ** 2) / 0.045**2
    blush_w = (0.35 * col(p.blush) * torch.exp(-cheek))[..., None] * front
    c = skin + (torch.tensor([0.85, 0.35, 0.35]) * skin.amax(-1, keepdim=True) - skin) * blush_w
    c = c + (pal["lips"][:, None] - c) * lip_w8
    c = c + (torch.tensor([0.18, 0.04, 0.05]) - c) * inside_w
    c = c + (torch.tensor([0.95, 0.93, 0.88]) - c) * teeth_w
    # brows: a tilted band above each eye
    tilt = col(p.brow_tilt)
    bx = x[..., 0].abs() - L.eye_c[..., 0]
    by = x[..., 1] - L.eye_c[..., 1] - 1.6 * L.eye_r - 0.008 + tilt * bx
    brow = (bx / 0.042) ** 2 + (by / col(p.brow_thick)) ** 2
    brow_w = torch.sigmoid((1 - brow) / 0.15)[..., None] * front
    return c + (pal["brow"][:, None] - c) * brow_w


def albedo(points: torch.Tensor, p: HeadParams, parts: torch.Tensor) -> torch.Tensor:
    """Unshaded colour (N, M, 3): each part group's colour, blended softly by the part SDFs."""
    pal = palettes(p)
    L = Layout(p)
    x = points
    skin_c = _skin_colour(x, p, L, pal)
    ecen = torch.where(x[..., :1] < 0, mirror(L.eye_c), L.eye_c)
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
    L = Layout(p)
    glasses = L.ring_c
    beard = vec(torch.zeros(len(p)), L.chin_y[:, 0] + 0.03, L.chin_z[:, 0])
    return torch.cat([L.nose_c, mirror(L.ear_c), L.ear_c, mirror(L.eye_c), L.eye_c, glasses, beard], 1)


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
