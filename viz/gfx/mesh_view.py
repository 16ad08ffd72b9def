"""The geometry view: a preview mesh extracted in the background, drawn with GL under the live camera.

`PreviewMesher` extracts a mesh (renderer.export.mesh, default 128^3) from the tri-planes of the frame on
screen on its own thread; a newer request cancels an extraction still running. `MeshView` owns
the GL side: the lit mesh program (shaders/mesh.*) draws into an offscreen colour + depth target,
and a composite pass (shaders/composite.*) puts it on screen, opaque in the geometry view or
blended over the neural render as an overlay. The projection is the EG3D camera's own (OpenCV
axes, normalised intrinsics), so a mesh drawn with a render's camera lies on that render, and
orbiting redraws at display rate without any neural rendering.
"""

from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from OpenGL import GL
from OpenGL.raw.GL.VERSION.GL_2_0 import glVertexAttribPointer as raw_vertex_attrib_pointer

from renderer.errors import Cancelled, ExportError
from renderer.export.mesh import default_level, extract_mesh
from renderer.export.mesh_files import Mesh

from ..jobs.worker import LatestWinsWorker
from .gl import DRAW_ENABLES, compile_program, load_shader_source, restore_state, save_state

if TYPE_CHECKING:
    import torch

GEOMETRY_MODES = ("colours", "normals", "clay")
"""Mesh shading: vertex colours (lit), camera-space normals, plain clay (lit)."""
PREVIEW_RESOLUTIONS = (48, 64, 96, 128, 192, 256)
NEAR, FAR = 0.01, 200.0


@dataclass
class GeometrySettings:
    """UI state of the geometry view (not part of a render request)."""

    overlay: bool = False
    """Draw the mesh over the image/raw/depth views too (with the shown frame's camera)."""
    mode: str = "colours"
    resolution: int = 128
    level: float | None = None
    """Iso-level on raw sigma; None = the model's default (10, the reference recipe)."""
    opacity: float = 0.5
    """Overlay opacity."""


# ----------------------------------------------------------------- camera matrices
def world_to_camera(camera) -> np.ndarray:
    """4x4 world -> OpenCV camera (inverse of the 25-value camera's cam2world), float64."""
    c = np.asarray(camera, dtype=np.float64).reshape(25)
    m = c[:16].reshape(4, 4)
    r, t = m[:3, :3], m[:3, 3]
    out = np.eye(4)
    out[:3, :3] = r.T
    out[:3, 3] = -r.T @ t
    return out


