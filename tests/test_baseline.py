"""The straightforward reference-style frame (renderer/reference/baseline.py): the speed baseline is itself
checked against the reference's golden outputs (both CPUs' runs) and agrees with the fast path within
the golden tolerances, in deterministic mode and with replayed stochastic draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from golden import check_depth
from test_generator_parity import _case_inputs, check_all_references, golden  # noqa: F401  (fixture)

import renderer
from renderer.reference.baseline import reference_frame

IMAGE_TOL = 1e-3
ALPHA_TOL = 1e-4
"""Opacity of two of our own renders of one frame, compared on every pixel."""


@pytest.fixture(scope="module")
def G(golden_native_checkpoint):
    return renderer.load_generator(golden_native_checkpoint)


@pytest.mark.parametrize("n", [0, 3])
def test_deterministic_baseline_matches_golden_and_fast_path(G, golden, reference_outputs, n):  # noqa: F811
    z, cc, cr, psi, cutoff = _case_inputs(golden, n)
    out = reference_frame(G, z, cr, cc, truncation_psi=psi, truncation_cutoff=cutoff, sampling="deterministic")
    check_all_references(out, reference_outputs, n, "_det")
    fast = G.synthesis(G.mapping(z, cc, truncation_psi=psi, truncation_cutoff=cutoff), cr)
    for k in ("image", "image_raw"):
        assert np.abs(out[k].numpy() - fast[k].numpy()).max() <= IMAGE_TOL, k
    alpha = np.abs(out["image_alpha"].numpy() - fast["image_alpha"].numpy()).max()
    assert alpha <= ALPHA_TOL, f"opacity max diff {alpha:.3g}"
    check_depth(out["image_depth"].numpy(), fast["image_depth"].numpy(), fast["image_alpha"].numpy())


def test_stochastic_baseline_replays_the_reference_draws(G, golden, reference_outputs):  # noqa: F811
    n = 1
    z, cc, cr, psi, cutoff = _case_inputs(golden, n)
    gen = torch.Generator().manual_seed(int(golden["case_rng_seed"][n]))
    out = reference_frame(G, z, cr, cc, truncation_psi=psi, truncation_cutoff=cutoff, generator=gen)
    check_all_references(out, reference_outputs, n, "")


def test_the_baseline_super_resolves_as_the_model_with_a_declared_background():
    """The built-in model declares its black background to the super-resolution (sr_background): the
    straightforward path must run the image skip relative to it too, borders included."""
    from renderer.reference.baseline import _superresolve

    B = renderer.load_generator("builtin")
    assert B.superresolution.background == -1.0
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 32, 64, 64, generator=g)
    rgb = torch.full((1, 3, 64, 64), -1.0)  # an empty (black) raw render: a black picture, frame included
    ws = torch.randn(1, B.num_ws, B.w_dim, generator=g)
    with torch.no_grad():
        ref, ours = _superresolve(B, rgb, x, ws), B.superresolution(rgb, x, ws)
    torch.testing.assert_close(ref, ours, rtol=0, atol=1e-5)
    border = torch.cat([ref[..., 0, :], ref[..., -1, :], ref[..., :, 0], ref[..., :, -1]], -1)
    inner = ref[..., 8:-8, 8:-8]
    assert float((border.mean() - inner.mean()).abs()) < 0.05  # no frame brighter than the rest
