"""`triplane-render mesh`, `video` and `images --from-png`: the export subcommands.

    triplane-render mesh --network N --seed S --res 256 --level 10 --out head.glb
    triplane-render video --network N --seeds 0,1,2 --kind orbit|interp --frames 120 --out v.mp4
    triplane-render images --from-png SHOT.png [--outdir DIR] [--network N]

`add_subcommands(subparsers)` registers them on the main parser (renderer/cli.py). Expected
failures become the CLI's one-line errors; outputs are checked before the network loads and
written atomically (complete or absent).
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .builtin import BUILTIN, resolve
from .camera import camera_tuple, default_camera
from .engine import LatentSpec, RenderEngine, RenderRequest
from .engine.frames import view_pixels
from .errors import ExportError
from .export.files import check_target
from .export.mesh import check_level, default_level, export_mesh, render_level
from .export.mesh_files import FORMATS
from .export.video import KINDS, MAX_FRAMES, VideoSpec, write_video
from .model.density import MAX_RESOLUTION, MIN_RESOLUTION, check_resolution


MAX_CHUNK = 2**24
"""Largest --chunk: 16M grid points per decoder call is already several GB of activations."""


def _cli():
    """renderer.cli, imported late (it imports this module while building its parser)."""
    from . import cli
    return cli


def _expected_errors(fn):
    """ExportError -> the CLI's CliError (one line, exit 2)."""
    @functools.wraps(fn)
    def run(args):
        try:
            return fn(args)
        except ExportError as e:
            raise _cli().CliError(str(e)) from None
    return run


