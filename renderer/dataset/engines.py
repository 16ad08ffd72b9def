"""Who renders the shards: this process, local worker processes (one per device), or Ray actors.

`ShardWorker` holds one loaded model and renders shards with it; every engine uses it, so a seed is
rendered by the same code whatever runs it. Local: with one worker the shards run in this process; with
more, in spawned processes (`--workers N` on CPU, each with cores / N torch threads; one per GPU with
`--device cuda`). Ray (`pip install -e .[cluster]`): the same ShardWorker as an actor, one model load per
actor, shards handed out by Ray's ActorPool; actors take a GPU each when the cluster has GPUs, else
`cpus_per_worker` CPUs, and write into the output folder themselves (a path every node sees).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import torch

from ..errors import CliError
from .settings import DatasetSettings, code_version
from .writer import render_seed

SampleFn = Callable[[int], None]
"""on_samples(n): n more samples are done."""


@dataclass
class ShardResult:
    """What a worker did for one shard."""

    seeds: list[int]
    samples: int = 0
    bytes: int = 0
    timing: dict[str, float] = field(default_factory=dict)


class ShardWorker:
    """A loaded model that renders shards into a dataset folder (in a process, a pool worker or a Ray actor)."""

    def __init__(
        self,
        settings: DatasetSettings,
        out: str,
        code: dict[str, str],
        device: str = "cpu",
        threads: int | None = None,
        engine: Any = None,
    ):
        if threads is not None:
            torch.set_num_threads(max(1, int(threads)))
        if engine is None:
            from .. import load_generator
            from ..builtin import resolve
            from ..engine import RenderEngine

            engine = RenderEngine(load_generator(resolve(settings.network), device=torch.device(device)), timed=False)
        self.engine = engine
        self.settings = settings
        self.out = Path(out)
        self.code = code

    def code_version(self) -> dict[str, str]:
        """The code this worker runs (the driver compares it with its own)."""
        return code_version()

    def render_shard(self, seeds: list[int], on_samples: SampleFn | None = None, cancel: Any = None) -> ShardResult:
        """Render each seed of a shard (committed one by one)."""
        result = ShardResult(list(seeds))
        for seed in seeds:
            r = render_seed(
                self.engine,
                self.settings,
                seed,
                self.out,
                self.code,
                on_sample=(lambda _i: on_samples(1)) if on_samples is not None else None,
                cancel=cancel,
                timing=result.timing,
            )
            result.samples += r.samples
            result.bytes += r.bytes
        return result


# ----------------------------------------------------------------- local
def run_in_process(worker: ShardWorker, shards: list[list[int]], on_samples: SampleFn, cancel: Any = None):
    """Render the shards here, one after another; yields each ShardResult."""
    for shard in shards:
        yield worker.render_shard(shard, on_samples, cancel)


_WORKER: ShardWorker | None = None
_QUEUE: Any = None


def _init_pool_worker(settings, out, code, devices, threads, queue) -> None:
    global _WORKER, _QUEUE
    device = devices.get()
    _QUEUE = queue
    _WORKER = ShardWorker(settings, out, code, device=device, threads=threads)


def _pool_render(shard: list[int]) -> ShardResult:
    assert _WORKER is not None
    queue = _QUEUE
    return _WORKER.render_shard(shard, (lambda n: queue.put(n)) if queue is not None else None)


def local_devices(device: str, workers: int | None) -> list[str]:
    """The device of each local worker: N x cpu, or one per GPU for 'cuda' (cuda:N names that one GPU)."""
    if device == "cuda":
        n = torch.cuda.device_count()
        if n == 0:
            raise CliError("device 'cuda' requested but CUDA is not available in this torch build/machine")
        return [f"cuda:{i % n}" for i in range(workers or n)]
    return [device] * max(1, workers or 1)


def run_pool(
    settings: DatasetSettings,
    out: Path,
    code: dict[str, str],
    shards: list[list[int]],
    devices: list[str],
    threads: int | None,
    on_samples: SampleFn,
):
    """Render the shards in one spawned process per device entry; yields each ShardResult as it finishes."""
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")
    dev_q = ctx.Queue()
    for d in devices:
        dev_q.put(d)
    prog_q = ctx.Queue()
    with ProcessPoolExecutor(
        max_workers=len(devices),
        mp_context=ctx,
        initializer=_init_pool_worker,
        initargs=(settings, str(out), code, dev_q, threads, prog_q),
    ) as pool:
        pending = {pool.submit(_pool_render, shard) for shard in shards}
        try:
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(prog_q, on_samples, queue_mod.Empty)
                for f in done:
                    yield f.result()
            _drain(prog_q, on_samples, queue_mod.Empty)
        except BaseException:
            for f in pending:
                f.cancel()
            for p in list(getattr(pool, "_processes", {}).values()):
                p.terminate()
            raise


def _drain(q, on_samples: SampleFn, empty) -> None:
    while True:
        try:
            on_samples(q.get_nowait())
        except empty:
            return


# ----------------------------------------------------------------- Ray
def check_ray_address(address: str | None, timeout: float = 5.0) -> None:
    """CliError unless Ray is installed and, for a host:port address, something answers there."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise CliError("--ray needs Ray, which is not installed: pip install -e '.[cluster]'") from None
    if address is None or address in ("auto", "local"):
        return
    text = address if "://" in address else f"ray://{address}"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise CliError(f"bad Ray address {address!r}: use HOST:PORT, ray://HOST:PORT, auto or local")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise CliError(f"no Ray cluster answers at {address} ({reason})") from None


