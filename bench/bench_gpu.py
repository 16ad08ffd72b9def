"""GPU orbit benchmark (issue 6): frames presented through CUDA-GL interop against a CPU read-back.

One latent's tri-planes are cached; each frame takes the next camera of the video orbit and is
rendered at full quality (camera-only: render + super-resolution, deterministic) by the engine,
packed to RGBA8 on the device and presented into the viewer's display texture (viz.gfx.present) of a
hidden GL 3.3 window, the way the viewer shows it:

  render only   engine frame (replayed from a CUDA graph once captured), then torch.cuda.synchronize;
  render eager  the same without CUDA graphs (RenderEngine(cuda_graphs=False));
  interop       the RGBA8 frame is copied GPU -> GL texture through CUDA-GL interop;
  read-back     the RGBA8 frame goes to host memory and up with glTexSubImage2D (interop off).

The engines are built as the viewer builds its own (viz/jobs/loader.py: per-stage timing, 4 cached
latents) and run under no_grad, the viewer's mode. A presented frame is uploaded with the event
of the stream that made it (viz.gfx.present.frame_ready), drawn from the texture into the window,
then waited for on both sides: glFinish (GL) and torch.cuda.synchronize (CUDA; glFinish alone does
not wait for the interop copy). A frame time covers render, pack, copy, upload and draw (issue 14 R7).
Prints, per path, orbit FPS and frame-time percentiles (p50, p90, p99, max) over --frames frames
after --warmup, and the interop / read-back FPS ratio. Then a replay check: the captured frame of
seed 0 replayed after one frame each of two other latents (which evicts its plane lookup table from
the generator's 2-entry cache), the freed memory refilled with NaN first, against an eager render;
exit status 1 when it fails (a replay of freed memory, issue 14 D1). Defaults: the FFHQ-512
configuration with random weights (bench_engine.ffhq512_spec) on cuda. `--network builtin` or a
checkpoint path times that model; `--device cpu` runs the same loop on a CPU (the interop row then
says why it is missing, and there are no graphs to check), which is how the test suite exercises
this script.

    python bench/bench_gpu.py [--frames 300] [--warmup 30] [--device cuda] [--headless] [--network N]

Needs a display ($DISPLAY, e.g. Xvfb) or --headless (EGL). The viewer's interop needs
`pip install -e '.[cuda]'` (cuda-bindings or pycuda) and the NVIDIA GL driver for the window.
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

from bench_engine import ffhq512_spec  # noqa: E402
from bench_orbit import ORBIT_FRAMES, orbit_cameras, orbit_request  # noqa: E402

from renderer import load_generator  # noqa: E402
from renderer.engine import LatentSpec, RenderEngine, memory  # noqa: E402
from renderer.engine.cpu import cpu_description  # noqa: E402
from renderer.engine.cuda_graphs import _same  # noqa: E402
from renderer.engine.frames import pack_frame  # noqa: E402
from renderer.model.generator import TriPlaneGenerator  # noqa: E402
from viz.gfx.window import DisplayError, create_window, destroy_window, gl_info  # noqa: E402  (before glfw users)


@dataclasses.dataclass
class PathTimes:
    """Frame times (ms) of one presentation path, and why it did not run if it did not."""

    name: str
    ms: list[float] = dataclasses.field(default_factory=list)
    missing: str | None = None

    def row(self) -> str:
        if self.missing is not None:
            return f"  {self.name:<12} not run: {self.missing}"
        q = statistics.quantiles(self.ms, n=100, method="inclusive") if len(self.ms) > 1 else self.ms * 99
        fps = 1000.0 * len(self.ms) / sum(self.ms)
        return (
            f"  {self.name:<12} {fps:8.1f} FPS   p50 {q[49]:7.2f}  p90 {q[89]:7.2f}  p99 {q[98]:7.2f}  "
            f"max {max(self.ms):7.2f} ms  ({len(self.ms)} frames)"
        )

    @property
    def fps(self) -> float | None:
        return None if self.missing is not None or not self.ms else 1000.0 * len(self.ms) / sum(self.ms)


def build(args) -> TriPlaneGenerator:
    """The model to time: FFHQ-512 with random weights, or a loaded network."""
    if args.network:
        return load_generator(args.network, device=args.device)
    return TriPlaneGenerator(ffhq512_spec()).to(args.device)


class Orbit:
    """Full-quality requests for one latent along the video orbit."""

    def __init__(self, engine: RenderEngine):
        rk = engine.G.rendering_kwargs
        self.engine = engine
        self.base, self.cams = orbit_request(rk), orbit_cameras(rk)

    def request(self, **changes):
        """The next camera's request (with `changes`, e.g. another latent)."""
        return dataclasses.replace(self.base, camera=next(self.cams), **changes)

    def frame(self):
        """Render the next camera; returns the engine's RenderResult."""
        return self.engine.render(self.request())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_render_only(orbit: Orbit, frames: int, warmup: int, name: str = "render only") -> PathTimes:
    out = PathTimes(name)
    for i in range(warmup + frames):
        t0 = time.perf_counter()
        orbit.frame()
        sync(orbit.engine.device)
        if i >= warmup:
            out.ms.append((time.perf_counter() - t0) * 1e3)
    return out


