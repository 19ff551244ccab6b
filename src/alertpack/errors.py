"""Exceptions that reach users: each message names what is wrong and how to fix it."""

from __future__ import annotations

__all__ = ["AlertPackError", "CommandError", "InputError", "OutputError"]


class AlertPackError(Exception):
    """Base of alertpack's user-facing errors; the CLI prints these as one line."""


class InputError(AlertPackError, ValueError):
    """Bad input data: a catalog column, an image, a file or a value."""


class CommandError(AlertPackError):
    """A command-line invocation that cannot be carried out as given."""


class OutputError(AlertPackError, OSError):
    """An output location that cannot be written: missing, forbidden, not a directory, full."""
