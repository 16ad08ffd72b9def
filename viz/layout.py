"""Window layout constants shared by the app, the pane and the widgets (window coordinates)."""

from __future__ import annotations

PANE_WIDTH = 380
"""Control pane width."""
STATUS_HEIGHT = 26
"""Status line height."""
FONT_SIZE = 15.0
