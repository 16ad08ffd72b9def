"""`triplane-render images`: one PNG per seed, or `--from-png SHOT.png`: a screenshot re-rendered from its metadata.

    triplane-render images --network N --seeds 0-3,7 --trunc 0.7 --yaw 0.3 --outdir out
    triplane-render images --from-png SHOT.png [--outdir DIR] [--network N]
    triplane-render images --fit FITDIR --yaw 0.5 --outdir out        (a photo fit's latent, in its model)

Outputs are checked before the network loads and written atomically (complete or absent).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .. import load_generator
from ..builtin import BUILTIN, resolve
from ..camera import camera_tuple, default_camera
from ..engine import LatentSpec, RenderEngine, RenderRequest
from ..engine.frames import view_pixels
from ..errors import ExportError
from ..export.files import check_target, write_png_atomic
from ..export.screenshot import (
    custom_ws_from_metadata,
    depth_to_uint16,
    is_depth_record,
    read_metadata,
    request_from_metadata,
    save_depth_png,
    save_screenshot,
)
from ..seeds import SEED_MAX
from .args import MAX_DEPTH_MULT, MAX_NRR, MAX_SEEDS, VIEWS, arg, bounded, count, finite, fov, parse_seeds, path
from .common import (
    FIT_LATENT,
    PROG,
    add_fit_option,
    engine_for,
    load_engine,
    prepare_outdir,
    read_cli_fit,
    refuse_existing,
    require_file,
    resolve_device,
    usage_error,
)


def register(sub) -> None:
    """Add `images` (with its --from-png mode) to the main parser's subcommands."""
    im = sub.add_parser(
        "images",
        help="render one PNG per seed",
        description="Render one PNG per seed, named seedNNNN.png, into --outdir.",
    )
    # --network, --seeds and --outdir are required without --from-png: `run` checks them
    im.add_argument(
        "--network",
        default=None,
        metavar="PATH",
        type=arg(path),
        help=f"checkpoint (.pkl or .safetensors) or '{BUILTIN}' (default: the shipped model)",
    )
    im.add_argument(
        "--seeds",
        type=arg(parse_seeds),
        metavar="LIST",
        help=f"seeds and inclusive ranges, e.g. 0-3,7; each in 0..{SEED_MAX} (at most {MAX_SEEDS})",
    )
    add_fit_option(im, "--seeds (one PNG)")
    im.add_argument("--trunc", type=arg(finite), default=1.0, metavar="PSI", help="truncation psi (default 1 = none)")
    im.add_argument(
        "--trunc-cutoff",
        type=arg(count(0)),
        default=None,
        metavar="N",
        help="truncate only the first N ws (default: all)",
    )
    im.add_argument(
        "--yaw",
        type=arg(finite),
        default=0.0,
        metavar="RAD",
        help="camera yaw offset from the frontal view, radians; + moves the camera to +x (default 0)",
    )
    im.add_argument(
        "--pitch",
        type=arg(finite),
        default=0.0,
        metavar="RAD",
        help="camera pitch offset from the frontal view, radians; + moves the camera down (default 0)",
    )
    im.add_argument(
        "--fov",
        type=arg(fov),
        default=None,
        metavar="DEG",
        help="field of view in degrees, reference convention (18.837 = focal 4.2647); "
        "default: the model's standard camera",
    )
    im.add_argument(
        "--view",
        choices=VIEWS,
        default="image",
        help="image: final RGB; raw: volume-rendered RGB at the neural rendering resolution; "
        "depth: grey depth map, near = bright (default image)",
    )
    im.add_argument("--outdir", metavar="DIR", type=arg(path), help="output folder (created if missing)")
    im.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    im.add_argument(
        "--force",
        action="store_true",
        help="replace existing PNGs (otherwise an existing file is refused before any rendering)",
    )
    im.add_argument(
        "--sampling",
        choices=("deterministic", "stochastic"),
        default="deterministic",
        help="depth samples along each ray: deterministic (flicker-free) or stochastic as in the "
        "reference, drawn from a generator seeded with the image seed (default deterministic)",
    )
    im.add_argument(
        "--nrr",
        type=arg(count(1, MAX_NRR)),
        default=None,
        metavar="N",
        help=f"neural rendering resolution, 1..{MAX_NRR} (default: the model's)",
    )
    im.add_argument(
        "--depth-mult",
        type=arg(bounded(0.0, MAX_DEPTH_MULT)),
        default=1.0,
        metavar="F",
        help=f"multiply both depth sample counts, in (0, {MAX_DEPTH_MULT:g}] (default 1)",
    )
    im.add_argument(
        "--cond",
        choices=("front", "render"),
        default="front",
        help="camera given to the mapping network: the frontal camera (as the reference scripts) "
        "or the render camera (default front)",
    )
    im.add_argument(
        "--from-png",
        metavar="SHOT.png",
        default=None,
        type=arg(path),
        help="re-render a screenshot (or a 16-bit 'save depth' PNG) saved by triplane-viz from its "
        "metadata (model, latent, cameras, settings), bit-for-bit in deterministic mode; "
        "writes SHOT-rerender.png into --outdir (default: beside the screenshot; an existing "
        "file is refused unless --force); --network overrides the model",
    )
    im.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """--from-png re-renders a screenshot; otherwise one PNG per seed (--seeds and --outdir required)."""
    if args.from_png is not None:
        if args.seeds is not None:
            usage_error("--from-png takes its seed from the screenshot; leave out --seeds")
        return rerender_png(args)
    if args.fit is not None:
        if args.seeds is not None:
            usage_error("give --seeds or --fit, not both")
        if args.outdir is None:
            usage_error("the following arguments are required: --outdir")
        return render_fit(args)
    missing = [name for name, value in (("--seeds", args.seeds), ("--outdir", args.outdir)) if value is None]
    if missing:
        usage_error(f"the following arguments are required: {', '.join(missing)}")
    if args.network is None:
        args.network = BUILTIN
    return render_seeds(args)


