"""Alert files on disk, written atomically.

A reader (a broker's file watcher, a replay job) must never see a partial
file at a final path: every file is written to a temporary name in the same
directory, flushed to disk, then renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from alertpack.errors import InputError, OutputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from alertpack.packets.batch import AlertBatch

__all__ = [
    "alert_file_path",
    "atomic_output",
    "check_output_directory",
    "clean_stale_temporaries",
    "prepare_output_directory",
    "write_alert_files",
]

#: a temporary file of ours older than this is stale even if its writer seems alive (pid
#: reuse, another host on a shared filesystem), seconds
STALE_TEMP_SECONDS = 24 * 3600.0

# ``.<final name>.<host>-<pid>.<random>.tmp`` (mkstemp's random part: 8 of [a-z0-9_]);
# also the pid-less ``.<final name>.<random>.tmp`` of alertpack 0.1
_TEMP_NAME = re.compile(
    r"^\.(?P<final>.+?)\.(?:(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)\.)?[a-z0-9_]{8}\.tmp$"
)

# directories already cleaned by this process
_cleaned: set[Path] = set()


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname().split(".")[0]) or "host"


def _temp_prefix(final: Path) -> str:
    return f".{final.name}.{_host_tag()}-{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _is_stale(name: str, age_seconds: float) -> bool:
    match = _TEMP_NAME.match(name)
    if match is None:
        return False
    if age_seconds >= STALE_TEMP_SECONDS:
        return True
    if match["pid"] is None or match["host"] != _host_tag():
        # no pid, or written from another host: only age tells
        return False
    pid = int(match["pid"])
    return pid != os.getpid() and not _pid_alive(pid)


def clean_stale_temporaries(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files that killed writers left in ``directory``.

    Only names of `atomic_output`'s own pattern (``.NAME.<host>-<pid>.XXXXXXXX.tmp``)
    are considered, and only those whose writing process on this host is gone, or
    that are older than `STALE_TEMP_SECONDS` (pid-less names of older versions,
    other hosts). Files that vanish meanwhile or cannot be removed are left alone.

    Returns
    -------
    removed : `list` [`pathlib.Path`]
    """
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.endswith(".tmp") or not entry.name.startswith("."):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if _is_stale(entry.name, age):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _clean_once(directory: Path) -> None:
    """`clean_stale_temporaries` the first time this process writes into ``directory``."""
    key = directory.resolve()
    if key not in _cleaned:
        clean_stale_temporaries(key)
        _cleaned.add(key)


def _output_error(what: Path, error: OSError, doing: str = "write") -> OutputError:
    reason = error.strerror or str(error)
    hint = {
        "ENOSPC": "the disk is full",
        "EFBIG": "the file is larger than allowed (ulimit -f)",
        "EROFS": "the filesystem is read-only",
    }.get(_errno_name(error), "")
    return OutputError(
        f"cannot {doing} {what}: {reason}" + (f" ({hint})" if hint else "")
    )


def _errno_name(error: OSError) -> str:
    return errno.errorcode.get(error.errno or 0, "")


def prepare_output_directory(directory: str | os.PathLike[str]) -> Path:
    """Check before any work that files can be written into ``directory``.

    Creates it (and its parents) if needed, proves it writable by creating and
    removing a temporary file there (which also catches read-only filesystems,
    and works for root, whom permission bits do not stop), and removes stale
    temporary files of killed writers.

    Raises
    ------
    OutputError
        Naming the directory and the reason: a file where a directory is
        expected, no permission, a read-only or full filesystem.
    """
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output directory {path} is not a directory (a file is in the way)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _output_error(path, error, "create output directory") from None
    _probe_writable(path, path)
    _clean_once(path)
    return path


def _probe_writable(directory: Path, output: Path) -> None:
    """Create and remove a temporary file in ``directory``, or raise `OutputError`."""
    try:
        fd, probe = tempfile.mkstemp(
            prefix=_temp_prefix(directory / "probe"), suffix=".tmp", dir=directory
        )
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        doing = "write into output directory" if directory == output else (
            f"create output directory {output} in"
        )
        raise _output_error(directory, error, doing) from None


