"""Felt latency: the real viewer window on Xvfb, driven by real X input (xdotool), measured as a user feels it.

For each model (the built-in one; the FFHQ-512 configuration with random weights) it prints
* idle CPU: cores used by the whole process over a few seconds with no input and nothing animating,
* displayed FPS during a steady left-drag orbit (frames that reached the screen per second),
* the longest gap between displayed frames while the mouse moves, in a drag that pauses 0.5 s (a
  full-quality frame starts) and resumes (the gap from the resume to the next frame counts),
* displayed FPS while the A -> B interpolation plays,
* the camera radii, wheel notch by notch in and out, at which the object is still on screen.

The window runs its own interactive loop (`App.run`, or the poll-and-draw loop of older code that has
no `wait_for_work`), on this thread; a second thread sends the X events. `--root DIR` runs the viewer
code of another checkout (e.g. the commit before a change) with this same script, so before and after
are measured side by side on one machine:

    git worktree add /tmp/before <commit> && python bench/bench_felt.py --root /tmp/before
    python bench/bench_felt.py
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--root", type=Path, default=HERE.parent, help="checkout whose viewer code runs (default: this one)")
ap.add_argument("--models", default="builtin,ffhq512", help="comma-separated: builtin, ffhq512")
ap.add_argument("--idle-s", type=float, default=6.0)
ARGS = ap.parse_args()
sys.path[:0] = [str(ARGS.root.resolve()), str(HERE.parent / "tests" / "gui"), str(HERE.parent / "tests")]


def _cpu_description() -> str:
    """renderer/engine/cpu.py of this checkout, loaded by path: an older --root may not have it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("triplane_cpu", HERE.parent / "renderer" / "engine" / "cpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cpu_description()


print(_cpu_description(), flush=True)  # first: only ratios compare across CPUs
print(f"viewer code: {ARGS.root.resolve()}", flush=True)

from conftest import display_alive, start_xvfb  # noqa: E402  (tests/gui/conftest.py)

if not (os.environ.get("DISPLAY") and display_alive(os.environ["DISPLAY"])):
    XVFB, os.environ["DISPLAY"] = start_xvfb()

import bench_engine  # noqa: E402  (bench/, the script's folder)
import glfw  # noqa: E402
from xdo import XDo  # noqa: E402

from renderer.engine import memory  # noqa: E402
from viz.app import App, AppConfig  # noqa: E402  (first: imgui_bundle's GLFW before the glfw module's)

TITLE = "triplane-viz felt latency"


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Felt:
    """One window on one model, with a clock on every frame that reaches the screen."""

    def __init__(self, checkpoint: str):
        self.app = App(
            AppConfig(
                checkpoint=checkpoint,
                width=1280,
                height=800,
                title=TITLE,
                out_dir=tempfile.mkdtemp(),
                log=lambda m: None,
            )
        )
        self.shown_at: list[float] = []
        self.levels: list[str] = []
        """The preview level of each displayed frame ('full' for full quality)."""
        upload = self.app._upload_pending

        def timed_upload():
            before = self.app.shown
            upload()
            shown = self.app.shown
            if shown is not before and shown is not None:
                self.shown_at.append(time.perf_counter())
                q = shown.job.quality
                self.levels.append("full" if q is None or q == self.app.quality.full else q.label)

        self.app._upload_pending = timed_upload
        self.loop_until(lambda: self.app.model is not None and self.app.idle(), 600)
        self.xdo = XDo(TITLE)

    def close(self) -> None:
        self.app.close()

    def loop_for(self, seconds: float) -> None:
        """The window's interactive loop for `seconds` (new code: App.run sleeps when idle)."""
        app = self.app
        if hasattr(app, "wait_for_work"):
            app.run(max_seconds=seconds)
            return
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.step()

    def loop_until(self, done, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not done() and time.monotonic() < end:
            self.loop_for(0.05)

    def settle(self) -> None:
        self.loop_until(self.app.idle, 120)
        self.loop_for(0.3)

    def drive(self, script, seconds: float) -> list[tuple[float, float]]:
        """Run `script(xdo, marks)` on a thread while the loop runs; returns the motion phases it marked."""
        marks: list[tuple[float, float]] = []
        t = threading.Thread(target=script, args=(self.xdo, marks), daemon=True)
        t.start()
        end = time.monotonic() + seconds
        while t.is_alive() and time.monotonic() < end:
            self.loop_for(0.05)
        t.join(1)
        return marks

    def centre(self) -> tuple[float, float]:
        x, y, w, h = self.app.render_rect()
        return x + w / 2, y + h / 2

    # ------------------------------------------------------------------ measurements
    def idle_cores(self, seconds: float) -> float:
        self.settle()
        self.xdo.move(*self.centre())
        self.loop_for(1.0)
        c0, t0 = cpu_seconds(), time.perf_counter()
        self.loop_for(seconds)
        return (cpu_seconds() - c0) / (time.perf_counter() - t0)

    def drag(self, pause: float = 0.0) -> tuple[float, float, str]:
        """(displayed FPS while moving, longest gap in ms while moving, the commonest preview level) for a left
        drag of 2 x 1.5 s."""
        self.settle()
        cx, cy = self.centre()

        def script(xdo: XDo, marks):
            xdo.move(cx - 150, cy)
            xdo.down(1)
            x = cx - 150.0
            for phase in range(2):
                start = time.perf_counter()
                while time.perf_counter() - start < 1.5:
                    x += 4
                    xdo.move(x, cy + 40 * math.sin(x / 60))
                    time.sleep(0.02)
                marks.append((start, time.perf_counter()))
                if phase == 0:
                    time.sleep(pause)
            xdo.up(1)

        n0 = len(self.shown_at)
        marks = self.drive(script, 30)
        shown = self.shown_at[n0:]
        levels = self.levels[n0:]
        level = max(set(levels), key=levels.count) if levels else "none"
        frames, moving, gap = 0, 0.0, 0.0
        for a, b in marks:
            inside = [t for t in shown if a < t <= b + 0.05]
            frames += len(inside)
            moving += b - a
            times = [a] + inside + [b]
            gap = max(gap, max(y - x for x, y in zip(times, times[1:])))
        return frames / moving, gap * 1000, level

    def play(self, seconds: float = 4.0) -> float:
        """Displayed FPS while A -> B plays."""
        lat = self.app.state.latent
        lat.seed, lat.seed_b, lat.t, lat.interp, lat.playing, lat.speed = 0.0, 1, 0.0, True, True, 0.25
        n0, t0 = len(self.shown_at), time.perf_counter()
        self.loop_for(seconds)
        fps = (len(self.shown_at) - n0) / (time.perf_counter() - t0)
        lat.playing, lat.interp = False, False
        return fps

    def visible(self) -> bool:
        """The object is on screen: some of the shown frame is opaque."""
        out = self.app.shown
        return out is not None and float((out.result.alpha > 0.5).float().mean()) > 0.005

    def zoom_range(self, notches: int = 14) -> tuple[float, float]:
        """Smallest and largest radius reached notch by notch (in, then out) with the object still visible."""
        app = self.app
        app.reset_camera()
        self.settle()
        self.xdo.move(*self.centre())
        seen = [app.state.camera.radius]
        for button in (4, 5):  # wheel up = closer, wheel down = farther
            app.reset_camera()
            self.settle()
            for _ in range(notches):
                before = app.state.camera.radius
                self.xdo.click(button)
                self.loop_for(0.2)
                self.settle()
                if app.state.camera.radius == before:  # the zoom limit
                    break
                if not self.visible():
                    break
                seen.append(app.state.camera.radius)
        app.reset_camera()
        return min(seen), max(seen)


def main() -> None:
    memory.retain_freed_memory()
    with tempfile.TemporaryDirectory(prefix="bench-felt-") as tmp:
        os.environ["TRIPLANE_VIZ_CONFIG_DIR"] = str(Path(tmp) / "config")
        for name in ARGS.models.split(","):
            ckpt = "builtin" if name == "builtin" else bench_engine.ffhq512_checkpoint(tmp)
            f = Felt(ckpt)
            try:
                idle = f.idle_cores(ARGS.idle_s)
                fps, gap, level = f.drag()
                _, pause_gap, _ = f.drag(pause=0.5)
                play = f.play()
                lo, hi = f.zoom_range()
                print(
                    f"{name}: idle {idle:.3f} cores | drag {fps:.1f} displayed FPS ({level}), "
                    f"longest gap {gap:.0f} ms | "
                    f"drag with a 0.5 s pause: longest gap {pause_gap:.0f} ms | A->B play {play:.1f} displayed "
                    f"FPS | object visible at radius {lo:.2f}..{hi:.2f} (default "
                    f"{f.app.state.defaults.radius:.2f}) | renders cancelled "
                    f"{getattr(f.app.worker, 'cancelled', 'n/a')}",
                    flush=True,
                )
            finally:
                f.close()
    glfw.terminate()


if __name__ == "__main__":
    main()
