"""Tri-plane feature lookup and the OSG decoder MLP (eg3d-math §9)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import FullyConnected


def reference_plane_axes() -> torch.Tensor:
    """The reference's plane matrices, including its axis quirk: planes read (x,y), (x,z), (z,x)."""
    return torch.tensor([[[1, 0, 0], [0, 1, 0], [0, 0, 1]],
                         [[1, 0, 0], [0, 0, 1], [0, 1, 0]],
                         [[0, 0, 1], [1, 0, 0], [0, 1, 0]]], dtype=torch.float32)


def project_onto_planes(plane_axes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """points: (N, M, 3) -> plane coordinates (N * n_planes, M, 2): first two entries of p @ inv(A_k)."""
    n, m, _ = points.shape
    k = plane_axes.shape[0]
    pts = points.unsqueeze(1).expand(-1, k, -1, -1).reshape(n * k, m, 3)
    inv = torch.linalg.inv(plane_axes.to(points)).unsqueeze(0).expand(n, -1, -1, -1).reshape(n * k, 3, 3)
    return torch.bmm(pts, inv)[..., :2]


def sample_from_planes(plane_axes: torch.Tensor, planes: torch.Tensor, points: torch.Tensor,
                       box_warp: float) -> torch.Tensor:
    """planes: (N, 3, C, H, W), points: (N, M, 3) world -> features (N, 3, C, M); zero outside the box.

    Channels-last planes (see `channels_last_planes`) make the bilinear lookup about 2.5x faster.
    """
    n, k, c, h, w = planes.shape
    m = points.shape[1]
    planes = planes.reshape(n * k, c, h, w)
    coords = (2 / box_warp) * points
    grid = project_onto_planes(plane_axes, coords).unsqueeze(1)
    out = F.grid_sample(planes, grid.to(planes.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(n, k, c, m)


def channels_last_planes(planes: torch.Tensor) -> torch.Tensor:
    """Same (N, 3, C, H, W) values, stored so each plane is channels-last (fast grid_sample)."""
    n, k, c, h, w = planes.shape
    return planes.reshape(n * k, c, h, w).contiguous(memory_format=torch.channels_last).view(n, k, c, h, w)


class OSGDecoder(nn.Module):
    """Mean of the three plane features -> FC 32-64 softplus FC 64-33 -> raw sigma + 32 colour features."""

    def __init__(self, n_features: int = 32, hidden_dim: int = 64, output_dim: int = 32, lr_mul: float = 1.0):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.output_dim = output_dim
        self.net = nn.Sequential(FullyConnected(n_features, hidden_dim, lr_multiplier=lr_mul),
                                 nn.Softplus(),
                                 FullyConnected(hidden_dim, 1 + output_dim, lr_multiplier=lr_mul))

    def forward(self, sampled_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sampled_features: (N, 3, C, M) -> (rgb (N, 32, M) in (-0.001, 1.001), sigma (N, 1, M) raw).

        Points stay on the last axis throughout (no transposes of the big tensors); the FC layers
        are the same equalized-lr maths as `FullyConnected`, applied as W @ x.
        """
        x = sampled_features.mean(1)
        x = _fc_points_last(self.net[0], x)
        x = torch.logaddexp(x, torch.zeros((), dtype=x.dtype, device=x.device))  # softplus, 2.5x faster on CPU
        x = _fc_points_last(self.net[2], x)
        rgb = torch.sigmoid(x[:, 1:])
        if torch.is_grad_enabled() and rgb.requires_grad:  # training: keep sigmoid's output for backward
            rgb = rgb * (1 + 2 * 0.001) - 0.001
        else:  # in place: saves two 100 MB allocations per pass at 128^2 x 48 samples
            rgb.mul_(1 + 2 * 0.001).sub_(0.001)
        return rgb, x[:, 0:1]


def _fc_points_last(fc: FullyConnected, x: torch.Tensor) -> torch.Tensor:
    """Linear equalized-lr layer on (N, in, M) -> (N, out, M)."""
    w = fc.weight.to(x.dtype) * fc.weight_gain
    b = fc.bias.to(x.dtype)
    if fc.bias_gain != 1:
        b = b * fc.bias_gain
    return torch.baddbmm(b[None, :, None], w.expand(x.shape[0], -1, -1), x)
