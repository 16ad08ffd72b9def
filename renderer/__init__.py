"""triplane-viz renderer: the EG3D tri-plane generator in plain PyTorch, safe checkpoint loading, cameras.

No GUI imports here: the viewer, the CLI and the tests all go through this package. One package per
concern: model (the generator), checkpoint (reading and writing files), engine (render(request) with
per-latent caches), export (screenshots, meshes, videos), cli (`triplane-render`), builtin (the
shipped model); errors, camera, progress and seeds are shared by all of them (README: Layout).
"""

from __future__ import annotations

import os

import torch

from .errors import CheckpointError
from .model.generator import TriPlaneGenerator

__all__ = ["CheckpointError", "TriPlaneGenerator", "Generator", "load_generator", "build_generator"]

Generator = TriPlaneGenerator


def build_generator(ckpt, device: str | torch.device = "cpu") -> TriPlaneGenerator:
    """Build a generator from a LoadedCheckpoint; config or tensor problems raise CheckpointError."""
    try:
        G = TriPlaneGenerator(ckpt.spec)
    except KeyError as e:
        raise CheckpointError(f"{ckpt.path}: model config lacks the setting {e}") from None
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{ckpt.path}: unsupported model config: {e}") from None
    G.load_state(ckpt.state_dict, source=str(ckpt.path))
    return G.to(device)


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> TriPlaneGenerator:
    """Read an official EG3D pickle or a triplane-viz .safetensors file (never executing file content).

    The name 'builtin' loads the shipped model of stylised heads (renderer/builtin)."""
    from .builtin import resolve
    from .checkpoint import read_checkpoint

    return build_generator(read_checkpoint(resolve(path)), device)
