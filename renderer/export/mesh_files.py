"""Meshes and density volumes as files: the Mesh type and the .ply, .obj, .glb and .mrc writers.

Formats by extension: .ply (binary, positions + normals + RGB), .obj (with vertex colours and
normals), .glb (positions, normals, COLOR_0 in linear light as glTF defines it, and a matte
non-metallic material, so viewers show the colours the render shows), .mrc (the raw-sigma volume,
float32, with voxel size and origin set so ChimeraX shows it in world units; its "level 10" recipe
still applies). `save_mesh` / `save_volume` check the path first and write atomically
(renderer.export.files).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ExportError
from ..model.density import DensityGrid
from .files import atomic_write, check_target

DEFAULT_LEVEL = 10.0
"""The reference recipe's iso-level on raw sigma (eg3d-reference §5.1; density softplus(10 - 1) ~ 9)."""
MESH_FORMATS = (".ply", ".obj", ".glb")
VOLUME_FORMATS = (".mrc",)
FORMATS = MESH_FORMATS + VOLUME_FORMATS


@dataclass
class Mesh:
    """A triangle mesh in world units: float32 vertices/normals, int32 faces (outward), uint8 colours."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    colors: np.ndarray | None = None
    level: float = DEFAULT_LEVEL
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage: sample, marching_cubes, colours."""

    @property
    def n_vertices(self) -> int:
        return int(len(self.vertices))

    @property
    def n_faces(self) -> int:
        return int(len(self.faces))

    def to_trimesh(self):
        """A trimesh.Trimesh (process=False: vertices kept as they are) with colours and normals."""
        import trimesh

        colors = None
        if self.colors is not None:
            colors = np.concatenate([self.colors, np.full((len(self.colors), 1), 255, np.uint8)], 1)
        return trimesh.Trimesh(
            self.vertices, self.faces, vertex_normals=self.normals, vertex_colors=colors, process=False
        )


