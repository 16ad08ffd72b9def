"""The fit's newton phase: the Levenberg-Marquardt solver on problems with known answers, and its place in a
Fitter (steps, cancel, a fit continued from its state)."""

from __future__ import annotations

import copy
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_fit import _target

from renderer.errors import Cancelled
from renderer.fit import CameraGuess, FitSettings, Fitter
from renderer.fit import newton as newton_module
from renderer.fit.fit import w_basis
from renderer.fit.newton import LevenbergMarquardt, fp32_twin, full_fp32


def _solver(residual, n: int, h: float = 1e-4, unit: float = 1.0, cancel=None) -> LevenbergMarquardt:
    return LevenbergMarquardt(residual, torch.full((n,), h), torch.full((n,), unit), cancel)


@pytest.mark.parametrize("rows_per_block", [65536, 7])
def test_a_linear_problem_is_solved_once_the_damping_is_small(monkeypatch, rows_per_block):
    # r(x) = M x - b: Gauss-Newton's step is the least-squares solution itself; damped, the first step stops
    # short of it, and as the damping falls tenfold per accepted step the iterates reach it (J^T J and J^T r
    # summed over row blocks, here one block or six)
    monkeypatch.setattr(newton_module, "ROWS_PER_BLOCK", rows_per_block)
    g = torch.Generator().manual_seed(0)
    M = torch.randn(40, 6, generator=g)
    b = torch.randn(40, generator=g)
    best = torch.linalg.lstsq(M.double(), b.double()[:, None]).solution[:, 0].float()
    optimum = float((M.double() @ best.double() - b.double()).square().sum())
    lm = _solver(lambda x: M @ x - b, 6, h=1e-2)
    x, first = lm.step(torch.zeros(6))
    assert first > optimum * (1 + 1e-4) and lm.damping == pytest.approx(0.005)
    losses = [first]
    for _ in range(3):
        x, loss = lm.step(x)
        losses.append(loss)
    assert all(b_ <= a for a, b_ in zip(losses, losses[1:], strict=False)), losses
    assert losses[-1] == pytest.approx(optimum, rel=1e-6)
    assert torch.allclose(x, best, atol=1e-4), (x - best).abs().max()


def test_full_fp32_turns_tf32_off_on_cuda_only_and_puts_it_back():
    # the flags are plain process-wide settings, readable and writable without a GPU
    b = torch.backends
    saved = (b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32)
    try:
        b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32 = True, True
        with pytest.raises(KeyError), full_fp32(torch.device("cuda")):
            assert (b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32) == (False, False)
            raise KeyError  # an error inside (a cancelled Jacobian) still puts the flags back
        assert (b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32) == (True, True)
        with full_fp32(torch.device("cpu")):
            assert (b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32) == (True, True)
    finally:
        b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32 = saved


def test_every_residual_of_a_step_is_taken_in_full_fp32(monkeypatch):
    # the Jacobian's forward differences and the damped trials alike, on the parameters' device
    from contextlib import contextmanager

    inside, devices, outside_calls = [False], [], []

    @contextmanager
    def recording(device):
        devices.append(device)
        inside[0] = True
        try:
            yield
        finally:
            inside[0] = False

    monkeypatch.setattr(newton_module, "full_fp32", recording)

    def residual(p):
        if not inside[0]:
            outside_calls.append(p)
        return torch.stack([10 * (p[1] - p[0] ** 2), 1 - p[0]])

    lm = _solver(residual, 2, h=1e-5)
    lm.damping = 1e6  # the first trials fail: the damped trials run too
    lm.step(torch.tensor([-1.2, 1.0]))
    assert devices == [torch.device("cpu")] and not outside_calls


def test_rosenbrocks_valley_is_followed_to_its_end():
    # residuals (10 (y - x^2), 1 - x), zero at (1, 1) at the end of a curved valley: each step never raises
    # the loss and the solver reaches the answer; a wrong Jacobian column (the sign of the curvature term)
    # or a damping that never relaxes fails to get there in 25 iterations
    def residual(p):
        return torch.stack([10 * (p[1] - p[0] ** 2), 1 - p[0]])

    lm = _solver(residual, 2, h=1e-5)
    x = torch.tensor([-1.2, 1.0])
    losses = []
    for _ in range(25):
        x, loss = lm.step(x)
        losses.append(loss)
    assert all(b <= a for a, b in zip(losses, losses[1:], strict=False))
    assert torch.allclose(x, torch.ones(2), atol=1e-3), x


