"""The project's own checkpoint format: a ``.safetensors`` file with the ModelSpec in its metadata.

:func:`write_native` writes the tensors with metadata ``format='triplane-viz'``,
``format_version='1'`` and the :class:`ModelSpec` as JSON, atomically (temp file in the same
folder, fsync, rename); :func:`read_native` reads such a file back, checking the header before any
tensor is read.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_save

from ..errors import CheckpointError
from .restricted import describe_name
from .spec import TENSOR_DTYPES, LoadedCheckpoint, ModelSpec

NATIVE_FORMAT = 'triplane-viz'
NATIVE_FORMAT_VERSION = '1'
_MAX_SAFETENSORS_HEADER = 100 * 2**20


def write_native(path: str | os.PathLike, spec: ModelSpec, state_dict: dict[str, torch.Tensor]) -> None:
    """Write ``spec`` and ``state_dict`` as a native ``.safetensors`` checkpoint, atomically.

    Raises :class:`CheckpointError` for invalid input and ``OSError`` (naming ``path``) when the
    file system refuses; in both cases no temp file is left behind and ``path`` is untouched."""
    p = os.fspath(path)
    if not isinstance(spec, ModelSpec):
        raise CheckpointError(f'{p}: spec must be a ModelSpec, not {type(spec).__name__}')
    try:
        spec_json = json.dumps(dataclasses.asdict(spec))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f'{p}: spec is not JSON-serialisable ({e})') from e
    tensors = _tensors_for_saving(p, state_dict)
    metadata = {'format': NATIVE_FORMAT, 'format_version': NATIVE_FORMAT_VERSION, 'spec': spec_json}
    try:
        payload = safetensors_save(tensors, metadata=metadata)
    except Exception as e:
        raise CheckpointError(f'{p}: cannot serialise the tensors ({e})') from e
    del tensors
    _write_atomically(p, payload)


def read_native(p: str, f: Any, size: int) -> LoadedCheckpoint:
    """The native checkpoint open as `f` (at its start, `size` bytes long); `p` is its path."""
    header_len = int.from_bytes(f.read(8), 'little')
    if header_len > size - 8 or header_len > _MAX_SAFETENSORS_HEADER:
        raise CheckpointError(f'corrupt safetensors header (declares {header_len} bytes, the file has {size})')
    try:
        header = json.loads(f.read(header_len))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f'corrupt safetensors header ({e})') from e
    if not isinstance(header, dict):
        raise CheckpointError('corrupt safetensors header (not a JSON object)')
    meta = header.get('__metadata__')
    if not isinstance(meta, dict) or meta.get('format') != NATIVE_FORMAT:
        raise CheckpointError(
            'a .safetensors file without triplane-viz metadata; convert the '
            'model with renderer.checkpoint.convert or write_native'
        )
    version = meta.get('format_version')
    if version != NATIVE_FORMAT_VERSION:
        raise CheckpointError(
            f'unsupported triplane-viz format_version {describe_name(version, 20)!r} '
            f'(this reader knows {NATIVE_FORMAT_VERSION}); update triplane-viz'
        )
    spec = _spec_from_json(meta.get('spec'))
    try:
        with safe_open(p, framework='pt') as st:
            state_dict = {name: st.get_tensor(name) for name in st.keys()}
    except FileNotFoundError:  # safe_open reopens the path: the file went away after the header was read
        raise CheckpointError('the file was deleted or moved while it was being read') from None
    except Exception as e:  # safetensors raises its own SafetensorError and others
        raise CheckpointError(f'corrupt safetensors data ({describe_name(str(e), 200)})') from e
    for name, t in state_dict.items():
        if t.dtype not in TENSOR_DTYPES:
            raise CheckpointError(f'tensor {describe_name(name, 80)} has unsupported dtype {t.dtype}')
    return LoadedCheckpoint(spec=spec, state_dict=state_dict, path=p, source_format='native')


def _spec_from_json(text: object) -> ModelSpec:
    if not isinstance(text, str):
        raise CheckpointError('triplane-viz metadata has no spec')
    try:
        data = json.loads(text)
    except ValueError as e:
        raise CheckpointError(f'triplane-viz spec is not valid JSON ({e})') from e
    fields = {f.name: f for f in dataclasses.fields(ModelSpec)}
    required = {
        n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    if not isinstance(data, dict) or not required <= data.keys() or not data.keys() <= fields.keys():
        raise CheckpointError('triplane-viz spec does not have the fields of a ModelSpec')
    kinds: dict[str, type | tuple[type, ...]] = {
        'init_kwargs': dict,
        'rendering_kwargs': dict,
        'extra': dict,
        'neural_rendering_resolution': int,
        'plane_axes': (list, type(None)),
    }
    for name, kind in kinds.items():
        if name in data and (not isinstance(data[name], kind) or isinstance(data[name], bool)):
            raise CheckpointError(f'triplane-viz spec field {name} has the wrong type')
    return ModelSpec(**data)


def _tensors_for_saving(p: str, state_dict: object) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors with no shared storage (safetensors refuses shared memory)."""
    if not isinstance(state_dict, dict):
        raise CheckpointError(f'{p}: state_dict must be a dict of tensors')
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, t in state_dict.items():
        if type(name) is not str or not isinstance(t, torch.Tensor):
            raise CheckpointError(f'{p}: state_dict entry {describe_name(name, 80)!r} is not a named tensor')
        if t.dtype not in TENSOR_DTYPES:
            raise CheckpointError(f'{p}: tensor {name} has unsupported dtype {t.dtype}')
        t = t.detach().cpu().contiguous()
        if t.untyped_storage().data_ptr() in seen:
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    return out


def _write_atomically(p: str, payload: bytes) -> None:
    directory, base = os.path.split(os.path.abspath(p))
    tmp = os.path.join(directory, f'.{base}.{secrets.token_hex(6)}.tmp')
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, p)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise OSError(e.errno, f'{p}: cannot write checkpoint ({e.strerror or e})') from e
        raise
    try:  # make the rename durable; not every platform can fsync a directory
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
