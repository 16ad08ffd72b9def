"""The small golden network in tests/data: read its weights, write it as a native checkpoint (tests, benches)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

GOLDEN = Path(__file__).parent / 'data' / 'golden_small.npz'
"""The small reference network: its 177 state-dict tensors, `config_json` and `case_*` arrays."""
GOLDEN_AMD = Path(__file__).parent / 'data' / 'golden_small_amd.npz'
"""The same reference code and cases run on an AMD EPYC: the six `case_image*` outputs."""
REFERENCE_FILES = {'intel': GOLDEN, 'amd': GOLDEN_AMD}
"""Reference outputs by the CPU that made them (the golden file was made on an Intel Xeon)."""
OUTPUT_KEYS = tuple(f'case_image{k}' for k in ('', '_raw', '_depth', '_det', '_raw_det', '_depth_det'))
RAY_RANGE = 3.3 - 2.25
"""ray_end - ray_start of the golden network: depth tolerances are fractions of it."""
OPACITY_MIN = 1e-3
"""Depth is compared only where the accumulated opacity reaches this: below it, depth is a weighted
mean of weights that are all ~1e-6, and the reference itself moves it along the whole ray from one
CPU to another (shared/golden/README.md, last section)."""


class GoldenWeights(NamedTuple):
    config: dict[str, Any]
    """json.loads(config_json): init_kwargs, rendering_kwargs, neural_rendering_resolution, ..."""
    state_dict: dict[str, torch.Tensor]
    """The generator's state dict, in the file's order."""


def read_golden() -> GoldenWeights:
    """The golden network's config and weights, from the copy in tests/data (fresh clones have it)."""
    with np.load(GOLDEN) as data:
        config = json.loads(str(data['config_json']))
        state_dict = {
            k: torch.from_numpy(data[k].copy()) for k in data.files if not k.startswith('case_') and k != 'config_json'
        }
    return GoldenWeights(config, state_dict)


def write_golden_native(path: str | Path, weights: GoldenWeights | None = None) -> Path:
    """Write the golden generator as a native .safetensors checkpoint at `path`."""
    from renderer.checkpoint import write_native
    from renderer.checkpoint.spec import ModelSpec

    cfg, state_dict = weights or read_golden()
    spec = ModelSpec(
        init_kwargs=cfg['init_kwargs'],
        rendering_kwargs=cfg['rendering_kwargs'],
        neural_rendering_resolution=int(cfg['neural_rendering_resolution']),
    )
    write_native(path, spec, state_dict)
    return Path(path)


def read_reference_outputs() -> dict[str, dict[str, Any]]:
    """{'intel': outputs, 'amd': outputs}: the `case_image*` arrays of each reference run, images
    de-quantised, plus 'quant_err' (the largest de-quantisation error of the images)."""
    refs = {}
    for name, path in REFERENCE_FILES.items():
        with np.load(path) as data:
            scale = float(data['case_image_quant_scale'])
            out: dict[str, Any] = {k: data[k] for k in OUTPUT_KEYS}
        for k in ('case_image', 'case_image_det'):
            out[k] = out[k].astype(np.float32) / scale
        out['quant_err'] = 0.5 / scale
        refs[name] = out
    return refs


def check_depth(ours: np.ndarray, ref: np.ndarray, alpha: np.ndarray, ray_range: float = RAY_RANGE) -> None:
    """Depth where it is defined (our opacity >= OPACITY_MIN): max abs <= 1e-3 x range and the 99.9th
    percentile <= 1e-4 x range, the golden README's bounds. Raises AssertionError."""
    defined = alpha >= OPACITY_MIN
    assert defined.shape == ours.shape == ref.shape, (defined.shape, ours.shape, ref.shape)
    assert defined.mean() >= 0.05, f"only {defined.mean():.1%} of the pixels have depth: nothing to compare"
    diff = np.abs(ours - ref)[defined]
    assert diff.max() <= 1e-3 * ray_range, f"depth max diff {diff.max():.3g} on {defined.sum()} defined pixels"
    assert np.quantile(diff, 0.999) <= 1e-4 * ray_range, f"depth p99.9 diff {np.quantile(diff, 0.999):.3g}"


def check_frame(out: dict[str, Any], ref: dict[str, Any], n: int, suffix: str) -> None:
    """One render (torch tensors, batch of 1) against reference case n: image and image_raw everywhere
    within 1e-3 (less the quantisation error for the stored image), depth where defined."""
    image_tol = 1e-3
    raw = np.abs(out['image_raw'].numpy() - ref[f'case_image_raw{suffix}'][n : n + 1]).max()
    assert raw <= image_tol, f'image_raw max diff {raw:.3g}'
    img = np.abs(out['image'].numpy() - ref[f'case_image{suffix}'][n : n + 1]).max()
    assert img <= image_tol - ref['quant_err'], f'image max diff {img:.3g}'
    check_depth(out['image_depth'].numpy(), ref[f'case_image_depth{suffix}'][n : n + 1], out['image_alpha'].numpy())
