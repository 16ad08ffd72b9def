"""Reading EG3D snapshots safely, and the project's own checkpoint format.

* :func:`read_checkpoint` opens an EG3D training-snapshot pickle (restricted unpickling, see
  :mod:`renderer.checkpoint_pickle`: nothing in the file is imported or executed) or a native
  file, chosen by the file's content, never by its extension.
* :func:`write_native` writes the native format: a ``.safetensors`` file whose metadata holds
  ``format='triplane-viz'``, ``format_version='1'`` and the :class:`ModelSpec` as JSON.
  Written atomically (temp file in the same folder, fsync, rename).
* :func:`convert` reads any supported checkpoint and writes it as native.

Every failure to read raises :class:`CheckpointError` whose message starts with the path.
Shapes and names are checked against the config by the generator, not here; the reader checks
that tensors are real float/int/bool tensors lying inside their storages.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import secrets
import stat
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_save

from .checkpoint_pickle import (Materializer, ModuleStub, PersistentNode, SnapshotUnpickler,
                                TensorRef, describe_name)
from .errors import CheckpointError
from .spec import LoadedCheckpoint, ModelSpec

NATIVE_FORMAT = 'triplane-viz'
NATIVE_FORMAT_VERSION = '1'
TENSOR_DTYPES = frozenset({torch.float64, torch.float32, torch.float16, torch.bfloat16,
                           torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8,
                           torch.bool})
"""Dtypes a checkpoint may hold (real numbers and bools; no complex or quantized)."""

_NOT_A_CHECKPOINT = 'not a checkpoint (neither an EG3D pickle nor a triplane-viz .safetensors file)'
_LEGACY_TORCH_PREFIX = b'\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.'
_MAX_SAFETENSORS_HEADER = 100 * 2**20
_MAX_MODULES = 100_000     # module nodes visited in one network (guards shared-subtree blowups)
_MAX_PLAIN_ITEMS = 100_000  # values converted from one kwargs tree
_MAX_DEPTH = 64


def read_checkpoint(path: str | os.PathLike) -> LoadedCheckpoint:
    """Read an EG3D snapshot pickle or a native ``.safetensors`` checkpoint.

    For a snapshot, ``G_ema`` is taken (``G`` if there is no ``G_ema``); D and the augment pipe
    are parsed as inert data and dropped.  Raises :class:`CheckpointError` on any problem."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise CheckpointError(f'{describe_name(path)}: not a file path') from None
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    try:
        return _read(p)
    except CheckpointError as e:
        raise CheckpointError(f'{p}: {e}') from e.__cause__
    except (pickle.UnpicklingError, EOFError) as e:
        msg = str(e)
        if isinstance(e, EOFError) or 'truncated' in msg or 'exhausted' in msg:
            raise CheckpointError(f'{p}: truncated pickle ({describe_name(msg, 200)})') from e
        raise CheckpointError(f'{p}: corrupt pickle ({describe_name(msg, 200)})') from e
    except RecursionError as e:
        raise CheckpointError(f'{p}: corrupt checkpoint (nested too deeply)') from e
    except MemoryError as e:
        raise CheckpointError(f'{p}: out of memory while reading '
                              '(a size in the file may be corrupt or hostile)') from e
    except OSError as e:
        raise CheckpointError(f'{p}: cannot read ({e.strerror or e})') from e
    except Exception as e:   # struct errors, ValueError/TypeError from odd opcodes, ...
        raise CheckpointError(f'{p}: corrupt checkpoint ({type(e).__name__}: '
                              f'{describe_name(str(e), 200)})') from e


def write_native(path: str | os.PathLike, spec: ModelSpec,
                 state_dict: dict[str, torch.Tensor]) -> None:
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


def convert(src: str | os.PathLike, dst: str | os.PathLike) -> LoadedCheckpoint:
    """Read any supported checkpoint at ``src`` and write it as native to ``dst``.

    Returns what was read (its ``path`` is ``src``)."""
    ckpt = read_checkpoint(src)
    write_native(dst, ckpt.spec, ckpt.state_dict)
    return ckpt


# --------------------------------------------------------------------------- dispatch

def _read(p: str) -> LoadedCheckpoint:
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise CheckpointError('no such file') from None
    if stat.S_ISDIR(st.st_mode):
        raise CheckpointError('is a directory, not a checkpoint file')
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError('not a regular file')
    if st.st_size == 0:
        raise CheckpointError(f'empty file, {_NOT_A_CHECKPOINT}')
    with open(p, 'rb') as f:
        head = f.read(16)
        f.seek(0)
        if head.startswith(_LEGACY_TORCH_PREFIX):
            raise CheckpointError('a legacy torch.save file, not an EG3D network snapshot; '
                                  'only EG3D pickles and triplane-viz .safetensors are supported')
        if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
            return _read_eg3d_pickle(p, f)
        if head.startswith(b'PK\x03\x04'):
            raise CheckpointError(
                'zip-format torch.save files are not supported (they are not EG3D snapshots); '
                'convert the model to a triplane-viz .safetensors file with '
                'renderer.checkpoint.write_native in an environment you trust')
        if len(head) >= 9 and head[8:9] == b'{':
            return _read_native(p, f, st.st_size)
    raise CheckpointError(_NOT_A_CHECKPOINT)


