"""`triplane-render dataset`: many seeds from many views, sharded and resumable, here or on a Ray cluster.

    triplane-render dataset --seeds 0-99999 --views 25 --out DIR [--network PATH] [--sampler training]
    triplane-render dataset ... --workers 2            # two local processes
    triplane-render dataset ... --ray [ADDRESS]        # Ray actors (pip install -e '.[cluster]')

Checks before any rendering: the output folder, the Ray address, the settings of a dataset already in the
folder (a rerun resumes it), and the free disk. See renderer.dataset for the layout and formats.
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from ..builtin import BUILTIN
from ..dataset import DatasetSettings, ViewSpec, load_camera_list, run_dataset
from ..dataset.plan import MAX_DATASET_SEEDS, MAX_VIEWS, parse_seed_ranges
from ..dataset.views import GAUSSIAN_STD, SAMPLERS, UNIFORM_PITCH, UNIFORM_YAW
from ..errors import CliError
from ..seeds import SEED_MAX
from .args import MAX_DEPTH_MULT, MAX_NRR, arg, bounded, count, finite, fov, path
from .common import PROG, resolve_device, usage_error


def _range(text: str) -> tuple[float, float]:
    """'LOW:HIGH' in radians."""
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"expected LOW:HIGH, got {text!r}")
    lo, hi = finite(parts[0]), finite(parts[1])
    if lo > hi:
        raise ValueError(f"the range {text!r} ends below its start")
    return lo, hi


def _std(text: str) -> float:
    """A standard deviation in radians: finite, >= 0."""
    x = finite(text)
    if x < 0:
        raise ValueError(f"expected a number >= 0, got {text!r}")
    return x


def _seeds(text: str) -> list[int]:
    return parse_seed_ranges(text, MAX_DATASET_SEEDS)


def register(sub) -> None:
    """Add `dataset` to the main parser's subcommands."""
    d = sub.add_parser(
        "dataset",
        help="render a multi-view dataset (images, depth, masks, cameras) for many seeds",
        description="Render every seed from --views cameras into --out: final and raw RGB, depth (float and "
        "16-bit PNG), opacity masks, optional normals, z and w; EG3D dataset.json labels and a nerfstudio "
        "transforms.json per seed. Work is split into shards of seeds; a rerun resumes. Output is identical "
        "however it is sharded or where it runs.",
    )
    d.add_argument(
        "--network",
        default=BUILTIN,
        metavar="PATH",
        type=arg(path),
        help=f"checkpoint (.pkl or .safetensors) or '{BUILTIN}' (default: the shipped model)",
    )
    d.add_argument(
        "--seeds",
        required=True,
        type=arg(_seeds),
        metavar="LIST",
        help=f"seeds and inclusive ranges, e.g. 0-99999; each in 0..{SEED_MAX} (at most {MAX_DATASET_SEEDS})",
    )
    d.add_argument(
        "--views",
        type=arg(count(1, MAX_VIEWS)),
        default=None,
        metavar="N",
        help=f"views per seed, 1..{MAX_VIEWS} (default 8; with --cameras: the list's length)",
    )
    d.add_argument("--out", required=True, metavar="DIR", type=arg(path), help="output folder (created if missing)")
    d.add_argument(
        "--sampler",
        choices=[s for s in SAMPLERS if s != "list"],
        default="training",
        help="how views are drawn: training (the model's own pose distribution: the built-in model's uniform "
        "orbit, a Gaussian around the frontal view for FFHQ-like models), gaussian, uniform, orbit (evenly "
        "spaced yaws) (default training)",
    )
    d.add_argument(
        "--cameras",
        metavar="FILE.json",
        type=arg(path),
        default=None,
        help="a fixed list of 25-value cameras (a JSON list, {\"cameras\": [...]} or an EG3D dataset.json), "
        "rendered for every seed",
    )
    d.add_argument(
        "--yaw-std",
        type=arg(_std),
        default=GAUSSIAN_STD[0],
        metavar="RAD",
        help=f"gaussian: yaw standard deviation, radians (default {GAUSSIAN_STD[0]})",
    )
    d.add_argument(
        "--pitch-std",
        type=arg(_std),
        default=GAUSSIAN_STD[1],
        metavar="RAD",
        help=f"gaussian: pitch standard deviation, radians (default {GAUSSIAN_STD[1]})",
    )
    d.add_argument(
        "--yaw-range",
        type=arg(_range),
        default=UNIFORM_YAW,
        metavar="LOW:HIGH",
        help="uniform: yaw range, radians (default a full circle)",
    )
    d.add_argument(
        "--pitch-range",
        type=arg(_range),
        default=UNIFORM_PITCH,
        metavar="LOW:HIGH",
        help="uniform: pitch range, radians (default -0.6:0.6)",
    )
    d.add_argument("--orbit-pitch", type=arg(finite), default=0.0, metavar="RAD", help="orbit: pitch (default 0)")
    d.add_argument("--fov", type=arg(fov), default=None, metavar="DEG", help="field of view (default: the model's)")
    d.add_argument("--trunc", type=arg(finite), default=1.0, metavar="PSI", help="truncation psi (default 1)")
    d.add_argument("--trunc-cutoff", type=arg(count(0)), default=None, metavar="N", help="truncate the first N ws")
    d.add_argument(
        "--nrr",
        type=arg(count(1, MAX_NRR)),
        default=None,
        metavar="N",
        help="neural rendering resolution (depth, masks, raw); default: the model's",
    )
    d.add_argument(
        "--depth-mult",
        type=arg(bounded(0.0, MAX_DEPTH_MULT)),
        default=1.0,
        metavar="F",
        help="multiply both depth sample counts (default 1)",
    )
    d.add_argument(
        "--sampling",
        choices=("deterministic", "stochastic"),
        default="deterministic",
        help="depth samples along rays: deterministic, or stochastic seeded from (seed, view) (default deterministic)",
    )
    d.add_argument("--raw", action="store_true", help="also write the raw (volume-rendered) RGB")
    d.add_argument("--normals", action="store_true", help="also write world-space normals from the depth")
    d.add_argument("--shard-size", type=arg(count(1)), default=16, metavar="N", help="seeds per shard (default 16)")
    d.add_argument(
        "--workers",
        type=arg(count(1, 1024)),
        default=None,
        metavar="N",
        help="local: worker processes (default 1; with --device cuda one per GPU); Ray: actors (default: as "
        "many as the cluster holds)",
    )
    d.add_argument("--device", default="cpu", help="local torch device, cpu or cuda (default cpu)")
    d.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run the shards as Ray actors: on the cluster at ADDRESS (HOST:PORT, ray://HOST:PORT or auto), or on "
        "a new local Ray instance without one",
    )
    d.add_argument(
        "--cpus-per-worker",
        type=arg(count(1, 1024)),
        default=1,
        metavar="N",
        help="Ray, clusters without GPUs: CPUs (and torch threads) per actor (default 1)",
    )
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> DatasetSettings:
    """The DatasetSettings the options describe (CliError/ValueError naming a bad one)."""
    if args.cameras is not None:
        if args.sampler != "training":
            usage_error("--cameras replaces --sampler; give one of them")
        cameras = load_camera_list(args.cameras)
        if args.views is not None and args.views != len(cameras):
            usage_error(f"--views {args.views} but {args.cameras} holds {len(cameras)} cameras")
        views = ViewSpec(sampler="list", views=len(cameras), cameras=cameras)
    else:
        views = ViewSpec(
            sampler=args.sampler,
            views=8 if args.views is None else args.views,
            yaw_std=args.yaw_std,
            pitch_std=args.pitch_std,
            yaw_range=args.yaw_range,
            pitch_range=args.pitch_range,
            orbit_pitch=args.orbit_pitch,
            fov_deg=args.fov,
        )
    settings = DatasetSettings(
        network=args.network,
        views=views,
        psi=args.trunc,
        cutoff=args.trunc_cutoff,
        neural_rendering_resolution=args.nrr,
        depth_multiplier=args.depth_mult,
        sampling=args.sampling,
        raw=args.raw,
        normals=args.normals,
    )
    settings.check()
    return settings


