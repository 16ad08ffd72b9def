"""Restricted unpickling of EG3D training snapshots: nothing named in the file is imported or run.

An EG3D ``network-snapshot-*.pkl`` is a protocol-4 pickle whose objects come from the
reference code: persistent classes that embed and ``exec`` their module source, ``training.*``
modules that must be importable, torch tensor reducers, numpy scalars.  Unpickling it the
normal way runs code from the file.  Here :class:`SnapshotUnpickler` resolves every global
through a fixed allow-list that maps it to one of OUR harmless callables or inert classes, and
refuses everything else before it can run.  The storages inside the file are legacy
``torch.save`` streams; :func:`load_storage_blob` parses them without ``torch.load``.

Nothing here builds torch tensors while unpickling: storages stay views of the file's bytes
(:class:`StorageRef`) and tensors are recorded as :class:`TensorRef` views of them, validated
against the storage bounds.  :class:`Materializer` turns the chosen network's refs into tensors
afterwards, so the bytes of D and G never get copied.

Every problem raises :class:`CheckpointError` with a message that does NOT yet name the file;
``renderer.checkpoint`` adds the path.
"""
from __future__ import annotations

import encodings.raw_unicode_escape  # noqa: F401 - pickletools decodes 'V' opcodes with it; import it now, not mid-read
import io
import pickle
import pickletools
from typing import Any

import numpy as np
import torch

from .errors import CheckpointError

MAX_NDIM = 32
"""More tensor dimensions than this are refused (torch's own limit is 64; EG3D uses <= 4)."""

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


def describe_name(text: object, limit: int = 120) -> str:
    """A file-supplied name, made safe to put in an error message (printable, bounded)."""
    s = text if isinstance(text, str) else repr(text)
    if not s.isprintable():
        s = ascii(s)[1:-1]
    return s if len(s) <= limit else s[:limit] + '...'


def refused_global(module: str, name: str, where: str = '') -> CheckpointError:
    return CheckpointError(
        f"refused global '{describe_name(module)}.{describe_name(name)}'{where} "
        "(not on the allow-list; the file may be malicious)")


class Inert:
    """Base of every object a file can make us create: no instance dict, BUILD refused.

    Without ``__dict__`` and with our own ``__setstate__``, the pickle BUILD opcode cannot
    plant attributes (``__class__``, ``__setstate__``, methods) on these objects."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise CheckpointError(f"object state (BUILD) is not allowed on {type(self).__name__}")


# --------------------------------------------------------------------------- storages, tensors

class StorageKind(Inert):
    """What a ``torch <X>Storage`` global stands for: element dtype and size."""

    __slots__ = ('name', 'np_dtype', 'torch_dtype', 'elsize')

    def __init__(self, name: str, np_dtype: str, torch_dtype: torch.dtype) -> None:
        self.name = name
        self.np_dtype = np.dtype(np_dtype)   # little-endian, as the legacy format stores data
        self.torch_dtype = torch_dtype
        self.elsize = self.np_dtype.itemsize


# numpy has no bfloat16: its bits are read as uint16 and reinterpreted by torch.  Bools are
# read as bytes and normalised (a byte other than 0/1 must not become an invalid bool).
STORAGE_KINDS = {k.name: k for k in (
    StorageKind('DoubleStorage', '<f8', torch.float64),
    StorageKind('FloatStorage', '<f4', torch.float32),
    StorageKind('HalfStorage', '<f2', torch.float16),
    StorageKind('BFloat16Storage', '<u2', torch.bfloat16),
    StorageKind('LongStorage', '<i8', torch.int64),
    StorageKind('IntStorage', '<i4', torch.int32),
    StorageKind('ShortStorage', '<i2', torch.int16),
    StorageKind('CharStorage', 'i1', torch.int8),
    StorageKind('ByteStorage', 'u1', torch.uint8),
    StorageKind('BoolStorage', 'u1', torch.bool),
)}
_UNSUPPORTED_STORAGES = frozenset({
    'ComplexFloatStorage', 'ComplexDoubleStorage', 'QInt8Storage', 'QUInt8Storage',
    'QInt32Storage', 'QUInt4x2Storage', 'QUInt2x4Storage'})


class StorageRef(Inert):
    """One storage: ``numel`` elements of ``kind`` at byte ``offset`` of ``blob`` (no copy)."""

    __slots__ = ('blob', 'offset', 'kind', 'numel')

    def __init__(self, blob: bytes, offset: int, kind: StorageKind, numel: int) -> None:
        self.blob, self.offset, self.kind, self.numel = blob, offset, kind, numel


class TensorRef(Inert):
    """A strided view of a :class:`StorageRef`, already checked to lie inside it."""

    __slots__ = ('storage', 'offset', 'size', 'stride', 'is_parameter')

    def __init__(self, storage: StorageRef, offset: int, size: tuple[int, ...],
                 stride: tuple[int, ...], is_parameter: bool = False) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.is_parameter = is_parameter

    @property
    def dtype(self) -> torch.dtype:
        return self.storage.kind.torch_dtype


MEMO_SLACK = 0
"""How far a PUT's memo index may run ahead of the entries stored so far (picklers number them in order)."""


