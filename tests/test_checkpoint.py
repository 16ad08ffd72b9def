"""renderer.checkpoint: EG3D snapshot pickles in, native .safetensors out, clear errors.

Over 400 lines as one file on purpose: the cases share the snapshot builder and the error checks.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import pickletools
import struct
import sys
import tempfile
import warnings
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from eg3d_pickle import NewObj, Reduce, SnapshotPickler, global_name, module_state, persistent, write_eg3d_pickle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from renderer.checkpoint import convert, read_checkpoint, write_native
from renderer.checkpoint.spec import ModelSpec
from renderer.errors import CheckpointError

# Math doc section 9, written out here independently of the test helper.
EXPECTED_PLANE_AXES = [
    [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    [[1, 0, 0], [0, 0, 1], [0, 1, 0]],
    [[0, 0, 1], [1, 0, 0], [0, 1, 0]],
]
REFERENCE_GLOBALS = {  # math doc 13.3, plus the EasyDict our helper writes by default
    ('collections', 'OrderedDict'),
    ('torch.storage', '_load_from_bytes'),
    ('torch._utils', '_rebuild_tensor_v2'),
    ('torch._utils', '_rebuild_parameter'),
    ('torch_utils.persistence', '_reconstruct_persistent_obj'),
    ('numpy._core.multiarray', 'scalar'),
    ('numpy', 'dtype'),
    ('training.volumetric_rendering.renderer', 'ImportanceRenderer'),
    ('training.volumetric_rendering.ray_marcher', 'MipRayMarcher2'),
    ('training.volumetric_rendering.ray_sampler', 'RaySampler'),
    ('training.triplane', 'OSGDecoder'),
    ('torch.nn.modules.container', 'Sequential'),
    ('torch.nn.modules.activation', 'Softplus'),
    ('dnnlib.util', 'EasyDict'),
}
FOREIGN_PACKAGES = ('torch_utils', 'training', 'dnnlib')


def canary_source(canary: Path) -> str:
    """Module source that leaves a file behind and aborts if anybody executes it."""
    return (
        f"import pathlib\npathlib.Path({str(canary)!r}).write_text('module_src was executed')\n"
        "raise SystemExit('module_src was executed')\n"
    )


def foreign_modules() -> list[str]:
    return [m for m in sys.modules if m.split('.')[0] in FOREIGN_PACKAGES]


def pickle_globals(data: bytes) -> set[tuple[str, str]]:
    """(module, name) of every STACK_GLOBAL/GLOBAL in a pickle, following the memo for strings."""
    memo: dict[int, object] = {}
    strings: list[object] = []
    found = set()
    for op, arg, _ in pickletools.genops(data):
        if op.name in ('SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8', 'UNICODE'):
            strings.append(arg)
        elif op.name in ('BINGET', 'LONG_BINGET', 'GET'):
            strings.append(memo.get(arg))
        elif op.name == 'MEMOIZE':
            memo[len(memo)] = strings[-1] if strings else None
            continue
        elif op.name == 'STACK_GLOBAL':
            found.add((strings[-2], strings[-1]))
        elif op.name == 'GLOBAL':
            found.add(tuple(arg.split(' ', 1)))
        if op.name not in ('SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8', 'UNICODE', 'BINGET', 'LONG_BINGET', 'GET'):
            strings.append(None)
    return found


@pytest.fixture
def spec(golden_weights) -> ModelSpec:
    cfg = golden_weights.config
    return ModelSpec(
        init_kwargs=cfg['init_kwargs'],
        rendering_kwargs=cfg['rendering_kwargs'],
        neural_rendering_resolution=cfg['neural_rendering_resolution'],
    )


@pytest.fixture
def canary(tmp_path) -> Path:
    return tmp_path / 'CANARY'


@pytest.fixture
def snapshot(tmp_path, spec, golden_weights, canary) -> Path:
    path = tmp_path / 'network-snapshot-000000.pkl'
    write_eg3d_pickle(path, spec, golden_weights.state_dict, module_src=canary_source(canary))
    return path


def assert_same_tensors(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for name, tensor in want.items():
        assert got[name].dtype == tensor.dtype, name
        assert got[name].shape == tensor.shape, name
        assert torch.equal(got[name], tensor), name


def assert_fails(path, *words: str):
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f'{path}: '), message
    for word in words:
        assert word in message, message
    return message


# --------------------------------------------------------------------------- EG3D pickles


def test_reads_golden_snapshot_bit_identical(snapshot, spec, golden_weights, canary):
    assert not foreign_modules()
    ckpt = read_checkpoint(snapshot)
    assert_same_tensors(ckpt.state_dict, golden_weights.state_dict)
    assert len(ckpt.state_dict) == 177
    assert ckpt.source_format == 'eg3d-pickle'
    assert ckpt.path == str(snapshot)
    assert ckpt.spec.init_kwargs == golden_weights.config['init_kwargs']
    assert ckpt.spec.rendering_kwargs == golden_weights.config['rendering_kwargs']
    assert ckpt.spec.neural_rendering_resolution == golden_weights.config['neural_rendering_resolution']
    assert ckpt.spec.plane_axes == EXPECTED_PLANE_AXES
    assert ckpt.spec.extra['class_name'] == 'TriPlaneGenerator'
    assert ckpt.spec.extra['source'] == 'eg3d-pickle'
    assert ckpt.spec.extra['network'] == 'G_ema'
    assert ckpt.spec.extra['training_set_kwargs']['resolution'] == 512
    assert not canary.exists()
    assert not foreign_modules()


def test_discriminator_is_dropped(snapshot, golden_weights):
    ckpt = read_checkpoint(snapshot)
    assert set(ckpt.state_dict) == set(golden_weights.state_dict)
    assert not any(k.startswith(('b32.', 'epilogue.', 'mapping.')) for k in ckpt.state_dict)


def test_takes_G_ema_over_G(tmp_path, spec, golden_weights, canary):
    g = {k: v + 1 if v.is_floating_point() else v for k, v in golden_weights.state_dict.items()}
    path = tmp_path / 'snap.pkl'
    write_eg3d_pickle(path, spec, golden_weights.state_dict, G_state_dict=g, module_src=canary_source(canary))
    ckpt = read_checkpoint(path)
    assert ckpt.spec.extra['network'] == 'G_ema'
    assert_same_tensors(ckpt.state_dict, golden_weights.state_dict)


def test_falls_back_to_G_without_G_ema(tmp_path, spec, golden_weights, canary):
    path = tmp_path / 'snap.pkl'
    write_eg3d_pickle(
        path, spec, golden_weights.state_dict, top_key_G_ema=False, include_D=False, module_src=canary_source(canary)
    )
    ckpt = read_checkpoint(path)
    assert ckpt.spec.extra['network'] == 'G'
    assert_same_tensors(ckpt.state_dict, golden_weights.state_dict)
    assert not canary.exists()


def test_plain_dict_kwargs_as_in_released_pickles(tmp_path, spec, golden_weights, canary):
    path = tmp_path / 'snap.pkl'
    write_eg3d_pickle(path, spec, golden_weights.state_dict, easydict_kwargs=False, module_src=canary_source(canary))
    assert ('dnnlib.util', 'EasyDict') not in pickle_globals(path.read_bytes())
    ckpt = read_checkpoint(path)
    assert ckpt.spec.init_kwargs == golden_weights.config['init_kwargs']


def test_helper_writes_the_reference_globals(snapshot):
    data = snapshot.read_bytes()
    assert data[:2] == b'\x80\x04'
    assert pickle_globals(data) == REFERENCE_GLOBALS


def test_helper_blobs_are_legacy_torch_save_streams(snapshot):
    """Each storage is a legacy stream as math doc 13.2 describes (checks the helper, via torch)."""
    data = snapshot.read_bytes()
    blobs = [arg for op, arg, _ in pickletools.genops(data) if op.name == 'BINBYTES']
    assert blobs
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    for blob in blobs[:5]:
        assert blob.startswith(magic + pickle.dumps(1001, protocol=2))
        assert b'ctorch\nFloatStorage\n' in blob


def test_returned_tensors_are_ordinary(snapshot):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        ckpt = read_checkpoint(snapshot)
    t = ckpt.state_dict['decoder.net.0.weight']
    assert not t.requires_grad and type(t) is torch.Tensor
    t.add_(1.0)  # writable memory, not the file's bytes
    assert not torch.equal(t, read_checkpoint(snapshot).state_dict['decoder.net.0.weight'])


def _tiny_generator(params=None, buffers=None, modules=None, **attrs) -> object:
    state = module_state(
        params,
        buffers,
        modules,
        **{
            '_init_args': (),
            '_init_kwargs': {'z_dim': 4},
            'rendering_kwargs': {'box_warp': 1},
            'neural_rendering_resolution': 64,
            **attrs,
        },
    )
    return persistent('TriPlaneGenerator', state, 'raise SystemExit(1)\n')


def _dump(path: Path, top: object) -> Path:
    with open(path, 'wb') as f:
        SnapshotPickler(f, protocol=4).dump(top)
    return path


def test_walk_skips_none_and_non_persistent_buffers(tmp_path):
    w = torch.nn.Parameter(torch.arange(6.0).reshape(2, 3), requires_grad=False)
    child_state = module_state(
        {'weight': w, 'bias': None}, {'kept': torch.ones(2), 'dropped': torch.zeros(2), 'absent': None}
    )
    child_state['_non_persistent_buffers_set'] = {'dropped'}
    seq = NewObj(
        global_name('torch.nn.modules.container', 'Sequential'),
        module_state(
            modules={
                '0': persistent('FullyConnectedLayer', child_state, ''),
                '1': NewObj(global_name('torch.nn.modules.activation', 'Softplus'), module_state()),
                '2': None,
            }
        ),
    )
    gen = _tiny_generator(
        {'p': torch.nn.Parameter(torch.ones(1), requires_grad=False)}, {'b': torch.full((3,), 2.0)}, {'net': seq}
    )
    ckpt = read_checkpoint(_dump(tmp_path / 'x.pkl', {'G_ema': gen}))
    assert list(ckpt.state_dict) == ['p', 'b', 'net.0.weight', 'net.0.kept']
    assert torch.equal(ckpt.state_dict['net.0.weight'], w)
    assert ckpt.spec.plane_axes is None
    assert ckpt.spec.init_kwargs == {'z_dim': 4}


def test_dtypes_views_and_shared_storages(tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    buffers = {
        'transposed': base.t(),  # non-contiguous, shares base's storage
        'slice': base[1:3, 2:5],  # offset + strides into the same storage
        'whole': base,
        'bf16': torch.tensor([1.5, -2.25, 3e38], dtype=torch.bfloat16),
        'half': torch.tensor([0.5, 65504.0], dtype=torch.float16),
        'i64': torch.tensor([-(2**62), 7]),
        'u8': torch.tensor([0, 255], dtype=torch.uint8),
        'flags': torch.tensor([True, False, True]),
        'scalar': torch.tensor(3.25, dtype=torch.float64),
        'empty': torch.zeros(0, 5),
    }
    ckpt = read_checkpoint(_dump(tmp_path / 'x.pkl', {'G_ema': _tiny_generator(buffers=buffers)}))
    assert_same_tensors(ckpt.state_dict, buffers)
    assert ckpt.state_dict['transposed'].stride() == (1, 6)
    out = tmp_path / 'x.safetensors'
    write_native(out, ckpt.spec, ckpt.state_dict)
    back = read_checkpoint(out).state_dict
    assert set(back) == set(buffers)
    for name, tensor in buffers.items():
        assert back[name].dtype == tensor.dtype and torch.equal(back[name], tensor), name


def storage_blob(tensor: torch.Tensor) -> bytes:
    """The legacy torch.save stream torch's own reducer embeds for a tensor's storage."""
    return next(arg for op, arg, _ in pickletools.genops(pickle.dumps(tensor, protocol=4)) if op.name == 'BINBYTES')


def test_tensors_sharing_one_storage_stay_shared(tmp_path):
    """torch's plain pickling gives every tensor its own storage; a file may still share one."""
    base = torch.arange(12, dtype=torch.float32)
    storage = Reduce(global_name('torch.storage', '_load_from_bytes'), (storage_blob(base),))
    rebuild = global_name('torch._utils', '_rebuild_tensor_v2')
    hooks = OrderedDict()
    buffers = {
        'a': Reduce(rebuild, (storage, 0, (3, 4), (4, 1), False, hooks)),
        'b': Reduce(rebuild, (storage, 2, (4, 2), (1, 4), False, hooks)),
        'c': Reduce(rebuild, (storage, 5, (3,), (1,), False, hooks)),
    }
    ckpt = read_checkpoint(_dump(tmp_path / 'x.pkl', {'G_ema': _tiny_generator(buffers=buffers)}))
    a, b, c = ckpt.state_dict['a'], ckpt.state_dict['b'], ckpt.state_dict['c']
    assert torch.equal(a, base.reshape(3, 4))
    assert torch.equal(b, base.as_strided((4, 2), (1, 4), 2))
    assert torch.equal(c, base[5:8])
    assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr() == c.untyped_storage().data_ptr()
    out = tmp_path / 'x.safetensors'
    write_native(out, ckpt.spec, ckpt.state_dict)  # safetensors refuses shared memory: cloned
    back = read_checkpoint(out).state_dict
    assert all(torch.equal(back[k], ckpt.state_dict[k]) for k in 'abc')


