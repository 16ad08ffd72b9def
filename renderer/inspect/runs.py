"""Training-run folders: the reference's `network-snapshot-NNNNNN.pkl` files (NNNNNN = kimg), listed in
order, and a follower that reports the newest snapshot once its file has stopped changing.

The follower is pure logic (no threads, the clock passed in), so the viewer polls it from its loader
thread and tests drive it with chosen times.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

SNAPSHOT_PATTERN = re.compile(r"network-snapshot-(\d{6,})\.pkl")
"""A snapshot's file name; the number is the kimg trained so far."""


@dataclass(frozen=True, order=True)
class Snapshot:
    """One snapshot of a run, ordered by kimg."""

    kimg: int
    path: str


def list_snapshots(folder: str | os.PathLike) -> list[Snapshot]:
    """The folder's snapshots sorted by kimg (other files and sub-folders ignored).

    A missing folder or a file in its place raises an OSError naming it."""
    folder = os.fspath(folder)
    if not os.path.exists(folder):
        raise FileNotFoundError(f"training run folder {folder} does not exist")
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"training run folder {folder} is not a folder")
    snaps = []
    with os.scandir(folder) as entries:
        for e in entries:
            m = SNAPSHOT_PATTERN.fullmatch(e.name)
            if m and e.is_file():
                snaps.append(Snapshot(int(m.group(1)), os.path.join(folder, e.name)))
    return sorted(snaps)


@dataclass
class _Watch:
    """A file's (size, mtime) when first seen so and the time it was first seen so."""

    size: int
    mtime_ns: int
    since: float


@dataclass
class RunFollower:
    """Follows a run folder: `poll(now)` returns the newest snapshot once it is settled (size and mtime
    unchanged for `settle_s` since first seen, and not empty, so a half-written file is never loaded) and newer than the
    last one returned (or than `after`, a kimg already loaded); else None."""

    folder: str | os.PathLike
    settle_s: float = 1.0
    after: int | None = None
    """kimg of a snapshot the caller already has: only newer ones are returned."""
    seen: list[Snapshot] = field(default_factory=list)
    """The folder's snapshots at the last poll, by kimg."""
    last: Snapshot | None = None
    """The last snapshot returned."""
    _watch: dict[str, _Watch] = field(default_factory=dict, repr=False)

    def poll(self, now: float) -> Snapshot | None:
        """Look at the folder at time `now` (any monotonic clock, in seconds); OSError if it is gone."""
        self.seen = list_snapshots(self.folder)
        if not self.seen:
            return None
        newest = self.seen[-1]
        floor = self.last.kimg if self.last is not None else self.after
        if floor is not None and newest.kimg <= floor:
            return None
        try:
            st = os.stat(newest.path)
        except FileNotFoundError:
            return None  # removed between the listing and now
        w = self._watch.get(newest.path)
        if w is None or (w.size, w.mtime_ns) != (st.st_size, st.st_mtime_ns):
            self._watch = {newest.path: _Watch(st.st_size, st.st_mtime_ns, now)}
            w = self._watch[newest.path]
        if st.st_size == 0 or now - w.since < self.settle_s:
            return None
        self.last = newest
        return newest