def check_output_directory(directory: str | os.PathLike[str]) -> Path:
    """Check, before any work, that ``directory`` can be written, without creating it.

    Like `prepare_output_directory`, but a missing directory is left missing
    (it is created when the first file is written): its nearest existing
    ancestor must be a writable directory. So a run that fails on its inputs
    leaves no empty output directory behind.

    Raises
    ------
    OutputError
        Naming the path and the reason.
    """
    path = Path(directory)
    if path.is_dir():
        _probe_writable(path, path)
        _clean_once(path)
        return path
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(
            f"cannot create output directory {path}: {existing} is not a directory "
            "(a file is in the way)"
        )
    _probe_writable(existing, path)
    return path



# the random part of a temporary name: as mkstemp's, 8 of [a-z0-9_]
_TEMP_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_TEMP_ATTEMPTS = 100


def _umask() -> int:
    """This process's umask, read without changing it where Linux tells it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # elsewhere the only way is to set it and put it back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _open_temporary(final: Path, directory_fd: int) -> tuple[int, str]:
    """A new temporary file beside ``final``: created, never opened through a link.

    ``O_EXCL`` makes a name someone else put there (a file, a symbolic link)
    an error, never a file we write into; ``O_NOFOLLOW`` refuses a link at
    the name outright; the name is relative to the directory's descriptor,
    so a directory swapped in meanwhile is not written into. Mode 0600 while
    the content is written.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    prefix = _temp_prefix(final)
    for _ in range(_TEMP_ATTEMPTS):
        random_part = "".join(secrets.choice(_TEMP_CHARACTERS) for _ in range(8))
        name = f"{prefix}{random_part}.tmp"
        try:
            return os.open(name, flags, 0o600, dir_fd=directory_fd), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name after {_TEMP_ATTEMPTS} tries")


