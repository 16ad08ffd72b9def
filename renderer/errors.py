"""Exceptions raised by the renderer package."""


class CheckpointError(Exception):
    """A checkpoint could not be read: names the file and the problem, nothing was executed."""


class RenderCancelled(Exception):
    """A render stopped at a chunk or stage boundary because its caller's `should_stop()` said so
    (a newer request exists); its partial work is discarded."""
