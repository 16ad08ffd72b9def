"""A first camera for object models: render the mean latent over a grid of yaw/pitch and keep the best match.

The tri-planes of w_avg are computed once; each grid camera is one low-resolution raw render (no
super-resolution, no autograd), scored by the squared colour error against the target and, when the
target has an object mask, by the opacity against the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..camera import default_focal, orbit_camera
from ..model import occupancy as occ
from ..model.generator import TriPlaneGenerator
from ..progress import CancelToken, check_cancel
from .compare import resize

YAW_GRID = tuple(float(v) for v in np.linspace(-1.5, 1.5, 21))
"""Default yaw candidates (radians): +-86 degrees in 0.15 steps (a front half-orbit)."""
PITCH_GRID = (-0.3, -0.15, 0.0, 0.15, 0.3)


@dataclass
class PoseSearch:
    """Best (yaw, pitch), its score, and the whole score table (len(pitches), len(yaws))."""

    yaw: float
    pitch: float
    score: float
    scores: np.ndarray
    yaws: tuple[float, ...]
    pitches: tuple[float, ...]


def mean_ws(G: TriPlaneGenerator) -> torch.Tensor:
    """w_avg broadcast to (1, num_ws, w_dim)."""
    return G.backbone.mapping.w_avg.detach().reshape(1, 1, -1).expand(1, G.num_ws, -1).contiguous()


@torch.no_grad()
def grid_search(
    G: TriPlaneGenerator,
    image: torch.Tensor,
    mask: torch.Tensor | None = None,
    yaws: tuple[float, ...] = YAW_GRID,
    pitches: tuple[float, ...] = PITCH_GRID,
    resolution: int = 32,
    cancel: CancelToken | None = None,
) -> PoseSearch:
    """image (3, R, R) on [-1, 1] (and mask (1, R, R)) -> the grid camera whose mean-latent render fits best."""
    rk = G.rendering_kwargs
    ws = mean_ws(G)
    planes = G.planes(ws)
    grid = occ.build(G, planes) if occ.declared(G) else None
    dev = ws.device
    target = resize(image.reshape(1, 3, *image.shape[-2:]).float().to(dev), resolution)
    tmask = None if mask is None else resize(mask.reshape(1, 1, *mask.shape[-2:]).float().to(dev), resolution)
    radius = float(rk.get("avg_camera_radius", 2.7))
    pivot = [float(p) for p in rk.get("avg_camera_pivot", (0, 0, 0))]
    focal = default_focal(rk)
    scores = np.zeros((len(pitches), len(yaws)))
    for i, pitch in enumerate(pitches):
        for j, yaw in enumerate(yaws):
            check_cancel(cancel)
            cam = orbit_camera(yaw, pitch, radius, pivot, focal=focal)[None].to(dev)
            out = G.render_planes(
                planes, ws, cam, superresolution=False, neural_rendering_resolution=resolution, occupancy=grid
            )
            score = float((out["image_raw"] - target).square().mean())
            if tmask is not None:
                score += float((out["image_alpha"] - tmask).abs().mean())
            scores[i, j] = score
    bi, bj = (int(v) for v in np.unravel_index(int(np.argmin(scores)), scores.shape))
    return PoseSearch(float(yaws[bj]), float(pitches[bi]), float(scores[bi, bj]), scores, tuple(yaws), tuple(pitches))
