"""The CUDA-graph frame cache (renderer/engine/cuda_graphs.py).

On a CPU: stand-in captures drive the same engine path a GPU takes. `replaying_capture` re-renders
into static outputs (bookkeeping); `Tape` (tests/graph_tape.py) records the captured operations the
way a CUDA graph does, by address, and replays *those* (not a fresh render): a tensor it read but
does not own is held only weakly, so a replay after that tensor was freed raises FreedMemoryRead
(D1), and with host_syncs="raise" an operation that synchronises with the host fails the capture
as CUDA does (D2). `FakeCuda` stands in for torch.cuda in capture_cuda: per-thread current streams, and a graph
context that ends the capture before restoring the stream, as torch/cuda/graphs.py does (D2, D3).

With a CUDA device (`gpu` marker): replay vs eager on FFHQ-512 within the fp16 tolerance, D1 with
the freed memory filled with NaN, a failed real capture, and captures while another thread syncs.
Over 400 lines as one file on purpose: the CPU stand-ins and the GPU checks test the same contract.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import weakref
from pathlib import Path

import pytest
import torch
from graph_tape import FreedMemoryRead, HostSync, Tape, taped_capture
from tiny_model import tiny_generator

import renderer.engine.cuda_graphs as cg
import renderer.model.decoder as decoder
from renderer.camera import camera_tuple, default_camera
from renderer.engine import LatentSpec, RenderEngine, RenderRequest
from renderer.engine.cuda_graphs import FrameGraphs, _same, capture_cuda

ROOT = Path(__file__).resolve().parents[1]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def replaying_capture(render, camera):
    """Like capture_cuda: static camera in, static outputs written in place by each replay."""
    static = camera.clone()
    frame = render(static)

    def replay():
        out, image = render(static)
        for k, v in out.items():
            frame[0][k].copy_(v)
        if image is not None:
            frame[1].copy_(image)

    return static, replay, frame


def stale_capture(render, camera):
    """A capture whose replay does nothing: its frames would stay at the captured camera."""
    static = camera.clone()
    return static, lambda: None, render(static)


@pytest.fixture(scope="module")
def G():
    return tiny_generator()


@pytest.fixture
def gpu_shaped_decoder(monkeypatch):
    """The row decoder as a GPU runs it: no oneDNN-fused first layer (whose overflow check reads a value
    on the host: a CPU-only path)."""
    monkeypatch.setattr(decoder, "_HAS_FUSED_LINEAR", False)


def requests(G, n: int, seed: float = 3, **kw):
    rk = G.rendering_kwargs
    front = camera_tuple(default_camera(rk))
    for i in range(n):
        yield RenderRequest(
            latent=LatentSpec(seed=seed),
            camera=camera_tuple(default_camera(rk, yaw=0.05 * i)),
            cond_camera=front,
            psi=0.7,
            **kw,
        )


def same_frames(a, b) -> bool:
    return (
        torch.equal(a.image, b.image)
        and torch.equal(a.raw, b.raw)
        and torch.equal(a.depth, b.depth)
        and torch.equal(a.alpha, b.alpha)
    )


# --------------------------------------------------------------------------- bookkeeping
def test_engine_replays_after_warm_frames_and_matches_eager(G):
    eager = RenderEngine(G, cuda_graphs=False)
    graphed = RenderEngine(G)
    graphed.graphs = FrameGraphs(warm_frames=2, capture=replaying_capture)
    for i, req in enumerate(requests(G, 6)):
        a, b = eager.render(req), graphed.render(req)
        assert torch.equal(a.image, b.image) and torch.equal(a.depth, b.depth) and torch.equal(a.raw, b.raw), i
    assert graphed.graphs.captures == 1 and graphed.graphs.replays == 4 and graphed.graphs.disabled is None


def test_a_new_latent_or_option_renders_eagerly_until_warm_again(G):
    engine = RenderEngine(G)
    graphs = engine.graphs = FrameGraphs(warm_frames=2, capture=replaying_capture)
    for req in requests(G, 3):
        engine.render(req)
    assert (graphs.captures, graphs.replays) == (1, 1)
    other = [dataclasses.replace(r, latent=LatentSpec(seed=4)) for r in requests(G, 3)]
    engine.render(other[0])
    assert graphs.replays == 1  # new planes: not the captured frame
    engine.render(other[1])
    assert graphs.captures == 2
    engine.render(dataclasses.replace(other[2], depth_multiplier=0.5))
    assert graphs.replays == 1  # another sample count: eager again
    stochastic = next(requests(G, 1, sampling="stochastic", rng_seed=1))
    for _ in range(4):
        engine.render(stochastic)
    assert graphs.captures == 2  # stochastic frames are never captured


def test_a_failing_or_wrong_capture_switches_graphs_off(G):
    def broken(render, camera):
        raise RuntimeError("operation not permitted when stream is capturing")

    for capture, reason, replays in ((broken, "not permitted", 0), (stale_capture, "differs", 1)):
        engine, eager = RenderEngine(G), RenderEngine(G, cuda_graphs=False)
        engine.graphs = FrameGraphs(warm_frames=1, capture=capture)
        reqs = list(requests(G, 4))
        for req in reqs:  # the right frames throughout, the failing one included
            assert torch.equal(engine.render(req).image, eager.render(req).image)
        assert engine.graphs.disabled is not None and reason in engine.graphs.disabled
        assert engine.graphs.replays == replays and engine.graphs.current is None


def test_no_graphs_on_a_cpu_engine(G):
    assert RenderEngine(G).graphs is None


# --------------------------------------------------------------------------- the taped replay
def test_taped_replay_is_the_captured_work_and_matches_eager(G, gpu_shaped_decoder):
    """The tape replays recorded operations on the static camera (no render call): frames follow the camera."""
    eager, graphed = RenderEngine(G, cuda_graphs=False), RenderEngine(G)
    tapes: list[Tape] = []
    graphed.graphs = FrameGraphs(warm_frames=2, capture=taped_capture(tapes=tapes))
    calls = []
    real = G.render_planes
    for i, req in enumerate(requests(G, 6)):
        a = eager.render(req)
        G.render_planes = lambda *a_, **k: calls.append(1) or real(*a_, **k)
        try:
            b = graphed.render(req)
        finally:
            del G.render_planes
        assert same_frames(a, b), i
    assert (graphed.graphs.captures, graphed.graphs.replays, graphed.graphs.disabled) == (1, 4, None)
    # frame 0 eager; frame 1 eager, then two warm-up calls and the captured one; frame 2 a replay checked by
    # one eager render; frames 3-5 replays alone: no render_planes call
    assert len(calls) == 1 + (1 + 2 + 1) + 1 and len(tapes) == 1 and len(tapes[0].ops) > 50


def evict_and_return(G, engine, eager, **kw):
    """Capture seed 3, visit seeds 4 and 5 for one frame each (the generator's 2-entry table LRU drops
    seed 3's lookup table; the engine's 4-entry plane cache keeps its planes), come back to seed 3."""
    reqs = list(requests(G, 4, **kw))
    for req in reqs[:3]:
        engine.render(req)
    assert (engine.graphs.captures, engine.graphs.replays) == (1, 1)
    table = G._plane_table(engine.graphs.current.planes, 0)
    pointers = {name: getattr(table, name).data_ptr() for name in ("rows", "proj", "size", "corner_rows")}
    table = weakref.ref(table)  # no reference of this test's keeps it alive
    for seed in (4, 5):
        engine.render(dataclasses.replace(reqs[0], latent=LatentSpec(seed=seed)))
    assert all(entry[1] is not table() for entry in G._tables.values())  # evicted from the LRU
    replays = engine.graphs.replays
    return pointers, engine.render(reqs[3]), eager.render(reqs[3]), engine.graphs.replays - replays


def test_the_tape_sees_a_replay_of_a_freed_plane_table(G, gpu_shaped_decoder, monkeypatch):
    """D1 as it was: without the graph's own references, the evicted table is freed before the replay."""
    monkeypatch.setattr(cg._Pins, "recording", lambda self, render: render)
    engine, eager = RenderEngine(G), RenderEngine(G, cuda_graphs=False)
    tapes: list[Tape] = []
    engine.graphs = FrameGraphs(warm_frames=2, capture=taped_capture(tapes=tapes))
    with pytest.raises(FreedMemoryRead, match="freed since the capture"):
        evict_and_return(G, engine, eager)


