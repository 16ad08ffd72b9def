"""The built-in model's training script: a run stopped and resumed ends bitwise where an uninterrupted run ends,
its checkpoint loads and names its family, and a training state probes as the checkpoint it would export."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from renderer import load_generator
from renderer.builtin.training import family as fam
from renderer.builtin.training import train
from renderer.builtin.training.train import generator_from_state

# a network and batch far smaller than the real run's, so a step takes a fraction of a second
TINY = [
    "--steps", "3", "--sr-steps", "2", "--batch", "2", "--rays", "64", "--points", "256", "--sr-pixels", "256",
    "--plane-resolution", "16", "--train-depth", "8", "--train-importance", "8", "--checkpoint-minutes", "100",
]  # fmt: skip


def run(out: Path, *extra: str) -> dict:
    """One session of train.main; returns the state it left."""
    assert train.main(["--out", str(out), "--threads", str(torch.get_num_threads()), *TINY, *extra]) == 0
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
