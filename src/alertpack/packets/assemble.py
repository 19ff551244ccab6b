"""A visit's validated catalogs, and for every alert where each of its values comes from.

`prepare_visit` conforms the catalogs of one `run` to the schema once
(`alertpack.packets.conform`) and derives what the alerts need besides:
each source's file key (ccdVisitId, or visit and detector), the orbit row of
each solar-system source (from an orbit table, or from the ``MPCORB_*``
columns of the solar-system sources: `alertpack.packets.mpcorb`).
`build_alert_parts` then says, field by field, which rows each alert carries
(`~alertpack.packets.tables.AlertParts`): its DiaSource, its DiaObject, its
history within the window (`group_history`, one sort for the whole visit),
its cutouts.

History rules
-------------
``prvDiaSources``: the object's sources strictly before the alert's, never
itself, null when there is none (a first detection, as LSST's packageAlerts).
``prvDiaForcedSources``: the object's forced measurements up to and
including the alert's exposure (this visit's measurement too, as today's
Rubin pipeline sends it: `SAME_EXPOSURE_DAYS`), an empty list when there is
none, when forced measurement was not run (``doRunForcedMeasurement``), or
when the object has fewer than ``forcedSourceHistoryThreshold`` sources.
Both: within ``window_days`` before the alert, oldest first; null for a source
without an object (``diaObjectId`` 0 or null). Scheduler fields: an empty
text is null.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from alertpack.errors import InputError, UnsupportedSchemaError
from alertpack.packets.batch import visit_detector_stem
from alertpack.packets.columns import CatalogColumns
from alertpack.packets.conform import conform_table
from alertpack.packets.mpcorb import orbits_from_mpcorb
from alertpack.packets.tables import AlertParts, ColumnTable, RecordList, RecordRef, ScalarColumn
from alertpack.schema import AlertSchema
from alertpack.visit_inputs import VisitInputs

__all__ = [
    "FILE_NAMINGS",
    "SAME_EXPOSURE_DAYS",
    "VisitCatalogs",
    "absent_catalogs",
    "build_alert_parts",
    "group_history",
    "prepare_visit",
    "source_ccd_visit_ids",
    "time_column",
]

_TIME_COLUMNS = ("midpointMjdTai", "midPointTai")

#: a forced measurement this close to an alert's time (days; 1 s) is of the alert's own
#: exposure: pipelines store the midpoint of one exposure in each table, rounded their way
SAME_EXPOSURE_DAYS = 1.0 / 86400.0

#: how alert files are named: by ccdVisitId (the seed's Task), by visit and detector (today's)
FILE_NAMINGS = ("ccdVisitId", "visit_detector")


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
    through_alert: bool = False,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each alert's history rows, selected and ordered once for the whole visit.

    The history is sorted once by (object, time); every alert then takes its
    object's block, keeping rows strictly earlier than the alert's source and
    no older than ``window_days`` (``time - window_days <= t < time``), never
    the alert's own source. With ``through_alert`` the rows of the alert's
    own exposure are kept too (``t <= time + SAME_EXPOSURE_DAYS``).

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
    owner_times = alert_times[owner]
    newest = (
        candidate_times <= owner_times + SAME_EXPOSURE_DAYS
        if through_alert else candidate_times < owner_times
    )
    keep = (candidate_times >= owner_times - window_days) & newest
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
    #: per source; -1 where it cannot be derived (files named by visit and detector)
    ccd_visit_ids: npt.NDArray[np.int64]
    #: how the alert files are named (`FILE_NAMINGS`)
    file_naming: str = "ccdVisitId"
    #: per source, with ``file_naming="visit_detector"``
    visits: npt.NDArray[np.int64] | None = None
    detectors: npt.NDArray[np.int64] | None = None
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
    #: catalog -> {schema field: the column read for it under another name}
    renamed: dict[str, dict[str, str]] = field(default_factory=dict)
    #: False: forced measurement was not run for the visit (every forced history is [])
    run_forced_measurement: bool = True
    #: objects with fewer nDiaSources get an empty forced history
    forced_history_threshold: int = 0

    @property
    def n_alerts(self) -> int:
        """One alert per DiaSource."""
        return self.sources.n_rows


def source_file_stems(catalog: Any, id_bits: int | None, file_naming: str) -> list[str]:
    """The alert files (names without ``.avro``) a run of this DiaSource catalog writes.

    As `prepare_visit` and `~alertpack.packets.batch.AlertBatch.by_file` name
    them: ``{ccdVisitId}`` or ``{visit}_{detector}`` (``file_naming``). For
    checking, before a run, which files it will write.

    Raises
    ------
    InputError
        The catalog lacks what the naming needs (see `source_ccd_visit_ids`).
    """
    if file_naming == "visit_detector":
        visits, detectors = _visit_detector(CatalogColumns(catalog, "diaSourceCat"))
        pairs = set(zip(visits.tolist(), detectors.tolist(), strict=True))
        return [visit_detector_stem(visit, detector) for visit, detector in sorted(pairs)]
    ccd_visit_ids = set(source_ccd_visit_ids(catalog, id_bits).tolist())
    return [str(ccd_visit_id) for ccd_visit_id in sorted(ccd_visit_ids)]


def source_ccd_visit_ids(catalog: Any, id_bits: int | None) -> npt.NDArray[np.int64]:
    """The ccdVisitId of every source of a DiaSource catalog, as a run derives them.

    From the ``ccdVisitId`` column, else the top ``id_bits`` bits of
    ``diaSourceId`` (what names the alert files: `prepare_visit`). For
    checking, before a run, which files it will write.

    Raises
    ------
    InputError
        No ``ccdVisitId`` and no ``diaSourceId`` column, or neither column
        nor ``id_bits``.
    """
    sources = CatalogColumns(catalog, "diaSourceCat")
    if "ccdVisitId" not in sources and "diaSourceId" not in sources:
        raise InputError("diaSourceCat has neither a ccdVisitId nor a diaSourceId column")
    source_ids = (
        sources.to_numpy("diaSourceId", np.int64) if "diaSourceId" in sources
        else np.zeros(sources.n_rows, dtype=np.int64)
    )
    return _ccd_visit_ids(sources, source_ids, id_bits)


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
        # No ccdVisitId guessed from visit and detector: the packing differs between
        # cameras (the sample packs visit*256+detector), and a guessed name would put
        # alerts in files no one looks for. Files named {visit}_{detector} need none.
        raise InputError(
            "diaSourceCat has no ccdVisitId column and ccdExposureIdBits was not given, so "
            "the alert file name ({ccdVisitId}.avro) is unknown; pass ccdExposureIdBits "
            "(--id-bits: the bits of the exposure id packed into diaSourceId) or add a "
            "ccdVisitId column, or name the files {visit}_{detector}.avro from the visit and "
            "detector columns (config alertFileNaming=visit_detector)"
        )
    if not 0 < id_bits < 64:
        raise InputError(f"ccdExposureIdBits={id_bits} must be between 1 and 63")
    return (source_ids.astype(np.uint64) >> np.uint64(64 - id_bits)).astype(np.int64)


def _visit_detector(
    sources: CatalogColumns,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per-source visit and detector, for files named ``{visit}_{detector}.avro``."""
    arrays = []
    for column in ("visit", "detector"):
        if column not in sources:
            raise InputError(
                f"diaSourceCat has no {column} column, which alert files named "
                "{visit}_{detector}.avro need (config alertFileNaming); add the visit and "
                "detector columns, or name the files {ccdVisitId}.avro "
                "(alertFileNaming=ccdVisitId, with ccdExposureIdBits or a ccdVisitId column)"
            )
        _, nulls = sources.column(column)
        if nulls.any():
            raise InputError(
                f"diaSourceCat has a null {column} in row {int(np.flatnonzero(nulls)[0])}; "
                "alert files named {visit}_{detector}.avro need it in every row"
            )
        arrays.append(sources.to_numpy(column, np.int64))
    return arrays[0], arrays[1]


