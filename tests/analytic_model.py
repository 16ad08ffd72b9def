"""A tri-plane generator whose density and colour are known in closed form (for exact mesh tests).

The planes and the decoder are set by hand; `G.sample` then returns, for world points p = (x, y, z)
inside the box,

    raw sigma = S * (R^2 - |p - c|^2)                         (a sphere of radius R around c)
    colour    = sigmoid(K * (x, y, z)) * 1.002 - 0.001        (the decoder's colour mapping)

How: the mean of the three plane features carries |p - c|^2 / 3 and x/3, y/3, z/3 (the planes
read (x,y), (x,z), (z,x)); the first decoder layer adds a bias of 20 so that softplus is the identity to float
precision; the
last layer maps them to sigma and the colour logits. The squared distance is stored minus 2, so the
zero features that the plane lookup returns outside the box read as |p - c|^2 = 2: empty space.
Bilinear plane lookup of the quadratic is exact to (plane texel)^2 / 4.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tiny_model import tiny_spec

from renderer.model.generator import PLANE_CHANNELS, TriPlaneGenerator

BIAS = 20.0
OUTSIDE = 2.0
"""|p - c|^2 that zero features stand for: outside the box (zero padding) the density is far below any level."""


def surface_radius(S: float, R: float, level: float) -> float:
    """Radius of the iso-surface sigma = level."""
    return math.sqrt(R * R - level / S)


def expected_colour(points: np.ndarray, K: float) -> np.ndarray:
    """uint8 colour at world points, as the decoder produces and a render pixel converts it."""
    c = 1 / (1 + np.exp(-K * points.astype(np.float64))) * 1.002 - 0.001
    x = c * 2 - 1
    return np.clip(np.floor(x * 127.5 + 128), 0, 255).astype(np.uint8)


def analytic_generator(
    S: float = 20000.0,
    R: float = 0.3,
    K: float = 4.0,
    centre=(0.0, 0.0, 0.0),
    plane_resolution: int = 256,
    depth: int = 48,
    nrr: int = 64,
) -> tuple[TriPlaneGenerator, torch.Tensor]:
    """(G, planes (1, 3, 32, P, P)) with the closed-form field above."""
    torch.manual_seed(0)
    spec = tiny_spec(nrr=nrr, depth_resolution=depth, depth_resolution_importance=depth)
    spec.init_kwargs["plane_resolution"] = plane_resolution
    G = TriPlaneGenerator(spec)
    box = float(G.rendering_kwargs["box_warp"])
    P = plane_resolution
    g = ((2 * torch.arange(P, dtype=torch.float64) + 1) / P - 1) * box / 2  # texel centres, world units
    v, u = torch.meshgrid(g, g, indexing="ij")  # plane[c, row=v, col=u]; u is the first coordinate read
    cx, cy, cz = centre
    planes = torch.zeros(1, 3, PLANE_CHANNELS, P, P, dtype=torch.float64)
    # plane 0 reads (x, y), plane 1 reads (x, z), plane 2 reads (z, x)
    planes[0, 0, 0] = (u - cx) ** 2 + (v - cy) ** 2 - OUTSIDE / 2
    planes[0, 1, 0] = (v - cz) ** 2 - OUTSIDE / 2
    planes[0, 0, 1] = u  # x
    planes[0, 0, 2] = v  # y
    planes[0, 1, 3] = v  # z
    planes = planes.float()

    fc1, fc2 = G.decoder.net[0], G.decoder.net[2]
    with torch.no_grad():
        w1 = torch.zeros_like(fc1.weight)
        b1 = torch.zeros_like(fc1.bias)
        for k in range(4):
            w1[k, k] = 3.0
            b1[k] = BIAS
        fc1.weight.copy_(w1 / fc1.weight_gain)
        fc1.bias.copy_(b1 / fc1.bias_gain)
        w2 = torch.zeros_like(fc2.weight)
        b2 = torch.zeros_like(fc2.bias)
        w2[0, 0], b2[0] = -S, S * (BIAS - OUTSIDE + R * R)
        for k in (1, 2, 3):
            w2[k, k], b2[k] = K, -K * BIAS
        fc2.weight.copy_(w2 / fc2.weight_gain)
        fc2.bias.copy_(b2 / fc2.bias_gain)
    return G, planes
