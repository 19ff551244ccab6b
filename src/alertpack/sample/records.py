"""Filling the alert schema's records: simulated values to typed DataFrames.

Fields the simulation knows are taken from it (under their current-schema
names; older names are mapped); the others are drawn plausibly from their
name and type.

Conventions
-----------
Catalog layout
    ``index_layout="multi"`` (default) indexes DiaSources on
    ``["diaObjectId", <band>, "diaSourceId"]``, forced sources on
    ``["diaObjectId", "diaForcedSourceId"]`` and DiaObjects on
    ``"diaObjectId"``, keeping those as columns too (``drop=False``, as the
    LSST DiaPipelineTask does), so every schema field is a column in either
    layout. ``index_layout="columns"`` gives a plain RangeIndex.
dtypes
    Avro ``long`` int64, ``int`` int32, ``float`` float32, ``double``
    float64, ``boolean`` bool, ``string`` str. A nullable integer column
    that holds nulls uses the pandas masked dtype (``Int64``/``Int32``);
    nulls of floats are NaN, of strings missing values. A
    ``timestamp-micros`` long is int64 microseconds since 1970-01-01 UTC.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.packets.avro_types import AVRO_DTYPES, avro_field_type
from alertpack.sample.ids import _MJD_UNIX_EPOCH, _mjd_to_unix_micros
from alertpack.sample.scene import _ASTEROID, _DIPOLE, EXPOSURE_TIME_S, PIXEL_SCALE_ARCSEC
from alertpack.schema import current_field_name, load_schema

if TYPE_CHECKING:
    import pandas as pd


class _Filler:
    """Fills one schema record's columns from known values or plausible draws.

    ``known`` maps current-schema names to arrays; names missing from it are
    drawn from the field's name and type (errors positive, covariances small,
    flags mostly False, positions near the row's ra/dec, times near its
    midpoint, ...), a few nullable ones partly null.
    """

    def __init__(self, known: dict[str, Any], n_rows: int, rng: np.random.Generator) -> None:
        self.known = known
        self.n = n_rows
        self.rng = rng

    def column(self, avro_field: dict[str, Any]) -> Any:
        import pandas as pd  # on first use: importing alertpack.sample stays light (numpy only)

        name = avro_field["name"]
        base, nullable, logical = avro_field_type(avro_field["type"])
        current = current_field_name(name)
        value = self.known.get(name, self.known.get(current))
        if value is None:
            value = self._draw(current, base, nullable)
        if callable(value):
            value = value()
        value = np.broadcast_to(np.asarray(value), (self.n,)) if np.ndim(value) == 0 else value
        if logical == "timestamp-micros":
            value = _as_micros(value)
        if base == "string":
            return pd.Series(np.asarray(value, dtype=object), dtype=_string_dtype())
        if base in ("long", "int"):
            return _integer_series(value, base, nullable, name)
        if base == "boolean":
            return pd.Series(np.asarray(value, dtype=bool))
        if base == "bytes":
            return pd.Series(np.asarray(value, dtype=object))
        array = np.asarray(value, dtype=np.float64)
        if not nullable and np.isnan(array).any():
            array = np.nan_to_num(array, nan=0.0)
        return pd.Series(array.astype(AVRO_DTYPES[base]))

    def _draw(self, name: str, base: str, nullable: bool) -> np.ndarray:
        n, rng = self.n, self.rng
        ra = self.known.get("ra")
        dec = self.known.get("dec")
        mjd = self.known.get("midpointMjdTai")
        flux = self.known.get("psfFlux")
        if base == "boolean":
            return rng.random(n) < 0.01
        if base == "string":
            return np.full(n, "", dtype=object)
        if base == "bytes":
            return np.full(n, b"", dtype=object)
        if base in ("long", "int"):
            if name.endswith("Id") or (name.startswith("nearbyObj") and name[-1].isdigit()):
                return np.full(n, np.nan) if nullable else np.zeros(n, np.int64)
            if name == "flags":
                return np.where(rng.random(n) < 0.05, 1 << rng.integers(0, 20, n), 0)
            if "Ndata" in name or name.startswith(("num", "n")):
                return rng.integers(5, 60, n)
            return rng.integers(0, 4, n)
        values = self._draw_float(name, ra, dec, mjd, flux)
        if nullable and not name.startswith(("ra", "dec")):
            values = np.where(rng.random(n) < 0.03, np.nan, values)
        return values

    def _draw_float(self, name, ra, dec, mjd, flux) -> np.ndarray:
        n, rng = self.n, self.rng
        low = name.lower()
        scale = np.abs(flux) if flux is not None else np.full(n, 1000.0)
        if "lcperiodic" in low or "lcnonperiodic" in low or "nearbyobj" in low:
            # Light-curve features and neighbours were never computed.
            return np.full(n, np.nan)
        if name.endswith("_Cov"):
            return rng.normal(0.0, 1e-3, n) * rng.random(n)
        if name.endswith(("Err", "Sigma", "_unc")) or "Err" in name:
            return np.abs(rng.normal(0.05, 0.02, n)) * (scale if "Flux" in name else 1.0) + 1e-6
        if "Chi2" in name:
            return rng.chisquare(30, n)
        if "LnL" in name:
            return -rng.chisquare(30, n) / 2
        if "Flux" in name or "flux" in low:
            return scale * rng.normal(1.0, 0.05, n)
        if name.endswith("Ra") and ra is not None:
            return (ra + rng.normal(0, 0.1, n) / 3600.0) % 360.0
        if name.endswith("Dec") and dec is not None:
            return dec + rng.normal(0, 0.1, n) / 3600.0
        if "Angle" in name or "Lon" in name:
            return rng.uniform(-90.0, 90.0, n)
        if "Length" in name or "Dist" in name:
            return np.abs(rng.normal(0.3, 0.2, n))
        if ("Mjd" in name or "Tai" in name or "Date" in name) and mjd is not None:
            return mjd - rng.uniform(0, 30, n)
        if name.startswith(("pm", "parallax")):
            return rng.normal(0.0, 2.0, n)
        if "H" in name and len(name) <= 4:
            return rng.uniform(14, 19, n)
        if "G" in name and len(name) <= 6:
            return np.full(n, 0.15)
        if "extendedness" in low or "reliability" in low or "spurious" in low:
            return rng.random(n)
        return rng.normal(0.0, 1.0, n)


def _string_dtype() -> Any:
    """pandas' default string dtype: ``str`` on pandas 3, object before."""
    import pandas as pd  # on first use: importing alertpack.sample stays light (numpy only)

    return pd.Series(["x"]).dtype


