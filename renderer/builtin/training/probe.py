"""Capacity probe of a training run: for held-out latents, optimise the tri-planes themselves (backbone bypassed)
with the run's own losses, and compare the raw render's PSNR with the planes the backbone makes. Planes that
climb far past the backbone's say the ceiling is the backbone (its size or its training), planes that stay
put say it is the representation (plane resolution, decoder, sample counts).

    python -m renderer.builtin.training.probe --state OUT/state.pt [--latents 2] [--steps 900] [--lr 0.06]

The run's state is not touched: the probe optimises a copy of the planes only.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from renderer.builtin.config import RAY_END, RAY_START
from renderer.builtin.training import family as fam
from renderer.builtin.training.evaluate import HELD_OUT_SEED, cameras, latent
from renderer.builtin.training.train import TrainConfig, load_state, losses, sharpen_density, train_planes
from renderer.model.generator import TriPlaneGenerator


@dataclass
class ProbeResult:
    """One latent's probe: raw PSNR (dB, evaluation views) of the backbone's planes and of the optimised ones,
    and the training loss at every step, at the first and over the last steps."""

    seed: int
    steps: int
    backbone_psnr: float
    planes_psnr: float
    loss_first: float
    loss_last: float
    seconds: float
    history: list[float]


@torch.no_grad()
def raw_psnr(
    Gs: TriPlaneGenerator, planes: torch.Tensor, ws: torch.Tensor, cams: torch.Tensor, gt_rgb: torch.Tensor
) -> float:
    """PSNR (on [0, 1], evaluate's raw-PSNR formula) of the raw renders of `planes` from cameras (V, 25) against
    their exact renders `gt_rgb` (V, 3, R, R); Gs has its density sharpened as export does."""
    res = gt_rgb.shape[-1]
    rgb = torch.cat(
        [
            Gs.render_planes(planes, ws, c[None], superresolution=False, neural_rendering_resolution=res)["image_raw"]
            for c in cams
        ]
    )
    return -10 * math.log10(((rgb - gt_rgb) / 2).square().mean().item())


def plane_ceiling(
    G: TriPlaneGenerator, cfg: TrainConfig, seed: int, steps: int, lr: float, res: int = 64
) -> ProbeResult:
    """Optimise one latent's tri-planes (Adam, constant lr; the batch is the latent seen from cfg.batch random
    cameras) with the run's main-phase losses; G stays as it was."""
    t0 = time.time()
    z = latent(seed).float()
    cams = cameras()
    gt_rgb = fam.render_cameras(fam.params_from_z(z).index([0] * len(cams)), cams, res, RAY_START, RAY_END)["rgb"]
    Gs = copy.deepcopy(G)  # the PSNRs are taken as export would render (density sharpened); G trains as it is
    sharpen_density(Gs)
    with torch.no_grad():
        ws, planes0 = train_planes(G, z)
    before = raw_psnr(Gs, planes0, ws, cams, gt_rgb)
    free = planes0.clone().requires_grad_(True)
    opt = torch.optim.Adam([free], lr=lr)
    g = torch.Generator().manual_seed(seed)
    zs = z.expand(cfg.batch, -1)
    history = []
    for _ in range(steps):
        total = losses(G, zs, cfg, g, planes=free.expand(cfg.batch, -1, -1, -1, -1))["total"]
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        history.append(total.item())
    after = raw_psnr(Gs, free.detach(), ws, cams, gt_rgb)
    tail = history[-max(1, min(50, steps // 5)) :]
    return ProbeResult(seed, steps, before, after, history[0], statistics.fmean(tail), time.time() - t0, history)


def main(argv: list[str] | None = None) -> int:
    """Probe a run's state on a few held-out latents and print one line per latent."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state", required=True, help="a training state, OUT/state.pt")
    ap.add_argument("--latents", type=int, default=2, help="held-out latents (seeds from evaluate's first)")
    ap.add_argument("--first", type=int, default=0, help="first held-out latent's index")
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--lr", type=float, default=0.06, help="Adam step on the planes (their std is ~10 when trained)")
    ap.add_argument("--res", type=int, default=64, help="raw render resolution of the PSNR")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    G, cfg = load_state(args.state)
    for i in range(args.first, args.first + args.latents):
        r = plane_ceiling(G, cfg, HELD_OUT_SEED + i, args.steps, args.lr, args.res)
        print(
            f"seed {r.seed}: raw PSNR {args.res}^2 backbone {r.backbone_psnr:.2f} dB -> optimised planes "
            f"{r.planes_psnr:.2f} dB after {r.steps} steps (loss {r.loss_first:.3f} -> {r.loss_last:.3f}, "
            f"{r.seconds:.0f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
