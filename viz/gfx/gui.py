"""imgui on the window: its context, the C++ GLFW/OpenGL3 backends (chaining to the input handler's callbacks,
installed before them), the style, and the GL parts created with it (presenter, mesh view); torn down newest
first, whatever got made."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path

import glfw
import imgui_bundle
from imgui_bundle import imgui

from ..layout import FONT_SIZE
from .mesh_view import MeshView
from .present import Interop, Presenter
from .textures import ImageTextures
from .window import DisplayError


class Gui:
    """imgui + presenter + mesh view + widget textures of one window (its GL context current while calling)."""

    def __init__(self, window, interop: Interop, headless: bool, log: Callable[[str], None]):
        self.window = window
        self._parts: list[str] = []
        try:
            self._create(interop, headless, log)
        except BaseException:
            self.release()
            raise

    def _create(self, interop: Interop, headless: bool, log: Callable[[str], None]) -> None:
        self.context = imgui.create_context()
        imgui.set_current_context(self.context)  # create_context keeps an existing context current
        self._parts.append("imgui")
        io = imgui.get_io()
        io.set_ini_filename(None)
        imgui.style_colors_dark()
        style = imgui.get_style()
        for col, rgba in (
            (imgui.Col_.slider_grab, (0.26, 0.59, 0.98, 0.45)),  # see-through: the value shows
            (imgui.Col_.slider_grab_active, (0.26, 0.59, 0.98, 0.65)),
        ):
            style.set_color_(col, imgui.ImVec4(*rgba))
        style.grab_min_size = 6.0
        font = Path(imgui_bundle.__file__).parent / "assets" / "fonts" / "Roboto" / "Roboto-Regular.ttf"
        if font.is_file():  # a readable UI font with the glyphs we use (…, −); imgui's default lacks them
            io.fonts.add_font_from_file_ttf(str(font), FONT_SIZE)
        addr = ctypes.cast(self.window, ctypes.c_void_p).value
        assert addr is not None  # create_window returns a window or raises DisplayError
        if not imgui.backends.glfw_init_for_opengl(addr, True):
            raise DisplayError("imgui could not attach to the GLFW window")
        self._parts.append("glfw")
        if not imgui.backends.opengl3_init("#version 330"):
            raise DisplayError("imgui's OpenGL 3 renderer failed to start (no GL 3.3 function loader)")
        self._parts.append("opengl3")
        if not headless:
            glfw.swap_interval(1)
        self.presenter = Presenter(interop, log=log)
        self._parts.append("presenter")
        self.mesh_view = MeshView()
        self._parts.append("mesh_view")
        self.textures = ImageTextures()
        self._parts.append("textures")

    def make_current(self) -> None:
        glfw.make_context_current(self.window)
        imgui.set_current_context(self.context)

    def release(self) -> None:
        """Undo whatever got made, newest first (makes the window's context current)."""
        glfw.make_context_current(self.window)
        if "imgui" in self._parts:
            imgui.set_current_context(self.context)
        for part in reversed(self._parts):
            if part == "presenter":
                self.presenter.close()
            elif part == "mesh_view":
                self.mesh_view.close()
            elif part == "textures":
                self.textures.close()
            elif part == "opengl3":
                imgui.backends.opengl3_shutdown()
            elif part == "glfw":
                imgui.backends.glfw_shutdown()
            elif part == "imgui":
                imgui.destroy_context(self.context)
        self._parts = []
