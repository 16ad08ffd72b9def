"""An EG3D training snapshot read into a LoadedCheckpoint: the generator's config and tensors.

The snapshot is unpickled by :class:`SnapshotUnpickler` (renderer.checkpoint.eg3d_pickle: nothing
named in the file is imported or run); ``G_ema`` is taken (``G`` if there is no ``G_ema``), D and
the augment pipe are parsed as inert data and dropped. The module tree's parameters and persistent
buffers become a flat state dict in torch's order; the constructor kwargs, rendering kwargs,
neural rendering resolution and plane axes become the ModelSpec.
"""

from __future__ import annotations

from typing import Any, cast

from ..errors import CheckpointError
from .eg3d_pickle import ModuleStub, PersistentNode, SnapshotUnpickler
from .restricted import describe_name
from .spec import TENSOR_DTYPES, LoadedCheckpoint, ModelSpec
from .torch_storage import Materializer, TensorRef

_MAX_MODULES = 100_000  # module nodes visited in one network (guards shared-subtree blowups)
_MAX_PLAIN_ITEMS = 100_000  # values converted from one kwargs tree
_MAX_DEPTH = 64


def read_snapshot(p: str, f: Any) -> LoadedCheckpoint:
    """The generator of the EG3D snapshot pickle open as `f` (at its start); `p` is its path."""
    top = SnapshotUnpickler(f).load()
    if f.read(1):
        raise CheckpointError('trailing data after the pickle')
    network, node, training_set = _pick_network(top)
    del top  # frees the bytes of D and (if G_ema was taken) G before anything is copied
    state = node.state
    materializer = Materializer()
    extra: dict[str, Any] = {'class_name': node.class_name, 'source': 'eg3d-pickle', 'network': network}
    if isinstance(training_set, dict):
        try:
            extra['training_set_kwargs'] = _plain(training_set, 'training_set_kwargs')
        except CheckpointError:
            pass  # informative only; an odd value there does not make the network unusable
    spec = ModelSpec(  # settings first: a broken config fails before any tensor is copied
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
        raise CheckpointError(
            f'not an EG3D training snapshot (top level is {_kind(top)}, expected a dict holding G_ema)'
        )
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
            return [conv(x, depth + 1) for x in cast('list[object] | tuple[object, ...]', v)]
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
