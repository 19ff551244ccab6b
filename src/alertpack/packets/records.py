"""Catalogs to alert records: validation at the edge, conformance to the schema.

Input catalogs (pandas DataFrames, in the LSST Task's index layout or as
plain columns) are checked once here and turned into `ColumnTable` objects
whose columns already have the Avro types of the chosen schema version. Past
this module nothing re-validates: encoders trust the tables.

Conformance rules, per schema field:

- a column of the same name is used (``band`` and ``filterName``, ``dec`` and
  ``decl`` stand in for each other, so one catalog fits old and new schemas);
- a missing column is all-null if the field is nullable, else an error that
  lists every missing required column;
- columns the schema does not know are ignored;
- NaN in a nullable ``float``/``double`` becomes null (as Rubin's alert
  production does); NaN and infinities in a required float are kept, since
  Avro encodes IEEE values; a finite value too large for ``float`` is an error;
- integers must be whole and fit their Avro type (``int`` 32-bit, ``long``
  64-bit); a null in a required field is an error naming the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from alertpack.errors import InputError
from alertpack.packets.tables import AlertParts, ColumnTable, RecordList, RecordRef, ScalarColumn
from alertpack.schema import AlertSchema

__all__ = [
    "AVRO_DTYPES",
    "COLUMN_ALIASES",
    "INT_RANGES",
    "CatalogColumns",
    "VisitCatalogs",
    "avro_field_type",
    "build_alert_parts",
    "conform_table",
    "empty_catalog",
    "flatten_catalog",
    "group_history",
    "prepare_visit",
    "row_frame",
    "time_column",
]

#: interchangeable column names across schema versions
COLUMN_ALIASES = {
    "band": ("filterName",),
    "filterName": ("band",),
    "dec": ("decl",),
    "decl": ("dec",),
}
_TIME_COLUMNS = ("midpointMjdTai", "midPointTai")
#: inclusive value range of each Avro integer type
INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: numpy dtype of each Avro primitive in a ColumnTable
AVRO_DTYPES = {
    "long": np.int64,
    "int": np.int32,
    "float": np.float32,
    "double": np.float64,
    "boolean": np.bool_,
}


def avro_field_type(avro_type: Any) -> tuple[str, bool, str | None]:
    """Split a flat field type into ``(primitive, nullable, logical_type)``."""
    nullable = False
    if isinstance(avro_type, list):
        branches = [branch for branch in avro_type if branch != "null"]
        nullable = len(branches) < len(avro_type)
        if len(branches) != 1:
            raise TypeError(f"unsupported union {avro_type!r}")
        avro_type = branches[0]
    if isinstance(avro_type, dict):
        return avro_type["type"], nullable, avro_type.get("logicalType")
    return avro_type, nullable, None


def flatten_catalog(frame: Any, catalog: str) -> Any:
    """Return ``frame`` with its named index levels as plain columns.

    Accepts the LSST layout (e.g. indexed on ``["diaObjectId", "band",
    "diaSourceId"]``) and a plain column layout alike; a level that is also a
    column is taken once.
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise InputError(
            f"{catalog} must be a pandas DataFrame, got {type(frame).__name__}; "
            "build one with pandas.DataFrame(...) or read it with pandas.read_parquet"
        )
    names = [name for name in frame.index.names if name is not None]
    if not names:
        return frame
    to_columns = [name for name in names if name not in frame.columns]
    if not to_columns:
        return frame.reset_index(drop=True)
    return frame.reset_index(level=to_columns).reset_index(drop=True)


#: Arrow column types whose values are all of one Avro primitive
_ARROW_DECLARED = {
    "string": "string", "large_string": "string", "string_view": "string",
    "binary": "bytes", "large_binary": "bytes", "binary_view": "bytes",
}


def _is_arrow_table(frame: Any) -> bool:
    # Checked by duck type so that pandas catalogs never import pyarrow here.
    return type(frame).__module__.startswith("pyarrow") and hasattr(frame, "column_names")


