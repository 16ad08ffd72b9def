"""Parity of the generator with the reference's outputs (tests/data/golden_small.npz).

The small golden network is loaded twice: through the native .safetensors format and from an
official-format EG3D pickle written by the tests (tests/eg3d_pickle.py), whose embedded module
source would leave a canary file and abort if it were ever executed. Every render is checked
against the reference run on both CPUs (Intel and AMD, tests/golden.py): depth where it is
defined, images everywhere. Deliberately wrong renders must fail the same checks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from golden import RAY_RANGE, check_depth, check_frame

import renderer
from renderer.checkpoint import read_checkpoint
from renderer.checkpoint.spec import ModelSpec

DATA = Path(__file__).parent / "data" / "golden_small.npz"
WS_TOL = 1e-4


@pytest.fixture(scope="module")
def golden():
    """The golden file's case inputs and intermediate outputs (ws, planes) and its config."""
    with np.load(DATA) as d:
        g = {k: d[k] for k in d.files if k.startswith("case_") and not k.startswith("case_image")}
        g["config"] = json.loads(str(d["config_json"]))
    return g


@pytest.fixture(scope="module")
def official_pickle(tmp_path_factory, golden_weights):
    """The golden weights as an official EG3D snapshot, with hostile module source inside."""
    from eg3d_pickle import write_eg3d_pickle

    tmp = tmp_path_factory.mktemp("official")
    canary = tmp / "EXECUTED"
    src = f"open({str(canary)!r}, 'w').write('module source ran')\nraise SystemExit('module source ran')\n"
    cfg = golden_weights.config
    spec = ModelSpec(cfg["init_kwargs"], cfg["rendering_kwargs"], int(cfg["neural_rendering_resolution"]))
    path = tmp / "network-snapshot-000000.pkl"
    write_eg3d_pickle(path, spec, golden_weights.state_dict, module_src=src)
    return path, canary


@pytest.fixture(scope="module", params=["native", "eg3d-pickle"])
def loaded(request, golden_native_checkpoint, official_pickle):
    """(generator, path) loaded through each supported format."""
    if request.param == "native":
        path = golden_native_checkpoint
    else:
        path, canary = official_pickle
        before = set(sys.modules)
        G = renderer.load_generator(path)
        assert not canary.exists(), "module source stored in the pickle was executed"
        new = {m.split(".")[0] for m in set(sys.modules) - before}
        assert not new & {"torch_utils", "training", "dnnlib"}, new
        return G, path
    return renderer.load_generator(path), path


def _case_inputs(g, n):
    z = torch.from_numpy(g["case_z"][n : n + 1])
    cc = torch.from_numpy(g["case_c_cond"][n : n + 1])
    cr = torch.from_numpy(g["case_c_render"][n : n + 1])
    cutoff = int(g["case_cutoff"][n])
    return z, cc, cr, float(g["case_psi"][n]), (None if cutoff < 0 else cutoff)


def check_all_references(out, references, n: int, suffix: str) -> None:
    """`out` against case n of every CPU's reference run; the message names the failing one."""
    for name, ref in references.items():
        try:
            check_frame(out, ref, n, suffix)
        except AssertionError as e:
            raise AssertionError(f"against the {name} reference: {e}") from None


def test_loaders_agree(golden_native_checkpoint, official_pickle, golden_weights):
    """Both formats give the golden tensors bit for bit and the same config."""
    a = read_checkpoint(golden_native_checkpoint)
    b = read_checkpoint(official_pickle[0])
    assert a.source_format == "native" and b.source_format == "eg3d-pickle"
    assert set(a.state_dict) == set(b.state_dict) == set(golden_weights.state_dict)
    for k, v in golden_weights.state_dict.items():
        assert torch.equal(a.state_dict[k], v) and torch.equal(b.state_dict[k], v), k
    assert a.spec.rendering_kwargs == b.spec.rendering_kwargs
    assert a.spec.neural_rendering_resolution == b.spec.neural_rendering_resolution == 128


@pytest.mark.parametrize("n", range(5))
def test_deterministic_parity(loaded, golden, reference_outputs, n):
    """ws, planes, image_raw, image_depth and image match the reference's deterministic render."""
    G, _ = loaded
    z, cc, cr, psi, cutoff = _case_inputs(golden, n)
    ws = G.mapping(z, cc, truncation_psi=psi, truncation_cutoff=cutoff)
    assert np.abs(ws.numpy() - golden["case_ws"][n : n + 1]).max() <= WS_TOL
    planes = G.planes(ws)
    assert planes.shape == (1, 3, 32, 256, 256)
    flat = planes.reshape(96, 256, 256)
    lo, hi = golden["config"]["planes_crop_window"]
    assert np.abs(flat[:, lo:hi, lo:hi].numpy() - golden["case_planes_crop"][n]).max() <= 1e-4
    assert np.abs(flat.mean((1, 2)).numpy() - golden["case_planes_channel_mean"][n]).max() <= 1e-5
    out = G.synthesis(ws, cr)  # deterministic is the default
    assert out["image"].shape == (1, 3, 512, 512) and out["image_raw"].shape == (1, 3, 128, 128)
    check_all_references(out, reference_outputs, n, "_det")


