"""What today's Rubin pipeline hands the alert Task, and what its Task would make of it.

Helpers of the compatibility tests (`test_upstream_compat*.py`), written from
lsst/ap_association at 9cbf784 (``diaPipe.py`` around line 766 and
``packageAlerts.py``), sharing no code with alertpack's packet building:

- `diapipe_inputs`: the built-in sample reshaped as ``diaPipe`` passes it:
  catalogs indexed with their index columns kept (``set_index(...,
  drop=False)``), the APDB's 12 x 30-day history window, ``nDiaSources``
  counting history plus the new source, the forced sources preloaded plus
  this visit's, the asteroid with ``diaObjectId`` 0 and ``ssSrc`` carrying
  its orbit as ``MPCORB_*`` columns;
- `write_afw_exposure`: a FITS file laid out as afw writes an Exposure (the
  visit info in the primary header, IMAGE/MASK/VARIANCE inheriting it);
- `upstream_alerts`: the alert dicts upstream's ``PackageAlertsTask.run``
  builds from those catalogs, row by row with pandas as its code does
  (cutouts left out).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.time import Time

from alertpack.reference.alerts import _field_record, _named_types, conform_record, packet_schema

#: the APDB's history window: read_sources_months = 12 months of 30 days
APDB_WINDOW_DAYS = 12 * 30
#: upstream's casts of MPCORB values to float (packageAlerts.makeAlertDict)
_MPCORB_FLOATS = (
    "arc_length_total", "arc_length_sel", "a", "mean_anomaly", "period", "mean_motion", "a_unc",
    "mean_anomaly_unc", "period_unc", "mean_motion_unc", "yarkovsky", "srp", "a1", "a2", "a3",
    "dt", "yarkovsky_unc", "srp_unc", "a1_unc", "a2_unc", "a3_unc", "dt_unc",
    "not_normalized_rms", "earth_moid",
)
_DESIGNATIONS = (
    "designation", "packed_primary_provisional_designation",
    "unpacked_primary_provisional_designation",
)


@dataclass
class DiaPipeInputs:
    """The catalogs of one ``alertPackager.run`` call in ``diaPipe``."""

    diaSourceCat: pd.DataFrame
    diaObjectCat: pd.DataFrame
    diaSrcHistory: pd.DataFrame
    diaForcedSources: pd.DataFrame
    ssSrc: pd.DataFrame
    midpoint_mjd_tai: float
    visit: int
    detector: int


def diapipe_inputs(visit: Any, *, new_objects: int = 2, young_objects: int = 3) -> DiaPipeInputs:
    """The sample ``visit`` as diaPipe passes it (see the module docstring).

    ``new_objects`` objects lose their history (first detections,
    ``nDiaSources`` 1); ``young_objects`` keep their 5 latest sources only
    (``nDiaSources`` 6), so that a forcedSourceHistoryThreshold between
    separates them from the others (about 20).
    """
    midpoint = float(visit.midpointMjdTai)
    sources = visit.diaSourceCat.reset_index(drop=True).copy()
    asteroid = sources["diaSourceId"].isin(visit.ssSource["diaSourceId"])
    sources["diaObjectId"] = sources["diaObjectId"].astype("Int64").mask(asteroid, 0)
    sources["diaObjectId"] = sources["diaObjectId"].astype(np.int64)

    history = visit.diaSrcHistory.reset_index(drop=True)
    history = history[history["midpointMjdTai"] >= midpoint - APDB_WINDOW_DAYS]
    objects = visit.diaObjectCat.reset_index(drop=True).copy()
    object_ids = list(objects["diaObjectId"])
    for object_id in object_ids[:new_objects]:
        history = history[history["diaObjectId"] != object_id]
    for object_id in object_ids[new_objects:new_objects + young_objects]:
        rows = history[history["diaObjectId"] == object_id].sort_values("midpointMjdTai")
        history = history.drop(rows.index[:-5])
    history = history.sort_values(["midpointMjdTai", "diaSourceId"], kind="stable")
    counts = history.groupby("diaObjectId").size()
    objects["nDiaSources"] = (
        objects["diaObjectId"].map(counts).fillna(0).astype(np.int64) + 1
    ).astype(objects["nDiaSources"].dtype)

    forced = visit.diaForcedSources.reset_index(drop=True)
    forced = forced[forced["midpointMjdTai"] >= midpoint - APDB_WINDOW_DAYS]
    preloaded = forced[forced["midpointMjdTai"] < midpoint].sort_values(
        ["midpointMjdTai", "diaForcedSourceId"], kind="stable"
    )
    this_visit = forced[forced["midpointMjdTai"] == midpoint]
    # mergeCatalogs(preloadedDiaForcedSources, diaForcedSources): preloaded rows first
    forced = pd.concat([preloaded, this_visit])

    orbits = visit.mpc_orbits.drop(columns=["id", *_DESIGNATIONS])
    ss_src = visit.ssSource.reset_index(drop=True).copy()
    for column in orbits.columns:
        ss_src[f"MPCORB_{column}"] = orbits[column].to_numpy()[0]

    return DiaPipeInputs(
        diaSourceCat=sources.set_index(["diaObjectId", "band", "diaSourceId"], drop=False),
        diaObjectCat=objects.set_index("diaObjectId", drop=False),
        diaSrcHistory=history.set_index(["diaObjectId", "band", "diaSourceId"], drop=False),
        diaForcedSources=forced.set_index(["diaObjectId", "diaForcedSourceId"], drop=False),
        ssSrc=ss_src,
        midpoint_mjd_tai=midpoint,
        visit=int(sources["visit"].iloc[0]),
        detector=int(sources["detector"].iloc[0]),
    )


def afw_visit_keys(
    visit_id: int, midpoint_mjd_tai: float, *, rotation_deg: float, reason: str, target: str,
    exposure_time_s: float = 30.0,
) -> dict[str, Any]:
    """The primary-header keys afw's setVisitInfoMetadata writes, as afw spells them."""
    return {
        "EXPID": visit_id,
        "EXPTIME": exposure_time_s,
        "DATE-AVG": Time(midpoint_mjd_tai, format="mjd", scale="tai").isot,
        "TIMESYS": "TAI",
        "BORE-ROTANG": rotation_deg,
        "ROTTYPE": "SKY",
        "IDNUM": visit_id,
        "REASON": reason,
        "OBJECT": target,
    }