def _optional_strings(
    sources: CatalogColumns, column: str, override: str | None
) -> npt.NDArray[np.object_] | None:
    if override is not None:
        return np.full(sources.n_rows, override, dtype=object)
    if column in sources:
        return sources.strings(column)
    return None


def fill_scheduler_fields(
    catalogs: VisitCatalogs, observation_reason: str | None, target_name: str | None
) -> None:
    """Give the scheduler fields the catalogs and arguments left unset these values.

    The core passes what the difference image's headers say (afw's
    ``REASON`` and ``OBJECT``), as today's Rubin pipeline takes them from
    the exposure's visit info; a field already set is kept.
    """
    n_alerts = catalogs.n_alerts
    if catalogs.observation_reason is None and observation_reason is not None:
        catalogs.observation_reason = np.full(n_alerts, observation_reason, dtype=object)
    if catalogs.target_name is None and target_name is not None:
        catalogs.target_name = np.full(n_alerts, target_name, dtype=object)


def prepare_visit(
    schema: AlertSchema,
    inputs: VisitInputs,
    *,
    require_ccd_visit: bool = True,
    file_naming: str = "ccdVisitId",
) -> VisitCatalogs:
    """Validate a visit's catalogs once and conform them to ``schema``.

    Parameters
    ----------
    schema : `AlertSchema`
        The alert schema the catalogs are conformed to.
    inputs : `VisitInputs`
        The run's catalogs, id bits, scheduler fields and forced-measurement
        settings (its images are not read here).
    require_ccd_visit : `bool`, optional
        With False, sources whose file key cannot be derived get -1
        instead of an error (for single alerts that go to no file).
    file_naming : `str`, optional
        ``"ccdVisitId"``: each source's ccdVisitId is needed (column or
        ``ccdExposureIdBits``); ``"visit_detector"``: its ``visit`` and
        ``detector`` columns are (the ccdVisitId is then -1 where unknown).

    Raises
    ------
    InputError
        A catalog that does not conform, or the file key missing.

    Notes
    -----
    Catalogs for which the schema has no alert field (e.g. forced sources in
    a schema without ``prvDiaForcedSources``) are ignored.
    """
    source_record = schema.record("diaSource")
    if source_record is None:
        raise UnsupportedSchemaError(f"alert schema {schema.version} has no diaSource record")
    if file_naming not in FILE_NAMINGS:
        raise InputError(f"file_naming={file_naming!r} is not one of {', '.join(FILE_NAMINGS)}")
    flat_sources = CatalogColumns(inputs.diaSourceCat, "diaSourceCat")
    sources = conform_table(flat_sources, source_record, catalog="diaSourceCat")
    _check_unique(sources, "diaSourceId", "diaSourceCat")
    visits = detectors = None
    if file_naming == "visit_detector":
        visits, detectors = _visit_detector(flat_sources)
    try:
        ccd_visit_ids = _ccd_visit_ids(
            flat_sources, sources.columns["diaSourceId"], inputs.ccdExposureIdBits
        )
    except InputError:
        if require_ccd_visit and file_naming == "ccdVisitId":
            raise
        ccd_visit_ids = np.full(sources.n_rows, -1, dtype=np.int64)
    catalogs = VisitCatalogs(
        schema=schema,
        sources=sources,
        ccd_visit_ids=ccd_visit_ids,
        file_naming=file_naming,
        visits=visits,
        detectors=detectors,
        observation_reason=_optional_strings(
            flat_sources, "observation_reason", inputs.observation_reason
        ),
        target_name=_optional_strings(flat_sources, "target_name", inputs.target_name),
        run_forced_measurement=bool(inputs.doRunForcedMeasurement),
        forced_history_threshold=_threshold(inputs.forcedSourceHistoryThreshold),
    )
    if sources.renamed:
        catalogs.renamed["diaSourceCat"] = dict(sources.renamed)
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
        if table.renamed:
            catalogs.renamed[catalog] = dict(table.renamed)
    if catalogs.objects is not None:
        _check_unique(catalogs.objects, "diaObjectId", "diaObjectCat")
    if catalogs.orbits is None and inputs.mpc_orbits is None:
        _orbits_from_ss_sources(catalogs, inputs)
    if catalogs.orbits is not None:
        if catalogs.orbit_rows is None:
            catalogs.orbit_rows = _orbit_rows(catalogs, catalogs.orbits)
        catalogs.n_unmatched_orbits = int(
            np.count_nonzero(_solar_system_sources(catalogs) & (catalogs.orbit_rows < 0))
        )
    if catalogs.forced_history_threshold > 0 and catalogs.forced is not None:
        if catalogs.objects is None or "nDiaSources" not in catalogs.objects.columns:
            raise InputError(
                f"forcedSourceHistoryThreshold={catalogs.forced_history_threshold} needs each "
                "DiaObject's nDiaSources, but diaObjectCat has no nDiaSources column; add it "
                "or pass forcedSourceHistoryThreshold=0"
            )
    return catalogs


