"""The CUDA-graph frame cache's logic (renderer/cuda_graphs.py), on a CPU: a stand-in capture that
replays into static output tensors, as a CUDA graph does, drives the same engine path a GPU takes."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from renderer.camera import default_camera
from renderer.cuda_graphs import FrameGraphs
from renderer.engine import LatentSpec, RenderEngine, RenderRequest, camera_tuple
from tiny_model import tiny_generator


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


def requests(G, n: int, **kw):
    rk = G.rendering_kwargs
    front = camera_tuple(default_camera(rk))
    for i in range(n):
        yield RenderRequest(latent=LatentSpec(seed=3), camera=camera_tuple(default_camera(rk, yaw=0.05 * i)),
                            cond_camera=front, psi=0.7, **kw)


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
