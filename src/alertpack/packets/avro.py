"""Columnar Avro binary encoding of alert packets.

fastavro encodes one Python object at a time, which costs milliseconds for an
alert carrying a few thousand values. This module encodes *columns*: every
field of every row of a `~alertpack.packets.tables.ColumnTable` is turned into bytes
with a handful of numpy operations per field, and the rows are then laid out
back to back in one buffer. Alerts are assembled from slices of those
buffers, so each record table is encoded once per batch however many alerts
share its rows.

The output is byte-identical to ``fastavro.schemaless_writer`` for the same
records (see `alertpack.packets.tables.ColumnTable.row_dict` and
`alertpack.packets.tables.AlertParts.alert_dict`):

- ``int``/``long``: zig-zag varints; ``float``/``double``: IEEE 754
  little-endian; ``boolean``: one byte; ``string``/``bytes``: varint length
  then the (UTF-8) bytes; unions: the varint branch index then the value.
- arrays: a single block, ``count, items..., 0``; an empty array is a lone 0.

The encoder does not validate values: a table's columns are checked once,
by `alertpack.packets.conform`, which marks the tables it builds. A table
without that mark (built by hand, or changed since) is conformed first by the
same rules (`alertpack.packets.conform.conformed`). What the encoder checks
itself is how `~alertpack.packets.tables.AlertParts` refer to the tables:
field names, record types, shapes, row indices and list offsets.

Avro Object Container Files made of such payloads are written and read by
`alertpack.packets.container` (``write_container`` and
``read_container_payloads`` are importable from here too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from alertpack.errors import InputError, UnsupportedSchemaError
from alertpack.packets.avro_types import FieldType, primitive_of, record_field_types, split_union
from alertpack.packets.conform import conformed
from alertpack.packets.container import read_container_payloads, write_container
from alertpack.packets.tables import AlertParts, ColumnTable, RecordList, RecordRef, ScalarColumn

if TYPE_CHECKING:
    from alertpack.schema import AlertSchema

__all__ = [
    "AlertEncoder",
    "EncodedRows",
    "RecordEncoder",
    "read_container_payloads",
    "write_container",
]

# A zig-zagged value needs k + 1 varint bytes when it is >= 2**(7 k).
_VARINT_LIMITS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)
_MAX_VARINT_BYTES = 10
_FLOAT32_QUIET_BIT = np.uint32(0x0040_0000)

# Rows are laid out in a padded (rows x width) byte matrix before compaction;
# chunking bounds its size whatever the table length.
_CHUNK_BYTES = 1 << 20




# ---------------------------------------------------------------------------
# Encoded rows
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedRows:
    """The Avro binary encoding of ``n`` rows, back to back.

    Attributes
    ----------
    data : `numpy.ndarray` [`numpy.uint8`]
        All rows' bytes, row after row.
    offsets : `numpy.ndarray` [`numpy.int64`]
        ``n + 1`` positions in ``data``; row ``i`` is
        ``data[offsets[i]:offsets[i + 1]]``.
    """

    data: npt.NDArray[np.uint8]
    offsets: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        """Encoded size of every row, in bytes."""
        return np.diff(self.offsets)

    def row(self, i: int) -> bytes:
        """The encoding of row ``i``."""
        i = range(len(self))[i]
        return self.data[self.offsets[i] : self.offsets[i + 1]].tobytes()

    def rows(self, idx: Sequence[int] | npt.NDArray[np.integer[Any]]) -> bytes:
        """The encodings of rows ``idx``, concatenated in that order (array items)."""
        idx = np.asarray(idx, dtype=np.intp)
        if idx.size == 0:
            return b""
        starts = self.offsets[idx]
        ends = self.offsets[idx + 1]
        if np.array_equal(starts[1:], ends[:-1]):
            return self.data[starts[0] : ends[-1]].tobytes()
        return self.data[_ranges_index(starts, ends)].tobytes()


def _ranges_index(
    starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Positions of the byte ranges ``[starts[k], ends[k])``, concatenated."""
    lengths = ends - starts
    out_starts = np.cumsum(lengths) - lengths
    return np.repeat(starts - out_starts, lengths) + np.arange(int(lengths.sum()))


