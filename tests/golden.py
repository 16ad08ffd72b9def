"""The small golden network in tests/data: read its weights, write it as a native checkpoint (tests, benches)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

GOLDEN = Path(__file__).parent / 'data' / 'golden_small.npz'
"""The small reference network: its 177 state-dict tensors, `config_json` and `case_*` arrays."""


class GoldenWeights(NamedTuple):
    config: dict[str, Any]
    """json.loads(config_json): init_kwargs, rendering_kwargs, neural_rendering_resolution, ..."""
    state_dict: dict[str, torch.Tensor]
    """The generator's state dict, in the file's order."""


def read_golden() -> GoldenWeights:
    """The golden network's config and weights, from the copy in tests/data (fresh clones have it)."""
    with np.load(GOLDEN) as data:
        config = json.loads(str(data['config_json']))
        state_dict = {k: torch.from_numpy(data[k].copy()) for k in data.files
                      if not k.startswith('case_') and k != 'config_json'}
    return GoldenWeights(config, state_dict)


def write_golden_native(path: str | Path, weights: GoldenWeights | None = None) -> Path:
    """Write the golden generator as a native .safetensors checkpoint at `path`."""
    from renderer.checkpoint import write_native
    from renderer.spec import ModelSpec

    cfg, state_dict = weights or read_golden()
    spec = ModelSpec(init_kwargs=cfg['init_kwargs'], rendering_kwargs=cfg['rendering_kwargs'],
                     neural_rendering_resolution=int(cfg['neural_rendering_resolution']))
    write_native(path, spec, state_dict)
    return Path(path)
