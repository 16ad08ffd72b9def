"""`triplane-render video`: an orbit or a latent-interpolation video (MP4), rendered through the engine.

    triplane-render video --network N --seeds 0,1,2 --kind orbit|interp --frames 120 --out v.mp4
    triplane-render video --path shot.json [--fps F] [--duration S] [--png-dir DIR] --out v.mp4
    triplane-render video --fit FITDIR --frames 120 --out v.mp4      (an orbit of a photo fit's latent)

`--path` takes a triplane-viz camera path or a nerfstudio camera_path.json (told apart by content;
renderer.paths.files); a nerfstudio path carries no latent, so --seeds (one seed; default 0) and
--trunc / --trunc-cutoff supply it. Our paths carry their latent, psi and cutoff per keyframe.

The output is checked before the network loads and written atomically (complete or absent).
"""

from __future__ import annotations

import argparse

from ..export.files import check_target
from ..export.video import KINDS, MAX_FRAMES, VideoSpec, write_video
from .args import MAX_DEPTH_MULT, MAX_NRR, arg, bounded, count, parse_seeds, path
from .common import (
    FIT_LATENT,
    ProgressBar,
    add_export_options,
    add_fit_option,
    engine_for,
    load_engine,
    read_cli_fit,
    usage_error,
)


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
    v.add_argument(
        "--seeds",
        type=arg(parse_seeds),
        metavar="LIST",
        help="seeds, e.g. 0,1,2 (required without --path; with a nerfstudio --path: its one seed, default 0)",
    )
    v.add_argument(
        "--path",
        dest="camera_path",
        metavar="FILE",
        type=arg(path),
        help="render a camera path: a triplane-viz path JSON or a nerfstudio camera_path.json",
    )
    v.add_argument(
        "--duration",
        type=arg(bounded(0.0, 3600.0)),
        default=None,
        metavar="S",
        help="with --path: seconds of video (default: the path's)",
    )
    v.add_argument(
        "--png-dir",
        type=arg(path),
        default=None,
        metavar="DIR",
        help="with --path: also write PNG frames, depth maps (.npy + 16-bit .png) and cameras.json to DIR",
    )
    add_fit_option(v, "--seeds (an orbit)")
    v.add_argument("--kind", choices=KINDS, default="orbit", help="orbit or interp (default orbit)")
    v.add_argument(
        "--frames",
        type=arg(count(1, MAX_FRAMES)),
        default=120,
        metavar="N",
        help="frames per seed (orbit) or per interpolation step (interp) (default 120)",
    )
    v.add_argument(
        "--fps",
        type=arg(bounded(0.0, 240.0)),
        default=None,
        help="frames per second, in (0, 240] (default 30; with --path: the path's)",
    )
    v.add_argument(
        "--view",
        choices=("image", "raw", "depth"),
        default=None,
        help="what to show (default image; with --path: the first keyframe's view)",
    )
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
    if args.camera_path is not None:
        if args.fit is not None:
            usage_error("--fit goes with an orbit, not --path")
        return run_path(args)
    seeds = args.seeds
    if args.fit is not None:
        if seeds is not None or args.kind != "orbit":
            usage_error("--fit makes an orbit of the fitted latent: leave out --seeds and --kind interp")
        seeds = [0.0]  # a placeholder: the fit's latent replaces the seed
    elif seeds is None:
        usage_error("video needs --seeds (or --path, or --fit)")
    for flag, value in (("--duration", args.duration), ("--png-dir", args.png_dir)):
        if value is not None:
            usage_error(f"{flag} goes with --path")
    spec = VideoSpec(
        seeds=list(seeds),
        kind=args.kind,
        frames=args.frames,
        fps=30.0 if args.fps is None else args.fps,
        psi=args.trunc,
        cutoff=args.trunc_cutoff,
        view=args.view or "image",
        neural_rendering_resolution=args.nrr,
        depth_multiplier=args.depth_mult,
        latent=FIT_LATENT if args.fit is not None else None,
    )
    spec.check()
    fit = read_cli_fit(args)
    out = check_target(args.out, args.force, (".mp4",), "video")
    engine = engine_for(args, fit)
    bar = ProgressBar(f"video {spec.total_frames()} frames", disable=args.quiet)
    try:
        summary = write_video(engine, spec, out, overwrite=args.force, progress=bar)
    finally:
        bar.close()
    print(summary.line())
    return 0


def run_path(args: argparse.Namespace) -> int:
    """Render a camera path file (ours or nerfstudio's) to MP4 (+ the PNG sequence)."""
    from dataclasses import replace

    from ..paths.files import load_any
    from ..paths.render import PathRenderOptions, write_path_video

    seeds = list(args.seeds) if args.seeds is not None else [0]
    if len(seeds) != 1:
        usage_error("with --path, --seeds takes one seed (the latent of a nerfstudio path's frames)")
    camera_path, kind = load_any(args.camera_path, seed=float(seeds[0]), psi=args.trunc, cutoff=args.trunc_cutoff)
    if kind != "nerfstudio" and args.seeds is not None:
        usage_error(f"{args.camera_path} carries its own latent; --seeds applies only to nerfstudio paths")
    changes = {}
    if args.fps is not None:
        changes["fps"] = args.fps
    if args.duration is not None:
        changes["duration"] = args.duration
    if changes:
        try:
            camera_path = replace(camera_path, **changes)
        except ValueError as e:
            usage_error(str(e))
    options = PathRenderOptions(view=args.view, neural_rendering_resolution=args.nrr, depth_multiplier=args.depth_mult)
    options.video_view(camera_path)
    out = check_target(args.out, args.force, (".mp4",), "video")
    engine = load_engine(args.network, args.device)
    bar = ProgressBar(f"video {camera_path.frame_count} frames", disable=args.quiet)
    try:
        summary = write_path_video(
            engine, camera_path, out, options, overwrite=args.force, progress=bar, png_dir=args.png_dir
        )
    finally:
        bar.close()
    print(summary.line())
    return 0
