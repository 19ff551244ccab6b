"""Avro types of flat record fields: unions, logical types, value ranges, numpy dtypes.

What alertpack knows about Avro's primitive types is written here once, for
conformance (`alertpack.packets.conform`), the encoder
(`alertpack.packets.avro`), the sample catalogs, the APDB reader and the alert
inspector:

- a field's type is a primitive (``"long"``, ``{"type": "long",
  "logicalType": "timestamp-micros"}``, ...) or a union of ``"null"`` and one
  type, in either order; other unions are refused;
- ``int`` holds 32-bit and ``long`` 64-bit signed integers (`INT_RANGES`);
- ``float`` is IEEE single precision: finite values beyond `FLOAT32_MAX` do
  not fit, and integers beyond ``2**24`` (``double``: ``2**53``) do not
  survive the conversion (`EXACT_INTEGER_BITS`);
- in a `~alertpack.packets.tables.ColumnTable` each fixed-width primitive is
  a numpy array of one dtype (`AVRO_DTYPES`); ``string`` and ``bytes`` are
  object arrays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from alertpack.errors import UnsupportedSchemaError

__all__ = [
    "AVRO_DTYPES",
    "EXACT_INTEGER_BITS",
    "FLOAT32_MAX",
    "INT_RANGES",
    "PRIMITIVES",
    "FieldType",
    "avro_field_type",
    "field_type",
    "primitive_of",
    "record_field_types",
    "split_union",
]

#: the Avro primitive type names
PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "string", "bytes"})
#: inclusive value range of each Avro integer type
INT_RANGES: dict[str, tuple[int, int]] = {
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
#: the largest finite Avro ``float`` (IEEE single precision)
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: integers up to ``2**bits`` in magnitude convert to each Avro floating type exactly
EXACT_INTEGER_BITS = {"float": 24, "double": 53}
#: numpy dtype of each fixed-width Avro primitive in a ColumnTable
AVRO_DTYPES: dict[str, type[np.generic]] = {
    "long": np.int64,
    "int": np.int32,
    "float": np.float32,
    "double": np.float64,
    "boolean": np.bool_,
}


class FieldType(NamedTuple):
    """The type of one flat record field.

    Attributes
    ----------
    name : `str`
        Field name.
    primitive : `str`
        Avro primitive type name (a logical type rides on its primitive).
    null_branch : `int` or `None`
        Position of ``"null"`` in the field's union; `None` when the field
        is not nullable.
    logical : `str` or `None`
        ``logicalType`` (e.g. ``"timestamp-micros"``), if any.
    """

    name: str
    primitive: str
    null_branch: int | None
    logical: str | None = None

    @property
    def nullable(self) -> bool:
        """Whether the field's union admits null."""
        return self.null_branch is not None


def split_union(avro_type: Any, where: str) -> tuple[Any, int | None]:
    """The one non-null type of a field type, and where ``"null"`` stands in its union.

    Parameters
    ----------
    avro_type
        A field's ``type``: a name, a dict, or a list (a union).
    where : `str`
        The field, for the error message (e.g. ``"lsst.v11_1.diaSource.ra"``).

    Returns
    -------
    branch
        ``avro_type`` itself when it is not a union, else its non-null branch.
    null_branch : `int` or `None`
        Position of ``"null"`` in the union; `None` when not a union.

    Raises
    ------
    alertpack.errors.UnsupportedSchemaError
        For a union that is not ``["null", T]`` or ``[T, "null"]``.
    """
    if not isinstance(avro_type, list):
        return avro_type, None
    if len(avro_type) != 2 or avro_type.count("null") != 1:
        raise UnsupportedSchemaError(
            f"{where}: union {json.dumps(avro_type)} is not a union of null and one type, "
            "which is all alertpack handles"
        )
    null_branch = avro_type.index("null")
    return avro_type[1 - null_branch], null_branch


def primitive_of(avro_type: Any, where: str) -> tuple[str, str | None]:
    """``(primitive, logical_type)`` of a non-union type that is a primitive.

    Raises
    ------
    alertpack.errors.UnsupportedSchemaError
        If ``avro_type`` is a record, array, map, enum, fixed or a name.
    """
    if isinstance(avro_type, str) and avro_type in PRIMITIVES:
        return avro_type, None
    if isinstance(avro_type, dict) and avro_type.get("type") in PRIMITIVES:
        return avro_type["type"], avro_type.get("logicalType")
    raise UnsupportedSchemaError(
        f"{where}: type {json.dumps(avro_type)} is not a primitive; the columnar encoder "
        "handles flat records whose fields are primitives or [\"null\", primitive] unions"
    )


def field_type(field: Mapping[str, Any], record: str) -> FieldType:
    """The `FieldType` of one field of a flat record named ``record``."""
    where = f"{record}.{field['name']}"
    branch, null_branch = split_union(field["type"], where)
    primitive, logical = primitive_of(branch, where)
    return FieldType(field["name"], primitive, null_branch, logical)


def record_field_types(record_schema: Mapping[str, Any]) -> tuple[FieldType, ...]:
    """The `FieldType` of every field of a flat Avro record definition, in order."""
    name = record_schema["name"]
    return tuple(field_type(field, name) for field in record_schema["fields"])


def avro_field_type(avro_type: Any, where: str = "field") -> tuple[str, bool, str | None]:
    """Split a flat field type into ``(primitive, nullable, logical_type)``.

    Raises
    ------
    alertpack.errors.UnsupportedSchemaError
        For another union or a type that is not a primitive.
    """
    branch, null_branch = split_union(avro_type, where)
    primitive, logical = primitive_of(branch, where)
    return primitive, null_branch is not None, logical
