"""Preview requests: the adaptive policy's reduced frames, bf16 only for previews and close to fp32."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import renderer
from renderer.camera import camera_tuple, default_camera
from renderer.engine import LatentSpec, RenderEngine, RenderRequest
from renderer.engine.cpu import cpu_bf16_units, cpu_description
from viz.resolution import ResolutionPolicy


def request(G, **kw) -> RenderRequest:
    rk = G.rendering_kwargs
    return RenderRequest(
        latent=LatentSpec(seed=1),
        camera=camera_tuple(default_camera(rk, yaw=0.3)),
        cond_camera=camera_tuple(default_camera(rk)),
        psi=0.7,
        **kw,
    )


@pytest.fixture(scope="module")
def engine(golden_native_checkpoint):
    return RenderEngine(renderer.load_generator(golden_native_checkpoint))


def test_full_quality_requests_are_never_bf16(engine):
    req = request(engine.G, depth_multiplier=2.0, importance_multiplier=1.5)
    p = ResolutionPolicy(full_resolution=128, bf16=True)
    assert p.request_for(req, p.full) is req and not req.bf16
    for q in p.previews:
        pre = p.request_for(req, q)
        assert pre.bf16 and pre.neural_rendering_resolution == q.resolution and not pre.superresolution
        assert (pre.depth_multiplier, pre.importance_multiplier) == (2.0 * q.depth_multiplier, 1.5 * q.depth_multiplier)
    p.note_input(0.0)
    assert p.request_for(req, p.choose(0.05)).bf16  # moving: a bf16 preview
    assert not p.request_for(req, p.choose(1.0)).bf16  # at rest: the full frame, in fp32
    assert not ResolutionPolicy(full_resolution=128).request_for(req, p.previews[0]).bf16  # off unless asked


def test_bf16_preview_is_close_to_fp32(engine):
    """bf16 really runs (the frame differs) and stays close: ~0.5 grey levels on average."""
    req = request(
        engine.G, neural_rendering_resolution=48, depth_multiplier=0.5, importance_multiplier=0.5, superresolution=False
    )
    a = engine.render(req)
    b = engine.render(dataclasses.replace(req, bf16=True))
    assert b.raw.dtype == b.depth.dtype == torch.float32
    defined = a.alpha >= 1e-3  # depth means something only where the ray hits something (tests/golden.py)
    for name, mean_tol, q99_tol in (("raw", 0.01, 0.1), ("alpha", 0.01, 0.1), ("depth", 0.015, 0.1)):
        d = (getattr(a, name) - getattr(b, name)).abs()
        d = (d[defined] if name == "depth" else d).flatten()
        assert 0 < d.mean() <= mean_tol and torch.quantile(d, 0.99) <= q99_tol, (name, d.mean(), d.max())


def test_cpu_bf16_units_from_cpuinfo():
    """The auto setting of the viewer's bf16 previews reads the CPU's flags."""
    info = "processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx512f avx512_bf16 amx_tile amx_bf16 sse\n"
    assert cpu_bf16_units(info) == ["amx_bf16", "avx512_bf16"]
    assert cpu_bf16_units("flags\t: fpu avx2 avx512bw\n") == [] and cpu_bf16_units("") == []


def test_cpu_description_names_the_model_and_the_isa():
    """Benchmarks' first line: model name, the ISA features that pick kernels, the CPU count."""
    info = (
        "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
    )
    assert cpu_description(info) == "CPU: AMD EPYC 9R14 (ISA: avx2 avx512f avx512_bf16; 2 logical CPUs)"
    assert (
        cpu_description("")
        == "CPU: unknown CPU (ISA: none of avx2/avx512f/avx512_bf16/amx_tile/amx_bf16; 0 logical CPUs)"
    )
    assert cpu_description().startswith("CPU: ")  # this machine's, whatever it is