def check_memo_indices(f: Any) -> None:
    """Refuse a pickle whose PUT/BINPUT/LONG_BINPUT index runs ahead of its memo.

    The C unpickler grows its memo array to the largest index it is given, zero-filled: one
    LONG_BINPUT in a 1 KB file can make it allocate and touch gigabytes. The opcodes are scanned
    (pickletools, nothing is built) from the file's position, which is restored afterwards. If the
    scan itself cannot parse the stream, the unpickler reports that problem in its own words."""
    start = f.tell()
    count = 0
    try:
        for op, arg, _ in pickletools.genops(_ReadOnly(f)):
            if op.name == 'MEMOIZE':
                count += 1
            elif op.name in ('PUT', 'BINPUT', 'LONG_BINPUT'):
                if type(arg) is not int or arg > count + MEMO_SLACK:
                    raise CheckpointError(f'pickle memo index {arg} runs ahead of the memo ({count} entries); '
                                          'the file is corrupt or hostile')
                count = max(count, arg + 1)
    except CheckpointError:
        raise
    except Exception:  # noqa: BLE001 - a stream the scan cannot parse: the unpickler says why
        pass
    finally:
        f.seek(start)


class _ReadOnly:
    """The stream's read methods only: without `tell`, genops does not ask for every opcode's offset
    (one lseek system call each on a file)."""

    def __init__(self, f: Any) -> None:
        self.read, self.readline = f.read, f.readline


