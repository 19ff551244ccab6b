"""Avro Object Container Files of schemaless records: written, and read back bounded.

A container file is a header (magic, metadata with the writer schema and the
codec, a 16-byte sync marker) and blocks (a record count, a byte count, the
records, possibly compressed, and the sync marker). `write_container` writes
the payloads `alertpack.packets.avro` encodes; `read_container_header` and
`iter_container_blocks` read any container file (null, deflate, bzip2, xz or
zstandard blocks) with every size a file declares checked before it is read,
and every block decompressed at most to the ``avro_block_bytes`` limit of
`alertpack.limits` (a 1.6 MB deflate block inflating to gigabytes is refused,
not inflated). The read tools, the failed-alert files and the browse index all
read container files through them. No numpy: the read side loads this alone.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, overload

import fastavro
from fastavro.types import Schema as ParsedSchema

from alertpack.errors import InputError
from alertpack.limits import RAW_DEFLATE_WBITS, ReadLimits, check_limit, inflate, read_limits

__all__ = [
    "MAX_WRITTEN_BLOCK_BYTES",
    "READ_CODECS",
    "ContainerBlock",
    "ContainerHeader",
    "decompress_block",
    "iter_container_blocks",
    "read_container_header",
    "read_container_payloads",
    "write_container",
]

_CONTAINER_MAGIC = b"Obj\x01"
_SYNC_SIZE = 16
#: codecs `write_container` writes
_CODECS = ("null", "deflate")
#: bytes of records at most in one block written (half the readers' default block limit)
MAX_WRITTEN_BLOCK_BYTES = 64 << 20


# --- varints --------------------------------------------------------------------------------


def _varint_bytes(value: int) -> bytes:
    """Varint of one zig-zag encoded long (used for headers, not for columns)."""
    unsigned = (value << 1) ^ (value >> 63)
    out = bytearray()
    while unsigned > 0x7F:
        out.append((unsigned & 0x7F) | 0x80)
        unsigned >>= 7
    out.append(unsigned)
    return bytes(out)


@overload
def _read_varint(stream: BinaryIO, what: str, *, eof_ok: Literal[False] = False) -> int: ...


@overload
def _read_varint(stream: BinaryIO, what: str, *, eof_ok: bool) -> int | None: ...


def _read_varint(stream: BinaryIO, what: str, *, eof_ok: bool = False) -> int | None:
    """Read one zig-zag varint; `None` at a clean end of stream when ``eof_ok``."""
    shift = 0
    unsigned = 0
    while True:
        byte = stream.read(1)
        if not byte:
            if eof_ok and shift == 0:
                return None
            raise InputError(f"{what}: file ends in the middle of an Avro varint (truncated file?)")
        unsigned |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return (unsigned >> 1) ^ -(unsigned & 1)
        shift += 7
        if shift > 63:
            raise InputError(f"{what}: malformed Avro varint longer than 10 bytes")


# --- writing ----------------------------------------------------------------------------------


def _container_header(schema_definition: dict[str, Any], codec: str, sync: bytes) -> bytes:
    metadata = {
        "avro.schema": json.dumps(schema_definition, separators=(",", ":")).encode(),
        "avro.codec": codec.encode(),
    }
    out = bytearray(_CONTAINER_MAGIC)
    out += _varint_bytes(len(metadata))
    for key, value in metadata.items():
        out += _varint_bytes(len(key.encode())) + key.encode()
        out += _varint_bytes(len(value)) + value
    out += _varint_bytes(0)
    out += sync
    return bytes(out)


def _deflate(data: bytes) -> bytes:
    # Avro's deflate codec is raw RFC 1951 data: no zlib header or checksum
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def write_container(
    stream: BinaryIO,
    schema_definition: dict[str, Any],
    payloads: Iterable[bytes],
    *,
    codec: str = "null",
    records_per_block: int = 100,
    sync_marker: bytes | None = None,
    max_block_bytes: int = MAX_WRITTEN_BLOCK_BYTES,
) -> int:
    """Write schemaless Avro payloads as an Avro Object Container File.

    Parameters
    ----------
    stream : binary file object
        Where to write (e.g. from `alertpack.sinks.files.atomic_output`).
    schema_definition : `dict`
        Writer schema stored in the header (e.g. ``AlertSchema.definition``);
        every payload must be a record of this schema.
    payloads : iterable of `bytes`
        Encoded records, e.g. from `AlertEncoder.encode`.
    codec : {"null", "deflate"}
        Block compression.
    records_per_block : `int`
        Records per data block.
    max_block_bytes : `int`
        A block also ends before its records would pass this many bytes
        (a lone larger record is a block of its own), so that the files stay
        within the readers' ``avro_block_bytes`` limit.
    sync_marker : `bytes`, optional
        The 16-byte block separator; random when not given (give one for
        reproducible files).

    Returns
    -------
    n_records : `int`
        Number of records written.
    """
    if codec not in _CODECS:
        raise InputError(f"Avro codec {codec!r} is not supported; choose one of {_CODECS}")
    if records_per_block < 1:
        raise InputError(f"records_per_block must be at least 1, got {records_per_block}")
    sync = os.urandom(_SYNC_SIZE) if sync_marker is None else bytes(sync_marker)
    if len(sync) != _SYNC_SIZE:
        raise InputError(f"the Avro sync marker must be 16 bytes, got {len(sync)}")
    stream.write(_container_header(schema_definition, codec, sync))
    n_records = 0
    block: list[bytes] = []
    block_bytes = 0

    def flush() -> None:
        data = b"".join(block)
        if codec == "deflate":
            data = _deflate(data)
        stream.write(_varint_bytes(len(block)) + _varint_bytes(len(data)))
        stream.write(data)
        stream.write(sync)
        block.clear()

    for payload in payloads:
        if block and block_bytes + len(payload) > max_block_bytes:
            flush()
            block_bytes = 0
        block.append(payload)
        block_bytes += len(payload)
        n_records += 1
        if len(block) == records_per_block:
            flush()
            block_bytes = 0
    if block:
        flush()
    return n_records


# --- reading -----------------------------------------------------------------------------------

#: codecs the container reader decompresses, each bounded by the block limit
READ_CODECS = ("null", "deflate", "bzip2", "xz", "zstandard")


@dataclass(frozen=True)
class ContainerHeader:
    """The header of an Avro Object Container File.

    Attributes
    ----------
    schema : `dict`, `list` or `str`
        The writer schema (``avro.schema``).
    codec : `str`
        The block codec (``avro.codec``; ``null`` when absent).
    sync : `bytes`
        The 16-byte marker that ends every block.
    size : `int`
        Bytes of the header: the first block starts there.
    """

    schema: Any
    codec: str
    sync: bytes
    size: int


@dataclass(frozen=True)
class ContainerBlock:
    """One data block of a container file, decompressed.

    Attributes
    ----------
    offset : `int`
        Position of the block (its record count) in the file.
    count : `int`
        Records the block declares.
    data : `bytes`
        The records' bytes, decompressed.
    data_offset : `int`
        Position of the block's (compressed) data in the file.
    size : `int`
        Bytes of the whole block in the file (counts, data, sync marker).
    """

    offset: int
    count: int
    data: bytes
    data_offset: int
    size: int


def _read_exactly(stream: BinaryIO, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise InputError(f"{what}: file ends after {len(data)} of {size} bytes (truncated file?)")
    return data


def _read_sized(stream: BinaryIO, name: str, part: str, limits: ReadLimits) -> bytes:
    """A varint byte count, checked against the block limit, then that many bytes."""
    size = _read_varint(stream, name)
    if size < 0:
        raise InputError(f"{name}: {part} has a negative size {size}; the file is corrupt")
    check_limit(size, "avro_block_bytes", limits, f"{name}: {part}", "bytes declared")
    return _read_exactly(stream, size, name)


def _read_metadata(stream: BinaryIO, name: str, limits: ReadLimits) -> dict[str, bytes]:
    metadata: dict[str, bytes] = {}
    while True:
        count = _read_varint(stream, name)
        if count == 0:
            return metadata
        if count < 0:  # a negative count is followed by the block's byte size
            count = -count
            _read_varint(stream, name)
        for _ in range(count):
            key = _read_sized(stream, name, "a header key", limits).decode(errors="replace")
            metadata[key] = _read_sized(stream, name, f"header entry {key!r}", limits)


def read_container_header(
    stream: BinaryIO, name: str | None = None, *, limits: ReadLimits | None = None
) -> ContainerHeader:
    """The header of an Avro container file, each entry bounded by the block limit.

    Parameters
    ----------
    stream : binary file object
        Positioned at the start of the file.
    name : `str`, optional
        The file, for messages (default: the stream's name).
    limits : `~alertpack.limits.ReadLimits`, optional
        ``avro_block_bytes`` bounds each header entry; default: the environment.

    Raises
    ------
    InputError
        If the stream is not an Avro container file, its codec is not one of
        `READ_CODECS`, or the header is truncated, corrupt or too large
        (`~alertpack.errors.LimitExceededError`).
    """
    limits = read_limits(limits)
    name = name or str(getattr(stream, "name", "Avro stream"))
    start = stream.tell()
    magic = stream.read(len(_CONTAINER_MAGIC))
    if magic != _CONTAINER_MAGIC:
        raise InputError(
            f"{name}: starts with {magic!r}, not the Avro container magic b'Obj\\x01'; "
            "a single Kafka message or schemaless payload needs the schema to be read"
        )
    metadata = _read_metadata(stream, name, limits)
    codec = metadata.get("avro.codec", b"null").decode(errors="replace") or "null"
    if codec not in READ_CODECS:
        raise InputError(
            f"{name}: Avro codec {codec!r} is not supported (only {', '.join(READ_CODECS)})"
        )
    if "avro.schema" not in metadata:
        raise InputError(f"{name}: the Avro header has no avro.schema entry")
    try:
        schema = json.loads(metadata["avro.schema"])
    except ValueError as error:
        raise InputError(f"{name}: the writer schema in the header is not JSON ({error})") from None
    sync = _read_exactly(stream, _SYNC_SIZE, name)
    return ContainerHeader(schema, codec, sync, stream.tell() - start)


def decompress_block(data: bytes, codec: str, *, limits: ReadLimits, what: str) -> bytes:
    """A block's data decompressed with ``codec``, never beyond ``avro_block_bytes``.

    Raises
    ------
    LimitExceededError
        When the data inflate to more than the limit.
    InputError
        When they do not decompress.
    """
    if codec == "null":
        return data
    if codec == "deflate":
        return inflate(
            data, max_bytes=limits.avro_block_bytes, wbits=RAW_DEFLATE_WBITS,
            what=what, limit="avro_block_bytes",
        )
    bound = limits.avro_block_bytes
    try:
        if codec == "bzip2":
            out = bz2.BZ2Decompressor().decompress(data, bound + 1)
        elif codec == "xz":
            out = lzma.LZMADecompressor().decompress(data, bound + 1)
        elif codec == "zstandard":
            # zstandard only here: fastavro's optional codec library, for files that use it
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
                out = reader.read(bound + 1)
        else:
            raise InputError(f"{what}: Avro codec {codec!r} is not supported")
    except InputError:
        raise
    except ImportError:
        raise InputError(f"{what}: the {codec} codec needs the zstandard package") from None
    except Exception as error:  # each codec library raises its own types for damaged data
        raise InputError(f"{what}: a {codec} block does not decompress ({error})") from None
    if len(out) > bound:
        check_limit(len(out), "avro_block_bytes", limits, what, "bytes or more after decompression")
    return out


def iter_container_blocks(
    stream: BinaryIO,
    header: ContainerHeader,
    name: str | None = None,
    *,
    limits: ReadLimits | None = None,
) -> Iterator[ContainerBlock]:
    """Every data block of a container file, decompressed, each bounded by the block limit.

    Parameters
    ----------
    stream : binary file object
        Positioned after the header (`read_container_header`).
    header : `ContainerHeader`
    name : `str`, optional
        The file, for messages.
    limits : `~alertpack.limits.ReadLimits`, optional
        ``avro_block_bytes`` bounds each block, as stored and decompressed.

    Raises
    ------
    InputError
        For a truncated or corrupt block; `~alertpack.errors.LimitExceededError`
        for a block beyond the limit. The blocks before it were yielded.
    """
    limits = read_limits(limits)
    name = name or str(getattr(stream, "name", "Avro stream"))
    while True:
        offset = stream.tell()
        count = _read_varint(stream, name, eof_ok=True)
        if count is None:
            return
        if count < 0:
            raise InputError(f"{name}: a block declares {count} records; the file is corrupt")
        data = _read_sized(stream, name, "a block", limits)
        data_offset = stream.tell() - len(data)
        if _read_exactly(stream, _SYNC_SIZE, name) != header.sync:
            raise InputError(f"{name}: a block does not end with the file's sync marker (corrupt)")
        data = decompress_block(data, header.codec, limits=limits, what=f"{name}: a block")
        yield ContainerBlock(offset, count, data, data_offset, stream.tell() - offset)


def read_container_payloads(
    stream: BinaryIO, *, limits: ReadLimits | None = None
) -> tuple[dict[str, Any], Iterator[bytes]]:
    """The writer schema and the raw bytes of every record of an Avro container file.

    Tools that need the exact packets (sizes, re-sending to Kafka) use this
    instead of decoding and re-encoding.

    Parameters
    ----------
    stream : binary file object
        An Avro Object Container File (any of `READ_CODECS`), positioned at
        its start.
    limits : `~alertpack.limits.ReadLimits`, optional
        ``avro_block_bytes`` bounds each block; default: the environment.

    Returns
    -------
    schema : `dict`
        The writer schema from the file header.
    payloads : iterator of `bytes`
        Each record's schemaless encoding, read lazily block by block.

    Raises
    ------
    alertpack.errors.InputError
        If the stream is not an Avro container file, uses another codec, or
        is truncated, corrupt or beyond the block limit.
    """
    name = str(getattr(stream, "name", "Avro stream"))
    header = read_container_header(stream, name, limits=limits)
    blocks = iter_container_blocks(stream, header, name, limits=limits)
    return header.schema, _iter_payloads(blocks, name, header.schema)


def _iter_payloads(
    blocks: Iterator[ContainerBlock], name: str, schema: dict[str, Any]
) -> Iterator[bytes]:
    parsed = fastavro.parse_schema(schema)
    skipper = None
    if isinstance(schema, dict) and schema.get("type") == "record":
        # a reader record without fields makes fastavro skip every value, building
        # no Python objects: twice as fast as decoding
        skipper = fastavro.parse_schema({"type": "record", "name": schema["name"], "fields": []})
    for block in blocks:
        yield from _split_block(block.data, block.count, parsed, skipper, name)


def _split_block(
    data: bytes, count: int, parsed_schema: ParsedSchema, skipper: ParsedSchema | None, name: str
) -> Iterator[bytes]:
    """The ``count`` records of one block's data, as raw bytes."""
    # fastavro finds where each record ends; decoding is the only way to know
    block = io.BytesIO(data)
    start = 0
    for record in range(count):
        try:
            fastavro.schemaless_reader(block, parsed_schema, skipper)
        except (EOFError, ValueError, IndexError, KeyError, UnicodeDecodeError) as error:
            raise InputError(
                f"{name}: record {record} of a block does not decode with the file's writer "
                f"schema ({type(error).__name__}: {error}); the file is corrupt"
            ) from None
        end = block.tell()
        yield data[start:end]
        start = end
    if start != len(data):
        raise InputError(
            f"{name}: a block holds {len(data) - start} bytes beyond its {count} records; "
            "the file is corrupt"
        )
