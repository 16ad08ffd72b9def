"""A CUDA graph's semantics on a CPU, for tests: `Tape` records the operations of a captured call and
replays *those* on the addresses they read (not a fresh render). What the captured operations made
belongs to the tape (a graph's private pool); every other tensor they read is baked in by address:
the tape keeps a weak reference and the data pointer only, so a replay after that tensor was freed
(or moved) raises FreedMemoryRead, as a graph would read freed memory (issue 14 D1). With
host_syncs="raise" an operation a CUDA capture cannot contain raises HostSync (D2).

Limits: host reads that do not dispatch an operation (tolist, numpy) are not seen.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_unflatten


class FreedMemoryRead(RuntimeError):
    """A replay would read memory that the graph does not own and that was freed (or moved) since capture."""


class HostSync(RuntimeError):
    """An operation inside the capture needs the host (CUDA: 'operation not permitted when stream is capturing')."""


_aten = torch.ops.aten
_SYNCING = {
    _aten._local_scalar_dense.default,
    _aten.nonzero.default,
    _aten.masked_select.default,
    _aten.lift_fresh.default,
}
"""Operations a CUDA capture cannot contain: reading a value on the host (item, bool, float), data-dependent
shapes, and a tensor made from host data (an upload from pageable memory)."""


def _syncs(func, args) -> bool:
    if func in _SYNCING:
        return True
    if func in (_aten.index.Tensor, _aten.index_put.default, _aten.index_put_.default):  # boolean masks
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in tree_flatten(args[1])[0])
    return False


class Tape(TorchDispatchMode):
    """A CUDA graph's semantics on a CPU: the captured operations, replayed on the addresses they read.

    Tensors the captured operations made belong to the tape (a graph's private pool): replays make them
    anew. Every other tensor they read is baked in by address: the tape keeps only a weak reference and
    the data pointer, as a graph keeps only the pointer."""

    def __init__(self, host_syncs: str = "raise"):
        super().__init__()
        self.host_syncs = host_syncs
        self.ops: list = []
        self._slots: dict[int, int] = {}
        self._live: list[torch.Tensor] = []  # while recording only
        self._made: set[int] = set()
        self.baked: dict[int, tuple] = {}
        """slot -> (weak reference, data pointer) of each tensor read but not made by the captured operations."""
        self.outputs: list[tuple[torch.Tensor, int]] = []

    def _slot(self, t: torch.Tensor) -> int:
        s = self._slots.get(id(t))
        if s is None:
            s = self._slots[id(t)] = len(self._live)
            self._live.append(t)
        return s

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.host_syncs == "raise" and _syncs(func, args):
            raise HostSync(f"{func} inside a capture: operation not permitted when stream is capturing")
        flat, spec = tree_flatten((args, kwargs))
        ins = [("t", self._slot(x)) if isinstance(x, torch.Tensor) else ("c", x) for x in flat]
        out = func(*args, **kwargs)
        outs = []
        for y in tree_flatten(out)[0]:
            if not isinstance(y, torch.Tensor):
                outs.append(None)
                continue
            new = id(y) not in self._slots
            s = self._slot(y)
            if new:
                self._made.add(s)
            outs.append(s)
        self.ops.append((func, spec, ins, outs))
        return out

    def finish(self, frame) -> None:
        """After the captured call: the frame's tensors become the static outputs, the rest is let go."""
        self.outputs = [(t, self._slots[id(t)]) for t in tree_flatten(frame)[0] if isinstance(t, torch.Tensor)]
        self.baked = {s: (weakref.ref(t), t.data_ptr()) for s, t in enumerate(self._live) if s not in self._made}
        self._live, self._slots = [], {}

    def pointers(self) -> set[int]:
        return {address for _, address in self.baked.values()}

    def replay(self) -> None:
        values = {}
        for s, (ref, address) in self.baked.items():
            t = ref()
            if t is None or t.data_ptr() != address:
                raise FreedMemoryRead(f"the replay reads {address:#x}, freed since the capture")
            values[s] = t
        with torch.no_grad(), torch.autocast("cpu", enabled=False):  # the casts are recorded operations
            for func, spec, ins, outs in self.ops:
                args, kwargs = tree_unflatten([values[v] if k == "t" else v for k, v in ins], spec)
                for y, s in zip(tree_flatten(func(*args, **kwargs))[0], outs):
                    if s is not None:
                        values[s] = y
        for t, s in self.outputs:
            t.copy_(values[s])


def taped_capture(host_syncs: str = "raise", warmup: int = 2, tapes: list | None = None):
    """A capture function for FrameGraphs (capture_cuda's protocol) that records a Tape."""

    def capture(render, camera):
        static = camera.clone()
        for _ in range(warmup):
            render(static)
        tape = Tape(host_syncs)
        with tape:
            frame = render(static)
        tape.finish(frame)
        if tapes is not None:
            tapes.append(tape)
        return static, tape.replay, frame

    return capture
