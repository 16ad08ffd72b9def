"""Tensors inside an EG3D snapshot, read without torch.load: legacy storage streams and tensor views.

The storages inside a snapshot are legacy ``torch.save`` streams; :func:`load_storage_blob` parses
them (magic, protocol and sys-info pickles, the storage record, the raw data) without ``torch.load``,
and the tensor reducers (:func:`rebuild_tensor_v2`, the parameter rebuilders) only record views.
Nothing here builds torch tensors while unpickling: storages stay views of the file's bytes
(:class:`StorageRef`) and tensors are recorded as :class:`TensorRef` views of them, validated
against the storage bounds. :class:`Materializer` turns the chosen network's refs into tensors
afterwards, so the bytes of D and G never get copied.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, cast

import numpy as np
import torch

from ..errors import CheckpointError
from .restricted import Inert, MemoChecked, refused_global

MAX_NDIM = 32
"""More tensor dimensions than this are refused (torch's own limit is 64; EG3D uses <= 4)."""

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class StorageKind(Inert):
    """What a ``torch <X>Storage`` global stands for: element dtype and size."""

    __slots__ = ('name', 'np_dtype', 'torch_dtype', 'elsize')

    def __init__(self, name: str, np_dtype: str, torch_dtype: torch.dtype) -> None:
        self.name = name
        self.np_dtype = np.dtype(np_dtype)  # little-endian, as the legacy format stores data
        self.torch_dtype = torch_dtype
        self.elsize = self.np_dtype.itemsize


# numpy has no bfloat16: its bits are read as uint16 and reinterpreted by torch.  Bools are
# read as bytes and normalised (a byte other than 0/1 must not become an invalid bool).
STORAGE_KINDS = {
    k.name: k
    for k in (
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
    )
}
_UNSUPPORTED_STORAGES = frozenset(
    {
        'ComplexFloatStorage',
        'ComplexDoubleStorage',
        'QInt8Storage',
        'QUInt8Storage',
        'QInt32Storage',
        'QUInt4x2Storage',
        'QUInt2x4Storage',
    }
)


class StorageRef(Inert):
    """One storage: ``numel`` elements of ``kind`` at byte ``offset`` of ``blob`` (no copy)."""

    __slots__ = ('blob', 'offset', 'kind', 'numel')

    def __init__(self, blob: bytes, offset: int, kind: StorageKind, numel: int) -> None:
        self.blob, self.offset, self.kind, self.numel = blob, offset, kind, numel


class TensorRef(Inert):
    """A strided view of a :class:`StorageRef`, already checked to lie inside it."""

    __slots__ = ('storage', 'offset', 'size', 'stride', 'is_parameter')

    def __init__(
        self,
        storage: StorageRef,
        offset: int,
        size: tuple[int, ...],
        stride: tuple[int, ...],
        is_parameter: bool = False,
    ) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.is_parameter = is_parameter

    @property
    def dtype(self) -> torch.dtype:
        return self.storage.kind.torch_dtype


class _HeaderUnpickler(MemoChecked, pickle.Unpickler):
    """For the legacy header pickles (magic, protocol, sys info, keys): no globals, no ids."""

    def __init__(self, data: io.BytesIO, what: str) -> None:
        super().__init__(data)
        self.what = what

    def find_class(self, module: str, name: str) -> Any:
        raise refused_global(module, name, f' in a storage blob ({self.what})')

    def persistent_load(self, pid: object) -> Any:
        raise CheckpointError(f'unexpected persistent id in a storage blob ({self.what})')


class _StorageUnpickler(MemoChecked, pickle.Unpickler):
    """The blob's main pickle: only ``torch <X>Storage`` globals and one storage record."""

    def __init__(self, data: io.BytesIO) -> None:
        super().__init__(data)
        self.records: list[tuple[StorageKind, str, int]] = []

    def find_class(self, module: str, name: str) -> Any:
        if module == 'torch' and name in STORAGE_KINDS:
            return STORAGE_KINDS[name]
        if module == 'torch' and name in _UNSUPPORTED_STORAGES:
            raise CheckpointError(
                f'storage type torch.{name} is not supported (only real float, integer and bool tensors)'
            )
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
        raise CheckpointError(
            'storage blob is a zip-format torch.save file, not a legacy storage stream (it is not read)'
        )
    data = io.BytesIO(blob)  # shares blob's buffer, no copy
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
        raise CheckpointError(
            f'storage blob claims {numel} elements of torch.{kind.name} ({need} bytes) but holds {have} bytes'
        )
    return StorageRef(blob, offset, kind, numel)


def _check_index_tuple(value: object, what: str) -> tuple[int, ...]:
    items = cast('tuple[int, ...] | list[int]', value)  # what the checks below let through
    if type(value) not in (tuple, list) or len(items) > MAX_NDIM:
        raise CheckpointError(f'tensor {what} must be a tuple of at most {MAX_NDIM} integers')
    for v in items:
        if type(v) is not int or v < 0:
            raise CheckpointError(f'tensor {what} must hold non-negative integers')
    return tuple(items)


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
        last = offset - 1  # empty view: only the offset must lie within the storage
    else:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.numel:
        raise CheckpointError(
            f'tensor view (offset {offset}, size {size}, stride {stride}) '
            f'exceeds its storage of {storage.numel} elements'
        )
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
        self._bases[id(s)] = (s, base)  # keep s alive so its id stays unique
        return base
