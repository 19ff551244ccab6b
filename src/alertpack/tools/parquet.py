"""Flatten alerts into Parquet tables (``alertpack to-parquet``).

Alerts are nested (a diaSource, its diaObject, lists of previous sources,
cutouts); analysis tools want flat tables. Every alert becomes one row of
``alerts.parquet``, and every list-of-records field one table of its own
(``prvDiaSources.parquet``, ``prvDiaForcedSources.parquet``, and
``prvDiaNondetectionLimits.parquet`` for v3-v7), whose rows point back at
their alert.

Columns of ``alerts.parquet``, keyed by ``diaSourceId``:

- the ``diaSource`` fields under their own names;
- the other top-level fields under their own names (cutouts as binary), but
  prefixed ``alert_`` where a name is also a diaSource column (the top-level
  ``diaSourceId`` of v8+ becomes ``alert_diaSourceId``);
- the fields of every other record (``diaObject``, ``ssSource``,
  ``mpc_orbits``, ...) prefixed with the record's field name and ``_``, e.g.
  ``diaObject_ra``.

The list tables start with ``alert_diaSourceId``, the ``diaSourceId`` of the
alert that carried the row, followed by the record's fields.

Column types follow the Avro schema (``float`` -> float32, ``double`` ->
float64, ``int`` -> int32, ``long`` -> int64, ``bytes`` -> binary, ``string``
-> string, timestamps -> timestamp[UTC]); a field is nullable when its Avro
type is a union with null or its record can be null. Alerts stream through
in batches, so memory use is bounded by the batch size, not the input; each
file is written under a temporary name and renamed into place at the end.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fastavro.schema import to_parsing_canonical_form

from alertpack.errors import InputError
from alertpack.packets.avro_types import split_union
from alertpack.schema import collect_named_types
from alertpack.sinks.files import atomic_output, check_output_directory
from alertpack.tools.reading import (
    CUTOUT_FIELDS,
    AlertFile,
    ReadReport,
    cutout_fits,
    iter_alert_files,
)
from alertpack.tools.selection import Selection

__all__ = [
    "ALERTS_TABLE",
    "DEFAULT_BATCH_SIZE",
    "ParquetLayout",
    "alerts_to_parquet",
    "arrow_type",
]

ALERTS_TABLE = "alerts"
PARENT_ID_COLUMN = "alert_diaSourceId"
DEFAULT_BATCH_SIZE = 1000
_SOURCE_FIELD = "diaSource"

_PRIMITIVES = {
    "boolean": "bool_",
    "int": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "string",
    "bytes": "binary",
}
_TIMESTAMP_UNITS = {"timestamp-micros": "us", "timestamp-millis": "ms"}


def arrow_type(avro_type: Any, named: dict[str, Any], where: str = "") -> tuple[pa.DataType, bool]:
    """The Arrow type of an Avro type, and whether it is nullable.

    Parameters
    ----------
    avro_type
        An Avro type: a name, a list (union) or a dict.
    named : `dict`
        Named types of the schema, by full name.
    where : `str`
        Field path, for error messages.

    Raises
    ------
    InputError
        For a union of several non-null types, which has no flat column type.
    """
    if isinstance(avro_type, list):
        branch, null_branch = split_union(avro_type, f"field {where}")
        inner, _ = arrow_type(branch, named, where)
        return inner, null_branch is not None
    if isinstance(avro_type, str):
        if avro_type in _PRIMITIVES:
            return getattr(pa, _PRIMITIVES[avro_type])(), avro_type == "null"
        if avro_type == "null":
            return pa.null(), True
        if avro_type not in named:
            raise InputError(f"field {where} has unknown Avro type {avro_type!r}")
        return arrow_type(named[avro_type], named, where)
    kind = avro_type["type"]
    logical = avro_type.get("logicalType")
    if logical in _TIMESTAMP_UNITS and kind == "long":
        return pa.timestamp(_TIMESTAMP_UNITS[logical], tz="UTC"), False
    if kind == "record":
        return pa.struct(_arrow_fields(avro_type, named, where)), False
    if kind == "array":
        item, item_nullable = arrow_type(avro_type["items"], named, f"{where}[]")
        return pa.list_(pa.field("item", item, nullable=item_nullable)), False
    if kind == "map":
        value, _ = arrow_type(avro_type["values"], named, f"{where}{{}}")
        return pa.map_(pa.string(), value), False
    if kind == "enum":
        return pa.string(), False
    if kind == "fixed":
        return pa.binary(avro_type["size"]), False
    return arrow_type(kind, named, where)


def _arrow_fields(record: dict[str, Any], named: dict[str, Any], where: str) -> list[pa.Field]:
    fields = []
    for avro_field in record["fields"]:
        path = f"{where}.{avro_field['name']}" if where else avro_field["name"]
        data_type, nullable = arrow_type(avro_field["type"], named, path)
        fields.append(pa.field(avro_field["name"], data_type, nullable=nullable))
    return fields


@dataclass
class _RecordColumns:
    """A top-level record field flattened into prefixed columns."""

    name: str
    prefix: str
    struct: pa.StructType
    nullable: bool


@dataclass
class ParquetLayout:
    """How one alert schema maps onto Parquet tables.

    Attributes
    ----------
    alert_type : `pyarrow.StructType`
        The alert without its list fields, as one struct (conversion type).
    alerts_schema : `pyarrow.Schema`
        Columns of the alerts table.
    list_types : `dict` [`str`, `pyarrow.ListType`]
        Per list-of-records field, its Arrow list type.
    list_schemas : `dict` [`str`, `pyarrow.Schema`]
        Per list-of-records field, the columns of its table.
    """

    alert_type: pa.StructType
    alerts_schema: pa.Schema
    list_types: dict[str, pa.ListType] = field(default_factory=dict)
    list_schemas: dict[str, pa.Schema] = field(default_factory=dict)
    _records: list[_RecordColumns] = field(default_factory=list)
    _scalar_names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_avro(cls, writer_schema: dict[str, Any]) -> ParquetLayout:
        """Derive the tables from an alert's Avro writer schema."""
        named = collect_named_types(writer_schema)
        top_fields = _arrow_fields(writer_schema, named, "")
        by_name = {f.name: f for f in top_fields}
        source = by_name.get(_SOURCE_FIELD)
        if source is None or not pa.types.is_struct(source.type):
            raise InputError(
                f"writer schema {writer_schema.get('name')!r} has no diaSource record; "
                "to-parquet needs alerts keyed by diaSource.diaSourceId"
            )
        source_names = {child.name for child in source.type}
        if "diaSourceId" not in source_names:
            raise InputError("the diaSource record of the writer schema has no diaSourceId")
        layout = cls(alert_type=pa.struct([]), alerts_schema=pa.schema([]))
        struct_fields: list[pa.Field] = []
        columns: list[pa.Field] = []
        records = [source] + [
            f for f in top_fields if pa.types.is_struct(f.type) and f.name != _SOURCE_FIELD
        ]
        for record in records:
            prefix = "" if record.name == _SOURCE_FIELD else f"{record.name}_"
            layout._records.append(_RecordColumns(record.name, prefix, record.type,
                                                  record.nullable))
            struct_fields.append(record)
            columns.extend(
                pa.field(prefix + child.name, child.type, nullable=child.nullable
                         or record.nullable)
                for child in record.type
            )
        for top in top_fields:
            if pa.types.is_struct(top.type) or top.name == _SOURCE_FIELD:
                continue
            if pa.types.is_list(top.type) and pa.types.is_struct(top.type.value_type):
                layout.list_types[top.name] = top.type
                layout.list_schemas[top.name] = pa.schema(
                    [pa.field(PARENT_ID_COLUMN, pa.int64(), nullable=False),
                     *top.type.value_type]
                )
                continue
            column = f"alert_{top.name}" if top.name in source_names else top.name
            layout._scalar_names[top.name] = column
            struct_fields.append(top)
            columns.append(top.with_name(column))
        layout.alert_type = pa.struct(struct_fields)
        layout.alerts_schema = pa.schema(columns)
        return layout

    def alerts_table(self, records: list[dict[str, Any]]) -> pa.Table:
        """The alerts-table rows of a batch of alert records."""
        alerts = pa.array(records, type=self.alert_type)
        arrays: dict[str, pa.Array] = {}
        for record in self._records:
            # flatten() folds the record's own nulls into its children
            children = alerts.field(record.name).flatten()
            for child, array in zip(record.struct, children, strict=True):
                arrays[record.prefix + child.name] = array
        for name, column in self._scalar_names.items():
            arrays[column] = alerts.field(name)
        return pa.Table.from_arrays(
            [arrays[f.name] for f in self.alerts_schema], schema=self.alerts_schema
        )

    def list_table(
        self, name: str, records: list[dict[str, Any]], alert_ids: pa.Array
    ) -> pa.Table:
        """The rows of list field ``name`` in a batch, with their alert's diaSourceId."""
        lists = pa.array([record.get(name) for record in records], type=self.list_types[name])
        items = lists.flatten()
        parents = alert_ids.take(pc.list_parent_indices(lists))
        schema = self.list_schemas[name]
        return pa.Table.from_arrays([parents, *items.flatten()], schema=schema)