def write_afw_exposure(path: Path, ccd: Any, primary_keys: dict[str, Any]) -> Path:
    """Write a CCDData (nJy, variance, bit mask with ``MP_*`` planes) as afw writes an Exposure."""
    primary = fits.PrimaryHDU()
    for key, value in primary_keys.items():
        # keys longer than 8 characters are HIERARCH cards, as cfitsio writes them for afw
        primary.header.append(fits.Card(f"HIERARCH {key}" if len(key) > 8 else key, value))
    image_header = ccd.wcs.to_header(relax=True)
    image_header["INHERIT"] = True
    image_header["BUNIT"] = "nJy"
    mask_header = fits.Header({"INHERIT": True})
    for key, value in ccd.meta.items():
        if str(key).startswith("MP_"):
            mask_header[f"HIERARCH {key}" if len(key) > 8 else key] = value
    planes = [
        fits.ImageHDU(np.asarray(ccd.data, np.float32), image_header, name="IMAGE"),
        fits.ImageHDU(np.asarray(ccd.mask, np.int32), mask_header, name="MASK"),
        fits.ImageHDU(np.asarray(ccd.uncertainty.array, np.float32),
                      fits.Header({"INHERIT": True}), name="VARIANCE"),
    ]
    fits.HDUList([primary, *planes]).writeto(path)
    return path


def packed_designation(ss_object_id: int) -> str:
    """An ssObjectId's MPC packed designation: its bytes, big-endian, NULs dropped."""
    return int(ss_object_id).to_bytes(8, "big").replace(b"\0", b"").decode("ascii")


def upstream_alerts(
    version: str,
    inputs: DiaPipeInputs,
    *,
    observation_reason: str,
    target_name: str,
    doRunForcedMeasurement: bool = True,
    forcedSourceHistoryThreshold: int = 0,
) -> dict[int, dict[str, Any]]:
    """diaSourceId -> the alert upstream's run builds (its loop and makeAlertDict), at Avro
    precision (serialized and read back with lsst.alert.packet); cutouts `None`."""
    schema = packet_schema(version)
    named: dict[str, dict] = {}
    _named_types(schema.definition, named)

    def record(field_name: str) -> dict:
        found = _field_record(schema.definition, named, field_name)
        assert found is not None, field_name
        return found

    # as upstream: cast to object, ssSrc indexed on diaSourceId
    sources = inputs.diaSourceCat.astype("object")
    objects = inputs.diaObjectCat.astype("object")
    history = inputs.diaSrcHistory.astype("object")
    forced_all = inputs.diaForcedSources.astype("object")
    ss_src = inputs.ssSrc.set_index("diaSourceId").astype("object")

    alerts = {}
    for source_index, source in sources.iterrows():
        alert_id = int(source["diaSourceId"])
        object_id = source_index[0]
        ss_source = dia_object = previous = forced = None
        if object_id == 0:
            ss_source = ss_src.loc[[alert_id]].to_dict("records")[0]
        else:
            dia_object = objects.loc[object_id]
            if dia_object["nDiaSources"] > 1:
                previous = history.loc[object_id]
            wanted = (doRunForcedMeasurement
                      and dia_object["nDiaSources"] >= forcedSourceHistoryThreshold)
            if wanted and object_id in forced_all.diaObjectId:
                forced = forced_all.loc[object_id]
            else:
                forced = forced_all.loc[[]]
        alert: dict[str, Any] = dict.fromkeys(f["name"] for f in schema.definition["fields"])
        alert["diaSourceId"] = alert_id
        alert["observation_reason"] = observation_reason or None
        alert["target_name"] = target_name or None
        alert["diaSource"] = conform_record(source.to_dict(), record("diaSource"))
        alert["prvDiaSources"] = None if previous is None else [
            conform_record(row, record("prvDiaSources")) for row in previous.to_dict("records")
        ]
        alert["prvDiaForcedSources"] = None if forced is None else [
            conform_record(row, record("prvDiaForcedSources"))
            for row in forced.to_dict("records")
        ]
        if dia_object is not None:
            alert["diaObject"] = conform_record(dia_object.to_dict(), record("diaObject"))
        if ss_source is not None:
            orbit = {key[7:]: value for key, value in ss_source.items() if key[:7] == "MPCORB_"}
            for key in _MPCORB_FLOATS:
                if orbit.get(key) is not None:
                    orbit[key] = float(orbit[key])
            if "packed_primary_provisional_designation" not in orbit:
                orbit["designation"] = ss_source["designation"]
                orbit["packed_primary_provisional_designation"] = packed_designation(
                    ss_source["ssObjectId"]
                )
                orbit["unpacked_primary_provisional_designation"] = ss_source["designation"]
            orbit["id"] = 0
            ss_row = {key: value for key, value in ss_source.items() if key[:7] != "MPCORB_"}
            ss_row["diaSourceId"] = alert_id
            alert["ssSource"] = conform_record(ss_row, record("ssSource"))
            alert["mpc_orbits"] = conform_record(orbit, record("mpc_orbits"))
        alerts[alert_id] = schema.deserialize(schema.serialize(alert))
    return alerts