def absent_catalogs(catalogs: VisitCatalogs) -> dict[str, str]:
    """What the alerts of a visit lack because a catalog was not given, or lacks rows.

    Only what the schema has a field for and the sources need: no objects
    for sources with a diaObjectId, no history, no forced photometry, no
    ssSource row for sources with an ssObjectId, no orbits for solar-system
    sources. (Orbits given but unmatched are counted in `n_unmatched_orbits`.)

    Returns
    -------
    absent : `dict` [`str`, `str`]
        Catalog (``"diaObjectCat"``, ...) -> one sentence saying what is
        null because of it, for the run's summary.
    """
    schema, sources = catalogs.schema, catalogs.sources
    names = schema.field_names
    absent: dict[str, str] = {}
    object_ids = sources.columns["diaObjectId"]
    with_object = object_ids != 0
    object_nulls = sources.nulls.get("diaObjectId")
    if object_nulls is not None:
        with_object &= ~object_nulls
    if catalogs.objects is None and "diaObject" in names and with_object.any():
        absent["diaObjectCat"] = (
            f"no diaObjectCat: the diaObject of {int(with_object.sum())} alert(s) (sources "
            "with a diaObjectId) is null"
        )
    if catalogs.history is None and "prvDiaSources" in names and with_object.any():
        absent["diaSrcHistory"] = "no diaSrcHistory: prvDiaSources is null in every alert"
    if catalogs.forced is None and "prvDiaForcedSources" in names and with_object.any():
        absent["diaForcedSources"] = (
            "no diaForcedSources: prvDiaForcedSources is null in every alert"
        )
    if "ssSource" in names and "ssObjectId" in sources.columns:
        known = sources.columns["ssObjectId"] != 0
        ss_nulls = sources.nulls.get("ssObjectId")
        if ss_nulls is not None:
            known &= ~ss_nulls
        if catalogs.ss_sources is not None:
            known &= _match_rows(
                sources.columns["diaSourceId"], catalogs.ss_sources.columns["diaSourceId"]
            ) < 0
        if known.any():
            what = "no ssSource catalog" if catalogs.ss_sources is None else "no ssSource row"
            absent["ssSource"] = (
                f"{what} for {int(known.sum())} source(s) with an ssObjectId: their ssSource "
                "is null"
            )
    solar_system = _solar_system_sources(catalogs)
    if catalogs.orbits is None and _orbit_field(schema) is not None and solar_system.any():
        absent["mpc_orbits"] = (
            f"no mpc_orbits: the orbit of {int(solar_system.sum())} solar-system source(s) "
            "is null"
        )
    return absent


