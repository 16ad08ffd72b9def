"""What a checkpoint holds, independent of its file format: the model config and its tensors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

TENSOR_DTYPES = frozenset(
    {
        torch.float64,
        torch.float32,
        torch.float16,
        torch.bfloat16,
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
        torch.bool,
    }
)
"""Dtypes a checkpoint may hold (real numbers and bools; no complex or quantized)."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a generator, in the reference's own terms (JSON-serialisable)."""

    init_kwargs: dict[str, Any]
    """TriPlaneGenerator constructor kwargs as stored by the reference (z_dim, c_dim, w_dim,
    img_resolution, img_channels, mapping_kwargs, channel_base, channel_max, num_fp16_res,
    conv_clamp, sr_num_fp16_res, sr_kwargs, rendering_kwargs, ...)."""
    rendering_kwargs: dict[str, Any]
    """The generator's live rendering settings (authoritative over init_kwargs['rendering_kwargs'])."""
    neural_rendering_resolution: int
    """Resolution of the volume render before super-resolution."""
    plane_axes: list[list[list[float]]] | None = None
    """The renderer's 3x3x3 plane-axis matrices, when the checkpoint stores them."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form metadata (source format, model card, training settings)."""


@dataclass
class LoadedCheckpoint:
    """A checkpoint read into memory: the spec plus a flat state dict of CPU tensors."""

    spec: ModelSpec
    state_dict: dict[str, torch.Tensor]
    path: str
    source_format: str
    """'eg3d-pickle' or 'native'."""
