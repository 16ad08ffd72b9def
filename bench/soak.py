"""Soak run of the viewer: N frames of seeded random input on the small golden network (viz/soak.py).

    python bench/soak.py --frames 10000 --seed 0

Uses the X display when $DISPLAY is set, else a headless window (GLFW NULL platform + EGL).
Prints the frames run, exceptions, GL errors (glGetError after every frame), RSS after warm-up
and at the end, and GPU memory when on a GPU. Exit status 1 when a limit is broken.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

RSS_LIMIT_MB = 50.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=int, default=None, help="frames before the RSS baseline (default: 10%%)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the render thread (default 1)")
    args = p.parse_args(argv)
    if args.frames < 1:
        p.error("--frames must be at least 1")

    from golden import write_golden_native

    from renderer.engine import memory
    from renderer.engine.cpu import cpu_description
    from viz.app import App, AppConfig
    from viz.soak import Soak, SoakConfig
    from viz.state import VizState

    print(cpu_description(), flush=True)  # first: only ratios compare across CPUs
    memory.retain_freed_memory()  # as the viewer does
    with tempfile.TemporaryDirectory(prefix="triplane-soak-") as tmp:
        os.environ["TRIPLANE_VIZ_CONFIG_DIR"] = str(Path(tmp) / "config")  # keep the user's recent list
        ckpt = str(write_golden_native(Path(tmp) / "golden_small.safetensors"))
        state = VizState()
        state.view.view, state.view.neural_rendering_resolution = "raw", 32
        logs: list[str] = []
        config = SoakConfig(
            frames=args.frames,
            seed=args.seed,
            checkpoint=ckpt,
            warmup=args.warmup if args.warmup is not None else max(args.frames // 10, 1),
        )
        headless = not os.environ.get("DISPLAY")
        with App(
            AppConfig(
                checkpoint=ckpt,
                device=args.device,
                width=config.base_size[0],
                height=config.base_size[1],
                headless=headless,
                debug_gl=True,
                torch_threads=args.threads,
                out_dir=str(Path(tmp) / "out"),
                log=logs.append,
            ),
            state=state,
        ) as app:
            if not app.run_until(lambda: app.model is not None, 120):
                print(f"the model did not load: {app.status_text()}", file=sys.stderr)
                return 1
            report = Soak(app, config).run(logs)
    print(
        f"soak seed {args.seed} ({'headless EGL' if headless else 'X display ' + os.environ['DISPLAY']}, "
        f"device {args.device}): {report.summary()}"
    )
    for line in report.exceptions[:20]:
        print(f"  problem: {line.strip()}")
    for path in report.leftovers[:20]:
        print(f"  leftover file: {path}")
    ok = (
        not report.exceptions
        and report.gl_errors == 0
        and not report.leftovers
        and report.rss_growth_mb < RSS_LIMIT_MB
        and report.frames == args.frames
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