@pytest.mark.parametrize("bf16", [False, True])
def test_a_graph_owns_every_tensor_whose_address_it_baked_in(G, gpu_shaped_decoder, bf16):
    """D1 fixed: the captured frame holds every tensor the captured operations read but did not make, the
    plane table included, so a replay after the table left the LRU reads live memory and matches eager."""
    engine, eager = RenderEngine(G), RenderEngine(G, cuda_graphs=False)
    tapes: list[Tape] = []
    engine.graphs = FrameGraphs(warm_frames=2, capture=taped_capture(tapes=tapes))
    table, got, want, replayed = evict_and_return(G, engine, eager, bf16=bf16)
    assert replayed == 1 and same_frames(got, want)
    kept = {t.data_ptr() for t in engine.graphs.current.keep}
    baked = tapes[0].pointers()
    assert set(table.values()) <= baked  # the lookup table's addresses are baked in: what D1 is about
    assert baked <= kept, "tensors baked in by address but not held by the graph"


def test_the_captured_frame_has_no_host_synchronisation(G, gpu_shaped_decoder):
    """The frame a GPU captures (render + super-resolution) runs nothing that needs the host: a strict tape
    (an item(), bool(tensor), nonzero or boolean mask raises, as inside a CUDA capture) captures it."""
    engine = RenderEngine(G)
    engine.graphs = FrameGraphs(warm_frames=2, capture=taped_capture(host_syncs="raise"))
    for req in requests(G, 4):
        engine.render(req)
    assert engine.graphs.disabled is None, engine.graphs.disabled
    assert (engine.graphs.captures, engine.graphs.replays) == (1, 2)


