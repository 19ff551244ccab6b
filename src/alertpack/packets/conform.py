"""Conformance to the schema: the one place where column values are validated.

Every `~alertpack.packets.tables.ColumnTable` an encoder reads has been through
this module. A table built here carries a
`~alertpack.packets.tables.Conformance` mark naming the arrays that were
checked; the encoders (`alertpack.packets.avro`) use such a table as it is and
check nothing again. A table built any other way, or one whose columns were
replaced since, goes through `conform_columns` first (`conformed` decides), so
the same rules apply either way.

Two routes lead here:

- `conform_table`: a catalog (pandas DataFrame, `pyarrow.Table`, or
  `~alertpack.packets.columns.CatalogColumns`). Its columns are first read as
  pandas means them (see "Catalog columns" below), then the Avro rules apply.
- `conform_columns`: a table of numpy arrays and null masks built by other
  code. The Avro rules apply to the arrays as given.

Avro rules, per schema field
----------------------------
- a null (a True in the field's null mask) is allowed only where the field's
  type is a union with ``"null"``; values under nulls are placeholders and
  never checked;
- ``int``/``long``: an integer dtype, every value within 32 (64) bits;
- ``float``/``double``: a floating dtype, or integers that the type holds
  exactly (within ``2**24`` / ``2**53``); a finite value beyond the largest
  ``float`` is an error (NaN and infinities are IEEE values and are kept);
- ``boolean``: a bool dtype; ``string``: ``str`` values that UTF-8 can encode
  (no lone surrogates); ``bytes``: ``bytes`` values;
- the result has the dtypes of `~alertpack.packets.avro_types.AVRO_DTYPES`
  (``string``/``bytes``: object arrays), read-only, and a null mask only for
  nullable fields, `None` where no row is null.

Catalog columns
---------------
- a column of the same name is used (``band`` and ``filterName``, ``dec``
  and ``decl`` stand in for each other, so one catalog fits old and new
  schemas);
- a field without such a column is read from a column named otherwise when
  exactly one column can mean it and it means no other field: a likely name
  (`LIKELY_COLUMNS`: ``filter`` for ``band``), the field's name in another
  schema version (``psfFlux`` for v6's ``psFlux`` and the other way round),
  or its name in another case or with ``_`` for camelCase (``PSF_FLUX``,
  ``psf_flux`` for ``psfFlux``); the table records each such reading
  (`~alertpack.packets.tables.ColumnTable.renamed`) for the run's summary.
  Two columns that could both be the field, or one that could be two
  fields, are an error; so is a column whose name is close to a missing
  field's (a typo: ``psfFlx``), with "did you mean";
- other columns the schema does not know are ignored;
- a missing column is all-null if the field is nullable, else an error that
  lists every missing required column;
- NaN, None and ``pd.NA`` are null; a NaN in a required ``float``/``double``
  is kept as NaN (as Rubin's alert production does);
- numbers for a floating field are read as float64; whole floats, Python
  integers and nullable integer dtypes stand for integers; datetimes fill a
  ``timestamp-micros`` field; Python booleans fill a ``boolean`` field.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from alertpack.errors import InputError
from alertpack.packets.avro_types import (
    AVRO_DTYPES,
    EXACT_INTEGER_BITS,
    FLOAT32_MAX,
    INT_RANGES,
    FieldType,
    record_field_types,
)
from alertpack.packets.columns import CatalogColumns, as_numpy
from alertpack.packets.tables import ColumnTable, Conformance
from alertpack.schema import current_field_name

__all__ = [
    "COLUMN_ALIASES",
    "LIKELY_COLUMNS",
    "conform_columns",
    "conform_table",
    "conformed",
    "find_column",
]

#: interchangeable column names across schema versions
COLUMN_ALIASES = {
    "band": ("filterName",),
    "filterName": ("band",),
    "dec": ("decl",),
    "decl": ("dec",),
}

#: other names users give a field's column: read for it when unambiguous, and said so
LIKELY_COLUMNS = {
    "band": ("filter",),
    "filterName": ("filter",),
}

# how close (difflib ratio of the normalized names) a column must be to a field for "did you mean"
_TYPO_RATIO = 0.85


# --- the Avro rules ----------------------------------------------------------------------------


def _error(where: str, problem: str, fix: str) -> InputError:
    return InputError(f"{where}: {problem}; {fix}")


def _first(
    bad: np.ndarray, valid: np.ndarray | None, values: np.ndarray
) -> tuple[int, Any] | None:
    """The first row flagged in ``bad`` that is not null, and its value; `None` if none is."""
    if valid is not None:
        bad &= valid
    if not bad.any():
        return None
    row = int(np.flatnonzero(bad)[0])
    value = values[row]
    return row, value.item() if isinstance(value, np.generic) else value


def _range_error(where: str, row: int, value: Any, primitive: str) -> InputError:
    low, high = INT_RANGES[primitive]
    bits = 32 if primitive == "int" else 64
    fix = "fix the value"
    if primitive == "int":
        fix += ", or declare the field 'long' in the schema"
    return InputError(
        f"{where} does not fit a {bits}-bit Avro {primitive}: row {row} holds {value} "
        f"(Avro {primitive!r} holds {low} to {high}); {fix}"
    )


def _dtype_error(values: np.ndarray, field: FieldType, where: str, expected: str) -> InputError:
    return _error(
        where,
        f"column dtype {values.dtype} cannot be cast safely to Avro {field.primitive!r}",
        f"give {expected} values",
    )


def _checked_nulls(nulls: np.ndarray | None, field: FieldType, where: str) -> np.ndarray | None:
    """The field's null mask, `None` when no row is null; an error if the field is required."""
    if nulls is None or not nulls.any():
        return None
    if not field.nullable:
        rows = np.flatnonzero(nulls)[:5].tolist()
        raise InputError(
            f"{where} is null at rows {rows}: row {rows[0]} is null but the schema does not "
            "allow null; fill the values or drop those rows"
        )
    return nulls


