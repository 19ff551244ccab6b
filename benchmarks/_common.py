"""What the benchmarks share: targets and their verdicts, tables, JSON results, memory, timing.

Every script under ``benchmarks/`` judges its measurements against the
targets of an issue, prints them as fixed-width tables and (some) saves them
as JSON; the pieces for that live here, once:

- `Target`, its verdict words (`PASS_FAIL`, `OK_MISSED`, `MET_MISSED`),
  `print_targets`, `targets_json` and `exit_status`;
- `Column` and `Table`: a header, its rule and rows, each cell made by `cell`;
- `write_json` (atomic, through `alertpack.sinks.files.atomic_output`);
- `resident_mb` (memory now; the peak is `alertpack.scaleout.jobs.peak_rss_mb`);
- `best_time`, `machine_line` and `stop_process`.

The scripts import it as ``_common``: ``python benchmarks/NAME.py`` puts
``benchmarks/`` first on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from alertpack.sinks.files import atomic_output

__all__ = [
    "MET_MISSED",
    "OK_MISSED",
    "PASS_FAIL",
    "Column",
    "Table",
    "Target",
    "Verdicts",
    "best_time",
    "cell",
    "exit_status",
    "machine_line",
    "print_targets",
    "resident_mb",
    "stop_process",
    "targets_json",
    "write_json",
]


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------


class Verdicts(NamedTuple):
    """The words a report prints for a target met, missed, or shown for information."""

    met: str
    missed: str
    info: str = "info"


#: the target lines of bench_package, bench_files and bench_apdb
PASS_FAIL = Verdicts("PASS", "FAIL")
#: bench_kafka's summary lines
OK_MISSED = Verdicts("OK", "MISSED")
#: bench_avro's summary line
MET_MISSED = Verdicts("met", "MISSED")


@dataclass
class Target:
    """A target of an issue, what was measured against it and whether it was met.

    Parameters
    ----------
    name : str
        The target as the report states it, e.g. ``">= 20x baseline throughput"``.
    measured : str
        What was measured, formatted for the report, e.g. ``"31.2x"``.
    passed : bool or None
        Whether the target was met; `None` when the run says nothing about it
        (a quick run's sizes) and it is shown for information only.
    """

    name: str
    measured: str
    passed: bool | None

    def verdict(self, words: Verdicts = PASS_FAIL) -> str:
        """The word for this target's outcome.

        Parameters
        ----------
        words : Verdicts, optional
            The report's vocabulary (default ``PASS``/``FAIL``/``info``).

        Returns
        -------
        str
            ``words.met``, ``words.missed`` or ``words.info``.
        """
        if self.passed is None:
            return words.info
        return words.met if self.passed else words.missed


def print_targets(targets: Sequence[Target], *, heading: str = "targets",
                  name_width: int | None = None, gap: str = "  ") -> None:
    """Print a heading, then one line per target: verdict, name, what was measured.

    Parameters
    ----------
    targets : sequence of Target
        In the order the report gives them.
    heading : str, optional
        The line printed first.
    name_width : int, optional
        Width the names are padded to; default the longest name.
    gap : str, optional
        Between the padded name and what was measured.
    """
    print(heading)
    width = max((len(t.name) for t in targets), default=0) if name_width is None else name_width
    for target in targets:
        print(f"  {target.verdict()}  {target.name:<{width}}{gap}{target.measured}")


def targets_json(targets: Iterable[Target], *,
                 measured_key: str = "measured") -> list[dict[str, Any]]:
    """The targets as JSON-ready dicts (``name``, ``measured_key``, ``passed``).

    Parameters
    ----------
    targets : iterable of Target
        The targets of a run.
    measured_key : str, optional
        The key of what was measured (a results file keeps the key it always had).

    Returns
    -------
    list of dict
        One dict per target.
    """
    return [{"name": t.name, measured_key: t.measured, "passed": t.passed} for t in targets]


def exit_status(targets: Iterable[Target], *, enforce: bool = True) -> int:
    """The benchmark's exit status: 1 when a judged target was missed, else 0.

    Parameters
    ----------
    targets : iterable of Target
        The targets of the run; those with ``passed`` `None` never fail it.
    enforce : bool, optional
        `False` (a quick run whose verdicts are reported, not enforced): always 0.

    Returns
    -------
    int
        0 or 1.
    """
    missed = any(target.passed is False for target in targets)
    return 1 if enforce and missed else 0


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------


def cell(value: Any, width: int, spec: str = "", *, align: str = ">", suffix: str = "",
         missing: str = "-") -> str:
    """One table cell of ``width`` characters (more when the value does not fit).

    Parameters
    ----------
    value : object
        A number (formatted with ``spec``, then ``suffix``), a string (as it
        is) or `None` (``missing``).
    width : int
        Characters of the cell.
    spec : str, optional
        Format spec of a number, e.g. ``".1f"``.
    align : {">", "<", "^"}, optional
        Alignment in the cell.
    suffix : str, optional
        Written right after a number, inside the width (e.g. ``"x"``).
    missing : str, optional
        What stands for `None`.

    Returns
    -------
    str
        The cell.
    """
    if value is None:
        return f"{missing:{align}{width}}"
    if isinstance(value, str):
        return f"{value:{align}{width}}"
    return f"{value:{align}{width - len(suffix)}{spec}}{suffix}"


@dataclass(frozen=True)
class Column:
    """A column of a `Table`: its heading, width, number format and alignment.

    See `cell` for ``spec``, ``align`` and ``suffix``.
    """

    name: str
    width: int
    spec: str = ""
    align: str = ">"
    suffix: str = ""


@dataclass(frozen=True)
class Table:
    """Fixed-width columns with a header line, its rule and rows.

    Parameters
    ----------
    columns : sequence of Column
        Left to right.
    separator : str, optional
        Between two cells.
    missing : str, optional
        The cell of a value that is `None` or not given.
    """

    columns: Sequence[Column]
    separator: str = " "
    missing: str = "-"

    def header(self) -> str:
        """The column names, aligned as their cells."""
        return self.separator.join(f"{c.name:{c.align}{c.width}}" for c in self.columns)

    def rule(self) -> str:
        """A line of dashes as long as the header."""
        return "-" * len(self.header())

    def row(self, values: Mapping[str, Any] | Sequence[Any]) -> str:
        """One row of cells.

        Parameters
        ----------
        values : mapping or sequence
            By column name (a column not given shows ``missing``) or one value
            per column, in order.

        Returns
        -------
        str
            The row.
        """
        if isinstance(values, Mapping):
            values = [values.get(column.name) for column in self.columns]
        if len(values) != len(self.columns):
            raise ValueError(f"{len(values)} values for {len(self.columns)} columns")
        return self.separator.join(
            cell(value, c.width, c.spec, align=c.align, suffix=c.suffix, missing=self.missing)
            for value, c in zip(values, self.columns, strict=True)
        )


def machine_line(script: str, quick: bool = False) -> str:
    """``"NAME: N cores, load average A B C at start"``, what a report opens with.

    Parameters
    ----------
    script : str
        The benchmark's name.
    quick : bool, optional
        Add ``" (quick)"``.

    Returns
    -------
    str
        The line: other load on the shared machine shows in every report.
    """
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return (f"{script}: {os.cpu_count()} cores, load average {load} at start"
            f"{' (quick)' if quick else ''}")


# --------------------------------------------------------------------------
# Results on disk
# --------------------------------------------------------------------------


def write_json(path: str | os.PathLike[str], payload: Any, *, indent: int = 2) -> None:
    """Save results as JSON, atomically (the file appears complete or not at all).

    Parameters
    ----------
    path : path-like
        The results file; replaced if it exists.
    payload : object
        JSON-able; other values (paths, numpy scalars) are written as `str`.
    indent : int, optional
        Indentation of the JSON text.
    """
    text = json.dumps(payload, indent=indent, default=str)
    with atomic_output(path) as stream:
        stream.write(text.encode())


# --------------------------------------------------------------------------
# Memory, time, processes
# --------------------------------------------------------------------------


def resident_mb(pid: int | str = "self") -> float:
    """Resident memory of a process now (``VmRSS``), in MB (2**20 bytes).

    The peak of this process is `alertpack.scaleout.jobs.peak_rss_mb`.

    Parameters
    ----------
    pid : int or "self", optional
        The process (Linux ``/proc``).

    Returns
    -------
    float
        0.0 when the process is gone (a sampled child exited).
    """
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def best_time(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Shortest wall time of ``repeat`` calls of ``function``, and the last result.

    Parameters
    ----------
    function : callable
        Called without arguments.
    repeat : int
        How many calls.

    Returns
    -------
    seconds : float
        The fastest call (``inf`` when ``repeat`` is 0).
    result : object
        What the last call returned (`None` when ``repeat`` is 0).
    """
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Wait for a process that was asked to stop; kill it after ``timeout`` seconds.

    Parameters
    ----------
    process : subprocess.Popen
        Already signalled (SIGTERM, its stdin closed, ...).
    timeout : float, optional
        Seconds it may take to exit by itself.
    """
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
