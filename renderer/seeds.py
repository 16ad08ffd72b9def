"""Seeds: the one range, the one refusal message and the one way to print a seed, for the CLI and the viewer.

A seed picks the latent `np.random.RandomState(seed).randn(1, z_dim)` (renderer.engine.seed_z), so
it is an integer in 0..SEED_MAX, the range numpy's RandomState accepts. `check_seed` accepts
exactly that range (ints, integral floats and integral strings) and refuses anything else with one
message naming the value and the range; it never wraps or rounds. `seed_label` prints a seed for
file names and metadata: whole seeds as plain integers, fractional ones (the viewer's dragged seed,
which blends two neighbouring seeds) with two decimals.
"""

from __future__ import annotations

import math
import re

SEED_MAX = 2**32 - 1
"""The largest seed (numpy RandomState seeds lie in [0, 2**32))."""
RANGE_TEXT = f"0…{SEED_MAX}"
"""The range as the messages print it."""

_INTEGER = re.compile(r"\s*([+-]?)\s*([0-9]+)\s*")
_LONGEST_SHOWN = 24
"""Longer typed values are shortened in the message (the value itself can be any length)."""


def _shown(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _LONGEST_SHOWN else f"{text[:12]}…({len(text)} characters)"


def check_seed(value) -> int:
    """The seed `value` as an int in 0..SEED_MAX; ValueError naming the value and the range otherwise.

    Accepts ints, integral floats (5.0) and strings of decimal digits (optionally signed, surrounding
    spaces allowed). Refuses booleans, fractions, NaN/inf and anything outside the range (no wrap-around).
    """
    if isinstance(value, bool):
        raise ValueError(f"seed {value!r} is not an integer in {RANGE_TEXT}")
    if isinstance(value, int):
        n = int(value)
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError(f"seed {value!r} is not an integer in {RANGE_TEXT}")
        n = int(value)
    elif isinstance(value, str):
        m = _INTEGER.fullmatch(value)
        if m is None:
            raise ValueError(f"seed {_shown(value)!r} is not an integer in {RANGE_TEXT}")
        sign, digits = m.groups()
        digits = digits.lstrip("0") or "0"
        if len(digits) > len(str(SEED_MAX)):  # also keeps int() away from huge digit strings
            raise ValueError(f"seed {sign}{_shown(digits)} is outside {RANGE_TEXT}")
        n = -int(digits) if sign == "-" else int(digits)
    else:
        try:
            n = int(value.__index__())  # numpy integers and other exact integer types
        except (AttributeError, TypeError):
            raise ValueError(f"seed {value!r} is not an integer in {RANGE_TEXT}") from None
    if not 0 <= n <= SEED_MAX:
        shown = str(n) if n.bit_length() <= 128 else f"{'-' if n < 0 else ''}2**{n.bit_length() - 1} or more"
        raise ValueError(f"seed {shown} is outside {RANGE_TEXT}")
    return n


_INTEGRAL_TOLERANCE = 1e-3
"""Largest distance from a whole number still printed as that number (float32 slider noise is far smaller
below 2**24, where float32 still holds fractions; far larger seeds reach here only as exact float64)."""


def seed_label(seed: float) -> str:
    """A seed for file names and metadata: '5', '3000000000', or two decimals for a fractional seed ('5.80').

    Whole seeds, and values within float32 rounding of one (4.9999995 from a float32 slider), print
    as plain integers, never in exponent notation. Other values print rounded to two decimals, so
    5.800000190734863 (float32 5.8) is '5.80'; a fraction that rounds to .00 keeps its decimals
    ('5.00' for 5.001) so it is never mistaken for the whole seed.
    """
    x = float(seed)
    if not math.isfinite(x):
        raise ValueError(f"seed {seed!r} is not a number")
    whole = round(x)
    if x == whole or abs(x - whole) <= min(abs(x) * 2.0**-23, _INTEGRAL_TOLERANCE):
        return str(int(whole))
    return f"{x:.2f}"


def parse_seed_list(text: str, limit: int) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]: comma-separated seeds and inclusive ranges in the order given, duplicates
    dropped, each checked by check_seed; more than `limit` seeds is refused (the size is checked before a range
    is expanded)."""
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
        if hi - lo + 1 > limit:
            raise ValueError(f"too many seeds in {text!r} (at most {limit} per run)")
        seeds.update(dict.fromkeys(range(lo, hi + 1)))
        if len(seeds) > limit:
            raise ValueError(f"too many seeds in {text!r} (at most {limit} per run)")
    return list(seeds)