def render_seeds(args: argparse.Namespace) -> int:
    """Render one PNG per seed with the chosen view, camera and sampling."""
    network = require_file(os.fspath(resolve(args.network)))
    outdir = prepare_outdir(args.outdir)
    targets = {seed: outdir / f"seed{seed:04d}.png" for seed in args.seeds}
    refuse_existing(list(targets.values()), args.force)
    device = resolve_device(args.device)
    engine = RenderEngine(load_generator(network, device=device), timed=False)
    render_pngs(args, engine, [(LatentSpec(seed=seed), seed, target) for seed, target in targets.items()])
    print(f"wrote {len(args.seeds)} image(s) to {outdir}")
    return 0


def render_fit(args: argparse.Namespace) -> int:
    """Render a saved fit's latent, in its model, at --yaw/--pitch: fit-yaw+Y.YY-pitch+P.PP.png."""
    fit = read_cli_fit(args)
    outdir = prepare_outdir(args.outdir)
    target = outdir / f"fit-yaw{args.yaw:+.2f}-pitch{args.pitch:+.2f}.png"
    refuse_existing([target], args.force)
    render_pngs(args, engine_for(args, fit), [(FIT_LATENT, 0, target)])
    print(f"wrote {target}")
    return 0


def render_pngs(args: argparse.Namespace, engine: RenderEngine, items: list[tuple[LatentSpec, int, Path]]) -> None:
    """Render each (latent, rng seed, target PNG) with the chosen view, camera and sampling."""
    rk = engine.G.rendering_kwargs
    camera = camera_tuple(default_camera(rk, yaw=args.yaw, pitch=args.pitch, fov_deg=args.fov))
    cond = camera if args.cond == "render" else camera_tuple(default_camera(rk, fov_deg=args.fov))
    for latent, seed, target in tqdm(items, desc="rendering", unit="img", disable=len(items) < 2, file=sys.stderr):
        req = RenderRequest(
            latent=latent,
            camera=camera,
            cond_camera=cond,
            psi=args.trunc,
            cutoff=args.trunc_cutoff,
            sampling=args.sampling,
            rng_seed=seed,
            neural_rendering_resolution=args.nrr,
            depth_multiplier=args.depth_mult,
            superresolution=args.view == "image",
        )
        res = engine.render(req)
        pixels = view_pixels(args.view, res.image, res.raw, res.depth, res.alpha)
        write_png_atomic(pixels, target, overwrite=args.force)


def rerender_png(args: argparse.Namespace) -> int:
    """Re-render a screenshot (or a 16-bit "save depth" PNG) from its metadata; report whether the pixels
    (the depth values) are identical."""
    shot = Path(args.from_png)
    meta = read_metadata(shot)
    req, saved_as = request_from_metadata(meta)
    with Image.open(shot) as im:
        mode, original = im.mode, np.asarray(im)
    depth_png = is_depth_record(meta)
    if depth_png:
        near, far = _depth_range_of(meta, shot)
    elif original.dtype != np.uint8:
        raise ExportError(
            f"{shot} is a {mode} image without the depth_near/depth_far of a 16-bit depth PNG; "
            "only 8-bit screenshots and depth PNGs saved by triplane-viz can be re-rendered"
        )
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
        print(
            f"{PROG}: warning: {shot.name} used stochastic sampling without a fixed seed; the re-render will differ",
            file=sys.stderr,
        )
    custom_ws = custom_ws_from_metadata(meta)  # set exactly when the request names a custom latent
    engine = load_engine(network, args.device)
    if custom_ws is not None and req.latent.custom is not None:
        try:
            engine.set_custom_latent(req.latent.custom, custom_ws)
        except ValueError as e:
            raise ExportError(f"{shot}: its fitted ws do not fit {network}: {e}") from None
    res = engine.render(req)
    record = dict(meta, rerendered_from=shot.name)
    if depth_png:
        pixels, new_near, new_far = depth_to_uint16(
            res.depth[0].float().cpu().numpy(), res.alpha[0].float().cpu().numpy()
        )
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
