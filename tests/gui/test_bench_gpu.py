"""bench/bench_gpu.py's loop on a CPU: it renders, presents through the read-back path into a real GL
texture, prints per-path FPS and percentiles, and says why the interop row is missing."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_gpu_dry_run_on_cpu(xvfb_display):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_gpu.py"), "--device", "cpu", "--network",
                        "builtin", "--frames", "3", "--warmup", "1"],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("CPU: ") and "ISA: " in r.stdout.splitlines()[0], r.stdout  # which machine, first
    row = re.compile(r"^\s+(render only|render eager|read-back)\s+([\d.]+) FPS", re.M)
    rows = {m.group(1): float(m.group(2)) for m in row.finditer(r.stdout)}
    assert set(rows) == {"render only", "render eager", "read-back"} and all(fps > 0 for fps in rows.values()), r.stdout
    assert re.search(r"p50 +[\d.]+ +p90 +[\d.]+ +p99 +[\d.]+ +max +[\d.]+ ms +\(3 frames\)", r.stdout), r.stdout
    assert "interop      not run: no CUDA device" in r.stdout and "CUDA graphs: none on a CPU" in r.stdout


def test_bench_gpu_refuses_cuda_without_a_gpu():
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: there the benchmark itself runs")
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_gpu.py"), "--frames", "1"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2 and "no CUDA device" in r.stderr
