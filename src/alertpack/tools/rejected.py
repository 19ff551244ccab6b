"""Rejected-message files: what ``consume --out`` read but could not keep as an alert.

Each write of ``consume --out DIR`` puts the messages it rejected since the
last write (not exactly one decodable alert; too large to receive) into one
Avro container file, ``DIR/rejected/<topic>-<UTC time>-<n>.avro``, of
`REJECTED_SCHEMA` records: where each message was, why it was rejected, and
its value as received (empty for a message too large to receive, which stays
on the topic). One file per write, not per message: a flood of garbage is a
few files. The read tools recognise these files by their writer schema and
skip them, as they skip failed-alert files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import fastavro

from alertpack.sinks.files import atomic_output

__all__ = ["REJECTED_SCHEMA", "REJECTED_SCHEMA_NAME", "write_rejected"]

#: Full name of the writer schema of a rejected-message file.
REJECTED_SCHEMA_NAME = "alertpack.rejectedMessage"

#: Avro schema of the records of a rejected-message file.
REJECTED_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "rejectedMessage",
    "namespace": "alertpack",
    "doc": "A Kafka message `alertpack consume` read but could not keep as an alert.",
    "fields": [
        {"name": "topic", "type": "string"},
        {"name": "partition", "type": "int"},
        {"name": "offset", "type": "long"},
        {"name": "reason", "type": "string", "doc": "why it is not an alert"},
        {"name": "received", "type": "boolean", "doc": "false: too large to receive"},
        {"name": "value", "type": "bytes", "doc": "the message value as received"},
    ],
}


def write_rejected(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> Path:
    """Write rejected messages (`REJECTED_SCHEMA` records) to ``path``, atomically."""
    target = Path(path)
    with atomic_output(target) as stream:
        fastavro.writer(stream, fastavro.parse_schema(REJECTED_SCHEMA), records)
    return target
