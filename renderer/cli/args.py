"""Argument types of the command line, shared by every command.

Each type converts the text typed for an option or raises ValueError naming the problem; `arg(type)`
makes argparse report that message (one line naming the option) instead of a generic one. Seeds are
checked by renderer.seeds.check_seed: the viewer's range and message.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

from ..camera import fov_to_focal
from ..seeds import check_seed, parse_seed_list

T = TypeVar("T")

MAX_SEEDS = 10000
"""Most seeds one --seeds list may name."""
MAX_NRR = 1024
"""Largest --nrr: memory grows with its square (1024 is 16x the rays of the reference's 256)."""
MAX_DEPTH_MULT = 16.0
"""Largest --depth-mult (samples per ray, and memory, grow with it)."""
MAX_CHUNK = 2**24
"""Largest --chunk: 16M grid points per decoder call is already several GB of activations."""
VIEWS = ("image", "raw", "depth")
"""--view values (renderer.engine.frames.view_pixels)."""


def arg(convert: Callable[[str], T]) -> Callable[[str], T]:
    """Wrap a converter so that argparse reports its ValueError message instead of a generic one."""

    def parse(text: str):
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc) or f"invalid value {text!r}") from None

    return parse


def parse_seeds(text: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]: comma-separated seeds and inclusive ranges, duplicates dropped, at most
    MAX_SEEDS (renderer.seeds.parse_seed_list; each seed in 0..SEED_MAX, the viewer's range and message)."""
    return parse_seed_list(text, MAX_SEEDS)


def seed(text: str) -> int:
    """One seed in 0..SEED_MAX (renderer.seeds.check_seed: the viewer's range and message)."""
    return check_seed(text)


def finite(text: str) -> float:
    """A finite float."""
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"expected a finite number, got {text!r}")
    return x


def fov(text: str) -> float:
    """A field of view in degrees that the camera module accepts."""
    x = finite(text)
    fov_to_focal(x)  # raises ValueError outside (0, 180)
    return x


def count(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
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


def bounded(low: float, high: float) -> Callable[[str], float]:
    """A finite float in (low, high]."""

    def parse(text: str) -> float:
        x = finite(text)
        if not low < x <= high:
            raise ValueError(f"expected a number in ({low:g}, {high:g}], got {text!r}")
        return x

    return parse


def path(text: str) -> str:
    """A non-empty file or folder path."""
    if not text.strip():
        raise ValueError("the path is empty")
    if "\0" in text:
        raise ValueError("the path holds a NUL character")
    return text


def iso_level(text: str) -> float | str:
    """'auto' or a finite float (mesh --level)."""
    if text.strip().lower() == "auto":
        return "auto"
    return finite(text)


__all__ = [
    "MAX_CHUNK",
    "MAX_DEPTH_MULT",
    "MAX_NRR",
    "MAX_SEEDS",
    "VIEWS",
    "arg",
    "bounded",
    "count",
    "finite",
    "fov",
    "iso_level",
    "parse_seeds",
    "path",
    "seed",
]
