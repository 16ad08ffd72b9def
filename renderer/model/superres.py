"""Super-resolution modules of the released checkpoints (eg3d-math §8): raw render -> final image."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import SynthesisBlock, fir_filter

CROP_MARGIN = 4
"""Input pixels of context around a crop: each block's two 3x3 convolutions and 4-tap upsampling filters see
at most 2 pixels of its input, so two blocks need under 4 of the first block's input (tested exact)."""


class _Superresolution(nn.Module):
    """Two synthesis blocks driven by the last w; the raw RGB is lifted alongside the features."""

    input_resolution: int
    resize_only_up: bool = False
    background: float | None = None
    """The colour of empty pixels, when a model declares one (rendering_kwargs 'sr_background'; the built-in
    model: -1, black). The image skip's upsampling pads with zeros, which on a black background draws a grey
    frame round the image (the reference's behaviour: EG3D's checkpoints declare none, and their backgrounds are
    not empty); with a background the skip runs relative to it, so the border stays black."""

    def __init__(self, block0: tuple, block1: tuple, w_dim: int, use_fp16: bool, sr_antialias: bool, top_filter: bool):
        super().__init__()
        clamp = 256 if use_fp16 else None
        (i0, o0, r0, up0), (i1, o1, r1, up1) = block0, block1
        self.block0 = SynthesisBlock(i0, o0, w_dim, r0, 3, use_fp16=use_fp16, conv_clamp=clamp, upsample=up0)
        self.block1 = SynthesisBlock(i1, o1, w_dim, r1, 3, use_fp16=use_fp16, conv_clamp=clamp, upsample=up1)
        self.sr_antialias = sr_antialias
        if top_filter:
            self.register_buffer("resample_filter", fir_filter())

    def skip_in(self, rgb: torch.Tensor) -> torch.Tensor:
        """The image the blocks' skip carries: relative to the declared background, if any."""
        return rgb if self.background is None else rgb - self.background

    def skip_out(self, img: torch.Tensor) -> torch.Tensor:
        """A skip image (a block's output) back in the picture's colours."""
        return img if self.background is None else img + self.background

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
        rgb, x = self._to_input(rgb, x)
        x = x.contiguous(memory_format=torch.channels_last)  # NHWC convolutions are faster on CPU
        x, rgb = self.block0(x, self.skip_in(rgb), ws, noise_mode, generator)
        if between_blocks is not None:
            between_blocks()
        x, rgb = self.block1(x, rgb, ws, noise_mode, generator)
        return self.skip_out(rgb)

    def block_input_resolution(self, r: int) -> int:
        """The resolution the first block sees when the raw render is r x r."""
        resized = (r < self.input_resolution) if self.resize_only_up else (r != self.input_resolution)
        return self.input_resolution if resized else r

    def _to_input(self, rgb: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Resize the raw render to the first block's input resolution (bilinear, as the reference does)."""
        if self.block_input_resolution(x.shape[-1]) != x.shape[-1]:
            size = (self.input_resolution, self.input_resolution)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=self.sr_antialias)
            rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=self.sr_antialias)
        return rgb, x

    def forward_crop(
        self, rgb: torch.Tensor, x: torch.Tensor, ws: torch.Tensor, top: int, left: int, size: int
    ) -> torch.Tensor:
        """The final image's square (N, 3, s*size, s*size) whose corner is input pixel (top, left) of the
        resized raw render, s = output / input scale; noise mode 'none' only. Every layer is a local
        filter, so the crop is run with CROP_MARGIN input pixels of context on each side and the margin cut
        off: inside it the pixels equal the whole image's (a fit's loss on random crops costs a fraction of
        a full 512^2 image)."""
        rgb, x = self._to_input(rgb, x)
        r = x.shape[-1]
        if not (0 <= top and 0 <= left and top + size <= r and left + size <= r and size > 0):
            raise ValueError(f"crop {size}x{size} at ({top}, {left}) does not lie inside the {r}x{r} input")
        m = CROP_MARGIN
        y0, x0 = max(top - m, 0), max(left - m, 0)
        y1, x1 = min(top + size + m, r), min(left + size + m, r)
        ws = ws[:, -1:, :].repeat(1, 3, 1)
        xc = x[..., y0:y1, x0:x1].contiguous(memory_format=torch.channels_last)
        xc, img = self.block0(xc, self.skip_in(rgb[..., y0:y1, x0:x1]), ws, "none")
        xc, img = self.block1(xc, img, ws, "none")
        s = img.shape[-1] // (x1 - x0)
        oy, ox = (top - y0) * s, (left - x0) * s
        return self.skip_out(img[..., oy : oy + size * s, ox : ox + size * s])


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
