"""Columnar containers that carry alert content from catalogs to encoders.

Everything between input validation (`alertpack.packets.conform`) and the sinks
moves as columns, never as per-row Python objects: a `ColumnTable` holds the
rows of one Avro record type (all DiaSources of a visit, all previous
sources, ...), and `AlertParts` says, for every alert field, where each
alert's value comes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "AlertParts",
    "ColumnTable",
    "Conformance",
    "FieldSource",
    "RecordList",
    "RecordRef",
    "ScalarColumn",
]

#: a null mask: True where the value is null
type NullMask = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class Conformance:
    """The mark `alertpack.packets.conform` leaves on a table it built.

    It names the field types the table was conformed to and the very arrays
    that were checked (read-only), so that a table whose column or null mask
    was replaced since is recognised and checked again.

    Attributes
    ----------
    fields : `tuple` [`alertpack.packets.avro_types.FieldType`, ...]
        The record's field types.
    columns, nulls : `tuple`
        The column and null mask (or `None`) of each field, in ``fields`` order.
    """

    fields: tuple[Any, ...]
    columns: tuple[npt.NDArray[Any], ...]
    nulls: tuple[NullMask | None, ...]

    def covers(self, table: ColumnTable, fields: tuple[Any, ...]) -> bool:
        """Whether ``table`` still holds exactly the arrays conformed to ``fields``."""
        if self.fields is not fields and self.fields != fields:
            return False
        columns, nulls = table.columns, table.nulls
        for field_type, values, mask in zip(fields, self.columns, self.nulls, strict=True):
            name = field_type.name
            if columns.get(name) is not values or nulls.get(name) is not mask:
                return False
        return True


@dataclass
class ColumnTable:
    """Rows of one Avro record type, one array per field.

    Tables built by `alertpack.packets.conform` hold the dtypes below and are
    marked (``conformance``); encoders check any other table by the same
    rules before encoding it.

    Attributes
    ----------
    schema : `dict`
        The Avro record definition (``{"type": "record", "name": ..., "fields": [...]}``).
    columns : `dict` [`str`, `numpy.ndarray`]
        One array per schema field, in any order, each of length ``n_rows``.
        dtypes by Avro type: ``long`` int64, ``int`` int32, ``float`` float32,
        ``double`` float64, ``boolean`` bool, ``string`` object (`str`),
        ``bytes`` object (`bytes`); a ``timestamp-micros`` long is int64
        microseconds. Values at null positions are placeholders and never read.
    nulls : `dict` [`str`, `numpy.ndarray` or `None`]
        For each nullable field, a bool array, True where the value is null,
        or `None` when no row is null. Non-nullable fields have no entry.
    n_rows : `int`
        Number of rows.
    conformance : `Conformance` or `None`
        Set by `alertpack.packets.conform` on the tables it builds (their
        arrays are read-only); encoders conform a table without it first.
    renamed : `dict` [`str`, `str`]
        Schema field -> the catalog column `alertpack.packets.conform` read
        for it under another name (``band`` <- ``filter``), for the run's
        summary.
    """

    schema: dict[str, Any]
    columns: dict[str, npt.NDArray[Any]]
    nulls: dict[str, NullMask | None]
    n_rows: int
    conformance: Conformance | None = field(default=None, repr=False, compare=False)
    renamed: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        """Full Avro name of the record type."""
        name: str = self.schema["name"]
        return name

    def take(self, rows: npt.ArrayLike) -> ColumnTable:
        """A new table with the given row positions, in that order (not marked conformed)."""
        positions = np.asarray(rows, dtype=np.intp)
        return ColumnTable(
            schema=self.schema,
            columns={name: values[positions] for name, values in self.columns.items()},
            nulls={
                name: None if mask is None else mask[positions]
                for name, mask in self.nulls.items()
            },
            n_rows=len(positions),
        )

    def row_dict(self, row: int) -> dict[str, Any]:
        """One row as the plain-Python dict fastavro expects (schema field order)."""
        record: dict[str, Any] = {}
        for avro_field in self.schema["fields"]:
            name = avro_field["name"]
            mask = self.nulls.get(name)
            if mask is not None and mask[row]:
                record[name] = None
            else:
                value = self.columns[name][row]
                record[name] = value.item() if isinstance(value, np.generic) else value
        return record


@dataclass
class ScalarColumn:
    """A primitive per-alert value (e.g. ``diaSourceId``, ``observation_reason``).

    ``nulls`` is a bool array (True = null) or `None`.
    """

    values: npt.NDArray[Any]
    nulls: NullMask | None = None


@dataclass
class RecordRef:
    """One record per alert: alert ``i`` carries ``table`` row ``index[i]``; -1 is null."""

    table: ColumnTable
    index: npt.NDArray[np.int64]


@dataclass
class RecordList:
    """A list of records per alert, in compressed-sparse-row form.

    Alert ``i`` carries the ``table`` rows ``index[offsets[i]:offsets[i + 1]]``,
    in that order. Where ``present`` is given and False, the field is null
    (no list at all, which differs from an empty list).
    """

    table: ColumnTable
    offsets: npt.NDArray[np.int64]
    index: npt.NDArray[np.int64]
    present: npt.NDArray[np.bool_] | None = None

    def rows_of(self, alert: int) -> npt.NDArray[np.int64]:
        """Table row positions of alert ``alert``'s list."""
        return self.index[self.offsets[alert] : self.offsets[alert + 1]]


#: where one alert field's values come from: bytes fields (cutouts) are one
#: `bytes` or `None` per alert
type FieldSource = ScalarColumn | RecordRef | RecordList | Sequence[bytes | None]


@dataclass
class AlertParts:
    """Where each alert field's value comes from, for ``n_alerts`` alerts.

    ``fields`` maps top-level alert field names to a `ScalarColumn`,
    `RecordRef`, `RecordList`, or (for ``bytes`` fields such as cutouts) a
    sequence of `bytes` or `None` per alert. Alert fields absent from the
    mapping are null; encoders reject an absent field the schema does not
    allow to be null.
    """

    n_alerts: int
    fields: dict[str, FieldSource] = field(default_factory=dict)

    def alert_dict(self, alert: int, field_names: Sequence[str] | None = None) -> dict[str, Any]:
        """Alert ``alert`` as the plain-Python dict fastavro and lsst.alert.packet expect.

        This is the reference (slow, per-object) path; `alertpack.packets.avro.AlertEncoder`
        produces the same bytes from the columns directly.

        Parameters
        ----------
        alert : `int`
            Alert position, ``0 <= alert < n_alerts``.
        field_names : sequence of `str`, optional
            All field names of the alert schema, in schema order; fields
            absent from ``fields`` are then included as `None`. By default
            only the fields present in ``fields`` are returned.
        """
        names = list(self.fields) if field_names is None else list(field_names)
        return {name: self._field_value(name, alert) for name in names}

    def _field_value(self, name: str, alert: int) -> Any:
        source = self.fields.get(name)
        if source is None:
            return None
        if isinstance(source, ScalarColumn):
            if source.nulls is not None and source.nulls[alert]:
                return None
            value = source.values[alert]
            return value.item() if isinstance(value, np.generic) else value
        if isinstance(source, RecordRef):
            row = int(source.index[alert])
            return None if row < 0 else source.table.row_dict(row)
        if isinstance(source, RecordList):
            if source.present is not None and not source.present[alert]:
                return None
            return [source.table.row_dict(int(row)) for row in source.rows_of(alert)]
        return source[alert]  # bytes fields: one bytes object or None per alert
