"""The built-in model's architecture and camera defaults, in one place for training and evaluation.

These describe the second edition (256^2 output, family v2). A checkpoint carries its own spec, so loading
never reads this module; the first edition's weights (128^2, SuperresolutionHybrid2X, family v1) keep theirs."""

from __future__ import annotations

from renderer.checkpoint.spec import ModelSpec

CAMERA_RADIUS = 2.7
CAMERA_PIVOT = (0.0, -0.04, 0.0)
FOCAL = 2.5
"""Normalised focal length: the unit box fills about 1.1 box units of height at the orbit radius."""
RAY_START, RAY_END = 2.15, 3.25
"""Every part of the head lies within 0.5 of the origin, so these bound it from any orbit camera."""
YAW_RANGE = (-3.14159, 3.14159)
PITCH_RANGE = (-0.6, 0.6)
"""Camera orbit the model was trained on (radians, renderer.camera conventions)."""
DENSITY_SHARPEN = (12.0, 1000.0)
"""Export bakes raw' = 12 raw - 1000 into the decoder's density output: a step at raw 83 instead of a 1 cm
ramp. Training's target ramp, clamp(10000 (0.012 - sdf), -10, 100), reaches out 1.2 cm beyond the surface,
and grazing rays crossing that shell made silhouettes 1-2 pixels too wide (IoU 0.914 -> 0.952, depth error
unchanged, on 4 fresh latents that are not the held-out set; chosen from a grid of slopes 1-20)."""
MESH_LEVEL = 0.0
"""Iso-level on (sharpened) raw sigma for meshes: where the render puts the surface."""
OCCUPANCY_RESOLUTION = 40
"""Empty-space skipping lattice (renderer.model.occupancy): 2.6 cm cells."""
OCCUPANCY_THRESHOLD = -1000.0
"""Occupied where the unsharpened raw sigma > 0, the training target's outer edge (1.2 cm outside the
surface): the thinnest part (ears, 2.8 cm) is then >= 5.2 cm thick, more than a cell's diagonal (4.4 cm)."""
NEURAL_RESOLUTION = 64
IMAGE_RESOLUTION = 256
SUPERRESOLUTION = "training.superresolution.SuperresolutionLite4X"
"""64 -> 256 in two upsampling blocks of 48 and 24 channels (renderer/model/superres.py): on this 2-core CPU
about 1.2x the time of the first edition's 64 -> 128 SuperresolutionHybrid2X, where SuperresolutionHybrid4X
from 64 takes about 4x (measured side by side under load, so only the ratios count)."""
FAMILY = 2
"""The procedural family (renderer/builtin/training/family.py VERSION) stored in the checkpoint's metadata."""


DEPTH_SAMPLES = (12, 24)
"""Default coarse + importance samples per ray. With empty-space skipping the 12 coarse samples span only
the occupied stretch of a ray (about as dense as training's 24 over the whole range): on 10 held-out
latents, IoU 0.9512 and depth error 0.91% vs 0.9512 / 0.86% with 24 + 24, at 48 ms instead of 57 ms."""


def rendering_kwargs(depth: int = DEPTH_SAMPLES[0], importance: int = DEPTH_SAMPLES[1]) -> dict:
    """EG3D-style rendering settings of the built-in model (black background, no camera conditioning)."""
    return dict(
        image_resolution=IMAGE_RESOLUTION,
        disparity_space_sampling=False,
        clamp_mode="softplus",
        superresolution_module=SUPERRESOLUTION,
        c_gen_conditioning_zero=True,
        c_scale=1.0,
        superresolution_noise_mode="none",
        decoder_lr_mul=1.0,
        sr_antialias=True,
        depth_resolution=depth,
        depth_resolution_importance=importance,
        ray_start=RAY_START,
        ray_end=RAY_END,
        box_warp=1.0,
        white_back=False,
        sr_background=-1.0,
        avg_camera_radius=CAMERA_RADIUS,
        avg_camera_pivot=list(CAMERA_PIVOT),
        default_focal=FOCAL,
        mesh_level=MESH_LEVEL,
        occupancy_resolution=OCCUPANCY_RESOLUTION,
        occupancy_threshold=OCCUPANCY_THRESHOLD,
    )


def builtin_spec(
    plane_resolution: int = 128,
    channel_base: int = 4096,
    channel_max: int = 64,
    w_dim: int = 256,
    mapping_layers: int = 2,
    depth: int = DEPTH_SAMPLES[0],
    importance: int = DEPTH_SAMPLES[1],
    extra: dict | None = None,
) -> ModelSpec:
    """ModelSpec of the built-in generator: z 512 -> w -> StyleGAN2 planes -> OSG decoder -> render -> 4X SR."""
    rk = rendering_kwargs(depth, importance)
    init = dict(
        class_name="training.triplane.TriPlaneGenerator",
        z_dim=512,
        w_dim=w_dim,
        c_dim=0,
        img_resolution=IMAGE_RESOLUTION,
        img_channels=3,
        mapping_kwargs={"num_layers": mapping_layers, "lr_multiplier": 1.0},
        channel_base=channel_base,
        channel_max=channel_max,
        num_fp16_res=0,
        conv_clamp=None,
        sr_num_fp16_res=0,
        sr_kwargs={},
        rendering_kwargs=rk,
        plane_resolution=plane_resolution,
    )
    return ModelSpec(
        init_kwargs=init,
        rendering_kwargs=rk,
        neural_rendering_resolution=NEURAL_RESOLUTION,
        extra={"family": FAMILY, **(extra or {})},
    )
