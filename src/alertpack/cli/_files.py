"""How the commands that read alert files report the files they skipped or could not read."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from alertpack.errors import AlertPackError

if TYPE_CHECKING:
    from alertpack.tools.reading import ReadReport

__all__ = ["report_file_problems", "reported_on_error"]


def report_file_problems(command: str, report: ReadReport) -> int:
    """Print one line per skipped and per unreadable file; the exit status they call for.

    Returns
    -------
    status : `int`
        2 when some file could not be read, else 0 (skipping is not an error).
    """
    for line in report.skipped:
        print(f"alertpack {command}: skipped {line}", file=sys.stderr)
    for line in report.errors:
        print(f"alertpack {command}: error: {line}", file=sys.stderr)
    if report.errors:
        print(f"alertpack {command}: {len(report.errors)} file problem(s)", file=sys.stderr)
        return 2
    return 0


@contextlib.contextmanager
def reported_on_error(command: str, report: ReadReport) -> Iterator[None]:
    """Print the file problems gathered so far when the block ends in an `AlertPackError`."""
    try:
        yield
    except AlertPackError:
        report_file_problems(command, report)
        raise
