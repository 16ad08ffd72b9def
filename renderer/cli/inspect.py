"""`triplane-render inspect`: one seed's inspection sheet (plane PCA, channel grids, density slices, layer stats).

    triplane-render inspect --network N --seed S --out DIR [--trunc PSI] [--level L] [--slice-res N]

The outputs are checked before the network loads and written atomically (complete or absent).
"""

from __future__ import annotations

import argparse
import os

from ..builtin import BUILTIN
from ..camera import camera_tuple, default_camera
from ..engine import LatentSpec, RenderRequest
from ..export.mesh import default_level
from ..inspect.sheet import OUTPUT_FILES, inspect_latent, write_sheet
from ..seeds import SEED_MAX
from .args import arg, count, finite, path, seed
from .common import add_export_options, load_engine, prepare_outdir, refuse_existing

MIN_SLICE_RES, MAX_SLICE_RES = 8, 2048


def register(sub) -> None:
    """Add `inspect` to the main parser's subcommands."""
    p = sub.add_parser(
        "inspect",
        help="write one seed's inspection sheet: plane PCA, channel grids, density slices, layer statistics",
        description="Write figure files of one seed into a folder: the tri-planes' PCA side by side "
        f"({OUTPUT_FILES[0]}), each plane's 32 channels (plane0..2_channels.png), x/y/z density slices through "
        "the origin with the iso-level contour beside the decoded colour (slice_x/y/z.png) and every "
        "intermediate layer's shape and statistics (layers.json).",
    )
    add_export_options(p)
    p.add_argument("--seed", type=arg(seed), default=0, metavar="S", help=f"seed, 0..{SEED_MAX} (default 0)")
    p.add_argument(
        "--level",
        type=arg(finite),
        default=None,
        metavar="L",
        help="iso-level of the slices' contour on the raw density (default: the model's mesh level)",
    )
    p.add_argument(
        "--slice-res",
        type=arg(count(MIN_SLICE_RES, MAX_SLICE_RES)),
        default=256,
        metavar="N",
        help=f"slice images are N x N ({MIN_SLICE_RES}..{MAX_SLICE_RES}, default 256)",
    )
    p.add_argument("--out", required=True, metavar="DIR", type=arg(path), help="output folder, created if missing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Capture one seed's layers and planes, then write the sheet's files."""
    out = prepare_outdir(args.out)
    refuse_existing([out / name for name in OUTPUT_FILES], args.force)
    engine = load_engine(args.network, args.device)
    G = engine.G
    front = camera_tuple(default_camera(G.rendering_kwargs))
    req = RenderRequest(
        latent=LatentSpec(seed=float(args.seed)),
        camera=front,
        cond_camera=front,
        psi=args.trunc,
        cutoff=args.trunc_cutoff,
    )
    ws = engine.ws_for(req)
    level = args.level if args.level is not None else default_level(G)
    inspection = inspect_latent(G, ws, front, slice_resolution=args.slice_res)
    network = os.fspath(args.network or BUILTIN)
    meta = {"network": network, "seed": args.seed, "psi": args.trunc, "trunc_cutoff": args.trunc_cutoff}
    written = write_sheet(G, inspection, out, level, meta, overwrite=args.force)
    if not args.quiet:
        print(f"wrote {len(written)} files to {out}")
    return 0
