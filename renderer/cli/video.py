"""`triplane-render video`: an orbit or a latent-interpolation video (MP4), rendered through the engine.

    triplane-render video --network N --seeds 0,1,2 --kind orbit|interp --frames 120 --out v.mp4

The output is checked before the network loads and written atomically (complete or absent).
"""

from __future__ import annotations

import argparse

from ..export.files import check_target
from ..export.video import KINDS, MAX_FRAMES, VideoSpec, write_video
from .args import MAX_DEPTH_MULT, MAX_NRR, arg, bounded, count, parse_seeds, path
from .common import ProgressBar, add_export_options, load_engine


def register(sub) -> None:
    """Add `video` to the main parser's subcommands."""
    v = sub.add_parser(
        "video",
        help="render an orbit or latent-interpolation video (MP4)",
        description="Render an MP4: 'orbit' circles the camera (yaw 0.35 sin 2pi t, pitch "
        "-0.05 + 0.25 cos 2pi t around the frontal view) once per seed; 'interp' "
        "moves the latent through the seeds and back to the first (W lerp) while "
        "the camera orbits once. Deterministic sampling.",
    )
    add_export_options(v)
    v.add_argument("--seeds", required=True, type=arg(parse_seeds), metavar="LIST", help="seeds, e.g. 0,1,2")
    v.add_argument("--kind", choices=KINDS, default="orbit", help="orbit or interp (default orbit)")
    v.add_argument(
        "--frames",
        type=arg(count(1, MAX_FRAMES)),
        default=120,
        metavar="N",
        help="frames per seed (orbit) or per interpolation step (interp) (default 120)",
    )
    v.add_argument(
        "--fps", type=arg(bounded(0.0, 240.0)), default=30.0, help="frames per second, in (0, 240] (default 30)"
    )
    v.add_argument("--view", choices=("image", "raw", "depth"), default="image", help="what to show (default image)")
    v.add_argument(
        "--nrr",
        type=arg(count(1, MAX_NRR)),
        default=None,
        metavar="N",
        help=f"neural rendering resolution, 1..{MAX_NRR}",
    )
    v.add_argument(
        "--depth-mult",
        type=arg(bounded(0.0, MAX_DEPTH_MULT)),
        default=1.0,
        metavar="F",
        help="multiply both depth sample counts (default 1; the reference's videos use 2)",
    )
    v.add_argument("--out", required=True, metavar="FILE", type=arg(path), help="output .mp4")
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render an orbit or an interpolation video to MP4."""
    spec = VideoSpec(
        seeds=list(args.seeds),
        kind=args.kind,
        frames=args.frames,
        fps=args.fps,
        psi=args.trunc,
        cutoff=args.trunc_cutoff,
        view=args.view,
        neural_rendering_resolution=args.nrr,
        depth_multiplier=args.depth_mult,
    )
    spec.check()
    out = check_target(args.out, args.force, (".mp4",), "video")
    engine = load_engine(args.network, args.device)
    bar = ProgressBar(f"video {spec.total_frames()} frames", disable=args.quiet)
    try:
        summary = write_video(engine, spec, out, overwrite=args.force, progress=bar)
    finally:
        bar.close()
    print(summary.line())
    return 0