def _as_micros(value: Any) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    # MJD values become microseconds since 1970; unix micros pass through.
    with np.errstate(invalid="ignore"):
        is_mjd = np.nanmax(np.abs(array), initial=0.0) < 1e6
    if is_mjd:
        return np.where(np.isnan(array), np.nan, (array - _MJD_UNIX_EPOCH) * 86400e6).round()
    return array


def _integer_series(value: Any, base: str, nullable: bool, name: str) -> pd.Series:
    import pandas as pd  # on first use: importing alertpack.sample stays light (numpy only)

    dtype = AVRO_DTYPES[base]
    array = np.asarray(value)
    nulls = np.asarray(pd.isna(array), dtype=bool) if array.dtype.kind in "fO" else None
    if nulls is not None and nulls.any():
        if not nullable:
            raise AssertionError(f"sample bug: non-nullable {name} has nulls")
        # Masked dtype (Int64/Int32): object input keeps int64 ids exact.
        filled = np.where(nulls, 0, array)
        filled = np.rint(filled.astype(np.float64)) if filled.dtype.kind == "f" else filled
        return pd.Series(pd.arrays.IntegerArray(filled.astype(dtype), nulls))
    if array.dtype.kind == "f":
        array = np.rint(array)
    return pd.Series(array.astype(dtype))


