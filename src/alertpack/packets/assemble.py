"""A visit's validated catalogs, and for every alert where each of its values comes from.

`prepare_visit` conforms the catalogs of one `run` to the schema once
(`alertpack.packets.conform`) and derives what the alerts need besides:
each source's ccdVisitId (for the file name), the orbit row of each
solar-system source. `build_alert_parts` then says, field by field, which
rows each alert carries (`~alertpack.packets.tables.AlertParts`): its
DiaSource, its DiaObject, its previous sources within the history window
(`group_history`, one sort for the whole visit), its cutouts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from alertpack.errors import InputError, UnsupportedSchemaError
from alertpack.packets.columns import CatalogColumns
from alertpack.packets.conform import conform_table
from alertpack.packets.tables import AlertParts, ColumnTable, RecordList, RecordRef, ScalarColumn
from alertpack.schema import AlertSchema
from alertpack.visit_inputs import VisitInputs

__all__ = [
    "VisitCatalogs",
    "build_alert_parts",
    "group_history",
    "prepare_visit",
    "time_column",
]

_TIME_COLUMNS = ("midpointMjdTai", "midPointTai")


def time_column(table: ColumnTable) -> str:
    """Name of the exposure-midpoint column of a table (it changed across versions)."""
    for name in _TIME_COLUMNS:
        if name in table.columns:
            return name
    raise InputError(f"{table.name} has no exposure-time column ({' or '.join(_TIME_COLUMNS)})")


def group_history(
    alert_object_ids: npt.NDArray[np.int64],
    alert_times: npt.NDArray[np.float64],
    alert_source_ids: npt.NDArray[np.int64] | None,
    history: ColumnTable,
    *,
    id_column: str | None,
    window_days: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
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
    ccd_visit_ids: npt.NDArray[np.int64]
    objects: ColumnTable | None = None
    history: ColumnTable | None = None
    forced: ColumnTable | None = None
    ss_sources: ColumnTable | None = None
    orbits: ColumnTable | None = None
    observation_reason: npt.NDArray[np.object_] | None = None
    target_name: npt.NDArray[np.object_] | None = None
    #: orbit row per alert (-1: none), when orbits are given
    orbit_rows: npt.NDArray[np.int64] | None = None
    #: solar-system sources whose orbit is null because no orbit row matches
    n_unmatched_orbits: int = 0

    @property
    def n_alerts(self) -> int:
        """One alert per DiaSource."""
        return self.sources.n_rows


# the one catalog column that names files whatever the schema: validated as a required long
_CCD_VISIT_RECORD: Mapping[str, Any] = {
    "type": "record",
    "name": "ccdVisit",
    "namespace": "alertpack",
    "fields": [{"name": "ccdVisitId", "type": "long"}],
}


def _ccd_visit_ids(
    sources: CatalogColumns, source_ids: npt.NDArray[np.int64], id_bits: int | None
) -> npt.NDArray[np.int64]:
    """Per-source ccdVisitId: the catalog's column, else the top bits of diaSourceId.

    The column is checked by the rules of every column (`conform_table`, as a
    required ``long``), also where the schema has no ccdVisitId field: it
    names the alert files.
    """
    if "ccdVisitId" in sources:
        table = conform_table(sources, _CCD_VISIT_RECORD, catalog="diaSourceCat")
        ids: npt.NDArray[np.int64] = table.columns["ccdVisitId"]
        return ids
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
) -> npt.NDArray[np.object_] | None:
    if override is not None:
        return np.full(sources.n_rows, override, dtype=object)
    if column in sources:
        return sources.strings(column)
    return None


def prepare_visit(
    schema: AlertSchema, inputs: VisitInputs, *, require_ccd_visit: bool = True
) -> VisitCatalogs:
    """Validate a visit's catalogs once and conform them to ``schema``.

    Parameters
    ----------
    schema : `AlertSchema`
        The alert schema the catalogs are conformed to.
    inputs : `VisitInputs`
        The run's catalogs, id bits and scheduler fields (its images are not
        read here).
    require_ccd_visit : `bool`, optional
        With False, sources whose ccdVisitId cannot be derived get -1
        instead of an error (for single alerts that go to no file).

    Notes
    -----
    Catalogs for which the schema has no alert field (e.g. forced sources in
    a schema without ``prvDiaForcedSources``) are ignored.
    """
    source_record = schema.record("diaSource")
    if source_record is None:
        raise UnsupportedSchemaError(f"alert schema {schema.version} has no diaSource record")
    flat_sources = CatalogColumns(inputs.diaSourceCat, "diaSourceCat")
    sources = conform_table(flat_sources, source_record, catalog="diaSourceCat")
    _check_unique(sources, "diaSourceId", "diaSourceCat")
    try:
        ccd_visit_ids = _ccd_visit_ids(
            flat_sources, sources.columns["diaSourceId"], inputs.ccdExposureIdBits
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
            flat_sources, "observation_reason", inputs.observation_reason
        ),
        target_name=_optional_strings(flat_sources, "target_name", inputs.target_name),
    )
    optional_inputs = {
        "objects": (inputs.diaObjectCat, "diaObject", "diaObjectCat"),
        "history": (inputs.diaSrcHistory, "prvDiaSources", "diaSrcHistory"),
        "forced": (inputs.diaForcedSources, "prvDiaForcedSources", "diaForcedSources"),
        "ss_sources": (inputs.ssSource, "ssSource", "ssSource"),
        "orbits": (inputs.mpc_orbits, _orbit_field(schema), "mpc_orbits"),
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
        catalogs.orbit_rows = _orbit_rows(catalogs, catalogs.orbits)
        catalogs.n_unmatched_orbits = int(
            np.count_nonzero(_solar_system_sources(catalogs) & (catalogs.orbit_rows < 0))
        )
    return catalogs


def _solar_system_sources(catalogs: VisitCatalogs) -> npt.NDArray[np.bool_]:
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


def _match_rows(keys: npt.NDArray[Any], table_keys: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
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
        orbit_rows = catalogs.orbit_rows
        if orbit_rows is None:
            orbit_rows = _orbit_rows(catalogs, catalogs.orbits)
        parts.fields[orbit_field] = RecordRef(catalogs.orbits, orbit_rows)

    for name, values in (
        ("observation_reason", catalogs.observation_reason),
        ("target_name", catalogs.target_name),
    ):
        if values is not None and name in schema.field_names:
            nulls = np.equal(values, np.array(None, dtype=object))
            parts.fields[name] = ScalarColumn(values, nulls if nulls.any() else None)
    for field_name, blobs in cutouts.items():
        if field_name in schema.field_names:
            parts.fields[field_name] = list(blobs)
    return parts


def _orbit_rows(catalogs: VisitCatalogs, orbits: ColumnTable) -> npt.NDArray[np.int64]:
    """Orbit row in ``orbits`` (the visit's) for each alert, through its solar-system object."""
    sources = catalogs.sources
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
