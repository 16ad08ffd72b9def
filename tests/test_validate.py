"""viz.validate: typed numbers are clamped to the widget's range, non-numbers keep the old value; both say so."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from viz.validate import clamp_input, clamp_int


def ui() -> SimpleNamespace:
    return SimpleNamespace(input_error=None)


@pytest.mark.parametrize(
    "typed, expected, note",
    [
        (0.5, 0.5, None),
        (-1.0, -1.0, None),
        (2.0, 2.0, None),
        (5.0, 2.0, "psi: 5 is outside -1 .. 2; using 2"),
        (-1e30, -1.0, "using -1"),
        (math.nan, 0.7, "psi: nan is not a finite number; kept 0.7"),
        (1e20, 2.0, "1e+20 is outside"),
        (math.inf, 0.7, "not a finite number"),
        (-math.inf, 0.7, "kept 0.7"),
        ("abc", 0.7, "'abc' is not a finite number"),
    ],
)
def test_clamp_input(typed, expected, note):
    target = ui()
    assert clamp_input(target, "psi", typed, -1.0, 2.0, 0.7) == expected
    if note is None:
        assert target.input_error is None
    else:
        assert note in target.input_error


def test_an_accepted_value_clears_the_note():
    target = ui()
    clamp_input(target, "FOV", 500.0, 1.0, 120.0, 18.8)
    assert target.input_error and "FOV" in target.input_error
    assert clamp_input(target, "FOV", 30.0, 1.0, 120.0, 18.8) == 30.0 and target.input_error is None


@pytest.mark.parametrize("typed, expected", [(-5, 0), (2**31 - 1, 2**31 - 2), (7, 7), (10**30, 2**31 - 2)])
def test_clamp_int_for_seed_fields(typed, expected):
    target = ui()
    value = clamp_int(target, "seed", typed, 0, 2**31 - 2, 3)
    assert value == expected and type(value) is int
    assert (target.input_error is None) == (typed == expected)
    if typed == -5:
        assert target.input_error == "seed: -5 is outside 0 .. 2147483646; using 0"
