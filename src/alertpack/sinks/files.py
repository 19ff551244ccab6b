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
from typing import BinaryIO

__all__ = ["atomic_output"]


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
