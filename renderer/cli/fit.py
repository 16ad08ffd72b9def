"""`triplane-render fit`: photo to 3D. Crop the picture as the model's data was cropped, estimate the camera,
fit the latent (and camera), optionally tune the generator around it, and write the result.

    triplane-render fit PHOTO --network PATH --out DIR [--steps N] [--tune]

Writes DIR/crop.png, fit.json, w.npy, sheet.png (input | fit | 4 novel views) and, with --tune,
tuned.safetensors. The outputs are checked before the network loads; nothing is written until the fit
is done, and then all files or none.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from .. import load_generator
from ..builtin import BUILTIN, resolve
from ..errors import CliError
from ..fit import CameraGuess, FitInputError, FitSettings, Fitter, load_image, prepare
from ..fit.crop import SUBJECTS
from ..fit.output import output_paths, write_fit
from .args import arg, count, finite, path
from .common import ProgressBar, refuse_existing, require_file, resolve_device

MAX_STEPS = 5000


def register(sub) -> None:
    """Add `fit` to the main parser's subcommands."""
    f = sub.add_parser(
        "fit",
        help="fit a photo into the generator (latent + camera), optionally tune it",
        description="Photo to 3D: detect and crop the subject as the model's training data was cropped "
        "(faces: OpenCV Haar face and eye cascades, FFHQ alignment; objects: segmented from the background), "
        "estimate the camera, then fit w (and w+) with yaw/pitch, coarse to fine; --tune adds pivotal tuning "
        "of the generator's weights. Writes crop.png, fit.json, w.npy, sheet.png (and tuned.safetensors).",
    )
    f.add_argument("photo", metavar="PHOTO", type=arg(path), help="the picture (PNG, JPEG, ...; colour)")
    f.add_argument(
        "--network",
        default=BUILTIN,
        metavar="PATH",
        type=arg(path),
        help=f"checkpoint (.pkl or .safetensors) or '{BUILTIN}' (default: the shipped model)",
    )
    f.add_argument("--out", required=True, metavar="DIR", type=arg(path), help="output folder (created if missing)")
    f.add_argument(
        "--steps", type=arg(count(2, MAX_STEPS)), default=FitSettings().steps, metavar="N",
        help=f"latent + camera steps (default {FitSettings().steps})",
    )  # fmt: skip
    f.add_argument("--w-plus", type=arg(count(0, MAX_STEPS)), default=0, metavar="N", help="w+ steps after (default 0)")
    f.add_argument(
        "--polish", type=arg(count(0, MAX_STEPS)), default=0, metavar="N",
        help="L-BFGS steps on the whole final image after the Adam phases (3 iterations each; default 0)",
    )  # fmt: skip
    f.add_argument(
        "--newton", type=arg(count(0, MAX_STEPS)), default=0, metavar="N",
        help="Levenberg-Marquardt steps after those, at the model's neural resolution (a render per w coordinate "
        "and camera parameter each: about 500 on EG3D models; default 0)",
    )  # fmt: skip
    f.add_argument(
        "--sr-crop", type=arg(count(8, 1024)), default=None, metavar="PX",
        help="super-resolve a random PX x PX square of the raw render per Adam step, not the whole image "
        "(cheaper steps on 512^2 models; default: whole)",
    )  # fmt: skip
    f.add_argument("--tune", action="store_true", help="pivotal tuning of the generator's weights after the fit")
    f.add_argument("--tune-steps", type=arg(count(1, MAX_STEPS)), default=30, metavar="N", help="(default 30)")
    f.add_argument("--subject", choices=SUBJECTS, default=None, help="face, cat or object (default: from the model)")
    f.add_argument(
        "--box", type=arg(count(0, 1 << 20)), nargs=4, default=None, metavar=("X", "Y", "W", "H"),
        help="the face box in picture pixels instead of the detector's (object models: the region with the object)",
    )  # fmt: skip
    f.add_argument("--yaw", type=arg(finite), default=None, metavar="RAD", help="start camera yaw (skips estimation)")
    f.add_argument("--pitch", type=arg(finite), default=None, metavar="RAD", help="start camera pitch")
    f.add_argument("--fixed-camera", action="store_true", help="keep the camera estimate; fit the latent only")
    f.add_argument("--seed", type=arg(count(0, 2**31 - 1)), default=0, metavar="S", help="fit randomness (default 0)")
    f.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    f.add_argument("--force", action="store_true", help="replace existing outputs")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the outputs and the picture, load the model, prepare, fit, write."""
    paths = output_paths(args.out, args.tune)
    parent = os.path.dirname(os.path.abspath(args.out))
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CliError(f"{args.out} is a file; --out must be a folder")
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise CliError(f"cannot create the output folder {args.out}: {parent} is not a writable folder")
    if os.path.isdir(args.out) and not os.access(args.out, os.W_OK):
        raise CliError(f"cannot write to output folder {args.out}")
    refuse_existing(paths, args.force)
    if (args.yaw is None) != (args.pitch is None):
        raise CliError("give both --yaw and --pitch, or neither")
    try:
        rgb, alpha = load_image(args.photo)
    except FitInputError as e:
        raise CliError(str(e)) from None
    network = os.fspath(resolve(args.network))
    G = load_generator(require_file(network), device=resolve_device(args.device))
    camera = None if args.yaw is None else CameraGuess(args.yaw, args.pitch)
    try:
        prepared = prepare(G, rgb, alpha, subject=args.subject, camera=camera, box=args.box)
    except FitInputError as e:
        raise CliError(str(e)) from None
    print(f"{prepared.subject}: " + "; ".join(prepared.notes), file=sys.stderr)
    settings = FitSettings(
        steps=args.steps,
        w_plus_steps=args.w_plus,
        polish_steps=args.polish,
        newton_steps=args.newton,
        sr_crop=args.sr_crop,
        tune_steps=args.tune_steps if args.tune else 0,
        optimise_pose=not args.fixed_camera,
        seed=args.seed,
        mask_weight=1.0 if prepared.mask is not None else 0.0,
    )
    torch.manual_seed(args.seed)
    fitter = Fitter(G, prepared.target(), prepared.camera, settings)
    bar = ProgressBar(f"fit ({prepared.subject})", disable=args.quiet)
    try:
        while not fitter.done:
            rec = fitter.step()
            bar(len(fitter.history) / fitter.total_steps, f"{rec.phase} {rec.psnr:.1f} dB")
    finally:
        bar.close()
    result = fitter.result()
    write_fit(
        args.out, G, prepared, result, fitter.settings, network=args.network, photo=args.photo, overwrite=args.force
    )
    print(
        f"fit: yaw {result.yaw:+.3f} pitch {result.pitch:+.3f} rad, PSNR {result.psnr:.2f} dB in the input view, "
        f"{result.steps} steps in {result.seconds:.0f} s -> {args.out}"
    )
    return 0