class _TableWriter:
    """A Parquet file written in row groups, renamed into place when complete."""

    def __init__(self, stack: contextlib.ExitStack, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.rows = 0
        stream = stack.enter_context(atomic_output(path))
        self._writer = pq.ParquetWriter(stream, schema, compression="zstd")
        # the footer must be written before atomic_output renames the file
        stack.callback(self._writer.close)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows


def _batches(alerts: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for record in alerts:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _same_schema_files(
    paths: Iterable[str | os.PathLike], report: ReadReport | None
) -> Iterator[AlertFile]:
    """Alert files, checked to share the first file's writer schema."""
    first: AlertFile | None = None
    canonical = ""
    for alert_file in iter_alert_files(list(paths), report=report, shipped_schema=True):
        form = to_parsing_canonical_form(alert_file.writer_schema)
        if first is None:
            first, canonical = alert_file, form
        elif form != canonical:
            raise InputError(
                f"{alert_file.path} is written with {alert_file.schema_name} but "
                f"{first.path} with {first.schema_name}: one Parquet table holds one schema; "
                "convert the files of each schema version to their own output directory"
            )
        yield alert_file


def alerts_to_parquet(
    paths: Iterable[str | os.PathLike] | str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    report: ReadReport | None = None,
    decode_cutouts: bool = False,
    selection: Selection | None = None,
) -> dict[str, tuple[Path, int]]:
    """Flatten the alerts in ``paths`` (those ``selection`` selects) into Parquet files.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        Alert files or directories (one writer schema for all of them).
    output_dir : path-like
        Directory for ``alerts.parquet`` and one ``<listField>.parquet`` per
        list-of-records field; created if needed, existing files replaced.
    batch_size : `int`
        Alerts converted and written per row group; bounds memory use.
    report : `ReadReport`, optional
        Collects failed-alert files skipped and files that cannot be read, and
        the other files are still converted: every file is read through once
        before its alerts are taken (`AlertFile.check_readable`), so the tables
        hold whole files only, never the part of one before a damaged block.
        Without it, the first bad file raises and nothing is written.
    decode_cutouts : `bool`
        Store every cutout as the plain FITS file it holds, whatever its
        packing (gzip, tile compression: `alertpack.tools.reading.cutout_fits`);
        by default the bytes are kept as the alert carries them.
    selection : `~alertpack.tools.selection.Selection`, optional
        Write only the alerts it selects (and their history rows).

    Returns
    -------
    written : `dict` [`str`, `tuple` [`pathlib.Path`, `int`]]
        Table name (``alerts``, ``prvDiaSources``, ...) -> (file, row count).
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, not {batch_size}")
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    output = check_output_directory(output_dir)
    files = _readable(_same_schema_files(paths, report), report)
    first = next(files, None)
    if first is None:
        if report is not None and len(report.errors) == 1:
            # the one file given: its own problem is the outcome
            raise InputError(report.errors.pop())
        if report is not None and report.errors:
            raise InputError(
                f"none of the {len(report.errors)} files can be read; nothing written to {output}"
            )
        raise InputError("no alert files given")
    assert isinstance(first.writer_schema, dict), "iter_alert_files yields files of records"
    layout = ParquetLayout.from_avro(first.writer_schema)
    with contextlib.ExitStack() as stack:
        writers = {ALERTS_TABLE: _TableWriter(stack, output / f"{ALERTS_TABLE}.parquet",
                                              layout.alerts_schema)}
        for name, schema in layout.list_schemas.items():
            writers[name] = _TableWriter(stack, output / f"{name}.parquet", schema)
        loaded = _alerts_of(_chain(first, files), report)
        if selection is not None:
            loaded = selection.select(loaded)
        records: Iterator[dict[str, Any]] = (alert.alert for alert in loaded)
        if decode_cutouts:
            records = map(_with_plain_cutouts, records)
        for batch in _batches(records, batch_size):
            alerts = layout.alerts_table(batch)
            writers[ALERTS_TABLE].write(alerts)
            alert_ids = alerts.column("diaSourceId").combine_chunks()
            for name in layout.list_types:
                writers[name].write(layout.list_table(name, batch, alert_ids))
    return {name: (writer.path, writer.rows) for name, writer in writers.items()}


def _readable(files: Iterable[AlertFile], report: ReadReport | None) -> Iterator[AlertFile]:
    """The files that read through to their end; the others recorded in ``report``."""
    for alert_file in files:
        try:
            alert_file.check_readable()
        except InputError as error:
            if report is None:
                raise
            report.errors.append(str(error))
            continue
        yield alert_file


def _alerts_of(files: Iterable[AlertFile], report: ReadReport | None) -> Iterator[Any]:
    """The alerts of ``files``; a file corrupt part way is recorded in ``report`` (if any)."""
    for alert_file in files:
        try:
            yield from alert_file
        except InputError as error:
            if report is None:
                raise
            report.errors.append(str(error))


def _with_plain_cutouts(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert with each cutout as plain FITS (`cutout_fits`)."""
    for name in CUTOUT_FIELDS:
        if alert.get(name) is not None:
            alert[name] = cutout_fits(alert, name)
    return alert


def _chain(first: AlertFile, rest: Iterator[AlertFile]) -> Iterator[AlertFile]:
    yield first
    yield from rest
