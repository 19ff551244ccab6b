"""Exceptions that reach users: each message names what is wrong and how to fix it."""

from __future__ import annotations

__all__ = ["AlertPackError", "CommandError", "InputError", "OutputError", "Terminated"]


class AlertPackError(Exception):
    """Base of alertpack's user-facing errors; the CLI prints these as one line."""


class InputError(AlertPackError, ValueError):
    """Bad input data: a catalog column, an image, a file or a value."""


class CommandError(AlertPackError):
    """A command-line invocation that cannot be carried out as given."""


class OutputError(AlertPackError, OSError):
    """An output location that cannot be written: missing, forbidden, not a directory, full."""


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM, as a batch system sends) on the orderly path of Ctrl-C.

    A `KeyboardInterrupt`, so every clean-up done for Ctrl-C is done for it
    too; the command line exits with ``128 + signum``.

    Parameters
    ----------
    signum : `int`
        The signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum
