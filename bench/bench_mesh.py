"""Mesh extraction benchmark: cached tri-planes vs the reference's per-chunk backbone, FFHQ-512 size.

Builds the released FFHQ-512 configuration with random weights (as bench_engine.py; timings do not
depend on the weight values) and samples the raw density on a 256^3 grid over the box two ways:

* cached: `renderer.model.density.sample_density` on planes computed once by `G.planes` (this project);
* per-chunk backbone: as the reference's gen_samples.py, mapping + backbone re-run for every
  1,000,000-point chunk before the decoder samples it (17 backbone runs at 256^3, 135 at 512^3).

It prints both times side by side with their ratio, checks that both give the same densities, then
runs a full 512^3 export (sampling, marching cubes, vertex colours, binary PLY) in a child process
and reports its peak RSS next to the RSS of the same process before extraction (model + planes).

    python bench/bench_mesh.py [--threads 2] [--res 256] [--mem-res 512]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout too
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import ffhq512_spec, peak_rss_mb  # noqa: E402

from renderer.camera import default_camera  # noqa: E402
from renderer.engine.cpu import cpu_description  # noqa: E402
from renderer.export.mesh import export_mesh  # noqa: E402
from renderer.model.density import DEFAULT_CHUNK, sample_density  # noqa: E402
from renderer.model.generator import TriPlaneGenerator  # noqa: E402

REFERENCE_BATCH = 1_000_000
"""gen_samples.py's max_batch."""


def grid_points(n: int, start: int, stop: int, box: float) -> torch.Tensor:
    """World points of flat grid indices [start, stop) (x slowest, z fastest), integer indices."""
    idx = torch.arange(start, stop, dtype=torch.int64)
    ijk = torch.stack([idx // (n * n), (idx // n) % n, idx % n], -1)
    return (-box / 2 + ijk.to(torch.float32) * (box / (n - 1)))[None]


@torch.no_grad()
def per_chunk_backbone(G, z, c, n: int, psi: float) -> np.ndarray:
    """The reference's loop: for every 1M-point chunk, mapping + backbone, then the decoder."""
    box = float(G.rendering_kwargs["box_warp"])
    total = n**3
    out = np.empty(total, np.float32)
    for start in range(0, total, REFERENCE_BATCH):
        stop = min(start + REFERENCE_BATCH, total)
        ws = G.mapping(z, c, truncation_psi=psi)
        planes = G.planes(ws)
        out[start:stop] = G.sample(grid_points(n, start, stop, box), planes)["sigma"][0, :, 0].numpy()
    return out.reshape(n, n, n)


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def build(threads: int):
    torch.set_num_threads(threads)
    torch.manual_seed(0)  # the same random weights every run
    G = TriPlaneGenerator(ffhq512_spec())
    c = default_camera(G.rendering_kwargs)[None]
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0))
    return G, z, c


def memory_child(args) -> None:
    """Child process: build, planes, then a full export at --mem-res; prints JSON with RSS figures."""
    G, z, c = build(args.threads)
    with torch.no_grad():
        planes = G.planes(G.mapping(z, c, truncation_psi=0.7))
    before, peak_before = rss_mb(), peak_rss_mb()
    t0 = time.perf_counter()
    probe = sample_density(G, planes, 64).sigma
    level = 10.0 if probe.min() < 10.0 < probe.max() else float(np.median(probe))
    with tempfile.TemporaryDirectory() as tmp:
        s = export_mesh(G, planes, Path(tmp) / "mesh.ply", args.mem_res, level, chunk=args.chunk)
        size = (Path(tmp) / "mesh.ply").stat().st_size
    print(
        json.dumps(
            {
                "before_mb": before,
                "peak_before_mb": peak_before,
                "peak_mb": peak_rss_mb(),
                "seconds": time.perf_counter() - t0,
                "vertices": s.n_vertices,
                "faces": s.n_faces,
                "level": level,
                "ply_mb": size / 2**20,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2, as on CI)")
    ap.add_argument("--res", type=int, default=256, help="grid for the timing comparison (default 256; 0 = skip)")
    ap.add_argument("--mem-res", type=int, default=512, help="grid for the peak-memory run (default 512; 0 = skip)")
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="points per decoder call (cached path)")
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args)
        return
    print(cpu_description(), flush=True)  # first: only ratios compare across CPUs

    if args.res:
        compare(args)
    if args.mem_res:
        cmd = [
            sys.executable,
            __file__,
            "--memory-child",
            "--threads",
            str(args.threads),
            "--mem-res",
            str(args.mem_res),
            "--chunk",
            str(args.chunk),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        m = json.loads(out)
        print(
            f"{args.mem_res}^3 export (sample + marching cubes + colours + PLY) in a fresh process: "
            f"{m['seconds']:.0f} s, {m['vertices']:,} vertices at level {m['level']:g}, PLY {m['ply_mb']:.0f} MB"
        )
        print(
            f"peak RSS {m['peak_mb']:.0f} MB; before extraction {m['before_mb']:.0f} MB resident (model + "
            f"planes; {m['peak_before_mb']:.0f} MB peak while building the model), so extraction adds up to "
            f"{m['peak_mb'] - m['before_mb']:.0f} MB; the {args.mem_res}^3 density volume alone is "
            f"{args.mem_res**3 * 4 / 2**20:.0f} MB"
        )


def compare(args) -> None:
    """Time the 256^3 density both ways and print the table."""
    G, z, c = build(args.threads)
    n = args.res
    with torch.no_grad():
        t0 = time.perf_counter()
        planes = G.planes(G.mapping(z, c, truncation_psi=0.7))
        t_backbone = time.perf_counter() - t0
        t0 = time.perf_counter()
        cached = sample_density(G, planes, n, chunk=args.chunk).sigma
        t_cached = time.perf_counter() - t0 + t_backbone
        t0 = time.perf_counter()
        reference = per_chunk_backbone(G, z, c, n, 0.7)
        t_ref = time.perf_counter() - t0
    chunks = -(-(n**3) // REFERENCE_BATCH)
    same = float(np.abs(cached - reference).max())
    print(
        f"FFHQ-512 configuration, random weights, {G.num_parameters() / 1e6:.1f} M parameters; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"{n}^3 grid = {n**3:,} points; backbone (mapping + planes) once: {t_backbone:.2f} s")
    print(f"{'method':<44} {'time':>9} {'backbone runs':>14}")
    print(f"{'cached planes (renderer.model.density)':<44} {t_cached:>7.1f} s {1:>14}")
    print(f"{'backbone per 1M-point chunk (reference)':<44} {t_ref:>7.1f} s {chunks:>14}")
    print(f"ratio reference / cached: {t_ref / t_cached:.2f}x; max |sigma difference| {same:.2e}")
    print(f"peak RSS of this process {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
