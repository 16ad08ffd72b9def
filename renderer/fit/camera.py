"""Differentiable orbit cameras: the 25-value EG3D camera as a torch function of yaw, pitch, radius, focal.

The same maths as renderer.camera.orbit_camera (the reference's look-at sampler: +yaw moves the camera
towards +x, +pitch moves it down, pitch linear in cos(polar angle)), written in torch so a fit can
take gradients with respect to the pose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def orbit_camera_t(
    yaw: torch.Tensor,
    pitch: torch.Tensor,
    radius: torch.Tensor | float,
    pivot: Sequence[float],
    focal: torch.Tensor | float,
) -> torch.Tensor:
    """(25,) float32 camera at (yaw, pitch) on the orbit sphere around the origin, looking at pivot."""
    yaw = torch.as_tensor(yaw, dtype=torch.float32)
    pitch = torch.as_tensor(pitch, dtype=torch.float32)
    radius = torch.as_tensor(radius, dtype=torch.float32)
    focal = torch.as_tensor(focal, dtype=torch.float32)
    v = (math.pi / 2 + pitch).clamp(1e-5, math.pi - 1e-5)
    cos_phi = 1 - 2 * v / math.pi
    sin_phi = (1 - cos_phi.square()).clamp_min(1e-12).sqrt()
    # h = pi/2 + yaw: cos(pi - h) = sin(yaw), sin(pi - h) = cos(yaw)
    origin = radius * torch.stack([sin_phi * torch.sin(yaw), cos_phi, sin_phi * torch.cos(yaw)])
    target = torch.as_tensor([float(p) for p in pivot], dtype=torch.float32)
    forward = F.normalize(target - origin, dim=0)
    up = torch.tensor([0.0, 1.0, 0.0])
    right = F.normalize(-torch.linalg.cross(up, forward), dim=0)
    down = F.normalize(torch.linalg.cross(forward, right), dim=0)
    rot = torch.stack([right, down, forward], dim=1)
    top = torch.cat([rot, origin[:, None]], dim=1)
    c2w = torch.cat([top, torch.tensor([[0.0, 0.0, 0.0, 1.0]])], dim=0)
    zero, one = torch.zeros(()), torch.ones(())
    k = torch.stack([focal, zero, 0.5 * one, zero, focal, 0.5 * one, zero, zero, one])
    return torch.cat([c2w.reshape(16), k])
