"""Restricted unpickling of EG3D training snapshots: nothing named in the file is imported or run.

An EG3D ``network-snapshot-*.pkl`` is a protocol-4 pickle whose objects come from the
reference code: persistent classes that embed and ``exec`` their module source, ``training.*``
modules that must be importable, torch tensor reducers, numpy scalars.  Unpickling it the
normal way runs code from the file.  Here :class:`SnapshotUnpickler` resolves every global
through a fixed allow-list that maps it to one of OUR harmless callables or inert classes, and
refuses everything else before it can run.  The storages and tensors inside the file are read
by :mod:`renderer.checkpoint.torch_storage` (without ``torch.load``), the shared primitives are in
:mod:`renderer.checkpoint.restricted`.

Every problem raises :class:`CheckpointError` with a message that does NOT yet name the file;
``renderer.checkpoint.read`` adds the path.
"""

from __future__ import annotations

import pickle
from typing import Any, cast

import numpy as np

from ..errors import CheckpointError
from .restricted import Inert, MemoChecked, describe_name, refused_global
from .torch_storage import load_storage_blob, rebuild_parameter, rebuild_parameter_with_state, rebuild_tensor_v2

# --------------------------------------------------------------------------- numpy scalars

_NUMPY_CODES = frozenset({'f2', 'f4', 'f8', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'b1'})
_BYTEORDERS = {'<': '<', '>': '>', '=': '=', '|': '='}


class NumpyDtypeRef(Inert):
    """Stand-in for a plain numeric ``numpy.dtype``; its BUILD state is validated, not run."""

    __slots__ = ('code', 'byteorder')

    def __init__(self, code: str) -> None:
        self.code, self.byteorder = code, '='

    def __setstate__(self, state: object) -> None:
        ok = (
            type(state) is tuple
            and len(state) in (8, 9)
            and state[0] in (3, 4)
            and state[1] in _BYTEORDERS
            and state[2] is None
            and state[3] is None
            and state[4] is None
            and all(type(v) is int for v in state[5:8])
            and (len(state) == 8 or state[8] is None)
        )
        if not ok:
            raise CheckpointError('numpy dtype state is not that of a plain numeric dtype')
        self.byteorder = _BYTEORDERS[cast(tuple, state)[1]]  # a tuple: checked above

    def numpy(self) -> np.dtype:
        return np.dtype(self.byteorder + self.code)


def numpy_dtype(*args: object) -> NumpyDtypeRef:
    """Stand-in for ``numpy.dtype(code, align, copy)``: plain numeric codes only."""
    if not 1 <= len(args) <= 3 or not all(type(a) is bool for a in args[1:]):
        raise CheckpointError('numpy.dtype called with unexpected arguments')
    if args[0] not in _NUMPY_CODES:
        raise CheckpointError(f"numpy dtype {describe_name(args[0])!r} is not allowed (only plain numeric dtypes)")
    return NumpyDtypeRef(args[0])


def numpy_scalar(*args: object) -> int | float | bool:
    """Stand-in for ``numpy._core.multiarray.scalar(dtype, raw)``; returns a Python number."""
    if len(args) != 2 or not isinstance(args[0], NumpyDtypeRef) or type(args[1]) is not bytes:
        raise CheckpointError('numpy scalar must be built from a numeric dtype and raw bytes')
    dtype = args[0].numpy()
    if len(args[1]) != dtype.itemsize:
        raise CheckpointError('numpy scalar bytes do not match its dtype size')
    return np.frombuffer(args[1], dtype=dtype, count=1)[0].item()


# --------------------------------------------------------------------------- module nodes


class PersistentNode(Inert):
    """What ``torch_utils.persistence._reconstruct_persistent_obj`` would have built: the class
    name and the module's attribute dict.  The embedded ``module_src`` is never executed."""

    __slots__ = ('class_name', 'state')

    def __init__(self, class_name: str, state: dict) -> None:
        self.class_name, self.state = class_name, state


_PERSISTENT_META_KEYS = frozenset({'type', 'version', 'module_src', 'class_name', 'state'})


