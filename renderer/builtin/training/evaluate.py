"""Quality of the built-in model against the procedural ground truth, on held-out latents.

    python -m renderer.builtin.training.evaluate [--network builtin] [--latents 30] [--res 256]
    python -m renderer.builtin.training.evaluate --family-only   # the family's own variety and contact sheet

Held-out latents are the viewer's seeds 100000, 100001, ... (numpy RandomState, as the engine
draws them); training draws its latents from a torch.Generator stream instead, so these are
never trained on. Renders are raw volume renders in deterministic mode; the ground truth is
exact (sphere-traced), from the family the checkpoint was trained on (`family.for_model`). Metrics (see
`BARS` for the pass thresholds of the second edition; `BARS_V1` were the first edition's):
* PSNR of the final (super-resolved) image at the model's output resolution vs the exact render;
* silhouette IoU (opacity > 0.5 vs the true silhouette), mean and worst view;
* depth MAE inside both silhouettes, as a fraction of the ray range;
* PSNR of the raw render vs the true colour render (both over black, on [0, 1]);
* per small part (glasses and beard where the latent has them): coverage = the share of the part's true
  pixels where the model's surface is
  present and within PART_TOLERANCE of the true depth (a part blurred away leaves the face
  behind it, one protrusion deeper, or empty space), and the mean distance from the part's true
  surface points to the model's surface points;
* symmetric Chamfer distance between model and true surface points (back-projected pixels);
* seeds differ (the model's own seed/view difference ratio, and over the family's), interpolation
  smoothness, and multi-view colour consistency.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from types import ModuleType

import numpy as np
import torch

from renderer.builtin.config import CAMERA_PIVOT, CAMERA_RADIUS, FOCAL, RAY_END, RAY_START
from renderer.builtin.training import family as fam
from renderer.camera import orbit_camera
from renderer.engine import seed_z, slerp
from renderer.model import occupancy as occ
from renderer.model.generator import TriPlaneGenerator

HELD_OUT_SEED = 100000
VIEWS = ((0.0, 0.0), (1.05, -0.25), (2.1, 0.2), (math.pi, 0.0), (-2.1, -0.2), (-1.05, 0.25))
"""(yaw, pitch) of the evaluation views: six stops round the orbit, alternately above and below."""
PART_TOLERANCE = 0.02
"""Depth tolerance (box units) for part coverage: below the least protrusion of every small part."""
BARS = {
    "psnr_final": (">=", 26.0),
    "iou_mean": (">=", 0.95),
    "iou_worst": (">=", 0.92),
    "depth_mae_frac": ("<=", 0.01),
    "chamfer": ("<=", 0.01),
    "part_coverage_min": (">=", 0.9),
    "seed_ratio": (">=", 2.5),
    "interp_max_over_median": ("<=", 3.0),
}
"""Issue 18 (second edition, 256^2): final image PSNR, geometry at 256^2, variety as a plain ratio."""
BARS_V1 = {
    "iou_mean": (">=", 0.95),
    "iou_worst": (">=", 0.90),
    "depth_mae_frac": ("<=", 0.01),
    "psnr": (">=", 25.0),
    "chamfer": ("<=", 0.01),
    "part_coverage_min": (">=", 0.9),
    "seed_vs_family": (">=", 0.9),
    "interp_max_over_median": ("<=", 3.0),
}
"""seed_vs_family: the seed/view difference ratio over the family's own (ground truth) ratio. Two views 0.35
rad apart differ by 0.6x what two seeds do in the family itself, so a fixed ratio bar would measure the
family; the model must keep >= 90% of the family's variety between seeds."""


def cameras(views=VIEWS) -> torch.Tensor:
    """The evaluation cameras (V, 25) at the model's default radius, pivot and focal length."""
    return torch.stack([orbit_camera(y, p, CAMERA_RADIUS, CAMERA_PIVOT, focal=FOCAL) for y, p in views])


def latent(seed: int) -> torch.Tensor:
    """The viewer's latent for a seed (1, 512)."""
    return torch.from_numpy(seed_z(seed, fam.Z_DIM))