def start_ray(address: str | None) -> bool:
    """Connect to (or, without an address, start) a Ray cluster unless this process already has one; returns
    True if this call started the connection (the caller shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    try:
        with _native_stderr_held():  # Ray's core logs each failed connection attempt to fd 2 while it retries
            ray.init(
                address=None if address in (None, "local") else address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise CliError(f"could not connect to the Ray cluster at {address or 'a new local cluster'}: {exc}") from None
    return True


@contextmanager
def _native_stderr_held():
    """Send what native code writes to fd 2 into a temp file while inside; replay it after a success (a failure
    is reported by the caller's one line instead)."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        ok = False
        try:
            yield
            ok = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if ok:
                held.seek(0)
                text = held.read()
                if text:
                    sys.stderr.write(text.decode("utf-8", "replace"))


def run_ray(
    settings: DatasetSettings,
    out: Path,
    code: dict[str, str],
    shards: list[list[int]],
    workers: int | None,
    cpus_per_worker: int,
    on_samples: SampleFn,
    warn: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
):
    """Render the shards as Ray actor calls; yields each ShardResult as it finishes."""
    import ray
    from ray.util import ActorPool

    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus > 0:
        options: dict[str, Any] = {"num_gpus": 1, "num_cpus": 1}
        device, threads, capacity = "cuda", None, gpus
    else:
        options = {"num_cpus": cpus_per_worker}
        device, threads = "cpu", cpus_per_worker
        capacity = max(1, int(resources.get("CPU", 1)) // cpus_per_worker)
    n = max(1, min(workers or capacity, len(shards)))
    actor_cls: Any = ray.remote(**options)(ShardWorker)
    actors: list[Any] = [actor_cls.remote(settings, os.fspath(out.resolve()), code, device, threads) for _ in range(n)]
    try:
        for version in ray.get([a.code_version.remote() for a in actors]):
            if version != code:
                warn(f"warning: a Ray worker runs other code ({version}) than this driver ({code})")
                break
        pool = ActorPool(actors)
        for result in pool.map_unordered(lambda a, shard: a.render_shard.remote(shard), shards):
            on_samples(result.samples)
            yield result
    finally:
        for a in actors:
            ray.kill(a)


__all__ = [
    "ShardResult",
    "ShardWorker",
    "check_ray_address",
    "local_devices",
    "run_in_process",
    "run_pool",
    "run_ray",
    "start_ray",
]
