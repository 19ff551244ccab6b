"""How the commands that read alert files report the files they skipped or could not read."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alertpack.tools.reading import ReadReport

__all__ = ["report_file_problems"]


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
