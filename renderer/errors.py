"""Exceptions raised by the renderer package."""


class CheckpointError(Exception):
    """A checkpoint could not be read: names the file and the problem, nothing was executed."""