def test_auto_ray_limits_are_not_captured(gpu_shaped_decoder):
    """'auto' ray limits pick their range with data-dependent indexing (a host sync inside a capture: D2):
    such frames render eagerly, graphs stay on and are never tried."""
    G = tiny_generator(ray_start="auto", ray_end="auto")
    planes_engine = RenderEngine(G, cuda_graphs=False)
    req = next(requests(G, 1))
    ws = planes_engine.ws_for(req)
    planes, _ = planes_engine.planes_for(req, ws)
    camera = torch.tensor([req.camera])
    with pytest.raises(HostSync), Tape("raise"):  # why: the strict tape refuses this frame
        G.render_planes(planes, ws, camera, superresolution=False, ray_range=G.ray_range_for(req.camera))
    engine, eager = RenderEngine(G), RenderEngine(G, cuda_graphs=False)
    engine.graphs = FrameGraphs(warm_frames=1, capture=taped_capture(host_syncs="raise"))
    for r in requests(G, 3):
        assert same_frames(engine.render(r), eager.render(r))
    assert (engine.graphs.captures, engine.graphs.replays, engine.graphs.disabled) == (0, 0, None)


def test_a_changed_precision_setting_is_captured_anew(G):
    engine = RenderEngine(G)
    graphs = engine.graphs = FrameGraphs(warm_frames=2, capture=replaying_capture)
    reqs = list(requests(G, 6))
    for req in reqs[:3]:
        engine.render(req)
    assert (graphs.captures, graphs.replays) == (1, 1)
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = not before
    try:
        engine.render(reqs[3])
        assert graphs.replays == 1  # the old capture was made under the other setting
        engine.render(reqs[4])
        engine.render(reqs[5])
        assert (graphs.captures, graphs.replays) == (2, 2)
    finally:
        torch.backends.cudnn.allow_tf32 = before