class CatalogColumns:
    """A catalog's columns as numpy arrays, taken out once, without a Series per column.

    Built from a pandas DataFrame (LSST index layout or plain columns) or a
    `pyarrow.Table`. A pandas catalog's numpy-typed columns come out in one
    copy per dtype group; extension columns (``Int64``, ``boolean``, ``str``)
    keep their pandas array, converted by the conformance rules.

    Parameters
    ----------
    frame : `pandas.DataFrame` or `pyarrow.Table`
        The catalog.
    catalog : `str`
        Its name in error messages, e.g. ``"diaSourceCat"``.
    """

    def __init__(self, frame: Any, catalog: str) -> None:
        self.catalog = catalog
        if _is_arrow_table(frame):
            self._frame = None
            self._arrow = frame
            self.names = list(frame.column_names)
            self.n_rows = frame.num_rows
        else:
            self._frame = flatten_catalog(frame, catalog)
            self._arrow = None
            self.names = [str(name) for name in self._frame.columns]
            self.n_rows = len(self._frame)
        self._positions: dict[str, int] = {}
        for position, name in enumerate(self.names):
            self._positions.setdefault(name, position)
        self._taken: dict[str, tuple[Any, np.ndarray]] = {}
        #: Avro primitive (string, bytes) that every value of an Arrow column has by its type
        self.declared: dict[str, str] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._positions

    def find(self, name: str) -> str | None:
        """The column standing for schema field ``name`` (itself or an alias), else None."""
        if name in self._positions:
            return name
        for alias in COLUMN_ALIASES.get(name, ()):
            if alias in self._positions:
                return alias
        return None

    def take(self, names: list[str]) -> None:
        """Extract ``names`` at once: one copy per numpy dtype group."""
        wanted = [name for name in dict.fromkeys(names) if name not in self._taken]
        if self._arrow is not None:
            for name in wanted:
                chunked = self._arrow.column(self._positions[name])
                self._taken[name] = _arrow_column(chunked)
                declared = _ARROW_DECLARED.get(str(chunked.type))
                if declared is not None:
                    self.declared[name] = declared
            return
        frame = self._frame
        dtypes = list(frame.dtypes)
        groups: dict[np.dtype, list[str]] = {}
        for name in wanted:
            position = self._positions[name]
            dtype = dtypes[position]
            if isinstance(dtype, np.dtype):
                groups.setdefault(dtype, []).append(name)
            else:
                # a pandas extension column (Int64, boolean, str): its array, no conversion
                values = frame.iloc[:, position].array
                self._taken[name] = (values, np.asarray(values.isna(), dtype=bool))
        for dtype, group in groups.items():
            block = frame.iloc[:, [self._positions[name] for name in group]].to_numpy(dtype=dtype)
            for j, name in enumerate(group):
                values = block[:, j]
                self._taken[name] = (values, _numpy_nulls(values))

    def column(self, name: str) -> tuple[Any, np.ndarray]:
        """``(values, nulls)`` of one column; values a numpy or pandas extension array."""
        if name not in self._taken:
            self.take([name])
        return self._taken[name]

    def to_numpy(self, name: str, dtype: Any = None) -> np.ndarray:
        """One column as a numpy array (nulls as the converter leaves them)."""
        values, _ = self.column(name)
        if isinstance(values, np.ndarray):
            return values if dtype is None else values.astype(dtype)
        return values.to_numpy(dtype=dtype) if dtype is not None else values.to_numpy()

    def strings(self, name: str) -> np.ndarray:
        """One column as an object array, None where null."""
        values, nulls = self.column(name)
        return _to_numpy(values, nulls, object, None)


def _numpy_nulls(values: np.ndarray) -> np.ndarray:
    """What pandas counts as missing in a numpy column (NaN, NaT, None, pd.NA)."""
    kind = values.dtype.kind
    if kind in "fc":
        return np.isnan(values)
    if kind in "mM":
        return np.isnat(values)
    if kind == "O":
        import pandas as pd

        return np.asarray(pd.isna(values), dtype=bool)
    return np.zeros(len(values), dtype=bool)


def _arrow_column(chunked: Any) -> tuple[np.ndarray, np.ndarray]:
    """A pyarrow column as ``(values, nulls)``, nulls of numbers filled with 0 (NaN for floats).

    Fixed-width columns are read from their Arrow buffers: ``to_numpy`` would turn
    integers with nulls into float64 (rounding 64-bit ids), and ``fill_null`` and
    ``is_null`` import ``pyarrow.compute`` (and through it pandas).
    """
    pieces = [_arrow_chunk(chunk) for chunk in chunked.chunks]
    if not pieces:
        return chunked.to_numpy(), np.zeros(0, dtype=bool)
    values = np.concatenate([values for values, _ in pieces])
    nulls = np.concatenate([nulls for _, nulls in pieces])
    if values.dtype.kind == "f":
        nulls |= np.isnan(values)
    return values, nulls


