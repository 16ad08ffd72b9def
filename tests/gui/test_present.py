"""Real-GL tests of the presenter and its shaders: read-back pixels, letterboxing, depth, normals, fallbacks.

One file on purpose: the CPU tests and their GPU-marked twins (interop per backend) share the GL helpers and
the expected-pixel builders; apart, they would drift."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from glutil import read_pixels
from OpenGL import GL

from renderer.engine.frames import DisplayFrame, pack_frame
from viz.gfx.gl import ShaderError, compile_program, load_shader_source
from viz.gfx.present import Presenter, frame_ready, interop_available
from viz.gfx.window import DisplayError, create_window, gl_info  # first: imports imgui_bundle before glfw

SIZE = 256  # the gl_context window is SIZE x SIZE
BG = (51 / 255, 102 / 255, 153 / 255)  # exact in 8 bits
BG8 = np.array([51, 102, 153])
CLEAR8 = np.array([255, 0, 255])
FOCAL = 4.2647
VIRIDIS_NEAR, VIRIDIS_FAR = np.array([0xFD, 0xE7, 0x25]), np.array([0x44, 0x01, 0x54])
cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only fallback")


def rgb_frame(rgb: np.ndarray) -> DisplayFrame:
    """(H, W, 3) uint8 -> an rgb DisplayFrame with opaque alpha."""
    alpha = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    return DisplayFrame(torch.from_numpy(np.concatenate([rgb, alpha], -1)).contiguous(), "rgb")


def quadrants(h: int, w: int) -> np.ndarray:
    """Top-left red, top-right green, bottom-left blue, bottom-right white."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (255, 0, 0)
    img[: h // 2, w // 2 :] = (0, 255, 0)
    img[h // 2 :, : w // 2] = (0, 0, 255)
    img[h // 2 :, w // 2 :] = (255, 255, 255)
    return img


def render(presenter: Presenter, mode: str = "image", rect=(0, 0, SIZE, SIZE), focal: float = FOCAL) -> np.ndarray:
    """Clear to magenta, draw into rect, read back the whole window (top row first)."""
    GL.glViewport(0, 0, SIZE, SIZE)
    GL.glClearColor(1.0, 0.0, 1.0, 1.0)
    GL.glClear(GL.GL_COLOR_BUFFER_BIT)
    presenter.draw(*rect, fb_height=SIZE, mode=mode, focal=focal, background=BG)
    return read_pixels(0, 0, SIZE, SIZE).astype(int)


def rays(h: int, w: int, focal: float = FOCAL) -> np.ndarray:
    """(H, W, 3) unit camera rays through pixel centres (OpenCV axes, normalised intrinsics)."""
    v, u = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
    d = np.stack([(u - 0.5) / focal, (v - 0.5) / focal, np.ones_like(u)], -1)
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def depth_frame(depth: np.ndarray, alpha: np.ndarray) -> DisplayFrame:
    """(H, W) depth along rays and opacity -> a depth DisplayFrame (the app's packing)."""
    d = torch.from_numpy(depth.astype(np.float32))[None]
    a = torch.from_numpy(alpha.astype(np.float32))[None]
    return pack_frame(None, torch.zeros(3, *depth.shape), d, a, "depth")


def normal_colour(n_cv: np.ndarray) -> np.ndarray:
    """Expected 8-bit colour of camera-facing OpenCV-axis normals (shown in OpenGL view axes)."""
    n = n_cv / np.linalg.norm(n_cv, axis=-1, keepdims=True)
    gl = n * np.array([1.0, -1.0, -1.0])
    return np.round((gl * 0.5 + 0.5) * 255)


def plane(n_cv, dist: float, size: int = SIZE):
    """Depth along rays of the plane n.P = dist (n facing the camera: n.z < 0, dist < 0)."""
    n = np.asarray(n_cv, float) / np.linalg.norm(n_cv)
    r = rays(size, size)
    return dist / (r @ n), n


def sphere(size: int = SIZE, centre=(0.0, 0.0, 3.0), radius: float = 0.3):
    """Depth, opacity and OpenCV normals of a sphere in front of the camera."""
    r, c = rays(size, size), np.asarray(centre)
    b = r @ c
    disc = b * b - (c @ c - radius * radius)
    hit = disc > 0
    t = np.where(hit, b - np.sqrt(np.maximum(disc, 0)), 0.0)
    normals = (t[..., None] * r - c) / radius
    return np.where(hit, t, 0.0), hit.astype(float), normals


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


@pytest.fixture
def presenter(gl_context):
    lines: list[str] = []
    p = Presenter(interop="off", log=lines.append)
    p.log_lines = lines
    yield p
    p.close()


def test_context_is_gl33_core(gl_context):
    info = gl_info()
    major, minor = (int(v) for v in info["GL_VERSION"].split()[0].split(".")[:2])
    assert (major, minor) >= (3, 3), info
    assert GL.glGetIntegerv(GL.GL_CONTEXT_PROFILE_MASK) & GL.GL_CONTEXT_CORE_PROFILE_BIT


def test_rgb_exact_and_right_way_up(presenter):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    img[:8] = (255, 0, 0)  # a red band on tensor row 0..7 must be at the top of the window
    presenter.upload(rgb_frame(img))
    out = render(presenter)
    assert np.abs(out - img).max() <= 1
    assert (out[:8] == (255, 0, 0)).all() and not (out[-8:] == (255, 0, 0)).all(axis=-1).all()
    assert presenter.log_lines == ["present: cpu-upload (interop off)"]
    assert presenter.path == "cpu-upload" and presenter.fallback_reason is None


def test_rgb_odd_width_rows_not_skewed(presenter):
    img = np.random.default_rng(3).integers(0, 256, (21, 37, 3), dtype=np.uint8)  # 148-byte rows
    presenter.upload(rgb_frame(img))
    out = render(presenter, rect=(5, 7, 37, 21))  # 1:1 in a rect of the image's size
    assert np.abs(out[7:28, 5:42] - img).max() <= 1


def test_rgb_quadrants_magnified(presenter):
    presenter.upload(rgb_frame(quadrants(64, 64)))
    out = render(presenter, "raw")
    assert (out[64, 64] == (255, 0, 0)).all()  # top-left
    assert (out[64, 192] == (0, 255, 0)).all()  # top-right
    assert (out[192, 64] == (0, 0, 255)).all()  # bottom-left
    assert (out[192, 192] == (255, 255, 255)).all()  # bottom-right


def test_letterbox_and_pillarbox(presenter):
    presenter.upload(rgb_frame(np.full((64, 128, 3), 255, np.uint8)))  # wide: bars top and bottom
    out = render(presenter)
    assert (out[:64] == BG8).all() and (out[192:] == BG8).all()
    assert (out[64:192] == 255).all()
    presenter.upload(rgb_frame(np.full((128, 32, 3), 255, np.uint8)))  # tall: bars left and right
    out = render(presenter)
    assert (out[:, :96] == BG8).all() and (out[:, 160:] == BG8).all()
    assert (out[:, 96:160] == 255).all()


def test_draw_into_rect_from_top_left(presenter):
    presenter.upload(rgb_frame(quadrants(64, 64)))
    out = render(presenter, rect=(32, 16, 128, 64))  # 64x64 image fitted in a 128x64 rect
    assert presenter.fit_rect(32, 16, 128, 64) == (64, 16, 64, 64)
    inside = np.zeros((SIZE, SIZE), bool)
    inside[16:80, 32:160] = True
    assert (out[~inside] == CLEAR8).all()  # nothing drawn outside the rect
    assert (out[16:80, 32:64] == BG8).all() and (out[16:80, 128:160] == BG8).all()
    assert (out[16:80, 64:128][:32, :32] == (255, 0, 0)).all()  # red at the rect's top-left
    assert (out[16:80, 64:128][32:, 32:] == (255, 255, 255)).all()


def test_resize_recreates_texture(presenter):
    presenter.upload(rgb_frame(np.full((64, 64, 3), (255, 0, 0), np.uint8)))
    assert presenter.texture_size == (64, 64)
    assert (render(presenter)[128, 128] == (255, 0, 0)).all()
    presenter.upload(rgb_frame(np.full((96, 32, 3), (0, 255, 0), np.uint8)))
    assert presenter.texture_size == (32, 96)
    out = render(presenter)
    assert (out[128, 128] == (0, 255, 0)).all() and (out[128, 10] == BG8).all()


def test_upload_rejects_wrong_shape(presenter):
    with pytest.raises(ValueError, match="uint8"):
        presenter.upload(DisplayFrame(torch.zeros(8, 8, 3, dtype=torch.uint8), "rgb"))


def test_depth_colour_map_monotonic_and_transparent_is_background(presenter):
    depth = np.tile(np.linspace(1.0, 2.0, SIZE), (SIZE, 1))  # near on the left
    alpha = np.ones((SIZE, SIZE))
    alpha[192:] = 0.0  # bottom quarter transparent
    presenter.upload(depth_frame(depth, alpha))
    out = render(presenter, "depth")
    row = luma(out[64].astype(float))
    assert np.all(np.diff(row) <= 0.6), "luma must not rise from near to far"
    assert np.all(np.diff(row[::16]) < 0), "luma must fall from near to far"
    assert np.abs(out[64, 0] - VIRIDIS_NEAR).max() <= 3 and np.abs(out[64, -1] - VIRIDIS_FAR).max() <= 3
    assert (out[192:] == BG8).all()
    assert not (out[:192] == BG8).all(axis=-1).any()


def test_depth_decodes_both_bytes(presenter):
    q = np.array([0, 255, 256, 257, 32767, 32768, 65279, 65535])  # high/low byte boundaries
    rgba = np.stack([q >> 8, q & 255, np.full_like(q, 255), np.full_like(q, 255)], -1).astype(np.uint8)
    presenter.upload(DisplayFrame(torch.from_numpy(np.repeat(rgba[None], 8, 0)), "depth", 1.0, 2.0))
    out = render(presenter, "depth")[128, 16::32]  # one pixel per column of 8
    assert np.abs(out[1] - out[2]).max() <= 1 and np.abs(out[4] - out[5]).max() <= 1
    assert np.abs(out[6] - out[7]).max() <= 1
    lum = luma(out.astype(float))
    assert lum[0] >= lum[2] > lum[5] > lum[7]
    assert np.abs(out[0] - VIRIDIS_NEAR).max() <= 2 and np.abs(out[7] - VIRIDIS_FAR).max() <= 2


def test_depth_mode_with_rgb_frame_shows_rgb(presenter):
    presenter.upload(rgb_frame(np.full((16, 16, 3), (10, 200, 30), np.uint8)))
    assert (render(presenter, "depth")[128, 128] == (10, 200, 30)).all()


@pytest.mark.parametrize("n_cv", [(0.0, 0.0, -1.0), (-0.5, 0.3, -1.0), (0.6, -0.2, -0.8)])
def test_normals_of_planes(presenter, n_cv):
    depth, n = plane(n_cv, -2.0)
    presenter.upload(depth_frame(depth, np.ones_like(depth)))
    out = render(presenter, "normals")[2:-2, 2:-2]
    expected = normal_colour(n)
    assert np.abs(out - expected).max() <= 3, (out.reshape(-1, 3).min(0), out.reshape(-1, 3).max(0), expected)
    if n_cv != (0.0, 0.0, -1.0):
        assert np.abs(expected - normal_colour(np.array([0.0, 0.0, -1.0]))).max() > 20


def test_normals_of_magnified_plane(presenter):
    depth, n = plane((-0.4, -0.4, -1.0), -2.0, size=64)  # 64x64 texels on 256x256 pixels
    presenter.upload(depth_frame(depth, np.ones_like(depth)))
    out = render(presenter, "normals")
    assert np.abs(out - normal_colour(n)).max() <= 3


def test_normals_of_sphere(presenter):
    depth, alpha, normals = sphere()
    presenter.upload(depth_frame(depth, alpha))
    out = render(presenter, "normals")
    c = SIZE // 2
    assert out[c, c - 60, 0] < 90 and out[c, c + 60, 0] > 165  # x flips sign left/right
    assert out[c - 60, c, 1] > 165 and out[c + 60, c, 1] < 90  # y up at the top
    assert np.abs(out[c, c] - (128, 128, 255)).max() <= 3
    assert (out[alpha < 0.5] == BG8).all()
    inner = np.zeros_like(alpha, bool)
    inner[alpha > 0.5] = True
    for axis in (0, 1):  # erode twice: skip the rim
        inner &= np.roll(inner, 2, axis) & np.roll(inner, -2, axis)
    err = np.abs(out[inner] - normal_colour(normals[inner]))
    assert err.mean() < 1.5 and np.percentile(err, 99) <= 6, (err.mean(), err.max())


def test_gl_state_is_restored(presenter):
    presenter.upload(rgb_frame(quadrants(8, 8)))
    tex = GL.glGenTextures(1)
    vao = GL.glGenVertexArrays(1)
    GL.glActiveTexture(GL.GL_TEXTURE0)
    GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
    GL.glActiveTexture(GL.GL_TEXTURE3)
    GL.glBindVertexArray(vao)
    GL.glViewport(10, 20, 30, 40)
    GL.glEnable(GL.GL_SCISSOR_TEST)
    GL.glEnable(GL.GL_BLEND)
    presenter.draw(0, 0, SIZE, SIZE, SIZE, "image")
    assert list(GL.glGetIntegerv(GL.GL_VIEWPORT)) == [10, 20, 30, 40]
    assert GL.glGetIntegerv(GL.GL_CURRENT_PROGRAM) == 0
    assert GL.glGetIntegerv(GL.GL_VERTEX_ARRAY_BINDING) == vao
    assert GL.glGetIntegerv(GL.GL_ACTIVE_TEXTURE) == GL.GL_TEXTURE3
    GL.glActiveTexture(GL.GL_TEXTURE0)
    assert GL.glGetIntegerv(GL.GL_TEXTURE_BINDING_2D) == tex
    assert GL.glIsEnabled(GL.GL_SCISSOR_TEST) and GL.glIsEnabled(GL.GL_BLEND)
    assert not GL.glIsEnabled(GL.GL_DEPTH_TEST)
    GL.glDisable(GL.GL_SCISSOR_TEST)
    GL.glDisable(GL.GL_BLEND)
    GL.glBindVertexArray(0)
    GL.glDeleteVertexArrays(1, [vao])
    GL.glDeleteTextures([tex])


def test_shader_compile_error_carries_log(gl_context):
    bad = "#version 330 core\nout vec4 c;\nvoid main() { c = undefined_thing * 2.0; }\n"
    with pytest.raises(ShaderError) as info:
        compile_program(load_shader_source("display.vert"), bad, "display.vert", "bad.frag")
    message = str(info.value)
    assert "bad.frag" in message and "undefined_thing" in message and "error" in message.lower()


def test_shipped_shaders_compile(gl_context):
    program = compile_program(load_shader_source("display.vert"), load_shader_source("display.frag"))
    assert program > 0
    GL.glDeleteProgram(program)


@cpu_only
def test_interop_available_reports_why_on_cpu():
    for kind in ("auto", "cuda-bindings", "pycuda", "off"):
        ok, why = interop_available(kind)
        assert ok is False and why, kind
    assert interop_available("auto") == (False, "no CUDA device")
    with pytest.raises(ValueError):
        interop_available("vulkan")


@cpu_only
@pytest.mark.parametrize("interop", ["auto", "cuda-bindings", "pycuda"])
def test_requested_interop_falls_back_to_cpu(gl_context, interop):
    lines: list[str] = []
    p = Presenter(interop=interop, log=lines.append)
    try:
        assert p.path == "cpu-upload" and p.fallback_reason == "no CUDA device"
        assert lines == [f"present: cpu-upload (interop {interop}: no CUDA device)"]
        p.upload(rgb_frame(quadrants(16, 16)))
        assert (render(p)[32, 32] == (255, 0, 0)).all()
    finally:
        p.close()


def test_cpu_upload_timing_512(presenter, capsys):
    frame = rgb_frame(np.random.default_rng(1).integers(0, 256, (512, 512, 3), dtype=np.uint8))
    presenter.upload(frame)  # creates the texture
    times = []
    for _ in range(30):
        presenter.upload(frame)
        GL.glFinish()
        times.append(presenter.upload_ms)
    start = time.perf_counter()
    for _ in range(30):
        presenter.upload(frame)
    GL.glFinish()
    with capsys.disabled():
        print(
            f"\n[present] 512x512 CPU upload: median {np.median(times):.3f} ms (upload_ms), "
            f"{(time.perf_counter() - start) / 30 * 1000:.3f} ms/frame incl. glFinish; {gl_info()['GL_RENDERER']}"
        )


def test_no_display_error_is_actionable(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(DisplayError, match="xvfb-run -a python visualizer.py"):
        create_window("x", 64, 64)


HEADLESS_SCRIPT = """
import json, numpy as np, torch
from viz.gfx.window import create_window, gl_info
from OpenGL import GL
from renderer.engine.frames import DisplayFrame
from viz.gfx.present import Presenter
win = create_window('headless', 64, 64, headless=True)
p = Presenter(interop='auto', log=lambda line: None)
img = np.zeros((2, 2, 4), np.uint8); img[..., 3] = 255
img[0, 0, :3] = (255, 0, 0); img[1, 1, :3] = (0, 0, 255)
p.upload(DisplayFrame(torch.from_numpy(img), 'rgb'))
GL.glClear(GL.GL_COLOR_BUFFER_BIT)
p.draw(0, 0, 64, 64, 64, 'image')
GL.glFinish()
px = np.frombuffer(GL.glReadPixels(0, 0, 64, 64, GL.GL_RGB, GL.GL_UNSIGNED_BYTE), np.uint8).reshape(64, 64, 3)
print(json.dumps({'top_left': px[63, 0].tolist(), 'bottom_right': px[0, 63].tolist(), 'info': gl_info()}))
"""


def test_headless_egl_window_without_x():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(
        [sys.executable, "-c", HEADLESS_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["top_left"] == [255, 0, 0] and result["bottom_right"] == [0, 0, 255], result


@pytest.mark.gpu
@cuda_only
def test_cuda_upload_matches_cpu_path(gl_context):
    img = np.random.default_rng(2).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    frame = rgb_frame(img)
    with Presenter(interop="off", log=lambda line: None) as cpu:
        cpu.upload(frame)
        expected = render(cpu)
    lines: list[str] = []
    with Presenter(interop="auto", log=lines.append) as gpu:
        gpu.upload(DisplayFrame(frame.rgba.cuda(), "rgb"))
        torch.cuda.synchronize()
        out = render(gpu)
        path, reason = gpu.path, gpu.fallback_reason
    assert np.array_equal(out, expected)
    assert len(lines) == 1
    if path == "cpu-upload":  # e.g. GL on Mesa under Xvfb: no GL context on the CUDA device
        pytest.skip(f"interop not active here ({reason}); the CUDA tensor went through the CPU path")


def test_interop_registration_failure_falls_back_to_cpu_and_says_so(gl_context, monkeypatch):
    """The driver offers interop but registering the GL texture fails: CPU upload, one log line, frames still show."""
    import viz.gfx.present as present

    closed: list[bool] = []

    class RefusingBackend:
        device = 0

        def register(self, texture: int):
            raise RuntimeError("cudaGraphicsGLRegisterImage: operation not supported")

        def unregister(self, resource) -> None:
            raise AssertionError("nothing was registered")

        def close(self) -> None:
            closed.append(True)

    monkeypatch.setattr(present, "interop_available", lambda kind: (True, "cuda-bindings"))
    monkeypatch.setitem(present._BACKENDS, "cuda-bindings", RefusingBackend)
    lines: list[str] = []
    with Presenter(interop="auto", log=lines.append) as p:
        assert p.path == "cpu-upload" and closed == [True]
        assert p.fallback_reason == "cuda-bindings unusable: cudaGraphicsGLRegisterImage: operation not supported"
        assert lines == [f"present: cpu-upload (interop auto: {p.fallback_reason})"]
        img = quadrants(SIZE, SIZE)
        p.upload(rgb_frame(img))
        assert np.abs(render(p) - img).max() <= 1


# --------------------------------------------------------------------------- producers on other streams (R2)
class RecordingBackend:
    """An interop backend that takes host frames, so the upload order is visible on a CPU."""

    device = 0

    def __init__(self, calls: list):
        self.calls = calls

    def accepts(self, rgba) -> bool:
        return True

    def register(self, texture: int):
        self.calls.append(("register", texture))
        return texture

    def copy(self, resource, rgba, stream) -> None:
        self.calls.append(("copy", stream))
        GL.glBindTexture(GL.GL_TEXTURE_2D, resource)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        h, w = rgba.shape[:2]
        GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, 0, 0, w, h, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, rgba.numpy())

    def unregister(self, resource) -> None:
        self.calls.append(("unregister", resource))

    def close(self) -> None:
        self.calls.append(("close",))


class RecordingEvent:
    def __init__(self, calls: list):
        self.calls = calls

    def wait(self, stream=None) -> None:
        self.calls.append(("wait", stream))


def test_upload_waits_for_the_producers_event_before_copying(gl_context, monkeypatch):
    import viz.gfx.present as present

    calls: list = []
    monkeypatch.setattr(present, "interop_available", lambda kind: (True, "cuda-bindings"))
    monkeypatch.setitem(present._BACKENDS, "cuda-bindings", lambda: RecordingBackend(calls))
    with Presenter(interop="auto", log=lambda line: None) as p:
        assert p.path == "cuda-bindings"
        del calls[:]
        img = quadrants(SIZE, SIZE)
        p.upload(rgb_frame(img), ready=RecordingEvent(calls))
        assert calls[0] == ("wait", None) and [c[0] for c in calls[1:]] == ["register", "copy"]  # host frame: no stream
        assert np.abs(render(p) - img).max() <= 1
        p.upload(rgb_frame(img))  # no event: the frame comes from this thread's stream
        assert [c[0] for c in calls].count("wait") == 1
    assert frame_ready(rgb_frame(img)) is None  # host frames need no event


# --------------------------------------------------------------------------- pycuda's context stack (R6)
class FakePyCuda:
    """pycuda.driver and pycuda.gl as _PyCuda uses them; every call that needs a context checks one is current."""

    def __init__(self):
        self.stack: list = []
        self.fail_copy = False
        fake = self

        class Context:
            def push(self):
                fake.stack.append(self)

            def pop(self):  # pycuda: pops whatever is current
                fake.stack.pop()

        class Device:
            def __init__(self, index):
                self.index = index

            def retain_primary_context(self):
                return Context()

        class Mapping:
            def __init__(self):
                self.unmapped = False

            def array(self, index, level):
                fake.needs_context()
                return ("array", index, level)

            def unmap(self):
                fake.needs_context()
                self.unmapped = True
                fake.mappings.append(self)

        class RegisteredImage:
            def __init__(self, texture, target, flags):
                fake.needs_context()
                self.texture = texture

            def map(self):
                fake.needs_context()
                return Mapping()

            def unregister(self):
                fake.needs_context()

        class Memcpy2D:
            def set_src_device(self, ptr):
                self.src = ptr

            def set_dst_array(self, array):
                self.dst = array

            def __call__(self, aligned=True):
                fake.needs_context()
                if fake.fail_copy:
                    raise RuntimeError("cuMemcpy2DUnaligned failed: invalid value")
                fake.copies.append((self.src, self.width_in_bytes, self.height, aligned))

        self.mappings: list = []
        self.copies: list = []
        self.driver = types.ModuleType("pycuda.driver")
        self.driver.init = lambda: None
        self.driver.Device, self.driver.Memcpy2D = Device, Memcpy2D
        self.gl = types.ModuleType("pycuda.gl")
        self.gl.RegisteredImage = RegisteredImage
        self.gl.graphics_map_flags = types.SimpleNamespace(WRITE_DISCARD=2)

    def needs_context(self) -> None:
        if not self.stack:
            raise RuntimeError("cuCtxGetCurrent: no current context")

    def install(self, monkeypatch) -> None:
        package = types.ModuleType("pycuda")
        package.driver, package.gl = self.driver, self.gl
        for name, module in (("pycuda", package), ("pycuda.driver", self.driver), ("pycuda.gl", self.gl)):
            monkeypatch.setitem(sys.modules, name, module)
        monkeypatch.setattr(torch.cuda, "init", lambda: None)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


class FakeStream:
    def __init__(self):
        self.synchronized = 0

    def synchronize(self) -> None:
        self.synchronized += 1


def test_pycuda_context_stack_is_empty_after_every_call_however_it_ends(monkeypatch):
    from viz.gfx.present import _PyCuda

    fake = FakePyCuda()
    fake.install(monkeypatch)
    backend = _PyCuda()
    assert fake.stack == []
    resource = backend.register(7)
    assert fake.stack == []
    rgba = torch.zeros(3, 5, 4, dtype=torch.uint8)
    stream = FakeStream()
    backend.copy(resource, rgba, stream)
    assert fake.stack == [] and stream.synchronized == 1
    assert fake.copies == [(rgba.data_ptr(), 20, 3, False)] and fake.mappings[-1].unmapped
    fake.fail_copy = True
    with pytest.raises(RuntimeError, match="cuMemcpy2DUnaligned"):
        backend.copy(resource, rgba, stream)
    assert fake.stack == [] and len(fake.mappings) == 2  # unmapped and popped on the error path too
    backend.unregister(resource)
    backend.close()
    assert fake.stack == []


def test_pycuda_presenter_leaves_the_context_stack_empty(gl_context, monkeypatch):
    import viz.gfx.present as present

    fake = FakePyCuda()
    fake.install(monkeypatch)
    monkeypatch.setattr(present, "interop_available", lambda kind: (True, "pycuda"))
    lines: list[str] = []
    p = Presenter(interop="pycuda", log=lines.append)
    assert p.path == "pycuda" and fake.stack == [], lines  # the probe registered and unregistered a texture
    p.upload(rgb_frame(quadrants(8, 8)))  # a host frame: the CPU path
    assert fake.stack == []
    p.close()
    assert fake.stack == []
    fake.gl.RegisteredImage = lambda *a: (_ for _ in ()).throw(RuntimeError("cuGraphicsGLRegisterImage: not supported"))
    with Presenter(interop="pycuda", log=lines.append) as q:
        assert q.path == "cpu-upload" and "not supported" in q.fallback_reason
    assert fake.stack == []


# --------------------------------------------------------------------------- interop on a GPU
REQUIRE_INTEROP = set(filter(None, os.environ.get("TRIPLANE_REQUIRE_INTEROP", "").split(",")))
"""Backends that must run (bench/gpu_check.sh names those that import): when one is not active its interop
tests fail instead of skipping (under Mesa GL, say, where a pass would prove nothing)."""


def interop_or_skip(p: Presenter, kind: str) -> None:
    if p.path != kind:
        why = f"{kind} interop not active here ({p.fallback_reason}); GL: {gl_info()['GL_RENDERER']}"
        if kind in REQUIRE_INTEROP:
            pytest.fail(why)
        pytest.skip(why)


def texture_bytes(p: Presenter, h: int, w: int) -> np.ndarray:
    GL.glBindTexture(GL.GL_TEXTURE_2D, p._texture)
    GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
    data = GL.glGetTexImage(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)
    GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
    return np.frombuffer(data, np.uint8).reshape(h, w, 4)


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("kind", ["cuda-bindings", "pycuda"])
def test_gpu_interop_texture_equals_tensor_at_odd_sizes_and_after_resizes(gl_context, kind):
    gen = torch.Generator(device="cuda").manual_seed(3)
    with Presenter(interop=kind, log=lambda line: None) as p:
        interop_or_skip(p, kind)
        for h, w, frame_kind in (
            (256, 256, "rgb"),
            (21, 37, "rgb"),
            (512, 384, "depth"),
            (37, 21, "rgb"),
            (128, 128, "rgb"),
            (128, 128, "depth"),
        ):
            img = torch.randint(0, 256, (h, w, 4), dtype=torch.uint8, device="cuda", generator=gen)
            p.upload(DisplayFrame(img, frame_kind))
            assert p.path == kind, p.fallback_reason
            assert np.array_equal(texture_bytes(p, h, w), img.cpu().numpy()), (kind, h, w)
            assert p.texture_size == (w, h)


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("kind", ["cuda-bindings", "pycuda"])
def test_gpu_frame_made_on_another_threads_stream_arrives_complete(gl_context, kind):
    """R2: the render thread packs a frame on its own busy stream; the upload waits for its event."""
    import threading

    from viz.gfx.present import frame_ready

    with Presenter(interop=kind, log=lambda line: None) as p:
        interop_or_skip(p, kind)
        for attempt in range(3):
            box = {}

            def produce(box=box):
                side = torch.cuda.Stream()
                with torch.cuda.stream(side):
                    y = torch.randn(4096, 4096, device="cuda")
                    for _ in range(30):  # GPU work queued ahead of the frame on this stream
                        y = (y @ y).mul_(1e-4)
                    x = torch.rand(3, 512, 512, device="cuda") * 2 - 1 + y[:1, :1] * 0
                    box["frame"] = pack_frame(x, x, x[:1], x[:1], "image")
                    box["ready"] = frame_ready(box["frame"])
                    box["ref"] = box["frame"].rgba.clone()

            t = threading.Thread(target=produce)
            t.start()
            t.join()
            p.upload(box["frame"], ready=box["ready"])
            got = texture_bytes(p, 512, 512)
            torch.cuda.synchronize()
            assert np.array_equal(got, box["ref"].cpu().numpy()), attempt
