"""Seeds (renderer.seeds): one range 0..2**32-1 and one refusal message for the CLI and the viewer, and labels
for file names and metadata without float formatting."""

from __future__ import annotations

import numpy as np
import pytest

from renderer.engine import seed_z
from renderer.export.screenshot import summary_chunks
from renderer.seeds import SEED_MAX, check_seed, seed_label

RANGE = "0…4294967295"


def test_range_is_numpys_and_the_engines():
    assert SEED_MAX == 2**32 - 1
    seed_z(check_seed(SEED_MAX), 4)  # the engine takes the largest seed the check lets through
    with pytest.raises(ValueError):
        seed_z(SEED_MAX + 1, 4)
    with pytest.raises(ValueError):
        np.random.RandomState(SEED_MAX + 1)


@pytest.mark.parametrize(
    "value, expected",
    [
        (0, 0),
        (7, 7),
        (SEED_MAX, SEED_MAX),
        (3_000_000_000, 3_000_000_000),
        ("3000000000", 3_000_000_000),
        (" 12 ", 12),
        ("4294967295", SEED_MAX),
        ("007", 7),
        (5.0, 5),
        (np.int64(9), 9),
        (np.uint32(SEED_MAX), SEED_MAX),
    ],
)
def test_check_seed_accepts_the_whole_range_without_wrapping(value, expected):
    got = check_seed(value)
    assert got == expected and type(got) is int


@pytest.mark.parametrize(
    "value, message",
    [
        (2**32, f"seed 4294967296 is outside {RANGE}"),
        ("4294967296", f"seed 4294967296 is outside {RANGE}"),
        (99999999999999, f"seed 99999999999999 is outside {RANGE}"),
        ("99999999999999", f"seed 99999999999999 is outside {RANGE}"),
        (-1, f"seed -1 is outside {RANGE}"),
        ("-1", f"seed -1 is outside {RANGE}"),
        (-(2**31), f"seed -2147483648 is outside {RANGE}"),
        (1e20, f"seed 100000000000000000000 is outside {RANGE}"),
    ],
)
def test_check_seed_refuses_outside_the_range_with_one_message(value, message):
    with pytest.raises(ValueError) as e:
        check_seed(value)
    assert str(e.value) == message


@pytest.mark.parametrize(
    "value", ["1.5", 1.5, "abc", "", "0x10", "1_000", "1e3", True, None, float("nan"), float("inf"), "5 5"]
)
def test_check_seed_refuses_non_integers_naming_value_and_range(value):
    with pytest.raises(ValueError) as e:
        check_seed(value)
    text = str(e.value)
    assert text.startswith("seed ") and RANGE in text and "is not an integer" in text


def test_check_seed_huge_values_give_a_short_message():
    for value in ("9" * 5000, 10**5000):
        with pytest.raises(ValueError) as e:
            check_seed(value)
        assert "is outside" in str(e.value) and RANGE in str(e.value) and len(str(e.value)) < 100


@pytest.mark.parametrize(
    "seed, label",
    [
        (5, "5"),
        (5.0, "5"),
        (0, "0"),
        (3_000_000_000, "3000000000"),
        (3e9, "3000000000"),
        (float(SEED_MAX), "4294967295"),
        (276447231.0, "276447231"),
        (5.800000190734863, "5.80"),  # float32(5.8), what a float slider stores
        (float(np.float32(5.8)), "5.80"),
        (0.25, "0.25"),
        (7.126, "7.13"),
        (float(np.float32(4.9999995)), "5"),  # float32 rounding noise around a whole seed
        (5.001, "5.00"),
        (5.999, "6.00"),  # fractional seeds never pass for whole ones
        (3_000_000_000.5, "3000000000.50"),
    ],
)
def test_seed_label(seed, label):
    assert seed_label(seed) == label


def test_seed_label_never_uses_exponents():
    for seed in (1e6, 123456789.0, 2.0**31, 2.0**32 - 1, 1e9 + 0.5):
        assert "e" not in seed_label(seed).lower()
    with pytest.raises(ValueError):
        seed_label(float("nan"))


def test_screenshot_chunks_label_seeds_exactly():
    latent = {
        "seed": 5.800000190734863,
        "seed_b": 3_000_000_000.0,
        "t": 0.37,
        "space": "w",
        "mix_seed": 4000000000,
        "mix_start": 6,
    }
    req = {
        "latent": latent,
        "neural_rendering_resolution": None,
        "importance_multiplier": None,
        "depth_multiplier": 1.0,
        "rng_seed": None,
        "psi": 0.7,
        "cutoff": None,
        "camera": [0.0] * 25,
        "cond_camera": [0.0] * 25,
        "sampling": "deterministic",
        "noise_mode": "const",
    }
    chunks = summary_chunks({"request": req, "model": "builtin", "view": "image"})
    assert chunks["seed"] == "5.80"
    assert chunks["seeds"] == "5.80,3000000000,4000000000"
    assert chunks["interpolation"].startswith("seed 5.80 -> 3000000000, t=0.37")
    assert chunks["style mixing"] == "seed 4000000000 from ws[6]"