def _arrow_chunk(array: Any) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow as pa

    n, offset = len(array), array.offset
    kind = array.type
    validity, *data = array.buffers()
    if validity is None or array.null_count == 0:
        nulls = np.zeros(n, dtype=bool)
    else:
        bits = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")
        nulls = bits[offset:offset + n] == 0
    if pa.types.is_boolean(kind):
        bits = np.unpackbits(np.frombuffer(data[0], np.uint8), bitorder="little")
        values = bits[offset:offset + n].astype(np.bool_)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        dtype = np.dtype(kind.to_pandas_dtype())
        values = np.frombuffer(data[0], dtype, count=offset + n)[offset:].copy()
        if nulls.any():
            values[nulls] = np.nan if dtype.kind == "f" else 0
    elif pa.types.is_timestamp(kind):
        ticks = np.frombuffer(data[0], np.int64, count=offset + n)[offset:].copy()
        values = ticks.view(f"datetime64[{kind.unit}]")
        values[nulls] = np.datetime64("NaT")
    else:
        # strings, bytes and the rest: to_numpy would import pandas for these types
        values = np.empty(n, dtype=object)
        values[:] = array.to_pylist()
    return values, nulls


def _to_numpy(values: Any, nulls: np.ndarray, dtype: Any, na_value: Any) -> np.ndarray:
    """``Series.to_numpy(dtype, na_value=...)`` for a numpy or pandas extension array."""
    if not isinstance(values, np.ndarray):
        return values.to_numpy(dtype=dtype, na_value=na_value)
    if nulls.any() and values.dtype.kind == "O":
        values = values.copy()
        values[nulls] = na_value
    return np.asarray(values, dtype=dtype)


def _conform_column(
    values: Any, nulls: np.ndarray, primitive: str, logical: str | None, where: str,
    declared: str | None = None,
) -> np.ndarray:
    """Convert one column to its Avro numpy dtype (``values`` numpy or pandas extension).

    ``declared`` is the Avro primitive the column's own type guarantees (an Arrow
    string column holds only str): then its values are not scanned again.
    """
    if primitive in ("float", "double"):
        try:
            floats = _to_numpy(values, nulls, np.float64, np.nan)
        except (TypeError, ValueError) as error:
            raise InputError(f"{where} must be numeric for Avro {primitive}: {error}") from None
        if primitive == "float":
            finite = np.isfinite(floats)
            too_big = finite & (np.abs(floats) > _FLOAT32_MAX)
            if too_big.any():
                row = int(np.flatnonzero(too_big)[0])
                raise InputError(
                    f"{where} holds {floats[row]!r} at row {row}, beyond the range of a 32-bit "
                    "Avro float; fix the value or null it"
                )
        return floats.astype(AVRO_DTYPES[primitive])
    if primitive in ("int", "long"):
        if logical == "timestamp-micros" and np.issubdtype(values.dtype, np.datetime64):
            return _to_numpy(values, nulls, "datetime64[us]", None).astype(np.int64)
        return _conform_integers(values, nulls, primitive, where)
    if primitive == "boolean":
        return _conform_booleans(values, nulls, where)
    if primitive in ("string", "bytes"):
        return _conform_strings(values, nulls, primitive, where, declared == primitive)
    raise InputError(f"{where}: Avro type {primitive!r} is not supported in catalog columns")


def _conform_booleans(values: Any, nulls: np.ndarray, where: str) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind == "b":
        return values.astype(np.bool_)
    present = values[~nulls]
    if len(present):
        import pandas as pd

        uniques = pd.unique(present) if isinstance(present, np.ndarray) else present.unique()
        bad = [v for v in uniques if not isinstance(v, (bool, np.bool_))][:3]
        if bad:
            raise InputError(f"{where} must hold booleans (True/False/None), found {bad}")
    booleans = np.zeros(len(values), dtype=np.bool_)
    booleans[~nulls] = _to_numpy(present, np.zeros(len(present), bool), np.bool_, False)
    return booleans


