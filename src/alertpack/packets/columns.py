"""Catalogs as numpy columns: each column taken out once, with its null mask.

A catalog is a pandas DataFrame (in the LSST Task's index layout or as plain
columns) or a `pyarrow.Table` (a Parquet file read without pandas).
`CatalogColumns` takes the columns the schema needs out of it as
``(values, nulls)`` pairs: numpy arrays where the catalog's dtype is a numpy
one, pandas extension arrays (``Int64``, ``boolean``, ``str``) otherwise; null
is what pandas counts as missing (NaN, NaT, None, ``pd.NA``) or an Arrow null.
Nothing here judges the values: `alertpack.packets.conform` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from alertpack.errors import InputError
from alertpack.packets.avro_types import AVRO_DTYPES, avro_field_type

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CatalogColumns", "as_numpy", "empty_catalog", "flatten_catalog", "row_frame"]


def flatten_catalog(frame: Any, catalog: str) -> pd.DataFrame:
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
    keep their pandas array, converted by `alertpack.packets.conform`.

    Parameters
    ----------
    frame : `pandas.DataFrame` or `pyarrow.Table`
        The catalog.
    catalog : `str`
        Its name in error messages, e.g. ``"diaSourceCat"``.
    """

    def __init__(self, frame: Any, catalog: str) -> None:
        self.catalog = catalog
        self._frame: pd.DataFrame | None
        if _is_arrow_table(frame):
            self._frame = None
            self._arrow: Any = frame  # a pyarrow.Table
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
        self._taken: dict[str, tuple[Any, npt.NDArray[np.bool_]]] = {}
        #: Avro primitive (string, bytes) that every value of an Arrow column has by its type
        self.declared: dict[str, str] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._positions

    def take(self, names: list[str]) -> None:
        """Extract ``names`` at once: one copy per numpy dtype group."""
        wanted = [name for name in dict.fromkeys(names) if name not in self._taken]
        frame = self._frame
        if frame is None:
            for name in wanted:
                chunked = self._arrow.column(self._positions[name])
                self._taken[name] = _arrow_column(chunked)
                declared = _ARROW_DECLARED.get(str(chunked.type))
                if declared is not None:
                    self.declared[name] = declared
            return
        dtypes = list(frame.dtypes)
        groups: dict[np.dtype[Any], list[str]] = {}
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

    def column(self, name: str) -> tuple[Any, npt.NDArray[np.bool_]]:
        """``(values, nulls)`` of one column; values a numpy or pandas extension array."""
        if name not in self._taken:
            self.take([name])
        return self._taken[name]

    def to_numpy(self, name: str, dtype: npt.DTypeLike | None = None) -> npt.NDArray[Any]:
        """One column as a numpy array (nulls as the converter leaves them)."""
        values, _ = self.column(name)
        if isinstance(values, np.ndarray):
            return values if dtype is None else values.astype(dtype)
        # a pandas extension array
        converted = values.to_numpy(dtype=dtype) if dtype is not None else values.to_numpy()
        return np.asarray(converted)

    def strings(self, name: str) -> npt.NDArray[np.object_]:
        """One column as an object array, None where null."""
        values, nulls = self.column(name)
        return as_numpy(values, nulls, object, None)


def _numpy_nulls(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """What pandas counts as missing in a numpy column (NaN, NaT, None, pd.NA)."""
    kind = values.dtype.kind
    if kind in "fc":
        return np.isnan(values)
    if kind in "mM":
        return np.isnat(values)
    if kind == "O":
        import pandas as pd  # pandas: only for object columns, which come from DataFrames

        return np.asarray(pd.isna(values), dtype=bool)
    return np.zeros(len(values), dtype=bool)


def _arrow_column(chunked: Any) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
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


def _arrow_chunk(array: Any) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    # pyarrow (~0.1 s): only for Arrow tables, which bring it; the Avro container writers
    # (sinks.files, tools.consume) reach this module through packets.avro without tables
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


def as_numpy(
    values: Any, nulls: npt.NDArray[np.bool_], dtype: npt.DTypeLike, na_value: Any
) -> npt.NDArray[Any]:
    """``Series.to_numpy(dtype, na_value=...)`` for a numpy or pandas extension array."""
    if not isinstance(values, np.ndarray):
        return np.asarray(values.to_numpy(dtype=dtype, na_value=na_value))
    if nulls.any() and values.dtype.kind == "O":
        values = values.copy()
        values[nulls] = na_value
    return np.asarray(values, dtype=dtype)


def row_frame(row: Any, index_names: tuple[str, ...], catalog: str) -> pd.DataFrame:
    """One catalog row (`pandas.Series`, `dict` or one-row DataFrame) as a DataFrame.

    A Series taken from an indexed catalog (``df.loc[key]``) carries its index
    key as ``name``; the key values set the ``index_names`` columns, since
    pandas turns an all-numeric row into float64, which rounds 64-bit ids.
    Pass ``df.loc[[key]]`` (a one-row DataFrame) to keep every column exact.
    """
    import pandas as pd  # pandas: the Task's single-row API takes pandas rows

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


def empty_catalog(record_schema: Mapping[str, Any]) -> pd.DataFrame:
    """An empty DataFrame with one column per schema field, typed as run() expects."""
    import pandas as pd  # pandas: the Task's single-row API takes pandas rows

    nullable_dtypes = {"long": "Int64", "int": "Int32", "boolean": "boolean"}
    columns = {}
    for avro_field in record_schema["fields"]:
        primitive, nullable, _ = avro_field_type(avro_field["type"])
        dtype: str | type[object]
        if nullable and primitive in nullable_dtypes:
            dtype = nullable_dtypes[primitive]
        else:
            dtype = AVRO_DTYPES.get(primitive, object)
        columns[avro_field["name"]] = pd.Series([], dtype=dtype)
    return pd.DataFrame(columns)
