"""StyleGAN2 'skip' backbone: ws -> (N, 96, 256, 256), the three 32-channel tri-planes."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from .layers import SynthesisBlock, block_channels, log2_int
from .mapping import MappingNetwork


class SynthesisNetwork(nn.Module):
    """Blocks b4 ... b{img_resolution}; each ToRGB output is upsampled and summed (skip)."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
    ):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        res_log2 = log2_int(img_resolution)
        self.block_resolutions = [2**i for i in range(2, res_log2 + 1)]
        fp16_resolution = max(2 ** (res_log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = block_channels(channel_base, channel_max, res // 2) if res > 4 else 0
            out_ch = block_channels(channel_base, channel_max, res)
            block = SynthesisBlock(
                in_ch, out_ch, w_dim, res, img_channels, use_fp16=res >= fp16_resolution, conv_clamp=conv_clamp
            )
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def forward(
        self, ws: torch.Tensor, noise_mode: str = "const", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """ws: (N, num_ws, w_dim) -> image (N, img_channels, R, R); each ToRGB shares its w with the next conv0."""
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            cur = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, cur, noise_mode, generator)
        return cast(torch.Tensor, img)  # set by the first block (b4)


class Backbone(nn.Module):
    """The reference's StyleGAN2 Generator wrapper: `mapping` and `synthesis` children."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict,
        **synthesis_kwargs,
    ):
        super().__init__()
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **mapping_kwargs)