def time_presented(orbit: Orbit, name: str, interop: str, frames: int, warmup: int) -> PathTimes:
    """Render, pack, upload into a Presenter's texture and draw it; each frame waited for on GL and CUDA."""
    from OpenGL import GL

    from viz.gfx.present import Presenter, frame_ready

    out = PathTimes(name)
    log: list[str] = []
    with Presenter(interop=interop, log=log.append) as presenter:
        if interop != "off" and presenter.path == "cpu-upload":
            out.missing = presenter.fallback_reason or "interop unavailable"
            return out
        for i in range(warmup + frames):
            t0 = time.perf_counter()
            res = orbit.frame()
            frame = pack_frame(res.image, res.raw, res.depth, res.alpha, "image")
            presenter.upload(frame, ready=frame_ready(frame))
            presenter.draw(0, 0, 64, 64, 64, "image")  # GL work on the texture after the copy, as the viewer does
            GL.glFinish()
            sync(orbit.engine.device)  # the CUDA copy (glFinish alone does not wait for it)
            if i >= warmup:
                out.ms.append((time.perf_counter() - t0) * 1e3)
        if presenter.path == "cpu-upload" and interop != "off":  # fell back midway
            out.missing = presenter.fallback_reason
    return out


def frame_of(res) -> tuple:
    return (
        {"image_raw": res.raw[None], "image_depth": res.depth[None], "image_alpha": res.alpha[None]},
        None if res.image is None else res.image[None],
    )


def replay_check(orbit: Orbit, eager: Orbit) -> tuple[bool, str]:
    """The captured frame replayed after two other latents evicted its lookup table, freed memory NaN-filled,
    against an eager render of the same request: (passed, the report line)."""
    engine, g = orbit.engine, orbit.engine.graphs
    if g is None:
        return True, "replay check: not run (no CUDA graphs on this device)"
    for _ in range(engine.graphs.warm_frames + 1):  # captured (again) for this key and replayed once
        engine.render(orbit.request())
    if g.current is None:
        return g.disabled is None, f"replay check: nothing captured ({g.disabled or 'no capture'})"
    rows = engine.G._plane_table(g.current.planes, 0).rows
    shape, dtype = rows.shape, rows.dtype
    del rows
    for seed in (1, 2):  # one frame each: the generator's 2-entry table cache drops seed 0's table
        engine.render(orbit.request(latent=LatentSpec(seed=seed)))
    junk = [torch.full(shape, float("nan"), dtype=dtype, device=engine.device) for _ in range(4)]
    replays = g.replays
    req = orbit.request()
    got = engine.render(req)
    del junk
    want = eager.engine.render(req)
    diff = max(
        float((a - b).abs().nan_to_num(float("inf")).max())
        for a, b in ((got.image, want.image), (got.raw, want.raw), (got.depth, want.depth))
    )
    replayed = g.replays > replays
    ok = replayed and _same(frame_of(got), frame_of(want)) and not got.nonfinite
    return ok, (
        f"replay check (seed 0 after seeds 1 and 2, freed memory NaN-filled): {'OK' if ok else 'FAIL'}, "
        f"replayed {replayed}, max |diff| vs eager {diff:.3g}, nonfinite {got.nonfinite}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300, help="timed frames per path (default 300)")
    ap.add_argument("--warmup", type=int, default=30, help="untimed frames first (default 30)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--network", help="'builtin' or a checkpoint path (default: FFHQ-512, random weights)")
    ap.add_argument("--headless", action="store_true", help="EGL window without a display")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = ap.parse_args(argv)
    if args.frames < 1 or args.warmup < 0:
        ap.error("--frames must be >= 1 and --warmup >= 0")
    print(cpu_description(), flush=True)  # first: only ratios compare across CPUs
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "bench_gpu: no CUDA device (torch.cuda.is_available() is False); use --device cpu for a dry run",
            file=sys.stderr,
        )
        return 2
    memory.retain_freed_memory()
    torch.set_num_threads(args.threads)
    try:
        window = create_window("bench_gpu", 64, 64, visible=False, headless=args.headless)
    except DisplayError as e:
        print(f"bench_gpu: {e}", file=sys.stderr)
        return 2
    try:
        G = build(args)
        engine = RenderEngine(G)  # as viz/jobs/loader.py builds the viewer's
        eager = Orbit(RenderEngine(G, cuda_graphs=False))
        orbit = Orbit(engine)
        with torch.no_grad():  # the viewer's mode
            orbit.frame()  # mapping + backbone once: the planes are cached from here
            eager.frame()
            rows = [
                time_render_only(orbit, args.frames, args.warmup),
                time_render_only(eager, args.frames, args.warmup, "render eager"),
                time_presented(orbit, "interop", "auto", args.frames, args.warmup),
                time_presented(orbit, "read-back", "off", args.frames, args.warmup),
            ]
            checked, check_line = replay_check(orbit, eager)
        name = args.network or "FFHQ-512 configuration, random weights"
        dev = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(
            f"{name}: {G.img_resolution}^2 frames (neural {G.neural_rendering_resolution}^2), full quality, "
            f"orbit of {ORBIT_FRAMES} cameras; {dev}; GL {gl_info()['GL_RENDERER']}; torch {torch.__version__}"
        )
        for r in rows:
            print(r.row())
        interop, readback = rows[2].fps, rows[3].fps
        if interop and readback:
            print(f"  interop / read-back: {interop / readback:.2f}x")
        g = engine.graphs
        print(
            f"  CUDA graphs: {'none on a CPU' if g is None else g.disabled or 'on'}"
            + (f" ({g.captures} captured, {g.replays} frames replayed)" if g is not None else "")
        )
        print(f"  {check_line}")
    finally:
        destroy_window(window)
    return 0 if checked else 1


if __name__ == "__main__":
    sys.exit(main())
