"""Orbits from the ``MPCORB_*`` columns of solar-system sources (today's Rubin pipeline).

Rubin's ``diaPipe`` hands the alert Task one ``ssSrc`` table: the SSSource
columns of each solar-system DiaSource and, beside them, the MPC orbit of its
object as ``MPCORB_<field>`` columns. Each alert's orbit record is then that
row's ``MPCORB_*`` values with the prefix stripped, and, as upstream fills
them:

- ``id`` is 0 (the orbit table's own row id, which the source rows do not carry);
- when no ``MPCORB_packed_primary_provisional_designation`` is given, the
  designations come from the SSSource row: ``designation`` and
  ``unpacked_primary_provisional_designation`` are its ``designation``,
  ``packed_primary_provisional_designation`` is its ``ssObjectId`` decoded
  (Rubin packs the MPC packed designation's ASCII bytes into the 64-bit id,
  first character highest: `packed_designations`).

Only fields the schema's orbit record has are filled; values are conformed
to their Avro types afterwards like any catalog's (the float casts upstream
makes by hand).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from alertpack.errors import InputError
from alertpack.packets.columns import CatalogColumns, flatten_catalog

__all__ = ["MPCORB_PREFIX", "mpcorb_columns", "orbits_from_mpcorb", "packed_designations"]

#: prefix of the orbit columns in a solar-system source table
MPCORB_PREFIX = "MPCORB_"

_PACKED = "packed_primary_provisional_designation"
_UNPACKED = "unpacked_primary_provisional_designation"


def mpcorb_columns(flat: CatalogColumns) -> list[str]:
    """The ``MPCORB_*`` column names of a catalog, in its order."""
    return [name for name in flat.names if name.startswith(MPCORB_PREFIX)]


def packed_designations(ss_object_ids: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """MPC packed provisional designations encoded in Rubin ssObjectIds.

    An ssObjectId holds the designation's ASCII characters as its bytes,
    big-endian, zero bytes left out: ``'K19Q12B'`` is the id whose bytes are
    ``00 4B 31 39 51 31 32 42``.

    Raises
    ------
    InputError
        For a negative id (no 64-bit unsigned encoding).
    """
    ids = np.asarray(ss_object_ids)
    if ids.size and ids.dtype.kind == "i" and (ids < 0).any():
        raise InputError(
            f"ssSource has ssObjectId {int(ids[ids < 0][0])}, which encodes no MPC designation "
            "(ssObjectIds are 64-bit unsigned)"
        )
    raw = ids.astype(">u8").view("S8") if ids.size else np.empty(0, "S8")
    return np.array(
        # numpy drops trailing NULs of an S8 item; the leading ones go here
        [item.replace(b"\0", b"").decode("latin-1") for item in raw.ravel()], dtype=object
    )


def orbits_from_mpcorb(frame: Any, record: Mapping[str, Any], catalog: str) -> Any:
    """The orbit table of a solar-system source table's ``MPCORB_*`` columns, row for row.

    Parameters
    ----------
    frame : `pandas.DataFrame` or `pyarrow.Table`
        The solar-system sources (``ssSrc``), with their ``MPCORB_*`` columns.
    record : `dict`
        The schema's orbit record (``mpc_orbits``), whose fields are filled.
    catalog : `str`
        The table's name in messages.

    Returns
    -------
    orbits : `pandas.DataFrame` or `pyarrow.Table` or `None`
        One orbit row per source row (same order), or `None` when the table
        has no ``MPCORB_*`` column.

    Raises
    ------
    InputError
        When the designations must come from the sources and a column they
        come from (``designation``, ``ssObjectId``) is missing.
    """
    flat = CatalogColumns(frame, catalog)
    given = mpcorb_columns(flat)
    if not given:
        return None
    fields = {avro_field["name"] for avro_field in record["fields"]}
    stripped = {name: name[len(MPCORB_PREFIX):] for name in given}
    extra: dict[str, Any] = {}
    if "id" in fields and "id" not in stripped.values():
        extra["id"] = np.zeros(flat.n_rows, dtype=np.int32)
    if _PACKED in fields and _PACKED not in stripped.values():
        for needed in ("designation", "ssObjectId"):
            if needed not in flat:
                raise InputError(
                    f"{catalog} has {MPCORB_PREFIX}* columns but no {MPCORB_PREFIX}{_PACKED} "
                    f"and no {needed} column to take the orbit's designations from; add "
                    f"{MPCORB_PREFIX}{_PACKED} or {needed}"
                )
        designation = flat.strings("designation")
        extra["designation"] = designation
        extra[_UNPACKED] = designation
        extra[_PACKED] = packed_designations(flat.to_numpy("ssObjectId", np.uint64))
    if _is_pandas(frame):
        orbits = flatten_catalog(frame, catalog)[given].rename(columns=stripped)
        for name, values in extra.items():
            orbits[name] = values
        return orbits
    import pyarrow as pa  # an Arrow table brought pyarrow already

    orbits = frame.select(given).rename_columns([stripped[name] for name in given])
    for name, values in extra.items():
        column = pa.array(values.tolist(), type=pa.string() if values.dtype == object else None)
        if name in orbits.column_names:
            orbits = orbits.drop_columns([name])
        orbits = orbits.append_column(name, column)
    return orbits


def _is_pandas(frame: Any) -> bool:
    return not type(frame).__module__.startswith("pyarrow")
