"""The work of a dataset run: seeds, shards, what is already done, the disk it needs, and the closing files.

Seeds are split into shards of `shard_size` consecutive seeds (in the order given); a shard is the unit a
worker (a local process or a Ray actor) takes. Each seed inside it is committed on its own
(renderer.dataset.writer), so a rerun skips finished seeds, skips shards whose seeds are all finished and
redoes the rest; nothing about the output depends on the shard size or on which worker rendered what.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..seeds import parse_seed_list
from .formats import eg3d_label
from .settings import FORMAT, VERSION, DatasetSettings, canonical_json, file_sha256, parse_seed_dir, seed_dir_name
from .views import sample_views
from .writer import EG3D, MANIFEST, PARTIAL, is_finished, link_eg3d

MAX_DATASET_SEEDS = 1_000_000
"""Most seeds one dataset run may name."""
MAX_VIEWS = 10000
"""Most views per seed (file names have 4 digits)."""
SETTINGS_FILE = "settings.json"


def parse_seed_ranges(text: str, limit: int = MAX_DATASET_SEEDS) -> list[int]:
    """'0-99999,123456' -> the seeds in the order given, duplicates dropped (at most `limit`)."""
    return parse_seed_list(text, limit)


def make_shards(seeds: list[int], shard_size: int) -> list[list[int]]:
    """Consecutive groups of `shard_size` seeds, in the order given."""
    if shard_size < 1:
        raise ValueError("a shard holds at least one seed")
    return [seeds[i : i + shard_size] for i in range(0, len(seeds), shard_size)]


def finished_seeds(out: Path, settings_sha256: str, seeds: list[int] | None = None) -> set[int]:
    """Seeds whose folder under OUT is committed with these settings (all seed folders when `seeds` is None)."""
    names = set(os.listdir(out)) if out.is_dir() else set()
    if seeds is None:
        candidates = [s for s in (parse_seed_dir(n) for n in names) if s is not None]
    else:
        candidates = [s for s in seeds if seed_dir_name(s) in names]
    return {s for s in candidates if is_finished(out / seed_dir_name(s), settings_sha256)}


def pending_shards(shards: list[list[int]], done: set[int]) -> list[list[int]]:
    """Each shard's unfinished seeds; shards with none left are dropped."""
    left = [[s for s in shard if s not in done] for shard in shards]
    return [shard for shard in left if shard]


def remove_partial(out: Path) -> int:
    """Remove what interrupted runs left under OUT/.partial and half-made eg3d link folders; returns the count."""
    n = 0
    for folder in (out / PARTIAL, out / EG3D):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if folder.name == PARTIAL or (p.name.startswith(".") and p.is_dir()):
                shutil.rmtree(p, ignore_errors=True)
                n += 1
    return n


def stale_seed_folders(out: Path, seeds: list[int], settings_sha256: str) -> list[Path]:
    """Seed folders in the way that are not committed with these settings (no or another manifest)."""
    names = set(os.listdir(out)) if out.is_dir() else set()
    return [
        out / seed_dir_name(s)
        for s in seeds
        if seed_dir_name(s) in names and not is_finished(out / seed_dir_name(s), settings_sha256)
    ]


# ----------------------------------------------------------------- disk
def sample_bytes_bound(settings: DatasetSettings, image_resolution: int, neural_resolution: int) -> int:
    """Upper bound of one sample's files: uncompressed pixel sizes plus PNG/npy overheads (1% and headers)."""
    R, r = image_resolution, settings.neural_rendering_resolution or neural_resolution
    px = R * R * 3  # rgb (+ its eg3d hard link: no bytes)
    px += r * r * 4  # depth .npy
    px += r * r * 2 * 2  # depth png, depth_mm png
    px += r * r  # mask
    if settings.raw:
        px += r * r * 3
    if settings.normals:
        px += r * r * 3
    return int(px * 1.01) + 6 * 4096 + 1024  # per-file slack (headers, text chunks, block rounding), seed.json share


