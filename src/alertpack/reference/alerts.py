"""The straightforward way to package alerts, one Python object at a time.

This is how alert packaging is usually first written: a pandas ``iterrows``
loop over sources, each object's history looked up with ``.loc`` and turned
into dicts with ``to_dict("records")``, every cutout made with
`astropy.nddata.Cutout2D` and written with ``CCDData.write``, and the alerts
stored with ``lsst.alert.packet``'s ``store_alerts`` (fastavro). Tests use it
as the oracle of the fast path (`alertpack.packets`) and the benchmarks as the
baseline.

It shares no code with the fast path: only lsst.alert.packet (the schemas),
pandas, numpy, astropy and fastavro. It follows the documented rules on its
own:

- a schema field missing from a catalog is null when nullable; NaN or
  ``pd.NA`` in a nullable field is null; ``band``/``filterName`` and
  ``dec``/``decl`` name the same column;
- a source with ``diaObjectId`` 0 or null has no DiaObject and null
  histories; otherwise ``prvDiaSources`` holds the object's sources strictly
  before the alert's and within ``window_days``, oldest first, never the
  source itself, and is null when there is none (a new DiaObject, as LSST's
  packageAlerts); ``prvDiaForcedSources`` likewise but up to and including
  the alert's own exposure (this visit's forced measurement, within a
  second), and an empty list when there is none;
- ``ssSource`` is the row with the source's ``diaSourceId``; the orbit is
  the row with the source's ``ssObjectId``, else the ssSource's
  ``designation``;
- every alert carries every field of the schema (``None`` when absent).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import lsst.alert.packet as packet
import numpy as np
import pandas as pd

from alertpack.reference.cutouts import parent_planes, reference_cutout_bytes

__all__ = ["conform_record", "package_alerts_reference", "packet_schema"]

# Column names that changed between schema versions: either is accepted.
_ALIASES = {"band": "filterName", "filterName": "band", "dec": "decl", "decl": "dec"}
_TIME_NAMES = ("midpointMjdTai", "midPointTai")
_ORBIT_FIELDS = ("mpc_orbits", "MPCORB", "ssObject")


def packet_schema(version: str) -> Any:
    """The `lsst.alert.packet.Schema` of ``version`` (e.g. ``"11.1"``), from its own files."""
    major, minor = (int(part) for part in version.split("."))
    directory = packet.get_schema_path(major, minor)
    return packet.Schema.from_file(
        os.path.join(directory, f"lsst.v{major}_{minor}.alert.avsc")
    )


def _named_types(definition: Any, found: dict[str, dict]) -> None:
    if isinstance(definition, list):
        for branch in definition:
            _named_types(branch, found)
    elif isinstance(definition, dict):
        if definition.get("type") in ("record", "enum", "fixed") and "name" in definition:
            found[definition["name"]] = definition
            namespace = definition.get("namespace")
            if namespace:
                found[f"{namespace}.{definition['name']}"] = definition
        for avro_field in definition.get("fields", []):
            _named_types(avro_field["type"], found)
        if "items" in definition:
            _named_types(definition["items"], found)


def _field_record(definition: dict, named: dict, field_name: str) -> dict | None:
    """The record type of an alert field (through nulls, arrays and names), or None."""
    for avro_field in definition["fields"]:
        if avro_field["name"] != field_name:
            continue
        kind = avro_field["type"]
        branches = kind if isinstance(kind, list) else [kind]
        for branch in branches:
            branch = named.get(branch, branch) if isinstance(branch, str) else branch
            if isinstance(branch, dict) and branch.get("type") == "array":
                items = branch["items"]
                branch = named.get(items, items) if isinstance(items, str) else items
            if isinstance(branch, dict) and branch.get("type") == "record":
                return branch
    return None


def _primitive(avro_type: Any) -> tuple[str, bool]:
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    kinds = [b for b in branches if b != "null"]
    kind = kinds[0] if kinds else "null"
    if isinstance(kind, dict):
        kind = kind["type"]
    return kind, len(kinds) < len(branches)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def conform_record(row: Mapping[str, Any], record_schema: Mapping[str, Any]) -> dict[str, Any]:
    """One catalog row as the dict fastavro expects, field by field."""
    record = {}
    for avro_field in record_schema["fields"]:
        name = avro_field["name"]
        kind, nullable = _primitive(avro_field["type"])
        value: Any = row.get(name)  # whatever the catalog holds
        if value is None and name in _ALIASES:
            value = row.get(_ALIASES[name])
        if isinstance(value, np.generic):
            value = value.item()
        if _missing(value):
            # a required float keeps its NaN; a nullable field is null
            value = math.nan if (kind in ("float", "double") and not nullable) else None
        elif kind in ("int", "long"):
            value = int(value)
        elif kind in ("float", "double"):
            value = float(value)
        elif kind == "boolean":
            value = bool(value)
        record[name] = value
    return record


def _time_of(record: Mapping[str, Any]) -> float:
    for name in _TIME_NAMES:
        if record.get(name) is not None:
            return float(record[name])
    raise KeyError("no exposure time")


def _plain(frame: Any) -> Any:
    """A catalog with its named index levels as columns (taken once)."""
    if frame is None:
        return None
    names = [name for name in frame.index.names if name is not None]
    levels = [name for name in names if name not in frame.columns]
    if not names:
        return frame.reset_index(drop=True)
    if not levels:
        return frame.reset_index(drop=True)
    return frame.reset_index(level=levels).reset_index(drop=True)


def _rows_of(frame: Any, column: str, key: Any) -> list[dict[str, Any]]:
    """The rows with ``column == key`` as dicts (dtype-exact, unlike a row Series)."""
    if frame is None or column not in frame.columns:
        return []
    return frame[frame[column] == key].to_dict("records")


def _history(
    rows: list[dict[str, Any]], time: float, source_id: int | None, record_schema: dict,
    window_days: float, *, through_alert: bool = False,
) -> list[dict[str, Any]]:
    records = [conform_record(row, record_schema) for row in rows]
    newest = time + 1.0 / 86400.0 if through_alert else time  # the alert's exposure: 1 s

    def in_window(record: dict[str, Any]) -> bool:
        t = _time_of(record)
        return time - window_days <= t and (t <= newest if through_alert else t < newest)

    kept = [
        r for r in records
        if in_window(r) and (source_id is None or r.get("diaSourceId") != source_id)
    ]
    return sorted(kept, key=_time_of)


def package_alerts_reference(
    version: str,
    diaSourceCat: Any,
    diaObjectCat: Any,
    diaSrcHistory: Any,
    images: Mapping[str, Any],
    *,
    diaForcedSources: Any = None,
    ssSource: Any = None,
    mpc_orbits: Any = None,
    cutout_size: int = 30,
    min_size: int = 30,
    max_size: int = 102,
    use_bbox_size: bool = True,
    window_days: float = 365.0,
) -> list[dict[str, Any]]:
    """Alerts of one visit, built row by row.

    Parameters
    ----------
    version : `str`
        Schema version to follow, e.g. ``"11.1"``.
    diaSourceCat, diaObjectCat, diaSrcHistory : `pandas.DataFrame`
        As for `PackageAlertsTask.run`.
    images : `dict`
        Alert cutout field (``"cutoutDifference"``, ...) to the parent image
        as an astropy `~astropy.nddata.NDData`/`~astropy.nddata.CCDData`.
    diaForcedSources, ssSource, mpc_orbits : `pandas.DataFrame`, optional
        Forced-source history and solar-system rows.
    cutout_size, min_size, max_size, use_bbox_size, window_days
        The config values of the same meaning.

    Returns
    -------
    alerts : `list` [`dict`]
        One alert dict per source, ready for ``Schema.store_alerts``.
    """
    definition = packet_schema(version).definition
    named: dict[str, dict] = {}
    _named_types(definition, named)
    field_names = [f["name"] for f in definition["fields"]]

    def has_record(name: str) -> bool:
        return _field_record(definition, named, name) is not None

    def record_of(name: str) -> dict:
        record = _field_record(definition, named, name)
        if record is None:
            raise KeyError(f"alert schema {version} has no {name} record")
        return record

    sources = _plain(diaSourceCat)
    objects = _plain(diaObjectCat)
    history = _plain(diaSrcHistory)
    forced = _plain(diaForcedSources)
    ss_rows = _plain(ssSource)
    orbits = _plain(mpc_orbits)
    orbit_field = next((name for name in _ORBIT_FIELDS if name in field_names), None)
    # each image converted once per visit, as any packager would
    planes = {name: parent_planes(image) for name, image in images.items() if name in field_names}
    id_field = "diaSourceId" if "diaSourceId" in field_names else "alertId"
    source_schema = record_of("diaSource")
    alerts = []
    for row in sources.to_dict("records"):
        source = conform_record(row, source_schema)
        alert: dict[str, Any] = dict.fromkeys(field_names)
        alert[id_field] = source["diaSourceId"]
        alert["diaSource"] = source
        for name in ("observation_reason", "target_name"):
            if name in field_names and not _missing(row.get(name)):
                alert[name] = str(row[name])
        object_id = source.get("diaObjectId")
        time = _time_of(source)
        if object_id not in (None, 0):
            (object_row,) = _rows_of(objects, "diaObjectId", object_id)
            alert["diaObject"] = conform_record(object_row, record_of("diaObject"))
            if history is not None:
                previous = _history(
                    _rows_of(history, "diaObjectId", object_id), time, source["diaSourceId"],
                    source_schema, window_days,
                )
                alert["prvDiaSources"] = previous or None
            if forced is not None and has_record("prvDiaForcedSources"):
                alert["prvDiaForcedSources"] = _history(
                    _rows_of(forced, "diaObjectId", object_id), time, None,
                    record_of("prvDiaForcedSources"), window_days, through_alert=True,
                )
        ss_row = None
        if ss_rows is not None and has_record("ssSource"):
            matches = _rows_of(ss_rows, "diaSourceId", source["diaSourceId"])
            if matches:
                ss_row = matches[0]
                alert["ssSource"] = conform_record(ss_row, record_of("ssSource"))
        if orbits is not None and orbit_field is not None:
            orbit_row = _orbit_row(orbits, row, ss_row)
            if orbit_row is not None:
                alert[orbit_field] = conform_record(orbit_row, record_of(orbit_field))
        size = cutout_size
        bbox = source.get("bboxSize")
        if use_bbox_size and bbox is not None:
            size = min(max(int(bbox), min_size), max_size)
        dec = source["dec"] if "dec" in source else source["decl"]
        for field_name, parent in planes.items():
            alert[field_name] = reference_cutout_bytes(parent, source["ra"], dec, size)
        alerts.append(alert)
    return alerts


def _orbit_row(orbits: Any, source_row: dict, ss_row: dict | None) -> dict | None:
    """The orbit of a source: by its ssObjectId, else by its ssSource's designation."""
    if "ssObjectId" in orbits.columns and "ssObjectId" in source_row:
        ss_object = source_row["ssObjectId"]
        if _missing(ss_object):
            return None
        matches = _rows_of(orbits, "ssObjectId", ss_object)
        return matches[0] if matches else None
    if "designation" in orbits.columns and ss_row is not None:
        matches = _rows_of(orbits, "designation", ss_row.get("designation"))
        return matches[0] if matches else None
    return None
