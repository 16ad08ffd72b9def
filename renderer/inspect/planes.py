"""The tri-planes as pictures: which world axes each plane spans, a PCA to RGB shared by the three planes,
single channels, channel grids, and what one texel holds.

A plane's image column (u, width) and row (v, height) read world coordinates through its matrix A_k
(renderer.model.decoder.project_onto_planes: plane coordinates = the first two entries of p @ inv(A_k)).
With the reference's matrices the planes read (x, y), (x, z) and (z, x): EG3D's third plane is the
(z, x) one, a known quirk of the reference (it was meant to be (z, y)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

AXES = ("x", "y", "z")
PCA_PERCENTILES = (1.0, 99.0)
"""The display range of each PCA component (and of one channel): these percentiles of its values."""


def _plane_array(planes: torch.Tensor | np.ndarray) -> np.ndarray:
    """Planes (1, 3, C, P, P) or (3, C, P, P) as a float64 (3, C, P, P) array (the first latent)."""
    x = planes.detach().to("cpu", torch.float64).numpy() if isinstance(planes, torch.Tensor) else np.asarray(planes)
    x = x.astype(np.float64, copy=False)
    if x.ndim == 5:
        x = x[0]
    if x.ndim != 4:
        raise ValueError(f"planes must be (1, 3, C, P, P) or (3, C, P, P), got shape {x.shape}")
    return x


def _axis_name(v: np.ndarray) -> str:
    """'x', '-z', or a combination like '0.71x+0.71y' for a world direction."""
    nz = [(float(c), a) for c, a in zip(v, AXES) if abs(c) > 1e-6]
    if len(nz) == 1 and abs(abs(nz[0][0]) - 1) < 1e-6:
        return ("-" if nz[0][0] < 0 else "") + nz[0][1]
    return "+".join(f"{c:.2g}{a}" for c, a in nz).replace("+-", "-") or "0"


def plane_axes_vectors(plane_axes: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, 2, 3): for each plane, the world vectors whose dot product with a point gives its u and v
    coordinates (the first two columns of inv(A_k))."""
    a = np.asarray(plane_axes.detach().cpu() if isinstance(plane_axes, torch.Tensor) else plane_axes, np.float64)
    inv = np.linalg.inv(a)
    return inv[:, :, :2].transpose(0, 2, 1)


def plane_axes_labels(plane_axes: torch.Tensor | np.ndarray) -> list[tuple[str, str]]:
    """The world axes each plane's (u = image column, v = image row) coordinate reads, from its matrix."""
    return [(_axis_name(uv[0]), _axis_name(uv[1])) for uv in plane_axes_vectors(plane_axes)]


def plane_label(plane_axes: torch.Tensor | np.ndarray, k: int) -> str:
    """'plane 2: (z, x)': plane k and the world axes of its (column, row) coordinates."""
    u, v = plane_axes_labels(plane_axes)[k]
    return f"plane {k}: ({u}, {v})"


@dataclass(frozen=True)
class PlanePCA:
    """One PCA of the texels of all three planes together (so a feature has one colour on every plane)."""

    mean: np.ndarray
    """(C,) mean feature."""
    components: np.ndarray
    """(3, C) unit principal directions, largest variance first; the largest-magnitude loading is positive."""
    explained: np.ndarray
    """(3,) fraction of the total variance each component explains."""
    lo: np.ndarray
    """(3,) display range per component (PCA_PERCENTILES of the fitted texels' projections), shared."""
    hi: np.ndarray

    @property
    def total(self) -> float:
        """Fraction of the variance the three components explain together."""
        return float(self.explained.sum())


def _texels(x: np.ndarray) -> np.ndarray:
    """(3, C, P, P) -> (3 * P * P, C) rows of features."""
    k, c, h, w = x.shape
    return x.transpose(0, 2, 3, 1).reshape(k * h * w, c)


def fit_pca(planes: torch.Tensor | np.ndarray, stride: int = 1) -> PlanePCA:
    """Fit the 3-component PCA over the texels of all three planes (every `stride`-th row and column:
    a fixed, deterministic subsample). float64 covariance and torch.linalg.eigh; each component's sign
    is fixed so that its largest-magnitude loading is positive."""
    x = _plane_array(planes)[:, :, ::stride, ::stride]
    rows = _texels(x)
    mean = rows.mean(0)
    centred = rows - mean
    cov = torch.from_numpy(centred.T @ centred / max(len(rows) - 1, 1))
    values, vectors = torch.linalg.eigh(cov)
    values, vectors = values.numpy()[::-1], vectors.numpy()[:, ::-1]
    comps = np.zeros((3, rows.shape[1]))
    explained = np.zeros(3)
    n = min(3, rows.shape[1])
    comps[:n] = vectors[:, :n].T
    total = float(values.clip(min=0).sum())
    if total > 0:
        explained[:n] = values[:n].clip(min=0) / total
    for i in range(n):
        j = int(np.argmax(np.abs(comps[i])))
        if comps[i, j] < 0:
            comps[i] = -comps[i]
    proj = centred @ comps.T
    lo, hi = np.percentile(proj, PCA_PERCENTILES, axis=0)
    return PlanePCA(mean=mean, components=comps, explained=explained, lo=lo, hi=hi)