def _ply_bytes(mesh: Mesh) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Binary little-endian PLY: header, vertex records (xyz, normal, rgb), face records (count + 3 int32)."""
    has_c = mesh.colors is not None
    vdt = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if has_c:
        vdt += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    v = np.empty(mesh.n_vertices, dtype=vdt)
    v["x"], v["y"], v["z"] = mesh.vertices.T
    v["nx"], v["ny"], v["nz"] = mesh.normals.T
    if mesh.colors is not None:  # has_c
        v["red"], v["green"], v["blue"] = mesh.colors.T
    f = np.empty(mesh.n_faces, dtype=[("n", "u1"), ("i", "<i4", (3,))])
    f["n"], f["i"] = 3, mesh.faces
    header = [
        "ply",
        "format binary_little_endian 1.0",
        "comment triplane-viz mesh, world units",
        f"comment iso-level {mesh.level:g} on raw sigma",
        f"element vertex {mesh.n_vertices}",
        "property float x",
        "property float y",
        "property float z",
        "property float nx",
        "property float ny",
        "property float nz",
    ]
    if has_c:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header += [f"element face {mesh.n_faces}", "property list uchar int vertex_indices", "end_header"]
    return ("\n".join(header) + "\n").encode("ascii"), v, f


def write_ply(mesh: Mesh, path: Path) -> None:
    """Binary PLY with normals and (if present) vertex colours."""
    header, v, f = _ply_bytes(mesh)
    with open(path, "xb") as fh:
        fh.write(header)
        fh.write(v.tobytes())
        fh.write(f.tobytes())


def write_obj(mesh: Mesh, path: Path) -> None:
    """Wavefront OBJ: 'v x y z [r g b]' (colours on 0..1, the common extension), 'vn', 'f a//a b//b c//c'."""
    import trimesh.exchange.obj as obj

    text = obj.export_obj(
        mesh.to_trimesh(),
        include_normals=True,
        include_color=mesh.colors is not None,
        include_texture=False,
        write_texture=False,
        header="triplane-viz mesh, world units",
    )
    with open(path, "x", encoding="ascii", newline="\n") as fh:
        fh.write(text)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB-encoded values on [0, 1] -> linear light (the sRGB transfer function's inverse), float64."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


GLB_MATERIAL = {
    "name": "vertex colour, matte",
    "pbrMetallicRoughness": {"baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0, "roughnessFactor": 1.0},
    "doubleSided": True,
}
"""The GLB's one material: a non-metal, fully rough, so viewers show the vertex colours as a matte surface
(without a material glTF's default, metallic 1, applies). COLOR_0 multiplies its white base colour."""

_GLB_MAGIC, _GLB_JSON, _GLB_BIN = 0x46546C67, 0x4E4F534A, 0x004E4942  # 'glTF', 'JSON', 'BIN\0'
_FLOAT, _UINT32 = 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963


def glb_bytes(mesh: Mesh) -> bytes:
    """Binary glTF 2.0 of a mesh: one node, one triangle primitive with POSITION, NORMAL, COLOR_0 (linear
    float RGB: the sRGB vertex colours converted, as glTF defines COLOR_0) and uint32 indices, and the
    matte GLB_MATERIAL."""
    import json
    import struct

    if mesh.n_faces == 0:
        raise ExportError("the mesh has no faces; a glTF file cannot hold an empty primitive")
    positions = np.ascontiguousarray(mesh.vertices, dtype="<f4")
    normals = np.asarray(mesh.normals, dtype=np.float64)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 0, normals / np.where(length > 0, length, 1), [0.0, 0.0, 1.0])  # glTF: unit length
    columns = [("POSITION", positions), ("NORMAL", np.ascontiguousarray(normals, dtype="<f4"))]
    if mesh.colors is not None:
        linear = srgb_to_linear(np.asarray(mesh.colors, dtype=np.float64) / 255.0)
        columns.append(("COLOR_0", np.ascontiguousarray(linear, dtype="<f4")))
    indices = np.ascontiguousarray(mesh.faces, dtype="<u4").reshape(-1)

    blob, views, accessors, attributes = bytearray(), [], [], {}

    def add_view(data: np.ndarray, target: int) -> int:
        while len(blob) % 4:
            blob.append(0)
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": data.nbytes, "target": target})
        blob.extend(data.tobytes())
        return len(views) - 1

    for name, data in columns:
        accessor = {
            "bufferView": add_view(data, _ARRAY_BUFFER),
            "componentType": _FLOAT,
            "count": len(data),
            "type": "VEC3",
        }
        if name == "POSITION":  # required for positions
            accessor["min"], accessor["max"] = data.min(0).tolist(), data.max(0).tolist()
        accessors.append(accessor)
        attributes[name] = len(accessors) - 1
    accessors.append(
        {
            "bufferView": add_view(indices, _ELEMENT_ARRAY_BUFFER),
            "componentType": _UINT32,
            "count": int(indices.size),
            "type": "SCALAR",
            "min": [int(indices.min())],
            "max": [int(indices.max())],
        }
    )
    while len(blob) % 4:
        blob.append(0)
    gltf = {
        "asset": {"version": "2.0", "generator": "triplane-viz"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "triplane-viz mesh"}],
        "meshes": [
            {
                "name": "triplane-viz mesh",
                "primitives": [{"attributes": attributes, "indices": len(accessors) - 1, "material": 0, "mode": 4}],
            }
        ],
        "materials": [GLB_MATERIAL],
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
        "extras": {"units": "world units of the cameras' frame", "iso_level_raw_sigma": float(mesh.level)},
    }
    text = json.dumps(gltf, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + len(blob)
    return b"".join(
        [
            struct.pack("<III", _GLB_MAGIC, 2, total),
            struct.pack("<II", len(text), _GLB_JSON),
            text,
            struct.pack("<II", len(blob), _GLB_BIN),
            bytes(blob),
        ]
    )


def write_glb(mesh: Mesh, path: Path) -> None:
    """Binary glTF (glb_bytes): positions, normals, linear COLOR_0, a matte non-metallic material."""
    data = glb_bytes(mesh)
    with open(path, "xb") as fh:
        fh.write(data)


def write_mrc(grid: DensityGrid, path: Path) -> None:
    """The raw-sigma volume as MRC (float32, mode 2): data[z, y, x], voxel size and origin in world units."""
    import mrcfile

    with mrcfile.new(str(path), overwrite=False) as mrc:
        mrc.set_data(np.ascontiguousarray(grid.sigma.transpose(2, 1, 0), dtype=np.float32))
        mrc.voxel_size = grid.voxel
        mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = (grid.origin,) * 3
        mrc.update_header_stats()


MESH_WRITERS: dict[str, Callable[[Mesh, Path], None]] = {".ply": write_ply, ".obj": write_obj, ".glb": write_glb}
VOLUME_WRITERS: dict[str, Callable[[DensityGrid, Path], None]] = {".mrc": write_mrc}
"""Writers by extension; each writes a fresh file at the path it is given (a temp file beside the target)."""


def save_mesh(mesh: Mesh, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a mesh by its file extension (.ply/.obj/.glb), atomically; returns the path."""
    p = check_target(path, overwrite, MESH_FORMATS, "mesh")
    writer = MESH_WRITERS[p.suffix.lower()]
    return atomic_write(p, lambda tmp: writer(mesh, tmp), overwrite)


def save_volume(grid: DensityGrid, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the density volume (.mrc), atomically; returns the path."""
    p = check_target(path, overwrite, VOLUME_FORMATS, "volume")
    writer = VOLUME_WRITERS[p.suffix.lower()]
    return atomic_write(p, lambda tmp: writer(grid, tmp), overwrite)