def _frame(record: dict[str, Any] | None, known: dict[str, Any], n: int, rng) -> pd.DataFrame:
    import pandas as pd  # on first use: importing alertpack.sample stays light (numpy only)

    if record is None:
        return pd.DataFrame({name: values for name, values in known.items()})
    filler = _Filler(known, n, rng)
    columns = {f["name"]: filler.column(f) for f in record["fields"]}
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def _diasource_known(rows: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Current-schema DiaSource values derived from the simulated quantities."""
    n = len(rows["ra"])
    flux, err, snr = rows["psfFlux"], rows["psfFluxErr"], rows["snr"]
    psf_sigma = rows["psf_sigma_px"]
    pos_err_px = np.sqrt(2.0) * psf_sigma / np.maximum(snr, 1.0)
    pos_err_deg = pos_err_px * PIXEL_SCALE_ARCSEC / 3600.0
    psf_moment = (psf_sigma * PIXEL_SCALE_ARCSEC) ** 2
    aperture_err = err * np.sqrt(np.pi * 12**2 / (4 * np.pi * psf_sigma**2))
    kind = rows.get("kind", np.zeros(n, np.int8))
    is_dipole = rows.get("isDipole", kind == _DIPOLE)
    dipole = rows.get("dipoleFitAttempted", is_dipole)
    star = rows.get("star_flux", np.zeros(n))
    trail_length = np.abs(rng.normal(0.0, 0.15, n))
    nan = np.full(n, np.nan)
    processed = rows["midpointMjdTai"] + rng.uniform(60.0, 300.0, n) / 86400.0
    known: dict[str, Any] = {
        "diaSourceId": rows["diaSourceId"],
        "visit": rows["visit"],
        "detector": rows["detector"],
        "ccdVisitId": rows["ccdVisitId"],
        "diaObjectId": rows["diaObjectId"],
        "ssObjectId": rows.get("ssObjectId", nan),
        "parentDiaSourceId": nan,
        "midpointMjdTai": rows["midpointMjdTai"],
        "exposureTime": np.full(n, EXPOSURE_TIME_S),
        "ra": rows["ra"],
        "dec": rows["dec"],
        "raErr": pos_err_deg,
        "decErr": pos_err_deg,
        "ra_dec_Cov": 0.05 * pos_err_deg**2 * rng.normal(0, 1, n),
        "x": rows["x"],
        "y": rows["y"],
        "xErr": pos_err_px,
        "yErr": pos_err_px,
        "x_y_Cov": 0.05 * pos_err_px**2 * rng.normal(0, 1, n),
        "centroid_flag": rng.random(n) < 0.01,
        "apFlux": flux * 0.97 + aperture_err * rng.standard_normal(n),
        "apFluxErr": aperture_err,
        "apFlux_flag": rows.get("apFlux_flag_apertureTruncated", np.zeros(n, bool)),
        "apFlux_flag_apertureTruncated": rows.get(
            "apFlux_flag_apertureTruncated", np.zeros(n, bool)
        ),
        "snr": snr,
        "psfFlux": flux,
        "psfFluxErr": err,
        "psfRa": rows["ra"],
        "psfDec": rows["dec"],
        "psfRaErr": pos_err_deg,
        "psfDecErr": pos_err_deg,
        "psfLnL": -0.5 * rng.chisquare(313, n),
        "psfChi2": rng.chisquare(300, n),
        "psfNdata": np.full(n, 313, np.int32),
        "psfFlux_flag": rng.random(n) < 0.005,
        "isNegative": flux < 0,
        "trailFlux": flux * rng.normal(1.0, 0.03, n),
        "trailFluxErr": err * 1.1,
        "trailRa": rows["ra"],
        "trailDec": rows["dec"],
        "trailRaErr": pos_err_deg * 1.2,
        "trailDecErr": pos_err_deg * 1.2,
        "trailLength": trail_length,
        "trailLengthErr": 0.1 + 0.5 / np.maximum(snr, 1.0),
        "trailAngle": rng.uniform(-90.0, 90.0, n),
        "trailAngleErr": np.minimum(
            90.0, 30.0 / np.maximum(snr, 1.0) / np.maximum(trail_length, 0.05)
        ),
        "trailChi2": rng.chisquare(300, n),
        "trailNdata": np.full(n, 313, np.int32),
        "trailAlgorithm": np.where(rng.random(n) < 0.9, 2.0, np.nan),
        "trail_flag_edge": rows.get("psfFlux_flag_edge", np.zeros(n, bool)),
        "trail_flag": rng.random(n) < 0.01,
        "dipoleMeanFlux": np.where(dipole, np.abs(flux) + 0.02 * star, np.nan),
        "dipoleMeanFluxErr": np.where(dipole, err, np.nan),
        "dipoleFluxDiff": np.where(dipole, flux * 0.1, np.nan),
        "dipoleFluxDiffErr": np.where(dipole, err * 1.4, np.nan),
        "dipoleRa": np.where(dipole, rows["ra"], np.nan),
        "dipoleDec": np.where(dipole, rows["dec"], np.nan),
        "dipoleLength": np.where(
            dipole, np.hypot(*rows.get("dipole_shift", np.zeros((n, 2))).T) * PIXEL_SCALE_ARCSEC
            + np.abs(rng.normal(0.0, 0.02, n)), np.nan
        ),
        "dipoleAngle": np.where(dipole, rng.uniform(-180, 180, n), np.nan),
        "dipoleChi2": np.where(dipole, rng.chisquare(600, n), np.nan),
        "dipoleNdata": np.where(dipole, 626, 0).astype(np.int32),
        "scienceFlux": rows["scienceFlux"],
        "scienceFluxErr": rows["scienceFluxErr"],
        "forced_PsfFlux_flag": np.zeros(n, bool),
        "forced_PsfFlux_flag_edge": rows.get("forced_PsfFlux_flag_edge", np.zeros(n, bool)),
        "forced_PsfFlux_flag_noGoodPixels": np.zeros(n, bool),
        "psfFlux_flag_edge": rows.get("psfFlux_flag_edge", np.zeros(n, bool)),
        "psfFlux_flag_noGoodPixels": np.zeros(n, bool),
        "templateFlux": rows["templateFlux"],
        "templateFluxErr": rows["templateFluxErr"],
        "ixx": psf_moment * rng.normal(1.0, 0.05, n),
        "iyy": psf_moment * rng.normal(1.0, 0.05, n),
        "ixy": psf_moment * rng.normal(0.0, 0.03, n),
        "ixxPSF": psf_moment,
        "iyyPSF": psf_moment,
        "ixyPSF": psf_moment * 0.01,
        "shape_flag": rng.random(n) < 0.02,
        "shape_flag_no_pixels": np.zeros(n, bool),
        "shape_flag_not_contained": np.zeros(n, bool),
        "shape_flag_parent_source": np.zeros(n, bool),
        "extendedness": np.clip(rng.beta(0.5, 6.0, n), 0, 1),
        "reliability": np.clip(rng.beta(8.0, 1.2, n), 0, 1),
        "spuriousness": lambda: 1.0 - known["reliability"],
        "reliabilityVersion": np.full(n, "rb-v1.2", dtype=object),
        "band": rows["band"],
        "isDipole": is_dipole,
        "dipoleFitAttempted": dipole,
        "timeProcessedMjdTai": processed,
        "timeWithdrawnMjdTai": nan,
        "bboxSize": rows["bboxSize"],
        "programId": np.zeros(n, np.int32),
        "flags": np.zeros(n, np.int64),
        "glint_trail": np.zeros(n, bool),
        "pixelFlags_offimage": np.zeros(n, bool),
    }
    for plane in ("bad", "cr", "edge", "nodata", "interpolated", "saturated", "suspect", "streak",
                  "injected", "injected_template"):
        for suffix in ("", "Center"):
            key = f"pixelFlags_{plane}{suffix}"
            known[key] = rows.get(key, np.zeros(n, bool))
    known["pixelFlags"] = np.zeros(n, bool)
    return known


def _fill_tables(
    schema: Any,
    sources: dict[str, np.ndarray],
    history: dict[str, np.ndarray],
    forced: dict[str, np.ndarray],
    objects: dict[str, np.ndarray],
    asteroids: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> dict[str, pd.DataFrame]:

    n = len(sources["x"])
    # Float arrays cannot hold int64 ssObjectIds exactly: carry them as object.
    ss_column = np.full(n, None, dtype=object)
    ss_column[asteroids["rows"]] = asteroids["ssObjectId"]
    record = schema.record("diaSource")
    known = _diasource_known(sources, rng)
    known["ssObjectId"] = ss_column
    object_column = sources["diaObjectId"].astype(object)
    object_column[asteroids["rows"]] = None
    known["diaObjectId"] = object_column
    asteroid = sources["kind"] == _ASTEROID
    if asteroid.any():
        rate = np.zeros(n)
        rate[asteroids["rows"]] = asteroids["trail_rate_deg_day"]
        known["trailLength"] = np.where(
            asteroid, rate * 3600.0 * EXPOSURE_TIME_S / 86400.0, known["trailLength"]
        )
    dia_source = _frame(record, known, n, rng)

    history_known = _diasource_known(history, rng)
    history_known["ssObjectId"] = np.full(len(history["ra"]), np.nan)
    dia_history = _frame(record, history_known, len(history["ra"]), rng)

    n_forced = len(forced["ra"])
    forced_known = {
        key: forced[key]
        for key in ("diaForcedSourceId", "diaObjectId", "ra", "dec", "visit", "detector",
                    "ccdVisitId", "psfFlux", "psfFluxErr", "midpointMjdTai", "scienceFlux",
                    "scienceFluxErr", "band")
    }
    forced_known["timeProcessedMjdTai"] = forced["midpointMjdTai"] + rng.uniform(
        60.0, 300.0, n_forced
    ) / 86400.0
    forced_known["timeWithdrawnMjdTai"] = np.full(n_forced, np.nan)
    forced_known["x"] = rng.uniform(0, 4072, n_forced)
    forced_known["y"] = rng.uniform(0, 4000, n_forced)
    forced_known["flags"] = np.zeros(n_forced, np.int64)
    dia_forced = _frame(schema.record("prvDiaForcedSources"), forced_known, n_forced, rng)

    n_obj = len(objects["diaObjectId"])
    object_known = dict(objects)
    object_known["validityStartMjdTai"] = np.full(
        n_obj, float(np.max(known["timeProcessedMjdTai"]))
    )
    object_known["midpointMjdTai"] = object_known["lastDiaSourceMjdTai"]
    object_known["psfFlux"] = sources["psfFlux"][objects["source_row"]]
    object_known["flags"] = np.zeros(n_obj, np.int64)
    object_known["pmParallaxNdata"] = objects["nDiaSources"]
    dia_object = _frame(schema.record("diaObject"), object_known, n_obj, rng)

    ss_source, orbits = _solar_system_tables(schema, asteroids, rng)
    return {
        "diaSource": dia_source,
        "history": dia_history,
        "forced": dia_forced,
        "diaObject": dia_object,
        "ssSource": ss_source,
        "orbits": orbits,
    }


def _solar_system_tables(schema: Any, asteroids: dict[str, np.ndarray], rng):
    n = len(asteroids["rows"])
    known = dict(asteroids)
    known["midpointMjdTai"] = asteroids["epoch_mjd"]
    ss_record = schema.record("ssSource")
    if ss_record is None:
        ss_source = _frame(
            None,
            {"diaSourceId": asteroids["diaSourceId"], "ssObjectId": asteroids["ssObjectId"]},
            n,
            rng,
        )
    else:
        ss_source = _frame(ss_record, known, n, rng)
    orbit_record = next(
        (schema.record(name) for name in ("mpc_orbits", "MPCORB", "ssObject")
         if schema.record(name) is not None),
        None,
    )
    created = _mjd_to_unix_micros(asteroids["epoch_mjd"] - 30.0)
    orbit_json = [
        json.dumps({"designation": d, "a": round(float(a), 6), "e": round(float(e), 6),
                    "i": round(float(i), 5), "epoch_mjd": float(t)})
        for d, a, e, i, t in zip(asteroids["designation"], asteroids["a"], asteroids["e"],
                                 asteroids["i"], asteroids["epoch_mjd"], strict=True)
    ]
    known.update({
        "id": np.arange(1, n + 1) + 1_000_000,
        "packed_primary_provisional_designation": asteroids["packed"],
        "unpacked_primary_provisional_designation": asteroids["designation"],
        "mpc_orb_jsonb": np.array(orbit_json, dtype=object),
        "created_at": created,
        "updated_at": created + 86_400_000_000 * 7,
        "fitting_datetime": created + 86_400_000_000 * 6,
        "arc_length_sel": asteroids["arc_length_total"],
        "nobs_total_sel": asteroids["nobs_total"],
        # No non-gravitational parameters were fit for a main-belt asteroid.
        **{name: np.full(n, np.nan) for name in
           ("yarkovsky", "srp", "a1", "a2", "a3", "dt", "yarkovsky_unc", "srp_unc", "a1_unc",
            "a2_unc", "a3_unc", "dt_unc")},
    })
    for name in ("a", "q", "e", "i", "node", "argperi", "peri_time", "mean_anomaly", "period",
                 "mean_motion"):
        known[f"{name}_unc"] = np.abs(known[name]) * 1e-6 + 1e-8
    orbits = _frame(orbit_record, known, n, rng)
    return ss_source, orbits


def _apply_layout(
    tables: dict[str, pd.DataFrame], schema: Any, layout: str
) -> dict[str, pd.DataFrame]:
    if layout == "columns":
        return tables
    band = _band_field(schema)
    out = dict(tables)
    for key in ("diaSource", "history"):
        out[key] = tables[key].set_index(["diaObjectId", band, "diaSourceId"], drop=False)
    out["forced"] = tables["forced"].set_index(["diaObjectId", "diaForcedSourceId"], drop=False)
    out["diaObject"] = tables["diaObject"].set_index("diaObjectId", drop=False)
    return out


def _band_field(schema: Any) -> str:
    names = {f["name"] for f in schema.record("diaSource")["fields"]}
    return "band" if "band" in names else "filterName"


def index_columns(schema_version: str | None = None) -> dict[str, list[str]]:
    """Index columns of each catalog in the ``"multi"`` layout."""
    band = _band_field(load_schema(schema_version))
    return {
        "diaSourceCat": ["diaObjectId", band, "diaSourceId"],
        "diaSrcHistory": ["diaObjectId", band, "diaSourceId"],
        "diaForcedSources": ["diaObjectId", "diaForcedSourceId"],
        "diaObjectCat": ["diaObjectId"],
    }
