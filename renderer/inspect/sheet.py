"""The headless inspection sheet (`triplane-render inspect`): figure files of one latent, no GUI.

Writes into a folder: the planes' PCA side by side (PCA_SHEET), one channel grid per plane
(CHANNEL_GRIDS), x/y/z density slices with the iso contour beside the decoded colour (SLICE_FILES)
and per-layer statistics (LAYERS_JSON). Every file is written atomically (complete or absent).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..export.files import atomic_write, write_png_atomic
from .layers import Layer, capture_backbone, capture_render, layer_stats
from .planes import PlanePCA, channel_grid, fit_pca, pca_images, plane_axes_labels, plane_label
from .slices import DensitySlice, SliceSpec, density_slice, slice_colour_image, slice_image

PCA_SHEET = "planes_pca.png"
CHANNEL_GRIDS = ("plane0_channels.png", "plane1_channels.png", "plane2_channels.png")
SLICE_FILES: dict[Literal["x", "y", "z"], str] = {"x": "slice_x.png", "y": "slice_y.png", "z": "slice_z.png"}
LAYERS_JSON = "layers.json"
OUTPUT_FILES = (PCA_SHEET, *CHANNEL_GRIDS, *SLICE_FILES.values(), LAYERS_JSON)
"""Every file the sheet writes, by name inside the output folder."""
MIN_PANEL = 256
"""Panels smaller than this are enlarged by a whole factor (nearest neighbour), so labels fit and texels show."""
LABEL_HEIGHT = 16
GAP = 4


def label_strip(width: int, text: str, height: int = LABEL_HEIGHT) -> np.ndarray:
    """(height, width, 3) uint8: `text` in white on black with PIL's default font."""
    img = Image.new("RGB", (max(width, 1), height), (0, 0, 0))
    ImageDraw.Draw(img).text((2, 2), text, fill=(255, 255, 255), font=ImageFont.load_default())
    return np.asarray(img)


def enlarge(img: np.ndarray, minimum: int = MIN_PANEL) -> np.ndarray:
    """Repeat pixels by the smallest whole factor that makes the image at least `minimum` wide."""
    f = max(1, -(-minimum // img.shape[1]))
    return img.repeat(f, 0).repeat(f, 1) if f > 1 else img


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img


def side_by_side(panels: Sequence[np.ndarray], labels: Sequence[str], title: str | None = None) -> np.ndarray:
    """Panels (same height) in a row, each under its label, GAP pixels apart, with an optional title row."""
    cols = [np.concatenate([label_strip(p.shape[1], t), _rgb(p)]) for p, t in zip(panels, labels)]
    h = max(c.shape[0] for c in cols)
    gap = np.zeros((h, GAP, 3), np.uint8)
    parts: list[np.ndarray] = []
    for c in cols:
        c = np.pad(c, ((0, h - c.shape[0]), (0, 0), (0, 0)))
        parts += [c, gap]
    row = np.concatenate(parts[:-1], axis=1)
    return np.concatenate([label_strip(row.shape[1], title), row]) if title else row


def pca_sheet(planes: torch.Tensor, pca: PlanePCA, plane_axes) -> np.ndarray:
    """The three planes' PCA images side by side, labelled with their axes; explained variance in the title."""
    imgs = pca_images(planes, pca)
    ev = ", ".join(f"{100 * e:.1f}%" for e in pca.explained)
    title = f"tri-plane PCA (one fit, shared colours): explained {ev} (total {100 * pca.total:.1f}%)"
    return side_by_side([enlarge(i) for i in imgs], [plane_label(plane_axes, k) for k in range(3)], title)


def slice_sheet(s: DensitySlice, level: float) -> np.ndarray:
    """One slice's density with the iso contour beside its decoded colour, labelled."""
    axis, pos = s.spec.axis, s.spec.position
    return side_by_side(
        [enlarge(slice_image(s, level)), enlarge(slice_colour_image(s))],
        [f"raw density, contour at {level:g}", "decoded colour"],
        f"slice {axis} = {pos:g}",
    )


def layer_records(layers: Sequence[Layer]) -> list[dict]:
    """Per layer: name, stage, shape and layer_stats (mean, std (population), min, max)."""
    return [{"name": ly.name, "stage": ly.stage, "shape": list(ly.shape), **layer_stats(ly.tensor)} for ly in layers]


@dataclass
class Inspection:
    """What the sheet is made from: one latent's layers, planes, PCA and slices."""

    layers: list[Layer]
    planes: torch.Tensor
    pca: PlanePCA
    slices: dict[str, DensitySlice]


def inspect_latent(G, ws: torch.Tensor, camera, slice_resolution: int = 256) -> Inspection:
    """Capture one latent's layers (one backbone run, one render from `camera`), fit the plane PCA and
    sample the three axis slices at position 0."""
    layers, planes = capture_backbone(G, ws)
    layers += capture_render(G, planes, ws, camera)
    slices: dict[str, DensitySlice] = {
        a: density_slice(G, planes, SliceSpec(axis=a, resolution=slice_resolution)) for a in SLICE_FILES
    }
    return Inspection(layers=layers, planes=planes, pca=fit_pca(planes), slices=slices)


def write_sheet(
    G, inspection: Inspection, out_dir: str | os.PathLike, level: float, meta: dict, overwrite: bool = False
) -> list[Path]:
    """Write OUTPUT_FILES into `out_dir` (atomically; an existing file is refused unless `overwrite`).
    `meta` (seed, psi, network, ...) goes into the JSON beside the layers' statistics."""
    out = Path(out_dir)
    planes, pca = inspection.planes, inspection.pca
    written = []
    sheet = pca_sheet(planes, pca, G.plane_axes)
    write_png_atomic(sheet, out / PCA_SHEET, overwrite=overwrite)
    written.append(out / PCA_SHEET)
    for k, name in enumerate(CHANNEL_GRIDS):
        grid = channel_grid(planes, k)
        img = side_by_side([grid], [f"{plane_label(G.plane_axes, k)}, channels 0-{planes.shape[2] - 1} row by row"])
        write_png_atomic(img, out / name, overwrite=overwrite)
        written.append(out / name)
    for axis, name in SLICE_FILES.items():
        write_png_atomic(slice_sheet(inspection.slices[axis], level), out / name, overwrite=overwrite)
        written.append(out / name)
    report = {
        **meta,
        "level": level,
        "plane_labels": [plane_label(G.plane_axes, k) for k in range(3)],
        "plane_axes": [list(uv) for uv in plane_axes_labels(G.plane_axes)],
        "pca_explained": [float(e) for e in pca.explained],
        "pca_total": pca.total,
        "std": "population (ddof 0)",
        "layers": layer_records(inspection.layers),
    }
    text = json.dumps(report, indent=1) + "\n"
    atomic_write(out / LAYERS_JSON, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=overwrite)
    written.append(out / LAYERS_JSON)
    return written


__all__ = ["OUTPUT_FILES", "Inspection", "inspect_latent", "write_sheet"]
