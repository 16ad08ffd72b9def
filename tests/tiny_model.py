"""A small random tri-plane generator config for fast tests (2X/4X super-resolution)."""

from __future__ import annotations

import torch

from renderer.checkpoint.spec import ModelSpec
from renderer.model.generator import TriPlaneGenerator


def tiny_spec(sr: str = "SuperresolutionHybrid2X", nrr: int = 32, **rk) -> ModelSpec:
    """FFHQ-like rendering settings with a narrow backbone and few depth samples."""
    rendering = dict(
        image_resolution=128,
        disparity_space_sampling=False,
        clamp_mode="softplus",
        superresolution_module=f"training.superresolution.{sr}",
        c_gen_conditioning_zero=False,
        c_scale=1.0,
        superresolution_noise_mode="none",
        decoder_lr_mul=1.0,
        sr_antialias=True,
        depth_resolution=12,
        depth_resolution_importance=12,
        ray_start=2.25,
        ray_end=3.3,
        box_warp=1,
        avg_camera_radius=2.7,
        avg_camera_pivot=[0, 0, 0.2],
    )
    rendering.update(rk)
    init = dict(
        z_dim=64,
        w_dim=64,
        c_dim=25,
        img_resolution=128,
        img_channels=3,
        mapping_kwargs={"num_layers": 2},
        channel_base=256,
        channel_max=16,
        num_fp16_res=0,
        conv_clamp=None,
        sr_num_fp16_res=4,
        sr_kwargs={},
        rendering_kwargs=rendering,
        fused_modconv_default="inference_only",
    )
    return ModelSpec(init, rendering, nrr)


def tiny_generator(seed: int = 0, **kw) -> TriPlaneGenerator:
    """A tiny generator with random weights whose density is biased up so renders show a surface."""
    torch.manual_seed(seed)
    g = TriPlaneGenerator(tiny_spec(**kw))
    with torch.no_grad():
        g.decoder.net[2].bias[0] = 2.0
    return g
