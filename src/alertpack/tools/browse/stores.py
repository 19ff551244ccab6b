"""Where the bytes of an indexed alert are, and how to get one alert back without the others.

The browse index keeps, per alert, a *locator*: its store, a block position,
an offset and a size. Three kinds of store:

`ContainerStore`
    An Avro object container file. For a file without compression (alertpack
    and lsst.alert.packet write those) the locator is the absolute position of
    the record in the file: one alert is one ``seek`` and one ``read`` of its
    own bytes. For a compressed file (deflate, bzip2, xz, zstandard) it is the
    block's position and the record's offset in the decompressed block; the
    block is decompressed again, bounded, when one of its alerts is opened (a
    few are kept).
`WireStore`
    A file holding one Confluent wire-format message (5-byte header, then the
    schemaless record).
`SpoolStore`
    Alerts read from Kafka: their payloads are appended to a temporary file
    (removed at exit), so memory does not grow with the stream.

Every store decodes a payload with its writer schema, and says when the file
changed since it was indexed instead of decoding garbage.
"""

from __future__ import annotations

import collections
import io
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import fastavro

from alertpack.errors import InputError, LimitExceededError
from alertpack.limits import check_limit, read_limits
from alertpack.packets.container import (
    ContainerHeader,
    iter_container_blocks,
    read_container_header,
)
from alertpack.schema import WIRE_HEADER_SIZE, AlertSchema, decode_record
from alertpack.tools.reading import AlertFile

__all__ = ["AlertStore", "ContainerStore", "Spool", "SpoolStore", "WireStore", "scan_file"]

#: locator block value meaning "offset is an absolute position in the file"
DIRECT = -1

_BLOCKS_KEPT = 2  # decompressed blocks kept per store: pages open one alert at a time


class AlertStore(Protocol):
    """What the index needs of a store."""

    source: str
    writer_schema: dict[str, Any]
    schema: AlertSchema | None

    @property
    def schema_name(self) -> str: ...

    def payload(self, block: int, offset: int, size: int) -> bytes: ...

    def decode(self, payload: bytes) -> dict[str, Any]: ...


def _describe(error: BaseException) -> str:
    if isinstance(error, MemoryError):
        return "a length in the data is far larger than memory: corrupt data"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _FileStore:
    """A store backed by one file that must not change after indexing."""

    def __init__(self, alert_file: AlertFile):
        assert isinstance(alert_file.writer_schema, dict), "iter_alert_files gives record files"
        self.path: Path = alert_file.path
        self.source = str(alert_file.path)
        self.writer_schema: dict[str, Any] = alert_file.writer_schema
        self.schema: AlertSchema | None = alert_file.schema
        self._schema_name = alert_file.schema_name
        self._parsed = (
            alert_file.schema.parsed
            if alert_file.schema is not None and alert_file.has_shipped_schema
            else fastavro.parse_schema(alert_file.writer_schema)
        )
        self._stamp = self._file_stamp()

    @property
    def schema_name(self) -> str:
        return self._schema_name

    def _file_stamp(self) -> tuple[int, int]:
        status = self.path.stat()
        return status.st_size, status.st_mtime_ns

    def _check_unchanged(self) -> None:
        try:
            stamp = self._file_stamp()
        except OSError as error:
            raise InputError(f"cannot read {self.path}: {error.strerror or error}") from None
        if stamp != self._stamp:
            raise InputError(
                f"{self.path} changed since it was indexed; restart alertpack browse to index it "
                "again"
            )

    def _read(self, position: int, size: int) -> bytes:
        self._check_unchanged()
        try:
            with self.path.open("rb") as stream:
                stream.seek(position)
                data = stream.read(size)
        except OSError as error:
            raise InputError(f"cannot read {self.path}: {error.strerror or error}") from None
        if len(data) != size:
            raise InputError(f"{self.path} is shorter than when it was indexed")
        return data

    def decode(self, payload: bytes) -> dict[str, Any]:
        """The record of one payload, which must hold exactly that record."""
        record: dict[str, Any] = decode_record(
            payload, self._parsed, what=f"{self.path}: an alert",
            schema=f"schema {self.schema_name}",
        )
        return record