def test_materialized_tensors_do_not_alias_the_file_bytes():
    from renderer.checkpoint.torch_storage import Materializer, load_storage_blob, rebuild_tensor_v2

    blob = storage_blob(torch.arange(4, dtype=torch.float32))
    snapshot_of_blob = bytes(bytearray(blob))
    ref = rebuild_tensor_v2(load_storage_blob(blob), 0, (4,), (1,), False, OrderedDict())
    t = Materializer().tensor(ref)
    t.add_(100.0)
    assert blob == snapshot_of_blob
    assert torch.equal(Materializer().tensor(ref), torch.arange(4, dtype=torch.float32))


# --------------------------------------------------------------------------- native format


def test_native_round_trip_bit_identical(tmp_path, snapshot, golden_weights):
    ckpt = read_checkpoint(snapshot)
    out = tmp_path / 'model.safetensors'
    write_native(out, ckpt.spec, ckpt.state_dict)
    back = read_checkpoint(out)
    assert back.source_format == 'native'
    assert back.spec == ckpt.spec
    assert set(back.state_dict) == set(golden_weights.state_dict)
    for name, tensor in golden_weights.state_dict.items():
        assert torch.equal(back.state_dict[name], tensor), name
    assert sorted(os.listdir(tmp_path)) == sorted(['model.safetensors', snapshot.name])