def _conform_strings(
    values: Any, nulls: np.ndarray, primitive: str, where: str, typed: bool = False
) -> np.ndarray:
    expected = str if primitive == "string" else bytes
    objects = _to_numpy(values, nulls, object, None)
    kind = getattr(values.dtype, "kind", "O")
    if typed or (kind == "U" and primitive == "string") or (kind == "S" and primitive == "bytes"):
        return objects  # every value has the right type by the column's own type
    present = objects[~nulls]
    if present.size:
        from pandas.api.types import infer_dtype

        # infer_dtype scans in C; the Python scan below runs only to name the culprit
        if infer_dtype(present, skipna=False) != primitive:
            wrong = next(v for v in present if not isinstance(v, expected))
            raise InputError(
                f"{where} must hold {expected.__name__} values for Avro {primitive}, "
                f"found {type(wrong).__name__} {wrong!r}"
            )
    return objects


def _conform_integers(values: Any, nulls: np.ndarray, primitive: str, where: str) -> np.ndarray:
    low, high = INT_RANGES[primitive]
    # numpy and pandas' nullable (Int64, UInt64, ...) dtypes both report kind i/u
    kind = values.dtype.kind
    if kind in "iu":
        raw = _to_numpy(values, nulls, np.uint64 if kind == "u" else np.int64, 0)
        if kind == "u" and raw.size and raw.max() > np.uint64(high):
            row = int(np.argmax(raw))
            raise InputError(f"{where} value {int(raw[row])} at row {row} exceeds Avro {primitive}")
        integers = raw.astype(np.int64)
    elif kind == "f":
        floats = _to_numpy(values, nulls, np.float64, np.nan)
        present = ~nulls
        bad = present & ((floats != np.round(floats)) | ~np.isfinite(floats))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{where} must hold whole numbers for Avro {primitive}, found {floats[row]!r} "
                f"at row {row}"
            )
        too_big = present & ((floats < low) | (floats > high))
        if too_big.any():
            row = int(np.flatnonzero(too_big)[0])
            raise InputError(
                f"{where} value {floats[row]!r} at row {row} does not fit Avro {primitive}"
            )
        integers = np.where(present, floats, 0).astype(np.int64)
    else:
        try:
            objects = np.array(
                [0 if null else int(v) for v, null in zip(values, nulls, strict=True)],
                dtype=object,
            )
        except (TypeError, ValueError) as error:
            raise InputError(f"{where} must hold integers for Avro {primitive}: {error}") from None
        out_of_range = [v for v in objects if not low <= v <= high]
        if out_of_range:
            raise InputError(
                f"{where} value {out_of_range[0]} does not fit Avro {primitive} [{low}, {high}]"
            )
        integers = objects.astype(np.int64)
    if primitive == "int" and integers.size:
        out = ((integers < low) | (integers > high)) & ~nulls
        if out.any():
            raise InputError(
                f"{where} value {int(integers[out][0])} does not fit a 32-bit Avro int "
                f"[{low}, {high}]"
            )
    return integers.astype(AVRO_DTYPES[primitive])


def conform_table(frame: Any, record_schema: Mapping[str, Any], *, catalog: str) -> ColumnTable:
    """Validate a catalog against an Avro record type and return it as columns.

    Parameters
    ----------
    frame : `pandas.DataFrame`, `pyarrow.Table` or `CatalogColumns`
        The catalog, in LSST index layout or plain columns.
    record_schema : `dict`
        Avro record definition, e.g. ``AlertSchema.record("diaSource")``.
    catalog : `str`
        Name of the catalog for error messages, e.g. ``"diaSourceCat"``.

    Raises
    ------
    alertpack.errors.InputError
        Listing every required column that is missing, or naming the column,
        row and value that cannot be represented.
    """
    source = frame if isinstance(frame, CatalogColumns) else CatalogColumns(frame, catalog)
    n_rows = source.n_rows
    fields = [
        (avro_field["name"], *avro_field_type(avro_field["type"]))
        for avro_field in record_schema["fields"]
    ]
    found = {name: source.find(name) for name, *_ in fields}
    missing = [name for name, _, nullable, _ in fields if found[name] is None and not nullable]
    if missing:
        raise InputError(
            f"{catalog} lacks column(s) {', '.join(missing)} required by {record_schema['name']}; "
            "add them to the catalog, or choose the schema version the catalog was made for "
            "(config schemaVersion)"
        )
    source.take([column for column in found.values() if column is not None])
    columns: dict[str, np.ndarray] = {}
    nulls: dict[str, np.ndarray | None] = {}
    for name, primitive, nullable, logical in fields:
        column = found[name]
        if column is None:
            columns[name] = _placeholder(primitive, n_rows)
            nulls[name] = np.ones(n_rows, dtype=bool) if n_rows else None
            continue
        raw, null_mask = source.column(column)
        values = _conform_column(
            raw, null_mask, primitive, logical, f"{catalog} column {column!r}",
            source.declared.get(column),
        )
        if primitive in ("float", "double") and not nullable:
            null_mask = null_mask & ~np.isnan(values)
        if null_mask.any():
            if not nullable:
                rows = np.flatnonzero(null_mask)[:5].tolist()
                raise InputError(
                    f"{catalog} column {column!r} is null at rows {rows}, but "
                    f"{record_schema['name']}.{name} is required by the schema; fill it"
                )
            nulls[name] = null_mask
        elif nullable:
            nulls[name] = None
        columns[name] = values
    return ColumnTable(schema=dict(record_schema), columns=columns, nulls=nulls, n_rows=n_rows)