def seed_bytes_bound(settings: DatasetSettings, image_resolution: int, neural_resolution: int, w_floats: int) -> int:
    """Upper bound of one seed folder."""
    per_seed = 64 * 1024 + w_floats * 4 + 2048 * settings.views.views  # json files, z, w
    return settings.views.views * sample_bytes_bound(settings, image_resolution, neural_resolution) + per_seed


def format_bytes(n: float) -> str:
    """1.5 GB style (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def check_disk(out: Path, n_seeds: int, seed_bound: int, describe: str) -> None:
    """ValueError if OUT's file system has less free space than n_seeds * seed_bound."""
    need = n_seeds * seed_bound
    free = shutil.disk_usage(out).free
    if need > free:
        raise ValueError(
            f"{describe} need up to {format_bytes(need)} in {out} (an upper bound: uncompressed sizes) but only "
            f"{format_bytes(free)} are free; render fewer seeds or views, or free space"
        )


# ----------------------------------------------------------------- settings file and the closing files
def settings_record(settings: DatasetSettings) -> dict[str, Any]:
    """OUT/settings.json's content."""
    return {"format": FORMAT, "version": VERSION, "settings": settings.to_dict(), "settings_sha256": settings.sha256()}


def check_settings_file(out: Path, settings: DatasetSettings) -> bool:
    """True if OUT/settings.json exists and matches; False if absent; ValueError if it names other settings."""
    p = out / SETTINGS_FILE
    if not p.exists():
        return False
    try:
        old = canonical_json(json.loads(p.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        raise ValueError(f"{p} is not a readable dataset settings file; choose an empty --out") from None
    if old != canonical_json(settings_record(settings)):
        raise ValueError(
            f"{out} holds a dataset made with other settings ({p}); resume with the same options, or choose "
            "another --out"
        )
    return True


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write canonical JSON through a temp file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_bytes(canonical_json(obj))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def finalize(out: Path, settings: DatasetSettings, rendering_kwargs: dict, code: dict[str, str]) -> dict[str, Any]:
    """Write OUT/eg3d/dataset.json (EG3D labels of every finished seed, by seed then view) and OUT/manifest.json
    (every seed manifest's sha256); repair missing eg3d links. Returns the manifest."""
    sha = settings.sha256()
    seeds = sorted(finished_seeds(out, sha))
    labels = []
    seed_manifests = {}
    samples = 0
    for s in seeds:
        name = seed_dir_name(s)
        link_eg3d(out, s)
        for v in sample_views(settings.views, s, rendering_kwargs):
            labels.append([f"{name}/{v.index:04d}.png", eg3d_label(v.camera)])
        seed_manifests[name] = file_sha256(out / name / MANIFEST)
        samples += settings.views.views
    (out / EG3D).mkdir(exist_ok=True)
    write_json_atomic(out / EG3D / "dataset.json", {"labels": labels})
    manifest = {
        "format": f"{FORMAT} manifest",
        "version": VERSION,
        "settings_sha256": sha,
        "code_version": code,
        "seeds": len(seeds),
        "samples": samples,
        "dataset_json_sha256": file_sha256(out / EG3D / "dataset.json"),
        "seed_manifests": seed_manifests,
    }
    write_json_atomic(out / MANIFEST, manifest)
    return manifest


@dataclass
class Plan:
    """A run's work after the resume scan."""

    seeds: list[int]
    shards: list[list[int]]
    """Pending shards (unfinished seeds only)."""
    done: set[int]
    other_code: int = 0
    """Finished seeds whose manifests name other code than this run's (kept: each manifest says which)."""

    @property
    def pending_seeds(self) -> int:
        return sum(len(s) for s in self.shards)


__all__ = [
    "MAX_DATASET_SEEDS",
    "MAX_VIEWS",
    "Plan",
    "check_disk",
    "check_settings_file",
    "finalize",
    "finished_seeds",
    "format_bytes",
    "make_shards",
    "parse_seed_ranges",
    "pending_shards",
    "remove_partial",
    "sample_bytes_bound",
    "seed_bytes_bound",
    "settings_record",
    "stale_seed_folders",
    "write_json_atomic",
]
