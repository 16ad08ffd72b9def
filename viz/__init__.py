"""Interactive viewer (window, widgets, texture presentation); the GUI is not built yet."""
