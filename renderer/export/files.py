"""Output files that are complete or absent: checks before slow work, temp file + rename, clear errors.

Every export (meshes, volumes, depth maps, screenshots, videos) goes through `atomic_write`: the
writer fills a temporary file in the target's own folder (same file system, so the final rename
is atomic), and only a finished file is moved into place. A failure or a cancel removes the
temporary file, so no partial or corrupt output is ever left under the target name. Long jobs
take a `progress(fraction, stage)` callback and a `cancel` token (anything with `is_set()`, e.g.
a threading.Event) and raise `Cancelled` between steps (renderer.progress). `write_png_atomic`
is the plain PNG writer of the CLI's images and the viewer's "save window"; `next_free` picks the
next unused numbered name in a folder.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ExportError


def describe_os_error(exc: OSError) -> str:
    """A short human reason for an OSError, naming the full-disk and permission cases plainly."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on device (the disk or quota is full)"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code == errno.EROFS:
        return "read-only file system"
    if code == errno.ENOENT:
        return "no such folder"
    if code == errno.ENOTDIR:
        return "a part of the path is not a folder"
    return exc.strerror or str(exc)


def check_target(
    path: str | os.PathLike, overwrite: bool = False, suffixes: Iterable[str] | None = None, what: str = "file"
) -> Path:
    """Validate an output path before any slow work: known extension, folder creatable and writable,
    no existing file unless `overwrite`. Returns the path; raises ExportError with the reason."""
    p = Path(os.path.expanduser(os.fspath(path)))
    if suffixes is not None:
        allowed = tuple(suffixes)
        if p.suffix.lower() not in allowed:
            shown = p.suffix or "no extension"
            raise ExportError(f"unknown {what} format {shown!r} for {p}: use one of {', '.join(allowed)}")
    if p.name in ("", ".", ".."):
        raise ExportError(f"not a file name: {p}")
    if p.is_dir():
        raise ExportError(f"{p} is a folder; give a file name")
    if p.exists() and not overwrite:
        raise ExportError(f"{p} exists; not overwriting it (choose another name, or allow overwriting: --force)")
    folder = p.parent
    try:
        ensure_writable_folder(folder)
    except OSError as exc:
        raise ExportError(f"cannot write to folder {folder}: {describe_os_error(exc)}") from None
    return p


def ensure_writable_folder(folder: Path) -> None:
    """Create `folder` if needed and prove it takes a new file (a hidden probe, removed); OSError if not."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".write-probe.{os.getpid()}.{secrets.token_hex(4)}"
    probe.open("xb").close()
    probe.unlink()


def temp_path(path: Path) -> Path:
    """A fresh hidden temp name beside `path`, keeping its extension (some writers go by it)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], overwrite: bool = False) -> Path:
    """Run write(temp_path) and move the finished temp file to `path`; on any failure remove it.

    Without `overwrite`, an existing file is never replaced (a hard link claims the name atomically;
    on file systems without hard links, a check just before the rename). OSErrors become ExportError
    naming the file and the reason (a full disk says so); Cancelled and other errors pass through.
    """
    p = Path(os.path.expanduser(os.fspath(path)))
    tmp = temp_path(p)
    try:
        write(tmp)
        if not tmp.exists():
            raise ExportError(f"writing {p} produced no file")
        if overwrite:
            os.replace(tmp, p)
        else:
            _claim(tmp, p)
    except OSError as exc:
        raise ExportError(f"could not write {p}: {describe_os_error(exc)}; nothing was written") from None
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass
    return p


def _claim(tmp: Path, path: Path) -> None:
    """Move tmp to path only if path does not exist."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise ExportError(
            f"{path} exists; not overwriting it (choose another name, or allow overwriting: --force)"
        ) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
        if path.exists():
            raise ExportError(f"{path} exists; not overwriting it") from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def next_free(folder: str | os.PathLike, stem: str, suffix: str) -> Path:
    """folder/stem-0001.suffix, or the first number not taken yet (suffix with its dot)."""
    folder = Path(folder)
    for n in range(1, 100000):
        p = folder / f"{stem}-{n:04d}{suffix}"
        if not p.exists():
            return p
    raise ExportError(f"no free file name for {stem}{suffix} in {folder}")


def write_png_atomic(pixels: np.ndarray, path: Path, overwrite: bool = True) -> None:
    """Write a uint8 (H, W) or (H, W, 3) array as PNG, complete or not at all (atomic_write);
    without `overwrite`, an existing file is refused (ExportError), never replaced."""
    atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"), overwrite=overwrite)
