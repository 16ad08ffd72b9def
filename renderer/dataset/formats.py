"""Camera and depth conventions of the formats a dataset is written in, and the geometry that checks them.

EG3D (dataset.json labels): 25 values per image, the OpenCV cam2world row-major (x right, y down, z
forward) then the 3x3 intrinsics normalised by the image size (renderer.camera). Exactly the vectors the
renders were made with.

nerfstudio / instant-ngp (transforms.json): `transform_matrix` is the OpenGL cam2world (x right, y up, z
backwards) in the same world frame: cam2world_gl = cam2world_cv @ diag(1, -1, -1, 1)
(renderer.paths.files.to_gl, what the camera-path export uses). Intrinsics are in pixels of the image
they describe: fl_x = fx * w, fl_y = fy * h, cx = cx_n * w, cy = cy_n * h. Both conventions put pixel
(column j, row i) at the continuous image point (j + 0.5, i + 0.5), as the renderer's rays do
(renderer.model.volume.sample_rays: u = (j + 0.5) / R), so no half-pixel shift is needed.

Depth: the renderer's depth is the distance along the unit ray (`ray distance`). nerfstudio's depth
images hold the z-depth (distance along the camera's optical axis; its depth loss multiplies by the ray
direction's norm to get back the ray distance), read as 16-bit PNG values times `depth_unit_scale_factor`
(default 0.001: millimetres). `depth_mm` files are therefore round(z * 1000) in uint16, 0 = background.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..camera import Camera
from ..engine.frames import OPAQUE
from ..paths.files import from_gl, to_gl

DEPTH_MM_SCALE = 1000.0
"""nerfstudio depth PNG units per world unit (its default depth_unit_scale_factor 1e-3 reads them back)."""


def split_camera(c: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(cam2world 4x4 OpenCV, normalised K 3x3) of a 25-value camera, float64."""
    v = np.asarray(c, dtype=np.float64).reshape(25)
    return v[:16].reshape(4, 4), v[16:].reshape(3, 3)


def eg3d_label(camera: Camera) -> list[float]:
    """The dataset.json label of a camera: its 25 values unchanged."""
    return [float(v) for v in camera]


def pixel_intrinsics(camera: Camera, width: int, height: int) -> dict[str, float]:
    """nerfstudio's fl_x, fl_y, cx, cy (pixels) of a camera for a width x height image."""
    _, k = split_camera(camera)
    if abs(k[0, 1]) > 0:
        raise ValueError("cameras with skew have no nerfstudio pinhole equivalent")
    return {
        "fl_x": float(k[0, 0] * width),
        "fl_y": float(k[1, 1] * height),
        "cx": float(k[0, 2] * width),
        "cy": float(k[1, 2] * height),
    }


def transform_matrix(camera: Camera) -> list[list[float]]:
    """nerfstudio's transform_matrix (OpenGL cam2world, 4x4 nested lists) of a camera."""
    c2w, _ = split_camera(camera)
    return [[float(v) for v in row] for row in to_gl(c2w)]


def camera_from_transforms(frame: dict[str, Any], top: dict[str, Any]) -> Camera:
    """The EG3D 25-value camera of one transforms.json frame (intrinsics per frame or at top level)."""

    def get(key: str) -> float:
        return float(frame[key] if key in frame else top[key])

    w, h = get("w"), get("h")
    c2w = from_gl(np.asarray(frame["transform_matrix"], dtype=np.float64))
    k = np.array([[get("fl_x") / w, 0, get("cx") / w], [0, get("fl_y") / h, get("cy") / h], [0, 0, 1]])
    return tuple(float(v) for v in np.concatenate([c2w.reshape(16), k.reshape(9)]))


def transforms_json(frames: list[dict[str, Any]], cameras: list[Camera], width: int, height: int) -> dict[str, Any]:
    """A nerfstudio / instant-ngp transforms.json object: `frames` (file paths per view) gain their
    transform_matrix; shared intrinsics go at top level, differing ones per frame."""
    intr = [pixel_intrinsics(c, width, height) for c in cameras]
    shared = all(i == intr[0] for i in intr)
    out: dict[str, Any] = {"camera_model": "OPENCV", "w": width, "h": height}
    if shared:
        out.update(intr[0])
    out.update(k1=0.0, k2=0.0, p1=0.0, p2=0.0)
    out["depth_unit_scale_factor"] = 1.0 / DEPTH_MM_SCALE
    out["frames"] = [
        dict(f, **({} if shared else i), transform_matrix=transform_matrix(c)) for f, i, c in zip(frames, intr, cameras)
    ]
    return out


