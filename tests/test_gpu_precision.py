"""Precision policy on GPUs (issue 14 R3, R4): TF32 and fp16, and the lookup's exactness check.

The renderer leaves torch's precision settings as the user has them. With torch's defaults, fp32
cuDNN convolutions (the backbone's, the FIR upsampling of the super-resolution's RGB) run in TF32 on
Ampere and Hopper GPUs, while fp32 matmuls stay fp32; the super-resolution blocks run in fp16 on CUDA
as the reference's do.
The tri-plane lookup's coordinate and row arithmetic must be exact whatever the settings:
`_exact_fp32_matmul` reads every setting torch has (tested here on any CPU, for old and new torch).
With a CUDA device (`gpu` marker): the lookup under TF32 settings, and the render and the fp16 / fp32
super-resolution against a CPU fp32 render, with cuDNN's TF32 on and off.
"""

from __future__ import annotations

import copy
import sys
import types
from pathlib import Path

import pytest
import torch

import renderer.model.decoder as decoder
from renderer.model.decoder import fp32_matmul_settings, lookup, plane_table, reference_plane_axes

ROOT = Path(__file__).resolve().parents[1]
NEW_API = [
    "fp32_precision",
    "cuda.matmul.fp32_precision",
    "cudnn.fp32_precision",
    "cudnn.conv.fp32_precision",
    "mkldnn.fp32_precision",
    "mkldnn.matmul.fp32_precision",
    "mkldnn.conv.fp32_precision",
]


def _path(name: str):
    *parents, leaf = name.split(".")
    obj = torch.backends
    for p in parents:
        obj = getattr(obj, p)
    return obj, leaf