def _integers(
    values: npt.NDArray[Any], valid: npt.NDArray[np.bool_] | None, field: FieldType, where: str
) -> npt.NDArray[Any]:
    if values.dtype.kind not in "iu":
        raise _dtype_error(values, field, where, "integer (int32 for 'int', int64 for 'long')")
    low, high = INT_RANGES[field.primitive]
    info = np.iinfo(values.dtype)
    if info.min < low or info.max > high:
        checked = values if valid is None else values[valid]
        if checked.size and (checked.min() < low or checked.max() > high):
            bad = _first((values < low) | (values > high), valid, values)
            if bad is not None:
                raise _range_error(where, *bad, field.primitive)
    return values.astype(AVRO_DTYPES[field.primitive], copy=False)


def _exact_integers(
    values: np.ndarray, valid: np.ndarray | None, field: FieldType, where: str
) -> None:
    """Integers going into a floating field must survive the conversion unchanged."""
    bits = EXACT_INTEGER_BITS[field.primitive]
    limit = 2**bits
    info = np.iinfo(values.dtype)
    if -limit <= info.min and info.max <= limit:
        return
    inexact = _first((values > limit) | (values < -limit), valid, values)
    if inexact is not None:
        row, value = inexact
        raise InputError(
            f"{where} holds integers an Avro {field.primitive!r} cannot hold exactly (beyond "
            f"2**{bits}): row {row} holds the integer {value}; convert the column to floating "
            "point yourself if rounding is acceptable"
        )


def _floats(
    values: npt.NDArray[Any], valid: npt.NDArray[np.bool_] | None, field: FieldType, where: str
) -> npt.NDArray[Any]:
    kind, size = values.dtype.kind, values.dtype.itemsize
    if kind in "iu":
        _exact_integers(values, valid, field, where)
        return values.astype(AVRO_DTYPES[field.primitive])
    if field.primitive == "double":
        if kind == "f" and size <= 8:
            return values.astype(np.float64, copy=False)
        raise _dtype_error(
            values, field, where, "float64 (or float32, or integers a double holds exactly)"
        )
    if kind != "f":
        raise _dtype_error(values, field, where, "float32 (float64 is rounded as fastavro does)")
    if size <= 4:
        return values.astype(np.float32, copy=False)
    with np.errstate(over="ignore"):
        cast = values.astype(np.float32)
    overflow = _first(np.isinf(cast) & np.isfinite(values), valid, values)
    if overflow is not None:
        row, value = overflow
        raise InputError(
            f"{where} does not fit a 32-bit Avro float: row {row} holds {value}, beyond the "
            f"largest Avro 'float' ({FLOAT32_MAX:.7g}); fix the value or null it, or declare "
            "the field 'double' in the schema"
        )
    return cast


