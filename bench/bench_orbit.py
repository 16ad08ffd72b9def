"""Orbit benchmark (issue 6): the reference-style frame against our full-quality and interactive frames.

On the FFHQ-512 configuration with random weights (bench_engine.ffhq512_spec), one round-robin run
times, each frame from the next camera of the reference's video orbit:

(a) the baseline (renderer/reference/baseline.py): mapping + full synthesis every frame, NCHW fp32 planes,
    per-point decoder, stochastic sampling, sorted colours, NCHW super-resolution, no cache; run
    in a worker process with the C allocator as a plain Python process has it;
(b) our full-quality camera-only frame: RenderEngine on cached tri-planes, deterministic, with SR;
(c) our interactive frame while dragging: the preview level the viewer's ResolutionPolicy settles on
    during a simulated drag (same target as the viewer), in fp32 and with bf16 previews;

and prints the medians and the ratios a/b and a/c. Our frames run in this process under the
viewer's memory policy (renderer/engine/memory.py: freed buffers are reused, not page-faulted in again);
the same baseline frame is also timed here, under that policy, and printed as (a') so that the
policy's share of the ratio is visible. `--network builtin` (or a checkpoint path) also
reports that model's camera-only and interactive frames.

    python bench/bench_orbit.py [--threads 2] [--repeats 3] [--network builtin] [--no-ffhq]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout too

from bench_engine import SelfTimed, ffhq512_spec, median_times, peak_rss_mb  # noqa: E402

from renderer import load_generator  # noqa: E402
from renderer.camera import camera_tuple, default_camera  # noqa: E402
from renderer.engine import LatentSpec, RenderEngine, RenderRequest, memory  # noqa: E402
from renderer.engine.cpu import cpu_description  # noqa: E402
from renderer.export.video import orbit_camera_at  # noqa: E402
from renderer.model.generator import TriPlaneGenerator  # noqa: E402
from renderer.reference.baseline import reference_frame  # noqa: E402
from viz.resolution import Quality, ResolutionPolicy  # noqa: E402

ORBIT_FRAMES = 120
"""Cameras per orbit: each timed frame takes the next one, so no frame repeats a camera."""


def orbit_cameras(rk: dict):
    """The video orbit's cameras (25-value tuples) one after another, endlessly, starting one step off the front."""
    return (orbit_camera_at(rk, (i % ORBIT_FRAMES) / ORBIT_FRAMES) for i in itertools.count(1))


def orbit_request(rk: dict) -> RenderRequest:
    """Seed 0 at psi 0.7, seen and conditioned from the front: each orbit frame replaces its camera."""
    front = camera_tuple(default_camera(rk))
    return RenderRequest(latent=LatentSpec(seed=0), camera=front, cond_camera=front, psi=0.7)


class Orbit:
    """One latent along the orbit path, rendered through an engine as the viewer's policy asks."""

    def __init__(self, engine: RenderEngine, policy: ResolutionPolicy):
        rk = engine.G.rendering_kwargs
        self.engine, self.policy = engine, policy
        self.base = orbit_request(rk)
        self._cams = orbit_cameras(rk)
        self.stages: dict[Quality, list[dict]] = {}
        """The engine's per-stage milliseconds of every frame, by quality."""

    def render(self, quality: Quality):
        """Render the next camera at `quality` (the request as the viewer would send it); returns ms."""
        req = self.policy.request_for(dataclasses.replace(self.base, camera=next(self._cams)), quality)
        t0 = time.perf_counter()
        res = self.engine.render(req)
        self.stages.setdefault(quality, []).append(res.timings)
        return (time.perf_counter() - t0) * 1e3

    def settle_drag(self, frames: int) -> Quality:
        """Drive the policy through a simulated drag of `frames` frames; returns the level it settles on."""
        p = self.policy
        for _ in range(frames):
            now = time.perf_counter()
            p.note_input(now)
            q = p.choose(now)
            p.record(q, self.render(q))
        p.note_input(time.perf_counter())
        return p.choose(time.perf_counter())


