"""Recently opened checkpoints, persisted as JSON in the user's config folder (written atomically).

Location: `$TRIPLANE_VIZ_CONFIG_DIR/recent.json` if that variable is set (tests), else
`$XDG_CONFIG_HOME/triplane-viz/recent.json`, else `~/.config/triplane-viz/recent.json`.
A missing file is an empty list; an unreadable or corrupt one is ignored with a warning (and
replaced on the next save), so a bad file never stops the viewer from starting.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_ENV = "TRIPLANE_VIZ_CONFIG_DIR"
FILENAME = "recent.json"
LIMIT = 10


def config_dir() -> Path:
    """The folder holding the viewer's settings (see the module docstring for the order)."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "triplane-viz"


@dataclass
class RecentFiles:
    """Most recent first, at most `limit` distinct absolute paths."""

    path: Path
    items: list[str] = field(default_factory=list)
    limit: int = LIMIT
    warning: str | None = None
    """Why the stored list was ignored or could not be saved (one line), if it was."""

    @classmethod
    def load(cls, path: Path | None = None, limit: int = LIMIT) -> RecentFiles:
        """Read the list; a corrupt or unreadable file gives an empty list and a warning."""
        path = Path(path) if path is not None else config_dir() / FILENAME
        rf = cls(path, limit=limit)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return rf
        except (OSError, UnicodeDecodeError, ValueError) as e:
            rf.warning = f"ignored the recent-files list {path}: {type(e).__name__}: {e}"
            return rf
        items = data.get("recent") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
            rf.warning = f"ignored the recent-files list {path}: expected {{\"recent\": [paths]}}"
            return rf
        rf.items = list(dict.fromkeys(items))[:limit]
        return rf

    def add(self, file: str | os.PathLike) -> None:
        """Put `file` first and save; existing files are stored absolute, names such as 'builtin' as given."""
        p = os.fspath(file)
        p = os.path.abspath(p) if os.path.exists(p) else p
        self.items = [p] + [q for q in self.items if q != p]
        del self.items[self.limit :]
        self.save()

    def remove(self, file: str) -> None:
        """Drop `file` from the list and save."""
        self.items = [q for q in self.items if q != file]
        self.save()

    def save(self) -> bool:
        """Write atomically (temp file in the same folder + os.replace); False (and `warning`) on failure."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump({"recent": self.items}, f, indent=1)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:
            self.warning = f"could not save the recent-files list {self.path}: {e}"
            return False
        return True
