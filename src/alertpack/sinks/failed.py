"""Failed-alert files: alerts that Kafka did not take, kept to be replayed.

An alert is either delivered or written here, with the reason, in an Avro
container of `FAILED_ALERT_SCHEMA` records (``failed-<UTC time>-<pid>.avro``);
``alertpack replay`` sends them again.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import fastavro

from alertpack.errors import FailedAlertFileError, LimitExceededError
from alertpack.limits import ReadLimits, read_limits
from alertpack.packets.batch import OutgoingAlert
from alertpack.packets.container import iter_container_blocks, read_container_header
from alertpack.sinks.files import atomic_output

__all__ = [
    "FAILED_ALERT_SCHEMA",
    "FAILED_ALERT_SCHEMA_NAME",
    "FailedAlert",
    "find_failed_alert_files",
    "is_failed_alert_file",
    "read_failed_alerts",
    "write_failed_alerts",
]



@dataclass
class FailedAlert:
    """An alert that was not delivered, and why."""

    alert: OutgoingAlert
    topic: str
    reason: str
    failed_at_ms: int

    def to_record(self) -> dict[str, Any]:
        """The record written to a failed-alerts file."""
        return {
            "alert_id": int(self.alert.alert_id),
            "key": None if self.alert.key is None else int(self.alert.key),
            "schema_id": int(self.alert.schema_id),
            "timestamp_ms": self.alert.timestamp_ms,
            "topic": self.topic,
            "reason": self.reason,
            "failed_at": self.failed_at_ms,
            "payload": bytes(self.alert.payload),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> FailedAlert:
        """Inverse of `to_record`."""
        failed_at = record["failed_at"]
        if isinstance(failed_at, datetime):
            failed_at = round(failed_at.timestamp() * 1000)
        alert = OutgoingAlert(
            payload=record["payload"],
            schema_id=record["schema_id"],
            key=record["key"],
            timestamp_ms=record["timestamp_ms"],
            alert_id=record["alert_id"],
        )
        return cls(
            alert=alert, topic=record["topic"], reason=record["reason"], failed_at_ms=failed_at
        )


#: Full name of the writer schema that marks a failed-alerts file, wherever it lies.
FAILED_ALERT_SCHEMA_NAME = "alertpack.failedAlert"

#: Avro schema of the records in a failed-alerts file.
FAILED_ALERT_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "failedAlert",
    "namespace": "alertpack",
    "doc": "An alert that could not be delivered to Kafka; `alertpack replay` sends it again.",
    "fields": [
        {"name": "alert_id", "type": "long", "doc": "diaSourceId"},
        {"name": "key", "type": ["null", "long"], "doc": "diaObjectId (the message key)"},
        {"name": "schema_id", "type": "int", "doc": "Rubin schema id of payload"},
        {
            "name": "timestamp_ms",
            "type": ["null", "long"],
            "doc": "message timestamp to send; null: the time of sending",
        },
        {"name": "topic", "type": "string"},
        {"name": "reason", "type": "string", "doc": "why the last attempt failed"},
        {"name": "failed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "payload", "type": "bytes", "doc": "schemaless Avro alert, no wire header"},
    ],
}


def _failed_file_name() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"failed-{stamp}-{os.getpid()}.avro"


def write_failed_alerts(
    failures: Iterable[FailedAlert], directory: str | os.PathLike[str], *, path: Path | None = None
) -> Path:
    """Write failures to a failed-alerts Avro file, atomically.

    Parameters
    ----------
    failures : iterable of `FailedAlert`
    directory : path-like
        Where a new ``failed-<UTC time>-<pid>.avro`` goes (ignored when ``path`` is given).
    path : `pathlib.Path`, optional
        Replace this file instead (as replay does).

    Returns
    -------
    path : `pathlib.Path`
    """
    target = Path(path) if path is not None else Path(directory) / _failed_file_name()
    parsed = fastavro.parse_schema(FAILED_ALERT_SCHEMA)
    with atomic_output(target) as stream:
        fastavro.writer(stream, parsed, (failure.to_record() for failure in failures))
    return target


def _full_name(schema: Any) -> str | None:
    """The full name of a writer schema that is a named record, else `None`."""
    if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
        return None
    name: str = schema["name"]
    namespace = schema.get("namespace")
    return f"{namespace}.{name}" if "." not in name and isinstance(namespace, str) else name


def read_failed_alerts(
    path: str | os.PathLike[str], *, limits: ReadLimits | None = None
) -> list[FailedAlert]:
    """The failures recorded in a failed-alerts file.

    Parameters
    ----------
    path : path-like
        The file.
    limits : `~alertpack.limits.ReadLimits`, optional
        Bounds on its blocks (``avro_block_bytes``); default: the environment.

    Raises
    ------
    FailedAlertFileError
        If the file cannot be read, is not a failed-alerts file, or holds a
        block beyond the limit.
    """
    path = Path(path)
    limits = read_limits(limits)
    try:
        with open(path, "rb") as stream:
            header = read_container_header(stream, str(path), limits=limits)
            name = _full_name(header.schema)
            if name != FAILED_ALERT_SCHEMA_NAME:
                raise FailedAlertFileError(
                    f"{path} holds {name or 'unknown'} records, not alertpack.failedAlert: "
                    "give replay the failed-*.avro files an AlertProducer wrote"
                )
            parsed = fastavro.parse_schema(header.schema)
            failures = []
            for block in iter_container_blocks(stream, header, str(path), limits=limits):
                data = io.BytesIO(block.data)
                for _ in range(block.count):
                    # the failedAlert record schema reads as dicts
                    record = cast(dict[str, Any], fastavro.schemaless_reader(data, parsed, None))
                    failures.append(FailedAlert.from_record(record))
            return failures
    except FailedAlertFileError:
        raise
    except LimitExceededError as error:
        raise FailedAlertFileError(str(error)) from None
    except OSError as error:
        raise FailedAlertFileError(f"cannot read failed-alerts file {path}: {error}") from None
    except MemoryError:
        raise FailedAlertFileError(
            f"{path} is not a readable failed-alerts Avro file (a length in it is far larger "
            "than memory: corrupt data)"
        ) from None
    except Exception as error:  # fastavro and the container reader raise many types
        detail = str(error).removeprefix(f"{path}: ")
        raise FailedAlertFileError(
            f"{path} is not a readable failed-alerts Avro file "
            f"({type(error).__name__}: {detail}); it is truncated or corrupt"
        ) from None


def is_failed_alert_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is an Avro container of `FAILED_ALERT_SCHEMA_NAME` records.

    Only the header is read; a file that cannot be read is not one.
    """
    try:
        with open(path, "rb") as stream:
            schema = read_container_header(stream, str(path)).schema
    except Exception:  # unreadable or not Avro: not a failed-alerts file
        return False
    return _full_name(schema) == FAILED_ALERT_SCHEMA_NAME