# ----------------------------------------------------------------- rays, depth, points
def pixel_rays(camera: Camera, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin (3,), unit world directions (R, R, 3), camera-space z of the unit directions (R, R)) of the
    rays through the pixel centres of an R x R image, row i from the top, column j from the left."""
    c2w, k = split_camera(camera)
    centres = (np.arange(resolution, dtype=np.float64) + 0.5) / resolution
    u, v = np.meshgrid(centres, centres, indexing="xy")  # u: column, v: row
    y = (v - k[1, 2]) / k[1, 1]
    x = (u - k[0, 2] - k[0, 1] * y) / k[0, 0]
    d_cam = np.stack([x, y, np.ones_like(x)], -1)
    d_cam /= np.linalg.norm(d_cam, axis=-1, keepdims=True)
    return c2w[:3, 3].copy(), d_cam @ c2w[:3, :3].T, d_cam[..., 2]


def ray_to_z_depth(ray_depth: np.ndarray, camera: Camera) -> np.ndarray:
    """Ray distance (R, R) -> z-depth along the optical axis."""
    _, _, z = pixel_rays(camera, ray_depth.shape[-1])
    return np.asarray(ray_depth, dtype=np.float64) * z


def z_to_ray_depth(z_depth: np.ndarray, camera: Camera) -> np.ndarray:
    """z-depth (R, R) -> ray distance."""
    _, _, z = pixel_rays(camera, z_depth.shape[-1])
    return np.asarray(z_depth, dtype=np.float64) / z


def unproject(ray_depth: np.ndarray, camera: Camera) -> np.ndarray:
    """World points (R, R, 3) of a ray-distance depth map."""
    o, d, _ = pixel_rays(camera, ray_depth.shape[-1])
    return o + d * np.asarray(ray_depth, dtype=np.float64)[..., None]


def project(points: np.ndarray, camera: Camera, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(column, row) continuous pixel coordinates (pixel centres at +0.5) and ray distance of world points
    (..., 3) in an R x R image of an EG3D camera; points behind the camera get NaN coordinates."""
    c2w, k = split_camera(camera)
    p = (np.asarray(points, dtype=np.float64) - c2w[:3, 3]) @ c2w[:3, :3]  # world -> camera (rotation^T)
    z = p[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = p[..., 0] / z, p[..., 1] / z
        col = (k[0, 0] * x + k[0, 1] * y + k[0, 2]) * resolution
        row = (k[1, 1] * y + k[1, 2]) * resolution
    behind = ~(z > 0)
    col[behind] = np.nan
    row[behind] = np.nan
    return col, row, np.linalg.norm(p, axis=-1)


def project_gl(points: np.ndarray, transforms: dict[str, Any], frame: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(column, row) pixel coordinates of world points under a transforms.json frame, by nerfstudio's
    pinhole model (OpenGL camera looking down -z, image rows growing downwards)."""

    def get(key: str) -> float:
        return float(frame[key] if key in frame else transforms[key])

    c2w = np.asarray(frame["transform_matrix"], dtype=np.float64)
    p = (np.asarray(points, dtype=np.float64) - c2w[:3, 3]) @ c2w[:3, :3]
    depth = -p[..., 2]
    return get("cx") + get("fl_x") * p[..., 0] / depth, get("cy") - get("fl_y") * p[..., 1] / depth


def depth_mm(ray_depth: np.ndarray, alpha: np.ndarray, camera: Camera) -> np.ndarray:
    """nerfstudio's 16-bit depth image: round(z-depth * 1000), 0 where the pixel is background
    (opacity <= 0.5) or the value does not fit."""
    z = ray_to_z_depth(ray_depth, camera) * DEPTH_MM_SCALE
    keep = (np.asarray(alpha) > OPAQUE) & np.isfinite(z) & (z > 0) & (z < 65535.5)
    out = np.zeros(z.shape, dtype=np.uint16)
    out[keep] = np.round(z[keep]).astype(np.uint16)
    return out


def normals_from_depth(ray_depth: np.ndarray, alpha: np.ndarray, camera: Camera) -> np.ndarray:
    """World-space unit normals (R, R, 3) of the depth map's surface (central differences of the unprojected
    points, one-sided at edges), facing the camera; zero where the pixel is background."""
    pts = unproject(ray_depth, camera)
    du = np.gradient(pts, axis=1)
    dv = np.gradient(pts, axis=0)
    n = np.cross(dv, du)  # rows go down (+v), columns right (+u): this order points towards the camera
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.where(norm > 0, n / norm, 0.0)
    o, d, _ = pixel_rays(camera, ray_depth.shape[-1])
    flip = np.sum(n * d, axis=-1, keepdims=True) > 0
    n = np.where(flip, -n, n)
    n[~(np.asarray(alpha) > OPAQUE) | ~np.isfinite(n).all(-1)] = 0.0
    return n


def normals_to_uint8(n: np.ndarray) -> np.ndarray:
    """(R, R, 3) unit normals -> RGB uint8, (n + 1) / 2 * 255; background (zero vector) stays black."""
    out = np.round((np.clip(n, -1, 1) + 1) * 127.5).astype(np.uint8)
    out[~np.any(n != 0, axis=-1)] = 0
    return out


def camera_radius(camera: Camera) -> float:
    """Distance of a camera from the world origin."""
    c2w, _ = split_camera(camera)
    return float(math.sqrt(float(np.sum(c2w[:3, 3] ** 2))))


__all__ = [
    "DEPTH_MM_SCALE",
    "camera_from_transforms",
    "camera_radius",
    "depth_mm",
    "eg3d_label",
    "normals_from_depth",
    "normals_to_uint8",
    "pixel_intrinsics",
    "pixel_rays",
    "project",
    "project_gl",
    "ray_to_z_depth",
    "split_camera",
    "transform_matrix",
    "transforms_json",
    "unproject",
    "z_to_ray_depth",
]