def row_frame(row: Any, index_names: tuple[str, ...], catalog: str) -> Any:
    """One catalog row (`pandas.Series`, `dict` or one-row DataFrame) as a DataFrame.

    A Series taken from an indexed catalog (``df.loc[key]``) carries its index
    key as ``name``; the key values set the ``index_names`` columns, since
    pandas turns an all-numeric row into float64, which rounds 64-bit ids.
    Pass ``df.loc[[key]]`` (a one-row DataFrame) to keep every column exact.
    """
    import pandas as pd

    if isinstance(row, pd.DataFrame):
        return row
    if isinstance(row, pd.Series):
        values = row.to_dict()
        key = row.name if isinstance(row.name, tuple) else (row.name,)
        for name, value in zip(index_names, key, strict=False):
            if value is not None:
                values[name] = value
        return pd.DataFrame([values]).infer_objects()
    if isinstance(row, Mapping):
        return pd.DataFrame([dict(row)]).infer_objects()
    raise InputError(
        f"{catalog} must be a pandas Series, a dict or a one-row DataFrame, "
        f"got {type(row).__name__}"
    )


def empty_catalog(record_schema: Mapping[str, Any]) -> Any:
    """An empty DataFrame with one column per schema field, typed as run() expects."""
    import pandas as pd

    nullable_dtypes = {"long": "Int64", "int": "Int32", "boolean": "boolean"}
    columns = {}
    for avro_field in record_schema["fields"]:
        primitive, nullable, _ = avro_field_type(avro_field["type"])
        if nullable and primitive in nullable_dtypes:
            dtype = nullable_dtypes[primitive]
        else:
            dtype = AVRO_DTYPES.get(primitive, object)
        columns[avro_field["name"]] = pd.Series([], dtype=dtype)
    return pd.DataFrame(columns)


def _placeholder(primitive: str, n_rows: int) -> np.ndarray:
    if primitive in AVRO_DTYPES:
        return np.zeros(n_rows, dtype=AVRO_DTYPES[primitive])
    return np.full(n_rows, None, dtype=object)


def time_column(table: ColumnTable) -> str:
    """Name of the exposure-midpoint column of a table (it changed across versions)."""
    for name in _TIME_COLUMNS:
        if name in table.columns:
            return name
    raise InputError(f"{table.name} has no exposure-time column ({' or '.join(_TIME_COLUMNS)})")