def time_engine(G: TriPlaneGenerator, args, extra: dict | None = None) -> tuple[dict, dict]:
    """Median ms of the camera-only full frame and the settled fp32 / bf16 previews (plus `extra` fns)."""
    engine = RenderEngine(G, cache_size=2)
    orbits = {
        bf16: Orbit(
            engine, ResolutionPolicy(full_resolution=G.neural_rendering_resolution, target_ms=args.target_ms, bf16=bf16)
        )
        for bf16 in (False, True)
    }
    orbits[False].render(orbits[False].policy.full)  # mapping + backbone once: the planes are cached from here
    levels = {bf16: o.settle_drag(args.drag_frames) for bf16, o in orbits.items()}
    full = orbits[False].policy.full
    fns = dict(extra or {})
    for fn in fns.values():
        if isinstance(fn, BaselineProcess):  # our buffers come back (untimed) after each release
            fn.after = lambda: orbits[False].render(full)
    fns["camera-only"] = lambda: orbits[False].render(full)
    fns["interactive"] = lambda: orbits[False].render(levels[False])
    fns["interactive bf16"] = lambda: orbits[True].render(levels[True])
    fns["same level bf16"] = lambda: orbits[True].render(levels[False])
    t = {k: v * 1e3 for k, v in median_times(fns, args.repeats, args.warmup).items()}
    timed = orbits[False].stages[full][-args.repeats :]  # the timed rounds come last
    split = {s: statistics.median(f[s] for f in timed) for s in ("render", "superres")}
    t["camera-only split"] = split
    return t, {"interactive": levels[False].label, "interactive bf16": levels[True].label + " bf16"}


def split_text(t: dict) -> str:
    """The camera-only frame's volume-render and super-resolution medians, as text."""
    return ", ".join(f"{k} {v:.1f} ms" for k, v in t["camera-only split"].items())


def baseline_frames(G: TriPlaneGenerator):
    """A function rendering the reference-style frame of the next orbit camera (seed-0 latent, psi 0.7)."""
    rk = G.rendering_kwargs
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0))
    c_front = default_camera(rk)[None]
    cams = orbit_cameras(rk)
    return lambda: reference_frame(G, z, torch.tensor(next(cams))[None], c_front, truncation_psi=0.7)


def baseline_worker(conn, threads: int) -> None:
    """Child process: reference-style frames on request, with the allocator a plain process has."""
    torch.set_num_threads(threads)
    with torch.inference_mode():
        frame = baseline_frames(TriPlaneGenerator(ffhq512_spec()))
        while conn.recv():
            frame()
            conn.send(True)


class BaselineProcess:
    """The (a) frame in a worker process; calling it renders one frame there and waits for it.

    This process first hands its freed heap back (memory.release): on this VM, page faults, which
    dominate the baseline, get slower while another process holds gigabytes. `after` runs (untimed)
    once the frame is done, so our next timed frame does not pay for the release.
    """

    def __init__(self, threads: int):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=baseline_worker, args=(child, threads), daemon=True)
        self.proc.start()
        self.after = None

    def __call__(self) -> SelfTimed:
        memory.release()
        t0 = time.perf_counter()
        self.conn.send(True)
        self.conn.recv()
        elapsed = time.perf_counter() - t0
        if self.after is not None:
            self.after()
        return SelfTimed(elapsed)

    def close(self) -> None:
        self.conn.send(False)
        self.proc.join(timeout=30)


