"""Determinism of `renderer.dataset` across sharding and engines: one shard, four shards, and four shards on a
real local Ray cluster (`ray.init(num_cpus=2)`) give byte-identical files, manifests included; so do two local
worker processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_dataset import tree_across_processes

from renderer import load_generator
from renderer.dataset import DatasetSettings, ViewSpec, run_dataset
from renderer.engine import RenderEngine

SETTINGS = DatasetSettings(views=ViewSpec(views=2), neural_rendering_resolution=32, normals=True, raw=True)
SEEDS = [6, 2, 9, 4]


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_same(reference: Path, other: Path) -> None:
    ref, oth = tree(reference), tree(other)
    assert len([k for k in ref if k.endswith("manifest.json")]) == len(SEEDS) + 1  # each seed and the dataset
    assert sorted(oth) == sorted(ref)
    differ = [k for k in ref if oth[k] != ref[k]]
    assert not differ, differ


@pytest.fixture(scope="module")
def one_shard(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one") / "out"
    engine = RenderEngine(load_generator("builtin"), timed=False)
    assert run_dataset(SETTINGS, SEEDS, out, shard_size=len(SEEDS), engine=engine).samples == 8
    return out


@pytest.mark.slow
def test_one_shard_four_shards_and_ray_are_byte_identical(one_shard, tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray engine needs the cluster extra (pip install -e '.[cluster]')")
    engine = RenderEngine(load_generator("builtin"), timed=False)  # a fresh one: no planes cached from `one`
    assert run_dataset(SETTINGS, SEEDS, tmp_path / "four", shard_size=1, engine=engine).samples == 8
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = run_dataset(SETTINGS, SEEDS, tmp_path / "ray", shard_size=1, use_ray=True)
    finally:
        ray.shutdown()
    assert on_ray.samples == 8 and on_ray.rendered == 4
    assert_same(one_shard, tmp_path / "four")
    assert_same(one_shard, tmp_path / "ray")


@pytest.mark.slow
def test_two_local_worker_processes_are_byte_identical(one_shard, tmp_path):
    procs = run_dataset(SETTINGS, SEEDS, tmp_path / "procs", shard_size=1, workers=2)
    assert procs.samples == 8
    assert_same(one_shard, tmp_path / "procs")


@pytest.mark.slow
def test_cli_ray_starts_a_local_instance(tmp_path):
    """`--ray` without an address: a new local Ray instance, the same files as in this process."""
    import subprocess
    import sys

    pytest.importorskip("ray", reason="the Ray engine needs the cluster extra (pip install -e '.[cluster]')")
    args = ["--seeds", "3,1", "--views", "1", "--nrr", "32", "--shard-size", "1", "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-m", "renderer", "dataset", *args, "--out", str(tmp_path / "ray"), "--ray"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote 2 seed(s), 2 sample(s)" in proc.stdout
    engine = RenderEngine(load_generator("builtin"), timed=False)
    settings = DatasetSettings(views=ViewSpec(views=1), neural_rendering_resolution=32)
    run_dataset(settings, [3, 1], tmp_path / "here", engine=engine)
    assert tree_across_processes(tmp_path / "ray") == tree_across_processes(tmp_path / "here")
