"""Shared pytest fixtures."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch

GOLDEN = Path(__file__).parent / 'data' / 'golden_small.npz'
"""The small reference network: its 177 state-dict tensors, `config_json` and `case_*` arrays."""


class GoldenWeights(NamedTuple):
    config: dict[str, Any]
    """json.loads(config_json): init_kwargs, rendering_kwargs, neural_rendering_resolution, ..."""
    state_dict: dict[str, torch.Tensor]
    """The generator's state dict, in the file's order."""


@pytest.fixture(scope='session')
def golden_weights() -> GoldenWeights:
    """The golden network's config and weights, from the copy in tests/data (fresh clones have it)."""
    with np.load(GOLDEN) as data:
        config = json.loads(str(data['config_json']))
        state_dict = {k: torch.from_numpy(data[k].copy()) for k in data.files
                      if not k.startswith('case_') and k != 'config_json'}
    return GoldenWeights(config, state_dict)


@pytest.fixture(scope='session')
def golden_native_checkpoint(tmp_path_factory, golden_weights: GoldenWeights) -> Path:
    """The small golden generator written as a native .safetensors checkpoint (for CLI and loader tests)."""
    from renderer.checkpoint import write_native
    from renderer.spec import ModelSpec

    cfg = golden_weights.config
    spec = ModelSpec(init_kwargs=cfg['init_kwargs'], rendering_kwargs=cfg['rendering_kwargs'],
                     neural_rendering_resolution=int(cfg['neural_rendering_resolution']))
    path = tmp_path_factory.mktemp('golden') / 'golden_small.safetensors'
    write_native(path, spec, golden_weights.state_dict)
    return path


@pytest.fixture(scope='session')
def golden_cases() -> dict[str, np.ndarray]:
    """The golden file's case_* arrays (inputs and reference outputs)."""
    with np.load(GOLDEN) as data:
        return {k: data[k] for k in data.files if k.startswith('case_')}
