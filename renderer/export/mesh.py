"""Meshes from a tri-plane generator: density on an N^3 grid from cached planes, marching cubes, colours.

The density grid (renderer.model.density) covers the model's box and is sampled from *cached*
tri-planes, so the backbone never runs here; the reference re-runs mapping and backbone for every
1M-point chunk. The outermost voxel layer is set below the level so every surface closes at the
box border. Marching cubes (scikit-image) gives vertices directly in world
units and the camera's world frame: a mesh drawn with a render's camera lies on that render (no
rotation, no voxel units). Vertex colours come from the decoder's colour branch at the vertices
(features[:3], shown by the renderer as 2x-1, so the uint8 colour is the render's pixel value);
normals point outward (towards falling density).

`export_mesh` writes a mesh or the density volume by extension (renderer.export.mesh_files: the
Mesh type, the formats and their writers).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ExportError
from ..model.density import DEFAULT_CHUNK, DensityGrid, check_resolution, sample_density
from ..progress import CancelToken, ProgressFn, check_cancel, report
from .files import check_target
from .mesh_files import DEFAULT_LEVEL, FORMATS, VOLUME_FORMATS, Mesh, save_mesh, save_volume


def default_level(G) -> float:
    """The iso-level for a model: its rendering_kwargs' 'mesh_level' if it declares one, else 10."""
    return float(G.rendering_kwargs.get("mesh_level", DEFAULT_LEVEL))


def check_level(level: float) -> float:
    """A finite float level."""
    try:
        x = float(level)
    except (TypeError, ValueError):
        raise ExportError(f"level must be a number, got {level!r}") from None
    if not np.isfinite(x):
        raise ExportError(f"level must be a finite number, got {level!r}")
    return x


def closed_volume(
    sigma: np.ndarray, level: float, border: int = 1, inplace: bool = False, fill_cavities: bool = True
) -> np.ndarray:
    """sigma with `border` voxels on every face set below the level, so surfaces close (NaN -> below
    the level too); a copy unless `inplace` (which saves N^3 floats: 0.5 GB at 512^3).

    `fill_cavities` raises pockets below the level that cannot be reached from the box border
    (dips of density inside a solid) above it, so the mesh is the outer surface only, with no
    hidden inner shells."""
    v = sigma if inplace and sigma.dtype == np.float32 else np.array(sigma, dtype=np.float32, copy=True)
    if border > 0:
        low = np.float32(min(float(np.nanmin(v)) if v.size else level, level) - 1.0)
        b = int(border)
        v[:b], v[-b:] = low, low
        v[:, :b], v[:, -b:] = low, low
        v[:, :, :b], v[:, :, -b:] = low, low
    v = np.nan_to_num(v, copy=False, nan=float(np.float32(level - 1.0)))
    if fill_cavities:
        from scipy import ndimage

        solid = v > level
        cavities = ndimage.binary_fill_holes(solid)
        cavities &= ~solid
        del solid
        v[cavities] = np.float32(level + 1.0)
    return v


def marching_cubes(
    grid: DensityGrid, level: float, border: int = 1, inplace: bool = False, fill_cavities: bool = True
) -> Mesh:
    """Iso-surface sigma = level of a grid as a closed, outward-facing mesh in world units (no colours).

    `inplace` cleans the border in grid.sigma itself instead of a copy (the grid is changed);
    `fill_cavities`: see closed_volume."""
    from skimage import measure

    level = check_level(level)
    t0 = time.perf_counter()
    lo, hi = float(np.nanmin(grid.sigma)), float(np.nanmax(grid.sigma))
    if not lo < level < hi:
        raise ExportError(
            f"no surface at level {level:g}: raw density on the grid ranges "
            f"{lo:.3g} .. {hi:.3g}; choose a level inside it"
        )
    vol = closed_volume(grid.sigma, level, border, inplace, fill_cavities)
    if not float(vol.max()) > level:
        raise ExportError(f"no surface at level {level:g}: the density above it lies only on the box border")
    verts, faces, normals, _ = measure.marching_cubes(vol, level, spacing=(grid.voxel,) * 3)
    verts = (verts + grid.origin).astype(np.float32)
    faces = np.ascontiguousarray(faces[:, ::-1], dtype=np.int32)  # skimage winds them inwards for this field
    normals = normals.astype(np.float32)
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    up = np.array([0, 0, 1], dtype=np.float32)  # where a normal has no length
    normals = np.where(lengths > 0, normals / np.maximum(lengths, 1e-12), up).astype(np.float32)
    return Mesh(verts, faces, normals, None, level, {"marching_cubes": time.perf_counter() - t0})