class ContainerStore(_FileStore):
    """An Avro object container file of alerts."""

    def __init__(self, alert_file: AlertFile):
        super().__init__(alert_file)
        self._header: ContainerHeader | None = None
        self._block_sizes: dict[int, int] = {}
        self._blocks: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self._lock = threading.Lock()

    def scan(self) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
        """Every record: ``(block, offset, size, decoded record)``, in file order.

        Blocks are read through `alertpack.packets.container`, bounded by the
        read limits like every reader.

        Raises
        ------
        InputError
            At damaged data (or a block beyond the limits); the records before
            it have been yielded.
        """
        index = 0
        name = str(self.path)
        try:
            with self.path.open("rb") as stream:
                header = self._header = read_container_header(stream, name)
                compressed = header.codec != "null"
                for block in iter_container_blocks(stream, header, name):
                    data = io.BytesIO(block.data)
                    if compressed:
                        self._block_sizes[block.offset] = block.size
                        base, where = block.offset, 0
                    else:
                        # the records are stored as they are, after the block's two varints
                        base, where = DIRECT, block.data_offset
                    for _ in range(block.count):
                        start = data.tell()
                        record: Any = fastavro.schemaless_reader(data, self._parsed, None)
                        size = data.tell() - start
                        yield base, where + start, size, record
                        index += 1
        except OSError as error:
            raise InputError(f"cannot read alert file {self.path}: {error}") from None
        except LimitExceededError:
            raise
        except Exception as error:  # fastavro raises many types (and MemoryError) for bad data
            detail = _describe(error).replace(f"{name}: ", "")
            raise InputError(
                f"{self.path}: Avro data is corrupt or truncated at alert #{index} "
                f"({detail}); the alerts before it are shown"
            ) from None

    def payload(self, block: int, offset: int, size: int) -> bytes:
        """The schemaless bytes of one record."""
        if block == DIRECT:
            return self._read(offset, size)
        data = self._block(block)
        if offset + size > len(data):
            raise InputError(f"{self.path}: the record is outside its block; the file changed")
        return data[offset:offset + size]

    def _block(self, block: int) -> bytes:
        with self._lock:
            if block in self._blocks:
                self._blocks.move_to_end(block)
                return self._blocks[block]
        if self._header is None or block not in self._block_sizes:
            raise InputError(f"{self.path}: no block at {block}")
        raw = self._read(block, self._block_sizes[block])
        try:
            (decoded,) = iter_container_blocks(io.BytesIO(raw), self._header, str(self.path))
            data = decoded.data
        except Exception as error:  # the container reader raises InputError, codecs others
            raise InputError(
                f"{self.path}: block at {block} is damaged ({_describe(error)})"
            ) from None
        with self._lock:
            self._blocks[block] = data
            while len(self._blocks) > _BLOCKS_KEPT:
                self._blocks.popitem(last=False)
        return data


class WireStore(_FileStore):
    """A file holding one Confluent wire-format message."""

    def scan(self) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
        size = self._stamp[0] - WIRE_HEADER_SIZE
        check_limit(size, "avro_block_bytes", read_limits(), f"{self.path}: wire-format message",
                    "bytes")
        payload = self._read(WIRE_HEADER_SIZE, size)
        yield DIRECT, WIRE_HEADER_SIZE, size, self.decode(payload)

    def payload(self, block: int, offset: int, size: int) -> bytes:
        return self._read(offset, size)


def scan_file(
    alert_file: AlertFile,
) -> tuple[ContainerStore | WireStore, Iterator[tuple[int, int, int, dict]]]:
    """The store of an alert file and an iterator over its records (see `ContainerStore.scan`)."""
    store: ContainerStore | WireStore = (
        ContainerStore(alert_file) if alert_file.container else WireStore(alert_file)
    )
    return store, store.scan()


class Spool:
    """An append-only temporary file of payloads, removed when closed (or at exit)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self._file = tempfile.TemporaryFile(
            prefix="alertpack-browse-", dir=None if directory is None else os.fspath(directory)
        )
        self._lock = threading.Lock()
        self._end = 0

    def append(self, payload: bytes) -> int:
        """Write ``payload``; its offset."""
        with self._lock:
            offset = self._end
            self._file.seek(offset)
            self._file.write(payload)
            self._end += len(payload)
            return offset

    def read(self, offset: int, size: int) -> bytes:
        with self._lock:
            self._file.flush()
            self._file.seek(offset)
            return self._file.read(size)

    def close(self) -> None:
        with self._lock:
            self._file.close()


class SpoolStore:
    """Alerts of one schema read from a Kafka topic, their payloads in a `Spool`."""

    def __init__(self, spool: Spool, schema: AlertSchema, source: str):
        self._spool = spool
        self.schema: AlertSchema | None = schema
        self.writer_schema: dict[str, Any] = schema.definition
        self.source = source

    @property
    def schema_name(self) -> str:
        return str(self.writer_schema["name"])

    def add(self, payload: bytes) -> tuple[int, int, int]:
        """Keep ``payload``; its locator ``(block, offset, size)``."""
        return DIRECT, self._spool.append(payload), len(payload)

    def payload(self, block: int, offset: int, size: int) -> bytes:
        return self._spool.read(offset, size)

    def decode(self, payload: bytes) -> dict[str, Any]:
        assert self.schema is not None
        try:
            return self.schema.decode(payload)
        except Exception as error:  # fastavro raises many types for bad data
            raise InputError(
                f"{self.source}: a kept alert does not decode ({_describe(error)})"
            ) from None
