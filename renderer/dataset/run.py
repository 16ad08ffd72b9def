"""A dataset run from start to end: checks before any rendering, the resume scan, the engine, the closing files.

    summary = run_dataset(DatasetSettings(...), seeds, "out", shard_size=16)            # this machine
    summary = run_dataset(DatasetSettings(...), seeds, "out", ray_address="auto", use_ray=True)  # a Ray cluster

Order: the output folder is made and proved writable, Ray is found (and a HOST:PORT address must answer),
the model is loaded (its resolution sizes the disk estimate), OUT/settings.json must match if it exists,
leftovers of interrupted runs are removed, finished seeds are found, the free disk must hold the rest (upper
bound), settings.json is written; then the shards render and OUT/eg3d/dataset.json and OUT/manifest.json
are written over every finished seed.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import CliError
from ..export.files import describe_os_error, ensure_writable_folder
from .engines import (
    ShardResult,
    ShardWorker,
    check_ray_address,
    local_devices,
    run_in_process,
    run_pool,
    run_ray,
    start_ray,
)
from .plan import (
    SETTINGS_FILE,
    Plan,
    check_disk,
    check_settings_file,
    finalize,
    finished_seeds,
    make_shards,
    pending_shards,
    remove_partial,
    seed_bytes_bound,
    settings_record,
    stale_seed_folders,
    write_json_atomic,
)
from .settings import DatasetSettings, code_version, seed_dir_name, with_network
from .writer import EG3D, PARTIAL, read_manifest, resolve_settings


@dataclass
class RunSummary:
    """What a run did."""

    out: Path
    seeds: int
    skipped: int
    rendered: int
    samples: int
    seconds: float
    bytes: int
    timing: dict[str, float] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """One line for the terminal."""
        rate = f", {self.samples_per_second:.2f} samples/s" if self.samples else ""
        skipped = f"; {self.skipped} finished seed(s) skipped" if self.skipped else ""
        return (
            f"wrote {self.rendered} seed(s), {self.samples} sample(s) to {self.out} in {self.seconds:.1f} s{rate}"
            f"{skipped}; {self.manifest.get('seeds', 0)} seed(s) in the dataset"
        )


def prepare_out(out: str | os.PathLike) -> Path:
    """Create OUT and prove it takes files; CliError naming the folder and the reason."""
    p = Path(os.path.expanduser(os.fspath(out)))
    try:
        ensure_writable_folder(p)
    except OSError as exc:
        raise CliError(f"cannot write to output folder {p}: {describe_os_error(exc)}") from None
    return p


def run_dataset(
    settings: DatasetSettings,
    seeds: list[int],
    out: str | os.PathLike,
    shard_size: int = 16,
    workers: int | None = None,
    device: str = "cpu",
    use_ray: bool = False,
    ray_address: str | None = None,
    cpus_per_worker: int = 1,
    engine: Any = None,
    progress: Callable[[int, int], None] | None = None,
    on_start: Callable[[Plan], None] | None = None,
    cancel: Any = None,
) -> RunSummary:
    """Render `seeds` into OUT with `settings` (see the module doc). progress(done, total) counts samples;
    on_start(plan) is called once the resume scan is done, before rendering. `engine` (a RenderEngine of
    settings.network) is used instead of loading the model when the shards run in this process."""
    settings.check()
    out_path = prepare_out(out)
    started_ray = False
    if use_ray:
        check_ray_address(ray_address)
        started_ray = start_ray(ray_address)  # connecting proves the address before any slow work
    try:
        return _run(
            settings,
            seeds,
            out_path,
            shard_size,
            workers,
            device,
            use_ray,
            cpus_per_worker,
            engine,
            progress,
            on_start,
            cancel,
        )
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def _run(
    settings: DatasetSettings,
    seeds: list[int],
    out_path: Path,
    shard_size: int,
    workers: int | None,
    device: str,
    use_ray: bool,
    cpus_per_worker: int,
    engine: Any,
    progress: Callable[[int, int], None] | None,
    on_start: Callable[[Plan], None] | None,
    cancel: Any,
) -> RunSummary:
    if engine is None:
        from .. import load_generator
        from ..builtin import resolve
        from ..engine import RenderEngine

        path = resolve(settings.network)
        if not os.path.exists(path):
            raise CliError(f"no such file: {settings.network}")
        first = local_devices(device, 1)[0] if not use_ray else "cpu"
        engine = RenderEngine(load_generator(path, device=torch.device(first)), timed=False)
    G = engine.G
    rk = G.rendering_kwargs
    settings = resolve_settings(with_network(settings, settings.network), rk)
    code = code_version()
    sha = settings.sha256()
    had_settings = check_settings_file(out_path, settings)
    if had_settings:
        remove_partial(out_path)
        for stale in stale_seed_folders(out_path, seeds, sha):  # in the way but not committed: out of sight, redone
            for folder in (stale, out_path / EG3D / stale.name):  # its image links too: they share its files
                if folder.exists():
                    aside = out_path / PARTIAL / f"stale.{folder.parent.name}.{folder.name}.{os.getpid()}"
                    aside.parent.mkdir(exist_ok=True)
                    os.rename(folder, aside)
                    shutil.rmtree(aside, ignore_errors=True)
        done = finished_seeds(out_path, sha, seeds)
    else:
        done = set()
    other_code = sum(1 for s in done if (read_manifest(out_path / seed_dir_name(s)) or {}).get("code_version") != code)
    shards = pending_shards(make_shards(list(seeds), shard_size), done)
    plan = Plan(seeds=list(seeds), shards=shards, done=done, other_code=other_code)
    w_floats = G.num_ws * G.w_dim
    bound = seed_bytes_bound(settings, G.img_resolution, G.neural_rendering_resolution, w_floats)
    n_views = settings.views.views
    check_disk(
        out_path,
        plan.pending_seeds,
        bound,
        f"{plan.pending_seeds} seed(s) x {n_views} view(s)",
    )
    if not had_settings:
        write_json_atomic(out_path / SETTINGS_FILE, settings_record(settings))
    if on_start is not None:
        on_start(plan)

    total = plan.pending_seeds * n_views
    done_samples = 0

    def on_samples(n: int) -> None:
        nonlocal done_samples
        done_samples += n
        if progress is not None:
            progress(done_samples, total)

    t0 = time.perf_counter()
    results: list[ShardResult] = []
    if not plan.shards:
        pass
    elif use_ray:
        results = list(run_ray(settings, out_path, code, plan.shards, workers, cpus_per_worker, on_samples))
    else:
        devices = local_devices(device, workers)
        if len(devices) == 1:
            worker = ShardWorker(settings, os.fspath(out_path), code, engine=engine)
            results = list(run_in_process(worker, plan.shards, on_samples, cancel))
        else:
            threads = max(1, (os.cpu_count() or 1) // len(devices)) if devices[0] == "cpu" else None
            results = list(run_pool(settings, out_path, code, plan.shards, devices, threads, on_samples))
    seconds = time.perf_counter() - t0
    manifest = finalize(out_path, settings, rk, code)
    timing: dict[str, float] = {}
    for r in results:
        for k, v in r.timing.items():
            timing[k] = timing.get(k, 0.0) + v
    return RunSummary(
        out=out_path,
        seeds=len(seeds),
        skipped=len(plan.done),
        rendered=sum(len(r.seeds) for r in results),
        samples=sum(r.samples for r in results),
        seconds=seconds,
        bytes=sum(r.bytes for r in results),
        timing=timing,
        manifest=manifest,
    )


__all__ = ["RunSummary", "prepare_out", "run_dataset"]
