"""Hostile alert files for the reader tests: damaged copies of real alert files.

Every function writes a new file and returns its path; none shares code with
the readers it feeds (plain bytes and fastavro only).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import fastavro

__all__ = [
    "HOSTILE_KINDS",
    "make_hostile",
    "zigzag_varint",
]


def zigzag_varint(value: int) -> bytes:
    """Avro's encoding of a long."""
    number = (value << 1) ^ (value >> 63)
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _records_and_schema(good: Path) -> tuple[list[dict], dict]:
    with good.open("rb") as stream:
        reader = fastavro.reader(stream)
        return list(reader), reader.writer_schema


def _header_length(data: bytes) -> int:
    """Bytes of the container header (magic, metadata map, 16-byte sync marker)."""
    stream = io.BytesIO(data)
    fastavro.reader(stream)  # reads exactly the header
    return stream.tell()


def truncated(good: Path, out: Path) -> Path:
    data = good.read_bytes()
    out.write_bytes(data[: int(len(data) * 0.6)])
    return out


def bit_flipped(good: Path, out: Path) -> Path:
    data = bytearray(good.read_bytes())
    start = _header_length(bytes(data))
    for position in range(start + 3, len(data), max(1, (len(data) - start) // 7)):
        data[position] ^= 0x5A
    out.write_bytes(bytes(data))
    return out


def garbage(good: Path, out: Path) -> Path:
    out.write_bytes(b"Obj\x01" + bytes(range(256)) * 3)
    return out


def not_avro(good: Path, out: Path) -> Path:
    out.write_bytes(b"SIMPLE  =                    T / a FITS file, not an alert\n" * 20)
    return out


def empty(good: Path, out: Path) -> Path:
    out.write_bytes(b"")
    return out


def huge_block(good: Path, out: Path) -> Path:
    """A valid header, then a block that claims 2**62 bytes."""
    data = good.read_bytes()
    out.write_bytes(data[: _header_length(data)] + zigzag_varint(1) + zigzag_varint(2**62))
    return out


def non_record_schema(good: Path, out: Path) -> Path:
    with out.open("wb") as stream:
        fastavro.writer(stream, {"type": "array", "items": "long"}, [[1, 2, 3], [4]])
    return out


def not_an_alert_record(good: Path, out: Path) -> Path:
    schema = {
        "type": "record",
        "name": "weather.reading",
        "fields": [{"name": "temperature", "type": "double"}, {"name": "site", "type": "string"}],
    }
    with out.open("wb") as stream:
        fastavro.writer(stream, schema, [{"temperature": 2.5, "site": "Pachon"}])
    return out


def renamed_field(good: Path, out: Path) -> Path:
    """The alert schema's own name, but diaSource.ra renamed ``rx`` (values moved along)."""
    records, schema = _records_and_schema(good)
    schema = json.loads(json.dumps(schema))
    (source,) = [f for f in schema["fields"] if f["name"] == "diaSource"]
    (ra,) = [f for f in source["type"]["fields"] if f["name"] == "ra"]
    ra["name"] = "rx"
    for record in records:
        record["diaSource"]["rx"] = record["diaSource"].pop("ra")
    with out.open("wb") as stream:
        fastavro.writer(stream, schema, records)
    return out


HOSTILE_KINDS = {
    "truncated": truncated,
    "bit-flipped": bit_flipped,
    "garbage": garbage,
    "not-avro": not_avro,
    "empty": empty,
    "huge-block": huge_block,
    "non-record-schema": non_record_schema,
    "not-an-alert-record": not_an_alert_record,
    "renamed-field": renamed_field,
}


def make_hostile(kind: str, good: Path, directory: Path) -> Path:
    """A ``kind`` damaged version of ``good`` in ``directory``."""
    return HOSTILE_KINDS[kind](good, directory / f"{kind}.avro")
