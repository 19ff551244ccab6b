"""Progress and summary tables of commands that run many detectors or visits.

On a terminal, a tqdm progress bar on stderr; otherwise (a pipe, a log
file) one plain line per finished item, so that logs stay readable.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from alertpack.terminal import printable

if TYPE_CHECKING:
    from alertpack.config import PackageAlertsConfig
    from alertpack.scaleout.pool import VisitSummary

__all__ = [
    "Progress",
    "print_pool_summary",
    "print_table",
    "print_visit_notes",
    "warnings_to_stderr",
]


class Progress:
    """Count finished items: a bar on a TTY, log lines elsewhere.

    Parameters
    ----------
    total : `int` or `None`
        Items expected.
    unit : `str`
        What an item is (``"detector"``, ``"visit"``).
    log_lines : `bool`
        Off a terminal, print one line per finished item; `False` prints
        nothing there (items too many and too quick for a log, e.g. alerts).
    """

    def __init__(self, total: int | None, unit: str, *, log_lines: bool = True) -> None:
        self.total = total
        self.unit = unit
        self.done = 0
        self.log_lines = log_lines
        self._bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm  # only on a terminal; the parser imports this module

            self._bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)

    @property
    def is_tty(self) -> bool:
        """True when a progress bar is shown."""
        return self._bar is not None

    def update(self, label: str, status: str = "", postfix: str = "") -> None:
        """One more item finished: ``label`` names it, ``status`` says how it went."""
        # a detector's name is its directory's, its status may quote input: both escaped
        label, status = printable(label), printable(status)
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
            if postfix:
                self._bar.set_postfix_str(postfix, refresh=False)
            if status:
                self._bar.write(f"{self.unit} {label}: {status}", file=sys.stderr)
            return
        if not self.log_lines:
            return
        of = f"/{self.total}" if self.total else ""
        print(f"[{self.done}{of}] {self.unit} {label}: {status or 'done'}"
              + (f" ({postfix})" if postfix else ""), file=sys.stderr, flush=True)

    def advance(self, count: int = 1) -> None:
        """``count`` more items finished, without a line of their own."""
        self.done += count
        if self._bar is not None:
            self._bar.update(count)

    def print(self, line: str) -> None:
        """A line of the command's output (stdout), printed above the bar when there is one.

        Lines are made of input (ids, paths, reasons): escaped (`printable`).
        """
        line = printable(line)
        if self._bar is not None:
            self._bar.write(line, file=sys.stdout)
        else:
            print(line)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned table on stdout (first column left, the rest right-aligned)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )

    print(line(cells[0]))
    print("  ".join("-" * width for width in widths))
    for row in cells[1:]:
        print(line(row))


class _WarningsToStderr(logging.Handler):
    """alertpack's log warnings as the command's own lines: ``alertpack package: warning: ...``."""

    def __init__(self, command: str) -> None:
        super().__init__(logging.WARNING)
        self.command = command

    def emit(self, record: logging.LogRecord) -> None:
        # sys.stderr when emitted, not when made: tests and callers may swap it
        print(printable(f"alertpack {self.command}: warning: {record.getMessage()}"),
              file=sys.stderr)


@contextlib.contextmanager
def warnings_to_stderr(command: str = "package") -> Iterator[None]:
    """While the command runs, print the warnings alertpack's library modules log.

    E.g. the core's absent inputs, as ``alertpack package: warning: ...``.
    The handler is removed afterwards: a caller running several commands in
    one process (tests, notebooks) gets each command's warnings only once.
    """
    logger = logging.getLogger("alertpack")
    handler = _WarningsToStderr(command)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def print_visit_notes(summary: VisitSummary) -> None:
    """What the detectors' alerts lack, the columns read under other names, shared files."""
    total = len(summary.detectors)
    for _key, (count, first) in sorted(summary.absent().items()):
        print(f"alertpack package: warning: {count} of {total} packaged detector(s): {first}",
              file=sys.stderr)
    for note, count in sorted(summary.renamed().items()):
        print(f"  note: {note} ({count} detector(s))")
    for path, first, second in summary.shared_files:
        print(f"alertpack package: error: detectors {first} and {second} both wrote {path}: "
              f"{second}'s alerts replaced {first}'s", file=sys.stderr)


def print_pool_summary(
    summary: VisitSummary, config: PackageAlertsConfig, what: str, how: str = ""
) -> int:
    """Print a `VisitSummary` (alerts, time, size, Kafka); the exit status."""
    n_files = sum(len(d.paths) for d in summary.detectors)
    print(
        f"alertpack: packaged {summary.n_alerts} alerts {what} (schema {config.schemaVersion}) "
        f"in {summary.seconds:.1f} s on {summary.workers} worker(s){', ' + how if how else ''}"
    )
    print(f"  size: {summary.n_bytes / 1e6:.1f} MB in {n_files} file(s) under "
          f"{config.alertWriteLocation}; peak memory per worker {summary.peak_rss_mb:.0f} MB")
    if config.doProduceAlerts:
        print(f"  kafka: {summary.n_alerts - summary.n_failed} delivered, "
              f"{summary.n_failed} failed")
    print_visit_notes(summary)
    return 0 if summary.n_failed == 0 and not summary.shared_files else 1