def _threshold(value: Any) -> int:
    if isinstance(value, bool) or not float(value).is_integer():
        raise InputError(
            f"forcedSourceHistoryThreshold={value!r} is not a whole number of DiaSources"
        )
    return int(value)


def _orbits_from_ss_sources(catalogs: VisitCatalogs, inputs: VisitInputs) -> None:
    """Orbits from the ``MPCORB_*`` columns of ``ssSource``, one per row, when it has them."""
    orbit_field = _orbit_field(catalogs.schema)
    record = catalogs.schema.record(orbit_field) if orbit_field else None
    if inputs.ssSource is None or record is None or catalogs.ss_sources is None:
        return
    frame = orbits_from_mpcorb(inputs.ssSource, record, "ssSource")
    if frame is None:
        return
    catalogs.orbits = conform_table(
        CatalogColumns(frame, "ssSource MPCORB_* columns"), record,
        catalog="ssSource MPCORB_* columns",
    )
    # orbit row i belongs to ssSource row i: each alert's is its ssSource's
    catalogs.orbit_rows = _match_rows(
        catalogs.sources.columns["diaSourceId"], catalogs.ss_sources.columns["diaSourceId"]
    )


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
    keys = {
        "orbits": ("ssObjectId", "designation"),
        "ss_sources": ("diaSourceId",),
        "objects": ("nDiaSources",),  # forcedSourceHistoryThreshold, in any schema version
    }
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
        forced = field_name == "prvDiaForcedSources"
        offsets, index = group_history(
            object_ids, alert_times, source_ids, table,
            id_column=id_column, window_days=window_days, through_alert=forced,
        )
        present = ~no_object
        if forced:
            offsets, index = _without_forced_rows(
                offsets, index, ~_forced_history_wanted(catalogs, object_ids, no_object)
            )
        else:
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
            # as today's Rubin pipeline: a scheduler field left empty is null
            nulls = np.equal(values, np.array(None, dtype=object)) | np.equal(values, "")
            parts.fields[name] = ScalarColumn(values, nulls if nulls.any() else None)
    for field_name, blobs in cutouts.items():
        if field_name in schema.field_names:
            parts.fields[field_name] = list(blobs)
    return parts


