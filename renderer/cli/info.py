"""`triplane-render info PATH`: a checkpoint's architecture, rendering settings and parameter count."""

from __future__ import annotations

import argparse
import re

from .. import build_generator
from ..builtin import BUILTIN, MODEL_CARD, resolve
from ..checkpoint import read_checkpoint
from ..model.generator import PLANE_CHANNELS
from .args import arg, path


def register(sub) -> None:
    """Add `info` to the main parser's subcommands."""
    info = sub.add_parser(
        "info",
        help="print a checkpoint's architecture and rendering settings",
        description="Print a checkpoint's architecture, rendering settings and parameter count.",
    )
    info.add_argument(
        "path",
        metavar="PATH",
        type=arg(path),
        help=f"checkpoint: reference EG3D .pkl, native .safetensors, or '{BUILTIN}' (the shipped model)",
    )
    info.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print architecture, conditioning, parameter count and rendering settings of a checkpoint."""
    ckpt = read_checkpoint(resolve(args.path))
    G = build_generator(ckpt, device="cpu")
    ik, rk = ckpt.spec.init_kwargs, G.rendering_kwargs
    sd = G.state_dict()
    blocks = sorted(
        (int(m.group(1)), sd[k].shape[0])
        for k in sd
        if (m := re.fullmatch(r"backbone\.synthesis\.b(\d+)\.conv1\.weight", k))
    )
    n_map = sum(1 for k in sd if re.fullmatch(r"backbone\.mapping\.fc\d+\.weight", k))
    n_params = G.num_parameters()
    rows = [
        ("file", args.path),
        ("source format", ckpt.source_format),
        ("class", ik.get("class_name", type(G).__name__)),
        ("z_dim / c_dim / w_dim", f"{G.z_dim} / {G.c_dim} / {G.w_dim}"),
        ("num_ws", G.num_ws),
        ("mapping layers", n_map),
        ("channel_base / channel_max", f"{ik.get('channel_base', '?')} / {ik.get('channel_max', '?')}"),
        (
            "tri-planes",
            f"{G.plane_resolution} x {G.plane_resolution}, {3 * PLANE_CHANNELS} channels (3 x {PLANE_CHANNELS})",
        ),
        ("backbone channels", ", ".join(f"b{r}: {ch}" for r, ch in blocks)),
        ("img_resolution", G.img_resolution),
        ("neural rendering resolution", G.neural_rendering_resolution),
        ("super-resolution", rk.get("superresolution_module")),
        (
            "conditioning",
            f"c_gen_conditioning_zero={rk.get('c_gen_conditioning_zero', False)}, c_scale={rk.get('c_scale', 0)}",
        ),
        ("parameters", f"{n_params:,} ({n_params / 1e6:.2f} M)"),
        ("ray range", f"{rk.get('ray_start')} .. {rk.get('ray_end')}"),
        ("box_warp", rk.get("box_warp")),
        (
            "samples per ray",
            f"{rk.get('depth_resolution')} stratified + {rk.get('depth_resolution_importance')} importance",
        ),
        ("white_back", rk.get("white_back", False)),
        ("avg camera radius / pivot", f"{rk.get('avg_camera_radius')} / {rk.get('avg_camera_pivot')}"),
    ]
    if rk.get("default_focal"):
        rows.append(("default focal (normalised)", rk["default_focal"]))
    if rk.get("occupancy_resolution"):
        rows.append(("empty-space skipping", f"{rk['occupancy_resolution']}^3 occupancy grid per latent"))
    if "mesh_level" in rk:
        rows.append(("mesh level", rk["mesh_level"]))
    extra = ckpt.spec.extra
    if extra.get("model"):
        trained = (
            f", trained {extra['train_steps']} steps in {extra['train_minutes']} min" if "train_steps" in extra else ""
        )
        rows.append(("model", f"{extra['model']}{trained}"))
    if args.path == BUILTIN:
        rows.append(("model card", MODEL_CARD))
    width = max(len(k) for k, _ in rows) + 2
    for key, value in rows:
        print(f"{key + ':':<{width}}{value}")
    return 0