class _MemoChecked:
    """Mixin for the unpicklers: `check_memo_indices` on the stream before `load`."""

    def __init__(self, file: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(file, *args, **kwargs)
        self._stream = file

    def load(self) -> Any:
        check_memo_indices(self._stream)
        return super().load()


class _HeaderUnpickler(_MemoChecked, pickle.Unpickler):
    """For the legacy header pickles (magic, protocol, sys info, keys): no globals, no ids."""

    def __init__(self, data: io.BytesIO, what: str) -> None:
        super().__init__(data)
        self.what = what

    def find_class(self, module: str, name: str) -> Any:
        raise refused_global(module, name, f' in a storage blob ({self.what})')

    def persistent_load(self, pid: object) -> Any:
        raise CheckpointError(f'unexpected persistent id in a storage blob ({self.what})')


class _StorageUnpickler(_MemoChecked, pickle.Unpickler):
    """The blob's main pickle: only ``torch <X>Storage`` globals and one storage record."""

    def __init__(self, data: io.BytesIO) -> None:
        super().__init__(data)
        self.records: list[tuple[StorageKind, str, int]] = []

    def find_class(self, module: str, name: str) -> Any:
        if module == 'torch' and name in STORAGE_KINDS:
            return STORAGE_KINDS[name]
        if module == 'torch' and name in _UNSUPPORTED_STORAGES:
            raise CheckpointError(f'storage type torch.{name} is not supported '
                                  '(only real float, integer and bool tensors)')
        raise refused_global(module, name, ' in a storage blob')

    def persistent_load(self, pid: object) -> Any:
        if self.records:
            raise CheckpointError('a storage blob describes more than one storage')
        if not (type(pid) is tuple and len(pid) == 6 and pid[0] == 'storage'):
            raise CheckpointError('malformed storage record in a storage blob')
        _, kind, key, location, numel, view = pid
        if not isinstance(kind, StorageKind):
            raise CheckpointError('storage record without a storage type')
        if type(key) is not str or type(location) is not str:
            raise CheckpointError('storage record with a non-string key or location')
        if type(numel) is not int or numel < 0:
            raise CheckpointError(f'storage record with an invalid element count {numel!r:.60}')
        if view is not None:
            raise CheckpointError('storage views inside a storage blob are not supported')
        record = (kind, key, numel)
        self.records.append(record)
        return record


def load_storage_blob(*args: object) -> StorageRef:
    """Stand-in for ``torch.storage._load_from_bytes``: parse one legacy ``torch.save`` stream.

    Layout (math doc 13.2): magic-number pickle, protocol pickle, sys-info pickle, the main
    pickle whose persistent id describes the storage, the key list, then per key an int64
    element count and the raw little-endian data.  Sizes are checked before anything big is
    allocated, and the data is not copied."""
    if len(args) != 1 or type(args[0]) is not bytes:
        raise CheckpointError('torch.storage._load_from_bytes expects one bytes argument')
    blob = args[0]
    if blob.startswith(b'PK\x03\x04'):
        raise CheckpointError('storage blob is a zip-format torch.save file, not a legacy storage stream '
                              '(it is not read)')
    data = io.BytesIO(blob)   # shares blob's buffer, no copy
    if _HeaderUnpickler(data, 'magic number').load() != _LEGACY_MAGIC:
        raise CheckpointError('storage blob is not a legacy torch.save stream (bad magic number)')
    if _HeaderUnpickler(data, 'protocol').load() != _LEGACY_PROTOCOL:
        raise CheckpointError('storage blob has an unsupported legacy protocol version')
    sys_info = _HeaderUnpickler(data, 'sys info').load()
    if type(sys_info) is not dict or sys_info.get('little_endian') is not True:
        raise CheckpointError('storage blob is not little-endian or lacks its sys info')
    main = _StorageUnpickler(data)
    result = main.load()
    if len(main.records) != 1 or result is not main.records[0]:
        raise CheckpointError('storage blob does not hold exactly one storage')
    kind, key, numel = result
    if _HeaderUnpickler(data, 'keys').load() != [key]:
        raise CheckpointError('storage blob key list does not match its storage record')
    count = data.read(8)
    if len(count) != 8 or int.from_bytes(count, 'little', signed=True) != numel:
        raise CheckpointError('storage blob element count does not match its storage record')
    offset = data.tell()
    have = len(blob) - offset
    need = numel * kind.elsize
    if need != have:
        raise CheckpointError(f'storage blob claims {numel} elements of torch.{kind.name} '
                              f'({need} bytes) but holds {have} bytes')
    return StorageRef(blob, offset, kind, numel)


def _check_index_tuple(value: object, what: str) -> tuple[int, ...]:
    if type(value) not in (tuple, list) or len(value) > MAX_NDIM:
        raise CheckpointError(f'tensor {what} must be a tuple of at most {MAX_NDIM} integers')
    for v in value:
        if type(v) is not int or v < 0:
            raise CheckpointError(f'tensor {what} must hold non-negative integers')
    return tuple(value)


def rebuild_tensor_v2(*args: object) -> TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: validate and record the view."""
    if len(args) not in (6, 7):
        raise CheckpointError(f'_rebuild_tensor_v2 called with {len(args)} arguments (6 or 7 expected)')
    storage, offset, size, stride, requires_grad, hooks = args[:6]
    metadata = args[6] if len(args) == 7 else None
    if not isinstance(storage, StorageRef):
        raise CheckpointError('_rebuild_tensor_v2 called without a storage from this file')
    if type(offset) is not int or offset < 0:
        raise CheckpointError('tensor storage offset must be a non-negative integer')
    size = _check_index_tuple(size, 'size')
    stride = _check_index_tuple(stride, 'stride')
    if len(size) != len(stride):
        raise CheckpointError('tensor size and stride differ in length')
    if type(requires_grad) is not bool:
        raise CheckpointError('tensor requires_grad must be a bool')
    if not isinstance(hooks, dict) or hooks:
        raise CheckpointError('tensor backward hooks are not supported')
    if metadata is not None and not isinstance(metadata, dict):
        raise CheckpointError('tensor metadata must be a dict')
    if 0 in size:
        last = offset - 1      # empty view: only the offset must lie within the storage
    else:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.numel:
        raise CheckpointError(f'tensor view (offset {offset}, size {size}, stride {stride}) '
                              f'exceeds its storage of {storage.numel} elements')
    return TensorRef(storage, offset, size, stride)


def rebuild_parameter(*args: object) -> TensorRef:
    """Stand-in for ``torch._utils._rebuild_parameter(data, requires_grad, hooks)``."""
    if len(args) != 3:
        raise CheckpointError('_rebuild_parameter expects 3 arguments')
    return _as_parameter(*args)


def rebuild_parameter_with_state(*args: object) -> TensorRef:
    """Stand-in for ``_rebuild_parameter_with_state``; the extra Python state is dropped."""
    if len(args) != 4 or not isinstance(args[3], dict):
        raise CheckpointError('_rebuild_parameter_with_state expects 4 arguments')
    return _as_parameter(*args[:3])


def _as_parameter(data: object, requires_grad: object, hooks: object) -> TensorRef:
    if not isinstance(data, TensorRef):
        raise CheckpointError('parameter data is not a tensor from this file')
    if type(requires_grad) is not bool:
        raise CheckpointError('parameter requires_grad must be a bool')
    if not isinstance(hooks, dict) or hooks:
        raise CheckpointError('parameter backward hooks are not supported')
    return TensorRef(data.storage, data.offset, data.size, data.stride, is_parameter=True)


class Materializer:
    """Turns :class:`TensorRef` views into CPU tensors, copying each storage once.

    Copies (rather than views of the file bytes) give ordinary writable tensors; storages are
    shared between the tensors that shared them in the file, so nothing is duplicated."""

    def __init__(self) -> None:
        self._bases: dict[int, tuple[StorageRef, torch.Tensor]] = {}

    def tensor(self, ref: TensorRef) -> torch.Tensor:
        base = self._base(ref.storage)
        return torch.as_strided(base, ref.size, ref.stride, ref.offset)

    def _base(self, s: StorageRef) -> torch.Tensor:
        hit = self._bases.get(id(s))
        if hit is not None:
            return hit[1]
        arr = np.frombuffer(s.blob, dtype=s.kind.np_dtype, count=s.numel, offset=s.offset)
        if s.kind.torch_dtype is torch.bool:
            arr = arr != 0
        else:
            arr = arr.astype(s.kind.np_dtype.newbyteorder('='), copy=True)
        base = torch.from_numpy(arr)
        if s.kind.torch_dtype is torch.bfloat16:
            base = base.view(torch.bfloat16)
        self._bases[id(s)] = (s, base)   # keep s alive so its id stays unique
        return base


# --------------------------------------------------------------------------- numpy scalars

_NUMPY_CODES = frozenset({'f2', 'f4', 'f8', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'b1'})
_BYTEORDERS = {'<': '<', '>': '>', '=': '=', '|': '='}


class NumpyDtypeRef(Inert):
    """Stand-in for a plain numeric ``numpy.dtype``; its BUILD state is validated, not run."""

    __slots__ = ('code', 'byteorder')

    def __init__(self, code: str) -> None:
        self.code, self.byteorder = code, '='

    def __setstate__(self, state: object) -> None:
        ok = (type(state) is tuple and len(state) in (8, 9) and state[0] in (3, 4)
              and state[1] in _BYTEORDERS and state[2] is None and state[3] is None
              and state[4] is None and all(type(v) is int for v in state[5:8])
              and (len(state) == 8 or state[8] is None))
        if not ok:
            raise CheckpointError('numpy dtype state is not that of a plain numeric dtype')
        self.byteorder = _BYTEORDERS[state[1]]

    def numpy(self) -> np.dtype:
        return np.dtype(self.byteorder + self.code)


def numpy_dtype(*args: object) -> NumpyDtypeRef:
    """Stand-in for ``numpy.dtype(code, align, copy)``: plain numeric codes only."""
    if not 1 <= len(args) <= 3 or not all(type(a) is bool for a in args[1:]):
        raise CheckpointError('numpy.dtype called with unexpected arguments')
    if args[0] not in _NUMPY_CODES:
        raise CheckpointError(f"numpy dtype {describe_name(args[0])!r} is not allowed "
                              "(only plain numeric dtypes)")
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
_STUBS = {path: type(path.rpartition('.')[2], (ModuleStub,), {'__slots__': (), 'class_path': path})
          for path in NON_PERSISTENT_MODULES}


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
    **{tuple(path.rsplit('.', 1)): stub for path, stub in _STUBS.items()},
}
"""(module, name) -> our stand-in.  Anything else in a file is refused."""


class SnapshotUnpickler(_MemoChecked, pickle.Unpickler):
    """The C unpickler with every global resolved through :data:`ALLOWED_GLOBALS`.

    ``find_class`` is the only way the C unpickler reaches a class or function (GLOBAL,
    STACK_GLOBAL, INST, EXT*), so a refused name raises before anything could run."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise refused_global(module, name) from None

    def persistent_load(self, pid: object) -> Any:
        raise CheckpointError('unexpected persistent id in the outer pickle '
                              '(EG3D snapshots have none; the file may be malicious)')
