"""Frame-time benchmark: full synthesis vs camera-only frames from cached tri-planes, FFHQ-512 size.

Builds the released FFHQ-512 configuration (channel_base 32768, channel_max 512, hybrid 8X
dual-conv super-resolution, neural rendering at 128x128, 48 + 48 samples per ray) with the
constructor's random weights, so no checkpoint is needed; timings do not depend on the
weight values. Prints, in one run, the median frame time of

* a full frame: mapping + backbone (tri-planes) + volume render + super-resolution, and
* a camera-only frame: `G.render_planes` on planes computed once by `G.planes`,

at 1x and 2x depth samples, their ratio, and the peak RSS.

    python bench/bench_engine.py [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout too

from renderer.camera import default_camera  # noqa: E402
from renderer.checkpoint.spec import ModelSpec  # noqa: E402
from renderer.engine.cpu import cpu_description  # noqa: E402
from renderer.model.generator import TriPlaneGenerator  # noqa: E402

FFHQ_RENDERING_KWARGS = {
    "image_resolution": 512,
    "disparity_space_sampling": False,
    "clamp_mode": "softplus",
    "superresolution_module": "training.superresolution.SuperresolutionHybrid8XDC",
    "c_gen_conditioning_zero": False,
    "gpc_reg_prob": 0.5,
    "c_scale": 1.0,
    "superresolution_noise_mode": "none",
    "density_reg": 0.25,
    "density_reg_p_dist": 0.004,
    "reg_type": "l1",
    "decoder_lr_mul": 1.0,
    "sr_antialias": True,
    "depth_resolution": 48,
    "depth_resolution_importance": 48,
    "ray_start": 2.25,
    "ray_end": 3.3,
    "box_warp": 1,
    "avg_camera_radius": 2.7,
    "avg_camera_pivot": [0, 0, 0.2],
}
"""train.py's ffhq cfg (eg3d-reference §2.6), as in the released ffhq512-128 model."""

FFHQ_INIT_KWARGS = {
    "class_name": "training.triplane.TriPlaneGenerator",
    "z_dim": 512,
    "w_dim": 512,
    "c_dim": 25,
    "img_resolution": 512,
    "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2},
    "channel_base": 32768,
    "channel_max": 512,
    "fused_modconv_default": "inference_only",
    "num_fp16_res": 0,
    "conv_clamp": None,
    "sr_num_fp16_res": 4,
    "sr_kwargs": {"channel_base": 32768, "channel_max": 512, "fused_modconv_default": "inference_only"},
    "rendering_kwargs": FFHQ_RENDERING_KWARGS,
}


def ffhq512_spec() -> ModelSpec:
    """The full-size FFHQ-512 model configuration (neural rendering at 128)."""
    return ModelSpec(
        init_kwargs=FFHQ_INIT_KWARGS, rendering_kwargs=FFHQ_RENDERING_KWARGS, neural_rendering_resolution=128
    )


def ffhq512_checkpoint(folder: str | Path) -> str:
    """The FFHQ-512 configuration with seeded random weights, written as a native checkpoint in `folder`."""
    from renderer.checkpoint import write_native
    from renderer.model.generator import TriPlaneGenerator

    torch.manual_seed(0)
    spec = ffhq512_spec()
    path = str(Path(folder) / "ffhq512-random.safetensors")
    write_native(path, spec, TriPlaneGenerator(spec).state_dict())
    return path


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SelfTimed(float):
    """Seconds a fn measured itself (its timed part only); median_times takes it instead of the wall time."""


def median_times(fns: dict, repeats: int, warmup: int) -> dict[str, float]:
    """Median wall time in seconds of each fn, run round-robin so that load drift hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            r = fn()
            times[name].append(r if isinstance(r, SelfTimed) else time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    """Build the model, time full and camera-only frames at 1x and 2x samples, print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2, as on CI)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (default 3)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs before each measurement (default 1)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    print(cpu_description(), flush=True)  # first: only ratios compare across CPUs
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    t0 = time.perf_counter()
    G = TriPlaneGenerator(ffhq512_spec()).to(device)
    build_s = time.perf_counter() - t0
    rk = G.rendering_kwargs
    c = default_camera(rk, yaw=0.3, pitch=-0.1)[None].to(device)
    c_front = default_camera(rk)[None].to(device)
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0)).to(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():
        ws = G.mapping(z, c_front, truncation_psi=0.7)
        planes = G.planes(ws)

        def full(mult):
            def run():
                w = G.mapping(z, c_front, truncation_psi=0.7)
                G.synthesis(w, c, noise_mode="const", depth_multiplier=mult)
                sync()

            return run

        def cached(mult):
            def run():
                G.render_planes(planes, ws, c, depth_multiplier=mult)
                sync()

            return run

        fns = {f"{kind} {mult}": make(mult) for mult in (1, 2) for kind, make in (("full", full), ("cached", cached))}
        t = median_times(fns, args.repeats, args.warmup)
        rows = [(mult, t[f"full {mult}"], t[f"cached {mult}"]) for mult in (1, 2)]

    print(
        f"FFHQ-512 configuration, random weights, {G.num_parameters() / 1e6:.1f} M parameters, "
        f"nrr {G.neural_rendering_resolution}, {rk['depth_resolution']}+{rk['depth_resolution_importance']} "
        f"samples at 1x"
    )
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, median of "
        f"{args.repeats} round-robin runs (after {args.warmup} warm-up), model built in {build_s:.1f} s"
    )
    print(f"{'samples':>8} {'full frame':>12} {'camera-only':>12} {'full/cached':>12}")
    for mult, t_full, t_cached in rows:
        print(f"{str(mult) + 'x':>8} {t_full * 1e3:>9.0f} ms {t_cached * 1e3:>9.0f} ms {t_full / t_cached:>11.2f}x")
    print(f"2x vs 1x: full {rows[1][1] / rows[0][1]:.2f}x, camera-only {rows[1][2] / rows[0][2]:.2f}x")
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
