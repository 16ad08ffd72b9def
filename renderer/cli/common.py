"""What the commands share: the one-line error path, checks made before any slow work, the engine
loader, the progress bar and the options of the export commands.

Expected failures print one line `triplane-render: error: <message>` on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import torch
from tqdm import tqdm

from .. import load_generator
from ..builtin import BUILTIN, resolve
from ..engine import LatentSpec, RenderEngine
from ..errors import CliError
from ..export.files import ensure_writable_folder
from ..fit.crop import FitInputError
from ..fit.saved import SavedFit, read_fit
from .args import arg, count, finite, path

PROG = "triplane-render"


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are the same single line as every other expected failure."""

    def error(self, message: str) -> NoReturn:
        usage_error(message)


def fail(message: str) -> NoReturn:
    """Print the one-line error and exit 2."""
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(2)


def usage_error(message: str) -> NoReturn:
    """A usage error: the one-line error pointing at --help, exit 2."""
    fail(f"{message} (see {PROG} --help)")


def require_file(path: str) -> str:
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


def resolve_device(name: str):
    """torch.device for a --device value, or a CliError naming what is missing."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CliError(f"unknown device {name!r} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CliError(f"device {name!r} requested but CUDA is not available in this torch build/machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise CliError(f"device {name!r} requested but this machine has {n} CUDA device(s): use cuda:0 to cuda:{n - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CliError(f"device {name!r} requested but MPS is not available")
    return device


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
        raise CliError(
            f"{existing[0]} and {len(existing) - 1} more of the outputs exist; not overwriting them "
            "(choose another --outdir, or replace them: --force)"
        )


def load_engine(network: str | None, device: str) -> RenderEngine:
    """The engine of a --network ('builtin' or a checkpoint that must exist; None: the shipped model) on a
    --device, untimed."""
    path = require_file(os.fspath(resolve(network or BUILTIN)))
    return RenderEngine(load_generator(path, device=resolve_device(device)), timed=False)


FIT_NAME = "fit"
FIT_LATENT = LatentSpec(seed=0.0, custom=FIT_NAME)
"""The latent naming a --fit's ws, registered under FIT_NAME in the engine (`engine_for`)."""


def add_fit_option(p: argparse.ArgumentParser, what: str) -> None:
    """--fit DIR: a saved fit's latent, in the model it was fitted with, instead of `what`."""
    p.add_argument(
        "--fit",
        metavar="DIR",
        type=arg(path),
        default=None,
        help=f"a folder `{PROG} fit` wrote (or fit.json / w.npy in it): its fitted latent instead of {what}, in "
        "its model (the tuned checkpoint beside it, else the network it was fitted with; leave out --network)",
    )


def read_cli_fit(args: argparse.Namespace) -> SavedFit | None:
    """Before any output is touched: --fit's saved fit (None without --fit), or a CliError naming what is wrong
    with it."""
    if args.fit is None:
        return None
    if args.network is not None:
        usage_error("--fit brings its own model (the tuned checkpoint beside it, or its network); leave out --network")
    try:
        return read_fit(args.fit)
    except FitInputError as e:
        raise CliError(str(e)) from None


def engine_for(args: argparse.Namespace, fit: SavedFit | None) -> RenderEngine:
    """The engine of --network, or of a saved fit's model with its ws registered as FIT_LATENT (used as they are:
    no truncation); CliError when that model takes ws of another shape."""
    if fit is None:
        return load_engine(args.network, args.device)
    engine = load_engine(fit.network, args.device)
    try:
        engine.set_custom_latent(FIT_NAME, fit.ws)
    except ValueError as e:
        raise CliError(f"{args.fit}: its ws do not fit {fit.network}: {e}") from None
    return engine


class ProgressBar:
    """progress(fraction, stage) -> a tqdm bar on stderr (percent)."""

    def __init__(self, desc: str, disable: bool = False):
        self.bar = tqdm(
            total=1000,
            desc=desc,
            unit="‰",
            file=sys.stderr,
            disable=disable,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}",
        )
        self.done = 0

    def __call__(self, fraction: float, stage: str) -> None:
        n = int(fraction * 1000)
        if n > self.done:
            self.bar.update(n - self.done)
            self.done = n
        self.bar.set_postfix_str(stage, refresh=False)

    def close(self) -> None:
        self.bar.close()


def add_export_options(p: argparse.ArgumentParser) -> None:
    """The options `mesh` and `video` share: model, truncation, device, overwriting, progress bar."""
    p.add_argument(
        "--network",
        default=None,
        metavar="PATH",
        type=arg(path),
        help=f"checkpoint (.pkl or .safetensors) or '{BUILTIN}' (default: the shipped model)",
    )
    p.add_argument("--trunc", type=arg(finite), default=1.0, metavar="PSI", help="truncation psi (default 1)")
    p.add_argument(
        "--trunc-cutoff",
        type=arg(count(0)),
        default=None,
        metavar="N",
        help="truncate only the first N ws (default: all)",
    )
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
