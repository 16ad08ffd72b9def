"""Reading a checkpoint of either kind, chosen by the file's content, never by its extension.

* :func:`read_checkpoint` opens an EG3D training-snapshot pickle (:mod:`renderer.checkpoint.snapshot`,
  restricted unpickling: nothing in the file is imported or executed) or a native file
  (:mod:`renderer.checkpoint.native`).
* :func:`convert` reads any supported checkpoint and writes it as native (``write_native``).

Every failure to read raises :class:`CheckpointError` whose message starts with the path.
Shapes and names are checked against the config by the generator, not here; the reader checks
that tensors are real float/int/bool tensors lying inside their storages.
"""

from __future__ import annotations

import os
import pickle
import stat

from ..errors import CheckpointError
from .native import read_native, write_native
from .restricted import describe_name
from .snapshot import read_snapshot
from .spec import LoadedCheckpoint

_NOT_A_CHECKPOINT = 'not a checkpoint (neither an EG3D pickle nor a triplane-viz .safetensors file)'
_LEGACY_TORCH_PREFIX = b'\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.'


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
        raise CheckpointError(f'{p}: out of memory while reading (a size in the file may be corrupt or hostile)') from e
    except OSError as e:
        raise CheckpointError(f'{p}: cannot read ({e.strerror or e})') from e
    except Exception as e:  # struct errors, ValueError/TypeError from odd opcodes, ...
        raise CheckpointError(f'{p}: corrupt checkpoint ({type(e).__name__}: {describe_name(str(e), 200)})') from e


def convert(src: str | os.PathLike, dst: str | os.PathLike) -> LoadedCheckpoint:
    """Read any supported checkpoint at ``src`` and write it as native to ``dst``.

    Returns what was read (its ``path`` is ``src``)."""
    ckpt = read_checkpoint(src)
    write_native(dst, ckpt.spec, ckpt.state_dict)
    return ckpt


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
            raise CheckpointError(
                'a legacy torch.save file, not an EG3D network snapshot; '
                'only EG3D pickles and triplane-viz .safetensors are supported'
            )
        if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
            return read_snapshot(p, f)
        if head.startswith(b'PK\x03\x04'):
            raise CheckpointError(
                'zip-format torch.save files are not supported (they are not EG3D snapshots); '
                'convert the model to a triplane-viz .safetensors file with '
                'renderer.checkpoint.write_native in an environment you trust'
            )
        if len(head) >= 9 and head[8:9] == b'{':
            return read_native(p, f, st.st_size)
    raise CheckpointError(_NOT_A_CHECKPOINT)