@pytest.fixture
def settings():
    """Restores torch's global precision settings (legacy and new API) whatever the test sets; they must
    read as before afterwards."""
    has_new = hasattr(torch.backends.cuda.matmul, "fp32_precision")
    new = {n: getattr(*_path(n)) for n in NEW_API} if has_new else {}
    legacy = (
        torch.get_float32_matmul_precision(),
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    yield
    torch.set_float32_matmul_precision(legacy[0])
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = legacy[1:]
    for n, v in new.items():
        setattr(*_path(n), v)
    assert {n: getattr(*_path(n)) for n in new} == new
    assert (
        torch.get_float32_matmul_precision(),
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    ) == legacy


def exact(device_type: str) -> bool:
    return decoder._exact_fp32_matmul(device_type)


def test_defaults_are_exact(settings):
    assert exact("cuda") and exact("cpu")
    assert fp32_matmul_settings("cuda")["float32_matmul_precision"] == "highest"


@pytest.mark.parametrize("level", ["high", "medium"])
def test_legacy_matmul_precision_is_read(settings, level):
    torch.set_float32_matmul_precision(level)
    assert not exact("cuda") and not exact("cpu")


def test_legacy_allow_tf32_is_read(settings):
    torch.backends.cuda.matmul.allow_tf32 = True
    assert not exact("cuda")


@pytest.mark.skipif(not hasattr(torch.backends.cuda.matmul, "fp32_precision"), reason="torch < 2.9")
def test_new_api_settings_are_read(settings):
    torch.backends.cuda.matmul.fp32_precision = "tf32"  # the legacy getters now refuse to read: the leaf decides
    assert fp32_matmul_settings("cuda")["float32_matmul_precision"] == "unreadable"
    assert not exact("cuda") and exact("cpu")
    torch.backends.cuda.matmul.fp32_precision = "ieee"
    assert exact("cuda")
    torch.backends.mkldnn.matmul.fp32_precision = "bf16"
    assert not exact("cpu")
    torch.backends.mkldnn.matmul.fp32_precision = "none"
    torch.backends.cuda.matmul.fp32_precision = "none"
    torch.backends.fp32_precision = "tf32"  # the global default, inherited by 'none'
    assert not exact("cuda") and not exact("cpu")


@pytest.mark.parametrize(
    "tf32, level, expected",
    [(False, "highest", True), (True, "highest", False), (False, "high", False), (False, "medium", False)],
)
def test_old_torch_without_the_new_api(monkeypatch, tf32, level, expected):
    """torch 2.1-2.8 have no fp32_precision: the legacy settings alone decide (the review's R3 case, where
    reading only fp32_precision said 'exact' under allow_tf32=True)."""
    fake = types.SimpleNamespace(
        get_float32_matmul_precision=lambda: level,
        backends=types.SimpleNamespace(
            cuda=types.SimpleNamespace(matmul=types.SimpleNamespace(allow_tf32=tf32)),
            mkldnn=types.SimpleNamespace(matmul=types.SimpleNamespace()),
        ),
    )
    monkeypatch.setattr(decoder, "torch", fake)
    assert set(fp32_matmul_settings("cuda")) == {"float32_matmul_precision", "cuda.matmul.allow_tf32"}
    assert exact("cuda") is expected
    assert exact("cpu") is (level == "highest")


def test_unreadable_legacy_setting_without_the_new_api_is_inexact(monkeypatch):
    def refuse():
        raise RuntimeError("mix of the legacy and new APIs")

    fake = types.SimpleNamespace(
        get_float32_matmul_precision=refuse,
        backends=types.SimpleNamespace(cuda=types.SimpleNamespace(matmul=types.SimpleNamespace(allow_tf32=False))),
    )
    monkeypatch.setattr(decoder, "torch", fake)
    assert not exact("cuda")


# --------------------------------------------------------------------------- on a GPU
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def max_diff(a, b) -> float:
    return float((a.float().cpu() - b.float().cpu()).abs().nan_to_num(float("inf")).max())


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("setting", ["high", "medium", "allow_tf32"])
def test_gpu_lookup_exact_under_reduced_matmul_precision(settings, setting):
    gen = torch.Generator().manual_seed(2)
    table = plane_table(reference_plane_axes().cuda(), torch.randn(3, 32, 256, 256, generator=gen).cuda(), 1.0)
    pts = (torch.rand(200_000, 3, generator=gen) - 0.5).cuda()
    want = lookup(table, pts)
    if setting == "allow_tf32":
        torch.backends.cuda.matmul.allow_tf32 = True
    else:
        torch.set_float32_matmul_precision(setting)
    assert not decoder._exact_fp32_matmul("cuda")
    assert torch.equal(lookup(table, pts), want)


@pytest.fixture(scope="module")
def ffhq_cpu():
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_engine import ffhq512_spec

    from renderer.camera import default_camera
    from renderer.engine import seed_z
    from renderer.export.video import orbit_camera_at
    from renderer.model.generator import TriPlaneGenerator

    torch.manual_seed(0)
    G = TriPlaneGenerator(ffhq512_spec())
    rk = G.rendering_kwargs
    with torch.no_grad():
        ws = G.mapping(
            torch.from_numpy(seed_z(0, G.z_dim)), default_camera(rk).reshape(1, 25).float(), truncation_psi=0.7
        )
        planes = G.planes(ws)
        cam = torch.as_tensor(orbit_camera_at(rk, 3 / 40), dtype=torch.float32).reshape(1, 25)
        ref = G.render_planes(planes, ws, cam)
    return G, ws, planes, cam, ref


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("tf32", [False, True])
def test_gpu_render_and_fp16_superresolution_against_cpu_fp32(ffhq_cpu, settings, tf32, capsys):
    """Same planes, ws and camera: CUDA vs CPU fp32. The volume render has no convolutions (fp32 matmuls
    stay fp32 by default); the SR runs fp16 blocks on CUDA. TF32 (cuDNN's default) touches convolutions only."""
    G, ws, planes, cam, ref = ffhq_cpu
    torch.backends.cudnn.allow_tf32 = tf32
    g = copy.deepcopy(G).cuda()
    with torch.no_grad():
        out = g.render_planes(planes.cuda(), ws.cuda(), cam.cuda())
        for blk in (g.superresolution.block0, g.superresolution.block1):
            blk.use_fp16 = False
        out32 = g.render_planes(planes.cuda(), ws.cuda(), cam.cuda())
        planes_gpu = g.planes(ws.cuda())
    scale = float(ref["image"].std())
    d_raw, d16, d32 = (
        max_diff(out["image_raw"], ref["image_raw"]),
        max_diff(out["image"], ref["image"]),
        max_diff(out32["image"], ref["image"]),
    )
    mean16 = float((out["image"].float().cpu() - ref["image"]).abs().mean())
    with capsys.disabled():
        print(
            f"\n[precision] cudnn.allow_tf32={tf32}: raw max|d| {d_raw:.3g}; image fp16 SR max|d| {d16:.3g} "
            f"mean|d| {mean16:.3g}; image fp32 SR max|d| {d32:.3g}; planes max|d| "
            f"{max_diff(planes_gpu, planes):.3g} (image std {scale:.3g})"
        )
    assert d_raw < 1e-3
    assert mean16 < 0.02 * scale and d16 < 0.25 * scale  # fp16 blocks: a few fp16 units, not a wrong path
    if not tf32:
        assert d32 < 1e-3 * max(1.0, scale)  # fp32 SR without TF32: CPU parity
    else:
        assert d32 < 0.05 * scale