def projection(camera, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """4x4 OpenCV camera space -> GL clip space for the camera's normalised intrinsics.

    A point at (x, y, z) lands at NDC (2u - 1, 1 - 2v) with u = fx x/z + cx, v = fy y/z + cy, the
    normalised image coordinates the renderer's rays use (v down, so NDC y is flipped)."""
    c = np.asarray(camera, dtype=np.float64).reshape(25)
    k = c[16:].reshape(3, 3)
    fx, fy, cx, cy, sk = k[0, 0], k[1, 1], k[0, 2], k[1, 2], k[0, 1]
    return np.array(
        [
            [2 * fx, 2 * sk, 2 * cx - 1, 0],
            [0, -2 * fy, 1 - 2 * cy, 0],
            [0, 0, (far + near) / (far - near), -2 * far * near / (far - near)],
            [0, 0, 1, 0],
        ],
        dtype=np.float64,
    )


def project_ndc(camera, points: np.ndarray) -> np.ndarray:
    """World points (N, 3) -> NDC (N, 3) through the same matrices the shader uses (tests)."""
    p = np.c_[np.asarray(points, np.float64), np.ones(len(points))] @ (projection(camera) @ world_to_camera(camera)).T
    return p[:, :3] / p[:, 3:]


def square_fit(x: int, y: int, w: int, h: int) -> tuple[int, int, int, int]:
    """The largest centred square inside a rect (top-left origin): where a square render is shown."""
    s = max(0, min(w, h))
    return x + (w - s) // 2, y + (h - s) // 2, s, s


# ----------------------------------------------------------------- background extraction
@dataclass(frozen=True)
class PreviewJob:
    stamp: int
    key: tuple
    G: object
    planes: torch.Tensor
    resolution: int
    level: float | None
    cancel: threading.Event


@dataclass
class PreviewMesh:
    """A finished preview: the mesh (None on failure), the job's key, seconds, and an error line."""

    key: tuple | None
    mesh: Mesh | None
    seconds: float
    error: str | None = None


def _extract(job: PreviewJob) -> PreviewMesh:
    t0 = time.perf_counter()
    level = default_level(job.G) if job.level is None else job.level
    try:
        mesh = extract_mesh(job.G, job.planes, job.resolution, level, cancel=job.cancel)
    except Cancelled:
        raise
    except ExportError as e:
        return PreviewMesh(job.key, None, time.perf_counter() - t0, str(e))
    return PreviewMesh(job.key, mesh, time.perf_counter() - t0)


class PreviewMesher:
    """Latest-wins mesh extraction on a daemon thread; a new request cancels the running one."""

    def __init__(self):
        self._worker: LatestWinsWorker[PreviewJob] = LatestWinsWorker(_extract, name="mesh-preview")
        self._stamp = 0
        self._current: PreviewJob | None = None
        self.requested_key: tuple | None = None

    @property
    def busy(self) -> bool:
        return self._worker.busy

    def request(self, key: tuple, G, planes, resolution: int, level: float | None) -> None:
        """Extract a mesh for `key` (the latent, truncation, conditioning, resolution and level)."""
        if self._current is not None:
            self._current.cancel.set()
        self._stamp += 1
        self._current = PreviewJob(self._stamp, key, G, planes, int(resolution), level, threading.Event())
        self.requested_key = key
        self._worker.submit(self._current)

    def poll(self) -> PreviewMesh | None:
        """The newest finished preview, once (cancelled extractions are dropped)."""
        res = self._worker.poll()
        if res is None:
            return None
        if res.error is not None:
            if res.error.startswith("Cancelled"):
                return None
            return PreviewMesh(None, None, res.seconds, f"mesh preview failed: {res.error}")
        return res.value

    def wait_idle(self, timeout: float = 60.0) -> bool:
        return self._worker.wait_idle(timeout)

    def stop(self) -> None:
        if self._current is not None:
            self._current.cancel.set()
        self._worker.stop()


# ----------------------------------------------------------------- GL drawing
class MeshView:
    """GL resources for drawing one mesh; needs a current GL 3.3 core context."""

    def __init__(self):
        self._program = compile_program(
            load_shader_source("mesh.vert"), load_shader_source("mesh.frag"), "mesh.vert", "mesh.frag"
        )
        self._composite = compile_program(
            load_shader_source("composite.vert"),
            load_shader_source("composite.frag"),
            "composite.vert",
            "composite.frag",
        )
        self._loc = {n: GL.glGetUniformLocation(self._program, n) for n in ("u_world_to_cam", "u_projection", "u_mode")}
        self._cloc = {n: GL.glGetUniformLocation(self._composite, n) for n in ("u_tex", "u_opacity")}
        self._vao = int(GL.glGenVertexArrays(1))
        self._empty_vao = int(GL.glGenVertexArrays(1))
        self._vbo = int(GL.glGenBuffers(1))
        self._ebo = int(GL.glGenBuffers(1))
        self._fbo = self._color = self._depth = 0
        self._fbo_size: tuple[int, int] | None = None
        self.n_indices = 0
        self.n_vertices = 0
        self.mesh: Mesh | None = None
        self.draws = 0

    # ------------------------------------------------------------- data
    def set_mesh(self, mesh: Mesh | None) -> None:
        """Upload a mesh (positions, normals, uint8 colours) or clear it."""
        self.mesh = mesh
        if mesh is None or mesh.n_faces == 0:
            self.n_indices = self.n_vertices = 0
            return
        n = mesh.n_vertices
        colours = mesh.colors if mesh.colors is not None else np.full((n, 3), 200, np.uint8)
        vdt = np.dtype([("p", "<f4", 3), ("n", "<f4", 3), ("c", "u1", 4)])
        data = np.empty(n, vdt)
        data["p"], data["n"] = mesh.vertices, mesh.normals
        data["c"][:, :3], data["c"][:, 3] = colours, 255
        indices = np.ascontiguousarray(mesh.faces, dtype=np.uint32).reshape(-1)
        previous_vao = GL.glGetIntegerv(GL.GL_VERTEX_ARRAY_BINDING)
        previous_buffer = GL.glGetIntegerv(GL.GL_ARRAY_BUFFER_BINDING)
        GL.glBindVertexArray(self._vao)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self._vbo)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, data.nbytes, data.tobytes(), GL.GL_STATIC_DRAW)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, self._ebo)
        GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, indices.nbytes, indices.tobytes(), GL.GL_STATIC_DRAW)
        stride = vdt.itemsize
        GL.glEnableVertexAttribArray(0)
        # the raw entry point: PyOpenGL's wrapper files the offset under the current context, which it cannot
        # find on a headless EGL window (no PYOPENGL_PLATFORM=egl); offsets into a bound VBO need no keeping
        raw_vertex_attrib_pointer(0, 3, GL.GL_FLOAT, GL.GL_FALSE, stride, ctypes.c_void_p(0))
        GL.glEnableVertexAttribArray(1)
        raw_vertex_attrib_pointer(1, 3, GL.GL_FLOAT, GL.GL_FALSE, stride, ctypes.c_void_p(12))
        GL.glEnableVertexAttribArray(2)
        raw_vertex_attrib_pointer(2, 3, GL.GL_UNSIGNED_BYTE, GL.GL_TRUE, stride, ctypes.c_void_p(24))
        GL.glBindVertexArray(int(previous_vao))
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, int(previous_buffer))
        self.n_indices, self.n_vertices = int(indices.size), n

    # ------------------------------------------------------------- offscreen target
    def _target(self, w: int, h: int) -> None:
        if self._fbo_size == (w, h):
            return
        self._release_target()
        previous_tex = GL.glGetIntegerv(GL.GL_TEXTURE_BINDING_2D)
        previous_rb = GL.glGetIntegerv(GL.GL_RENDERBUFFER_BINDING)
        self._color = int(GL.glGenTextures(1))
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._color)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA8, w, h, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, None)
        for name, value in (
            (GL.GL_TEXTURE_MIN_FILTER, GL.GL_NEAREST),
            (GL.GL_TEXTURE_MAG_FILTER, GL.GL_NEAREST),
            (GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE),
            (GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE),
        ):
            GL.glTexParameteri(GL.GL_TEXTURE_2D, name, value)
        self._depth = int(GL.glGenRenderbuffers(1))
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, self._depth)
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_DEPTH_COMPONENT24, w, h)
        self._fbo = int(GL.glGenFramebuffers(1))
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._fbo)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, self._color, 0)
        GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, self._depth)
        status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, int(previous_tex))
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, int(previous_rb))
        if status != GL.GL_FRAMEBUFFER_COMPLETE:
            self._release_target()
            raise RuntimeError(f"mesh view: offscreen framebuffer incomplete (0x{int(status):x})")
        self._fbo_size = (w, h)

    def _release_target(self) -> None:
        if self._fbo:
            GL.glDeleteFramebuffers(1, [self._fbo])
        if self._color:
            GL.glDeleteTextures([self._color])
        if self._depth:
            GL.glDeleteRenderbuffers(1, [self._depth])
        self._fbo = self._color = self._depth = 0
        self._fbo_size = None

    # ------------------------------------------------------------- draw
    def draw(
        self, x: int, y: int, w: int, h: int, fb_height: int, camera, mode: str = "colours", opacity: float = 1.0
    ) -> bool:
        """Draw the mesh seen by `camera` (25 values) into the framebuffer rect (top-left origin),
        blended with `opacity` over what is there. False when there is nothing to draw."""
        if mode not in GEOMETRY_MODES:
            raise ValueError(f"mode must be one of {GEOMETRY_MODES}, not {mode!r}")
        if self.n_indices == 0 or w <= 0 or h <= 0:
            return False
        x, y, w, h, fb_height = int(x), int(y), int(w), int(h), int(fb_height)
        saved = save_state()
        try:
            self._target(w, h)
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._fbo)
            GL.glViewport(0, 0, w, h)
            for cap in DRAW_ENABLES:
                GL.glDisable(cap)
            GL.glColorMask(True, True, True, True)
            GL.glDepthMask(True)
            GL.glClearColor(0.0, 0.0, 0.0, 0.0)
            GL.glClearDepth(1.0)
            GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
            GL.glEnable(GL.GL_DEPTH_TEST)
            GL.glDepthFunc(GL.GL_LESS)
            GL.glUseProgram(self._program)
            GL.glUniformMatrix4fv(
                self._loc["u_world_to_cam"], 1, GL.GL_TRUE, world_to_camera(camera).astype(np.float32)
            )
            GL.glUniformMatrix4fv(self._loc["u_projection"], 1, GL.GL_TRUE, projection(camera).astype(np.float32))
            GL.glUniform1i(self._loc["u_mode"], GEOMETRY_MODES.index(mode))
            GL.glBindVertexArray(self._vao)
            GL.glDrawElements(GL.GL_TRIANGLES, self.n_indices, GL.GL_UNSIGNED_INT, ctypes.c_void_p(0))
            GL.glDisable(GL.GL_DEPTH_TEST)
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, saved["fbo"])
            GL.glViewport(x, fb_height - y - h, w, h)
            GL.glEnable(GL.GL_BLEND)
            GL.glBlendFuncSeparate(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA, GL.GL_ZERO, GL.GL_ONE)
            GL.glUseProgram(self._composite)
            GL.glActiveTexture(GL.GL_TEXTURE0)
            GL.glBindTexture(GL.GL_TEXTURE_2D, self._color)
            GL.glBindSampler(0, 0)
            GL.glUniform1i(self._cloc["u_tex"], 0)
            GL.glUniform1f(self._cloc["u_opacity"], float(opacity))
            GL.glBindVertexArray(self._empty_vao)
            GL.glDrawArrays(GL.GL_TRIANGLES, 0, 3)
        finally:
            restore_state(saved)
        self.draws += 1
        return True

    def close(self) -> None:
        """Delete the GL objects (needs the context current)."""
        self._release_target()
        for vao in (self._vao, self._empty_vao):
            if vao:
                GL.glDeleteVertexArrays(1, [vao])
        for buf in (self._vbo, self._ebo):
            if buf:
                GL.glDeleteBuffers(1, [buf])
        for prog in (self._program, self._composite):
            if prog:
                GL.glDeleteProgram(prog)
        self._vao = self._empty_vao = self._vbo = self._ebo = self._program = self._composite = 0
