"""The built-in model's training script: a run stopped and resumed ends bitwise where an uninterrupted run ends,
its checkpoint loads and names its family, and a training state probes as the checkpoint it would export."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from renderer import load_generator
from renderer.builtin.config import RAY_END, RAY_START
from renderer.builtin.training import family as fam
from renderer.builtin.training import train
from renderer.builtin.training.evaluate import cameras
from renderer.builtin.training.probe import plane_ceiling
from renderer.builtin.training.train import generator_from_state
from renderer.camera import camera_tuple, default_camera
from renderer.engine import LatentSpec, RenderEngine, RenderRequest
from renderer.model.volume import sample_rays

# a network and batch far smaller than the real run's, so a step takes a fraction of a second
TINY = [
    "--steps", "3", "--sr-steps", "2", "--batch", "2", "--rays", "64", "--points", "256", "--sr-pixels", "256",
    "--plane-resolution", "16", "--train-depth", "8", "--train-importance", "8", "--checkpoint-minutes", "100",
]  # fmt: skip


def run(out: Path, *extra: str) -> dict:
    """One session of train.main; returns the state it left."""
    assert train.main(["--out", str(out), "--threads", str(torch.get_num_threads()), *TINY, *extra]) == 0
    # it leaves no default-device context behind, which would move every tensor torch.as_tensor is handed (a GPU
    # or meta one too) to its device in later code of the same process
    assert torch.as_tensor(torch.zeros(2, device="meta")).device.type == "meta"
    return torch.load(out / "state.pt", weights_only=True)


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """An uninterrupted tiny run."""
    out = tmp_path_factory.mktemp("whole")
    st = run(out)
    assert (st["phase"], st["step"], st["sr_step"]) == ("sr", 3, 2)
    return out


def test_a_resumed_run_equals_an_uninterrupted_one(whole, tmp_path):
    first = run(tmp_path / "b", "--session-steps", "2")
    assert (first["phase"], first["step"]) == ("main", 2)
    assert not (tmp_path / "b" / "builtin.safetensors").exists()
    second = run(tmp_path / "b", "--resume", "--session-steps", "2")  # the last main step, the first SR step
    assert (second["phase"], second["step"], second["sr_step"]) == ("sr", 3, 1)
    run(tmp_path / "b", "--resume")
    a = load_file(whole / "builtin.safetensors")
    b = load_file(tmp_path / "b" / "builtin.safetensors")
    assert a.keys() == b.keys()
    changed = 0
    for k in a:
        assert torch.equal(a[k], b[k]), k
        changed += not torch.equal(a[k], first["G"][k])
    assert changed > 10  # the last main step and the SR steps moved the weights after the first session


def test_the_checkpoint_loads_and_a_state_probes_as_it(whole):
    G = load_generator(str(whole / "builtin.safetensors"))
    assert fam.for_model(G) is fam
    assert G.spec.extra["train_steps"] == 3 and G.spec.extra["sr_steps"] == 2
    probe = generator_from_state(str(whole / "state.pt"))
    assert fam.for_model(probe) is fam
    exported = G.state_dict()
    for k, v in probe.state_dict().items():
        assert torch.equal(v, exported[k]), k


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_run_trains_on_cuda(tmp_path):
    """--device cuda: the ground truth traced on the GPU is the CPU's, and the run's checkpoint renders on the CPU."""
    g = torch.Generator().manual_seed(1)
    p = fam.params_from_z(torch.randn(3, 512, generator=g))
    cams = cameras([(0.3, 0.1), (-0.5, 0.0), (1.2, -0.2)])
    origins, dirs = sample_rays(cams[:, :16].view(-1, 4, 4), cams[:, 16:25].view(-1, 3, 3), 32)
    t, hit = fam.trace(origins, dirs, p, RAY_START, RAY_END)
    p_gpu = fam.params_from_z(torch.randn(3, 512, generator=torch.Generator().manual_seed(1)).cuda())
    t_gpu, hit_gpu = fam.trace(origins.cuda(), dirs.cuda(), p_gpu, RAY_START, RAY_END)
    same = hit == hit_gpu.cpu()
    assert float(same.float().mean()) > 0.99
    assert float((t - t_gpu.cpu())[same & hit].abs().max()) <= 2e-4  # the tracer's hit distance
    try:
        st = run(tmp_path, "--device", "cuda")
    finally:
        torch.set_default_device("cpu")  # train.main sets the process's default device
    assert (st["phase"], st["step"], st["sr_step"]) == ("sr", 3, 2)
    G = load_generator(str(tmp_path / "builtin.safetensors"))
    assert all(bool(v.isfinite().all()) for v in G.state_dict().values())
    cam = camera_tuple(default_camera(G.rendering_kwargs))
    res = RenderEngine(G).render(RenderRequest(latent=LatentSpec(seed=3), camera=cam, cond_camera=cam))
    assert not res.nonfinite and res.image.shape == (3, G.img_resolution, G.img_resolution)


def test_the_capacity_probe_moves_the_planes_and_leaves_the_generator_alone():
    """Optimising one latent's planes lowers the run's loss against a control with a zero step that sees exactly the
    same random rays, points and cameras, step by step (so sampling noise cancels; if the probe's planes did not
    reach the loss, the two would be equal); the generator is left exactly as it was. A tiny untrained network:
    the PSNR half needs a trained run (a tiny one renders nothing once its density is sharpened)."""
    cfg = train.TrainConfig(batch=2, rays=64, points=256, plane_resolution=16, train_depth=8, train_importance=8)
    G = train.build_generator(cfg).eval().requires_grad_(False)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    moved = plane_ceiling(G, cfg, seed=3, steps=15, lr=2.0, res=8)
    still = plane_ceiling(G, cfg, seed=3, steps=15, lr=0.0, res=8)
    assert still.history[0] == moved.history[0]
    ratio = statistics.fmean(moved.history[5:]) / statistics.fmean(still.history[5:])
    assert ratio < 0.85, ratio  # measured 0.63
    for k, v in G.state_dict().items():
        assert torch.equal(v, before[k]), k