def _to_uint8(v: np.ndarray, lo, hi) -> np.ndarray:
    """(v - lo) / (hi - lo) on [0, 1] -> uint8 (a zero range maps to mid-grey)."""
    span = np.asarray(hi, np.float64) - np.asarray(lo, np.float64)
    t = np.where(span > 0, (v - lo) / np.where(span > 0, span, 1), 0.5)
    return (np.clip(np.nan_to_num(t, nan=0.0), 0, 1) * 255).round().astype(np.uint8)


def pca_images(planes: torch.Tensor | np.ndarray, pca: PlanePCA) -> np.ndarray:
    """(3, P, P, 3) uint8: each plane's texels projected on the PCA's components, as RGB in its shared range."""
    x = _plane_array(planes)
    k, c, h, w = x.shape
    proj = (_texels(x) - pca.mean) @ pca.components.T
    return _to_uint8(proj, pca.lo, pca.hi).reshape(k, h, w, 3)


def channel_images(planes: torch.Tensor | np.ndarray, channel: int) -> np.ndarray:
    """(3, P, P) uint8: one channel of the three planes, with one shared range (PCA_PERCENTILES of the three)."""
    x = _plane_array(planes)
    if not 0 <= channel < x.shape[1]:
        raise ValueError(f"channel {channel} is outside 0..{x.shape[1] - 1}")
    v = x[:, channel]
    lo, hi = np.percentile(v, PCA_PERCENTILES)
    return _to_uint8(v, lo, hi)


def channel_grid(planes: torch.Tensor | np.ndarray, plane: int, columns: int = 8, separator: int = 0) -> np.ndarray:
    """(rows * P + rows - 1, columns * P + columns - 1) uint8: every channel of one plane, each in its own
    range (PCA_PERCENTILES), row-major from channel 0, with 1-pixel separators of value `separator`."""
    x = _plane_array(planes)
    if not 0 <= plane < x.shape[0]:
        raise ValueError(f"plane {plane} is outside 0..{x.shape[0] - 1}")
    c, h, w = x.shape[1:]
    rows = -(-c // columns)
    grid = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1), separator, np.uint8)
    for ch in range(c):
        r, q = divmod(ch, columns)
        lo, hi = np.percentile(x[plane, ch], PCA_PERCENTILES)
        grid[r * (h + 1) : r * (h + 1) + h, q * (w + 1) : q * (w + 1) + w] = _to_uint8(x[plane, ch], lo, hi)
    return grid


@dataclass(frozen=True)
class TexelInfo:
    """One texel: where its centre lies in the world and what it holds."""

    plane: int
    row: int
    col: int
    u_world: float
    """World coordinate of the texel centre along the plane's u axis (image column)."""
    v_world: float
    """... along its v axis (image row)."""
    axes: tuple[str, str]
    """The world axes u and v read, e.g. ('z', 'x')."""
    point: np.ndarray
    """(3,) the texel centre as a world point with the plane's third coordinate 0."""
    values: np.ndarray
    """(C,) the texel's features."""


def texel_centre(index: int, size: int, box_warp: float) -> float:
    """World coordinate of texel `index`'s centre on an axis of `size` texels (grid_sample, align_corners=False)."""
    return ((2 * index + 1) / size - 1) * box_warp / 2


def texel_info(
    planes: torch.Tensor | np.ndarray, plane: int, row: int, col: int, plane_axes, box_warp: float
) -> TexelInfo:
    """The world coordinates (u along the plane's width, v along its height), axis names and values of one texel."""
    x = _plane_array(planes)
    k, c, h, w = x.shape
    if not (0 <= plane < k and 0 <= row < h and 0 <= col < w):
        raise ValueError(f"texel (plane {plane}, row {row}, col {col}) is outside 3 planes of {h}x{w}")
    u, v = texel_centre(col, w, box_warp), texel_centre(row, h, box_warp)
    a = np.asarray(plane_axes.detach().cpu() if isinstance(plane_axes, torch.Tensor) else plane_axes, np.float64)
    point = np.array([u, v, 0.0]) @ a[plane]  # plane coordinates (u, v, 0) back to the world: p = q @ A_k
    return TexelInfo(
        plane=plane,
        row=row,
        col=col,
        u_world=u,
        v_world=v,
        axes=plane_axes_labels(a)[plane],
        point=point,
        values=x[plane, :, row, col].copy(),
    )
