"""Test helper: write an EG3D training snapshot in the reference's pickle format.

The file is what ``training_loop.py`` writes (eg3d-reference.md section 4, eg3d-math.md section
13): a protocol-4 pickle of ``{training_set_kwargs, G, D, G_ema, augment_pipe}`` where each
persistent module is a REDUCE of ``torch_utils.persistence._reconstruct_persistent_obj(meta)``,
non-persistent modules are NEWOBJ + BUILD of their ``training.*`` / ``torch.nn`` class, and the
tensors are whatever torch's own reducers emit (``_rebuild_tensor_v2``, ``_rebuild_parameter``,
``torch.storage._load_from_bytes`` of a legacy ``torch.save`` blob).

Globals of modules that do not exist here (``torch_utils``, ``training``, ``dnnlib``) are
written by name with :class:`GlobalName`; nothing is imported and ``sys.modules`` is untouched.
Written from the format description, not from the reference code.
"""

from __future__ import annotations

import math
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

BUFFER_NAMES = frozenset({'resample_filter', 'noise_const', 'w_avg', 'dataset_label_std'})
"""Leaf names that are buffers, not parameters, in the EG3D networks."""

PLANE_AXES = [
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]],
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
]
"""The renderer's plane axes as the reference stores them (math doc section 9)."""


class GlobalName:
    """A global written by (module, name) without importing it."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name


class Reduce:
    """``func(*args)`` as a REDUCE opcode; ``func`` is a :class:`GlobalName`."""

    def __init__(self, func: GlobalName, args: tuple) -> None:
        self.func, self.args = func, args


class NewObj:
    """``cls.__new__(cls)`` followed by BUILD with ``state`` (non-persistent modules)."""

    def __init__(self, cls: GlobalName, state: dict) -> None:
        self.cls, self.state = cls, state


class EasyDictOut(dict):
    """Pickled as ``dnnlib.util.EasyDict``: NEWOBJ then SETITEMS."""


_GLOBALS: dict[tuple[str, str], GlobalName] = {}


def global_name(module: str, name: str) -> GlobalName:
    """One shared instance per global, so the pickle names it once and memo-gets it after."""
    return _GLOBALS.setdefault((module, name), GlobalName(module, name))


def persistent(class_name: str, state: dict, module_src: str) -> Reduce:
    meta = {'type': 'class', 'version': 6, 'module_src': module_src, 'class_name': class_name, 'state': state}
    return Reduce(global_name('torch_utils.persistence', '_reconstruct_persistent_obj'), (meta,))


class SnapshotPickler(pickle._Pickler):
    """The pure-Python pickler, taught to write the stand-ins above by name."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_global_name(self, obj: GlobalName) -> None:
        self.save(obj.module)
        self.save(obj.name)
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)

    def save_reduce_obj(self, obj: Reduce) -> None:
        self.save(obj.func)
        self.save(obj.args)
        self.write(pickle.REDUCE)
        self.memoize(obj)

    def save_newobj(self, obj: NewObj) -> None:
        self.save(obj.cls)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        self.save(obj.state)
        self.write(pickle.BUILD)

    def save_easydict(self, obj: EasyDictOut) -> None:
        self.save(global_name('dnnlib.util', 'EasyDict'))
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        self._batch_setitems(iter(obj.items()))

    dispatch[GlobalName] = save_global_name
    dispatch[Reduce] = save_reduce_obj
    dispatch[NewObj] = save_newobj
    dispatch[EasyDictOut] = save_easydict


def module_state(
    params: dict | None = None, buffers: dict | None = None, modules: dict | None = None, **attrs: Any
) -> dict:
    """An ``nn.Module.__dict__`` as torch 2.x has it, in eval mode, plus ``attrs``."""
    state = {
        'training': False,
        '_parameters': OrderedDict(params or {}),
        '_buffers': OrderedDict(buffers or {}),
        '_non_persistent_buffers_set': set(),
        '_backward_pre_hooks': OrderedDict(),
        '_backward_hooks': OrderedDict(),
        '_is_full_backward_hook': None,
        '_forward_hooks': OrderedDict(),
        '_forward_hooks_with_kwargs': OrderedDict(),
        '_forward_hooks_always_called': OrderedDict(),
        '_forward_pre_hooks': OrderedDict(),
        '_forward_pre_hooks_with_kwargs': OrderedDict(),
        '_state_dict_hooks': OrderedDict(),
        '_state_dict_pre_hooks': OrderedDict(),
        '_load_state_dict_pre_hooks': OrderedDict(),
        '_load_state_dict_post_hooks': OrderedDict(),
        '_modules': OrderedDict(modules or {}),
    }
    state.update(attrs)
    return state