def _forced_history_wanted(
    catalogs: VisitCatalogs, object_ids: npt.NDArray[np.int64], no_object: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Per alert: does it carry forced photometry (measurement run, object above the threshold)?"""
    n_alerts = len(object_ids)
    if not catalogs.run_forced_measurement:
        return np.zeros(n_alerts, dtype=bool)
    threshold = catalogs.forced_history_threshold
    if threshold <= 0 or catalogs.objects is None:
        return np.ones(n_alerts, dtype=bool)
    objects = catalogs.objects
    rows = _match_rows(object_ids, objects.columns["diaObjectId"])
    counts = np.asarray(objects.columns["nDiaSources"], dtype=np.int64)
    count_nulls = objects.nulls.get("nDiaSources")
    if count_nulls is not None:
        counts = np.where(count_nulls, 0, counts)  # an unknown count passes no threshold
    per_alert = np.where(rows >= 0, counts[np.clip(rows, 0, None)] if len(counts) else 0, 0)
    return (per_alert >= threshold) | no_object


def _without_forced_rows(
    offsets: npt.NDArray[np.int64], index: npt.NDArray[np.int64], drop: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The CSR history with the rows of the ``drop`` alerts removed (their lists empty)."""
    if not drop.any():
        return offsets, index
    counts = np.diff(offsets)
    keep = np.repeat(~drop, counts)
    kept_counts = np.where(drop, 0, counts)
    return np.concatenate(([0], np.cumsum(kept_counts))).astype(np.int64), index[keep]


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