def reconstruct_persistent_obj(*args: object) -> PersistentNode:
    """Stand-in for ``_reconstruct_persistent_obj(meta)``: validate meta, keep name + state."""
    if len(args) != 1 or not isinstance(args[0], dict):
        raise CheckpointError('persistent object without a meta dict')
    meta = args[0]
    if not _PERSISTENT_META_KEYS.issuperset(dict.keys(meta)):
        raise CheckpointError('persistent object meta has unexpected keys')
    if dict.get(meta, 'type') != 'class' or type(dict.get(meta, 'version')) is not int:
        raise CheckpointError('persistent object meta is not of type "class" with a version')
    if dict.get(meta, 'version') != 6:
        raise CheckpointError(f"unsupported persistence version {dict.get(meta, 'version')} (6 expected)")
    class_name, state = dict.get(meta, 'class_name'), dict.get(meta, 'state')
    if type(class_name) is not str or not class_name.isidentifier():
        raise CheckpointError('persistent object meta has an invalid class_name')
    if not isinstance(state, dict):
        raise CheckpointError(f'persistent object {class_name} has no state dict')
    return PersistentNode(class_name, state)


class ModuleStub(Inert):
    """An inert stand-in for a non-persistent module class: NEWOBJ makes an empty node and
    BUILD stores the state dict, once.  Subclasses only name the class they replace."""

    __slots__ = ('state',)
    state: dict | None
    class_path = ''

    def __new__(cls, *args: object, **kwargs: object) -> ModuleStub:
        if cls is ModuleStub or args or kwargs:
            raise CheckpointError(f'unexpected construction of {cls.class_path or "a module"}')
        self = super().__new__(cls)
        self.state = None
        return self

    @property
    def class_name(self) -> str:
        return self.class_path.rpartition('.')[2]

    def __setstate__(self, state: object) -> None:
        if self.state is not None or type(state) is not dict:
            raise CheckpointError(f'invalid module state for {self.class_path}')
        self.state = state


NON_PERSISTENT_MODULES = (
    'training.triplane.OSGDecoder',
    'training.volumetric_rendering.renderer.ImportanceRenderer',
    'training.volumetric_rendering.ray_marcher.MipRayMarcher2',
    'training.volumetric_rendering.ray_sampler.RaySampler',
    'torch.nn.modules.container.Sequential',
    'torch.nn.modules.activation.Softplus',
)
_STUBS = {
    path: type(path.rpartition('.')[2], (ModuleStub,), {'__slots__': (), 'class_path': path})
    for path in NON_PERSISTENT_MODULES
}


class OrderedDictStandIn(dict):
    """``collections.OrderedDict`` as a plain dict (insertion-ordered) without an instance
    dict, so BUILD cannot shadow its methods."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise CheckpointError('object state (BUILD) is not allowed on an OrderedDict')


class EasyDictStandIn(dict):
    """``dnnlib.util.EasyDict`` as a plain dict.  Python < 3.11 pickled an empty instance dict
    for it; such a BUILD is accepted and ignored."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict):
            raise CheckpointError('invalid EasyDict state')


# --------------------------------------------------------------------------- the outer unpickler

ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ('collections', 'OrderedDict'): OrderedDictStandIn,
    ('dnnlib.util', 'EasyDict'): EasyDictStandIn,
    ('torch._utils', '_rebuild_tensor_v2'): rebuild_tensor_v2,
    ('torch._utils', '_rebuild_parameter'): rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): rebuild_parameter_with_state,
    ('torch.storage', '_load_from_bytes'): load_storage_blob,
    ('torch_utils.persistence', '_reconstruct_persistent_obj'): reconstruct_persistent_obj,
    ('numpy', 'dtype'): numpy_dtype,
    ('numpy._core.multiarray', 'scalar'): numpy_scalar,
    ('numpy.core.multiarray', 'scalar'): numpy_scalar,
    **{cast('tuple[str, str]', tuple(path.rsplit('.', 1))): stub for path, stub in _STUBS.items()},
}
"""(module, name) -> our stand-in.  Anything else in a file is refused."""


class SnapshotUnpickler(MemoChecked, pickle.Unpickler):
    """The C unpickler with every global resolved through :data:`ALLOWED_GLOBALS`.

    ``find_class`` is the only way the C unpickler reaches a class or function (GLOBAL,
    STACK_GLOBAL, INST, EXT*), so a refused name raises before anything could run."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise refused_global(module, name) from None

    def persistent_load(self, pid: object) -> Any:
        raise CheckpointError(
            'unexpected persistent id in the outer pickle (EG3D snapshots have none; the file may be malicious)'
        )