class _Tree:
    """Module paths -> own tensors and children, in state-dict order."""

    def __init__(self) -> None:
        self.params: dict[str, torch.Tensor] = OrderedDict()
        self.buffers: dict[str, torch.Tensor] = OrderedDict()
        self.children: dict[str, _Tree] = OrderedDict()

    def child(self, name: str) -> _Tree:
        return self.children.setdefault(name, _Tree())

    @classmethod
    def from_state_dict(cls, state_dict: dict[str, torch.Tensor]) -> _Tree:
        root = cls()
        for key, value in state_dict.items():
            *path, leaf = key.split('.')
            node = root
            for part in path:
                node = node.child(part)
            tensor = torch.as_tensor(value).detach().clone().contiguous()
            if leaf in BUFFER_NAMES:
                node.buffers[leaf] = tensor
            else:
                node.params[leaf] = torch.nn.Parameter(tensor, requires_grad=False)
        return root


def _generator_class(path: str, sr_class: str) -> tuple[str, str]:
    """('persistent'|'newobj', class name or module path) for a generator module path."""
    parts = path.split('.') if path else []
    last = parts[-1] if parts else ''
    fixed = {
        '': ('persistent', 'TriPlaneGenerator'),
        'backbone': ('persistent', 'Generator'),
        'backbone.mapping': ('persistent', 'MappingNetwork'),
        'backbone.synthesis': ('persistent', 'SynthesisNetwork'),
        'superresolution': ('persistent', sr_class),
        'decoder': ('newobj', 'training.triplane.OSGDecoder'),
        'decoder.net': ('newobj', 'torch.nn.modules.container.Sequential'),
    }
    if path in fixed:
        return fixed[path]
    if len(parts) == 3 and parts[:2] == ['backbone', 'synthesis']:
        return 'persistent', 'SynthesisBlock'
    if len(parts) == 2 and parts[0] == 'superresolution':
        up = last == 'block1' or sr_class == 'SuperresolutionHybrid8XDC'
        return 'persistent', 'SynthesisBlock' if up else 'SynthesisBlockNoUp'
    if last in ('conv0', 'conv1'):
        return 'persistent', 'SynthesisLayer'
    if last == 'torgb':
        return 'persistent', 'ToRGBLayer'
    if last in ('affine', 'embed') or last.startswith('fc') or parts[:2] == ['decoder', 'net']:
        return 'persistent', 'FullyConnectedLayer'
    raise ValueError(f'no EG3D class known for module {path!r}')


def _layer_attrs(class_name: str, tree: _Tree) -> dict:
    """Plain attributes of a few layer classes, incl. numpy float64 gains as the reference has."""
    weight = tree.params.get('weight')
    if class_name == 'FullyConnectedLayer' and weight is not None:
        return {
            'in_features': weight.shape[1],
            'out_features': weight.shape[0],
            'activation': 'linear',
            'weight_gain': np.float64(1 / math.sqrt(weight.shape[1])),
            'bias_gain': 1.0,
        }
    if class_name == 'SynthesisLayer':
        return {'act_gain': np.float64(math.sqrt(2)), 'conv_clamp': None, 'activation': 'lrelu'}
    if class_name == 'ToRGBLayer' and weight is not None:
        return {'weight_gain': np.float64(1 / math.sqrt(weight.shape[1])), 'conv_clamp': None}
    return {}


def _generator_node(tree: _Tree, path: str, spec: Any, module_src: str, wrap: Any) -> Any:
    kind, name = _generator_class(path, spec.rendering_kwargs['superresolution_module'].rsplit('.', 1)[-1])
    children = OrderedDict(
        (n, _generator_node(c, f'{path}.{n}' if path else n, spec, module_src, wrap)) for n, c in tree.children.items()
    )
    if path == 'decoder.net':  # Sequential(FC, Softplus, FC): net.1 has no tensors
        softplus = NewObj(
            global_name('torch.nn.modules.activation', 'Softplus'), module_state(beta=1.0, threshold=20.0)
        )
        children = OrderedDict(sorted({**children, '1': softplus}.items(), key=lambda kv: int(kv[0])))
    attrs = {}
    if path == '':
        init = spec.init_kwargs
        attrs = {
            '_init_args': (),
            '_init_kwargs': wrap(init),
            **{k: init[k] for k in ('z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels') if k in init},
            'rendering_kwargs': dict(spec.rendering_kwargs),
            'neural_rendering_resolution': spec.neural_rendering_resolution,
            '_last_planes': None,
        }
        axes = torch.tensor(spec.plane_axes if spec.plane_axes is not None else PLANE_AXES, dtype=torch.float32)
        renderer = NewObj(
            global_name('training.volumetric_rendering.renderer', 'ImportanceRenderer'),
            module_state(
                modules={
                    'ray_marcher': NewObj(
                        global_name('training.volumetric_rendering.ray_marcher', 'MipRayMarcher2'), module_state()
                    )
                },
                plane_axes=axes,
            ),
        )
        sampler = NewObj(
            global_name('training.volumetric_rendering.ray_sampler', 'RaySampler'),
            module_state(ray_origins_h=None, ray_directions=None, depths=None),
        )
        # registration order of the reference: backbone, renderer, ray_sampler, superresolution, decoder
        ordered = OrderedDict()
        for n, c in children.items():
            ordered[n] = c
            if n == 'backbone':
                ordered['renderer'], ordered['ray_sampler'] = renderer, sampler
        ordered.setdefault('renderer', renderer)
        ordered.setdefault('ray_sampler', sampler)
        children = ordered
    elif kind == 'persistent':
        attrs = {'_init_args': (), '_init_kwargs': wrap({}), **_layer_attrs(name, tree)}
    state = module_state(tree.params, tree.buffers, children, **attrs)
    if kind == 'newobj':
        module, _, cls = name.rpartition('.')
        return NewObj(global_name(module, cls), state)
    return persistent(name, state, module_src)