def _looks_failed(path: Path) -> bool:
    """A name as `write_failed_alerts` gives (``failed-<UTC time>-<pid>.avro``)."""
    return path.name.startswith("failed-") and path.name.endswith(".avro")


def find_failed_alert_files(
    paths: Iterable[str | os.PathLike[str]], *, problems: list[str] | None = None
) -> list[Path]:
    """Expand files and directories into failed-alerts files.

    A directory is searched recursively (so ``<alertWriteLocation>`` finds its
    ``failed/`` subdirectory) for non-hidden ``*.avro`` files whose writer
    schema is `FAILED_ALERT_SCHEMA_NAME`, whatever their name; alert files
    next to them (readable Avro files of other records) are left alone. A
    file given by name is taken as it is (`read_failed_alerts` says if it is
    not one).

    Parameters
    ----------
    paths : iterable of path-like
        Files and directories.
    problems : `list` [`str`], optional
        Collects, one line each, what is wrong and left alone: a missing
        path, an ``*.avro`` file under a directory that is not readable Avro
        (it may be a damaged failed-alerts file), a file named like a
        failed-alerts file that holds other records, a directory named like
        one that holds none. Without it, a missing path raises and the rest
        is passed over silently.

    Raises
    ------
    FailedAlertFileError
        Without ``problems``, for a path that does not exist.
    """
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            candidates = sorted(
                p for p in path.rglob("*.avro") if p.is_file() and not p.name.startswith(".")
            )
            before = len(found)
            for candidate in candidates:
                problem = _not_failed_file(candidate)
                if problem is None:
                    found.append(candidate)
                elif problems is not None and problem:
                    problems.append(problem)
            if problems is not None and len(found) == before and path.suffix == ".avro":
                problems.append(
                    f"{path} is a directory named like an alert file, holding no failed-alerts "
                    "file: give the failed-*.avro files themselves"
                )
        elif path.is_file():
            found.append(path)
        else:
            message = f"{path} does not exist: give failed-alert files or dirs"
            if problems is None:
                raise FailedAlertFileError(message)
            problems.append(message)
    return found


def _not_failed_file(path: Path) -> str | None:
    """`None` for a failed-alerts file; else why not, empty when that is no problem."""
    try:
        with open(path, "rb") as stream:
            schema = read_container_header(stream, str(path)).schema
    except Exception as error:  # unreadable or not Avro: possibly a damaged failed-alerts file
        detail = str(error).removeprefix(f"{path}: ")
        return f"{path} is not a readable Avro file ({detail}); left alone"
    name = _full_name(schema)
    if name == FAILED_ALERT_SCHEMA_NAME:
        return None
    if _looks_failed(path):
        return (
            f"{path} is named like a failed-alerts file but holds {name or 'other'} records; "
            "left alone"
        )
    return ""  # an alert file beside the failed ones: not for replay, no problem
