"""Process memory policy for rendering: keep freed frame buffers in the heap instead of unmapping them.

glibc hands out every allocation above 32 MB as a fresh mmap() and unmaps it on free, so each
frame's large tensors (a 512^2 super-resolution allocates several 134 MB ones) page-fault in
again and the kernel zeroes them page by page: about 250 ms of a 1 s FFHQ-512 frame on 2 cores
(bench/bench_orbit.py). With mmap off, no heap trimming and one arena (so the viewer's render
thread shares the heap the big buffers were freed to), the next frame reuses them. The price is
that the process keeps its peak heap; `release()` hands free pages back (e.g. after unloading a
model). Entry points (viewer, CLI, benchmarks) opt in before starting threads; importing the
renderer changes nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
OPT_OUT_ENV = "TRIPLANE_DEFAULT_MALLOC"
"""Set to 1 to leave the C allocator as it is (for comparing, or for a glibc that misbehaves)."""


def _glibc():
    """The C library when it is glibc (has mallopt and malloc_trim), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both must exist
    except (OSError, AttributeError):
        return None
    return libc


def retain_freed_memory() -> bool:
    """Apply the policy to this process (call before starting threads); False where not glibc or opted out."""
    if os.environ.get(OPT_OUT_ENV) == "1":
        return False
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    ok &= libc.mallopt(_M_ARENA_MAX, 1) == 1
    return bool(ok)


def release() -> bool:
    """Return free heap pages to the OS now (malloc_trim); False where not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
