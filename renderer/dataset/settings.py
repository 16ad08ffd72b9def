"""What a dataset is rendered with (DatasetSettings), the code version it records, and its file layout.

The settings are the whole recipe apart from the seeds: model, views, truncation, resolution, sampling and
which outputs are written. They are written to OUT/settings.json before any rendering; a rerun into the
same folder must give the same settings (it resumes) or is refused. The code version is the package
version plus a hash of the renderer's source files, recorded in every manifest.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ..builtin import BUILTIN, WEIGHTS, resolve
from ..camera import camera_tuple
from .views import ViewSpec

FORMAT = "triplane-viz dataset"
VERSION = 1
SEED_DIR_DIGITS = 5


@dataclass(frozen=True)
class DatasetSettings:
    """The recipe of a dataset (everything but the seeds)."""

    network: str = BUILTIN
    """'builtin' or the checkpoint's path (workers open it: on a cluster, a path every node can read)."""
    network_sha256: str | None = None
    """Hash of the checkpoint file (None for the built-in model): a resumed run must use the same weights."""
    views: ViewSpec = field(default_factory=ViewSpec)
    psi: float = 1.0
    cutoff: int | None = None
    neural_rendering_resolution: int | None = None
    depth_multiplier: float = 1.0
    sampling: str = "deterministic"
    raw: bool = False
    """Also write the volume-rendered RGB at the neural rendering resolution."""
    normals: bool = False
    """Also write world-space normals computed from the depth map."""
    cond_camera: tuple[float, ...] | None = None
    """The camera given to the mapping network (25 values); None: the frontal camera at the model's average radius
    (with the views' field of view), as the reference scripts. The viewer passes its own to export what it shows."""

    def check(self) -> None:
        """ValueError naming what is wrong."""
        self.views.check()
        if not math.isfinite(self.psi):
            raise ValueError("truncation psi must be finite")
        if self.cutoff is not None and self.cutoff < 0:
            raise ValueError("the truncation cutoff must be >= 0")
        if self.neural_rendering_resolution is not None and not 1 <= self.neural_rendering_resolution <= 1024:
            raise ValueError("the neural rendering resolution must be in 1..1024")
        if not 0 < self.depth_multiplier <= 16:
            raise ValueError("the depth multiplier must be in (0, 16]")
        if self.sampling not in ("deterministic", "stochastic"):
            raise ValueError(f"sampling must be deterministic or stochastic, not {self.sampling!r}")
        if self.cond_camera is not None:
            camera_tuple(self.cond_camera)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, in a fixed order."""
        return {
            "network": self.network,
            "network_sha256": self.network_sha256,
            "views": self.views.to_dict(),
            "psi": self.psi,
            "cutoff": self.cutoff,
            "neural_rendering_resolution": self.neural_rendering_resolution,
            "depth_multiplier": self.depth_multiplier,
            "sampling": self.sampling,
            "raw": self.raw,
            "normals": self.normals,
            "cond_camera": None if self.cond_camera is None else list(self.cond_camera),
        }

    def sha256(self) -> str:
        """Hash of to_dict's canonical JSON."""
        return hashlib.sha256(canonical_json(self.to_dict())).hexdigest()


def canonical_json(obj: Any) -> bytes:
    """Indented JSON with a final newline: the bytes every JSON file of a dataset is written as."""
    return (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode("utf-8")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def with_network(settings: DatasetSettings, network: str | os.PathLike) -> DatasetSettings:
    """Settings naming a network: 'builtin' (also given as the shipped weights' path) as is, a checkpoint by
    absolute path and content hash."""
    path = os.path.abspath(os.fspath(resolve(network)))
    if path == os.path.abspath(WEIGHTS):
        return replace(settings, network=BUILTIN, network_sha256=None)
    return replace(settings, network=path, network_sha256=file_sha256(path))


@lru_cache(maxsize=1)
def code_version() -> dict[str, str]:
    """{'package': 'triplane-viz X.Y.Z', 'source_sha256': hash of renderer/**/*.py by relative path}."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        if "__pycache__" in rel:
            continue
        h.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    try:
        version = metadata.version("triplane-viz")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"package": f"triplane-viz {version}", "source_sha256": h.hexdigest()}


def seed_dir_name(seed: int) -> str:
    """seed00042 (at least five digits; seeds above 99999 take more)."""
    return f"seed{seed:0{SEED_DIR_DIGITS}d}"


def parse_seed_dir(name: str) -> int | None:
    """The seed of a seed folder's name, or None if the name is not one."""
    if not name.startswith("seed") or not name[4:].isdigit() or len(name) < 4 + SEED_DIR_DIGITS:
        return None
    seed = int(name[4:])
    return seed if seed_dir_name(seed) == name else None


__all__ = [
    "FORMAT",
    "VERSION",
    "DatasetSettings",
    "canonical_json",
    "code_version",
    "file_sha256",
    "parse_seed_dir",
    "seed_dir_name",
    "with_network",
]