def _booleans(
    values: npt.NDArray[Any], valid: npt.NDArray[np.bool_] | None, field: FieldType, where: str
) -> npt.NDArray[Any]:
    if values.dtype != np.bool_:
        raise _dtype_error(values, field, where, "bool")
    return values


def _strings(
    values: np.ndarray, valid: np.ndarray | None, field: FieldType, where: str
) -> np.ndarray:
    if values.dtype.kind not in "OUT":
        raise _dtype_error(values, field, where, "str (object or unicode dtype)")
    objects = values if values.dtype.kind == "O" else values.astype(object)
    items = (objects if valid is None else objects[valid]).tolist()
    try:
        text = "".join(items)  # in C: a TypeError is the check that every value is a str
    except TypeError:
        position = next(i for i, item in enumerate(items) if not isinstance(item, str))
        row = position if valid is None else int(np.flatnonzero(valid)[position])
        wrong = items[position]
        raise InputError(
            f"{where} must hold str values: non-null row {row} holds "
            f"{type(wrong).__name__} {wrong!r}, not str; mark missing values null"
        ) from None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InputError(
                f"{where} must hold text that UTF-8 can encode: a value contains "
                f"{text[error.start : error.end]!r}, which is not valid in UTF-8 (a lone "
                "surrogate); clean the text"
            ) from None
    return objects


def _bytes(
    values: npt.NDArray[Any], valid: npt.NDArray[np.bool_] | None, field: FieldType, where: str
) -> npt.NDArray[Any]:
    if values.dtype.kind == "S":
        return values.astype(object)
    if values.dtype.kind != "O":
        raise _dtype_error(values, field, where, "bytes (object dtype)")
    items = (values if valid is None else values[valid]).tolist()
    if not set(map(type, items)) <= {bytes, bytearray}:
        position = next(i for i, b in enumerate(items) if type(b) not in (bytes, bytearray))
        row = position if valid is None else int(np.flatnonzero(valid)[position])
        raise InputError(
            f"{where} must hold bytes values: non-null row {row} holds "
            f"{type(items[position]).__name__}, not bytes; mark missing values null"
        )
    return values


_RULES = {
    "int": _integers,
    "long": _integers,
    "float": _floats,
    "double": _floats,
    "boolean": _booleans,
    "string": _strings,
    "bytes": _bytes,
}


