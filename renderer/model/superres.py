"""Super-resolution modules of the released checkpoints (eg3d-math §8): raw render -> final image."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import SynthesisBlock, fir_filter


class _Superresolution(nn.Module):
    """Two synthesis blocks driven by the last w; the raw RGB is lifted alongside the features."""

    input_resolution: int
    resize_only_up: bool = False

    def __init__(self, block0: tuple, block1: tuple, w_dim: int, use_fp16: bool, sr_antialias: bool, top_filter: bool):
        super().__init__()
        clamp = 256 if use_fp16 else None
        (i0, o0, r0, up0), (i1, o1, r1, up1) = block0, block1
        self.block0 = SynthesisBlock(i0, o0, w_dim, r0, 3, use_fp16=use_fp16, conv_clamp=clamp, upsample=up0)
        self.block1 = SynthesisBlock(i1, o1, w_dim, r1, 3, use_fp16=use_fp16, conv_clamp=clamp, upsample=up1)
        self.sr_antialias = sr_antialias
        if top_filter:
            self.register_buffer("resample_filter", fir_filter())

    def forward(
        self,
        rgb: torch.Tensor,
        x: torch.Tensor,
        ws: torch.Tensor,
        noise_mode: str = "none",
        generator: torch.Generator | None = None,
        between_blocks=None,
    ) -> torch.Tensor:
        """rgb: (N, 3, r, r), x: (N, 32, r, r), ws: (N, num_ws, w_dim) -> (N, 3, R, R), not clamped.
        `between_blocks()` runs after the first block (a render's cancellation check)."""
        ws = ws[:, -1:, :].repeat(1, 3, 1)
        r = x.shape[-1]
        if (r < self.input_resolution) if self.resize_only_up else (r != self.input_resolution):
            size = (self.input_resolution, self.input_resolution)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=self.sr_antialias)
            rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=self.sr_antialias)
        x = x.contiguous(memory_format=torch.channels_last)  # NHWC convolutions are faster on CPU
        x, rgb = self.block0(x, rgb, ws, noise_mode, generator)
        if between_blocks is not None:
            between_blocks()
        x, rgb = self.block1(x, rgb, ws, noise_mode, generator)
        return rgb


class SuperresolutionHybrid8XDC(_Superresolution):
    """128 -> 512 (FFHQ/AFHQ 512 models): two upsampling blocks, 256 then 128 channels."""

    input_resolution = 128

    def __init__(self, channels: int, w_dim: int, use_fp16: bool, sr_antialias: bool = True):
        super().__init__((channels, 256, 256, True), (256, 128, 512, True), w_dim, use_fp16, sr_antialias, False)


class SuperresolutionHybrid8X(_Superresolution):
    """Legacy 128 -> 512 variant with 128 then 64 channels."""

    input_resolution = 128

    def __init__(self, channels: int, w_dim: int, use_fp16: bool, sr_antialias: bool = True):
        super().__init__((channels, 128, 256, True), (128, 64, 512, True), w_dim, use_fp16, sr_antialias, True)


class SuperresolutionHybrid4X(_Superresolution):
    """128 -> 256: a same-resolution block then one upsampling block; resizes only smaller inputs."""

    input_resolution = 128
    resize_only_up = True

    def __init__(self, channels: int, w_dim: int, use_fp16: bool, sr_antialias: bool = True):
        super().__init__((channels, 128, 128, False), (128, 64, 256, True), w_dim, use_fp16, sr_antialias, True)


class SuperresolutionHybrid2X(_Superresolution):
    """64 -> 128 (ShapeNet cars): a same-resolution block then one upsampling block."""

    input_resolution = 64

    def __init__(self, channels: int, w_dim: int, use_fp16: bool, sr_antialias: bool = True):
        super().__init__((channels, 128, 64, False), (128, 64, 128, True), w_dim, use_fp16, sr_antialias, True)


class SuperresolutionLite4X(_Superresolution):
    """64 -> 256 for CPU-sized models (the built-in heads; a project extension): two upsampling blocks, 48 then
    24 channels, about 1 GFLOP a frame (SuperresolutionHybrid4X from 64: about 10, SuperresolutionHybrid2X: 2.6)."""

    input_resolution = 64

    def __init__(self, channels: int, w_dim: int, use_fp16: bool, sr_antialias: bool = True):
        super().__init__((channels, 48, 128, True), (48, 24, 256, True), w_dim, use_fp16, sr_antialias, True)


SR_MODULES = {
    cls.__name__: cls
    for cls in (
        SuperresolutionHybrid8XDC,
        SuperresolutionHybrid8X,
        SuperresolutionHybrid4X,
        SuperresolutionHybrid2X,
        SuperresolutionLite4X,
    )
}


def build_superresolution(
    module_path: str, channels: int, w_dim: int, use_fp16: bool, sr_antialias: bool
) -> _Superresolution:
    """Build an SR module from the reference's class path (e.g. training.superresolution.SuperresolutionHybrid8XDC)."""
    name = str(module_path).rsplit(".", 1)[-1]
    if name not in SR_MODULES:
        raise ValueError(f"unknown super-resolution module {module_path!r} (supported: {', '.join(SR_MODULES)})")
    return SR_MODULES[name](channels, w_dim, use_fp16, sr_antialias)
