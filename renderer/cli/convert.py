"""`triplane-render convert IN OUT.safetensors`: any checkpoint as the native format (nothing in it is run)."""

from __future__ import annotations

import argparse
import os

from ..builtin import BUILTIN, resolve
from ..checkpoint import convert as convert_checkpoint
from ..errors import CliError
from .args import arg, path


def register(sub) -> None:
    """Add `convert` to the main parser's subcommands."""
    cv = sub.add_parser(
        "convert",
        help="convert a checkpoint to the native .safetensors format",
        description="Read a checkpoint (without executing any code in it) and write it as native .safetensors.",
    )
    cv.add_argument(
        "src",
        metavar="IN",
        type=arg(path),
        help=f"checkpoint to read (.pkl or .safetensors) or '{BUILTIN}' (the shipped model)",
    )
    cv.add_argument("dst", metavar="OUT", type=arg(path), help="output file, must end in .safetensors")
    cv.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Convert a checkpoint to native .safetensors (the reader never executes code from the file)."""
    src = os.fspath(resolve(args.src))  # 'builtin', as for info and --network
    if not args.dst.endswith(".safetensors"):
        raise CliError(f"output file must end in .safetensors: {args.dst}")
    if os.path.exists(src) and os.path.exists(args.dst) and os.path.samefile(src, args.dst):
        raise CliError("input and output are the same file")
    convert_checkpoint(src, args.dst)
    print(f"wrote {args.dst}")
    return 0
