"""Test helper: read back framebuffer pixels with the top row first."""

from __future__ import annotations

import glfw
import imgui_bundle  # noqa: F401  (before glfw: one GLFW library, see viz/gfx/window.py)
import numpy as np
from OpenGL import GL


def read_pixels(x: int, y: int, w: int, h: int) -> np.ndarray:
    """(h, w, 3) uint8 from the current window's back buffer; x, y from the top-left corner."""
    fb_height = glfw.get_framebuffer_size(glfw.get_current_context())[1]
    GL.glFinish()
    GL.glReadBuffer(GL.GL_BACK)
    GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
    data = GL.glReadPixels(x, fb_height - y - h, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
    return np.frombuffer(data, np.uint8).reshape(h, w, 3)[::-1].copy()
