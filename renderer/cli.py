"""Headless command line (`triplane-render`): inspect, render and convert checkpoints without a window.

Expected failures (unreadable checkpoint, bad arguments, unwritable output folder, bad
values) print one line `triplane-render: error: <message>` on stderr and exit with status 2;
only bugs show a traceback.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path
from typing import NoReturn, Sequence

import torch
from tqdm import tqdm

from . import build_generator, load_generator
from .builtin import BUILTIN, resolve
from .camera import camera_tuple, default_camera, fov_to_focal
from .checkpoint import convert, read_checkpoint
from .engine import LatentSpec, RenderEngine, RenderRequest, memory
from .engine.frames import view_pixels
from .errors import CheckpointError, CliError, ExportError
from .export.files import ensure_writable_folder, write_png_atomic
from .model.generator import PLANE_CHANNELS
from .seeds import SEED_MAX, check_seed

PROG = "triplane-render"
MAX_SEEDS = 10000
MAX_SEED = SEED_MAX  # renderer.seeds: numpy RandomState accepts seeds in [0, 2**32)
VIEWS = ("image", "raw", "depth")
"""--view values (renderer.engine.frames.view_pixels)."""
MAX_NRR = 1024
"""Largest --nrr: memory grows with its square (1024 is 16x the rays of the reference's 256)."""
MAX_DEPTH_MULT = 16.0
"""Largest --depth-mult (samples per ray, and memory, grow with it)."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are the same single line as every other expected failure."""

    def error(self, message: str) -> NoReturn:
        _fail(f"{message} (see {PROG} --help)")


def _fail(message: str) -> NoReturn:
    """Print the one-line error and exit 2."""
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(2)


# ----------------------------------------------------------------- argument types
def parse_seeds(text: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]: comma-separated seeds and inclusive ranges, duplicates dropped.

    Each seed is checked by renderer.seeds.check_seed (0..SEED_MAX, the viewer's range and message)."""
    seeds: dict[int, None] = {}
    for part in text.split(","):
        m = re.fullmatch(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", part)
        if not m:
            if re.fullmatch(r"\s*-\s*[0-9]+\s*", part):
                check_seed(part)  # a negative seed: the range message
            raise ValueError(f"bad seed list {text!r}: use non-negative integers and ranges like 0-3,7")
        lo = check_seed(m.group(1))
        hi = check_seed(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"bad seed range {part.strip()!r}: the end is below the start")
        if hi - lo + 1 <= MAX_SEEDS:  # size checked before expanding the range
            seeds.update(dict.fromkeys(range(lo, hi + 1)))
        if hi - lo + 1 > MAX_SEEDS or len(seeds) > MAX_SEEDS:
            raise ValueError(f"too many seeds in {text!r} (at most {MAX_SEEDS} per run)")
    return list(seeds)


def _arg_type(convert):
    """Wrap a converter so that argparse reports its ValueError message instead of a generic one."""
    def parse(text: str):
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc) or f"invalid value {text!r}") from None
    return parse


def _finite(text: str) -> float:
    """A finite float."""
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"expected a finite number, got {text!r}")
    return x


def _fov(text: str) -> float:
    """A field of view in degrees that the camera module accepts."""
    x = _finite(text)
    fov_to_focal(x)  # raises ValueError outside (0, 180)
    return x