def test_replay_tolerance_follows_each_outputs_precision():
    """R1: 1e-3 on the fp32 render outputs, 8 fp16 units (one 8-bit display step) on the super-resolved image."""
    out = {k: torch.linspace(-1, 1, 64).reshape(1, 1, 8, 8) for k in ("image_raw", "image_depth", "image_alpha")}
    image = torch.linspace(-1, 1, 48).reshape(1, 3, 4, 4)

    def frame(raw_delta=0.0, image_delta=0.0, dtype=torch.float32):
        o = {k: (v + (raw_delta if k == "image_raw" else 0)).to(dtype) for k, v in out.items()}
        return o, image + image_delta

    ref = frame()
    assert _same(ref, frame(image_delta=6e-3))  # a few fp16 units on the image: cuDNN's choice of algorithm
    assert not _same(ref, frame(image_delta=2e-2))
    assert _same(ref, frame(raw_delta=9e-4)) and not _same(ref, frame(raw_delta=5e-3))
    assert _same(frame(dtype=torch.bfloat16), frame(raw_delta=3e-2, dtype=torch.bfloat16))  # bf16 previews
    assert not _same(ref, (out, None)) and not _same(ref, frame(raw_delta=float("nan")))


# --------------------------------------------------------------------------- capture_cuda with a torch.cuda stand-in
class FakeStream:
    def __init__(self, name: str):
        self.name = name
        self.waited: list = []

    def wait_stream(self, other) -> None:
        self.waited.append(other)

    def __repr__(self) -> str:
        return f"<stream {self.name}>"


class FakeCuda:
    """torch.cuda as capture_cuda uses it. Current streams are per thread; graph(...).__exit__ ends the capture
    and then restores the stream ('torch', the order of torch/cuda/graphs.py) or the other way round."""

    def __init__(self, exit_order: str = "torch"):
        self.exit_order = exit_order
        self.default = FakeStream("default")
        self._local = threading.local()
        self._lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.graphs: list = []

    # streams
    def current_stream(self, device=None):
        return getattr(self._local, "stream", self.default)

    def set_stream(self, stream) -> None:
        self._local.stream = stream

    def Stream(self, device=None):  # noqa: N802 - torch's name
        return FakeStream(f"side-{threading.get_ident()}")

    @contextlib.contextmanager
    def stream(self, stream):
        before = self.current_stream()
        self.set_stream(stream)
        try:
            yield
        finally:
            self.set_stream(before)

    def device(self, device):
        return contextlib.nullcontext()

    # graphs
    def CUDAGraph(self):  # noqa: N802
        fake = self

        class Graph:
            replayed = 0

            def capture_begin(self, stream, mode):
                self.stream, self.mode, self.invalid = stream, mode, False
                with fake._lock:
                    fake.active += 1
                    fake.max_active = max(fake.max_active, fake.active)
                fake._local.capturing = self

            def capture_end(self):
                fake._local.capturing = None
                with fake._lock:
                    fake.active -= 1
                if self.invalid:
                    raise RuntimeError("CUDA error: operation failed due to a previous error during capture")

            def replay(self):
                self.replayed += 1

        return Graph()

    def capturing(self):
        return getattr(self._local, "capturing", None)

    def host_sync(self) -> None:
        """What .item() does: not permitted while this thread's stream is capturing."""
        g = self.capturing()
        if g is not None:
            g.invalid = True
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")

    def graph(self, g, stream=None, capture_error_mode="global"):
        fake = self
        capture_stream = stream if stream is not None else FakeStream("torch's shared capture stream")

        class Capture:
            def __enter__(self):
                self.before = fake.current_stream()
                fake.set_stream(capture_stream)
                g.capture_begin(capture_stream, capture_error_mode)
                fake.graphs.append(g)

            def __exit__(self, *exc):
                if fake.exit_order == "torch":
                    g.capture_end()
                    fake.set_stream(self.before)
                else:
                    fake.set_stream(self.before)
                    g.capture_end()

        return Capture()


def fake_frame(fake: FakeCuda, sync_in_capture: bool = False):
    def render(camera):
        if sync_in_capture:
            fake.host_sync()
        return {"image_raw": camera * 2}, None

    return render