def _refuse_link(final: Path, directory_fd: int) -> None:
    """`OutputError` when the final path is a symbolic link (it is not written through)."""
    try:
        status = os.stat(final.name, dir_fd=directory_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(status.st_mode):
        raise OutputError(
            f"cannot write {final}: it is a symbolic link, which is not written through "
            "(remove it, or write to another directory)"
        )


def _check_still_ours(final: Path, temp_name: str, fd: int, directory_fd: int) -> None:
    """`OutputError` when the temporary name no longer holds the file written (swapped).

    In a directory others may write into, the temporary name could be made to
    point at another file (a symbolic link to a victim) while the content is
    written; renaming it would publish that file as the output. The name must
    still be the very file of the descriptor written to.
    """
    written = os.fstat(fd)
    try:
        named = os.stat(temp_name, dir_fd=directory_fd, follow_symlinks=False)
    except FileNotFoundError:
        named = None
    if named is None or (named.st_dev, named.st_ino) != (written.st_dev, written.st_ino):
        raise OutputError(
            f"cannot write {final}: its temporary file {temp_name} was replaced or removed "
            f"while it was written (someone else writes into {final.parent}); nothing was "
            "published"
        )


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary stream whose content appears at ``path`` only on success.

    The temporary file is created ``O_EXCL | O_NOFOLLOW`` relative to a
    descriptor of the directory, written, given the permissions of the
    umask on its descriptor (``fchmod``: ``0666 & ~umask``, as any new file),
    flushed to disk, and renamed into place relative to the same directory
    descriptor: in a shared, writable directory nobody can swap a symbolic
    link or another file in for it and have it chmodded, filled or renamed.
    A symbolic link at the final path is refused.

    Parameters
    ----------
    path : path-like
        Final location. Its directory is created if needed; stale temporary
        files of killed writers there are removed (`clean_stale_temporaries`)
        the first time this process writes into it.

    Yields
    ------
    stream : binary file object
        Write the content here. If the block raises, the temporary file is
        removed and nothing appears at ``path``.

    Raises
    ------
    OutputError
        When the file cannot be written (directory, permission, disk full,
        file-size limit, a symbolic link at ``path``), naming it; an
        `OSError` raised by the block while writing to ``stream`` becomes one
        too.
    """
    final = Path(path)
    if not final.parent.is_dir():
        prepare_output_directory(final.parent)
    else:
        _clean_once(final.parent)
    try:
        directory_fd = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise _output_error(final, error) from None
    try:
        _refuse_link(final, directory_fd)
        try:
            fd, temp_name = _open_temporary(final, directory_fd)
        except OSError as error:
            raise _output_error(final, error) from None
        try:
            with os.fdopen(fd, "wb") as stream:
                try:
                    yield stream
                    stream.flush()
                    os.fchmod(stream.fileno(), 0o666 & ~_umask())
                    os.fsync(stream.fileno())
                except OSError as error:
                    if isinstance(error, OutputError):
                        raise
                    raise _output_error(final, error) from None
                _refuse_link(final, directory_fd)
                _check_still_ours(final, temp_name, stream.fileno(), directory_fd)
                os.replace(
                    temp_name, final.name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd
                )
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name, dir_fd=directory_fd)
            raise
    finally:
        os.close(directory_fd)


def alert_file_path(directory: str | os.PathLike[str], stem: int | str) -> Path:
    """Where the alerts of one file go: ``{directory}/{stem}.avro``.

    ``stem`` is a ccdVisitId (the seed's naming) or ``"{visit}_{detector}"``
    (today's Rubin pipeline's), as `AlertBatch.by_file` gives them.
    """
    return Path(directory) / f"{stem}.avro"


def write_alert_files(
    batch: AlertBatch, directory: str | os.PathLike[str], *, codec: str = "null",
    overwrite: bool = False,
) -> list[Path]:
    """Write a batch as one Avro container file per ccdVisit (or visit and detector), atomically.

    Parameters
    ----------
    batch : `alertpack.packets.batch.AlertBatch`
        Encoded alerts.
    directory : path-like
        Output directory (created if needed).
    codec : `str`
        Avro block codec, ``"null"`` or ``"deflate"``.
    overwrite : `bool`
        Replace an existing file that holds other alerts.

    Returns
    -------
    paths : `list` [`pathlib.Path`]
        The files of the batch, in key order (``batch.by_file``:
        ``{ccdVisitId}.avro`` or ``{visit}_{detector}.avro``).

    Raises
    ------
    OutputError
        Before anything is written, when a file of the batch exists and holds
        other alerts (or is no alert file) and ``overwrite`` is false; the
        message names it and how to allow replacing it. An existing file
        holding exactly the batch's alerts of its key (a re-run, or the
        retry of a job whose worker died after writing) is left as it is.
    """
    # packets.avro (with numpy and the conform modules): only the alert writer needs it,
    # not the users of atomic_output (the consumer, sample files, plots)
    from alertpack.packets.avro import write_container

    planned = [(alert_file_path(directory, stem), rows) for stem, rows in batch.by_file()]
    kept = set() if overwrite else _existing_alert_files(batch, planned)
    paths = []
    for path, rows in planned:
        if path in kept:
            paths.append(path)
            continue
        with atomic_output(path) as stream:
            write_container(
                stream,
                batch.schema.definition,
                (batch.payloads[row] for row in rows),
                codec=codec,
            )
        paths.append(path)
    return paths


def _existing_alert_files(
    batch: AlertBatch, planned: list[tuple[Path, npt.NDArray[np.intp]]]
) -> set[Path]:
    """The planned files that exist and hold those very alerts; any other existing one refused."""
    from alertpack.packets.avro import read_container_payloads  # as in write_alert_files

    same: set[Path] = set()
    for path, rows in planned:
        if not path.exists():
            continue
        try:
            with open(path, "rb") as stream:
                schema, payloads = read_container_payloads(stream)
                identical = schema == batch.schema.definition and list(payloads) == [
                    bytes(batch.payloads[row]) for row in rows
                ]
        except (OSError, InputError):  # unreadable, or not an alert file
            identical = False
        if not identical:
            raise OutputError(
                f"alert file {path} exists and holds other alerts; it is not replaced (no "
                "alert was written): remove it, write elsewhere (-o), or allow replacing alert "
                "files (--overwrite, config overwriteAlertFiles=True)"
            )
        same.add(path)
    return same
