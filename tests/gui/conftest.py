"""GUI test fixtures: an Xvfb display (started here when there is none) and a hidden GL 3.3 window on it."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import shutil
import subprocess
import tempfile
import time

import pytest

XVFB_SCREEN = "1280x1024x24"


def display_alive(display: str) -> bool:
    """Whether an X server answers on `display` (XOpenDisplay through libX11)."""
    name = ctypes.util.find_library("X11") or "libX11.so.6"
    try:
        xlib = ctypes.CDLL(name)
    except OSError:
        return False
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = xlib.XOpenDisplay(display.encode())
    if not handle:
        return False
    xlib.XCloseDisplay(handle)
    return True


def start_xvfb(timeout: float = 10.0) -> tuple[subprocess.Popen, str]:
    """Start Xvfb on a free display number (Xvfb picks it: -displayfd) and wait until it accepts clients.

    -noreset matters: by default the server resets when its last client disconnects, and a client
    connecting during that reset (GLFW, right after our probe) is refused.
    """
    read_fd, write_fd = os.pipe()
    log = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe would block Xvfb
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", XVFB_SCREEN, "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    os.close(write_fd)

    def failed(why: str) -> RuntimeError:
        proc.kill()
        proc.wait()
        log.seek(0)
        return RuntimeError(f"{why}; Xvfb said: {log.read().decode(errors='replace').strip()[-500:]}")

    deadline, number = time.monotonic() + timeout, b""
    try:
        while not number.endswith(b"\n"):
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(read_fd, 16) if ready else b""
            if not chunk:
                raise failed(f"Xvfb did not start within {timeout:.0f} s")
            number += chunk
    finally:
        os.close(read_fd)
    display = f":{int(number.strip())}"
    while not display_alive(display):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise failed(f"Xvfb on {display} does not accept connections")
        time.sleep(0.05)
    log.close()
    return proc, display


@pytest.fixture(scope="session")
def xvfb_display():
    """The X display to test on: $DISPLAY if its server answers, else a private Xvfb (killed at the end)."""
    current = os.environ.get("DISPLAY")
    if current and display_alive(current):
        yield current
        return
    if shutil.which("Xvfb") is None:
        pytest.skip("no X display and no Xvfb binary: apt-get install xvfb (CI installs it)")
    proc, display = start_xvfb()
    os.environ["DISPLAY"] = display
    try:
        yield display
    finally:
        if current is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = current
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def gl_context(xvfb_display):
    """A hidden 256x256 window with a current OpenGL 3.3 core context; destroyed afterwards."""
    from viz.gfx.window import create_window, destroy_window

    window = create_window("triplane-viz test", 256, 256, visible=False)
    try:
        yield window
    finally:
        destroy_window(window)