def _conform_values(
    values: np.ndarray, nulls: np.ndarray | None, field: FieldType, where: str, *,
    typed: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One column by the Avro rules: ``(values, nulls)`` as a conformed table holds them.

    ``typed``: every value has the field's type by the column's own type (an
    Arrow string column is UTF-8 str throughout), so they are not scanned.
    """
    nulls = _checked_nulls(nulls, field, where)
    if typed:
        return values, nulls
    rule = _RULES[field.primitive]
    conformed_values = rule(values, None if nulls is None else ~nulls, field, where)
    return np.ascontiguousarray(conformed_values), nulls


def _placeholder(primitive: str, n_rows: int) -> np.ndarray:
    if primitive in AVRO_DTYPES:
        return np.zeros(n_rows, dtype=AVRO_DTYPES[primitive])
    return np.full(n_rows, None, dtype=object)


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


def _marked(
    record_schema: Mapping[str, Any],
    fields: tuple[FieldType, ...],
    columns: dict[str, np.ndarray],
    nulls: dict[str, np.ndarray | None],
    n_rows: int,
    renamed: dict[str, str] | None = None,
) -> ColumnTable:
    """A ColumnTable of conformed, read-only arrays, marked as conformed to ``fields``."""
    columns = {name: _read_only(values) for name, values in columns.items()}
    nulls = {name: None if mask is None else _read_only(mask) for name, mask in nulls.items()}
    mark = Conformance(
        fields,
        tuple(columns[field.name] for field in fields),
        tuple(nulls.get(field.name) for field in fields),
    )
    return ColumnTable(
        dict(record_schema), columns, nulls, n_rows, conformance=mark, renamed=renamed or {}
    )


# --- ColumnTables built elsewhere ----------------------------------------------------------------


def conformed(
    table: ColumnTable, fields: tuple[FieldType, ...], record: str
) -> ColumnTable:
    """``table`` if conformance built it for ``fields`` and it is unchanged, else it conformed.

    Parameters
    ----------
    table : `ColumnTable`
        A table to encode.
    fields : `tuple` [`FieldType`, ...]
        The field types of the record it is encoded as.
    record : `str`
        That record's full name, for messages.

    Raises
    ------
    alertpack.errors.InputError
        As `conform_columns`.
    """
    mark = table.conformance
    if mark is not None and mark.covers(table, fields):
        return table
    return _conform_columns(table, table.schema, fields, record)


def conform_columns(
    table: ColumnTable, record_schema: Mapping[str, Any] | None = None
) -> ColumnTable:
    """Validate a table of numpy columns by the Avro rules of its record type.

    Parameters
    ----------
    table : `ColumnTable`
        One array per schema field (a field of type ``"null"`` needs none)
        and a bool null mask, True where null, for any nullable field that
        has nulls.
    record_schema : `dict`, optional
        The record definition to conform to; by default ``table.schema``.

    Returns
    -------
    table : `ColumnTable`
        The columns cast to the dtypes of the field types, read-only, marked
        as conformed.

    Raises
    ------
    alertpack.errors.InputError
        Naming the field and record, for a missing or misshapen column or
        null mask, a dtype that cannot be cast safely to the field's type, a
        value out of its range, or a null where the field is required.
    alertpack.errors.UnsupportedSchemaError
        If the record is not flat.
    """
    schema = table.schema if record_schema is None else record_schema
    return _conform_columns(table, schema, record_field_types(schema), schema["name"])


def _conform_columns(
    table: ColumnTable,
    record_schema: Mapping[str, Any],
    fields: tuple[FieldType, ...],
    record: str,
) -> ColumnTable:
    n_rows = table.n_rows
    columns: dict[str, np.ndarray] = {}
    nulls: dict[str, np.ndarray | None] = {}
    for field in fields:
        where = f"field {field.name!r} of record {record}"
        mask = _table_nulls(table, field, where)
        if field.primitive == "null":
            values, mask = _placeholder("null", n_rows), _checked_nulls(mask, field, where)
        else:
            values, mask = _conform_values(_table_column(table, field, where), mask, field, where)
        columns[field.name] = values
        if field.nullable:
            nulls[field.name] = mask
    return _marked(record_schema, fields, columns, nulls, n_rows)


def _table_nulls(table: ColumnTable, field: FieldType, where: str) -> np.ndarray | None:
    mask = table.nulls.get(field.name)
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != (table.n_rows,):
        raise _error(
            where,
            f"null mask has dtype {mask.dtype} and shape {mask.shape}",
            f"give a bool array of shape ({table.n_rows},), True where the value is null",
        )
    return mask


def _table_column(table: ColumnTable, field: FieldType, where: str) -> np.ndarray:
    if field.name not in table.columns:
        raise _error(
            where,
            "the table has no column for it",
            f"add a column {field.name!r} (the table has {len(table.columns)} columns)",
        )
    values = np.asarray(table.columns[field.name])
    if values.shape != (table.n_rows,):
        raise _error(
            where,
            f"column has shape {values.shape} but the table has {table.n_rows} rows",
            "give one value per row",
        )
    return values


# --- catalogs ------------------------------------------------------------------------------------


def find_column(source: CatalogColumns, name: str) -> str | None:
    """The catalog column standing for schema field ``name`` (itself or an alias), else None."""
    if name in source:
        return name
    for alias in COLUMN_ALIASES.get(name, ()):
        if alias in source:
            return alias
    return None


def _normalized(name: str) -> str:
    """A name without case and separators: ``PSF_FLUX`` and ``psfFlux`` are ``psfflux``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _could_be(column: str, field_name: str) -> bool:
    """Whether a catalog column named ``column`` can stand for the field ``field_name``."""
    normalized = _normalized(column)
    return (
        normalized in {_normalized(name) for name in LIKELY_COLUMNS.get(field_name, ())}
        or current_field_name(column) == current_field_name(field_name)
        or normalized == _normalized(field_name)
    )


def match_renamed_columns(
    source: CatalogColumns, fields: tuple[FieldType, ...], found: dict[str, str | None],
    catalog: str,
) -> dict[str, str]:
    """The columns read for fields that have none of their own name (see the module notes).

    Parameters
    ----------
    source : `CatalogColumns`
        The catalog.
    fields : `tuple` [`FieldType`, ...]
        The record's fields.
    found : `dict` [`str`, `str` or `None`]
        Field -> its column by name or alias (`find_column`); `None` where
        there is none.
    catalog : `str`
        The catalog's name, for messages.

    Returns
    -------
    renamed : `dict` [`str`, `str`]
        Field -> the column read for it.

    Raises
    ------
    alertpack.errors.InputError
        Two columns that could be one field, a column that could be two
        fields, or a column close to a missing field's name ("did you mean").
    """
    field_names = {field.name for field in fields}
    used = {column for column in found.values() if column is not None}
    extras = [name for name in source.names if name not in field_names and name not in used]
    missing = [field.name for field in fields if found[field.name] is None]
    candidates = {name: [c for c in extras if _could_be(c, name)] for name in missing}
    renamed: dict[str, str] = {}
    for name, columns in candidates.items():
        if len(columns) > 1:
            listed = " and ".join(repr(column) for column in columns)
            raise InputError(
                f"{catalog} has columns {listed}, which could all be {name}; rename the one "
                f"that is {name!r} (or drop the others)"
            )
        if not columns:
            continue
        others = [other for other, cs in candidates.items() if other != name and columns[0] in cs]
        if others:
            raise InputError(
                f"{catalog} column {columns[0]!r} could be {name} or {' or '.join(others)}; "
                "rename it to the one it is"
            )
        renamed[name] = columns[0]
    for name in missing:
        if name in renamed:
            continue
        spare = {_normalized(c): c for c in extras if c not in renamed.values()}
        close = difflib.get_close_matches(_normalized(name), spare, n=1, cutoff=_TYPO_RATIO)
        if close and len(_normalized(name)) >= 4:
            raise InputError(
                f"{catalog} has no column {name!r} but has {spare[close[0]]!r}: did you mean "
                f"{name!r}? Rename the column, or drop it if it is something else"
            )
    return renamed


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

    Returns
    -------
    table : `ColumnTable`
        One conformed, read-only column per schema field, marked as conformed.

    Raises
    ------
    alertpack.errors.InputError
        Listing every required column that is missing, or naming the column,
        row and value that cannot be represented.
    """
    source = frame if isinstance(frame, CatalogColumns) else CatalogColumns(frame, catalog)
    n_rows = source.n_rows
    fields = record_field_types(record_schema)
    found = {field.name: find_column(source, field.name) for field in fields}
    renamed = match_renamed_columns(source, fields, found, catalog)
    found.update(renamed)
    missing = [field.name for field in fields if found[field.name] is None and not field.nullable]
    if missing:
        raise InputError(
            f"{catalog} lacks column(s) {', '.join(missing)} required by {record_schema['name']}; "
            "add them to the catalog, or choose the schema version the catalog was made for "
            "(config schemaVersion)"
        )
    source.take([column for column in found.values() if column is not None])
    columns: dict[str, np.ndarray] = {}
    nulls: dict[str, np.ndarray | None] = {}
    for field in fields:
        column = found[field.name]
        if column is None:
            columns[field.name] = _placeholder(field.primitive, n_rows)
            nulls[field.name] = np.ones(n_rows, dtype=bool) if n_rows else None
            continue
        where = f"{catalog} column {column!r}"
        raw, raw_nulls = source.column(column)
        values, null_mask = _catalog_values(raw, raw_nulls, field, where)
        typed = source.declared.get(column) == field.primitive
        columns[field.name], mask = _conform_values(values, null_mask, field, where, typed=typed)
        if field.nullable:
            nulls[field.name] = mask
    return _marked(record_schema, fields, columns, nulls, n_rows, renamed)


def _catalog_values(
    values: Any, nulls: np.ndarray, field: FieldType, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """A catalog column (numpy or pandas extension array) as the numpy array it stands for."""
    primitive = field.primitive
    if primitive in ("float", "double"):
        if isinstance(values, np.ndarray) and values.dtype.kind == "f":
            floats = values
        else:
            try:
                floats = as_numpy(values, nulls, np.float64, np.nan)
            except (TypeError, ValueError) as error:
                raise InputError(
                    f"{where} must be numeric for Avro {primitive}: {error}"
                ) from None
        if not field.nullable:
            nulls = nulls & ~np.isnan(floats)  # a NaN in a required float is a value
        return floats, nulls
    if primitive in ("int", "long"):
        return _catalog_integers(values, nulls, field, where), nulls
    if primitive == "boolean":
        return _catalog_booleans(values, nulls, where), nulls
    if primitive in ("string", "bytes"):
        kind = getattr(values.dtype, "kind", "O")
        if isinstance(values, np.ndarray) and kind == ("U" if primitive == "string" else "S"):
            return values, nulls
        return as_numpy(values, nulls, object, None), nulls
    raise InputError(f"{where}: Avro type {primitive!r} is not supported in catalog columns")


def _catalog_integers(
    values: Any, nulls: np.ndarray, field: FieldType, where: str
) -> np.ndarray:
    primitive = field.primitive
    dtype = values.dtype
    if field.logical == "timestamp-micros" and np.issubdtype(dtype, np.datetime64):
        return as_numpy(values, nulls, "datetime64[us]", None).astype(np.int64)
    # numpy and pandas' nullable (Int64, UInt64, ...) dtypes both report kind i/u
    kind = dtype.kind
    if kind in "iu":
        if isinstance(values, np.ndarray):
            return values
        return as_numpy(values, nulls, np.uint64 if kind == "u" else np.int64, 0)
    low, high = INT_RANGES[primitive]
    present = ~nulls
    if kind == "f":
        floats = as_numpy(values, nulls, np.float64, np.nan)
        fraction = _first((floats != np.round(floats)) | ~np.isfinite(floats), present, floats)
        if fraction is not None:
            row, value = fraction
            raise InputError(
                f"{where} must hold whole numbers for Avro {primitive}, found {value!r} at "
                f"row {row}"
            )
        # high + 1 is a power of two, exact as a float where high itself is not
        outside = _first((floats < low) | (floats >= float(high + 1)), present, floats)
        if outside is not None:
            raise _range_error(where, *outside, primitive)
        return np.where(present, floats, 0).astype(np.int64)
    try:
        integers = [0 if null else _whole(v) for v, null in zip(values, nulls, strict=True)]
    except (TypeError, ValueError, OverflowError) as error:
        raise InputError(f"{where} must hold integers for Avro {primitive}: {error}") from None
    for row, number in enumerate(integers):
        if not low <= number <= high:
            raise _range_error(where, row, number, primitive)
    return np.array(integers, dtype=np.int64)


def _whole(value: Any) -> int:
    """A Python integer for one catalog value; a float must be whole."""
    number = int(value)
    if isinstance(value, (float, np.floating)) and number != value:
        raise ValueError(f"{value!r} is not a whole number")
    return number


def _catalog_booleans(values: Any, nulls: np.ndarray, where: str) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind == "b":
        return values
    present = values[~nulls]
    if len(present):
        import pandas as pd  # pandas: not for numpy bool columns (every Arrow one is)

        uniques = pd.unique(present) if isinstance(present, np.ndarray) else present.unique()
        bad = [v for v in uniques if not isinstance(v, (bool, np.bool_))][:3]
        if bad:
            raise InputError(f"{where} must hold booleans (True/False/None), found {bad}")
    booleans = np.zeros(len(values), dtype=np.bool_)
    booleans[~nulls] = as_numpy(present, np.zeros(len(present), bool), np.bool_, False)
    return booleans
