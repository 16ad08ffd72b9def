"""The built-in model: a small tri-plane generator of stylised heads that ships with the package (no download).

`load_generator('builtin')`, the CLI's default `--network` and `info builtin` resolve the name
`BUILTIN` to `WEIGHTS` (native .safetensors, trained by `python -m renderer.builtin.training.train`).
This package is the model's config (config.py), weights and model card; training/ holds the procedural
family, the training run and the evaluation, which loading and rendering never import.
"""

from __future__ import annotations

import os
from pathlib import Path

BUILTIN = "builtin"
WEIGHTS = Path(__file__).with_name("builtin.safetensors")
MODEL_CARD = Path(__file__).with_name("model_card.md")


def resolve(path: str | os.PathLike) -> str | os.PathLike:
    """The shipped weights' path for the name 'builtin'; any other path unchanged."""
    return WEIGHTS if isinstance(path, str) and path == BUILTIN else path
