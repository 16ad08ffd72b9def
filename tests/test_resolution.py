"""The adaptive-quality state machine: steps down under load, full quality at rest, no oscillation."""

from __future__ import annotations

import random

import pytest

from viz.resolution import Quality, ResolutionPolicy, ladder


def simulate(policy: ResolutionPolicy, ms_per_cost: float, frames: int, noise: float = 0.0, seed: int = 0):
    """Drive the policy while the user drags: one frame every 10 ms of input; returns chosen levels."""
    rng = random.Random(seed)
    chosen = []
    now = 0.0
    for _ in range(frames):
        policy.note_input(now)
        q = policy.choose(now)
        ms = ms_per_cost * q.cost() * (1 + rng.uniform(-noise, noise))
        policy.record(q, ms)
        chosen.append(q)
        now += 0.01
    return chosen


def test_ladder_is_ordered_by_cost_and_ends_full():
    levels = ladder(128)
    costs = [q.cost() for q in levels]
    assert costs == sorted(costs) and levels[-1] == Quality(128, 1.0, True)
    assert all(not q.superresolution for q in levels[:-1])
    assert ladder(64)[-1].resolution == 64 and max(q.resolution for q in ladder(64)) == 64


def test_steps_down_under_load_and_settles():
    p = ResolutionPolicy(full_resolution=128, target_ms=100, level=5)
    chosen = simulate(p, ms_per_cost=0.02, frames=60)  # 128px x1 costs ~330 ms here: too slow
    tail = chosen[-20:]
    assert len(set(tail)) == 1
    settled = tail[0]
    assert 0.02 * settled.cost() <= 100  # fits the target
    i = p.previews.index(settled)
    assert i + 1 == len(p.previews) or 0.02 * p.previews[i + 1].cost() > 0.7 * 100  # and is the richest that does


def test_steps_up_when_there_is_headroom():
    p = ResolutionPolicy(full_resolution=128, target_ms=100, level=0)
    chosen = simulate(p, ms_per_cost=0.001, frames=40)  # everything is cheap
    assert chosen[-1] == p.previews[-1]
    assert [p.previews.index(q) for q in chosen] == sorted(p.previews.index(q) for q in chosen)  # monotone climb


@pytest.mark.parametrize("ms_per_cost", [0.004, 0.007, 0.01, 0.02, 0.05])
def test_no_oscillation_on_a_steady_noisy_load(ms_per_cost):
    p = ResolutionPolicy(full_resolution=128, target_ms=100, level=2)
    chosen = simulate(p, ms_per_cost, frames=300, noise=0.15, seed=int(ms_per_cost * 1000))
    tail = chosen[50:]
    switches = sum(a != b for a, b in zip(tail, tail[1:]))
    assert switches <= 1


def test_full_quality_when_idle_or_locked():
    p = ResolutionPolicy(full_resolution=128, target_ms=100)
    simulate(p, 0.02, 10)
    last_input = 0.09
    assert p.choose(last_input + 0.05) != p.full  # still moving
    assert p.choose(last_input + 0.25) == p.full  # rested for > 0.2 s
    p.note_input(1.0)
    assert p.choose(1.01) != p.full
    p.lock_full = True
    assert p.choose(1.01) == p.full


def test_labels():
    assert Quality(64, 0.5, False).label == "64px x0.5"
    assert Quality(128, 1.0, True).label == "128px x1 +SR"