# --------------------------------------------------------------------------- EG3D pickles

def _read_eg3d_pickle(p: str, f: Any) -> LoadedCheckpoint:
    top = SnapshotUnpickler(f).load()
    if f.read(1):
        raise CheckpointError('trailing data after the pickle')
    network, node, training_set = _pick_network(top)
    del top   # frees the bytes of D and (if G_ema was taken) G before anything is copied
    state = node.state
    materializer = Materializer()
    extra: dict[str, Any] = {'class_name': node.class_name, 'source': 'eg3d-pickle',
                             'network': network}
    if isinstance(training_set, dict):
        try:
            extra['training_set_kwargs'] = _plain(training_set, 'training_set_kwargs')
        except CheckpointError:
            pass   # informative only; an odd value there does not make the network unusable
    spec = ModelSpec(   # settings first: a broken config fails before any tensor is copied
        init_kwargs=_plain_dict(state, '_init_kwargs'),
        rendering_kwargs=_plain_dict(state, 'rendering_kwargs'),
        neural_rendering_resolution=_neural_rendering_resolution(state),
        plane_axes=_plane_axes(state, materializer),
        extra=extra,
    )
    state_dict = {name: materializer.tensor(ref) for name, ref in _collect_tensors(node).items()}
    return LoadedCheckpoint(spec=spec, state_dict=state_dict, path=p, source_format='eg3d-pickle')


def _pick_network(top: object) -> tuple[str, PersistentNode, object]:
    if type(top) is not dict:
        raise CheckpointError(f'not an EG3D training snapshot (top level is {_kind(top)}, '
                              'expected a dict holding G_ema)')
    for network in ('G_ema', 'G'):
        node = top.get(network)
        if node is not None:
            break
    else:
        keys = ', '.join(describe_name(k, 40) for k in list(top)[:20]) or 'none'
        raise CheckpointError(f'no G_ema or G network in the snapshot (keys: {keys})')
    if not isinstance(node, PersistentNode) or node.class_name != 'TriPlaneGenerator':
        raise CheckpointError(f'not an EG3D tri-plane generator (class {_kind(node)})')
    return network, node, top.get('training_set_kwargs')


def _kind(obj: object) -> str:
    if isinstance(obj, (PersistentNode, ModuleStub)):
        return describe_name(obj.class_name, 80)
    return type(obj).__name__


def _collect_tensors(root: PersistentNode) -> dict[str, TensorRef]:
    """Flat state-dict names -> tensor refs, in torch's order (own params, buffers, children).

    Skips None entries and non-persistent buffers; refuses cycles and oversized trees."""
    out: dict[str, TensorRef] = {}
    on_path: set[int] = set()
    visited = 0

    def visit(node: object, prefix: str) -> None:
        nonlocal visited
        visited += 1
        if visited > _MAX_MODULES or len(on_path) > _MAX_DEPTH:
            raise CheckpointError('module tree is too large or too deep')
        where = prefix[:-1] or 'the generator'
        if not isinstance(node, (PersistentNode, ModuleStub)) or not isinstance(node.state, dict):
            raise CheckpointError(f'module {where} is not a module ({_kind(node)})')
        state = node.state
        non_persistent = dict.get(state, '_non_persistent_buffers_set', set())
        if type(non_persistent) not in (set, frozenset):
            raise CheckpointError(f'module {where} has an invalid _non_persistent_buffers_set')
        for field in ('_parameters', '_buffers'):
            for name, value in _name_items(state, field, where):
                if value is None or (field == '_buffers' and name in non_persistent):
                    continue
                if not isinstance(value, TensorRef):
                    raise CheckpointError(f'{field[1:-1]} {prefix}{name} is not a tensor ({_kind(value)})')
                if prefix + name in out:
                    raise CheckpointError(f'duplicate tensor name {prefix}{name}')
                if value.dtype not in TENSOR_DTYPES:
                    raise CheckpointError(f'tensor {prefix}{name} has unsupported dtype {value.dtype}')
                out[prefix + name] = value
        on_path.add(id(node))
        for name, child in _name_items(state, '_modules', where):
            if child is None:
                continue
            if id(child) in on_path:
                raise CheckpointError(f'module {prefix}{name} contains itself')
            visit(child, f'{prefix}{name}.')
        on_path.discard(id(node))

    visit(root, '')
    return out


