"""Entry point of `triplane-viz`, the interactive viewer: `python visualizer.py [CHECKPOINT] [options]`.

With no checkpoint it opens the built-in model, so a fresh install shows real 3D objects.

No display or a GL driver older than 3.3 prints one line naming the fix on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from renderer.builtin import BUILTIN

PROG = "triplane-viz"


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    p = argparse.ArgumentParser(prog=PROG, description="Interactive viewer for EG3D tri-plane GANs.")
    p.add_argument(
        "checkpoint",
        nargs="?",
        default=BUILTIN,
        help="EG3D .pkl or native .safetensors to open (default: the built-in model, 'builtin'); "
        "a path field and drag-and-drop are in the window",
    )
    p.add_argument("--no-model", action="store_true", help="start with no model loaded")
    p.add_argument("--device", default="cpu", help="torch device for the model: cpu (default) or cuda")
    p.add_argument(
        "--interop",
        choices=("auto", "cuda-bindings", "pycuda", "off"),
        default="auto",
        help="how frames reach the GL texture on CUDA: auto (default), a backend, or off (CPU copy)",
    )
    p.add_argument("--width", type=int, default=1280, help="window width (default 1280)")
    p.add_argument("--height", type=int, default=800, help="window height (default 800)")
    p.add_argument(
        "--headless",
        action="store_true",
        help="no visible window (GLFW NULL platform + EGL); use with --frames or --screenshot",
    )
    p.add_argument("--debug-gl", action="store_true", help="check glGetError after every frame and log errors")
    p.add_argument("--frames", type=int, default=None, metavar="N", help="quit after N UI frames")
    p.add_argument(
        "--screenshot", metavar="PNG", help="once the first render is on screen, save the window to PNG and quit"
    )
    p.add_argument(
        "--out-dir", default=None, help="folder for saved renders, meshes and videos (default ~/Pictures/triplane-viz)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, open the window, run the loop; 2 on a display problem."""
    args = build_parser().parse_args(argv)
    if args.width < 64 or args.height < 64:
        print(f"{PROG}: error: the window must be at least 64x64", file=sys.stderr)
        return 2
    from renderer.cli.common import CliError, resolve_device

    try:
        resolve_device(args.device)  # an unknown name, no CUDA, or a GPU index beyond the machine's: one line
    except CliError as e:
        print(f"{PROG}: error: --device: {e}", file=sys.stderr)
        return 2

    from renderer.engine import memory
    from viz.app import App, AppConfig, DisplayError

    memory.retain_freed_memory()  # before the render and loader threads start

    if args.no_model:
        args.checkpoint = None
    config = AppConfig(
        checkpoint=args.checkpoint,
        device=args.device,
        interop=args.interop,
        width=args.width,
        height=args.height,
        headless=args.headless,
        debug_gl=args.debug_gl,
    )
    if args.out_dir is not None:
        config.out_dir = args.out_dir
    try:
        app = App(config)
    except DisplayError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    try:
        if args.screenshot:
            if args.checkpoint:
                app.run_until(
                    lambda: (app.model is not None and app.idle()) or app.ui.load_error is not None, timeout=600
                )
            else:
                app.run_frames(3)
            if args.checkpoint and app.model is None:
                print(f"{PROG}: error: no render to capture ({app.status_text()})", file=sys.stderr)
                return 1
            app.save_window(args.screenshot)
            app.step()
            print(f"saved {args.screenshot}")
        else:
            app.run(max_frames=args.frames)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
