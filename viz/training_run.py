"""A training-run folder in the viewer: its snapshots by kimg, stepping through them with the latent and camera
kept, and following the newest (a settled new snapshot loads in the background through the usual safe loader)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from renderer.inspect.runs import RunFollower, Snapshot, list_snapshots

SCAN_INTERVAL_S = 1.0
"""How often an open run folder is listed again (a directory listing: cheap)."""


@dataclass
class TrainingRun:
    """The run folder the model panel shows (UI thread): what it holds and which snapshot is loaded."""

    folder: str = ""
    """The folder typed into the panel."""
    opened: str | None = None
    """The folder listed (None: no run open)."""
    snapshots: list[Snapshot] = field(default_factory=list)
    follow: bool = False
    """Load each new snapshot once it is complete (RunFollower's settle time)."""
    error: str | None = None
    loaded: str | None = None
    """Path of the snapshot last asked to load from this run."""
    _follower: RunFollower | None = None
    _scanned_at: float = -1e9

    def open(self, folder: str, now: float) -> bool:
        """List `folder`'s snapshots (an error line when it is not a readable folder; the old list stays)."""
        folder = os.path.expanduser(folder.strip())
        try:
            snaps = list_snapshots(folder)
        except (OSError, ValueError) as e:
            self.error = str(e)
            return False
        self.opened, self.snapshots, self.error, self._scanned_at = folder, snaps, None, now
        self._follower = RunFollower(folder)
        if not snaps:
            self.error = f"no network-snapshot-NNNNNN.pkl files in {folder} yet"
        return True

    def close(self) -> None:
        self.opened, self.snapshots, self.follow, self._follower, self.error = None, [], False, None, None

    def index(self) -> int | None:
        """Position of the loaded snapshot in the list (None when none of this run is loaded)."""
        for i, s in enumerate(self.snapshots):
            if s.path == self.loaded:
                return i
        return None

    def step(self, delta: int) -> Snapshot | None:
        """The snapshot `delta` places from the loaded one (the newest when none is loaded), or None at an end."""
        if not self.snapshots:
            return None
        i = self.index()
        j = len(self.snapshots) - 1 if i is None else i + delta
        return self.snapshots[j] if 0 <= j < len(self.snapshots) else None

    def update(self, now: float) -> Snapshot | None:
        """Re-list the folder every SCAN_INTERVAL_S; while following, the newest settled snapshot not yet loaded."""
        if self.opened is None or now - self._scanned_at < SCAN_INTERVAL_S:
            return None
        self._scanned_at = now
        try:
            self.snapshots = list_snapshots(self.opened)
        except (OSError, ValueError) as e:
            self.error = str(e)
            return None
        if self.error and self.snapshots:
            self.error = None
        if not self.follow or self._follower is None:
            return None
        snap = self._follower.poll(now)
        return snap if snap is not None and snap.path != self.loaded else None

    def wake_in(self, now: float) -> float | None:
        """Seconds until the next listing is due while following (None: no timer needed)."""
        if self.opened is None or not self.follow:
            return None
        return max(self._scanned_at + SCAN_INTERVAL_S - now, 0.0)