def _name_items(state: dict, field: str, where: str) -> list[tuple[str, object]]:
    table = dict.get(state, field, {})
    if not isinstance(table, dict):
        raise CheckpointError(f'module {where}: {field} is not a dict')
    items = list(dict.items(table))
    for name, _ in items:
        if type(name) is not str or not name or '.' in name:
            raise CheckpointError(f'module {where}: invalid name {describe_name(name, 60)!r} in {field}')
    return items


def _plain(value: object, what: str) -> Any:
    """A JSON-compatible copy: dict subclasses -> dict, tuples -> lists, numbers as they are."""
    budget = [_MAX_PLAIN_ITEMS]

    def conv(v: object, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0 or depth > _MAX_DEPTH:
            raise CheckpointError(f'{what} is too large or too deeply nested')
        if v is None or type(v) in (bool, int, float, str):
            return v
        if isinstance(v, dict):
            items = list(dict.items(v))
            if not all(type(k) is str for k, _ in items):
                raise CheckpointError(f'{what} has a non-string key')
            return {k: conv(x, depth + 1) for k, x in items}
        if type(v) in (list, tuple):
            return [conv(x, depth + 1) for x in v]
        raise CheckpointError(f'{what} holds an unexpected {_kind(v)} value')

    return conv(value, 0)


def _plain_dict(state: dict, key: str) -> dict[str, Any]:
    value = dict.get(state, key)
    if not isinstance(value, dict):
        raise CheckpointError(f'the generator has no {key} dict (found {_kind(value)})')
    return _plain(value, key)


def _neural_rendering_resolution(state: dict) -> int:
    value = dict.get(state, 'neural_rendering_resolution')
    if type(value) is not int or value <= 0:
        raise CheckpointError('the generator has no valid neural_rendering_resolution')
    return value


def _plane_axes(state: dict, materializer: Materializer) -> list[list[list[float]]] | None:
    renderer = dict.get(dict.get(state, '_modules') or {}, 'renderer')
    if renderer is None:
        return None
    if not isinstance(renderer, (PersistentNode, ModuleStub)) or not isinstance(renderer.state, dict):
        raise CheckpointError(f'the renderer is not a module ({_kind(renderer)})')
    ref = dict.get(renderer.state, 'plane_axes')
    if ref is None:
        return None
    if not isinstance(ref, TensorRef) or not ref.dtype.is_floating_point or ref.size != (3, 3, 3):
        raise CheckpointError('renderer.plane_axes is not a 3x3x3 float tensor')
    return materializer.tensor(ref).tolist()


# --------------------------------------------------------------------------- native format

def _read_native(p: str, f: Any, size: int) -> LoadedCheckpoint:
    header_len = int.from_bytes(f.read(8), 'little')
    if header_len > size - 8 or header_len > _MAX_SAFETENSORS_HEADER:
        raise CheckpointError(f'corrupt safetensors header (declares {header_len} bytes, '
                              f'the file has {size})')
    try:
        header = json.loads(f.read(header_len))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f'corrupt safetensors header ({e})') from e
    if not isinstance(header, dict):
        raise CheckpointError('corrupt safetensors header (not a JSON object)')
    meta = header.get('__metadata__')
    if not isinstance(meta, dict) or meta.get('format') != NATIVE_FORMAT:
        raise CheckpointError('a .safetensors file without triplane-viz metadata; convert the '
                              'model with renderer.checkpoint.convert or write_native')
    version = meta.get('format_version')
    if version != NATIVE_FORMAT_VERSION:
        raise CheckpointError(f'unsupported triplane-viz format_version {describe_name(version, 20)!r} '
                              f'(this reader knows {NATIVE_FORMAT_VERSION}); update triplane-viz')
    spec = _spec_from_json(meta.get('spec'))
    try:
        with safe_open(p, framework='pt') as st:
            state_dict = {name: st.get_tensor(name) for name in st.keys()}
    except FileNotFoundError:   # safe_open reopens the path: the file went away after the header was read
        raise CheckpointError('the file was deleted or moved while it was being read') from None
    except Exception as e:   # safetensors raises its own SafetensorError and others
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
    required = {n for n, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    if not isinstance(data, dict) or not required <= data.keys() or not data.keys() <= fields.keys():
        raise CheckpointError('triplane-viz spec does not have the fields of a ModelSpec')
    kinds = {'init_kwargs': dict, 'rendering_kwargs': dict, 'extra': dict,
             'neural_rendering_resolution': int, 'plane_axes': (list, type(None))}
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
                view = view[os.write(fd, view):]
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
    try:   # make the rename durable; not every platform can fsync a directory
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
