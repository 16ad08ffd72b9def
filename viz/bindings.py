"""The one table of mouse and key bindings, shared by the input handler, the help overlay and the README.

`viz.input` dispatches on the `action` ids below and a unit test checks that every id here is
handled there and nothing else is; `python -m viz.bindings` prints the README's Markdown table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Binding:
    """One gesture: what to do (`gesture`), what it does (`effect`), and the handler's action id."""

    action: str
    gesture: str
    effect: str
    device: Literal["mouse", "key"]
    where: str = "render area"
    """Where the gesture counts: mouse gestures only over the render (not over the control pane);
    keys anywhere unless a text field has the keyboard."""


BINDINGS: tuple[Binding, ...] = (
    Binding("orbit", "Left drag", "orbit the camera around the pivot (yaw/pitch, pitch clamped)", "mouse"),
    Binding("zoom", "Wheel", "zoom: move the camera closer / farther (radius)", "mouse"),
    Binding("zoom_fov", "Ctrl + wheel", "change the field of view", "mouse"),
    Binding("pan", "Right or middle drag", "pan: move the pivot in the image plane", "mouse"),
    Binding("reset", "Double-click", "reset the camera to the model's default", "mouse"),
    Binding(
        "load",
        "Drop a file on the window",
        "load that checkpoint (.pkl or .safetensors); a picture goes to the Photo panel; a saved fit (its folder, "
        "fit.json or w.npy) shows its latent at its camera",
        "mouse",
        where="anywhere",
    ),
    Binding("reset", "R", "reset the camera to the model's default", "key", where="anywhere"),
    Binding("screenshot", "S", "save the current render as PNG (native resolution)", "key", where="anywhere"),
    Binding("help", "F1 or ?", "show / hide this help", "key", where="anywhere"),
    Binding("close_help", "Esc", "close the help", "key", where="anywhere"),
    Binding("play", "Space", "play / pause the A-to-B interpolation", "key", where="anywhere"),
    Binding("seed_prev", "Left arrow", "previous seed", "key", where="anywhere"),
    Binding("seed_next", "Right arrow", "next seed", "key", where="anywhere"),
    Binding(
        "toggle_pane", "Tab", "hide / show the control pane (the render takes the window)", "key", where="anywhere"
    ),
    Binding(
        "inspector",
        "I",
        "show / hide the inspector (layers, tri-planes, density slices, pixel probe)",
        "key",
        where="anywhere",
    ),
    Binding(
        "keyframe_add", "K", "add a camera-path keyframe of the current view (Path panel)", "key", where="anywhere"
    ),
    Binding("keyframe_next", ".", "jump to the next keyframe of the camera path", "key", where="anywhere"),
    Binding("keyframe_prev", ",", "jump to the previous keyframe of the camera path", "key", where="anywhere"),
    Binding("quit", "Ctrl+Q", "quit the viewer", "key", where="anywhere, even while typing"),
)
"""Every mouse and key binding of the window, in the order the help shows them."""


def actions() -> set[str]:
    """The set of action ids the input handler must implement."""
    return {b.action for b in BINDINGS}


def rows() -> list[tuple[str, str]]:
    """(gesture, effect) rows for the help overlay."""
    return [(b.gesture, b.effect) for b in BINDINGS]


def markdown_table() -> str:
    """The bindings as the README's Markdown table."""
    lines = ["| input | effect |", "|---|---|"]
    lines += [f"| {b.gesture} | {b.effect} |" for b in BINDINGS]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