def group_history(
    alert_object_ids: np.ndarray,
    alert_times: np.ndarray,
    alert_source_ids: np.ndarray | None,
    history: ColumnTable,
    *,
    id_column: str | None,
    window_days: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Each alert's history rows, selected and ordered once for the whole visit.

    The history is sorted once by (object, time); every alert then takes its
    object's block, keeping rows strictly earlier than the alert's source and
    no older than ``window_days`` (``time - window_days <= t < time``), never
    the alert's own source.

    Returns
    -------
    offsets, index : `numpy.ndarray`
        CSR layout: alert ``i`` has rows ``index[offsets[i]:offsets[i + 1]]``.
    """
    n_alerts = len(alert_object_ids)
    object_ids = history.columns["diaObjectId"]
    times = history.columns[time_column(history)]
    order = np.lexsort((times, object_ids))
    sorted_objects = object_ids[order]
    starts = np.searchsorted(sorted_objects, alert_object_ids, side="left")
    ends = np.searchsorted(sorted_objects, alert_object_ids, side="right")
    counts = ends - starts
    owner = np.repeat(np.arange(n_alerts), counts)
    first = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    candidates = order[first + np.arange(counts.sum())] if counts.sum() else order[:0]
    candidate_times = times[candidates]
    keep = (candidate_times >= alert_times[owner] - window_days) & (
        candidate_times < alert_times[owner]
    )
    if id_column is not None and alert_source_ids is not None:
        keep &= history.columns[id_column][candidates] != alert_source_ids[owner]
    kept_counts = np.bincount(owner[keep], minlength=n_alerts)
    offsets = np.concatenate(([0], np.cumsum(kept_counts))).astype(np.int64)
    return offsets, candidates[keep].astype(np.int64)


@dataclass
class VisitCatalogs:
    """The validated catalogs of one `run`, as schema-conformed tables."""

    schema: AlertSchema
    sources: ColumnTable
    ccd_visit_ids: np.ndarray
    objects: ColumnTable | None = None
    history: ColumnTable | None = None
    forced: ColumnTable | None = None
    ss_sources: ColumnTable | None = None
    orbits: ColumnTable | None = None
    observation_reason: np.ndarray | None = None
    target_name: np.ndarray | None = None
    #: orbit row per alert (-1: none), when orbits are given
    orbit_rows: np.ndarray | None = None
    #: solar-system sources whose orbit is null because no orbit row matches
    n_unmatched_orbits: int = 0

    @property
    def n_alerts(self) -> int:
        """One alert per DiaSource."""
        return self.sources.n_rows


def _ccd_visit_ids(
    sources: CatalogColumns, source_ids: np.ndarray, id_bits: int | None
) -> np.ndarray:
    """Per-source ccdVisitId: the catalog's column, else the top bits of diaSourceId."""
    if "ccdVisitId" in sources:
        return sources.to_numpy("ccdVisitId", np.int64)
    if id_bits is None:
        # No guess from visit and detector: the packing differs between cameras
        # (the sample packs visit*256+detector), and a guessed name would put
        # alerts in files no one looks for.
        raise InputError(
            "diaSourceCat has no ccdVisitId column and ccdExposureIdBits was not given, so "
            "the alert file name ({ccdVisitId}.avro) is unknown; pass ccdExposureIdBits "
            "(--id-bits: the bits of the exposure id packed into diaSourceId) or add a "
            "ccdVisitId column"
        )
    if not 0 < id_bits < 64:
        raise InputError(f"ccdExposureIdBits={id_bits} must be between 1 and 63")
    return (source_ids.astype(np.uint64) >> np.uint64(64 - id_bits)).astype(np.int64)


def _optional_strings(
    sources: CatalogColumns, column: str, override: str | None
) -> np.ndarray | None:
    if override is not None:
        return np.full(sources.n_rows, override, dtype=object)
    if column in sources:
        return sources.strings(column)
    return None


def prepare_visit(
    schema: AlertSchema,
    diaSourceCat: Any,
    diaObjectCat: Any = None,
    diaSrcHistory: Any = None,
    *,
    diaForcedSources: Any = None,
    ssSource: Any = None,
    mpc_orbits: Any = None,
    ccdExposureIdBits: int | None = None,
    observation_reason: str | None = None,
    target_name: str | None = None,
    require_ccd_visit: bool = True,
) -> VisitCatalogs:
    """Validate a visit's catalogs once and conform them to ``schema``.

    Catalogs for which the schema has no alert field (e.g. forced sources in
    a schema without ``prvDiaForcedSources``) are ignored. With
    ``require_ccd_visit`` False, sources whose ccdVisitId cannot be derived
    get -1 instead of an error (for single alerts that go to no file).
    """
    flat_sources = CatalogColumns(diaSourceCat, "diaSourceCat")
    sources = conform_table(flat_sources, schema.record("diaSource"), catalog="diaSourceCat")
    _check_unique(sources, "diaSourceId", "diaSourceCat")
    try:
        ccd_visit_ids = _ccd_visit_ids(
            flat_sources, sources.columns["diaSourceId"], ccdExposureIdBits
        )
    except InputError:
        if require_ccd_visit:
            raise
        ccd_visit_ids = np.full(sources.n_rows, -1, dtype=np.int64)
    catalogs = VisitCatalogs(
        schema=schema,
        sources=sources,
        ccd_visit_ids=ccd_visit_ids,
        observation_reason=_optional_strings(
            flat_sources, "observation_reason", observation_reason
        ),
        target_name=_optional_strings(flat_sources, "target_name", target_name),
    )
    optional_inputs = {
        "objects": (diaObjectCat, "diaObject", "diaObjectCat"),
        "history": (diaSrcHistory, "prvDiaSources", "diaSrcHistory"),
        "forced": (diaForcedSources, "prvDiaForcedSources", "diaForcedSources"),
        "ss_sources": (ssSource, "ssSource", "ssSource"),
        "orbits": (mpc_orbits, _orbit_field(schema), "mpc_orbits"),
    }
    for attribute, (frame, alert_field, catalog) in optional_inputs.items():
        record = schema.record(alert_field) if alert_field else None
        if frame is None or record is None:
            continue
        flat = CatalogColumns(frame, catalog)
        table = conform_table(flat, record, catalog=catalog)
        _keep_match_keys(table, flat, attribute)
        setattr(catalogs, attribute, table)
    if catalogs.objects is not None:
        _check_unique(catalogs.objects, "diaObjectId", "diaObjectCat")
    if catalogs.orbits is not None:
        catalogs.orbit_rows = _orbit_rows(catalogs)
        catalogs.n_unmatched_orbits = int(
            np.count_nonzero(_solar_system_sources(catalogs) & (catalogs.orbit_rows < 0))
        )
    return catalogs


def _solar_system_sources(catalogs: VisitCatalogs) -> np.ndarray:
    """Sources of a solar-system object: an ssObjectId, or an ssSource row."""
    sources = catalogs.sources
    known = np.zeros(sources.n_rows, dtype=bool)
    if "ssObjectId" in sources.columns:
        nulls = sources.nulls.get("ssObjectId")
        known |= sources.columns["ssObjectId"] != 0
        if nulls is not None:
            known &= ~nulls
    if catalogs.ss_sources is not None:
        known |= _match_rows(
            sources.columns["diaSourceId"], catalogs.ss_sources.columns["diaSourceId"]
        ) >= 0
    return known


def _orbit_field(schema: AlertSchema) -> str | None:
    for name in ("mpc_orbits", "MPCORB", "ssObject"):
        if name in schema.field_names:
            return name
    return None


def _keep_match_keys(table: ColumnTable, flat: CatalogColumns, attribute: str) -> None:
    """Keep the non-schema key columns used to attach rows to alerts."""
    keys = {"orbits": ("ssObjectId", "designation"), "ss_sources": ("diaSourceId",)}
    for key in keys.get(attribute, ()):
        if key not in table.columns and key in flat:
            table.columns[key] = flat.to_numpy(key)


def _check_unique(table: ColumnTable, column: str, catalog: str) -> None:
    unique, counts = np.unique(table.columns[column], return_counts=True)
    if (counts > 1).any():
        raise InputError(
            f"{catalog} has duplicate {column} values, e.g. {int(unique[counts > 1][0])}; "
            f"each {column} must appear once"
        )


def _match_rows(keys: np.ndarray, table_keys: np.ndarray) -> np.ndarray:
    """Row of ``table_keys`` equal to each key, -1 where there is none."""
    if len(table_keys) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    order = np.argsort(table_keys, kind="stable")
    sorted_keys = table_keys[order]
    positions = np.clip(np.searchsorted(sorted_keys, keys), 0, len(order) - 1)
    found = sorted_keys[positions] == keys
    return np.where(found, order[positions], -1).astype(np.int64)


def build_alert_parts(
    catalogs: VisitCatalogs,
    cutouts: Mapping[str, list[bytes | None]],
    *,
    window_days: float,
) -> AlertParts:
    """Say, for each alert field, where every alert's value comes from.

    Parameters
    ----------
    catalogs : `VisitCatalogs`
        The validated visit.
    cutouts : `dict` [`str`, `list`]
        Alert field name (``cutoutDifference``, ...) to one FITS blob or
        `None` per source.
    window_days : `float`
        History window before each source's time.
    """
    schema = catalogs.schema
    sources = catalogs.sources
    n_alerts = sources.n_rows
    source_ids = sources.columns["diaSourceId"]
    parts = AlertParts(n_alerts=n_alerts)
    id_field = "diaSourceId" if "diaSourceId" in schema.field_names else "alertId"
    parts.fields[id_field] = ScalarColumn(source_ids)
    parts.fields["diaSource"] = RecordRef(sources, np.arange(n_alerts, dtype=np.int64))

    object_ids = sources.columns["diaObjectId"]
    object_nulls = sources.nulls.get("diaObjectId")
    # Rubin's APDB gives solar-system sources diaObjectId 0: no DiaObject.
    no_object = object_ids == 0
    if object_nulls is not None:
        no_object |= object_nulls
    if catalogs.objects is not None:
        rows = _match_rows(object_ids, catalogs.objects.columns["diaObjectId"])
        rows[no_object & (rows < 0)] = -1
        orphan = (rows < 0) & ~no_object
        if orphan.any():
            first = int(np.flatnonzero(orphan)[0])
            raise InputError(
                f"diaObjectCat has no row for diaObjectId {int(object_ids[first])} of "
                f"diaSourceId {int(source_ids[first])} ({int(orphan.sum())} source(s) affected); "
                "pass the DiaObjects matched to every new DiaSource"
            )
        parts.fields["diaObject"] = RecordRef(catalogs.objects, rows)

    alert_times = sources.columns[time_column(sources)]
    for field_name, table, id_column in (
        ("prvDiaSources", catalogs.history, "diaSourceId"),
        ("prvDiaForcedSources", catalogs.forced, None),
    ):
        if table is None:
            continue
        offsets, index = group_history(
            object_ids, alert_times, source_ids, table,
            id_column=id_column, window_days=window_days,
        )
        present = ~no_object
        if field_name == "prvDiaSources":
            # as LSST's packageAlerts: a new DiaObject (no previous source) gets
            # null, not an empty list; consumers test ``is None`` for a first detection
            present &= np.diff(offsets) > 0
        parts.fields[field_name] = RecordList(
            table, offsets, index, None if present.all() else present
        )

    if catalogs.ss_sources is not None:
        rows = _match_rows(source_ids, catalogs.ss_sources.columns["diaSourceId"])
        parts.fields["ssSource"] = RecordRef(catalogs.ss_sources, rows)
    orbit_field = _orbit_field(schema)
    if catalogs.orbits is not None and orbit_field is not None:
        rows = catalogs.orbit_rows if catalogs.orbit_rows is not None else _orbit_rows(catalogs)
        parts.fields[orbit_field] = RecordRef(catalogs.orbits, rows)

    for name, values in (
        ("observation_reason", catalogs.observation_reason),
        ("target_name", catalogs.target_name),
    ):
        if values is not None and name in schema.field_names:
            nulls = np.equal(values, None)
            parts.fields[name] = ScalarColumn(values, nulls if nulls.any() else None)
    for field_name, blobs in cutouts.items():
        if field_name in schema.field_names:
            parts.fields[field_name] = list(blobs)
    return parts


def _orbit_rows(catalogs: VisitCatalogs) -> np.ndarray:
    """Orbit row for each alert, through its solar-system object."""
    sources, orbits = catalogs.sources, catalogs.orbits
    n_alerts = sources.n_rows
    if "ssObjectId" in orbits.columns and "ssObjectId" in sources.columns:
        ss_ids = sources.columns["ssObjectId"]
        rows = _match_rows(ss_ids, np.asarray(orbits.columns["ssObjectId"], dtype=np.int64))
        nulls = sources.nulls.get("ssObjectId")
        if nulls is not None:
            rows[nulls] = -1
        return rows
    if "designation" in orbits.columns and catalogs.ss_sources is not None:
        ss = catalogs.ss_sources
        ss_rows = _match_rows(sources.columns["diaSourceId"], ss.columns["diaSourceId"])
        designations = np.array(
            [ss.columns["designation"][r] if r >= 0 else None for r in ss_rows], dtype=object
        )
        lookup = {d: i for i, d in enumerate(orbits.columns["designation"])}
        return np.array([lookup.get(d, -1) for d in designations], dtype=np.int64)
    return np.full(n_alerts, -1, dtype=np.int64)
