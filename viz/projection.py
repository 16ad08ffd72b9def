"""World points onto the render area: the pinhole projection of a 25-value EG3D camera (OpenCV axes, normalised
intrinsics), for overlays drawn with imgui over the frame (slice planes, camera paths)."""

from __future__ import annotations

import numpy as np

from .gfx.mesh_view import square_fit

NEAR = 1e-6
"""Points nearer the camera plane than this (or behind it) do not project."""


def project(camera, points) -> np.ndarray:
    """World points (N, 3) -> image fractions (N, 2) (x right, y down, 0..1 across a square render); NaN rows for
    points behind the camera."""
    c = np.asarray(camera, np.float64)
    cam2world, k = c[:16].reshape(4, 4), c[16:25].reshape(3, 3)
    p = (np.asarray(points, np.float64).reshape(-1, 3) - cam2world[:3, 3]) @ cam2world[:3, :3]  # R^T (p - o)
    uvw = p @ k.T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[:, :2] / uvw[:, 2:3]
    uv[p[:, 2] <= NEAR] = np.nan
    return uv


def to_window(render_rect: tuple[float, float, float, float], uv: np.ndarray) -> np.ndarray:
    """Image fractions -> window coordinates of the square the render is shown in (inside `render_rect`)."""
    fx, fy, fw, fh = square_fit(*(int(v) for v in render_rect))
    return np.stack([fx + uv[:, 0] * fw, fy + uv[:, 1] * fh], axis=-1)
