"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from golden import GOLDEN, GoldenWeights, read_golden, read_reference_outputs, write_golden_native

__all__ = ['GOLDEN', 'GoldenWeights']


@pytest.fixture(scope='session')
def golden_weights() -> GoldenWeights:
    """The golden network's config and weights, from the copy in tests/data (fresh clones have it)."""
    return read_golden()


@pytest.fixture(scope='session')
def golden_native_checkpoint(tmp_path_factory, golden_weights: GoldenWeights) -> Path:
    """The small golden generator written as a native .safetensors checkpoint (for CLI and loader tests)."""
    return write_golden_native(tmp_path_factory.mktemp('golden') / 'golden_small.safetensors', golden_weights)


@pytest.fixture(scope='session')
def golden_cases() -> dict[str, np.ndarray]:
    """The golden file's case_* arrays (inputs and reference outputs)."""
    with np.load(GOLDEN) as data:
        return {k: data[k] for k in data.files if k.startswith('case_')}


@pytest.fixture(scope='session')
def reference_outputs() -> dict[str, dict]:
    """The reference's outputs from both CPUs ({'intel': ..., 'amd': ...}), images de-quantised."""
    return read_reference_outputs()


SESSION_THREADS = torch.get_num_threads()


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """Each test ends with the thread count the session started with (apps set it process-wide; without
    this, what later tests run on would depend on test order)."""
    yield
    torch.set_num_threads(SESSION_THREADS)