def ffhq(args) -> None:
    """(a), (a') (b) and (c) on the FFHQ-512 configuration, round-robin, with the ratios."""
    G = TriPlaneGenerator(ffhq512_spec())
    rk = G.rendering_kwargs
    worker = BaselineProcess(args.threads)
    baseline = {"(a) reference-style": worker, "(a') here": baseline_frames(G)}
    try:
        t, labels = time_engine(G, args, baseline)
    finally:
        worker.close()
    print(
        f"FFHQ-512 configuration, random weights, {G.num_parameters() / 1e6:.1f} M parameters, "
        f"neural rendering {G.neural_rendering_resolution}^2 -> {G.img_resolution}^2, "
        f"{rk['depth_resolution']}+{rk['depth_resolution_importance']} samples per ray"
    )
    a = t["(a) reference-style"]
    rows = [
        ("(a) reference-style frame (full synthesis, NCHW fp32, stochastic, no cache)", a),
        ("(a') the same frame under our memory policy (renderer/engine/memory.py), for reference", t["(a') here"]),
        ("(b) camera-only frame, full quality (cached planes, deterministic)", t["camera-only"]),
        (f"(c) interactive frame while dragging ({labels['interactive']})", t["interactive"]),
        (f"(c) interactive frame while dragging ({labels['interactive bf16']})", t["interactive bf16"]),
    ]
    for name, ms in rows:
        ratio = f"  a/x = {a / ms:5.2f}x" if ms != a else ""
        print(f"  {name:<84} {ms:8.1f} ms{ratio}")
    a_here = t["(a') here"]
    print(f"  (b) split: {split_text(t)}; a'/b = {a_here / t['camera-only']:.2f}x")
    print(
        f"  goals: a/b >= 4 ({'met' if a / t['camera-only'] >= 4 else 'NOT met'}), "
        f"c <= 150 ms ({'met' if min(t['interactive'], t['interactive bf16']) <= 150 else 'NOT met'})"
    )
    print(
        f"  bf16 at the fp32 preview's level: {t['same level bf16']:.1f} ms, "
        f"{t['interactive'] / t['same level bf16']:.2f}x"
    )


def network(args) -> None:
    """Camera-only and interactive frames of a loaded model (e.g. the built-in one)."""
    G = load_generator(args.network)
    t, labels = time_engine(G, args)
    print(
        f"{args.network}: {G.num_parameters() / 1e6:.2f} M parameters, planes {G.plane_resolution}^2, "
        f"neural rendering {G.neural_rendering_resolution}^2 -> {G.img_resolution}^2"
    )
    for name, label in (
        ("camera-only", "full quality"),
        ("interactive", labels["interactive"]),
        ("interactive bf16", labels["interactive bf16"]),
    ):
        print(f"  {name + ' (' + label + ')':<52} {t[name]:8.1f} ms  {1e3 / t[name]:6.1f} FPS")
    print(f"  camera-only split: {split_text(t)}")
    print(
        f"  bf16 at the fp32 preview's level: {t['same level bf16']:.1f} ms, "
        f"{t['interactive'] / t['same level bf16']:.2f}x"
    )
    print(
        f"  goals: camera-only <= 50 ms ({'met' if t['camera-only'] <= 50 else 'NOT met'}), "
        f"interactive >= 20 FPS ({'met' if t['interactive'] <= 50 else 'NOT met'})"
    )


def main() -> None:
    """Parse options, print the machine, run the FFHQ comparison and the optional network."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="timed round-robin rounds (default 3)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    ap.add_argument("--target-ms", type=float, default=100.0, help="preview frame-time target (the viewer's default)")
    ap.add_argument("--drag-frames", type=int, default=12, help="frames of the simulated drag (default 12)")
    ap.add_argument("--network", help="also time this model: 'builtin' or a checkpoint path")
    ap.add_argument("--no-ffhq", action="store_true", help="skip the FFHQ-512 comparison")
    args = ap.parse_args()
    policy = memory.retain_freed_memory()  # as the viewer does, before any thread starts
    torch.set_num_threads(args.threads)
    print(
        f"{cpu_description()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"median of {args.repeats} round-robin rounds after {args.warmup} warm-up; "
        f"memory policy {'on' if policy else 'off'} for our frames"
    )
    with torch.inference_mode():
        if not args.no_ffhq:
            ffhq(args)
        if args.network:
            network(args)
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