# ---------------------------------------------------------------------------
# Column -> bytes primitives
# ---------------------------------------------------------------------------


def _zigzag(values: np.ndarray) -> np.ndarray:
    """Zig-zag map int64 values to uint64 (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...)."""
    values = values.astype(np.int64, copy=False)
    # numpy shifts wrap silently, which is exactly the 64-bit arithmetic zig-zag needs
    return ((values << 1) ^ (values >> 63)).view(np.uint64)


def _varints(unsigned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Varint bytes of uint64 values.

    Returns
    -------
    matrix : `numpy.ndarray` [`numpy.uint8`], shape (n, width)
        Row ``i`` starts with the ``lengths[i]`` bytes of value ``i``; the rest
        is padding. ``width`` is the longest encoding present (at least 1).
    lengths : `numpy.ndarray` [`numpy.int64`]
        Bytes used by each value (1 to 10).
    """
    lengths = np.searchsorted(_VARINT_LIMITS, unsigned, side="right").astype(np.int64) + 1
    width = int(lengths.max()) if lengths.size else 1
    shifts = np.arange(0, 7 * width, 7, dtype=np.uint64)
    matrix = ((unsigned[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    continued = np.arange(width) < (lengths - 1)[:, None]
    matrix |= continued.view(np.uint8) << 7
    return matrix, lengths


# ---------------------------------------------------------------------------
# Record fields
# ---------------------------------------------------------------------------


def _null_code(null_branch: int | None) -> int:
    """Branch byte of null in a union (a zig-zag varint of the branch index, always 1 byte)."""
    return 2 * (null_branch or 0)


def _value_code(null_branch: int | None) -> int:
    """Branch byte of the non-null branch of a union with null."""
    return 2 * (1 - (null_branch or 0))


class _Block:
    """The bytes one field contributes to every row: at most ``width`` per row.

    A block writes its rows into a padded ``(rows, width)`` byte matrix and
    marks which of those bytes are real in a same-shaped bool matrix.
    """

    width: int
    lengths: np.ndarray | None  # bytes used per row; None when every row uses ``width``

    def fill(self, out: np.ndarray, rows: slice) -> None:
        """Write rows ``rows`` into ``out`` (shape ``(rows, width)``)."""
        raise NotImplementedError

    def mark_used(self, used: np.ndarray, rows: slice) -> None:
        """Set ``used`` (shape ``(rows, width)``, all True on entry) to the real bytes."""
        if self.lengths is not None:
            np.less(np.arange(self.width), self.lengths[rows, None], out=used)


class _MatrixBlock(_Block):
    """An optional union branch byte followed by a padded value matrix.

    Parameters
    ----------
    branch : `numpy.ndarray` [`numpy.uint8`] or `int` or `None`
        Union branch byte per row, one byte for all rows, or None (no union).
    values : `numpy.ndarray` [`numpy.uint8`], shape (n, w)
        Value bytes of each row, padded.
    lengths : `numpy.ndarray` or `None`
        Bytes used per row, branch included; None when all are used.
    valid : `numpy.ndarray` [`bool`], optional
        For fixed-width values: rows whose value is written (the others are
        null and only have their branch byte). Faster to mark than ``lengths``.
    """

    def __init__(
        self,
        branch: np.ndarray | int | None,
        values: np.ndarray,
        lengths: np.ndarray | None,
        valid: np.ndarray | None = None,
    ) -> None:
        self.branch = branch
        self.values = values
        self.lead = 0 if branch is None else 1
        self.width = self.lead + values.shape[1]
        self.lengths = lengths
        self.valid = valid

    def fill(self, out: np.ndarray, rows: slice) -> None:
        if self.branch is not None:
            out[:, 0] = self.branch if np.isscalar(self.branch) else self.branch[rows]
        out[:, self.lead :] = self.values[rows]

    def mark_used(self, used: np.ndarray, rows: slice) -> None:
        if self.valid is None:
            super().mark_used(used, rows)
        else:
            used[:, self.lead :] = self.valid[rows, None]


class _VariableBlock(_Block):
    """Optional branch byte, varint length, then variable-length bytes (strings, bytes)."""

    def __init__(
        self,
        branch: np.ndarray | int | None,
        size_varints: np.ndarray,
        size_varint_lengths: np.ndarray,
        payload: np.ndarray,
        payload_lengths: np.ndarray,
        lengths: np.ndarray,
    ) -> None:
        self.head = _MatrixBlock(branch, size_varints, None)
        self.payload = payload
        self.payload_lengths = payload_lengths
        self.payload_starts = np.cumsum(payload_lengths) - payload_lengths
        # where each row's payload begins inside the block (after branch and size)
        self.payload_columns = self.head.lead + size_varint_lengths
        self.width = self.head.width + (int(payload_lengths.max()) if payload_lengths.size else 0)
        self.lengths = lengths

    def fill(self, out: np.ndarray, rows: slice) -> None:
        # the head's padding is overwritten by the payload scattered after it
        self.head.fill(out[:, : self.head.width], rows)
        counts = self.payload_lengths[rows]
        total = int(counts.sum())
        if total == 0:
            return
        first = int(self.payload_starts[rows][0])
        sources = np.arange(first, first + total)
        out_rows = np.repeat(np.arange(len(counts)), counts)
        out_columns = np.repeat(self.payload_columns[rows] - self.payload_starts[rows], counts)
        out[out_rows, out_columns + sources] = self.payload[sources]


def _compact(blocks: list[_Block], n_rows: int) -> EncodedRows:
    """Lay the blocks of every row side by side and squeeze out the padding."""
    row_lengths = np.zeros(n_rows, dtype=np.int64)
    for block in blocks:
        row_lengths += block.width if block.lengths is None else block.lengths
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(row_lengths, out=offsets[1:])
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    width = sum(block.width for block in blocks)
    if n_rows == 0 or width == 0:
        return EncodedRows(data, offsets)

    # ~1 MB chunks keep the strided column writes in cache
    chunk = max(1, _CHUNK_BYTES // width)
    padded = np.empty((min(chunk, n_rows), width), dtype=np.uint8)
    used = np.ones(padded.shape, dtype=bool)
    column_slices = np.cumsum([0] + [block.width for block in blocks]).tolist()
    partial = [
        (block, slice(column_slices[k], column_slices[k + 1]))
        for k, block in enumerate(blocks)
        if block.lengths is not None
    ]
    for start in range(0, n_rows, chunk):
        stop = min(start + chunk, n_rows)
        rows = slice(start, stop)
        chunk_padded = padded[: stop - start]
        chunk_used = used[: stop - start]
        for k, block in enumerate(blocks):
            block.fill(chunk_padded[:, column_slices[k] : column_slices[k + 1]], rows)
        for block, columns in partial:
            block.mark_used(chunk_used[:, columns], rows)
        data[offsets[start] : offsets[stop]] = chunk_padded[chunk_used]
    return EncodedRows(data, offsets)


class _FieldColumn:
    """One conformed field's column and null mask, turned into a `_Block`.

    The column has the dtype `alertpack.packets.conform` gives the field's
    type and holds only values that type can hold; nothing is checked here.
    """

    def __init__(self, field: FieldType, table: ColumnTable) -> None:
        self.field = field
        self.n_rows = table.n_rows
        self.nulls = table.nulls.get(field.name)
        self.values = table.columns[field.name]

    def valid(self) -> np.ndarray | None:
        """Positions that are not null, or None when all are valid."""
        return None if self.nulls is None else ~self.nulls

    def branch(self) -> np.ndarray | int | None:
        """Union branch bytes per row (scalar when all rows take the same branch)."""
        null_branch = self.field.null_branch
        if null_branch is None:
            return None
        if self.nulls is None:
            return _value_code(null_branch)
        return np.where(self.nulls, _null_code(null_branch), _value_code(null_branch)).astype(
            np.uint8
        )

    def lengths_with_branch(self, value_lengths: np.ndarray | int) -> np.ndarray | None:
        """Per-row bytes used: branch byte plus value bytes, or branch alone for nulls."""
        lead = 1 if self.field.nullable else 0
        if self.nulls is None:
            if np.isscalar(value_lengths):
                return None
            return lead + value_lengths
        lengths = np.broadcast_to(lead + np.asarray(value_lengths, dtype=np.int64), self.n_rows)
        return np.where(self.nulls, lead, lengths)

    # --- per Avro primitive ---------------------------------------------------

    def block(self) -> _Block:
        primitive = self.field.primitive
        if primitive in ("int", "long"):
            return self._integer_block()
        if primitive in ("float", "double"):
            return self._floating_block()
        if primitive == "boolean":
            return self._boolean_block()
        return self._variable_block()

    def _integer_block(self) -> _Block:
        values = self.values.astype(np.int64)
        if self.nulls is not None:
            values[self.nulls] = 0  # placeholders would only widen the padded matrix
        matrix, lengths = _varints(_zigzag(values))
        return _MatrixBlock(self.branch(), matrix, self.lengths_with_branch(lengths))

    def _floating_block(self) -> _Block:
        if self.field.primitive == "double":
            cast = np.ascontiguousarray(self.values, dtype="<f8")
            width = 8
        else:
            cast = _quiet_nans(np.ascontiguousarray(self.values, dtype="<f4"))
            width = 4
        matrix = cast.view(np.uint8).reshape(self.n_rows, width)
        return _MatrixBlock(self.branch(), matrix, self.lengths_with_branch(width), self.valid())

    def _boolean_block(self) -> _Block:
        matrix = self.values.view(np.uint8).reshape(self.n_rows, 1)
        return _MatrixBlock(self.branch(), matrix, self.lengths_with_branch(1), self.valid())

    def _variable_block(self) -> _Block:
        valid = self.valid()
        present = (self.values if valid is None else self.values[valid]).tolist()
        if self.field.primitive == "string":
            payload, sizes = _utf8(present)
        else:
            payload = np.frombuffer(b"".join(present), dtype=np.uint8)
            sizes = np.fromiter(map(len, present), dtype=np.int64, count=len(present))
        if valid is None:
            payload_lengths = sizes
        else:
            payload_lengths = np.zeros(self.n_rows, dtype=np.int64)
            payload_lengths[valid] = sizes
        size_varints, size_varint_lengths = _varints(_zigzag(payload_lengths))
        lengths = self.lengths_with_branch(size_varint_lengths + payload_lengths)
        if lengths is None:
            lengths = size_varint_lengths + payload_lengths
        return _VariableBlock(
            self.branch(), size_varints, size_varint_lengths, payload, payload_lengths, lengths
        )


def _quiet_nans(cast: np.ndarray) -> np.ndarray:
    """Set the quiet bit of signalling float32 NaNs, as fastavro does.

    fastavro passes a float32 through a C double and back, which quiets
    signalling NaNs; doing the same keeps the bytes identical.
    """
    nan = np.isnan(cast)
    if not nan.any():
        return cast
    bits = cast.view("<u4").copy()
    bits[nan] |= _FLOAT32_QUIET_BIT
    return bits.view("<f4")


def _utf8(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes of all strings back to back, and each string's byte count."""
    joined = "".join(texts)
    encoded = joined.encode("utf-8")
    char_counts = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    if len(encoded) == len(joined):  # pure ASCII: one byte per character
        return np.frombuffer(encoded, dtype=np.uint8), char_counts
    code_points = np.frombuffer(joined.encode("utf-32-le"), dtype="<u4")
    utf8_sizes = (
        1 + (code_points >= 0x80) + (code_points >= 0x800) + (code_points >= 0x10000)
    ).astype(np.int64)
    cumulative = np.zeros(len(code_points) + 1, dtype=np.int64)
    np.cumsum(utf8_sizes, out=cumulative[1:])
    char_ends = np.cumsum(char_counts)
    byte_counts = cumulative[char_ends] - cumulative[char_ends - char_counts]
    return np.frombuffer(encoded, dtype=np.uint8), byte_counts


class RecordEncoder:
    """Encode all rows of a flat Avro record type at once.

    Parameters
    ----------
    record_schema : `dict`
        An Avro record definition whose fields are primitives (logical types
        such as ``timestamp-micros`` included) or unions of ``"null"`` and one
        primitive, in either order.

    Raises
    ------
    UnsupportedSchemaError
        If a field has another type (nested record, array, map, enum, ...).
    """

    def __init__(self, record_schema: dict[str, Any]) -> None:
        if record_schema.get("type") != "record":
            raise UnsupportedSchemaError(
                f"RecordEncoder needs an Avro record definition, got type "
                f"{record_schema.get('type')!r}"
            )
        self.schema = record_schema
        self.name: str = record_schema["name"]
        self.fields = record_field_types(record_schema)

    def encode(self, table: ColumnTable) -> EncodedRows:
        """Encode every row of ``table``.

        A table built by `alertpack.packets.conform` is encoded as it is; any
        other is conformed to this record type first
        (`alertpack.packets.conform.conformed`).

        Raises
        ------
        alertpack.errors.InputError
            If the table does not conform: a column is missing, has a dtype
            that cannot be cast safely to its Avro type, holds a value
            outside that type's range, or a non-nullable field has nulls.
            Nothing is encoded in that case.
        """
        table = conformed(table, self.fields, self.name)
        blocks = [
            _FieldColumn(field, table).block() for field in self.fields if field.primitive != "null"
        ]
        return _compact(blocks, table.n_rows)

    def __repr__(self) -> str:
        return f"RecordEncoder({self.name}, {len(self.fields)} fields)"


# ---------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _AlertField:
    """A top-level alert field: a primitive, a record, or an array of records."""

    definition: dict[str, Any]
    kind: str  # "scalar", "record" or "array"
    null_branch: int | None
    record: str | None  # full name of the carried record type
    primitive: str | None = None  # for scalars: the primitive type

    @property
    def name(self) -> str:
        name: str = self.definition["name"]
        return name

    @property
    def is_union(self) -> bool:
        return self.null_branch is not None

    @property
    def null_code(self) -> bytes:
        return bytes([_null_code(self.null_branch)])

    @property
    def value_code(self) -> bytes:
        return bytes([_value_code(self.null_branch)]) if self.is_union else b""


def _alert_field(
    field: dict[str, Any], named_types: dict[str, dict[str, Any]], alert: str
) -> _AlertField:
    where = f"{alert}.{field['name']}"
    avro_type, null_branch = split_union(field["type"], where)
    if isinstance(avro_type, str) and avro_type in named_types:
        avro_type = named_types[avro_type]
    if isinstance(avro_type, dict) and avro_type.get("type") == "record":
        return _AlertField(field, "record", null_branch, avro_type["name"])
    if isinstance(avro_type, dict) and avro_type.get("type") == "array":
        items = avro_type["items"]
        items = named_types.get(items, items) if isinstance(items, str) else items
        if isinstance(items, dict) and items.get("type") == "record":
            return _AlertField(field, "array", null_branch, items["name"])
        raise UnsupportedSchemaError(f"{where}: arrays must carry records, not {items}")
    return _AlertField(field, "scalar", null_branch, None, primitive_of(avro_type, where)[0])


def _choose(mask: npt.NDArray[np.bool_], if_true: bytes, if_false: bytes) -> list[bytes]:
    """Per position, one of two byte strings (numpy's own bytes dtype drops trailing NULs)."""
    options = np.array([if_false, if_true], dtype=object)
    chosen: list[bytes] = options[mask.astype(np.intp)].tolist()
    return chosen


def _slices(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[memoryview]:
    view = memoryview(data)
    return [view[start:end] for start, end in zip(starts.tolist(), ends.tolist(), strict=True)]


class AlertEncoder:
    """Encode batches of alerts of one schema version from their columnar parts.

    Parameters
    ----------
    schema : `alertpack.schema.AlertSchema`
        The alert schema version to write.

    Notes
    -----
    Each distinct `~alertpack.packets.tables.ColumnTable` of an `AlertParts` is
    encoded once per `encode` call; alerts are then joined from slices of the
    encoded rows, so a table shared by several fields or alerts costs nothing
    extra.
    """

    def __init__(self, schema: AlertSchema) -> None:
        self.schema = schema
        definition = schema.definition
        self.name: str = definition["name"]
        self.fields = [
            _alert_field(field, schema.named_types, self.name) for field in definition["fields"]
        ]
        self._record_encoders = {
            field.record: RecordEncoder(schema.named_types[field.record])
            for field in self.fields
            if field.record is not None
        }
        self._scalar_encoders: dict[tuple[str, ...], RecordEncoder] = {}

    def encode(self, parts: AlertParts) -> list[bytes]:
        """Schemaless Avro payload of every alert in ``parts``.

        Raises
        ------
        alertpack.errors.InputError
            If a field's content does not fit the schema: an unknown field, a
            null where the schema forbids it, a table of the wrong record
            type, an out-of-range row index, or a bad column (see
            `RecordEncoder.encode`).
        """
        n_alerts = parts.n_alerts
        self._check_field_names(parts)
        batch = _AlertBatch(self, parts)
        pending_scalars: list[tuple[_AlertField, ScalarColumn]] = []
        for field in self.fields:
            value = parts.fields.get(field.name)
            if field.kind == "scalar" and isinstance(value, ScalarColumn):
                pending_scalars.append((field, value))
                continue
            batch.add_scalars(pending_scalars)
            pending_scalars = []
            if value is None:
                batch.add_absent(field)
            elif field.kind == "scalar" and field.primitive == "bytes":
                batch.add_blobs(field, value)
            elif field.kind == "scalar":
                raise InputError(
                    f"alert field {field.name!r}: got a {type(value).__name__}; give a "
                    "ScalarColumn (one value per alert)"
                )
            elif field.kind == "record":
                batch.add_record_ref(field, value)
            else:
                batch.add_record_list(field, value)
        batch.add_scalars(pending_scalars)
        if n_alerts == 0:
            return []
        return [b"".join(pieces) for pieces in zip(*batch.pieces, strict=True)]

    def _check_field_names(self, parts: AlertParts) -> None:
        known = {field.name for field in self.fields}
        unknown = sorted(set(parts.fields) - known)
        if unknown:
            raise InputError(
                f"alert parts carry field(s) {', '.join(unknown)} that alert schema "
                f"{self.schema.version} does not define (fields: {', '.join(sorted(known))}); "
                "drop them or choose the schema version that has them"
            )

    def scalar_encoder(self, fields: Sequence[_AlertField]) -> RecordEncoder:
        """A record encoder for a run of consecutive scalar alert fields."""
        key = tuple(field.name for field in fields)
        if key not in self._scalar_encoders:
            self._scalar_encoders[key] = RecordEncoder(
                {
                    "type": "record",
                    "name": self.name,
                    "fields": [field.definition for field in fields],
                }
            )
        return self._scalar_encoders[key]

    def record_encoder(self, record: str) -> RecordEncoder:
        return self._record_encoders[record]

    def __repr__(self) -> str:
        return f"AlertEncoder({self.schema!r})"


class _AlertBatch:
    """Per-call state of `AlertEncoder.encode`: the pieces of every alert, by field."""

    def __init__(self, encoder: AlertEncoder, parts: AlertParts) -> None:
        self.encoder = encoder
        self.n_alerts = parts.n_alerts
        # each entry: one bytes-like piece per alert; alert i is the join of entry[i]s
        self.pieces: list[list[Any]] = []
        self._encoded: dict[int, tuple[ColumnTable, EncodedRows]] = {}

    def error(self, field: _AlertField, problem: str, fix: str) -> InputError:
        return InputError(f"alert field {field.name!r}: {problem}; {fix}")

    def encoded(self, field: _AlertField, table: ColumnTable) -> EncodedRows:
        """``table`` encoded with the field's record type, once per batch."""
        if not isinstance(table, ColumnTable):
            raise self.error(field, f"table is a {type(table).__name__}", "give a ColumnTable")
        if table.name != field.record:
            raise self.error(
                field,
                f"carries {field.record} records but the table holds {table.name} rows",
                "build the table with this schema version's record definition",
            )
        cached = self._encoded.get(id(table))
        if cached is None:
            cached = (table, self.encoder.record_encoder(field.record).encode(table))
            self._encoded[id(table)] = cached
        return cached[1]

    def constant(self, piece: bytes) -> None:
        self.pieces.append([piece] * self.n_alerts)

    def per_alert(self, encoded: EncodedRows) -> None:
        self.pieces.append(_slices(encoded.data, encoded.offsets[:-1], encoded.offsets[1:]))

    def check_nulls(self, field: _AlertField, nulls: np.ndarray) -> None:
        if not field.is_union and nulls.any():
            alert = int(np.flatnonzero(nulls)[0])
            raise self.error(
                field,
                f"alert {alert} has no value but the schema does not allow null",
                "give every alert a value",
            )

    def array(self, field: _AlertField, what: str, values: Any, length: int) -> np.ndarray:
        array = np.asarray(values)
        if array.shape != (length,):
            raise self.error(
                field, f"{what} has shape {array.shape}", f"give an array of shape ({length},)"
            )
        return array

    # --- field kinds -------------------------------------------------------------

    def add_absent(self, field: _AlertField) -> None:
        if not field.is_union:
            raise self.error(
                field, "is missing from the alert parts and the schema does not allow null",
                "give it a value",
            )
        self.constant(field.null_code)

    def add_scalars(self, run: list[tuple[_AlertField, ScalarColumn]]) -> None:
        if not run:
            return
        columns: dict[str, npt.NDArray[Any]] = {}
        nulls: dict[str, npt.NDArray[np.bool_] | None] = {}
        for field, column in run:
            columns[field.name] = self.array(field, "values", column.values, self.n_alerts)
            if column.nulls is not None:
                nulls[field.name] = self.array(field, "nulls", column.nulls, self.n_alerts)
        encoder = self.encoder.scalar_encoder([field for field, _ in run])
        table = ColumnTable(encoder.schema, columns, nulls, self.n_alerts)
        self.per_alert(encoder.encode(table))

    def add_blobs(self, field: _AlertField, blobs: Any) -> None:
        """A bytes field (cutouts) given as one `bytes` or `None` per alert."""
        if isinstance(blobs, (str, bytes)) or not hasattr(blobs, "__len__"):
            raise self.error(
                field, f"got a {type(blobs).__name__}",
                "give a ScalarColumn or a sequence of bytes-or-None, one per alert",
            )
        if len(blobs) != self.n_alerts:
            raise self.error(
                field, f"has {len(blobs)} values for {self.n_alerts} alerts",
                "give one value (bytes or None) per alert",
            )
        items = list(blobs)
        for alert, blob in enumerate(items):
            if blob is not None and not isinstance(blob, (bytes, bytearray)):
                raise self.error(
                    field, f"alert {alert} holds a {type(blob).__name__}, not bytes",
                    "give bytes (e.g. the FITS file content) or None",
                )
        nulls = np.fromiter((blob is None for blob in items), dtype=bool, count=len(items))
        self.check_nulls(field, nulls)
        sizes = np.fromiter((0 if b is None else len(b) for b in items), np.int64, len(items))
        self.per_alert(_headers(field, ~nulls, sizes, omit_zero=False))
        self.pieces.append([b"" if blob is None else blob for blob in items])

    def add_record_ref(self, field: _AlertField, ref: Any) -> None:
        if not isinstance(ref, RecordRef):
            raise self.error(field, f"got a {type(ref).__name__}", "give a RecordRef")
        encoded = self.encoded(field, ref.table)
        index = self.array(field, "RecordRef.index", ref.index, self.n_alerts)
        index = self.row_index(field, index, ref.table, allow_null=True)
        nulls = index < 0
        self.check_nulls(field, nulls)
        if field.is_union:
            self.pieces.append(_choose(nulls, field.null_code, field.value_code))
        starts = np.where(nulls, 0, encoded.offsets[index])
        ends = np.where(nulls, 0, encoded.offsets[index + 1])
        self.pieces.append(_slices(encoded.data, starts, ends))

    def add_record_list(self, field: _AlertField, records: Any) -> None:
        if not isinstance(records, RecordList):
            raise self.error(field, f"got a {type(records).__name__}", "give a RecordList")
        encoded = self.encoded(field, records.table)
        offsets = self.array(field, "RecordList.offsets", records.offsets, self.n_alerts + 1)
        if offsets.dtype.kind not in "iu":
            raise self.error(field, f"offsets have dtype {offsets.dtype}", "give integers")
        offsets = offsets.astype(np.int64)
        flat = np.asarray(records.index)
        if np.any(np.diff(offsets) < 0) or offsets[0] < 0 or offsets[-1] > len(flat):
            raise self.error(
                field,
                f"offsets are not non-decreasing within [0, {len(flat)}] (the index length)",
                "give CSR offsets: alert i's rows are index[offsets[i]:offsets[i + 1]]",
            )
        index = self.row_index(field, flat, records.table, allow_null=False)
        present = np.ones(self.n_alerts, dtype=bool)
        if records.present is not None:
            present = self.array(field, "RecordList.present", records.present, self.n_alerts)
            present = present.astype(bool)
        self.check_nulls(field, ~present)
        counts = np.where(present, np.diff(offsets), 0)
        self.per_alert(_headers(field, present, counts, omit_zero=True))
        self.pieces.append(self.list_bodies(encoded, offsets, index, counts))
        self.pieces.append(_choose(present, b"\x00", b""))

    def row_index(
        self, field: _AlertField, index: np.ndarray, table: ColumnTable, *, allow_null: bool
    ) -> np.ndarray:
        if index.dtype.kind not in "iu":
            raise self.error(field, f"row index has dtype {index.dtype}", "give integers")
        low = -1 if allow_null else 0
        bad = (index < low) | (index >= table.n_rows)
        if bad.any():
            position = int(np.flatnonzero(bad)[0])
            raise self.error(
                field,
                f"row index {int(index[position])} at position {position} is outside the "
                f"{table.name} table of {table.n_rows} rows",
                "give row positions in [0, n_rows)" + (" or -1 for null" if allow_null else ""),
            )
        return index.astype(np.intp)

    def list_bodies(
        self, encoded: EncodedRows, offsets: np.ndarray, index: np.ndarray, counts: np.ndarray
    ) -> list[Any]:
        """Every alert's array items: one slice when its rows are consecutive in the table."""
        if len(index) == 0:
            return [b""] * len(counts)
        firsts = offsets[:-1]
        lasts = firsts + counts - 1
        has_rows = counts > 0
        firsts = np.where(has_rows, firsts, 0)
        lasts = np.where(has_rows, lasts, 0)
        # breaks[k]: how many of index[1..k] do not follow their predecessor
        breaks = np.zeros(max(len(index), 1), dtype=np.int64)
        np.cumsum(np.diff(index) != 1, out=breaks[1 : len(index)])
        consecutive = breaks[lasts] == breaks[firsts]
        starts = np.where(has_rows, encoded.offsets[index[firsts]], 0)
        ends = np.where(has_rows, encoded.offsets[index[lasts] + 1], 0)
        bodies: list[Any] = _slices(encoded.data, starts, ends)
        for alert in np.flatnonzero(~consecutive).tolist():
            first = firsts[alert]
            bodies[alert] = encoded.rows(index[first : first + counts[alert]])
        return bodies


def _headers(
    field: _AlertField, present: np.ndarray, sizes: np.ndarray, *, omit_zero: bool
) -> EncodedRows:
    """Per alert: union branch (if any) then the varint size/count of a present value.

    With ``omit_zero`` (arrays) a zero count is left out, since an empty array
    is just its terminating 0.
    """
    branch = None
    if field.is_union:
        branch = np.where(present, field.value_code[0], field.null_code[0]).astype(np.uint8)
    matrix, lengths = _varints(_zigzag(sizes))
    written = present & (sizes > 0) if omit_zero else present
    lengths = np.where(written, lengths, 0) + (1 if field.is_union else 0)
    return _compact([_MatrixBlock(branch, matrix, lengths)], len(present))


