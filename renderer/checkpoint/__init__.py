"""Checkpoints: EG3D training snapshots read safely, and the project's own .safetensors format.

* read.py: `read_checkpoint(path)` opens either kind, chosen by the file's content, never by its
  extension; `convert(src, dst)` writes what it read as native.
* snapshot.py: an EG3D snapshot's generator (G_ema) as config + tensors, unpickled by eg3d_pickle.py's
  allow-listed unpickler (nothing named in the file is imported or run) with torch_storage.py
  reading the tensors without torch.load and restricted.py holding the shared guards.
* native.py: `write_native` / `read_native`, the ModelSpec as JSON in the safetensors metadata.
* spec.py: what a checkpoint holds whatever its format (`ModelSpec`, `LoadedCheckpoint`).

Every failure to read raises renderer.errors.CheckpointError whose message starts with the path.
"""

from .native import NATIVE_FORMAT, NATIVE_FORMAT_VERSION, write_native
from .read import convert, read_checkpoint
from .spec import LoadedCheckpoint, ModelSpec

__all__ = [
    "NATIVE_FORMAT",
    "NATIVE_FORMAT_VERSION",
    "LoadedCheckpoint",
    "ModelSpec",
    "convert",
    "read_checkpoint",
    "write_native",
]
