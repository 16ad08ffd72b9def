"""GLFW window with an OpenGL 3.3 core context (X11/Wayland, or headless NULL+EGL), with one-line errors.

imgui_bundle is imported before glfw so that pyGLFW loads imgui-bundle's GLFW library rather
than a second copy (imgui's callbacks would otherwise talk to an uninitialised GLFW).
"""

from __future__ import annotations

import ctypes
import os
import re
import sys

if "glfw" in sys.modules and "imgui_bundle" not in sys.modules:  # pragma: no cover - import-order guard
    import warnings

    warnings.warn(
        "glfw was imported before imgui_bundle: two GLFW copies will be loaded; "
        "import viz.gfx.window (or imgui_bundle) first",
        RuntimeWarning,
        stacklevel=2,
    )

import glfw  # noqa: E402
import imgui_bundle  # noqa: E402,F401  (must precede glfw, see module docstring)
from OpenGL import GL  # noqa: E402

NO_DISPLAY = (
    "no display: run the headless CLI (`triplane-render images ...`) or start the viewer "
    "under `xvfb-run -a python visualizer.py`"
)
SOFTWARE_HINT = (
    "update the GPU driver, or use Mesa's software renderer with LIBGL_ALWAYS_SOFTWARE=1 (llvmpipe gives GL 4.5)"
)

_initialised_platform: str | None = None


class DisplayError(RuntimeError):
    """No window or GL 3.3 context could be made; the message is one actionable line."""


class _Errors:
    """Collects GLFW errors while a block runs, instead of pyGLFW's warnings."""

    def __enter__(self):
        self.messages: list[str] = []
        self._previous = glfw.set_error_callback(
            lambda code, text: self.messages.append(
                f"{text.decode('utf-8', 'replace') if isinstance(text, bytes) else text} (0x{code:x})"
            )
        )
        return self

    def __exit__(self, *exc):
        glfw.set_error_callback(self._previous)
        return False

    def text(self) -> str:
        return "; ".join(self.messages) or "no GLFW error given"


def _init(headless: bool) -> None:
    """Initialise GLFW for the wanted platform (re-initialising if another platform is active)."""
    global _initialised_platform
    want = "null" if headless else "native"
    if _initialised_platform == want:
        return
    if _initialised_platform is not None:
        glfw.terminate()  # switching platforms: windows of the other platform become invalid
        _initialised_platform = None
    glfw.init_hint(glfw.PLATFORM, glfw.PLATFORM_NULL if headless else glfw.ANY_PLATFORM)
    with _Errors() as errors:
        ok = glfw.init()
    if not ok:
        if headless:
            raise DisplayError(
                f"headless GLFW (NULL platform + EGL) failed to start: {errors.text()}; "
                "install libegl1 and libegl-mesa0 (or the GPU driver's EGL)"
            )
        raise DisplayError(f"{NO_DISPLAY} (GLFW: {errors.text()})")
    _initialised_platform = want


def _gl_version(version: str) -> tuple[int, int]:
    m = re.search(r"(\d+)\.(\d+)", version)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _probe_default_context(headless: bool) -> str:
    """GL_VERSION and GL_RENDERER of a default (any version) context, to say what the driver offers."""
    glfw.default_window_hints()
    glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
    if headless:
        glfw.window_hint(glfw.CONTEXT_CREATION_API, glfw.EGL_CONTEXT_API)
    with _Errors():
        win = glfw.create_window(16, 16, "probe", None, None)
    if not win:
        return "no OpenGL context at all"
    previous = glfw.get_current_context()
    glfw.make_context_current(win)
    try:
        info = gl_info()
        return f"GL {info['GL_VERSION']} on {info['GL_RENDERER']}"
    finally:
        glfw.make_context_current(previous)
        glfw.destroy_window(win)


def create_window(title: str, width: int, height: int, visible: bool = True, headless: bool = False):
    """A GLFW window with a current OpenGL 3.3 core forward-compatible context, or DisplayError."""
    if not headless and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise DisplayError(NO_DISPLAY)
    _init(headless)
    glfw.default_window_hints()
    glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
    glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
    glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
    glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, glfw.TRUE)
    glfw.window_hint(glfw.VISIBLE, glfw.TRUE if visible and not headless else glfw.FALSE)
    glfw.window_hint(glfw.CONTEXT_CREATION_API, glfw.EGL_CONTEXT_API if headless else glfw.NATIVE_CONTEXT_API)
    with _Errors() as errors:
        window = glfw.create_window(int(width), int(height), title, None, None)
    if not window:
        found = _probe_default_context(headless)
        raise DisplayError(
            f"could not create an OpenGL 3.3 core context ({errors.text()}); found {found}: {SOFTWARE_HINT}"
        )
    glfw.make_context_current(window)
    version = gl_info()["GL_VERSION"]
    if _gl_version(version) < (3, 3):  # drivers should refuse a 3.3 request instead; belt and braces
        glfw.destroy_window(window)
        raise DisplayError(f"OpenGL 3.3 is needed but the context is GL {version}: {SOFTWARE_HINT}")
    return window


def _address(window) -> int | None:
    return ctypes.cast(window, ctypes.c_void_p).value if window else None


def destroy_window(window) -> None:
    """Destroy a window made by create_window (GLFW itself stays initialised for the next one)."""
    if _address(glfw.get_current_context()) == _address(window):
        glfw.make_context_current(None)  # type: ignore[arg-type]  # glfw's stubs omit None (releases the context)
    glfw.destroy_window(window)


def gl_info() -> dict[str, str]:
    """GL_VERSION, GL_RENDERER, GL_VENDOR and GL_SHADING_LANGUAGE_VERSION of the current context."""

    def get(name: int) -> str:
        value = GL.glGetString(name)
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")

    return {
        "GL_VERSION": get(GL.GL_VERSION),
        "GL_RENDERER": get(GL.GL_RENDERER),
        "GL_VENDOR": get(GL.GL_VENDOR),
        "GL_SHADING_LANGUAGE_VERSION": get(GL.GL_SHADING_LANGUAGE_VERSION),
    }