def _count(minimum: int, maximum: int | None = None):
    """An integer in [minimum, maximum] (no upper bound when maximum is None)."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
        if n < minimum or (maximum is not None and n > maximum):
            bounds = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
            raise ValueError(f"expected an integer {bounds}, got {text!r}")
        return n
    return parse


def _seed(text: str) -> int:
    """One seed in 0..SEED_MAX (renderer.seeds.check_seed: the viewer's range and message)."""
    return check_seed(text)


def _bounded(low: float, high: float):
    """A finite float in (low, high]."""
    def parse(text: str) -> float:
        x = _finite(text)
        if not low < x <= high:
            raise ValueError(f"expected a number in ({low:g}, {high:g}], got {text!r}")
        return x
    return parse


def _path(text: str) -> str:
    """A non-empty file or folder path."""
    if not text.strip():
        raise ValueError("the path is empty")
    if "\0" in text:
        raise ValueError("the path holds a NUL character")
    return text


# ----------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of all subcommands."""
    p = _Parser(prog=PROG, description="Render and inspect EG3D-style tri-plane GAN checkpoints without a window.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    info = sub.add_parser("info", help="print a checkpoint's architecture and rendering settings",
                          description="Print a checkpoint's architecture, rendering settings and parameter count.")
    info.add_argument("path", metavar="PATH", type=_arg_type(_path),
                      help=f"checkpoint: reference EG3D .pkl, native .safetensors, or '{BUILTIN}' (the shipped model)")
    info.set_defaults(func=cmd_info)

    im = sub.add_parser("images", help="render one PNG per seed",
                        description="Render one PNG per seed, named seedNNNN.png, into --outdir.")
    im.add_argument("--network", default=BUILTIN, metavar="PATH", type=_arg_type(_path),
                    help=f"checkpoint (.pkl or .safetensors) or '{BUILTIN}' (default: the shipped model)")
    im.add_argument("--seeds", required=True, type=_arg_type(parse_seeds), metavar="LIST",
                    help=f"seeds and inclusive ranges, e.g. 0-3,7; each in 0..{SEED_MAX} (at most {MAX_SEEDS})")
    im.add_argument("--trunc", type=_arg_type(_finite), default=1.0, metavar="PSI",
                    help="truncation psi (default 1 = none)")
    im.add_argument("--trunc-cutoff", type=_arg_type(_count(0)), default=None, metavar="N",
                    help="truncate only the first N ws (default: all)")
    im.add_argument("--yaw", type=_arg_type(_finite), default=0.0, metavar="RAD",
                    help="camera yaw offset from the frontal view, radians; + moves the camera to +x (default 0)")
    im.add_argument("--pitch", type=_arg_type(_finite), default=0.0, metavar="RAD",
                    help="camera pitch offset from the frontal view, radians; + moves the camera down (default 0)")
    im.add_argument("--fov", type=_arg_type(_fov), default=None, metavar="DEG",
                    help="field of view in degrees, reference convention (18.837 = focal 4.2647); "
                         "default: the model's standard camera")
    im.add_argument("--view", choices=VIEWS, default="image",
                    help="image: final RGB; raw: volume-rendered RGB at the neural rendering resolution; "
                         "depth: grey depth map, near = bright (default image)")
    im.add_argument("--outdir", required=True, metavar="DIR", type=_arg_type(_path),
                    help="output folder (created if missing)")
    im.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    im.add_argument("--force", action="store_true",
                    help="replace existing PNGs (otherwise an existing file is refused before any rendering)")
    im.add_argument("--sampling", choices=("deterministic", "stochastic"), default="deterministic",
                    help="depth samples along each ray: deterministic (flicker-free) or stochastic as in the "
                         "reference, drawn from a generator seeded with the image seed (default deterministic)")
    im.add_argument("--nrr", type=_arg_type(_count(1, MAX_NRR)), default=None, metavar="N",
                    help=f"neural rendering resolution, 1..{MAX_NRR} (default: the model's)")
    im.add_argument("--depth-mult", type=_arg_type(_bounded(0.0, MAX_DEPTH_MULT)), default=1.0, metavar="F",
                    help=f"multiply both depth sample counts, in (0, {MAX_DEPTH_MULT:g}] (default 1)")
    im.add_argument("--cond", choices=("front", "render"), default="front",
                    help="camera given to the mapping network: the frontal camera (as the reference scripts) "
                         "or the render camera (default front)")
    im.set_defaults(func=cmd_images)

    cv = sub.add_parser("convert", help="convert a checkpoint to the native .safetensors format",
                        description="Read a checkpoint (without executing any code in it) and write it as "
                                    "native .safetensors.")
    cv.add_argument("src", metavar="IN", type=_arg_type(_path),
                    help=f"checkpoint to read (.pkl or .safetensors) or '{BUILTIN}' (the shipped model)")
    cv.add_argument("dst", metavar="OUT", type=_arg_type(_path), help="output file, must end in .safetensors")
    cv.set_defaults(func=cmd_convert)
    from .cli_export import add_subcommands  # mesh, video, images --from-png
    add_subcommands(sub)
    return p


# ----------------------------------------------------------------- shared checks
def _require_file(path: str) -> str:
    """Fail before creating the output folder when the checkpoint does not exist (the reader checks the rest)."""
    if not os.path.exists(path):
        raise CliError(f"no such file: {path}")
    return path


def prepare_outdir(path: str) -> Path:
    """Create the output folder if needed and prove it is writable, before any slow work."""
    out = Path(path)
    try:
        ensure_writable_folder(out)
    except OSError as exc:
        raise CliError(f"cannot write to output folder {path}: {exc.strerror or exc}") from None
    return out


def _resolve_device(name: str):
    """torch.device for a --device value, or a CliError naming what is missing."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CliError(f"unknown device {name!r} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CliError(f"device {name!r} requested but CUDA is not available in this torch build/machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CliError(f"device {name!r} requested but MPS is not available")
    return device


# ----------------------------------------------------------------- output
def refuse_existing(paths: Sequence[Path], force: bool) -> None:
    """Before any slow work: CliError naming the first output that exists (and how many more) unless
    `force`; a folder in an output's place is refused even then."""
    for p in paths:
        if p.is_dir():
            raise CliError(f"{p} is a folder; cannot write an image there")
    if force:
        return
    existing = [p for p in paths if p.exists()]
    if len(existing) == 1:
        raise CliError(f"{existing[0]} exists; not overwriting it (choose another --outdir, or replace it: --force)")
    if existing:
        raise CliError(f"{existing[0]} and {len(existing) - 1} more of the outputs exist; not overwriting them "
                       "(choose another --outdir, or replace them: --force)")


# ----------------------------------------------------------------- commands
def cmd_info(args: argparse.Namespace) -> int:
    """Print architecture, conditioning, parameter count and rendering settings of a checkpoint."""
    ckpt = read_checkpoint(resolve(args.path))
    G = build_generator(ckpt, device="cpu")
    ik, rk = ckpt.spec.init_kwargs, G.rendering_kwargs
    sd = G.state_dict()
    blocks = sorted((int(m.group(1)), sd[k].shape[0]) for k in sd
                    if (m := re.fullmatch(r"backbone\.synthesis\.b(\d+)\.conv1\.weight", k)))
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
        ("tri-planes", f"{G.plane_resolution} x {G.plane_resolution}, "
                       f"{3 * PLANE_CHANNELS} channels (3 x {PLANE_CHANNELS})"),
        ("backbone channels", ", ".join(f"b{r}: {ch}" for r, ch in blocks)),
        ("img_resolution", G.img_resolution),
        ("neural rendering resolution", G.neural_rendering_resolution),
        ("super-resolution", rk.get("superresolution_module")),
        ("conditioning", f"c_gen_conditioning_zero={rk.get('c_gen_conditioning_zero', False)}, "
                         f"c_scale={rk.get('c_scale', 0)}"),
        ("parameters", f"{n_params:,} ({n_params / 1e6:.2f} M)"),
        ("ray range", f"{rk.get('ray_start')} .. {rk.get('ray_end')}"),
        ("box_warp", rk.get("box_warp")),
        ("samples per ray", f"{rk.get('depth_resolution')} stratified + "
                            f"{rk.get('depth_resolution_importance')} importance"),
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
        trained = (f", trained {extra['train_steps']} steps in {extra['train_minutes']} min"
                   if "train_steps" in extra else "")
        rows.append(("model", f"{extra['model']}{trained}"))
    if args.path == BUILTIN:
        rows.append(("model card", Path(__file__).parent / "builtin" / "model_card.md"))
    width = max(len(k) for k, _ in rows) + 2
    for key, value in rows:
        print(f"{key + ':':<{width}}{value}")
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    """Render one PNG per seed with the chosen view, camera and sampling."""
    network = _require_file(os.fspath(resolve(args.network)))
    outdir = prepare_outdir(args.outdir)
    targets = {seed: outdir / f"seed{seed:04d}.png" for seed in args.seeds}
    refuse_existing(list(targets.values()), args.force)
    device = _resolve_device(args.device)
    engine = RenderEngine(load_generator(network, device=device), timed=False)
    rk = engine.G.rendering_kwargs
    camera = camera_tuple(default_camera(rk, yaw=args.yaw, pitch=args.pitch, fov_deg=args.fov))
    cond = camera if args.cond == "render" else camera_tuple(default_camera(rk, fov_deg=args.fov))
    for seed in tqdm(args.seeds, desc="rendering", unit="img", disable=len(args.seeds) < 2, file=sys.stderr):
        req = RenderRequest(latent=LatentSpec(seed=seed), camera=camera, cond_camera=cond, psi=args.trunc,
                            cutoff=args.trunc_cutoff, sampling=args.sampling, rng_seed=seed,
                            neural_rendering_resolution=args.nrr, depth_multiplier=args.depth_mult,
                            superresolution=args.view == "image")
        res = engine.render(req)
        pixels = view_pixels(args.view, res.image, res.raw, res.depth, res.alpha)
        write_png_atomic(pixels, targets[seed], overwrite=args.force)
    print(f"wrote {len(args.seeds)} image(s) to {outdir}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Convert a checkpoint to native .safetensors (the reader never executes code from the file)."""
    src = os.fspath(resolve(args.src))  # 'builtin', as for info and --network
    if not args.dst.endswith(".safetensors"):
        raise CliError(f"output file must end in .safetensors: {args.dst}")
    if os.path.exists(src) and os.path.exists(args.dst) and os.path.samefile(src, args.dst):
        raise CliError("input and output are the same file")
    convert(src, args.dst)
    print(f"wrote {args.dst}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `triplane-render` and `python -m renderer`; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, CheckpointError, ExportError, ValueError, OSError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def run() -> int:
    """The program (`triplane-render`, `python -m renderer`): main() under the render memory policy,
    which a library caller of main() keeps out of its own process."""
    memory.retain_freed_memory()
    return main()
