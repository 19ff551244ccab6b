"""FITS standard conformance of in-memory FITS files, checked by HEASARC's ``fitsverify``.

``fitsverify`` (Debian package ``fitsverify``) is the reference checker of the
FITS standard built on CFITSIO. It only reads files, so the bytes go through
temporary files; its report is reduced to the warning and error messages.

`run_fitsverify` checks one file. `run_fitsverify_many` checks many in one
invocation (starting the program costs far more than checking a stamp):
``fitsverify -q`` prints one pass/fail line per file, in order, and only the
files that did not pass are checked again one by one for their messages (in
a merged report, the messages on stderr cannot be told apart by file).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from alertpack.errors import InputError

__all__ = [
    "FITSVERIFY_INSTALL_HINT",
    "FitsverifyBatch",
    "fitsverify_available",
    "fitsverify_executable",
    "run_fitsverify",
    "run_fitsverify_many",
]

FITSVERIFY_INSTALL_HINT = "install it with `apt-get install fitsverify` (Debian/Ubuntu)"

# A message starts with "*** Warning:" / "*** Error:"; CFITSIO continues it on
# lines indented by spaces. "**** Abort Verification" is a fatal error.
_MESSAGE_START = re.compile(r"^\*{3,4} ?(Warning|Error|Abort)", re.IGNORECASE)
_SUMMARY = re.compile(r"Verification found (\d+) warning\(s\) and (\d+) error\(s\)")
# the one line per file of ``fitsverify -q``
_PASSED = re.compile(r"^verification OK: (\S+)\s*$")


def fitsverify_available() -> bool:
    """Whether ``fitsverify`` is on the ``PATH``."""
    return shutil.which("fitsverify") is not None


def fitsverify_executable() -> str:
    """Path of the ``fitsverify`` program.

    Raises
    ------
    InputError
        If ``fitsverify`` is not on the ``PATH``.
    """
    path = shutil.which("fitsverify")
    if path is None:
        raise InputError(
            f"the FITS checker `fitsverify` is not installed; {FITSVERIFY_INSTALL_HINT}"
        )
    return path


def run_fitsverify(data: bytes) -> list[str]:
    """Check FITS bytes against the FITS standard with ``fitsverify``.

    Parameters
    ----------
    data : `bytes`
        A complete FITS file.

    Returns
    -------
    problems : `list` [`str`]
        One line per warning or error that ``fitsverify`` reports (continuation
        lines joined), e.g. ``"*** Warning: Keyword FOO is duplicated ..."``;
        empty when the file conforms.

    Raises
    ------
    InputError
        If ``fitsverify`` is not installed (with the install hint).
    """
    executable = fitsverify_executable()
    fd, temp_name = tempfile.mkstemp(suffix=".fits", prefix="alertpack-fitsverify-")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(bytes(data))
        # fitsverify prints warnings on stdout and errors on stderr; merging the
        # two streams keeps every message, each is parsed on its own.
        completed = subprocess.run(
            [executable, temp_name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
    finally:
        os.unlink(temp_name)
    report = completed.stdout.decode("utf-8", errors="replace").replace(temp_name, "<bytes>")
    return _problems_in_report(report, completed.returncode)


def _problems_in_report(report: str, returncode: int) -> list[str]:
    """The warning/error messages of a fitsverify report, continuation lines joined."""
    problems: list[str] = []
    current: list[str] | None = None
    for line in report.splitlines():
        if _MESSAGE_START.match(line):
            if current:
                problems.append(" ".join(current))
            current = [line.strip()]
        elif current is not None and line.startswith(" ") and line.strip():
            current.append(line.strip())
        else:
            if current:
                problems.append(" ".join(current))
            current = None
    if current:
        problems.append(" ".join(current))
    summary = _SUMMARY.search(report)
    counted = sum(map(int, summary.groups())) if summary else 0
    if not problems and (counted or returncode != 0):
        # Never call a file clean that fitsverify did not pass.
        problems.append(
            summary.group(0) if summary else f"fitsverify exited with status {returncode}"
        )
    return problems


def run_fitsverify_many(files: Sequence[bytes]) -> list[list[str]]:
    """Check many FITS files with one ``fitsverify`` run; `run_fitsverify` of each, in order.

    Parameters
    ----------
    files : sequence of `bytes`
        Complete FITS files.

    Returns
    -------
    problems : `list` [`list` [`str`]]
        For each file, what `run_fitsverify` returns for it: empty when it
        conforms, else its warning and error messages.

    Raises
    ------
    InputError
        If ``fitsverify`` is not installed (with the install hint).
    """
    return FitsverifyBatch(files).results()


def _scratch_directory() -> str | None:
    """Where the batches' files go: memory (``/dev/shm``) where there is one, else $TMPDIR."""
    shared = "/dev/shm"
    return shared if os.path.isdir(shared) and os.access(shared, os.W_OK) else None


class FitsverifyBatch:
    """One ``fitsverify -q`` run over many files: started at once, its results read later.

    The files are written to a temporary directory and the program started
    in the background, so that the caller goes on with other work (no thread:
    the program runs beside the caller's process); `results` waits for it.

    Parameters
    ----------
    files : sequence of `bytes`
        Complete FITS files.

    Raises
    ------
    InputError
        If ``fitsverify`` is not installed (with the install hint).
    """

    def __init__(self, files: Sequence[bytes]) -> None:
        executable = fitsverify_executable()
        self.files = [bytes(data) for data in files]
        self._directory = tempfile.TemporaryDirectory(
            prefix="alertpack-fitsverify-", dir=_scratch_directory()
        )
        self._names = []
        for number, data in enumerate(self.files):
            # short names without spaces: the -q lines are parsed by name
            path = Path(self._directory.name, f"{number}.fits")
            path.write_bytes(data)
            self._names.append(str(path))
        # the report goes to a file: a pipe could fill up while nobody reads it
        self._report = Path(self._directory.name, "report.txt")
        with self._report.open("wb") as report:
            self._process = subprocess.Popen(
                [executable, "-q", *self._names],
                stdout=report,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )

    def done(self) -> bool:
        """Whether fitsverify has finished (`results` then returns at once)."""
        return self._process.poll() is not None

    def results(self) -> list[list[str]]:
        """For each file, what `run_fitsverify` returns for it (waits for the run)."""
        try:
            self._process.wait()
            passed = set()
            for line in self._report.read_text("utf-8", errors="replace").splitlines():
                match = _PASSED.match(line)
                if match:
                    passed.add(match.group(1))
            # a file without its "OK" line failed (or fitsverify stopped before it): its
            # messages come from a run of its own
            return [[] if name in passed else run_fitsverify(data)
                    for name, data in zip(self._names, self.files, strict=True)]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the run if it is still going and remove its files."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._directory.cleanup()