def test_the_stand_in_leaves_the_capture_stream_current_like_torch():
    """Sanity of FakeCuda: torch's graph context, failing inside, leaves its stream current (D2 as it was)."""
    fake = FakeCuda("torch")
    side = FakeStream("side")
    with pytest.raises(RuntimeError, match="during capture"):
        with fake.graph(fake.CUDAGraph(), stream=side):
            fake.host_sync()
    assert fake.current_stream() is side


@pytest.mark.parametrize("exit_order", ["torch", "stream first"])
def test_a_capture_that_fails_inside_leaves_the_callers_stream_current(exit_order):
    fake = FakeCuda(exit_order)
    render_stream = FakeStream("render thread's")
    fake.set_stream(render_stream)
    with pytest.raises(RuntimeError, match="capture"):
        capture_cuda(fake_frame(fake, sync_in_capture=True), torch.zeros(1, 25), cuda=fake)
    assert fake.current_stream() is render_stream and fake.active == 0
    static, replay, frame = capture_cuda(fake_frame(fake), torch.ones(1, 25), cuda=fake)  # the next one works
    assert fake.current_stream() is render_stream and torch.equal(static, torch.ones(1, 25))


def test_a_failed_capture_through_the_engine_renders_eagerly_on_the_callers_stream(G):
    fake = FakeCuda("torch")
    render_stream = FakeStream("render thread's")
    fake.set_stream(render_stream)

    def capture(render, camera):
        def syncing(c):
            frame = render(c)
            fake.host_sync()  # e.g. .item() in the captured work
            return frame

        return capture_cuda(syncing, camera, cuda=fake)

    engine, eager = RenderEngine(G), RenderEngine(G, cuda_graphs=False)
    engine.graphs = FrameGraphs(warm_frames=2, capture=capture)
    for req in requests(G, 4):
        assert same_frames(engine.render(req), eager.render(req))
        assert fake.current_stream() is render_stream
    assert "during capture" in engine.graphs.disabled and engine.graphs.captures == 0


def test_capture_runs_on_a_stream_of_its_own_in_thread_local_mode():
    fake = FakeCuda()
    caller = fake.current_stream()
    streams = []

    def render(camera):
        streams.append(fake.current_stream())
        return {"image_raw": camera + 1}, None

    capture_cuda(render, torch.zeros(1, 25), warmup=2, cuda=fake)
    (g,) = fake.graphs
    assert g.mode == "thread_local"
    assert streams[0] is streams[1] is streams[2] is g.stream  # warm-up and capture on the side stream
    assert g.stream is not caller and "side" in g.stream.name
    assert g.stream.waited == [caller] and caller.waited == [g.stream]  # ordered with the caller's work


def test_captures_are_serialised_across_threads():
    """D3: a capture on another thread waits until this one has ended (torch: one capture at a time)."""
    fake = FakeCuda()
    a_inside, b_inside = threading.Event(), threading.Event()
    errors: list = []
    overlapped: list = []

    def render_a(camera):
        if fake.capturing() is not None:
            a_inside.set()
            overlapped.append(b_inside.wait(timeout=0.5))  # B must not get in while A captures
        return {"image_raw": camera}, None

    def render_b(camera):
        if fake.capturing() is not None:
            b_inside.set()
        return {"image_raw": camera}, None

    def run(render):
        try:
            capture_cuda(render, torch.zeros(1, 25), cuda=fake)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    a = threading.Thread(target=run, args=(render_a,))
    a.start()
    assert a_inside.wait(timeout=30)
    b = threading.Thread(target=run, args=(render_b,))
    b.start()
    a.join(timeout=60)
    b.join(timeout=60)
    assert not errors and overlapped == [False] and b_inside.is_set()
    assert fake.max_active == 1 and len(fake.graphs) == 2


# --------------------------------------------------------------------------- on a GPU
@pytest.fixture(scope="module")
def ffhq():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_engine import ffhq512_spec

    from renderer.model.generator import TriPlaneGenerator

    torch.manual_seed(0)
    return TriPlaneGenerator(ffhq512_spec()).cuda()