def test_the_units_set_where_the_damping_holds_a_parameter_back():
    # two parameters the residual sees alike; the one with the smaller unit moves less under the same damping
    lm = _solver(lambda x: torch.cat([x - 1, x - 1]), 2, h=1e-3)
    lm.unit = torch.tensor([1.0, 0.01])
    lm.damping = 1.0
    x, _ = lm.step(torch.zeros(2))
    assert 0.3 < float(x[0]) < 1.0 and 0 < float(x[1]) < 0.01 * float(x[0]), x


def test_a_step_that_cannot_lower_the_loss_keeps_the_parameters():
    lm = _solver(lambda x: torch.stack([x[0].abs() + 1]), 1, h=1e-3)  # a kink at the minimum
    x0 = torch.zeros(1)
    x, loss = lm.step(x0)
    assert torch.equal(x, x0) and loss == 1.0 and lm.damping > 1e3


def test_cancel_between_jacobian_columns():
    stop = threading.Event()
    calls = []

    def residual(x):
        calls.append(1)
        if len(calls) == 3:
            stop.set()
        return x - 1

    with pytest.raises(Cancelled):
        _solver(residual, 5, cancel=stop).step(torch.zeros(5))
    assert len(calls) == 3  # the base residual and two columns, then no more renders


@pytest.fixture(scope="module")
def builtin():
    from renderer import load_generator

    G = load_generator("builtin")
    return G, w_basis(G, 16)


NEWTON = dict(
    steps=2, pose_fraction=0.5, resolution=16, samples=(8, 8), pca_samples=16, image_weight=0.0,
    polish_samples=(8, 8), newton_steps=2, newton_resolution=16,
)  # fmt: skip


def test_the_newton_phase_lowers_the_polish_loss_and_moves_the_camera(builtin):
    G, basis = builtin
    f = Fitter(G, _target(G)[0], CameraGuess(0.0, 0.0), FitSettings(**NEWTON), basis=basis)
    while f.phase != "newton":
        f.step()
    assert f.time_left() is not None and f.time_left() > 0
    before_cam = f.camera().clone()
    losses = [float(f._residual()[0].square().sum())]
    recs = [f.step(), f.step()]
    assert f.done and [r.phase for r in recs] == ["newton", "newton"]
    losses += [r.loss for r in recs]
    assert losses[2] < losses[1] < losses[0], losses  # the polish's loss, at the newton phase's resolution
    assert abs(recs[-1].loss - float(f._residual()[0].square().sum())) < 1e-9
    assert not torch.equal(f.camera(), before_cam)


def test_a_fit_continued_inside_the_newton_phase_takes_the_same_steps(builtin, tmp_path):
    G, basis = builtin
    target, _ = _target(G)
    s = FitSettings(**NEWTON)
    f = Fitter(G, target, CameraGuess(0.1, 0.0), s, basis=basis)
    for _ in range(3):
        f.step()
    assert f.phase == "newton" and f._opt is not None and f._opt.state_dict()["damping"] != 0.05
    torch.save(f.state(), tmp_path / "fit.pt")
    g = Fitter(G, target, CameraGuess(), s, basis=basis)
    g.restore(torch.load(tmp_path / "fit.pt", weights_only=True))
    assert g._opt is not None and g._opt.state_dict() == f._opt.state_dict()  # the damping the phase reached
    f.run()
    g.run()
    assert [r.loss for r in g.history] == [r.loss for r in f.history]
    assert torch.equal(g.ws(), f.ws()) and torch.equal(g.camera(), f.camera())


def test_the_command_passes_newton_steps_to_the_fit(builtin, tmp_path, monkeypatch):
    import renderer.cli.fit as cli_fit
    from renderer.cli import main

    G, _ = builtin
    photo = tmp_path / "photo.png"
    img = (_target(G)[0].image * 127.5 + 128).clamp(0, 255).byte().permute(1, 2, 0).numpy()
    Image.fromarray(img).save(photo)
    seen = []

    class Stop(Exception):
        pass

    def spy(G_, target, camera, settings):
        seen.append(settings)
        raise Stop

    monkeypatch.setattr(cli_fit, "Fitter", spy)
    args = ["fit", str(photo), "--out", str(tmp_path / "out"), "--yaw", "0.2", "--pitch", "-0.1", "--quiet"]
    for extra, newton in (([], 0), (["--newton", "2"], 2)):
        with pytest.raises(Stop):
            main([*args, *extra])
        assert seen[-1].newton_steps == newton and seen[-1].phases()[-1][0] == ("newton" if newton else "detail")
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--newton", "-1"])
    assert exit_.value.code == 2 and not (tmp_path / "out").exists()