def test_native_metadata_is_documented_format(tmp_path, spec):
    out = tmp_path / 'm.safetensors'
    write_native(out, spec, {'w': torch.ones(2)})
    data = out.read_bytes()
    n = struct.unpack('<Q', data[:8])[0]
    meta = json.loads(data[8 : 8 + n])['__metadata__']
    assert meta['format'] == 'triplane-viz' and meta['format_version'] == '1'
    assert json.loads(meta['spec'])['neural_rendering_resolution'] == spec.neural_rendering_resolution


def test_dispatch_on_content_not_extension(tmp_path, snapshot, spec):
    disguised = tmp_path / 'really-a-pickle.safetensors'
    disguised.write_bytes(snapshot.read_bytes())
    assert read_checkpoint(disguised).source_format == 'eg3d-pickle'
    native = tmp_path / 'really-native.pkl'
    write_native(native, spec, {'w': torch.ones(2)})
    assert read_checkpoint(native).source_format == 'native'


def test_convert(tmp_path, snapshot, golden_weights):
    out = tmp_path / 'converted.safetensors'
    convert(snapshot, out)
    back = read_checkpoint(out)
    assert back.spec.extra['network'] == 'G_ema'
    for name, tensor in golden_weights.state_dict.items():
        assert torch.equal(back.state_dict[name], tensor), name


