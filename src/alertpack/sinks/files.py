"""Alert files on disk, written atomically.

A reader (a broker's file watcher, a replay job) must never see a partial
file at a final path: every file is written to a temporary name in the same
directory, flushed to disk, then renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from alertpack.packets.batch import AlertBatch

__all__ = ["alert_file_path", "atomic_output", "write_alert_files"]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a binary stream whose content appears at ``path`` only on success.

    Parameters
    ----------
    path : path-like
        Final location. Its directory is created if needed.

    Yields
    ------
    stream : binary file object
        Write the content here. If the block raises, the temporary file is
        removed and nothing appears at ``path``.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def alert_file_path(directory: str | os.PathLike, ccd_visit_id: int) -> Path:
    """Where the alerts of one ccdVisit go: ``{directory}/{ccdVisitId}.avro``."""
    return Path(directory) / f"{ccd_visit_id}.avro"


def write_alert_files(
    batch: AlertBatch, directory: str | os.PathLike, *, codec: str = "null"
) -> list[Path]:
    """Write a batch as one Avro container file per ccdVisit, atomically.

    Parameters
    ----------
    batch : `alertpack.packets.batch.AlertBatch`
        Encoded alerts.
    directory : path-like
        Output directory (created if needed).
    codec : `str`
        Avro block codec, ``"null"`` or ``"deflate"``.

    Returns
    -------
    paths : `list` [`pathlib.Path`]
        The files written, in ccdVisitId order. An existing file of the same
        ccdVisit is replaced whole (a re-run of the visit).
    """
    from alertpack.packets.avro import write_container

    paths = []
    for ccd_visit_id, rows in batch.by_ccd_visit():
        path = alert_file_path(directory, ccd_visit_id)
        with atomic_output(path) as stream:
            write_container(
                stream,
                batch.schema.definition,
                (batch.payloads[row] for row in rows),
                codec=codec,
            )
        paths.append(path)
    return paths