@pytest.mark.parametrize("n", [1, 4])
def test_stochastic_parity_with_replayed_draws(loaded, golden, reference_outputs, n):
    """Stochastic mode seeded like the reference reproduces its random render."""
    G, _ = loaded
    z, cc, cr, psi, cutoff = _case_inputs(golden, n)
    ws = G.mapping(z, cc, truncation_psi=psi, truncation_cutoff=cutoff)
    gen = torch.Generator().manual_seed(int(golden["case_rng_seed"][n]))
    out = G.synthesis(ws, cr, sampling="stochastic", generator=gen)
    check_all_references(out, reference_outputs, n, "")
    # and it really is a different render from the deterministic one
    det = G.synthesis(ws, cr)
    assert np.abs(det["image_depth"].numpy() - out["image_depth"].numpy()).max() > 0.05


def test_regenerated_draws_match_the_reference(golden):
    """The reference's random draws are exactly torch.manual_seed(rng_seed) + two rand calls."""
    for n in range(5):
        g = torch.Generator().manual_seed(int(golden["case_rng_seed"][n]))
        jitter = torch.rand(1, 16384, 48, 1, generator=g).numpy().reshape(16384, 48)
        u = torch.rand(16384, 48, generator=g).numpy()
        assert jitter.astype(np.float64).sum() == golden["case_strat_jitter_sum"][n]
        assert u.astype(np.float64).sum() == golden["case_importance_u_sum"][n]


@pytest.fixture(scope="module")
def case0(golden_native_checkpoint, golden):
    """The golden generator and its deterministic render of case 0 (97% of its pixels opaque)."""
    G = renderer.load_generator(golden_native_checkpoint)
    z, cc, cr, psi, cutoff = _case_inputs(golden, 0)
    ws = G.mapping(z, cc, truncation_psi=psi, truncation_cutoff=cutoff)
    return G, ws, cr, G.synthesis(ws, cr)


def test_references_disagree_only_where_depth_is_undefined(case0, reference_outputs, golden):
    """Why depth is masked: the two CPUs' reference runs move the depth of almost transparent pixels
    along the whole ray, but agree (within the bound) wherever our render has opacity."""
    intel, amd = reference_outputs["intel"], reference_outputs["amd"]
    spread = np.abs(intel["case_image_depth_det"] - amd["case_image_depth_det"])
    assert spread.max() > 0.5 * RAY_RANGE  # an unmasked depth check cannot hold on both CPUs
    _, _, _, out = case0
    check_depth(amd["case_image_depth_det"][:1], intel["case_image_depth_det"][:1], out["image_alpha"].numpy())


@pytest.mark.parametrize("where", ["opaque", "thin"])
def test_a_depth_offset_fails_against_both_references(case0, reference_outputs, where):
    """A renderer whose depth is off by 1e-2 x range fails the masked check, on the opaque pixels
    (opacity >= 0.5) and on the thin ones (1e-3 <= opacity < 0.5) alike."""
    _, _, _, out = case0
    alpha = out["image_alpha"].numpy()
    hit = alpha >= 0.5 if where == "opaque" else (alpha >= 1e-3) & (alpha < 0.5)
    assert hit.sum() >= 50
    wrong = dict(out, image_depth=out["image_depth"] + torch.from_numpy(hit) * 1e-2 * RAY_RANGE)
    check_all_references(out, reference_outputs, 0, "_det")  # the unmodified render passes ...
    for ref in reference_outputs.values():  # ... and the offset one fails on the depth
        with pytest.raises(AssertionError, match="depth"):
            check_frame(wrong, ref, 0, "_det")


def test_a_perturbed_decoder_weight_fails_against_both_references(case0, reference_outputs):
    """One decoder weight (density row) moved by 0.03 fails the frame check, and the depth check on
    its own, against each CPU's reference."""
    G, ws, cr, _ = case0
    weight = G.decoder.net[2].weight
    kept = weight.detach().clone()
    with torch.no_grad():
        weight[0, 5] += 0.03
    try:
        out = G.synthesis(ws, cr)
    finally:
        with torch.no_grad():
            weight.copy_(kept)
    for ref in reference_outputs.values():
        with pytest.raises(AssertionError):
            check_frame(out, ref, 0, "_det")
        with pytest.raises(AssertionError, match="depth"):
            check_depth(out["image_depth"].numpy(), ref["case_image_depth_det"][:1], out["image_alpha"].numpy())
