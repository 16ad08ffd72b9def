"""Dataset throughput: samples/s of `renderer.dataset.run_dataset` for the built-in model (128x128 images,
64x64 depth) and the FFHQ-512 configuration with random weights (512x512 images, 128x128 depth; see
bench_engine.ffhq512_spec), with 1 and 2 local workers, and the share of the time spent on output
(PNG/npy encoding, hashing, writing) against rendering.

    python bench/bench_dataset.py [--seeds 8] [--views 4] [--ffhq-seeds 2] [--ffhq-views 1] [--no-ffhq]

Each case renders into a fresh temporary folder. samples/s is over the whole run after the driver has loaded
the model: with 2 workers it includes starting the two processes and their model loads (the price a short
run pays). One worker uses all torch threads; two use cores / 2 each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout too
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import ffhq512_spec  # noqa: E402

from renderer.checkpoint.native import write_native  # noqa: E402
from renderer.dataset import DatasetSettings, ViewSpec, run_dataset  # noqa: E402
from renderer.engine.cpu import cpu_description  # noqa: E402
from renderer.model.generator import TriPlaneGenerator  # noqa: E402


def case(name: str, network: str, seeds: int, views: int, workers: int) -> None:
    """Run one dataset and print its line."""
    settings = DatasetSettings(network=network, views=ViewSpec(views=views))
    with tempfile.TemporaryDirectory(prefix="bench-dataset-") as tmp:
        t0 = time.perf_counter()
        s = run_dataset(settings, list(range(seeds)), Path(tmp) / "out", shard_size=1, workers=workers)
        wall = time.perf_counter() - t0
    t = s.timing
    render, output = t.get("render_s", 0.0), t.get("output_s", 0.0)
    share = output / (render + output) if render + output > 0 else 0.0
    write_share = t.get("write_s", 0.0) / (render + output) if render + output > 0 else 0.0
    print(
        f"{name:<10} workers {workers}: {s.samples:3d} samples in {s.seconds:6.1f} s = {s.samples_per_second:6.2f} "
        f"samples/s ({s.seconds / max(s.samples, 1):.2f} s/sample; {wall:.1f} s with the driver's model load); "
        f"output {share * 100:4.1f}% of worker time (of it file writes {write_share * 100:.1f}%), "
        f"{s.bytes / max(s.samples, 1) / 1e3:.0f} kB/sample",
        flush=True,
    )


def main() -> None:
    """Print the CPU, then one line per (model, workers) case."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8, help="built-in model: seeds (default 8)")
    ap.add_argument("--views", type=int, default=4, help="built-in model: views per seed (default 4)")
    ap.add_argument("--ffhq-seeds", type=int, default=2, help="FFHQ-512: seeds (default 2)")
    ap.add_argument("--ffhq-views", type=int, default=1, help="FFHQ-512: views per seed (default 1)")
    ap.add_argument("--no-ffhq", action="store_true", help="skip the FFHQ-512 cases")
    args = ap.parse_args()
    print(cpu_description(), flush=True)  # first: only ratios compare across CPUs
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads", flush=True)
    for workers in (1, 2):
        case("builtin", "builtin", args.seeds, args.views, workers)
    if args.no_ffhq:
        return
    with tempfile.TemporaryDirectory(prefix="bench-ffhq-") as tmp:
        torch.manual_seed(0)
        spec = ffhq512_spec()
        G = TriPlaneGenerator(spec)
        path = Path(tmp) / "ffhq512-random.safetensors"
        write_native(path, spec, G.state_dict())
        del G
        for workers in (1, 2):
            case("ffhq512", str(path), args.ffhq_seeds, args.ffhq_views, workers)


if __name__ == "__main__":
    main()