def run(args: argparse.Namespace) -> int:
    """Render the dataset; print one summary line."""
    settings = settings_from_args(args)
    if args.ray is None and args.device != "cpu":
        resolve_device(args.device)
    if args.ray is not None and args.device != "cpu":
        raise CliError("--device is for local runs; Ray actors take a GPU each when the cluster has GPUs")
    bar: tqdm | None = None

    def on_start(plan) -> None:
        nonlocal bar
        if plan.done:
            print(f"resuming: {len(plan.done)} of {len(plan.seeds)} seed(s) already finished", file=sys.stderr)
        if plan.other_code:
            print(
                f"{PROG}: warning: {plan.other_code} finished seed(s) were written by other code than this; they are "
                "kept (each seed's manifest.json names its code version)",
                file=sys.stderr,
            )
        bar = tqdm(
            total=plan.pending_seeds * settings.views.views,
            desc="dataset",
            unit="sample",
            file=sys.stderr,
            disable=args.quiet,
            smoothing=0.05,
        )

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    try:
        summary = run_dataset(
            settings,
            args.seeds,
            args.out,
            shard_size=args.shard_size,
            workers=args.workers,
            device=args.device,
            use_ray=args.ray is not None,
            ray_address=None if args.ray == "local" else args.ray,
            cpus_per_worker=args.cpus_per_worker,
            progress=progress,
            on_start=on_start,
        )
    finally:
        if bar is not None:
            bar.close()
    print(summary.line())
    return 0
