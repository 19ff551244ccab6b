"""The straightforward way to package alerts, one Python object at a time.

This is how alert packaging is usually first written: a pandas ``iterrows``
loop over sources, each object's history looked up with ``.loc`` and turned
into dicts with ``to_dict("records")``, every cutout made with
`astropy.nddata.Cutout2D` and written with ``CCDData.write``, and the alerts
stored with ``lsst.alert.packet``'s ``store_alerts`` (fastavro). It follows
the same rules as the fast path (`alertpack.packets.records`), so the two must give
alerts that decode to the same values: tests use it as the oracle and the
benchmarks as the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from alertpack.packets.records import COLUMN_ALIASES, avro_field_type, flatten_catalog
from alertpack.reference.cutouts import reference_cutout_bytes
from alertpack.schema import AlertSchema
from alertpack.tools.reading import field_value

__all__ = ["conform_record", "package_alerts_reference"]

def conform_record(row: Mapping[str, Any], record_schema: Mapping[str, Any]) -> dict[str, Any]:
    """One catalog row as the dict fastavro expects, field by field."""
    record = {}
    for avro_field in record_schema["fields"]:
        name = avro_field["name"]
        primitive, nullable, _ = avro_field_type(avro_field["type"])
        value = row.get(name)
        for alias in COLUMN_ALIASES.get(name, ()):
            if value is None:
                value = row.get(alias)
        if isinstance(value, np.generic):
            value = value.item()
        if value is not None and _is_missing(value, primitive, nullable):
            value = None
        if value is not None:
            if primitive in ("int", "long"):
                value = int(value)
            elif primitive in ("float", "double"):
                value = float(value)
            elif primitive == "boolean":
                value = bool(value)
        elif value is None and primitive in ("float", "double") and not nullable:
            value = math.nan
        record[name] = value
    return record


def _is_missing(value: Any, primitive: str, nullable: bool) -> bool:
    import pandas as pd

    if value is pd.NA:
        return True
    return (
        nullable
        and primitive in ("float", "double", "int", "long")
        and isinstance(value, float)
        and math.isnan(value)
    )


def _time_of(record: Mapping[str, Any]) -> float:
    return field_value(record, "mjd")


def _history_records(
    history: Any, object_id: int, time: float, source_id: int | None, record_schema: Mapping,
    window_days: float,
) -> list[dict[str, Any]] | None:
    if history is None:
        return None
    if object_id not in history.index:
        return []
    rows = history.loc[[object_id]].to_dict("records")
    records = []
    for row in rows:
        row_time = _time_of(row)
        if not time - window_days <= row_time < time:
            continue
        if source_id is not None and row.get("diaSourceId") == source_id:
            continue
        records.append(conform_record(row, record_schema))
    records.sort(key=_time_of)
    return records


def _flat(frame: Any) -> Any:
    return None if frame is None else flatten_catalog(frame, "catalog")


def package_alerts_reference(
    schema: AlertSchema,
    diaSourceCat: Any,
    diaObjectCat: Any,
    diaSrcHistory: Any,
    images: Mapping[str, Any],
    *,
    diaForcedSources: Any = None,
    ssSource: Any = None,
    cutout_size: int = 30,
    min_size: int = 30,
    max_size: int = 200,
    use_bbox_size: bool = True,
    window_days: float = 365.0,
) -> list[dict[str, Any]]:
    """Alerts of one visit, built row by row.

    Parameters
    ----------
    schema : `AlertSchema`
        Schema version to follow.
    diaSourceCat, diaObjectCat, diaSrcHistory : `pandas.DataFrame`
        As for `PackageAlertsTask.run`.
    images : `dict`
        Alert cutout field (``"cutoutDifference"``, ...) to `SurveyImage`.
    diaForcedSources, ssSource : `pandas.DataFrame`, optional
        Forced-source history and solar-system rows.
    cutout_size, min_size, max_size, use_bbox_size, window_days
        The config values of the same meaning.

    Returns
    -------
    alerts : `list` [`dict`]
        One alert dict per source, ready for ``Schema.store_alerts``.
    """
    sources = _flat(diaSourceCat)
    objects = _flat(diaObjectCat).set_index("diaObjectId", drop=False)
    history = None if diaSrcHistory is None else _flat(diaSrcHistory).set_index(
        "diaObjectId", drop=False
    )
    forced = None if diaForcedSources is None else _flat(diaForcedSources).set_index(
        "diaObjectId", drop=False
    )
    ss_rows = None if ssSource is None else _flat(ssSource).set_index("diaSourceId", drop=False)
    source_schema = schema.record("diaSource")
    id_field = "diaSourceId" if "diaSourceId" in schema.field_names else "alertId"
    alerts = []
    for _, row in sources.iterrows():
        source = conform_record(row.to_dict(), source_schema)
        object_id = source["diaObjectId"]
        time = _time_of(source)
        alert: dict[str, Any] = {id_field: source["diaSourceId"], "diaSource": source}
        if object_id is not None and object_id in objects.index:
            alert["diaObject"] = conform_record(
                # .loc[[key]] keeps each column's dtype (a row Series would be
                # float64 and round 64-bit ids)
                objects.loc[[object_id]].to_dict("records")[0], schema.record("diaObject")
            )
            alert["prvDiaSources"] = _history_records(
                history, object_id, time, source["diaSourceId"], source_schema, window_days
            )
            if schema.record("prvDiaForcedSources") is not None:
                alert["prvDiaForcedSources"] = _history_records(
                    forced, object_id, time, None, schema.record("prvDiaForcedSources"),
                    window_days,
                )
        if ss_rows is not None and schema.record("ssSource") is not None:
            if source["diaSourceId"] in ss_rows.index:
                alert["ssSource"] = conform_record(
                    ss_rows.loc[[source["diaSourceId"]]].to_dict("records")[0],
                    schema.record("ssSource"),
                )
        size = cutout_size
        bbox = source.get("bboxSize")
        if use_bbox_size and bbox is not None:
            size = min(max(int(bbox), min_size), max_size)
        dec = source["dec"] if "dec" in source else source["decl"]
        for field_name, image in images.items():
            if field_name in schema.field_names:
                alert[field_name] = reference_cutout_bytes(image, source["ra"], dec, size)
        alerts.append(alert)
    return alerts
