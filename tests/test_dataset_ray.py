"""Determinism of `renderer.dataset` across sharding and engines: one shard, four shards, two local worker
processes, and four shards on a real local Ray cluster (`ray.init(num_cpus=2)`) give byte-identical files,
manifests included."""

from __future__ import annotations

from pathlib import Path

import pytest

from renderer import load_generator
from renderer.dataset import DatasetSettings, ViewSpec, run_dataset
from renderer.engine import RenderEngine

ray = pytest.importorskip("ray", reason="the Ray engine needs the cluster extra (pip install -e '.[cluster]')")


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_one_shard_four_shards_processes_and_ray_are_byte_identical(tmp_path):
    settings = DatasetSettings(views=ViewSpec(views=2), neural_rendering_resolution=32, normals=True, raw=True)
    seeds = [6, 2, 9, 4]
    engine = RenderEngine(load_generator("builtin"), timed=False)
    one = run_dataset(settings, seeds, tmp_path / "one", shard_size=4, engine=engine)
    four = run_dataset(settings, seeds, tmp_path / "four", shard_size=1, engine=engine)
    procs = run_dataset(settings, seeds, tmp_path / "procs", shard_size=1, workers=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = run_dataset(settings, seeds, tmp_path / "ray", shard_size=1, use_ray=True)
    finally:
        ray.shutdown()
    assert one.samples == four.samples == procs.samples == on_ray.samples == 8
    reference = tree(tmp_path / "one")
    assert len([k for k in reference if k.endswith("manifest.json")]) == 5  # four seeds and the dataset
    for name in ("four", "procs", "ray"):
        other = tree(tmp_path / name)
        assert sorted(other) == sorted(reference), name
        differ = [k for k in reference if other[k] != reference[k]]
        assert not differ, (name, differ)
