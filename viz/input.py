"""GLFW callbacks -> camera moves and app actions; the gestures are the ones in `viz.bindings.BINDINGS`.

Mouse gestures count only over the render area while imgui does not want the mouse, so the
control pane keeps its own clicks; keys are ignored while imgui has the keyboard (a text
field is being edited). The callbacks are installed *before* imgui's GLFW backend, which
then chains to them (install_callbacks=True), so imgui sees every event as well.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import glfw
from imgui_bundle import imgui

from . import orbit
from .state import VizState

DOUBLE_CLICK_S = 0.35
DOUBLE_CLICK_PX = 5.0

KEY_ACTIONS: dict[int, str] = {
    glfw.KEY_R: "reset",
    glfw.KEY_S: "screenshot",
    glfw.KEY_F1: "help",
    glfw.KEY_ESCAPE: "close_help",
    glfw.KEY_SPACE: "play",
    glfw.KEY_LEFT: "seed_prev",
    glfw.KEY_RIGHT: "seed_next",
    glfw.KEY_TAB: "toggle_pane",
    glfw.KEY_I: "inspector",
    glfw.KEY_K: "keyframe_add",
    glfw.KEY_PERIOD: "keyframe_next",
    glfw.KEY_COMMA: "keyframe_prev",
}
"""Plain key (no Ctrl/Alt/Super) -> action id of viz.bindings."""
CTRL_KEY_ACTIONS: dict[int, str] = {glfw.KEY_Q: "quit"}
"""Ctrl + key -> action id; these work even while a text field has the keyboard."""
CHAR_ACTIONS: dict[str, str] = {"?": "help"}
"""Typed character -> action id (`?` needs Shift on most layouts, so it arrives as a character)."""
REPEATING = {"seed_prev", "seed_next"}
"""Actions that also fire on key auto-repeat."""
MOUSE_ACTIONS = ("orbit", "zoom", "zoom_fov", "pan", "reset", "load")
"""Action ids produced by mouse gestures (see `InputHandler`)."""
_MODS_BLOCKING = glfw.MOD_CONTROL | glfw.MOD_ALT | glfw.MOD_SUPER
PICTURE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
"""Dropped files with these suffixes are pictures to fit, not checkpoints."""


def handled_actions() -> set[str]:
    """Every action id this module can produce (checked against viz.bindings by a unit test)."""
    return set(KEY_ACTIONS.values()) | set(CTRL_KEY_ACTIONS.values()) | set(CHAR_ACTIONS.values()) | set(MOUSE_ACTIONS)


class InputTarget(Protocol):
    """What the handler needs from the app: the state, the render rectangle, and the actions."""

    state: VizState

    def render_rect(self) -> tuple[float, float, float, float]:
        """(x, y, w, h) of the render area in window coordinates (cursor units), top-left origin."""

    def actions(self) -> dict[str, Callable[[], None]]:
        """Action id -> callable for the key actions (reset, screenshot, help, ...)."""

    def open_photo(self, path: str) -> None: ...

    def load_model(self, path: str) -> None:
        """Start loading a checkpoint."""

    def notify(self, text: str) -> None:
        """Show a passing note in the status line."""


@dataclass
class Drag:
    """A mouse drag in progress: which button and the last cursor position."""

    button: int
    x: float
    y: float


class InputHandler:
    """Turns raw GLFW events into camera changes in `target.state` and calls to the app's actions."""

    def __init__(self, target: InputTarget, log: Callable[[str], None] | None = None):
        self.target = target
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.cursor = (-1.0, -1.0)
        self.drag: Drag | None = None
        self._last_click = (-1.0, -1e9, -1e9)  # time, x, y of the last left press in the render area
        self.events = 0
        """Events handled (tests and debugging)."""

    # ----------------------------------------------------------------- installation
    def install(self, window) -> None:
        """Set the GLFW callbacks on `window`; call before imgui's backend init so imgui chains to them."""
        glfw.set_cursor_pos_callback(window, self._guard(self.on_cursor_pos))
        glfw.set_mouse_button_callback(window, self._guard(self.on_mouse_button))
        glfw.set_scroll_callback(window, self._guard(self.on_scroll))
        glfw.set_key_callback(window, self._guard(self.on_key))
        glfw.set_char_callback(window, self._guard(self.on_char))
        glfw.set_drop_callback(window, self._guard(self.on_drop))

    def _guard(self, fn):
        """Wrap a callback so that an exception is logged instead of escaping into GLFW's C code."""

        def wrapped(*args):
            try:
                self.events += 1
                fn(*args)
            except Exception as e:  # a bug in a handler must not kill the window
                self.log(f"input handler error: {type(e).__name__}: {e}")

        return wrapped

    # ----------------------------------------------------------------- queries
    def over_render(self, x: float, y: float) -> bool:
        """True when (x, y) is inside the render area and imgui is not using the mouse."""
        rx, ry, rw, rh = self.target.render_rect()
        if not (rx <= x < rx + rw and ry <= y < ry + rh):
            return False
        return not imgui.get_io().want_capture_mouse

    @staticmethod
    def keyboard_free() -> bool:
        """True unless imgui has the keyboard (a text field or slider being typed into)."""
        return not imgui.get_io().want_capture_keyboard

    # ----------------------------------------------------------------- callbacks
    def on_cursor_pos(self, window, x: float, y: float) -> None:
        """Apply orbit (left drag) or pan (right/middle drag) for the motion since the last event."""
        self.cursor = (x, y)
        d = self.drag
        if d is None:
            return
        dx, dy = x - d.x, y - d.y
        d.x, d.y = x, y
        if dx == 0 and dy == 0:
            return
        h = max(self.target.render_rect()[3], 1.0)
        s = self.target.state
        if d.button == glfw.MOUSE_BUTTON_LEFT:
            s.camera = orbit.orbit(s.camera, dx, dy, h)
        else:
            s.camera = orbit.pan(s.camera, dx, dy, h)

    def on_mouse_button(self, window, button: int, action: int, mods: int) -> None:
        """Start a drag on press over the render area (double left click resets); end it on release."""
        x, y = glfw.get_cursor_pos(window)
        self.cursor = (x, y)
        if action == glfw.RELEASE:
            if self.drag is not None and self.drag.button == button:
                self.drag = None
            return
        if action != glfw.PRESS or self.drag is not None or not self.over_render(x, y):
            return
        if button == glfw.MOUSE_BUTTON_LEFT:
            t = glfw.get_time()
            t0, x0, y0 = self._last_click
            if t - t0 <= DOUBLE_CLICK_S and math.hypot(x - x0, y - y0) <= DOUBLE_CLICK_PX:
                self._last_click = (-1.0, -1e9, -1e9)
                self.target.actions()["reset"]()
                return
            self._last_click = (t, x, y)
        if button in (glfw.MOUSE_BUTTON_LEFT, glfw.MOUSE_BUTTON_RIGHT, glfw.MOUSE_BUTTON_MIDDLE):
            self.drag = Drag(button, x, y)

    def on_scroll(self, window, xoff: float, yoff: float) -> None:
        """Wheel zooms (radius); with Ctrl held it changes the field of view."""
        x, y = self.cursor
        if yoff == 0 or not self.over_render(x, y):
            return
        s = self.target.state
        ctrl = (
            glfw.get_key(window, glfw.KEY_LEFT_CONTROL) == glfw.PRESS
            or glfw.get_key(window, glfw.KEY_RIGHT_CONTROL) == glfw.PRESS
        )
        if ctrl:
            s.camera = orbit.zoom_fov(s.camera, yoff)
            return
        lo, hi = s.defaults.radius_range
        wanted = s.camera.radius * orbit.ZOOM_STEP**yoff
        s.camera = orbit.zoom(s.camera, yoff, (lo, hi))
        if not lo <= wanted <= hi:
            self.target.notify(
                f"zoom limit: radius {s.camera.radius:.2f} (this model keeps {lo:.2f}–{hi:.2f}, "
                "where the object stays inside the rendered range)"
            )

    def on_key(self, window, key: int, scancode: int, action: int, mods: int) -> None:
        """Plain keys -> actions (see KEY_ACTIONS), unless imgui has the keyboard; Ctrl + key (CTRL_KEY_ACTIONS)
        always."""
        ctrl = CTRL_KEY_ACTIONS.get(key)
        if ctrl is not None and action == glfw.PRESS and mods & _MODS_BLOCKING == glfw.MOD_CONTROL:
            self.target.actions()[ctrl]()
            return
        name = KEY_ACTIONS.get(key)
        if name is None or mods & _MODS_BLOCKING or not self.keyboard_free():
            return
        if action == glfw.PRESS or (action == glfw.REPEAT and name in REPEATING):
            self.target.actions()[name]()

    def on_char(self, window, codepoint: int) -> None:
        """Typed characters -> actions (see CHAR_ACTIONS), unless imgui has the keyboard."""
        name = CHAR_ACTIONS.get(chr(codepoint))
        if name is not None and self.keyboard_free():
            self.target.actions()[name]()

    def on_drop(self, window, paths: list[str]) -> None:
        """A file dropped on the window: a picture goes to the photo fit, anything else to `load_model` (the first
        one, if several), which also opens a saved fit's folder, fit.json or w.npy."""
        if not paths:
            return
        if Path(paths[0]).suffix.lower() in PICTURE_SUFFIXES:
            self.target.open_photo(paths[0])
        else:
            self.target.load_model(paths[0])
