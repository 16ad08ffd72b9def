"""Frame-time benchmark of the built-in model through the RenderEngine, at its default settings.

Times, as the viewer experiences them,
* a camera-only frame: same latent, new camera (tri-planes cached; volume render + super-resolution),
* a camera-only frame without super-resolution (the 'raw' and 'depth' views), and
* a full latent-change frame: new seed (mapping + backbone + render + super-resolution),
and prints the median over round-robin repeats with the per-stage split.

    python bench/bench_builtin.py [--threads 2] [--repeats 15]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout too

from renderer import load_generator  # noqa: E402
from renderer.camera import default_camera  # noqa: E402
from renderer.engine import LatentSpec, RenderEngine, RenderRequest, camera_tuple  # noqa: E402


def main() -> None:
    """Load the built-in model, time the three kinds of frame, print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--repeats", type=int, default=15, help="timed frames per kind (default 15)")
    ap.add_argument("--network", default="builtin")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    G = load_generator(args.network)
    engine = RenderEngine(G, cache_size=2)
    rk = G.rendering_kwargs
    front = camera_tuple(default_camera(rk))
    counter = iter(range(10**9))

    def request(seed: int, superres: bool = True) -> RenderRequest:
        yaw = 0.05 * (next(counter) % 40) - 1.0
        cam = camera_tuple(default_camera(rk, yaw=yaw, pitch=-0.1))
        return RenderRequest(latent=LatentSpec(seed=seed), camera=cam, cond_camera=front, superresolution=superres)

    seeds = iter(range(1000, 10**6))
    kinds = {
        "camera-only (image)": lambda: request(0),
        "camera-only (raw/depth view)": lambda: request(0, superres=False),
        "latent change (image)": lambda: request(next(seeds)),
    }
    engine.render(request(0))
    for make in kinds.values():  # warm-up
        engine.render(make())
    times = {k: [] for k in kinds}
    stages = {k: [] for k in kinds}
    for _ in range(args.repeats):
        for name, make in kinds.items():
            req = make()
            t0 = time.perf_counter()
            res = engine.render(req)
            times[name].append((time.perf_counter() - t0) * 1e3)
            stages[name].append(res.timings)
    print(f"built-in model: {G.num_parameters() / 1e6:.2f} M parameters, planes {G.plane_resolution}^2, "
          f"neural rendering {G.neural_rendering_resolution}^2 -> {G.img_resolution}^2, "
          f"{rk['depth_resolution']}+{rk['depth_resolution_importance']} samples per ray, deterministic")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats} round-robin frames")
    for name in kinds:
        split = {s: statistics.median(t[s] for t in stages[name]) for s in stages[name][0]}
        detail = ", ".join(f"{s} {v:.1f}" for s, v in split.items())
        print(f"  {name:<30} {statistics.median(times[name]):7.1f} ms   ({detail} ms)")


if __name__ == "__main__":
    main()
