"""The display texture: uploads DisplayFrames (CUDA-GL interop on NVIDIA, CPU copy elsewhere) and draws them.

Interop lives here alone. The path in use is logged once at construction; if interop cannot
start, or fails later, the presenter falls back to the CPU upload for good and says why.

Frames come from another thread (the render thread), on whatever stream was current there. The
copy runs on the presenting thread's current stream, so `upload(frame, ready)` takes an event
recorded on the producing stream right after the frame was made (`frame_ready(frame)`, called on the
producing thread) and makes the copy wait for it (issue 14 R2); the frame's memory is marked as in
use on the copy's stream until the copy has run. Without an event the frame must come from the
presenting thread's stream (the legacy default stream on both threads, as in the viewer today).
pycuda's context stack is left as it was after every call, whichever way the call ends (R6): pycuda
aborts the process at exit if its stack is not empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, Literal, Protocol

import torch
from OpenGL import GL

from renderer.engine.frames import DisplayFrame

from .gl import DRAW_ENABLES, compile_program, load_shader_source, restore_state, save_state

Interop = Literal["auto", "cuda-bindings", "pycuda", "off"]
INTEROPS: tuple[str, ...] = ("auto", "cuda-bindings", "pycuda", "off")
MODES: dict[str, int] = {"image": 0, "raw": 0, "depth": 1, "normals": 2}
"""Draw mode -> the shader's u_mode (for depth frames; rgb frames always draw as rgb)."""
_UNIFORMS = ("u_tex", "u_mode", "u_image", "u_background", "u_near", "u_far", "u_focal")


def frame_ready(frame: DisplayFrame) -> "torch.cuda.Event | None":
    """An event recorded on the current stream of the frame's device, for Presenter.upload(frame, ready): call
    it on the thread that made the frame, right after making it. None for a frame in host memory."""
    if not frame.rgba.is_cuda:
        return None
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(frame.rgba.device))
    return event


def interop_available(kind: str) -> tuple[bool, str]:
    """Whether an interop backend could work here (no GL needed): (True, backend name) or (False, why)."""
    if kind not in INTEROPS:
        raise ValueError(f"interop must be one of {INTEROPS}, not {kind!r}")
    if kind == "off":
        return False, "interop off"
    if not torch.cuda.is_available():
        return False, "no CUDA device"
    if kind == "auto":
        reasons = []
        for name in ("cuda-bindings", "pycuda"):
            ok, why = interop_available(name)
            if ok:
                return True, name
            reasons.append(why)
        return False, "; ".join(reasons)
    if kind == "cuda-bindings":
        try:
            from cuda.bindings import runtime

            err, count = runtime.cudaGetDeviceCount()
        except Exception as e:  # ImportError, or the pathfinder's RuntimeError without a driver
            return (
                False,
                f"cuda-bindings unusable ({type(e).__name__}: {e}); pip install cuda-bindings "
                "with the major version of the driver's CUDA",
            )
        if err != runtime.cudaError_t.cudaSuccess or not count:
            return False, f"cuda-bindings sees no CUDA device ({getattr(err, 'name', err)})"
        return True, "cuda-bindings"
    try:
        import pycuda.driver  # noqa: F401
        import pycuda.gl  # noqa: F401  (ImportError when pycuda was built without GL support)
    except Exception as e:
        return False, f"pycuda with GL support unusable ({type(e).__name__}: {e})"
    return True, "pycuda"


class _InteropBackend(Protocol):
    """What the presenter uses of an interop path (_CudaBindings, _PyCuda)."""

    device: int

    def register(self, texture: int) -> Any: ...
    def accepts(self, rgba: torch.Tensor) -> bool: ...
    def copy(self, resource: Any, rgba: torch.Tensor, stream: Any) -> None: ...
    def unregister(self, resource: Any) -> None: ...
    def close(self) -> None: ...


def _cuda_ok(runtime, result, what: str):
    """Unpack a cuda-bindings (err, *values) tuple, raising RuntimeError on an error code."""
    result = result if isinstance(result, tuple) else (result,)
    if result[0] != runtime.cudaError_t.cudaSuccess:
        raise RuntimeError(f"{what}: {getattr(result[0], 'name', result[0])}")
    return result[1] if len(result) == 2 else result[1:]


