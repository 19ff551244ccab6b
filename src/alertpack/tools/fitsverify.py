"""FITS standard conformance of in-memory FITS files, checked by HEASARC's ``fitsverify``.

``fitsverify`` (Debian package ``fitsverify``) is the reference checker of the
FITS standard built on CFITSIO. It only reads files, so the bytes go through a
temporary file; its report is reduced to the warning and error messages.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from alertpack.errors import InputError

__all__ = ["FITSVERIFY_INSTALL_HINT", "fitsverify_executable", "run_fitsverify"]

FITSVERIFY_INSTALL_HINT = "install it with `apt-get install fitsverify` (Debian/Ubuntu)"

# A message starts with "*** Warning:" / "*** Error:"; CFITSIO continues it on
# lines indented by spaces. "**** Abort Verification" is a fatal error.
_MESSAGE_START = re.compile(r"^\*{3,4} ?(Warning|Error|Abort)", re.IGNORECASE)
_SUMMARY = re.compile(r"Verification found (\d+) warning\(s\) and (\d+) error\(s\)")


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