def test_write_native_replaces_atomically_and_cleans_up_on_failure(tmp_path, spec, monkeypatch):
    out = tmp_path / 'm.safetensors'
    write_native(out, spec, {'w': torch.ones(2)})
    before = out.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'replace', broken_replace)
    with pytest.raises(OSError) as info:
        write_native(out, spec, {'w': torch.zeros(3)})
    assert str(out) in str(info.value) and info.value.errno == 28
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ['m.safetensors']


def test_write_native_cleans_up_when_writing_fails(tmp_path, spec, monkeypatch):
    real_write = os.write

    def failing_write(fd, data):
        real_write(fd, bytes(data[:10]))
        raise OSError(5, 'Input/output error')

    monkeypatch.setattr(os, 'write', failing_write)
    with pytest.raises(OSError, match='m.safetensors'):
        write_native(tmp_path / 'm.safetensors', spec, {'w': torch.ones(2)})
    assert os.listdir(tmp_path) == []


def test_write_native_into_missing_or_read_only_folder(tmp_path, spec):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        write_native(tmp_path / 'nowhere' / 'm.safetensors', spec, {'w': torch.ones(2)})
    ro = tmp_path / 'ro'
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip('running with privileges that ignore folder permissions')
        with pytest.raises(PermissionError, match='m.safetensors'):
            write_native(ro / 'm.safetensors', spec, {'w': torch.ones(2)})
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


