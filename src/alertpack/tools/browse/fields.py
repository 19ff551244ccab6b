"""Every field of an alert's records, with its value and the schema's description of it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from alertpack.schema import collect_named_types

__all__ = ["FieldRow", "format_value", "record_fields", "top_level_fields"]

#: the records the alert page lists field by field, in this order
RECORDS = ("diaSource", "diaObject", "ssSource", "mpc_orbits", "ssObject")


@dataclass(frozen=True)
class FieldRow:
    """One field of a record: name, value as shown, the schema's ``doc``, and a CSS class."""

    name: str
    value: str
    doc: str
    style: str  # "null", "number", "flag", "text", "data"


def format_value(value: Any) -> tuple[str, str]:
    """``(text, style)`` of a field value for the page."""
    if value is None:
        return "null", "null"
    if isinstance(value, bool):
        return ("true" if value else "false"), "flag"
    if isinstance(value, int):
        return str(value), "number"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN", "null"
        return f"{value:.10g}", "number"
    if isinstance(value, bytes):
        return f"{len(value):,} bytes", "data"
    if isinstance(value, list):
        return f"{len(value)} item(s)", "data"
    if isinstance(value, dict):
        return f"record of {len(value)} field(s)", "data"
    return str(value), "text"


def _record_type(avro_type: Any, named: dict[str, dict]) -> dict[str, Any] | None:
    if isinstance(avro_type, str):
        found = named.get(avro_type)
        return found if found and found.get("type") == "record" else None
    if isinstance(avro_type, list):
        for branch in avro_type:
            found = _record_type(branch, named)
            if found is not None:
                return found
        return None
    if isinstance(avro_type, dict):
        if avro_type.get("type") == "record":
            return avro_type
        if avro_type.get("type") == "array":
            return _record_type(avro_type.get("items"), named)
    return None


def _docs(writer_schema: dict[str, Any], record: str | None) -> dict[str, str]:
    if not isinstance(writer_schema, dict):
        return {}
    definition: dict[str, Any] | None = writer_schema
    if record is not None:
        named = collect_named_types(writer_schema)
        definition = None
        for field in writer_schema.get("fields", []):
            if isinstance(field, dict) and field.get("name") == record:
                definition = _record_type(field.get("type"), named)
    if definition is None:
        return {}
    return {
        str(field.get("name")): str(field.get("doc", ""))
        for field in definition.get("fields", [])
        if isinstance(field, dict)
    }


def record_fields(
    alert: dict[str, Any], record: str, writer_schema: dict[str, Any]
) -> list[FieldRow] | None:
    """The fields of ``alert[record]`` in record order, or `None` when the alert has none."""
    values = alert.get(record)
    if not isinstance(values, dict):
        return None
    docs = _docs(writer_schema, record)
    return [_row(name, value, docs) for name, value in values.items()]


def top_level_fields(alert: dict[str, Any], writer_schema: dict[str, Any]) -> list[FieldRow]:
    """The alert's own fields that are not records (ids, reasons, sizes of lists and cutouts)."""
    docs = _docs(writer_schema, None)
    return [_row(name, value, docs) for name, value in alert.items() if name not in RECORDS]


def _row(name: str, value: Any, docs: dict[str, str]) -> FieldRow:
    text, style = format_value(value)
    return FieldRow(name=name, value=text, doc=docs.get(name, ""), style=style)
