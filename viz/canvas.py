"""The render area: the shown frame (or the mesh, in the geometry view) drawn into the window, and read back."""

from __future__ import annotations

from typing import TYPE_CHECKING

import glfw
import numpy as np
from OpenGL import GL

from .gfx.mesh_view import square_fit

if TYPE_CHECKING:
    from .host import ViewerHost

CLEAR_RGB = (0.08, 0.08, 0.09)
GEOMETRY_RGB = (0.1, 0.1, 0.12)


def draw_render_area(app: ViewerHost) -> None:
    """Clear, then draw the shown frame (or the mesh, in the geometry view) into the render area."""
    fw, fh = glfw.get_framebuffer_size(app.window)
    GL.glViewport(0, 0, fw, fh)
    GL.glClearColor(*CLEAR_RGB, 1.0)
    GL.glClear(GL.GL_COLOR_BUFFER_BIT)
    x, y, w, h = app.render_rect_fb()
    if w <= 0 or h <= 0:
        return
    view = app.state.view.view
    if view == "geometry":
        _draw_geometry(app, x, y, w, h, fh)
        return
    if app.shown is None or app.loader.loading is not None:  # a load replaces the frame: none shown meanwhile
        return
    job = app.shown.job
    app.presenter.draw(x, y, w, h, fh, job.display_mode(view), focal=job.focal)
    if app.geometry.overlay:  # with the shown frame's camera, so it lies on that frame
        fit = app.presenter.fit_rect(x, y, w, h)
        if fit is not None:
            app.mesh_view.draw(*fit, fh, job.request.camera, app.geometry.mode, app.geometry.opacity)


def _draw_geometry(app: ViewerHost, x: int, y: int, w: int, h: int, fb_height: int) -> None:
    """The geometry view: background, then the preview mesh under the live camera (square, as a render)."""
    GL.glEnable(GL.GL_SCISSOR_TEST)
    GL.glScissor(x, fb_height - y - h, w, h)
    GL.glClearColor(*GEOMETRY_RGB, 1.0)
    GL.glClear(GL.GL_COLOR_BUFFER_BIT)
    GL.glDisable(GL.GL_SCISSOR_TEST)
    app.mesh_view.draw(*square_fit(x, y, w, h), fb_height, app.state.camera.to_camera().numpy(), app.geometry.mode)


def geometry_pixels(app: ViewerHost) -> np.ndarray:
    """The geometry view's square as drawn (re-drawn and read back)."""
    draw_render_area(app)
    return read_back(app.window, *square_fit(*app.render_rect_fb()))


def read_render_area(app: ViewerHost) -> np.ndarray:
    """(h, w, 3) uint8 pixels of the render area as drawn in the last frame (re-draws it)."""
    glfw.make_context_current(app.window)
    x, y, w, h = app.render_rect_fb()
    if w <= 0 or h <= 0:
        return np.zeros((0, 0, 3), np.uint8)
    draw_render_area(app)
    return read_back(app.window, x, y, w, h)


def read_back(window, x: int, y: int, w: int, h: int) -> np.ndarray:
    """RGB pixels of a back-buffer rectangle (x, y from the top-left), top row first."""
    fh = glfw.get_framebuffer_size(window)[1]
    GL.glFinish()
    GL.glReadBuffer(GL.GL_BACK)
    GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
    data = GL.glReadPixels(x, fh - y - h, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
    return np.frombuffer(data, np.uint8).reshape(h, w, 3)[::-1].copy()