class _CudaBindings:
    """CUDA-GL interop through cuda-bindings' runtime API (torch's primary context, torch's stream)."""

    name = "cuda-bindings"

    def __init__(self):
        from cuda.bindings import runtime

        self.rt = runtime
        self.device = torch.cuda.current_device()
        torch.cuda.init()
        _cuda_ok(runtime, runtime.cudaSetDevice(self.device), "cudaSetDevice")
        try:
            count, devices = _cuda_ok(
                runtime, runtime.cudaGLGetDevices(8, runtime.cudaGLDeviceList.cudaGLDeviceListAll), "cudaGLGetDevices"
            )
        except RuntimeError as e:
            raise RuntimeError(f"the GL context is not on a CUDA device ({e})") from None
        if self.device not in list(devices)[:count]:
            raise RuntimeError(f"GL runs on CUDA device(s) {list(devices)[:count]}, torch on cuda:{self.device}")

    def register(self, texture: int):
        flags = int(self.rt.cudaGraphicsRegisterFlags.cudaGraphicsRegisterFlagsWriteDiscard)
        return _cuda_ok(
            self.rt,
            self.rt.cudaGraphicsGLRegisterImage(int(texture), GL.GL_TEXTURE_2D, flags),
            "cudaGraphicsGLRegisterImage",
        )

    def accepts(self, rgba: torch.Tensor) -> bool:
        return rgba.is_cuda and rgba.device.index == self.device

    def copy(self, resource, rgba: torch.Tensor, stream) -> None:
        """Asynchronous copy into the texture on torch's `stream` (map, copy and unmap are ordered on it)."""
        rt, (h, w) = self.rt, rgba.shape[:2]
        stream = stream.cuda_stream
        _cuda_ok(rt, rt.cudaGraphicsMapResources(1, resource, stream), "cudaGraphicsMapResources")
        try:
            array = _cuda_ok(
                rt, rt.cudaGraphicsSubResourceGetMappedArray(resource, 0, 0), "cudaGraphicsSubResourceGetMappedArray"
            )
            _cuda_ok(
                rt,
                rt.cudaMemcpy2DToArrayAsync(
                    array, 0, 0, rgba.data_ptr(), w * 4, w * 4, h, rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice, stream
                ),
                "cudaMemcpy2DToArrayAsync",
            )
        finally:
            _cuda_ok(rt, rt.cudaGraphicsUnmapResources(1, resource, stream), "cudaGraphicsUnmapResources")

    def unregister(self, resource) -> None:
        _cuda_ok(self.rt, self.rt.cudaGraphicsUnregisterResource(resource), "cudaGraphicsUnregisterResource")

    def close(self) -> None:
        pass


class _PyCuda:
    """CUDA-GL interop through pycuda.gl on torch's primary context (synchronous copy after torch's stream).

    torch's primary context is pushed for each call and popped when the call ends, however it ends, so
    pycuda's context stack is empty between calls: an exit that skips Presenter.close() (an exception, a
    signal) finds nothing left on it (R6)."""

    name = "pycuda"

    def __init__(self):
        import pycuda.driver as cuda
        import pycuda.gl as cudagl

        self.cuda, self.cudagl = cuda, cudagl
        torch.cuda.init()
        cuda.init()
        self.device = torch.cuda.current_device()
        self.context = cuda.Device(self.device).retain_primary_context()  # torch's context, not a second one

    @contextmanager
    def _current(self):
        self.context.push()
        try:
            yield
        finally:
            self.context.pop()

    def accepts(self, rgba: torch.Tensor) -> bool:
        return rgba.is_cuda and rgba.device.index == self.device

    def register(self, texture: int):
        with self._current():
            return self.cudagl.RegisteredImage(
                int(texture), GL.GL_TEXTURE_2D, self.cudagl.graphics_map_flags.WRITE_DISCARD
            )

    def copy(self, resource, rgba: torch.Tensor, stream) -> None:
        stream.synchronize()  # pycuda cannot join torch's stream: wait for it (and what it waits for) here
        h, w = rgba.shape[:2]
        with self._current():
            mapping = resource.map()
            try:
                copy = self.cuda.Memcpy2D()
                copy.set_src_device(rgba.data_ptr())
                copy.set_dst_array(mapping.array(0, 0))
                copy.width_in_bytes = copy.src_pitch = w * 4
                copy.height = h
                copy(aligned=False)
            finally:
                mapping.unmap()

    def unregister(self, resource) -> None:
        with self._current():
            resource.unregister()

    def close(self) -> None:
        pass  # nothing stays pushed between calls


_BACKENDS: dict[str, Callable[[], _InteropBackend]] = {"cuda-bindings": _CudaBindings, "pycuda": _PyCuda}