class _Bar:
    """progress(fraction, stage) -> a tqdm bar on stderr (percent)."""

    def __init__(self, desc: str, disable: bool = False):
        self.bar = tqdm(total=1000, desc=desc, unit="‰", file=sys.stderr, disable=disable,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")
        self.done = 0

    def __call__(self, fraction: float, stage: str) -> None:
        n = int(fraction * 1000)
        if n > self.done:
            self.bar.update(n - self.done)
            self.done = n
        self.bar.set_postfix_str(stage, refresh=False)

    def close(self) -> None:
        self.bar.close()


def _load_engine(network: str, device: str) -> RenderEngine:
    cli = _cli()
    from . import load_generator

    path = cli._require_file(os.fspath(resolve(network)))
    return RenderEngine(load_generator(path, device=cli._resolve_device(device)), timed=False)


# ----------------------------------------------------------------- mesh
@_expected_errors
def cmd_mesh(args: argparse.Namespace) -> int:
    """Extract one seed's mesh (or density volume) from cached planes and write it by extension."""
    out = check_target(args.out, args.force, FORMATS, "mesh")
    check_resolution(args.res)
    if args.level not in (None, "auto"):
        check_level(args.level)
    engine = _load_engine(args.network, args.device)
    G = engine.G
    rk = G.rendering_kwargs
    front = camera_tuple(default_camera(rk))
    req = RenderRequest(latent=LatentSpec(seed=float(args.seed)), camera=front, cond_camera=front, psi=args.trunc,
                        cutoff=args.trunc_cutoff)
    planes, _ = engine.planes_for(req, engine.ws_for(req))
    level = args.level if args.level is not None else default_level(G)
    if level == "auto":
        level = render_level(G, planes)
        print(f"level {level:.4g} (the raw density where the render's surfaces lie)", file=sys.stderr)
    bar = _Bar(f"mesh {args.res}^3", disable=args.quiet)
    try:
        summary = export_mesh(G, planes, out, args.res, level, overwrite=args.force, chunk=args.chunk,
                              progress=bar)
    finally:
        bar.close()
    print(summary.line())
    return 0


# ----------------------------------------------------------------- video
@_expected_errors
def cmd_video(args: argparse.Namespace) -> int:
    """Render an orbit or an interpolation video to MP4."""
    spec = VideoSpec(seeds=list(args.seeds), kind=args.kind, frames=args.frames, fps=args.fps, psi=args.trunc,
                     cutoff=args.trunc_cutoff, view=args.view, neural_rendering_resolution=args.nrr,
                     depth_multiplier=args.depth_mult)
    spec.check()
    out = check_target(args.out, args.force, (".mp4",), "video")
    engine = _load_engine(args.network, args.device)
    bar = _Bar(f"video {spec.total_frames()} frames", disable=args.quiet)
    try:
        summary = write_video(engine, spec, out, overwrite=args.force, progress=bar)
    finally:
        bar.close()
    print(summary.line())
    return 0


# ----------------------------------------------------------------- images --from-png
@_expected_errors
def cmd_from_png(args: argparse.Namespace) -> int:
    """Re-render a screenshot (or a 16-bit "save depth" PNG) from its metadata; report whether the pixels
    (the depth values) are identical."""
    from PIL import Image

    from .export.screenshot import (depth_to_uint16, is_depth_record, read_metadata, request_from_metadata,
                                    save_depth_png, save_screenshot)

    shot = Path(args.from_png)
    meta = read_metadata(shot)
    req, saved_as = request_from_metadata(meta)
    with Image.open(shot) as im:
        mode, original = im.mode, np.asarray(im)
    depth_png = is_depth_record(meta)
    if depth_png:
        near, far = _depth_range_of(meta, shot)
    elif original.dtype != np.uint8:
        raise ExportError(f"{shot} is a {mode} image without the depth_near/depth_far of a 16-bit depth PNG; "
                          "only 8-bit screenshots and depth PNGs saved by triplane-viz can be re-rendered")
    network = args.network if args.network is not None else meta.get("model")
    if not network:
        raise ExportError(f"{shot}: the metadata names no model; give --network")
    outdir = Path(args.outdir) if args.outdir is not None else shot.parent
    target = outdir / f"{shot.stem}-rerender.png"
    if target.exists() and not target.is_dir() and not args.force:
        raise ExportError(f"{target} exists; not overwriting it (choose another --outdir, or replace it: --force)")
    out = check_target(target, overwrite=args.force, suffixes=(".png",), what="image")
    if out.resolve() == shot.resolve():
        raise ExportError("the re-render would replace the screenshot itself")
    if not meta.get("reproducible", True):
        print(f"{_cli().PROG}: warning: {shot.name} used stochastic sampling without a fixed seed; "
              "the re-render will differ", file=sys.stderr)
    engine = _load_engine(network, args.device)
    res = engine.render(req)
    record = dict(meta, rerendered_from=shot.name)
    if depth_png:
        pixels, new_near, new_far = depth_to_uint16(res.depth[0].float().cpu().numpy(),
                                                    res.alpha[0].float().cpu().numpy())
        for key in ("depth_near", "depth_far", "depth_encoding"):
            record.pop(key, None)
        save_depth_png(pixels, new_near, new_far, out, record, overwrite=args.force)
        what = "depth values"
    else:
        pixels = view_pixels(saved_as, res.image, res.raw, res.depth, res.alpha)
        save_screenshot(pixels, out, record, overwrite=args.force, sidecar=False)
        what = "pixels"
    if original.shape != pixels.shape:
        diff = f"a different size from {shot.name}"
    else:
        changed = original != pixels
        n = int((changed.any(-1) if changed.ndim == 3 else changed).sum())
        diff = f"identical {what} to {shot.name}" if n == 0 else f"{n} pixels differ from {shot.name}"
        if depth_png and n and (new_near, new_far) != (near, far):
            diff += f" (depth range {new_near:.6g}..{new_far:.6g}, was {near:.6g}..{far:.6g})"
    print(f"wrote {out} ({diff})")
    return 0


def _depth_range_of(meta: dict, shot: Path) -> tuple[float, float]:
    """(near, far) recorded in a depth PNG's metadata; ExportError if missing or not finite."""
    try:
        near, far = float(meta["depth_near"]), float(meta["depth_far"])
    except (KeyError, TypeError, ValueError):
        raise ExportError(f"{shot}: the depth PNG's metadata lacks a valid depth_near/depth_far") from None
    if not (np.isfinite(near) and np.isfinite(far)):
        raise ExportError(f"{shot}: the depth PNG's depth_near/depth_far are not finite")
    return near, far


def _images_with_from_png(images: argparse.ArgumentParser) -> None:
    """Give the existing `images` parser a --from-png mode (its --seeds and --outdir become optional there)."""
    images.add_argument("--from-png", metavar="SHOT.png", default=None, type=_cli()._arg_type(_cli()._path),
                        help="re-render a screenshot (or a 16-bit 'save depth' PNG) saved by triplane-viz from its "
                             "metadata (model, latent, cameras, settings), bit-for-bit in deterministic mode; "
                             "writes SHOT-rerender.png into --outdir (default: beside the screenshot; an existing "
                             "file is refused unless --force); --network overrides the model")
    defaults = {}
    for action in images._actions:  # argparse has no public API to relax a registered argument
        if action.dest in ("seeds", "outdir"):
            action.required = False
        if action.dest == "network":
            defaults["network"] = action.default
            action.default = None
    plain = images.get_default("func")

    def dispatch(args: argparse.Namespace) -> int:
        if args.from_png is not None:
            if args.seeds is not None:
                images.error("--from-png takes its seed from the screenshot; leave out --seeds")
            return cmd_from_png(args)
        missing = [name for name, value in (("--seeds", args.seeds), ("--outdir", args.outdir)) if value is None]
        if missing:
            images.error(f"the following arguments are required: {', '.join(missing)}")
        if args.network is None:
            args.network = defaults.get("network")
            if args.network is None:
                images.error("the following arguments are required: --network")
        return plain(args)

    images.set_defaults(func=dispatch)


# ----------------------------------------------------------------- registration
def _level(text: str):
    """'auto' or a finite float."""
    if text.strip().lower() == "auto":
        return "auto"
    return _cli()._finite(text)


def add_subcommands(sub) -> None:
    """Register `mesh` and `video` on the main parser's subparsers, and `--from-png` on `images`."""
    cli = _cli()
    arg, count, finite, bounded, path = cli._arg_type, cli._count, cli._finite, cli._bounded, cli._path

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--network", default=BUILTIN, metavar="PATH", type=arg(path),
                       help=f"checkpoint (.pkl or .safetensors) or '{BUILTIN}' (default: the shipped model)")
        p.add_argument("--trunc", type=arg(finite), default=1.0, metavar="PSI", help="truncation psi (default 1)")
        p.add_argument("--trunc-cutoff", type=arg(count(0)), default=None, metavar="N",
                       help="truncate only the first N ws (default: all)")
        p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
        p.add_argument("--force", action="store_true", help="replace an existing output file")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    m = sub.add_parser("mesh", help="extract a coloured mesh (.ply/.obj/.glb) or density volume (.mrc)",
                       description="Extract one seed's surface by marching cubes on the raw density, sampled "
                                   "from cached tri-planes on an N^3 grid over the model's box. Vertices are in "
                                   "world units in the cameras' world frame; colours come from the decoder. The "
                                   "format follows the extension: .ply (binary, colours, normals), .obj, .glb, "
                                   ".mrc (the raw density volume, for ChimeraX).")
    common(m)
    m.add_argument("--seed", type=arg(cli._seed), default=0, metavar="S",
                   help=f"seed, 0..{cli.MAX_SEED} (default 0)")
    m.add_argument("--res", type=arg(count(MIN_RESOLUTION, MAX_RESOLUTION)), default=256, metavar="N",
                   help=f"grid resolution N ({MIN_RESOLUTION}..{MAX_RESOLUTION}, default 256)")
    m.add_argument("--level", type=arg(_level), default=None, metavar="L",
                   help="iso-level on the raw density (default: the model's, 10 as in the reference recipe), "
                        "or 'auto': the level where the volume render's surfaces lie")
    m.add_argument("--chunk", type=arg(count(1, MAX_CHUNK)), default=262_144, metavar="M",
                   help=f"grid points per decoder call, 1..{MAX_CHUNK} (memory bound, default 262144)")
    m.add_argument("--out", required=True, metavar="FILE", type=arg(path),
                   help="output file: .ply, .obj, .glb or .mrc")
    m.set_defaults(func=cmd_mesh)

    v = sub.add_parser("video", help="render an orbit or latent-interpolation video (MP4)",
                       description="Render an MP4: 'orbit' circles the camera (yaw 0.35 sin 2pi t, pitch "
                                   "-0.05 + 0.25 cos 2pi t around the frontal view) once per seed; 'interp' "
                                   "moves the latent through the seeds and back to the first (W lerp) while "
                                   "the camera orbits once. Deterministic sampling.")
    common(v)
    v.add_argument("--seeds", required=True, type=arg(cli.parse_seeds), metavar="LIST", help="seeds, e.g. 0,1,2")
    v.add_argument("--kind", choices=KINDS, default="orbit", help="orbit or interp (default orbit)")
    v.add_argument("--frames", type=arg(count(1, MAX_FRAMES)), default=120, metavar="N",
                   help="frames per seed (orbit) or per interpolation step (interp) (default 120)")
    v.add_argument("--fps", type=arg(bounded(0.0, 240.0)), default=30.0,
                   help="frames per second, in (0, 240] (default 30)")
    v.add_argument("--view", choices=("image", "raw", "depth"), default="image", help="what to show (default image)")
    v.add_argument("--nrr", type=arg(count(1, cli.MAX_NRR)), default=None, metavar="N",
                   help=f"neural rendering resolution, 1..{cli.MAX_NRR}")
    v.add_argument("--depth-mult", type=arg(bounded(0.0, cli.MAX_DEPTH_MULT)), default=1.0, metavar="F",
                   help="multiply both depth sample counts (default 1; the reference's videos use 2)")
    v.add_argument("--out", required=True, metavar="FILE", type=arg(path), help="output .mp4")
    v.set_defaults(func=cmd_video)

    images = sub.choices.get("images")
    if images is not None:
        _images_with_from_png(images)
