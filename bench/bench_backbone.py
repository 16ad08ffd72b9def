"""What a larger backbone would add to the built-in model's latent-change frame: mapping + synthesis (latent ->
tri-planes) per configuration, timed side by side round-robin in one process, as a ratio to the second edition's
configuration (channel_base 4096, channel_max 64). The rest of a latent-change frame (occupancy grid, render,
super-resolution) does not depend on the backbone, so a config's extra time adds to bench_builtin's latent-change
figure as is (issue 18's bar: 150 ms on 2 cores).

    python bench/bench_backbone.py [--threads 2] [--repeats 15] [--configs 4096:64,8192:64,8192:96,16384:128]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout too

from renderer.builtin.config import builtin_spec  # noqa: E402
from renderer.engine.cpu import cpu_description  # noqa: E402
from renderer.model.generator import TriPlaneGenerator  # noqa: E402


def main() -> None:
    """Build each configuration with random weights, time latent -> planes, print a table with ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--configs", default="4096:64,8192:64,8192:96,16384:128", help="channel_base:channel_max,...")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_description()}, {args.threads} threads")
    configs = [tuple(int(v) for v in c.split(":")) for c in args.configs.split(",")]
    gens = {}
    for base, top in configs:
        torch.manual_seed(0)
        gens[(base, top)] = TriPlaneGenerator(builtin_spec(128, base, top, 256)).eval().requires_grad_(False)
    z, c = torch.randn(1, 512), torch.zeros(1, 25)
    times: dict[tuple[int, ...], list[float]] = {k: [] for k in gens}
    with torch.inference_mode():
        for r in range(args.repeats + 2):
            for k, G in gens.items():
                t0 = time.perf_counter()
                G.planes(G.mapping(z, c))
                if r >= 2:  # two warm-up rounds
                    times[k].append(time.perf_counter() - t0)
    ref = statistics.median(times[configs[0]])
    print(f"{'channel_base:max':>17} {'params':>9} {'latent -> planes':>17} {'ratio':>6} {'extra':>9}")
    for k, G in gens.items():
        med = statistics.median(times[k])
        n = sum(q.numel() for q in G.parameters()) / 1e6
        extra = 1000 * (med - ref)
        print(f"{k[0]:>11}:{k[1]:<5} {n:>7.2f} M {1000 * med:>14.1f} ms {med / ref:>6.2f} {extra:>+6.1f} ms")


if __name__ == "__main__":
    main()
