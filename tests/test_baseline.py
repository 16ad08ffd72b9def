"""The straightforward reference-style frame (renderer/baseline.py): the speed baseline is itself
checked against the reference's golden outputs and agrees with the fast path within the golden
tolerances, in deterministic mode and with replayed stochastic draws."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import renderer
from renderer.baseline import reference_frame
from test_generator_parity import IMAGE_TOL, _case_inputs, _check_depth, golden  # noqa: F401  (fixture)

RAY_RANGE = 3.3 - 2.25


@pytest.fixture(scope="module")
def G(golden_native_checkpoint):
    return renderer.load_generator(golden_native_checkpoint)


def _assert_frame(out, g, n, suffix):
    assert np.abs(out["image_raw"].numpy() - g[f"case_image_raw{suffix}"][n:n + 1]).max() <= IMAGE_TOL
    assert np.abs(out["image"].numpy() - g[f"case_image{suffix}"][n:n + 1]).max() <= IMAGE_TOL - g["quant_err"]
    _check_depth(out["image_depth"].numpy(), g[f"case_image_depth{suffix}"][n:n + 1], RAY_RANGE)


@pytest.mark.parametrize("n", [0, 3])
def test_deterministic_baseline_matches_golden_and_fast_path(G, golden, n):  # noqa: F811
    z, cc, cr, psi, cutoff = _case_inputs(golden, n)
    out = reference_frame(G, z, cr, cc, truncation_psi=psi, truncation_cutoff=cutoff, sampling="deterministic")
    _assert_frame(out, golden, n, "_det")
    fast = G.synthesis(G.mapping(z, cc, truncation_psi=psi, truncation_cutoff=cutoff), cr)
    for k in ("image", "image_raw"):
        assert np.abs(out[k].numpy() - fast[k].numpy()).max() <= IMAGE_TOL, k
    _check_depth(out["image_depth"].numpy(), fast["image_depth"].numpy(), RAY_RANGE)


def test_stochastic_baseline_replays_the_reference_draws(G, golden):  # noqa: F811
    n = 1
    z, cc, cr, psi, cutoff = _case_inputs(golden, n)
    gen = torch.Generator().manual_seed(int(golden["case_rng_seed"][n]))
    out = reference_frame(G, z, cr, cc, truncation_psi=psi, truncation_cutoff=cutoff, generator=gen)
    _assert_frame(out, golden, n, "")
