"""Headless command line (`triplane-render`): inspect, render, convert and export without a window.

One module per command, each with `register(subparsers)` and `run(args)`: info, images (with
`--from-png`), convert, mesh, inspect, video, dataset. args.py holds the argument types every command shares;
common.py the one-line error path, the checks made before slow work and the export options.

Expected failures (unreadable checkpoint, bad arguments, unwritable output folder, bad
values) print one line `triplane-render: error: <message>` on stderr and exit with status 2;
only bugs show a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..engine import memory
from ..errors import CheckpointError, CliError, ExportError
from . import convert, dataset, fit, images, info, inspect, mesh, video
from .common import PROG, Parser, fail

COMMANDS = (info, images, convert, mesh, inspect, video, dataset, fit)
"""The subcommands, in the order --help lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of all subcommands."""
    p = Parser(prog=PROG, description="Render and inspect EG3D-style tri-plane GAN checkpoints without a window.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `triplane-render` and `python -m renderer`; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, CheckpointError, ExportError, ValueError, OSError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def run() -> int:
    """The program (`triplane-render`, `python -m renderer`): main() under the render memory policy,
    which a library caller of main() keeps out of its own process."""
    memory.retain_freed_memory()
    return main()


__all__ = ["build_parser", "main", "run"]
