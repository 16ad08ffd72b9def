"""Every exception the renderer package raises, defined here and imported from here.

* `CheckpointError`: a checkpoint could not be read or does not fit its config (renderer.checkpoint,
  the generator's `load_state`).
* `RenderCancelled`: a render stopped early because its caller asked it to (the engine, the generator).
* `ExportError` and its `Cancelled`: an output file could not be written, or the job was cancelled
  (renderer.export, the model's density sampling).
* `CliError`: a command-line failure reported as one line (renderer.cli).
"""


class CheckpointError(Exception):
    """A checkpoint could not be read: names the file and the problem, nothing was executed."""


class RenderCancelled(Exception):
    """A render stopped at a chunk or stage boundary because its caller's `should_stop()` said so
    (a newer request exists); its partial work is discarded."""

    @staticmethod
    def check(should_stop) -> None:
        """Raise RenderCancelled when `should_stop` (a callable or None) says so: the one cancellation point
        the engine's stages and the generator's ray chunks and SR blocks share."""
        if should_stop is not None and should_stop():
            raise RenderCancelled("a newer request replaced this render")


class ExportError(Exception):
    """An expected export failure (bad path, existing file, full disk, bad value); one readable line."""


class Cancelled(ExportError):
    """The job was cancelled; nothing was written."""


class CliError(Exception):
    """An expected command-line failure: reported as one line on stderr, exit status 2."""
