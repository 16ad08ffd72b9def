"""Test helper: real X input events through xdotool (XTEST), for driving the viewer on Xvfb."""

from __future__ import annotations

import shutil
import subprocess


class XDo:
    """xdotool commands aimed at one window (found by its exact title)."""

    def __init__(self, title: str):
        if shutil.which("xdotool") is None:
            raise RuntimeError("xdotool is not installed: apt-get install xdotool (CI installs it)")
        out = self.run("search", "--name", f"^{title}$").split()
        if not out:
            raise RuntimeError(f"no X window titled {title!r}")
        self.wid = out[-1]

    @staticmethod
    def run(*args: str) -> str:
        """Run one xdotool command and return its stdout."""
        return subprocess.run(["xdotool", *args], check=True, capture_output=True, text=True, timeout=10).stdout

    def move(self, x: float, y: float) -> None:
        """Move the pointer to (x, y) in window coordinates."""
        self.run("mousemove", "--window", self.wid, str(int(round(x))), str(int(round(y))))

    def down(self, button: int = 1) -> None:
        self.run("mousedown", str(button))

    def up(self, button: int = 1) -> None:
        self.run("mouseup", str(button))

    def click(self, button: int = 1, repeat: int = 1) -> None:
        """Click (4 = wheel up, 5 = wheel down)."""
        self.run("click", "--repeat", str(repeat), "--delay", "10", str(button))

    def key(self, *names: str) -> None:
        """Press and release keys (X keysym names: 'r', 'Right', 'F1', 'question', 'ctrl+a')."""
        self.run("key", "--delay", "20", *names)

    def key_down(self, name: str) -> None:
        self.run("keydown", name)

    def key_up(self, name: str) -> None:
        self.run("keyup", name)

    def type(self, text: str) -> None:
        """Type text as key presses."""
        self.run("type", "--delay", "20", text)