@torch.no_grad()
def model_render(
    G: TriPlaneGenerator, z: torch.Tensor, cams: torch.Tensor, res: int, final: bool = False
) -> dict[str, torch.Tensor]:
    """Deterministic raw renders of one latent from cameras (V, 25): rgb (V,3,R,R), depth, alpha (V,1,R,R);
    with `final`, also 'image': the final image (V,3,S,S) as the viewer shows it (neural rendering at the
    model's own resolution, then super-resolution to S = G.img_resolution)."""
    ws = G.mapping(z, cams[:1])
    planes = G.planes(ws)
    grid = occ.build(G, planes) if occ.declared(G) else None  # the viewer's default path
    out: dict[str, list[torch.Tensor]] = {"rgb": [], "depth": [], "alpha": [], "image": []}
    for c in cams:
        r = G.render_planes(planes, ws, c[None], superresolution=False, neural_rendering_resolution=res, occupancy=grid)
        out["rgb"].append(r["image_raw"])
        out["depth"].append(r["image_depth"])
        out["alpha"].append(r["image_alpha"])
        if final:
            out["image"].append(G.render_planes(planes, ws, c[None], occupancy=grid)["image"])
    return {k: torch.cat(v) for k, v in out.items() if v}


def surface_points(cams: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Back-project masked depth pixels (V,1,R,R) of cameras (V,25) to world points (K, 3)."""
    from renderer.model.volume import sample_rays

    res = depth.shape[-1]
    o, d = sample_rays(cams[:, :16].view(-1, 4, 4), cams[:, 16:25].view(-1, 3, 3), res)
    pts = o + depth.reshape(len(cams), -1, 1) * d
    return pts[mask.reshape(len(cams), -1)]


def nn_dist(a: torch.Tensor, b: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Distance from each point of a (K,3) to its nearest point of b (L,3)."""
    if len(b) == 0:
        return torch.full((len(a),), float("inf"))
    if len(a) == 0:  # a model that renders nothing (early in training): the mean is nan
        return torch.empty(0)
    return torch.cat([torch.cdist(a[i : i + chunk], b).amin(1) for i in range(0, len(a), chunk)])


def project(cam: torch.Tensor, pts: torch.Tensor, res: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """World points (K,3) -> pixel row, column (nearest) and ray distance in camera cam (25,)."""
    c2w = cam[:16].view(4, 4)
    k = cam[16:25].view(3, 3)
    local = (pts - c2w[:3, 3]) @ c2w[:3, :3]
    u = k[0, 0] * local[:, 0] / local[:, 2] + k[0, 2]
    v = k[1, 1] * local[:, 1] / local[:, 2] + k[1, 2]
    col = (u * res - 0.5).round().long()
    row = (v * res - 0.5).round().long()
    return row, col, (pts - c2w[:3, 3]).norm(dim=-1)


def colour_consistency(cams, gt, rgb, res) -> float:
    """Mean |colour difference| (on [0,1]) of one surface point seen in two neighbouring views."""
    diffs = []
    for i in range(len(cams)):
        j = (i + 1) % len(cams)
        m = (gt["alpha"][i, 0] > 0).reshape(-1)
        pts = gt["points"][i].reshape(-1, 3)[m]
        row, col, dist = project(cams[j], pts, res)
        ok = (row >= 0) & (row < res) & (col >= 0) & (col < res)
        row, col, dist, src = row[ok], col[ok], dist[ok], m.nonzero()[:, 0][ok]
        seen = (gt["alpha"][j, 0, row, col] > 0) & ((gt["depth"][j, 0, row, col] - dist).abs() < 0.005)
        if seen.sum() == 0:
            continue
        a = rgb[i].reshape(3, -1)[:, src[seen]]
        b = rgb[j][:, row[seen], col[seen]]
        diffs.append((a - b).abs().mean(0) / 2)
    return float(torch.cat(diffs).mean()) if diffs else float("nan")


def evaluate(
    G: TriPlaneGenerator,
    n_latents: int = 30,
    res: int = 128,
    views=VIEWS,
    interp_steps: int = 30,
    progress: bool = False,
) -> dict:
    """All metrics over n_latents held-out latents x len(views) views at res x res."""
    fm = fam.for_model(G)
    final = getattr(fm, "VERSION", 1) >= 2  # the second edition is measured on its final image too
    cams = cameras(views)
    rng = RAY_END - RAY_START
    ious, depth_err, mse, chamfer, psnr_views, mse_final = [], [], [], [], [], []
    consist_model, consist_gt = [], []
    part_hits = {p: [0, 0] for p in fm.SMALL_PARTS}
    part_dist: dict[str, list[torch.Tensor]] = {p: [] for p in fm.SMALL_PARTS}
    renders, gt_fronts = [], []
    for n in range(n_latents):
        z = latent(HELD_OUT_SEED + n)
        p = fm.params_from_z(z)
        gt = fm.render_cameras(p.index([0] * len(cams)), cams, res, RAY_START, RAY_END)
        pr = model_render(G, z, cams, res, final=final)
        if final:
            size = G.img_resolution
            gt_final = (
                gt if size == res else fm.render_cameras(p.index([0] * len(cams)), cams, size, RAY_START, RAY_END)
            )
            mse_final += ((pr["image"].clamp(-1, 1) - gt_final["rgb"]) / 2).square().flatten(1).mean(1).tolist()
        renders.append(pr["rgb"])
        gt_fronts.append(gt["rgb"][0])
        sil_m, sil_g = pr["alpha"] > 0.5, gt["alpha"] > 0.5
        inter = (sil_m & sil_g).flatten(1).sum(1).float()
        union = (sil_m | sil_g).flatten(1).sum(1).float()
        ious += (inter / union.clamp_min(1)).tolist()
        both = sil_m & sil_g
        depth_err.append((pr["depth"] - gt["depth"]).abs()[both])
        err = ((pr["rgb"] - gt["rgb"]) / 2).square().flatten(1).mean(1)
        mse += err.tolist()
        psnr_views += (-10 * torch.log10(err.clamp_min(1e-10))).tolist()
        pm = surface_points(cams, pr["depth"], sil_m)
        pg = surface_points(cams, gt["depth"], sil_g)
        chamfer.append(0.5 * (nn_dist(pm, pg).mean() + nn_dist(pg, pm).mean()).item())
        close = sil_m & ((pr["depth"] - gt["depth"]).abs() < PART_TOLERANCE)
        for name in fm.SMALL_PARTS:
            mask = gt["part"] == fm.PART_NAMES.index(name)
            part_hits[name][0] += int((mask & close).sum())
            part_hits[name][1] += int(mask.sum())
            part_dist[name].append(nn_dist(surface_points(cams, gt["depth"], mask), pm))
        consist_model.append(colour_consistency(cams, gt, pr["rgb"], res))
        consist_gt.append(colour_consistency(cams, gt, gt["rgb"], res))
        if progress:
            print(
                f"  latent {n + 1}/{n_latents}: IoU {np.mean(ious[-len(cams) :]):.3f} "
                f"PSNR {np.mean(psnr_views[-len(cams) :]):.1f}",
                file=sys.stderr,
            )
    depth_all = torch.cat(depth_err)
    out = {
        "latents": n_latents,
        "views": len(cams),
        "res": res,
        "iou_mean": float(np.mean(ious)),
        "iou_worst": float(np.min(ious)),
        "depth_mae_frac": float(depth_all.mean() / rng),
        "depth_mae": float(depth_all.mean()),
        "psnr": float(-10 * math.log10(np.mean(mse))),
        "psnr_view_mean": float(np.mean(psnr_views)),
        "psnr_worst": float(np.min(psnr_views)),
        "chamfer": float(np.mean(chamfer)),
        "chamfer_worst": float(np.max(chamfer)),
        "colour_consistency": float(np.nanmean(consist_model)),
        "colour_consistency_gt": float(np.nanmean(consist_gt)),
    }
    if final:
        out["psnr_final"] = float(-10 * math.log10(np.mean(mse_final)))
    for name in fm.SMALL_PARTS:  # a part no latent has (glasses, beard) is nan and left out of the minimum
        hits, total = part_hits[name]
        out[f"part_coverage_{name}"] = hits / total if total else float("nan")
        d = torch.cat(part_dist[name])
        out[f"part_dist_{name}"] = float(d.mean()) if len(d) else float("nan")
    out["part_coverage_min"] = float(np.nanmin([out[f"part_coverage_{n}"] for n in fm.SMALL_PARTS]))
    # seeds differ: same view, different seeds vs one seed, two views 0.35 rad apart
    front = torch.stack([r[0] for r in renders])
    between = (front[1:] - front[:-1]).abs().mean().item() / 2
    near = cameras([(0.0, 0.0), (0.35, 0.0)])
    within, within_gt = [], []
    for n in range(min(n_latents, 8)):
        z = latent(HELD_OUT_SEED + n)
        pr = model_render(G, z, near, res)
        within.append((pr["rgb"][0] - pr["rgb"][1]).abs().mean().item() / 2)
        gt_rgb = fm.render_cameras(fm.params_from_z(z).index([0, 0]), near, res, RAY_START, RAY_END)["rgb"]
        within_gt.append((gt_rgb[0] - gt_rgb[1]).abs().mean().item() / 2)
    out["seed_diff"], out["view_diff"] = between, float(np.mean(within))
    out["seed_ratio"] = between / max(out["view_diff"], 1e-9)
    gt_front = torch.stack(gt_fronts)
    gt_between = (gt_front[1:] - gt_front[:-1]).abs().mean().item() / 2
    out["seed_ratio_gt"] = gt_between / max(float(np.mean(within_gt)), 1e-9)
    out["seed_vs_family"] = out["seed_ratio"] / max(out["seed_ratio_gt"], 1e-9)
    out.update(interpolation(G, interp_steps))
    return out


@torch.no_grad()
def interpolation(
    G: TriPlaneGenerator, steps: int = 30, seeds=(HELD_OUT_SEED, HELD_OUT_SEED + 1), res: int = 64
) -> dict:
    """Frame-to-frame mean |difference| along a slerp path in z: largest step over the median step."""
    a, b = seed_z(seeds[0], fam.Z_DIM), seed_z(seeds[1], fam.Z_DIM)
    cam = cameras([(0.5, -0.1)])
    frames = [
        model_render(G, torch.from_numpy(slerp(a, b, t)), cam, res)["rgb"][0] for t in np.linspace(0, 1, steps + 1)
    ]
    d = np.array([(frames[i + 1] - frames[i]).abs().mean().item() / 2 for i in range(steps)])
    return {"interp_max_over_median": float(d.max() / np.median(d)), "interp_median_step": float(np.median(d))}


@torch.no_grad()
def family_variety(family: ModuleType = fam, n_latents: int = 30, n_views: int = 8, res: int = 128) -> dict:
    """The family's own variety on exact renders, as `evaluate` measures a model's: the mean difference between
    consecutive held-out seeds at the front view over the mean difference between two views 0.35 rad apart of
    one seed (first 8 seeds); both mean |difference| of colours on [0, 1]."""
    front = cameras([(0.0, 0.0)])
    near = cameras([(0.0, 0.0), (0.35, 0.0)])
    fronts, within = [], []
    for n in range(n_latents):
        p = family.params_from_z(latent(HELD_OUT_SEED + n))
        if n < n_views:
            rgb = family.render_cameras(p.index([0, 0]), near, res, RAY_START, RAY_END)["rgb"]
            within.append((rgb[0] - rgb[1]).abs().mean().item() / 2)
            fronts.append(rgb[0])
        else:
            fronts.append(family.render_cameras(p, front, res, RAY_START, RAY_END)["rgb"][0])
    f = torch.stack(fronts)
    between = (f[1:] - f[:-1]).abs().mean().item() / 2
    return {"seed_diff": between, "view_diff": float(np.mean(within)), "ratio": between / float(np.mean(within))}


def bars_for(metrics: dict) -> dict:
    """The bars that apply: the second edition's when the metrics have a final-image PSNR, else the first's."""
    return BARS if "psnr_final" in metrics else BARS_V1


def passes(metrics: dict) -> dict[str, bool]:
    """Which bars a metrics dict meets."""
    ok = {}
    for k, (op, bound) in bars_for(metrics).items():
        ok[k] = metrics[k] >= bound if op == ">=" else metrics[k] <= bound
    return ok


def format_table(m: dict) -> str:
    """The metrics as an aligned text table, with the bars where there is one."""
    ok = passes(m)
    bars = bars_for(m)
    lines = [
        f"{m['latents']} held-out latents x {m['views']} views at {m['res']}x{m['res']} (deterministic raw renders)"
    ]
    for k, v in m.items():
        if k in ("latents", "views", "res"):
            continue
        bar = f"{bars[k][0]} {bars[k][1]:<6} {'PASS' if ok[k] else 'FAIL'}" if k in bars else ""
        lines.append(f"  {k:<28} {v:>10.4f}  {bar}")
    return "\n".join(lines)


def contact_sheet(
    family: ModuleType,
    path: str,
    n_seeds: int = 16,
    res: int = 128,
    per_row: int = 4,
    G: TriPlaneGenerator | None = None,
) -> None:
    """Save a PNG of exact renders of the held-out seeds at two views (front; three-quarter from a little below),
    `per_row` seeds (view pairs) to a row; with G, the model's final images under each seed's exact renders."""
    from pathlib import Path

    from renderer.engine.frames import to_uint8
    from renderer.export.files import write_png_atomic

    cams = cameras([(0.0, 0.0), (0.8, -0.15)])
    tiles = []
    for n in range(n_seeds):
        z = latent(HELD_OUT_SEED + n)
        shown = [family.render_cameras(family.params_from_z(z).index([0, 0]), cams, res, RAY_START, RAY_END)["rgb"]]
        if G is not None:
            shown.append(model_render(G, z, cams, 64, final=True)["image"])
        rows = [np.concatenate([to_uint8(im).numpy() for im in x], 1) for x in shown]
        tiles.append(np.concatenate(rows, 0))
    rows = [np.concatenate(tiles[i : i + per_row], 1) for i in range(0, n_seeds, per_row)]
    write_png_atomic(np.concatenate(rows, 0), Path(path))


def main(argv=None) -> int:
    """Load a model (default: the shipped built-in one), evaluate, print the table; or measure the family."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default="builtin", help="checkpoint path or 'builtin' (default)")
    ap.add_argument("--state", default=None, help="a training state (OUT/state.pt) instead of --network: probe a run")
    ap.add_argument("--latents", type=int, default=30)
    ap.add_argument("--res", type=int, default=None, help="geometry renders (default: the model's output, 256)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--family-only", action="store_true", help="the current family's variety (no model)")
    ap.add_argument(
        "--sheet",
        default=None,
        help="save a contact sheet PNG: 16 held-out seeds x 2 views, exact renders (and under them the model's images)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    if args.family_only:
        v = family_variety(fam, args.latents)
        print(
            f"family v{fam.VERSION}: seed difference {v['seed_diff']:.4f}, view difference {v['view_diff']:.4f}, "
            f"ratio {v['ratio']:.2f} (bar >= {BARS['seed_ratio'][1]})"
        )
        if args.sheet:
            contact_sheet(fam, args.sheet)
        print(f"({time.time() - t0:.0f} s)")
        return 0
    if args.state:
        from renderer.builtin.training.train import generator_from_state

        G = generator_from_state(args.state)
    else:
        from renderer import load_generator

        G = load_generator(args.network)
    res = args.res or (G.img_resolution if getattr(fam.for_model(G), "VERSION", 1) >= 2 else 128)
    if args.sheet:
        contact_sheet(fam.for_model(G), args.sheet, res=G.img_resolution, G=G)
    m = evaluate(G, args.latents, res, progress=True)
    print(format_table(m))
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
