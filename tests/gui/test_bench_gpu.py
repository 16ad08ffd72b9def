"""bench/bench_gpu.py's loop on a CPU: it renders, presents through the read-back path into a real GL
texture, prints per-path FPS and percentiles, and says why the interop row is missing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_gpu_dry_run_on_cpu(xvfb_display):
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_gpu.py"),
            "--device",
            "cpu",
            "--network",
            "builtin",
            "--frames",
            "3",
            "--warmup",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("CPU: ") and "ISA: " in r.stdout.splitlines()[0], r.stdout  # which machine, first
    row = re.compile(r"^\s+(render only|render eager|read-back)\s+([\d.]+) FPS", re.M)
    rows = {m.group(1): float(m.group(2)) for m in row.finditer(r.stdout)}
    assert set(rows) == {"render only", "render eager", "read-back"} and all(fps > 0 for fps in rows.values()), r.stdout
    assert re.search(r"p50 +[\d.]+ +p90 +[\d.]+ +p99 +[\d.]+ +max +[\d.]+ ms +\(3 frames\)", r.stdout), r.stdout
    assert "interop      not run: no CUDA device" in r.stdout and "CUDA graphs: none on a CPU" in r.stdout
    assert "replay check: not run (no CUDA graphs on this device)" in r.stdout


def test_bench_gpu_refuses_cuda_without_a_gpu():
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: there the benchmark itself runs")
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_gpu.py"), "--frames", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert r.returncode == 2 and "no CUDA device" in r.stderr


def test_replay_check_on_a_taped_graph(monkeypatch):
    """bench_gpu's replay check (its GPU-only branch) with the taped stand-in graph on a CPU: it passes when the
    graph holds what it read, and a replay of the evicted table is caught when it does not."""
    import pytest
    from graph_tape import FreedMemoryRead, taped_capture
    from tiny_model import tiny_generator

    import renderer.engine.cuda_graphs as cg
    from renderer.engine import RenderEngine
    from renderer.engine.cuda_graphs import FrameGraphs

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import bench_gpu

    G = tiny_generator()
    for pinned in (True, False):
        if not pinned:
            monkeypatch.setattr(cg._Pins, "recording", lambda self, render: render)
        graphed, eager = RenderEngine(G), RenderEngine(G, cuda_graphs=False)
        graphed.graphs = FrameGraphs(capture=taped_capture(host_syncs="bake"))
        orbit, reference = bench_gpu.Orbit(graphed), bench_gpu.Orbit(eager)
        if pinned:
            ok, line = bench_gpu.replay_check(orbit, reference)
            assert ok and line.startswith("replay check (seed 0 after seeds 1 and 2") and "OK, replayed True" in line
        else:
            with pytest.raises(FreedMemoryRead):
                bench_gpu.replay_check(orbit, reference)


def test_gpu_check_script_dry_run(xvfb_display, tmp_path):
    """bench/gpu_check.sh --dry-run on a CPU: every step runs (the gpu-marked tests skip, the bench runs on the
    CPU) and the summary names each step's exit status."""
    import os

    env = dict(os.environ, OUT=str(tmp_path))
    r = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env=env,
    )
    summary = (tmp_path / "summary.txt").read_text()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert re.search(r"^gpu tests: exit 0 ", summary, re.M) and re.search(r"^bench_gpu: exit 0 ", summary, re.M)
    assert "---- failures\nnone\n" in summary, summary
    assert re.search(r"\d+ skipped", (tmp_path / "pytest.txt").read_text())
    assert "replay check: not run" in (tmp_path / "bench.txt").read_text()
    assert "GL: {" in (tmp_path / "env.txt").read_text()
