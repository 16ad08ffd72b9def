"""The restricted-unpickling primitives shared by the EG3D snapshot reader and the storage reader.

* `describe_name`: a name taken from the file, made safe for an error message.
* `refused_global`: the error for a global that is not on an allow-list.
* `Inert`: the base of every object a file can make us create (no instance dict, BUILD refused).
* `check_memo_indices` / `MemoChecked`: refuse a pickle whose memo index runs ahead of its memo
  before the C unpickler allocates for it.

Every problem raises CheckpointError with a message that does NOT yet name the file;
renderer.checkpoint.read adds the path.
"""

from __future__ import annotations

import encodings.raw_unicode_escape  # noqa: F401 - pickletools decodes 'V' opcodes with it; import it now, not mid-read
import pickletools
from typing import IO, Any, cast

from ..errors import CheckpointError


def describe_name(text: object, limit: int = 120) -> str:
    """A file-supplied name, made safe to put in an error message (printable, bounded)."""
    s = text if isinstance(text, str) else repr(text)
    if not s.isprintable():
        s = ascii(s)[1:-1]
    return s if len(s) <= limit else s[:limit] + '...'


def refused_global(module: str, name: str, where: str = '') -> CheckpointError:
    return CheckpointError(
        f"refused global '{describe_name(module)}.{describe_name(name)}'{where} "
        "(not on the allow-list; the file may be malicious)"
    )


class Inert:
    """Base of every object a file can make us create: no instance dict, BUILD refused.

    Without ``__dict__`` and with our own ``__setstate__``, the pickle BUILD opcode cannot
    plant attributes (``__class__``, ``__setstate__``, methods) on these objects."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise CheckpointError(f"object state (BUILD) is not allowed on {type(self).__name__}")


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
        for op, arg, _ in pickletools.genops(cast(IO[bytes], _ReadOnly(f))):  # genops only reads
            if op.name == 'MEMOIZE':
                count += 1
            elif op.name in ('PUT', 'BINPUT', 'LONG_BINPUT'):
                if type(arg) is not int or arg > count + MEMO_SLACK:
                    raise CheckpointError(
                        f'pickle memo index {arg} runs ahead of the memo ({count} entries); '
                        'the file is corrupt or hostile'
                    )
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


class MemoChecked:
    """Mixin for the unpicklers: `check_memo_indices` on the stream before `load`."""

    def __init__(self, file: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(file, *args, **kwargs)  # type: ignore[call-arg]  # a mixin: the unpickler is next in the MRO
        self._stream = file

    def load(self) -> Any:
        check_memo_indices(self._stream)
        return super().load()  # type: ignore[misc]  # the unpickler's load (next in the MRO)
