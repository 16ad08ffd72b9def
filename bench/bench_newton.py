"""The fit's newton phase renders once per parameter (514 on an EG3D model): its render through the viewer's
inference renderer (`renderer.fit.render.render_inference`) against the autograd renderer under no_grad
(`render_diff`, what the phase used before), timed side by side round-robin in one process, with the largest
difference between the two residual vectors.

    python bench/bench_newton.py [--ffhq512] [--threads 2] [--repeats 5]

The residual is the newton phase's own (`Fitter._residual`, at the model's neural resolution with its
super-resolution and its own samples per ray) of a fit at its start (the mean latent, the frontal camera).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a plain checkout too
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_fit import GOLDEN, golden_case, golden_model  # noqa: E402

from renderer.engine.cpu import cpu_description  # noqa: E402
from renderer.fit import CameraGuess, FitSettings, FitTarget, Fitter  # noqa: E402
from renderer.fit import fit as fit_module  # noqa: E402
from renderer.fit.render import render_diff  # noqa: E402


def autograd_path(G, ws, camera, resolution, n_coarse, n_fine, superresolution=False):
    """What the newton phase rendered with before: the autograd renderer, under no_grad."""
    with torch.no_grad():
        return render_diff(G, ws, camera, resolution, n_coarse, n_fine, superresolution=superresolution)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ffhq512", action="store_true", help="the FFHQ-512 configuration with random weights")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{cpu_description()}, {args.threads} threads", flush=True)
    G = golden_model(args.ffhq512)
    _, _, cam, z = golden_case(G, 0)
    with torch.no_grad():
        target = G.synthesis(G.mapping(z, cam[None]), cam[None])["image"][0].clamp(-1, 1)
    f = Fitter(G, FitTarget(target), CameraGuess(0.0, 0.0), FitSettings(steps=0, newton_steps=1, **GOLDEN))
    f._start_phase("newton")  # the fit's only phase; its residual is what each Jacobian column renders
    ours = fit_module.render_inference
    paths = {"inference": ours, "autograd": autograd_path}
    times: dict[str, list[float]] = {k: [] for k in paths}
    residuals = {}
    for _ in range(args.repeats + 1):  # the first round warms up (plane tables, oneDNN primitives)
        for name, path in paths.items():
            fit_module.render_inference = path
            t = time.perf_counter()
            residuals[name] = f._residual()[0]
            times[name].append(time.perf_counter() - t)
    fit_module.render_inference = ours
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    d = float((residuals["inference"] - residuals["autograd"]).abs().max())
    scale = float(residuals["autograd"].abs().max())
    model = "FFHQ-512 configuration, random weights" if args.ffhq512 else "golden network"
    print(f"{model}: {residuals['autograd'].numel()} residuals, a render per Jacobian column")
    for k in paths:
        print(f"  {k:9s}: median {med[k]:.2f} s a render ({', '.join(f'{t:.2f}' for t in times[k][1:])})")
    print(f"  ratio autograd / inference: {med['autograd'] / med['inference']:.2f}x")
    print(f"  a step of {f.a.numel() + 2} columns: {(f.a.numel() + 2) * med['inference'] / 60:.1f} min "
          f"instead of {(f.a.numel() + 2) * med['autograd'] / 60:.1f} min")  # fmt: skip
    print(f"  largest residual difference: {d:.2e} (largest residual {scale:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