def _discriminator_node(tree: _Tree, path: str, module_src: str) -> Reduce:
    last = path.rsplit('.', 1)[-1]
    if not path:
        name = 'DualDiscriminator'
    elif last.startswith('b') and last[1:].isdigit():
        name = 'DiscriminatorBlock'
    elif last == 'epilogue':
        name = 'DiscriminatorEpilogue'
    elif last == 'mapping':
        name = 'MappingNetwork'
    elif last.startswith('fc') or last == 'out' or last == 'embed':
        name = 'FullyConnectedLayer'
    else:
        name = 'Conv2dLayer'
    children = OrderedDict(
        (n, _discriminator_node(c, f'{path}.{n}' if path else n, module_src)) for n, c in tree.children.items()
    )
    attrs = {'_init_args': (), '_init_kwargs': {}}
    if name == 'Conv2dLayer':
        attrs['act_gain'] = np.float64(math.sqrt(2))
    return persistent(name, module_state(tree.params, tree.buffers, children, **attrs), module_src)


def small_discriminator_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A few random tensors shaped like a (tiny) DualDiscriminator."""
    g = torch.Generator().manual_seed(seed)
    shapes = {
        'b32.fromrgb.weight': (8, 6, 1, 1),
        'b32.fromrgb.bias': (8,),
        'b32.conv0.weight': (8, 8, 3, 3),
        'b32.conv0.bias': (8,),
        'b32.conv0.resample_filter': (4, 4),
        'b32.skip.weight': (16, 8, 1, 1),
        'b32.resample_filter': (4, 4),
        'mapping.embed.weight': (16, 25),
        'mapping.embed.bias': (16,),
        'epilogue.fc.weight': (16, 256),
        'epilogue.fc.bias': (16,),
        'epilogue.out.weight': (16, 16),
        'epilogue.out.bias': (16,),
    }
    return {k: torch.randn(s, generator=g) for k, s in shapes.items()}


def write_eg3d_pickle(
    path: str | Path,
    spec: Any,
    state_dict: dict[str, Any],
    *,
    module_src: str,
    include_D: bool = True,
    top_key_G_ema: bool = True,
    G_state_dict: dict[str, Any] | None = None,
    D_state_dict: dict[str, Any] | None = None,
    easydict_kwargs: bool = True,
    training_set_kwargs: dict | None = None,
    extra_top: dict | None = None,
) -> None:
    """Write ``state_dict`` (+ ``spec``) as an official-format EG3D training snapshot.

    ``state_dict`` becomes G_ema (or G alone when ``top_key_G_ema`` is False); G gets
    ``G_state_dict`` (default: a copy of ``state_dict``); D is a small random discriminator
    unless ``D_state_dict`` is given.  ``easydict_kwargs`` stores ``_init_kwargs`` and its nested
    dicts as ``dnnlib.util.EasyDict`` (the released pickles use plain dicts).  ``extra_top`` adds
    or replaces top-level entries (for hostile tests)."""

    def wrap(value: Any) -> Any:
        if isinstance(value, dict):
            items = {k: wrap(v) for k, v in value.items()}
            return EasyDictOut(items) if easydict_kwargs else items
        return value

    def generator(sd: dict) -> Any:
        return _generator_node(_Tree.from_state_dict(sd), '', spec, module_src, wrap)

    top: dict[str, Any] = {
        'training_set_kwargs': training_set_kwargs
        or {
            'class_name': 'training.dataset.ImageFolderDataset',
            'path': 'datasets/ffhq.zip',
            'use_labels': True,
            'max_size': 70000,
            'xflip': True,
            'resolution': 512,
            'random_seed': 0,
        }
    }
    use_g = G_state_dict if G_state_dict is not None and top_key_G_ema else state_dict
    top['G'] = generator(use_g)
    if include_D:
        d_tree = _Tree.from_state_dict(D_state_dict if D_state_dict is not None else small_discriminator_state())
        top['D'] = _discriminator_node(d_tree, '', module_src)
    if top_key_G_ema:
        top['G_ema'] = generator(state_dict)
    top['augment_pipe'] = None
    top.update(extra_top or {})
    with open(path, 'wb') as f:
        SnapshotPickler(f, protocol=4).dump(top)
