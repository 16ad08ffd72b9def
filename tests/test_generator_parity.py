"""Parity of the generator with the reference's outputs (tests/data/golden_small.npz).

The small golden network is loaded twice: through the native .safetensors format and from an
official-format EG3D pickle written by the tests (tests/eg3d_pickle.py), whose embedded module
source would leave a canary file and abort if it were ever executed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import renderer
from renderer.checkpoint import read_checkpoint
from renderer.spec import ModelSpec

DATA = Path(__file__).parent / "data" / "golden_small.npz"
WS_TOL = 1e-4
IMAGE_TOL = 1e-3


@pytest.fixture(scope="module")
def golden():
    """All case arrays of the golden file, images de-quantised."""
    with np.load(DATA) as d:
        g = {k: d[k] for k in d.files if k.startswith("case_")}
        g["config"] = json.loads(str(d["config_json"]))
    scale = float(g["case_image_quant_scale"])
    for k in ("case_image", "case_image_det"):
        g[k] = g[k].astype(np.float32) / scale
    g["quant_err"] = 0.5 / scale
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
    z = torch.from_numpy(g["case_z"][n:n + 1])
    cc = torch.from_numpy(g["case_c_cond"][n:n + 1])
    cr = torch.from_numpy(g["case_c_render"][n:n + 1])
    cutoff = int(g["case_cutoff"][n])
    return z, cc, cr, float(g["case_psi"][n]), (None if cutoff < 0 else cutoff)


def _check_depth(ours: np.ndarray, ref: np.ndarray, ray_range: float):
    """Depth: max abs <= 1e-3 x range, as the golden README recommends."""
    diff = np.abs(ours - ref)
    assert diff.max() <= 1e-3 * ray_range, f"depth max diff {diff.max():.3g}"
    assert np.quantile(diff, 0.999) <= 1e-4 * ray_range


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
def test_deterministic_parity(loaded, golden, n):
    """ws, planes, image_raw, image_depth and image match the reference's deterministic render."""
    G, _ = loaded
    z, cc, cr, psi, cutoff = _case_inputs(golden, n)
    ws = G.mapping(z, cc, truncation_psi=psi, truncation_cutoff=cutoff)
    assert np.abs(ws.numpy() - golden["case_ws"][n:n + 1]).max() <= WS_TOL
    planes = G.planes(ws)
    assert planes.shape == (1, 3, 32, 256, 256)
    flat = planes.reshape(96, 256, 256)
    lo, hi = golden["config"]["planes_crop_window"]
    assert np.abs(flat[:, lo:hi, lo:hi].numpy() - golden["case_planes_crop"][n]).max() <= 1e-4
    assert np.abs(flat.mean((1, 2)).numpy() - golden["case_planes_channel_mean"][n]).max() <= 1e-5
    out = G.synthesis(ws, cr)  # deterministic is the default
    assert out["image"].shape == (1, 3, 512, 512) and out["image_raw"].shape == (1, 3, 128, 128)
    assert np.abs(out["image_raw"].numpy() - golden["case_image_raw_det"][n:n + 1]).max() <= IMAGE_TOL
    assert np.abs(out["image"].numpy() - golden["case_image_det"][n:n + 1]).max() <= IMAGE_TOL - golden["quant_err"]
    _check_depth(out["image_depth"].numpy(), golden["case_image_depth_det"][n:n + 1], 3.3 - 2.25)


@pytest.mark.parametrize("n", [1, 4])
def test_stochastic_parity_with_replayed_draws(loaded, golden, n):
    """Stochastic mode seeded like the reference reproduces its random render."""
    G, _ = loaded
    z, cc, cr, psi, cutoff = _case_inputs(golden, n)
    ws = G.mapping(z, cc, truncation_psi=psi, truncation_cutoff=cutoff)
    gen = torch.Generator().manual_seed(int(golden["case_rng_seed"][n]))
    out = G.synthesis(ws, cr, sampling="stochastic", generator=gen)
    assert np.abs(out["image_raw"].numpy() - golden["case_image_raw"][n:n + 1]).max() <= IMAGE_TOL
    assert np.abs(out["image"].numpy() - golden["case_image"][n:n + 1]).max() <= IMAGE_TOL - golden["quant_err"]
    _check_depth(out["image_depth"].numpy(), golden["case_image_depth"][n:n + 1], 3.3 - 2.25)
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
