"""The render memory policy (renderer/engine/memory.py): freed big buffers are reused, not page-faulted in again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import resource, sys, torch
from renderer.engine import memory
applied = memory.retain_freed_memory() if sys.argv[1] == "on" else False
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
counts = []
for frame in range(12):  # a 100 MB frame buffer, allocated and freed every frame
    before = faults()
    x = torch.ones(25_000_000)
    counts.append(faults() - before)
    del x
print(applied, sum(counts[6:]))  # steady state: the last 6 frames
"""


def _faults(mode: str, env: dict | None = None) -> tuple[bool, int]:
    r = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    assert r.returncode == 0, r.stderr
    applied, faults = r.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the policy is glibc's mallopt")
def test_policy_reuses_freed_buffers():
    off_applied, off = _faults("off")
    on_applied, on = _faults("on")
    assert on_applied and not off_applied
    # each frame's fresh 100 MB mapping faults in page by page (4 KiB pages: ~24,000 a frame; with transparent
    # huge pages always on, ~50), while the retained heap does not, once warm
    assert off >= 6 * 40
    assert on < off / 10


def test_policy_can_be_turned_off_by_the_environment():
    applied, _ = _faults("on", {"TRIPLANE_DEFAULT_MALLOC": "1"})
    assert not applied
