"""Frame-time benchmark of the built-in model through the RenderEngine, at its default settings.

Times, as the viewer experiences them,
* a camera-only frame: same latent, new camera (tri-planes cached; volume render + super-resolution),
* a camera-only frame without super-resolution (the 'raw' and 'depth' views), and
* a full latent-change frame: new seed (mapping + backbone + occupancy grid + render + super-resolution),
* the camera-only and latent-change frames again with every ray sampled over the whole ray range
  (no empty-space skipping: the straightforward path),
and prints the median over round-robin repeats with the per-stage split, then the second edition's bars
(issue 18, image view at 256^2 on 2 cores): camera-only frame <= 60 ms, latent change <= 150 ms.

    python bench/bench_builtin.py [--threads 2] [--repeats 15] [--network builtin|PATH]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout too

from renderer import load_generator  # noqa: E402
from renderer.camera import camera_tuple, default_camera  # noqa: E402
from renderer.engine import LatentSpec, RenderEngine, RenderRequest, memory  # noqa: E402
from renderer.engine.cpu import cpu_description  # noqa: E402

BARS = {"camera-only (image)": 60.0, "latent change (image)": 150.0}
"""Issue 18's frame-time bars (ms) for the image view on 2 cores."""


def main() -> None:
    """Load the built-in model, time the three kinds of frame, print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--repeats", type=int, default=15, help="timed frames per kind (default 15)")
    ap.add_argument("--network", default="builtin")
    args = ap.parse_args()
    print(cpu_description(), flush=True)  # first: only ratios compare across CPUs
    memory.retain_freed_memory()  # as the viewer does
    torch.set_num_threads(args.threads)
    G = load_generator(args.network)
    engine = RenderEngine(G, cache_size=2)
    full = copy.deepcopy(G)  # the straightforward path: every ray sampled over the whole ray range
    full.rendering_kwargs.pop("occupancy_resolution", None)
    engines = {True: engine, False: RenderEngine(full, cache_size=2)}
    rk = G.rendering_kwargs
    front = camera_tuple(default_camera(rk))
    counter = iter(range(10**9))

    def request(seed: int, superres: bool = True, skip: bool = True) -> tuple[RenderRequest, bool]:
        yaw = 0.05 * (next(counter) % 40) - 1.0
        cam = camera_tuple(default_camera(rk, yaw=yaw, pitch=-0.1))
        return RenderRequest(
            latent=LatentSpec(seed=seed), camera=cam, cond_camera=front, superresolution=superres
        ), skip

    seeds = iter(range(1000, 10**6))
    kinds = {
        "camera-only (image)": lambda: request(0),
        "camera-only (raw/depth view)": lambda: request(0, superres=False),
        "latent change (image)": lambda: request(next(seeds)),
        "camera-only, no skipping": lambda: request(0, skip=False),
        "latent change, no skipping": lambda: request(next(seeds), skip=False),
    }
    for skip in engines:
        engines[skip].render(request(0)[0])
    for make in kinds.values():  # warm-up
        req, skip = make()
        engines[skip].render(req)
    times = {k: [] for k in kinds}
    stages = {k: [] for k in kinds}
    for _ in range(args.repeats):
        for name, make in kinds.items():
            req, skip = make()
            t0 = time.perf_counter()
            res = engines[skip].render(req)
            times[name].append((time.perf_counter() - t0) * 1e3)
            stages[name].append(res.timings)
    print(
        f"built-in model: {G.num_parameters() / 1e6:.2f} M parameters, planes {G.plane_resolution}^2, "
        f"neural rendering {G.neural_rendering_resolution}^2 -> {G.img_resolution}^2, "
        f"{rk['depth_resolution']}+{rk['depth_resolution_importance']} samples per ray, deterministic"
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats} round-robin frames")
    for name in kinds:
        split = {s: statistics.median(t[s] for t in stages[name]) for s in stages[name][0]}
        detail = ", ".join(f"{s} {v:.1f}" for s, v in split.items())
        print(f"  {name:<30} {statistics.median(times[name]):7.1f} ms   ({detail} ms)")
    for what in ("camera-only", "latent change"):
        ratio = statistics.median(times[f"{what}, no skipping"]) / statistics.median(times[f"{what} (image)"])
        print(f"  {what}: empty-space skipping is {ratio:.2f}x faster than sampling the whole ray range")
    for name, bar in BARS.items():
        t = statistics.median(times[name])
        verdict = "PASS" if t <= bar else "FAIL"
        print(f"  bar: {name} at {G.img_resolution}^2 {t:.1f} ms <= {bar:.0f} ms {verdict} ({args.threads} threads)")


if __name__ == "__main__":
    main()