class Presenter:
    """Owns the RGBA8 display texture and the view shader; needs a current GL 3.3 context."""

    def __init__(self, interop: Interop = "auto", log: Callable[[str], None] = print):
        if interop not in INTEROPS:
            raise ValueError(f"interop must be one of {INTEROPS}, not {interop!r}")
        self.interop = interop
        self.path: str = "cpu-upload"
        self.fallback_reason: str | None = None
        self.upload_ms: float = 0.0
        self._log = log
        self._texture = 0
        self._size: tuple[int, int] | None = None
        self._kind, self._near, self._far = "rgb", 0.0, 1.0
        self._backend: _InteropBackend | None = None
        self._resource: Any = None
        self._program = compile_program(
            load_shader_source("display.vert"), load_shader_source("display.frag"), "display.vert", "display.frag"
        )
        self._vao = int(GL.glGenVertexArrays(1))
        self._loc = {name: GL.glGetUniformLocation(self._program, name) for name in _UNIFORMS}
        self._log(f"present: {self._start_interop()}")

    def _start_interop(self) -> str:
        """Pick the path; returns the log line's text."""
        if self.interop == "off":
            return "cpu-upload (interop off)"
        ok, why = interop_available(self.interop)
        if ok:
            backend = None
            try:
                backend = _BACKENDS[why]()
                probe = self._make_texture(4, 4)  # registering a texture is the real test
                try:
                    backend.unregister(backend.register(probe))
                finally:
                    GL.glDeleteTextures([probe])
                self._backend, self.path = backend, why
                return f"{why} (interop {self.interop}, cuda:{backend.device})"
            except Exception as e:
                if backend is not None:
                    try:
                        backend.close()
                    except Exception:
                        pass
                why = f"{why} unusable: {e}"
        self.fallback_reason = why
        return f"cpu-upload (interop {self.interop}: {why})"

    @property
    def texture_size(self) -> tuple[int, int] | None:
        """(width, height) of the display texture, None before the first upload."""
        return self._size

    def upload(self, frame: DisplayFrame, ready=None) -> None:
        """Copy the frame into the texture (re-created on a size change): interop for CUDA tensors, else CPU.

        `ready`: the event frame_ready(frame) recorded on the producing thread's stream; the copy, on this
        thread's current stream, waits for it (required when the frame was made on another stream)."""
        start = time.perf_counter()
        rgba = frame.rgba
        if rgba.dim() != 3 or rgba.shape[2] != 4 or rgba.dtype != torch.uint8:
            raise ValueError(f"DisplayFrame.rgba must be (H, W, 4) uint8, got {tuple(rgba.shape)} {rgba.dtype}")
        h, w = int(rgba.shape[0]), int(rgba.shape[1])
        if self._size != (w, h):
            self._recreate(w, h)
        stream = torch.cuda.current_stream(rgba.device) if rgba.is_cuda else None
        if ready is not None:
            ready.wait(stream)  # GPU-side: this stream's copy starts after the producer's work (R2)
        if not (
            self._backend is not None
            and self._backend.accepts(rgba)
            and self._upload_interop(rgba.detach().contiguous(), stream)
        ):
            self._upload_cpu(rgba)
        self._kind, self._near, self._far = frame.kind, float(frame.near), float(frame.far)
        self.upload_ms = (time.perf_counter() - start) * 1000

    def _upload_interop(self, rgba: torch.Tensor, stream) -> bool:
        try:
            assert self._backend is not None  # upload() calls this only with a backend
            if self._resource is None:
                self._resource = self._backend.register(self._texture)
            self._backend.copy(self._resource, rgba, stream)
            if stream is not None:
                rgba.record_stream(stream)  # freed by the producer, kept until this stream's copy has run
            return True
        except Exception as e:
            self._drop_interop(f"{self.path} failed: {e}")
            return False

    def _drop_interop(self, reason: str) -> None:
        """Fall back to the CPU path for good."""
        self._release_interop()
        self.path, self.fallback_reason = "cpu-upload", reason
        self._log(f"present: cpu-upload (interop fell back: {reason})")

    def _release_interop(self) -> None:
        backend, resource, self._backend, self._resource = self._backend, self._resource, None, None
        if backend is None:
            return
        try:
            if resource is not None:
                backend.unregister(resource)
        except Exception:
            pass
        try:
            backend.close()
        except Exception:
            pass

    def _upload_cpu(self, rgba: torch.Tensor) -> None:
        pixels = rgba.detach().cpu().contiguous().numpy()
        h, w = pixels.shape[:2]
        saved = (
            GL.glGetIntegerv(GL.GL_UNPACK_ALIGNMENT),
            GL.glGetIntegerv(GL.GL_UNPACK_ROW_LENGTH),
            GL.glGetIntegerv(GL.GL_PIXEL_UNPACK_BUFFER_BINDING),
            GL.glGetIntegerv(GL.GL_TEXTURE_BINDING_2D),
        )
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        GL.glPixelStorei(GL.GL_UNPACK_ROW_LENGTH, 0)
        GL.glBindBuffer(GL.GL_PIXEL_UNPACK_BUFFER, 0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._texture)
        try:
            GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, 0, 0, w, h, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, pixels)
        finally:
            GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, int(saved[0]))
            GL.glPixelStorei(GL.GL_UNPACK_ROW_LENGTH, int(saved[1]))
            GL.glBindBuffer(GL.GL_PIXEL_UNPACK_BUFFER, int(saved[2]))
            GL.glBindTexture(GL.GL_TEXTURE_2D, int(saved[3]))

    @staticmethod
    def _make_texture(w: int, h: int) -> int:
        """A w x h GL_RGBA8 texture, linear filtering (rgb), clamped; the shader texelFetches depth."""
        previous = GL.glGetIntegerv(GL.GL_TEXTURE_BINDING_2D)
        texture = int(GL.glGenTextures(1))
        GL.glBindTexture(GL.GL_TEXTURE_2D, texture)
        for name, value in (
            (GL.GL_TEXTURE_MIN_FILTER, GL.GL_LINEAR),
            (GL.GL_TEXTURE_MAG_FILTER, GL.GL_LINEAR),
            (GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE),
            (GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE),
        ):
            GL.glTexParameteri(GL.GL_TEXTURE_2D, name, value)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA8, w, h, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, None)
        GL.glBindTexture(GL.GL_TEXTURE_2D, int(previous))
        return texture

    def _recreate(self, w: int, h: int) -> None:
        if self._resource is not None:
            try:
                assert self._backend is not None  # a registered resource belongs to the backend
                self._backend.unregister(self._resource)
            except Exception as e:
                self._drop_interop(f"{self.path} failed to unregister: {e}")
            self._resource = None
        if self._texture:
            GL.glDeleteTextures([self._texture])
        self._texture = self._make_texture(w, h)
        self._size = (w, h)

    def fit_rect(self, x: int, y: int, w: int, h: int) -> tuple[int, int, int, int] | None:
        """Where draw puts the image inside the rect (x, y, w, h from the top-left), aspect-fitted; None if empty."""
        if self._size is None or w <= 0 or h <= 0:
            return None
        tw, th = self._size
        scale = min(w / tw, h / th)
        dw, dh = max(1, round(tw * scale)), max(1, round(th * scale))
        return x + (w - dw) // 2, y + (h - dh) // 2, dw, dh

    def draw(
        self,
        x: int,
        y: int,
        w: int,
        h: int,
        fb_height: int,
        mode: str,
        focal: float = 4.26,
        background: tuple[float, float, float] = (0.1, 0.1, 0.12),
    ) -> None:
        """Draw the texture aspect-fitted into the framebuffer rect (top-left origin), background elsewhere.

        mode: 'image'/'raw' (rgb), 'depth' (colour map) or 'normals' (from depth, using focal); a frame
        of the other kind (an rgb frame while the view is 'depth', say) is drawn as what it holds.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {tuple(MODES)}, not {mode!r}")
        x, y, w, h, fb_height = int(x), int(y), int(w), int(h), int(fb_height)
        if w <= 0 or h <= 0:
            return
        fit = self.fit_rect(x, y, w, h)
        image = (
            (float(fit[0]), float(fb_height - fit[1] - fit[3]), float(fit[2]), float(fit[3]))
            if fit
            else (-2.0, -2.0, 1.0, 1.0)
        )  # off to the bottom-left: everything is background
        shader_mode = 0 if self._kind != "depth" else (2 if MODES[mode] == 2 else 1)
        saved = save_state()
        try:
            GL.glViewport(x, fb_height - y - h, w, h)
            for cap in DRAW_ENABLES:
                GL.glDisable(cap)
            GL.glUseProgram(self._program)
            GL.glBindVertexArray(self._vao)
            GL.glActiveTexture(GL.GL_TEXTURE0)
            GL.glBindTexture(GL.GL_TEXTURE_2D, self._texture)
            GL.glBindSampler(0, 0)
            GL.glUniform1i(self._loc["u_tex"], 0)
            GL.glUniform1i(self._loc["u_mode"], shader_mode)
            GL.glUniform4f(self._loc["u_image"], *image)
            GL.glUniform3f(self._loc["u_background"], *map(float, background))
            GL.glUniform1f(self._loc["u_near"], self._near)
            GL.glUniform1f(self._loc["u_far"], self._far)
            GL.glUniform1f(self._loc["u_focal"], float(focal))
            GL.glDrawArrays(GL.GL_TRIANGLES, 0, 3)
        finally:
            restore_state(saved)

    def close(self) -> None:
        """Unregister interop resources and delete the GL objects (needs the context current)."""
        self._release_interop()
        if self._texture:
            GL.glDeleteTextures([self._texture])
            self._texture, self._size = 0, None
        if self._vao:
            GL.glDeleteVertexArrays(1, [self._vao])
            self._vao = 0
        if self._program:
            GL.glDeleteProgram(self._program)
            self._program = 0

    def __enter__(self) -> "Presenter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
