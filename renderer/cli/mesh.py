"""`triplane-render mesh`: one seed's coloured mesh (.ply/.obj/.glb) or density volume (.mrc).

    triplane-render mesh --network N --seed S --res 256 --level 10 --out head.glb
    triplane-render mesh --fit FITDIR --res 256 --out photo.glb      (a photo fit's latent, in its model)

The output is checked before the network loads and written atomically (complete or absent).
"""

from __future__ import annotations

import argparse
import sys

from ..camera import camera_tuple, default_camera
from ..engine import LatentSpec, RenderRequest
from ..export.files import check_target
from ..export.mesh import check_level, default_level, export_mesh, render_level
from ..export.mesh_files import FORMATS
from ..model.density import MAX_RESOLUTION, MIN_RESOLUTION, check_resolution
from ..seeds import SEED_MAX
from .args import MAX_CHUNK, arg, count, iso_level, path, seed
from .common import (
    FIT_LATENT,
    ProgressBar,
    add_export_options,
    add_fit_option,
    engine_for,
    read_cli_fit,
    usage_error,
)


def register(sub) -> None:
    """Add `mesh` to the main parser's subcommands."""
    m = sub.add_parser(
        "mesh",
        help="extract a coloured mesh (.ply/.obj/.glb) or density volume (.mrc)",
        description="Extract one seed's surface by marching cubes on the raw density, sampled "
        "from cached tri-planes on an N^3 grid over the model's box. Vertices are in "
        "world units in the cameras' world frame; colours come from the decoder. The "
        "format follows the extension: .ply (binary, colours, normals), .obj, .glb, "
        ".mrc (the raw density volume, for ChimeraX).",
    )
    add_export_options(m)
    m.add_argument("--seed", type=arg(seed), default=None, metavar="S", help=f"seed, 0..{SEED_MAX} (default 0)")
    add_fit_option(m, "a seed")
    m.add_argument(
        "--res",
        type=arg(count(MIN_RESOLUTION, MAX_RESOLUTION)),
        default=256,
        metavar="N",
        help=f"grid resolution N ({MIN_RESOLUTION}..{MAX_RESOLUTION}, default 256)",
    )
    m.add_argument(
        "--level",
        type=arg(iso_level),
        default=None,
        metavar="L",
        help="iso-level on the raw density (default: the model's, 10 as in the reference recipe), "
        "or 'auto': the level where the volume render's surfaces lie",
    )
    m.add_argument(
        "--chunk",
        type=arg(count(1, MAX_CHUNK)),
        default=262_144,
        metavar="M",
        help=f"grid points per decoder call, 1..{MAX_CHUNK} (memory bound, default 262144)",
    )
    m.add_argument("--out", required=True, metavar="FILE", type=arg(path), help="output file: .ply, .obj, .glb or .mrc")
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Extract one seed's mesh (or density volume) from cached planes and write it by extension."""
    if args.fit is not None and args.seed is not None:
        usage_error("give --seed or --fit, not both")
    fit = read_cli_fit(args)
    out = check_target(args.out, args.force, FORMATS, "mesh")
    check_resolution(args.res)
    if args.level not in (None, "auto"):
        check_level(args.level)
    engine = engine_for(args, fit)
    latent = FIT_LATENT if fit is not None else LatentSpec(seed=float(args.seed or 0))
    G = engine.G
    rk = G.rendering_kwargs
    front = camera_tuple(default_camera(rk))
    req = RenderRequest(
        latent=latent,
        camera=front,
        cond_camera=front,
        psi=args.trunc,
        cutoff=args.trunc_cutoff,
    )
    planes, _ = engine.planes_for(req, engine.ws_for(req))
    level = args.level if args.level is not None else default_level(G)
    if level == "auto":
        level = render_level(G, planes)
        print(f"level {level:.4g} (the raw density where the render's surfaces lie)", file=sys.stderr)
    bar = ProgressBar(f"mesh {args.res}^3", disable=args.quiet)
    try:
        summary = export_mesh(G, planes, out, args.res, level, overwrite=args.force, chunk=args.chunk, progress=bar)
    finally:
        bar.close()
    print(summary.line())
    return 0
