"""How the commands that read alert files report the files they skipped or could not read."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from alertpack.errors import AlertPackError
from alertpack.terminal import printable

if TYPE_CHECKING:
    from alertpack.tools.reading import ReadReport

__all__ = ["report_file_problems", "report_lines", "reported_on_error", "say"]


def say(line: object, *, error: bool = False, flush: bool = False) -> None:
    """Print one line made of input (ids, names, paths, reasons), escaped (`printable`).

    On stderr with ``error`` (flushed), else on stdout (flushed with ``flush``).
    """
    print(printable(line), file=sys.stderr if error else sys.stdout, flush=error or flush)


def report_lines(command: str, skipped: Iterable[str], errors: Iterable[str]) -> int:
    """One line per skipped and per unreadable file; how many could not be read."""
    for line in skipped:
        say(f"alertpack {command}: skipped {line}", error=True)
    n_errors = 0
    for line in errors:
        say(f"alertpack {command}: error: {line}", error=True)
        n_errors += 1
    if n_errors > 1:
        say(f"alertpack {command}: {n_errors} file problem(s)", error=True)
    return n_errors


def report_file_problems(command: str, report: ReadReport, *, read_any: bool = False) -> int:
    """Print one line per skipped and per unreadable file; the exit status they call for.

    Parameters
    ----------
    command : `str`
        The command, which starts each line.
    report : `ReadReport`
        What reading skipped and could not read.
    read_any : `bool`
        Whether the other files gave the command something to do (alerts
        listed, checked, converted, plotted).

    Returns
    -------
    status : `int`
        1 when some file could not be read but the rest was done (every bad
        file is named), 2 when nothing could be read, else 0 (skipping is
        not an error).
    """
    if report_lines(command, report.skipped, report.errors):
        return 1 if read_any else 2
    return 0


@contextlib.contextmanager
def reported_on_error(command: str, report: ReadReport) -> Iterator[None]:
    """Print the file problems gathered so far when the block ends in an `AlertPackError`."""
    try:
        yield
    except AlertPackError:
        report_file_problems(command, report)
        raise
