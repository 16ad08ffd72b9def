"""What the inspector costs: a camera-only frame with its layers kept vs without, and a density-slice move.

FFHQ-512 configuration with random weights (bench_engine.ffhq512_spec; timings do not depend on the weights),
image view (super-resolution on), full quality. Side by side in one run, round-robin:

* plain: the viewer's render job for a camera-only frame (planes cached), as with the inspector closed;
* inspector: the same job keeping its render-side layers (the layers tab open: super-resolution blocks recorded
  by thread-local hooks during the frame, the decoder's hidden features at one point per ray, CPU copies);
* second render: the straightforward way, the plain frame followed by a separate capture_render of the same
  camera (what the inspector would cost if it rendered its own copy of each frame);

then a slice move: `density_slice` at 256^2 from the cached planes plus its coloured image, FFHQ and built-in.

    python bench/bench_inspector.py [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout too
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import ffhq512_spec, median_times  # noqa: E402

from renderer import load_generator  # noqa: E402
from renderer.camera import camera_tuple, default_camera, default_focal, orbit_camera  # noqa: E402
from renderer.engine import LatentSpec, RenderEngine, RenderRequest  # noqa: E402
from renderer.engine.cpu import cpu_description  # noqa: E402
from renderer.export.mesh import default_level  # noqa: E402
from renderer.inspect.layers import capture_render  # noqa: E402
from renderer.inspect.slices import SliceSpec, density_slice, slice_image  # noqa: E402
from renderer.model.generator import TriPlaneGenerator  # noqa: E402
from viz.session import RenderJob, render_job  # noqa: E402


def camera_only_jobs(G, repeats: int) -> dict[str, float]:
    """Median seconds of a camera-only frame: plain, with its layers kept, and plain + a second render."""
    engine = RenderEngine(G, timed=False)
    rk = G.rendering_kwargs
    pivot = tuple(rk.get("avg_camera_pivot", (0, 0, 0)))
    focal = default_focal(rk)
    cams = [
        camera_tuple(orbit_camera(0.3 * i - 0.6, 0.05, rk["avg_camera_radius"], pivot, focal=focal)) for i in range(5)
    ]
    req = RenderRequest(LatentSpec(seed=0), cams[0], cams[0], psi=0.7)
    engine.render(req)  # planes cached: every timed frame is camera-only
    state = {"i": 0}

    def job(capture: bool) -> RenderJob:
        state["i"] += 1
        r = dataclasses.replace(req, camera=cams[state["i"] % len(cams)], stamp=state["i"])
        return RenderJob(state["i"], r, "image", None, engine, 0, capture=capture)

    def plain():
        render_job(job(False), lambda: False)

    def inspector():
        out = render_job(job(True), lambda: False)
        assert out.layers is not None

    def second_render():
        out = render_job(job(False), lambda: False)
        capture_render(G, out.result.planes, out.result.ws, out.job.request.camera)

    return median_times({"plain": plain, "inspector": inspector, "second render": second_render}, repeats, 1)


def slice_move(G, resolution: int, repeats: int) -> float:
    """Median seconds of one slice move (a new position) at resolution^2: sampling plus the coloured image."""
    engine = RenderEngine(G, timed=False)
    cam = camera_tuple(default_camera(G.rendering_kwargs))
    res = engine.render(RenderRequest(LatentSpec(seed=0), cam, cam, psi=0.7, superresolution=False))
    planes, level = res.planes, default_level(G)
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        sl = density_slice(G, planes, SliceSpec("z", -0.2 + 0.1 * i, resolution))
        slice_image(sl, level)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_description()}; torch {torch.__version__}, {args.threads} threads")
    G = TriPlaneGenerator(ffhq512_spec())
    t = camera_only_jobs(G, args.repeats)
    base = t["plain"]
    print("FFHQ-512 (random weights), camera-only frame at 128 -> 512, image view:")
    for name, s in t.items():
        print(f"  {name:14s} {s * 1000:8.0f} ms   x{s / base:.3f}")
    print(
        f"  the inspector's layers add {100 * (t['inspector'] / base - 1):+.1f}% to a camera-only frame "
        f"(a second render would add {100 * (t['second render'] / base - 1):+.1f}%)"
    )
    for name, model in (("FFHQ-512", G), ("built-in", load_generator("builtin"))):
        ms = slice_move(model, 256, args.repeats * 2) * 1000
        print(f"slice move at 256^2 ({name}): {ms:.0f} ms (sampling the cached planes + colour map and contour)")


if __name__ == "__main__":
    main()