def test_write_native_when_the_folder_refuses_new_files(tmp_path, spec, monkeypatch):
    """What a read-only folder does, simulated so that it also runs as root."""

    def refuse(path, flags, mode=0o777, **kwargs):
        raise PermissionError(13, 'Permission denied', path)

    monkeypatch.setattr(os, 'open', refuse)
    with pytest.raises(PermissionError, match='m.safetensors'):
        write_native(tmp_path / 'm.safetensors', spec, {'w': torch.ones(2)})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    'state_dict',
    [
        {'w': 'not a tensor'},
        {'w': torch.ones(2, dtype=torch.complex64)},
        {3: torch.ones(2)},
        [torch.ones(2)],
    ],
)
def test_write_native_refuses_bad_state_dicts(tmp_path, spec, state_dict):
    with pytest.raises(CheckpointError, match='m.safetensors'):
        write_native(tmp_path / 'm.safetensors', spec, state_dict)
    assert os.listdir(tmp_path) == []


def test_write_native_refuses_unserialisable_spec(tmp_path, spec):
    bad = ModelSpec(init_kwargs={'x': object()}, rendering_kwargs={}, neural_rendering_resolution=64)
    with pytest.raises(CheckpointError, match='JSON'):
        write_native(tmp_path / 'm.safetensors', bad, {'w': torch.ones(2)})
    with pytest.raises(CheckpointError, match='ModelSpec'):
        write_native(tmp_path / 'm.safetensors', {'init_kwargs': {}}, {'w': torch.ones(2)})
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    assert_fails(tmp_path / 'nope.pkl', 'no such file')


def test_directory(tmp_path):
    assert_fails(tmp_path, 'directory')


def test_empty_file(tmp_path):
    path = tmp_path / 'empty.pkl'
    path.write_bytes(b'')
    assert_fails(path, 'empty')


@pytest.mark.parametrize(
    'content',
    [
        os.urandom(4096).replace(b'\x80', b'\x00'),
        b'hello, this is a text file\nwith two lines\n',
        b'{"looks": "like json"}',
        b'\x80',
        b'\x80\x09garbage',
    ],
)
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / 'x.pkl'
    path.write_bytes(content)
    assert_fails(path, 'not a checkpoint')


def test_unreadable_file(tmp_path, snapshot):
    snapshot.chmod(0)
    try:
        if os.access(snapshot, os.R_OK):
            pytest.skip('running with privileges that ignore file permissions')
        assert_fails(snapshot, 'cannot read')
    finally:
        snapshot.chmod(0o644)


