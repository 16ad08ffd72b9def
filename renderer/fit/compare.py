"""How a fit compares pictures: PSNR and differences as a viewer shows them, resizing, and the uint8 form."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import frames


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two images as shown (clamped to [-1, 1]), measured on [0, 1]."""
    mse = float(((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).square().mean())
    return -10 * math.log10(max(mse, 1e-10))


def shown_difference(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """pred - target as a viewer shows them: where the target sits at a clamp bound (-1 or 1) and the
    prediction is beyond it, the pixels look the same and count as equal (an untrained or random-weight
    generator overshoots [-1, 1] a lot); everywhere else the raw difference, so gradients still pull an
    overshooting pixel back into range."""
    same = ((target <= -1) & (pred < -1)) | ((target >= 1) & (pred > 1))
    return torch.where(same, torch.zeros_like(pred), pred - target)


def resize(img: torch.Tensor, res: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, res, res), antialiased when shrinking."""
    if img.shape[-1] == res:
        return img
    return F.interpolate(img, size=(res, res), mode="bilinear", align_corners=False, antialias=True)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """(3, H, W) on [-1, 1] -> uint8 (H, W, 3) as a numpy array: the engine's conversion (the reference scripts')."""
    return frames.to_uint8(img.detach()).cpu().numpy()