def colour_values(rgb: torch.Tensor) -> np.ndarray:
    """Decoder colour features[:3] on (-0.001, 1.001) -> uint8, exactly as a render pixel converts (2x-1)."""
    x = torch.nan_to_num(rgb.float() * 2 - 1, nan=-1.0)
    return (x * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


@torch.no_grad()
def field_normals(
    G,
    planes: torch.Tensor,
    vertices: np.ndarray,
    fallback: np.ndarray,
    eps: float,
    chunk: int = DEFAULT_CHUNK,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Unit outward normals (V, 3): minus the density gradient at each vertex, by central differences
    `eps` apart; `fallback` (the marching-cubes normals) where the field is flat or not finite.

    Where the density rises from empty to solid within a voxel (the built-in model), the grid's own
    gradient snaps to the lattice and the shading shows terraces; the field's gradient does not."""
    out = np.array(fallback, dtype=np.float32, copy=True)
    offsets = torch.eye(3) * float(eps)
    step = max(1, int(chunk) // 6)
    for start in range(0, len(vertices), step):
        check_cancel(cancel)
        v = torch.from_numpy(np.ascontiguousarray(vertices[start : start + step], np.float32))
        pts = torch.cat([v + o for o in offsets] + [v - o for o in offsets]).to(planes.device)
        s = G.sample(pts[None], planes)["sigma"][0, :, 0].float().cpu().view(6, -1)
        n = (s[3:] - s[:3]).t()  # minus the gradient: density falls outwards
        length = n.norm(dim=1, keepdim=True)
        good = (torch.isfinite(length) & (length > 1e-12))[:, 0]
        n = (n / length.clamp_min(1e-12)).numpy()
        out[start : start + len(v)][good.numpy()] = n[good.numpy()]
    return out


@torch.no_grad()
def vertex_colours(
    G, planes: torch.Tensor, vertices: np.ndarray, chunk: int = DEFAULT_CHUNK, cancel: CancelToken | None = None
) -> np.ndarray:
    """uint8 RGB (V, 3) of the decoder's colour branch at world points (V, 3)."""
    out = np.empty((len(vertices), 3), np.uint8)
    for start in range(0, len(vertices), max(1, int(chunk))):
        check_cancel(cancel)
        pts = torch.from_numpy(np.ascontiguousarray(vertices[start : start + chunk], np.float32)).to(planes.device)
        rgb = G.sample(pts[None], planes)["rgb"][0, :, :3]
        out[start : start + len(pts)] = colour_values(rgb)
    return out


def extract_mesh(
    G,
    planes: torch.Tensor,
    resolution: int = 256,
    level: float | None = None,
    colours: bool = True,
    chunk: int = DEFAULT_CHUNK,
    border: int = 1,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    keep_grid: bool = False,
    fill_cavities: bool = True,
    smooth_normals: bool = True,
) -> Mesh:
    """Sample, march and colour: the mesh of one latent's planes (the backbone does not run).

    With keep_grid the DensityGrid is attached as `mesh.grid` (for writing .mrc alongside);
    `smooth_normals` takes normals from the density field itself (see field_normals)."""
    level = default_level(G) if level is None else check_level(level)
    grid = sample_density(G, planes, resolution, chunk, progress, cancel, (0.0, 0.9))
    check_cancel(cancel)
    report(progress, 0.9, "marching cubes")
    mesh = marching_cubes(grid, level, border, inplace=not keep_grid, fill_cavities=fill_cavities)
    mesh.timings["sample"] = grid.seconds
    check_cancel(cancel)
    if smooth_normals:
        t0 = time.perf_counter()
        mesh.normals = field_normals(G, planes, mesh.vertices, mesh.normals, grid.voxel, chunk, cancel)
        mesh.timings["normals"] = time.perf_counter() - t0
    if colours:
        report(progress, 0.95, "vertex colours")
        t0 = time.perf_counter()
        mesh.colors = vertex_colours(G, planes, mesh.vertices, chunk, cancel)
        mesh.timings["colours"] = time.perf_counter() - t0
    if keep_grid:
        mesh.grid = grid  # type: ignore[attr-defined]
    report(progress, 1.0, "mesh ready")
    return mesh


@torch.no_grad()
def render_level(G, planes: torch.Tensor, cameras: torch.Tensor | None = None, resolution: int = 64) -> float:
    """The raw-sigma level at which the volume render puts this latent's surfaces.

    Renders a few views (default: yaw -0.5, 0, 0.5 at pitch -0.1) in deterministic mode, takes the
    expected ray-termination points of the opaque pixels (opacity > 0.5) and returns the median raw
    sigma there. A mesh at this level lies at the render's depth. The alpha-0.5 silhouette forms
    further out (grazing rays cross more of the density ramp), nearer the reference's level 10.
    Where a model's density saturates inside its surfaces, this can land near the saturation value;
    give an explicit level then."""
    from ..camera import default_camera
    from ..model.volume import sample_rays

    rk = G.rendering_kwargs
    if cameras is None:
        cameras = torch.stack([default_camera(rk, yaw=y, pitch=-0.1) for y in (-0.5, 0.0, 0.5)])
    cameras = cameras.to(planes.device)
    points = []
    for c in cameras:
        out = G.render_planes(planes, None, c[None], superresolution=False, neural_rendering_resolution=resolution)
        o, d = sample_rays(c[None, :16].view(1, 4, 4), c[None, 16:25].view(1, 3, 3), resolution)
        mask = out["image_alpha"].reshape(-1) > 0.5
        points.append((o + out["image_depth"].reshape(1, -1, 1) * d)[0][mask])
    pts = torch.cat(points)
    if len(pts) == 0:
        raise ExportError("the render shows no opaque surface from the default views; give a level")
    sigma = G.sample(pts[None], planes)["sigma"].reshape(-1)
    return float(sigma.median())


@dataclass
class ExportSummary:
    """What an export wrote."""

    path: Path
    resolution: int
    level: float
    n_vertices: int = 0
    n_faces: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        """One line for logs and the status bar."""
        what = f"{self.n_vertices:,} vertices, {self.n_faces:,} faces" if self.n_faces else "density volume"
        return f"wrote {self.path} ({what}, {self.resolution}^3, level {self.level:g}, {self.seconds:.1f} s)"


def export_mesh(
    G,
    planes: torch.Tensor,
    path: str | os.PathLike,
    resolution: int = 256,
    level: float | None = None,
    overwrite: bool = False,
    chunk: int = DEFAULT_CHUNK,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ExportSummary:
    """Extract and write a mesh (.ply/.obj/.glb) or the density volume (.mrc) of one latent's planes.

    Path, extension, resolution and level are checked before any sampling; a cancel or an error at
    any point leaves no file behind (ExportError / Cancelled)."""
    t0 = time.perf_counter()
    p = check_target(path, overwrite, FORMATS, "mesh")
    n = check_resolution(resolution)
    level = default_level(G) if level is None else check_level(level)
    if p.suffix.lower() in VOLUME_FORMATS:
        grid = sample_density(G, planes, n, chunk, progress, cancel, (0.0, 0.95))
        check_cancel(cancel)
        report(progress, 0.95, f"writing {p.name}")
        save_volume(grid, p, overwrite)
        report(progress, 1.0, "done")
        return ExportSummary(p, n, level, seconds=time.perf_counter() - t0)
    mesh = extract_mesh(G, planes, n, level, True, chunk, progress=progress, cancel=cancel)
    check_cancel(cancel)
    report(progress, 0.98, f"writing {p.name}")
    save_mesh(mesh, p, overwrite)
    report(progress, 1.0, "done")
    return ExportSummary(p, n, level, mesh.n_vertices, mesh.n_faces, time.perf_counter() - t0)