def test_unreadable_file_simulated(snapshot, monkeypatch):
    import renderer.checkpoint.read as module  # where the reader opens the file

    def refuse(path, mode='r', *args, **kwargs):
        raise PermissionError(13, 'Permission denied', path)

    monkeypatch.setattr(module, 'open', refuse, raising=False)
    assert_fails(snapshot, 'cannot read (Permission denied)')


def test_truncated_pickle(tmp_path, snapshot):
    data = snapshot.read_bytes()
    for cut in (2, 11, 100, 5000, len(data) // 3, len(data) // 2, len(data) - 1000, len(data) - 1):
        path = tmp_path / f'cut{cut}.pkl'
        path.write_bytes(data[:cut])
        assert_fails(path, 'truncated')


def test_trailing_garbage(tmp_path, snapshot):
    path = tmp_path / 'x.pkl'
    path.write_bytes(snapshot.read_bytes() + b'\x00junk')
    assert_fails(path, 'trailing data')


def test_pickle_without_generator(tmp_path):
    path = _dump(tmp_path / 'x.pkl', {'D': None, 'augment_pipe': None, 'training_set_kwargs': {}})
    assert_fails(path, 'no G_ema or G network', 'keys: D, augment_pipe, training_set_kwargs')


@pytest.mark.parametrize('top', [[1, 2, 3], 42, None, 'G_ema'])
def test_top_level_not_a_dict(tmp_path, top):
    path = _dump(tmp_path / 'x.pkl', top)
    assert_fails(path, 'not an EG3D training snapshot', type(top).__name__)


def test_wrong_class_at_the_top(tmp_path):
    gen = persistent('StyleGAN2Generator', module_state(), 'raise SystemExit(1)\n')
    assert_fails(
        _dump(tmp_path / 'x.pkl', {'G_ema': gen}), 'not an EG3D tri-plane generator (class StyleGAN2Generator)'
    )
    assert_fails(_dump(tmp_path / 'y.pkl', {'G_ema': {'a': 1}}), 'not an EG3D tri-plane generator (class dict)')


def test_generator_without_rendering_settings(tmp_path):
    gen = persistent('TriPlaneGenerator', module_state(_init_kwargs={}), '')
    assert_fails(_dump(tmp_path / 'x.pkl', {'G_ema': gen}), 'rendering_kwargs')


def test_legacy_torch_save_file(tmp_path):
    path = tmp_path / 'legacy.pt'
    torch.save({'w': torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    assert_fails(path, 'legacy torch.save')


def test_corrupt_safetensors_header(tmp_path, spec):
    path = tmp_path / 'm.safetensors'
    write_native(path, spec, {'w': torch.ones(2)})
    data = bytearray(path.read_bytes())
    data[9:15] = b'#####'
    path.write_bytes(bytes(data))
    assert_fails(path, 'corrupt safetensors header')
    n = struct.unpack('<Q', data[:8])[0]
    path.write_bytes(struct.pack('<Q', n * 1000) + bytes(data[8:]))
    assert_fails(path, 'corrupt safetensors header')


def test_truncated_safetensors_data(tmp_path, spec):
    path = tmp_path / 'm.safetensors'
    write_native(path, spec, {'w': torch.ones(1000)})
    path.write_bytes(path.read_bytes()[:-100])
    assert_fails(path, 'corrupt safetensors data')


def test_safetensors_without_our_metadata(tmp_path):
    path = tmp_path / 'plain.safetensors'
    save_file({'w': torch.ones(2)}, path)
    assert_fails(path, 'without triplane-viz metadata')
    save_file({'w': torch.ones(2)}, path, metadata={'format': 'pt'})
    assert_fails(path, 'without triplane-viz metadata')


def test_safetensors_with_wrong_version_or_spec(tmp_path, spec):
    path = tmp_path / 'm.safetensors'
    good = json.dumps({'init_kwargs': {}, 'rendering_kwargs': {}, 'neural_rendering_resolution': 64})
    save_file({'w': torch.ones(2)}, path, metadata={'format': 'triplane-viz', 'format_version': '2', 'spec': good})
    assert_fails(path, "format_version '2'")
    for bad in (
        '{not json',
        json.dumps({'init_kwargs': {}}),
        json.dumps([1]),
        json.dumps({'init_kwargs': [], 'rendering_kwargs': {}, 'neural_rendering_resolution': 64}),
        json.dumps({'init_kwargs': {}, 'rendering_kwargs': {}, 'neural_rendering_resolution': 64, 'surprise': 1}),
    ):
        save_file({'w': torch.ones(2)}, path, metadata={'format': 'triplane-viz', 'format_version': '1', 'spec': bad})
        assert_fails(path, 'spec')


def test_native_refuses_complex_tensors(tmp_path, spec):
    path = tmp_path / 'm.safetensors'
    meta = {
        'format': 'triplane-viz',
        'format_version': '1',
        'spec': json.dumps({'init_kwargs': {}, 'rendering_kwargs': {}, 'neural_rendering_resolution': 64}),
    }
    save_file({'w': torch.ones(2, dtype=torch.complex64)}, path, metadata=meta)
    assert_fails(path, 'unsupported dtype')


def test_path_types(tmp_path, snapshot):
    assert read_checkpoint(str(snapshot)).path == str(snapshot)
    assert read_checkpoint(os.fsencode(snapshot)).path == str(snapshot)
    with pytest.raises(CheckpointError, match='not a file path'):
        read_checkpoint(12)


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / 'fifo.pkl'
    os.mkfifo(fifo)
    assert_fails(fifo, 'not a regular file')


def test_cycle_and_odd_module_entries(tmp_path):
    seq_state = module_state()
    seq = NewObj(global_name('torch.nn.modules.container', 'Sequential'), seq_state)
    seq_state['_modules'] = OrderedDict({'again': seq})
    assert_fails(_dump(tmp_path / 'cycle.pkl', {'G_ema': _tiny_generator(modules={'net': seq})}), 'contains itself')
    assert_fails(
        _dump(tmp_path / 'notmod.pkl', {'G_ema': _tiny_generator(modules={'net': [1]})}), 'module net is not a module'
    )
    assert_fails(
        _dump(tmp_path / 'nottensor.pkl', {'G_ema': _tiny_generator(params={'w': 1.5})}), 'parameter w is not a tensor'
    )
    assert_fails(
        _dump(tmp_path / 'dotname.pkl', {'G_ema': _tiny_generator(buffers={'a.b': torch.ones(1)})}), 'invalid name'
    )


# --------------------------------------------------------------------------- fuzzing


def _small_snapshot() -> bytes:
    spec = ModelSpec(
        init_kwargs={'z_dim': 4, 'mapping_kwargs': {'num_layers': 2}},
        rendering_kwargs={'superresolution_module': 'training.superresolution.SuperresolutionHybrid8XDC'},
        neural_rendering_resolution=64,
    )
    state = {
        'backbone.mapping.w_avg': torch.arange(4.0),
        'decoder.net.0.weight': torch.ones(2, 3),
        'decoder.net.2.bias': torch.tensor([1.0, -1.0]),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'small.pkl'
        write_eg3d_pickle(path, spec, state, module_src=canary_source(Path(tmp) / 'CANARY'))
        return path.read_bytes()


SMALL_SNAPSHOT = _small_snapshot()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.integers(0, len(SMALL_SNAPSHOT) - 1), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(1, len(SMALL_SNAPSHOT))),
)
def test_random_corruption_gives_a_checkpoint_or_checkpoint_error(tmp_path, edits, cut):
    """No byte edit or cut of a valid snapshot makes the reader raise anything else."""
    path = write_edited(tmp_path / 'fuzzed.pkl', SMALL_SNAPSHOT, edits, cut)
    snapshot_reads_cleanly_or_refuses(path)
    assert not foreign_modules()


def write_edited(path: Path, original: bytes, edits: list[tuple[int, int]], cut: int | None) -> Path:
    """Write `original` with bytes set by (index, value) `edits`, then cut to its first `cut` bytes."""
    data = bytearray(original)
    for index, value in edits:
        data[index] = value
    path.write_bytes(bytes(data[:cut]))
    return path


def snapshot_reads_cleanly_or_refuses(path: Path, guard=None) -> None:
    """read_checkpoint (inside `guard`) gives a TriPlaneGenerator snapshot of real tensors, or a
    CheckpointError naming the file; nothing else."""
    try:
        with guard if guard is not None else contextlib.nullcontext():
            ckpt = read_checkpoint(path)
    except CheckpointError as e:
        assert str(e).startswith(f'{path}: ')
    else:
        assert ckpt.spec.extra['class_name'] == 'TriPlaneGenerator'
        assert all(isinstance(t, torch.Tensor) for t in ckpt.state_dict.values())


# --------------------------------------------------------------------------- fuzzing the native format


def _small_native() -> bytes:
    spec = ModelSpec(
        init_kwargs={'z_dim': 4},
        rendering_kwargs={'box_warp': 1},
        neural_rendering_resolution=64,
        plane_axes=None,
        extra={'note': 'fuzz'},
    )
    state = {
        'decoder.net.0.weight': torch.ones(2, 3),
        'backbone.mapping.w_avg': torch.arange(4.0),
        'steps': torch.tensor([7], dtype=torch.int64),
        'flag': torch.tensor([True, False]),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'small.safetensors'
        write_native(path, spec, state)
        return path.read_bytes()


SMALL_NATIVE = _small_native()
NATIVE_HEADER_END = 8 + int.from_bytes(SMALL_NATIVE[:8], 'little')
NATIVE_FUZZ_EXAMPLES = 300


def native_reads_cleanly_or_refuses(path: Path) -> None:
    """read_checkpoint gives a checkpoint of real tensors, or a CheckpointError naming the file."""
    try:
        ckpt = read_checkpoint(path)
    except CheckpointError as e:
        assert str(e).startswith(f'{path}: ')
    else:
        assert ckpt.source_format == 'native'
        assert all(isinstance(t, torch.Tensor) and not t.is_complex() for t in ckpt.state_dict.values())


@settings(
    max_examples=NATIVE_FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    edits=st.lists(st.tuples(st.integers(0, NATIVE_HEADER_END + 24), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(0, len(SMALL_NATIVE))),
)
def test_random_corruption_of_a_native_file(tmp_path, edits, cut):
    """Byte edits (mostly in the length prefix and JSON header) and cuts of a valid .safetensors file."""
    native_reads_cleanly_or_refuses(write_edited(tmp_path / 'fuzzed.safetensors', SMALL_NATIVE, edits, cut))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8,
)


@settings(
    max_examples=NATIVE_FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    entry=st.sampled_from(['decoder.net.0.weight', 'backbone.mapping.w_avg', 'steps', 'flag', '__metadata__']),
    field=st.sampled_from(['dtype', 'shape', 'data_offsets', 'spec', 'format_version', 'extra key']),
    value=JSON_VALUES
    | st.sampled_from(
        [
            'F64',
            'C64',
            'BF16',
            'I8',
            'U64',
            'F8_E4M3',
            'BOOL',
            [2**40],
            [0, 2**62],
            [10**12, 10**12],
            '{"init_kwargs": {}}',
            '2',
        ]
    ),
)
def test_header_fields_of_a_native_file(tmp_path, entry, field, value):
    """Any JSON value in any header field (dtypes, shapes, offsets, the spec metadata)."""
    header = json.loads(SMALL_NATIVE[8:NATIVE_HEADER_END])
    header[entry][field] = value if entry != '__metadata__' else json.dumps(value)
    raw = json.dumps(header).encode()
    path = tmp_path / 'fields.safetensors'
    path.write_bytes(len(raw).to_bytes(8, 'little') + raw + SMALL_NATIVE[NATIVE_HEADER_END:])
    native_reads_cleanly_or_refuses(path)