def test_fp32_twin_is_the_model_itself_off_cuda_and_else_a_copy_without_fp16():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from bench_engine import ffhq512_spec

    from renderer.model.generator import TriPlaneGenerator

    torch.manual_seed(0)
    G = TriPlaneGenerator(ffhq512_spec())  # its super-resolution blocks run fp16 on a GPU
    fp16 = [name for name, m in G.named_modules() if getattr(m, "use_fp16", False)]
    assert fp16
    assert fp32_twin(G) is G  # on the CPU, where use_fp16 changes nothing
    twin = fp32_twin(G, only_on_cuda=False)
    assert twin is not G and not any(getattr(m, "use_fp16", False) for m in twin.modules())
    if torch.cuda.is_available():  # a model without fp16 blocks is not copied on a GPU either; one with them is
        on_gpu = copy.deepcopy(G).cuda()
        plain = fp32_twin(on_gpu)
        assert plain is not on_gpu and fp32_twin(plain) is plain
    assert [name for name, m in G.named_modules() if getattr(m, "use_fp16", False)] == fp16  # G as it was
    theirs, ours = G.state_dict(), twin.state_dict()
    assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in theirs)
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(G.parameters(), twin.parameters(), strict=True))


def test_the_newton_phase_renders_with_the_fp32_twin_and_frees_it(builtin, monkeypatch):
    # as it would on a GPU: the phase's renders go through the copy, none through the model other threads use
    from renderer.fit import fit as fit_module

    G, basis = builtin
    twins = []

    def twin_everywhere(model):
        twins.append(fp32_twin(model, only_on_cuda=False))
        return twins[-1]

    monkeypatch.setattr(fit_module, "fp32_twin", twin_everywhere)
    s = FitSettings(**{**NEWTON, "newton_steps": 1, "tune_steps": 1})
    f = Fitter(G, _target(G)[0], CameraGuess(0.0, 0.0), s, basis=basis)
    while f.phase != "newton":
        f.step()
    seen = []  # the backbones that ran (a copy made later keeps the hook: deepcopy copies hooks)
    hook = G.backbone.synthesis.register_forward_hook(lambda module, *_: seen.append(module))
    f.step()  # the newton step: the copy is made as the phase starts
    hook.remove()
    assert len(twins) == 1 and f._newton_G is twins[0]
    through_model = [m for m in seen if m is G.backbone.synthesis]
    assert seen and all(m is twins[0].backbone.synthesis for m in seen), len(through_model)
    f.step()  # tuning
    assert f._newton_G is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_newton_phase_runs_on_cuda_in_fp32_and_lowers_the_loss(builtin):
    # the camera's CPU scalars and w's CUDA tensor in one parameter vector; TF32 allowed outside the phase only
    G = builtin[0]
    target = _target(G)[0]
    Gc = copy.deepcopy(G).cuda()
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True
    try:
        f = Fitter(Gc, target, CameraGuess(0.0, 0.0), FitSettings(**NEWTON))
        while f.phase != "newton":
            f.step()
        before = float(f._residual()[0].square().sum())
        recs = [f.step(), f.step()]
        assert recs[1].loss < recs[0].loss < before and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("model", ["builtin", "golden"])
@pytest.mark.parametrize("samples", [(8, 8), (13, 0), None])
def test_the_inference_render_is_the_autograd_render(builtin, golden_native_checkpoint, model, samples):
    # the newton phase's renders against the polish's: same rays, samples, marcher and super-resolution (the
    # builtin model declares an occupancy grid, whose empty-space skipping the newton render must not take)
    from renderer import load_generator
    from renderer.camera import default_camera
    from renderer.fit.render import render_diff, render_inference

    G = builtin[0] if model == "builtin" else load_generator(golden_native_checkpoint)
    rk = G.rendering_kwargs
    n_c, n_f = samples or (rk["depth_resolution"], rk["depth_resolution_importance"])
    cam = default_camera(rk, 0.3, -0.1)
    ws = G.mapping(torch.from_numpy(np.random.RandomState(4).randn(1, G.z_dim).astype(np.float32)), cam[None])
    res = 32
    with torch.no_grad():
        a = render_diff(G, ws, cam, res, n_c, n_f, superresolution=True)
        b = render_inference(G, ws, cam, res, n_c, n_f, superresolution=True)
    assert b.image is not None and a.image is not None and b.image.shape == a.image.shape
    for name in ("raw", "alpha", "features", "image"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape and (x - y).abs().max() <= 1e-4 * max(1.0, float(x.abs().max())), name
    assert a.raw.std() > 1e-3  # a picture with structure