def orbit(G, n: int, seed: float = 0, start: int = 1):
    from renderer.export.video import orbit_camera_at

    rk = G.rendering_kwargs
    front = camera_tuple(default_camera(rk))
    return [
        RenderRequest(
            latent=LatentSpec(seed=seed), camera=camera_tuple(orbit_camera_at(rk, i / 40)), cond_camera=front, psi=0.7
        )
        for i in range(start, start + n)
    ]


def frame_of(res):
    return (
        {"image_raw": res.raw[None], "image_depth": res.depth[None], "image_alpha": res.alpha[None]},
        res.image[None] if res.image is not None else None,
    )


def max_diff(a, b) -> float:
    return float((a.float() - b.float()).abs().nan_to_num(float("inf")).max())


@pytest.mark.gpu
@cuda
def test_gpu_replay_matches_eager_within_fp16_tolerance(ffhq):
    engine, eager = RenderEngine(ffhq, timed=False), RenderEngine(ffhq, timed=False, cuda_graphs=False)
    default = torch.cuda.current_stream()
    with torch.no_grad():
        for req in orbit(ffhq, 8):
            a, b = engine.render(req), eager.render(req)
            assert _same(frame_of(a), frame_of(b)), (max_diff(a.image, b.image), max_diff(a.raw, b.raw))
            assert not a.nonfinite
    g = engine.graphs
    assert (g.captures, g.replays, g.disabled) == (1, 6, None)
    assert torch.cuda.current_stream() == default


@pytest.mark.gpu
@cuda
def test_gpu_replay_after_the_table_is_evicted_reads_live_memory(ffhq):
    """D1 made visible: the blocks freed by evicting seed 0's table are refilled with NaN before coming back."""
    engine, eager = RenderEngine(ffhq, timed=False), RenderEngine(ffhq, timed=False, cuda_graphs=False)
    reqs = orbit(ffhq, 4)
    with torch.no_grad():
        for req in reqs[:3]:
            engine.render(req)
        assert engine.graphs.captures >= 1 and engine.graphs.current is not None
        rows = ffhq._plane_table(engine.graphs.current.planes, 0).rows
        shape, dtype = rows.shape, rows.dtype
        del rows
        for seed in (1, 2):
            engine.render(dataclasses.replace(reqs[0], latent=LatentSpec(seed=seed)))
        junk = [torch.full(shape, float("nan"), dtype=dtype, device="cuda") for _ in range(4)]
        replays = engine.graphs.replays
        got = engine.render(reqs[3])
        del junk
        want = eager.render(reqs[3])
    assert engine.graphs.replays == replays + 1
    assert not got.nonfinite and _same(frame_of(got), frame_of(want)), max_diff(got.image, want.image)


@pytest.mark.gpu
@cuda
def test_gpu_failed_capture_restores_the_stream():
    before = torch.cuda.current_stream()
    x = torch.zeros(1, 25, device="cuda")
    with pytest.raises(Exception):  # noqa: B017  (whatever CUDA raises for a sync inside a capture)
        capture_cuda(lambda c: ({"image_raw": c + float(c.sum().item())}, None), x)
    assert torch.cuda.current_stream() == before
    assert float((x + 1).sum()) == 25.0  # the context is alive and ordered


@pytest.mark.gpu
@cuda
def test_gpu_captures_while_another_thread_synchronises():
    """D3: thread-local capture mode: another thread's copies and device synchronisations are not errors."""
    x = torch.randn(1024, 1024, device="cuda")
    errors, stop = [], threading.Event()

    def other():
        while not stop.is_set():
            try:
                torch.randn(1 << 18, device="cuda").cpu()
                torch.cuda.synchronize()
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
                return

    t = threading.Thread(target=other)
    t.start()
    outcomes = []
    try:
        for _ in range(5):
            try:
                static, replay, frame = capture_cuda(
                    lambda c: ({"image_raw": (x @ x).sum() + c}, None), torch.zeros(1, 25, device="cuda")
                )
                replay()
                outcomes.append(float(frame[0]["image_raw"][0, 0]) == float((x @ x).sum()))
            except Exception as e:  # noqa: BLE001 - counted below
                outcomes.append(repr(e))
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert all(o is True for o in outcomes), outcomes
