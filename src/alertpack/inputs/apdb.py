"""Alert inputs of one (visit, detector) read from an APDB through ``lsst-dax-apdb``.

An APDB (Alert Production Database) holds the DiaObjects, DiaSources and
DiaForcedSources of Rubin-style alert production. Everything here goes through
the library's public API (``Apdb.from_uri``/``ApdbConfig.from_uri``,
``containsVisitDetector``, ``getDiaSources``, ``getDiaObjects``,
``getDiaForcedSources``): no SQL of our own. The config file is the one
``apdb-cli create-sql URL FILE`` writes (SQLite or PostgreSQL).

How one (visit, detector) is read (`read_visit_detector`)
---------------------------------------------------------
1. ``containsVisitDetector``: absent means no rows, no error (0 alerts).
2. New DiaSources: the library has no query by visit/detector, so a region
   query over the difference image's footprint (grown by 300 pixels, as
   ap_association pads it), starting a day before the visit time, is filtered
   on visit and detector (neighbouring detectors' and later visits' rows
   come back too).
3. Their DiaObjects (current versions) by region, filtered on their ids.
4. DiaSource and DiaForcedSource histories by object id, from the start of the
   history window (``window_days`` before the earliest new source), passed
   explicitly: the library's own default is ``read_sources_months`` x 30 days.
   Rows at or after each source's time are left in; packaging keeps only rows
   strictly before each source.

Column mapping (`conform_to_alert_schema`)
------------------------------------------
APDB schema 10 names are those of alert schemas 9.0-11.1. For older alert
schemas a field is filled from the column of its current name (``decl`` <-
``dec``, ``psFlux`` <- ``psfFlux``, ``is_negative`` <- ``isNegative`` ...);
timestamp fields (``time_processed``, ``validityStart``) from the MJD TAI
columns; ``ccdVisitId`` (schemas < 7) from the top ``ccdExposureIdBits`` bits
of the source id, the packing alertpack uses for file names too, so only when
those bits are given. A required field left unfilled (e.g. ``flags`` in
schemas < 7: the APDB has none) is an `ApdbSchemaError` naming it.

The one call (`apdb_visit_inputs`)
----------------------------------
returns the `~alertpack.visit_inputs.VisitInputs` of one (visit, detector);
`apdb_run_kwargs` the same as keyword arguments of ``PackageAlertsTask.run``.
A database that does not answer, when opened or in the middle of the reads,
raises `ApdbConnectionError`, a `~alertpack.errors.TransientError` the
detector executor retries with backoff; every other failure is permanent.
"""

from __future__ import annotations

import datetime
import functools
import os
import re
import time
import warnings
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping, Set
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import astropy.time
import numpy as np
import pandas as pd
from lsst.sphgeom import ConvexPolygon, LonLat, Region, UnitVector3d

from alertpack.errors import (
    ApdbConfigError,
    ApdbConnectionError,
    ApdbCredentialsError,
    ApdbError,
    ApdbSchemaError,
    InputError,
)
from alertpack.inputs.images import as_survey_image
from alertpack.inputs.visit_info import visit_info_from_header
from alertpack.limits import check_wcs_orders, read_limits
from alertpack.packets.avro_types import avro_field_type
from alertpack.packets.conform import COLUMN_ALIASES
from alertpack.schema import AlertSchema, available_versions, current_field_name, load_schema
from alertpack.visit_inputs import VisitInputs

if TYPE_CHECKING:
    from lsst.dax.apdb import Apdb

__all__ = [
    "LibraryTimings",
    "apdb_run_kwargs",
    "apdb_visit_inputs",
    "conform_to_alert_schema",
    "open_apdb",
    "read_visit_detector",
    "region_from_fits",
    "region_from_wcs",
]

#: index layouts of the catalogs of PackageAlertsTask.run (as ap_association makes them)
SOURCE_INDEX = ["diaObjectId", "band", "diaSourceId"]
OBJECT_INDEX = ["diaObjectId"]
FORCED_INDEX = ["diaObjectId", "diaForcedSourceId"]
#: pixels added around the difference image, as ap_association's LoadDiaCatalogs pixelMargin
REGION_MARGIN_PIXELS = 300.0
#: subtracted from the history start so that float round trips through astropy Time never drop
#: a row exactly on the boundary; packaging applies the exact ``t - window <= t' < t``
_BOUNDARY_SLACK_DAYS = 1.0 / 86400.0
#: the new sources are looked for from this long before the visit time
_NEW_SOURCE_SLACK_DAYS = 1.0
_MJD_UNIX_EPOCH = 40587.0







# ---------------------------------------------------------------------------------------------
# opening (one Apdb per process: ~0.4 s each, and engines are not fork-safe)
# ---------------------------------------------------------------------------------------------
_OPEN_APDBS: dict[tuple[int, str], Apdb] = {}


def _config_key(config_path: str | os.PathLike[str]) -> str:
    text = str(config_path)
    return text if text.startswith("label:") else str(Path(text).resolve())


def open_apdb(config_path: str | os.PathLike[str]) -> Apdb:
    """The `lsst.dax.apdb.Apdb` of a config file, opened once per process.

    Parameters
    ----------
    config_path : `str` or path
        An APDB config file (``apdb-cli create-sql`` output) or ``label:NAME``
        (looked up in the ``DAX_APDB_INDEX_URI`` index, as Rubin's tools do).

    Raises
    ------
    ApdbConfigError, ApdbConnectionError, ApdbCredentialsError
        One line naming the file and what to do; never a password.
    """
    key = (os.getpid(), _config_key(config_path))
    apdb = _OPEN_APDBS.get(key)
    if apdb is None:
        config = _load_config(config_path)
        apdb = _connect(config, config_path)
        _OPEN_APDBS[key] = apdb
    return apdb


def _load_config(config_path: str | os.PathLike[str]) -> Any:
    try:
        # lsst-dax-apdb is the optional `apdb` extra: imported where it is needed, with a hint
        from lsst.dax.apdb import ApdbConfig
    except ImportError:
        raise ApdbError(
            "reading an APDB needs lsst-dax-apdb: pip install 'alertpack[apdb]'"
        ) from None

    text = str(config_path)
    if not text.startswith("label:") and not Path(text).is_file():
        raise ApdbConfigError(
            f"APDB config file {text} does not exist; make one with "
            "`apdb-cli create-sql sqlite:///apdb.db apdb.yaml` (or a postgresql:// URL)"
        )
    try:
        return ApdbConfig.from_uri(text)
    except Exception as error:  # pydantic, yaml and lookup errors: all mean "not an APDB config"
        raise ApdbConfigError(
            f"{text} is not an APDB config file ({type(error).__name__}: "
            f"{_first_line(error)}); give the file written by `apdb-cli create-sql`"
        ) from None


def _connect(config: Any, config_path: str | os.PathLike[str]) -> Apdb:
    from lsst.dax.apdb import Apdb  # the optional `apdb` extra, checked by _load_config

    url = getattr(config, "db_url", None)
    where = f"{_safe_url(url)} (APDB config {config_path})"
    try:
        return Apdb.from_config(config)
    except Exception as error:
        message = _scrub(_first_line(error), url)
        name = type(error).__name__
        if name == "NoSuchTableError":
            raise ApdbConfigError(
                f"database {where} has no APDB tables; create them with "
                "`apdb-cli create-sql URL CONFIG`"
            ) from None
        if name == "IncompatibleVersionError":
            raise ApdbSchemaError(
                f"APDB {where} was made by another lsst-dax-apdb version: {message}"
            ) from None
        if "password" in message or "authentication" in message:
            raise ApdbCredentialsError(
                f"database {where} refused the credentials ({message}); put the password in "
                "~/.lsst/db-auth.yaml or LSST_DB_AUTH_CREDENTIALS, not in the config file"
            ) from None
        raise ApdbConnectionError(
            f"cannot open database {where}: {message}; check that the server runs and the URL "
            "in the config file"
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    # SQLAlchemy prefixes the DBAPI exception class: keep what the server said
    text = re.sub(r"^\([\w.]+\)\s*", "", text.splitlines()[0] if text else type(error).__name__)
    return text[:200]


def _safe_url(url: Any) -> str:
    """The database URL without its password."""
    if url is None:
        return "(no db_url)"
    try:
        from sqlalchemy.engine import make_url  # SQLAlchemy comes with the `apdb` extra

        return make_url(str(url)).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: show only the scheme
        return str(url).split("://", 1)[0] + "://..."


def _scrub(text: str, url: Any) -> str:
    """``text`` with any password of ``url`` masked (drivers do not print it; be sure)."""
    try:
        from sqlalchemy.engine import make_url  # SQLAlchemy comes with the `apdb` extra

        password = make_url(str(url)).password if url is not None else None
    except Exception:
        password = None
    return text.replace(str(password), "***") if password else text


def _is_unreachable(error: BaseException) -> bool:
    """True when a database error means the server does not answer now (worth retrying).

    SQLAlchemy raises `~sqlalchemy.exc.OperationalError` for a refused or
    lost connection, and marks errors that invalidated the connection; SQLite
    reports SQL mistakes (``no such column``) as OperationalError too, and a
    refused password is no outage: those are not.
    """
    try:
        from sqlalchemy import exc  # SQLAlchemy comes with the `apdb` extra
    except ImportError:  # no SQLAlchemy, no SQL database
        return False
    if isinstance(error, exc.TimeoutError):  # no pooled connection came free
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, (exc.OperationalError, exc.InterfaceError)):
        return False
    reason = str(error.orig).lower()
    return not re.search(r"no such (table|column)|syntax error|password|authentication", reason)


@contextmanager
def _unreachable_as_connection_error(apdb: Apdb, config_path: str | os.PathLike[str]
                                     ) -> Iterator[None]:
    """A database that stops answering inside the block raises `ApdbConnectionError`.

    The process's cached `Apdb` of ``config_path`` is dropped, so that the
    next attempt connects afresh.
    """
    try:
        yield
    except Exception as error:
        if not _is_unreachable(error):
            raise
        _OPEN_APDBS.pop((os.getpid(), _config_key(config_path)), None)
        url = getattr(getattr(apdb, "config", None), "db_url", None)
        raise ApdbConnectionError(
            f"database {_safe_url(url)} (APDB config {config_path}) stopped answering: "
            f"{_scrub(_first_line(error), url)}; check that the server runs"
        ) from None


# ---------------------------------------------------------------------------------------------
# regions
# ---------------------------------------------------------------------------------------------
def region_from_wcs(
    wcs: Any, shape: tuple[int, int], margin_pixels: float = REGION_MARGIN_PIXELS
) -> Region:
    """Sky polygon of an image (astropy WCS, numpy shape ``(ny, nx)``), grown by a margin.

    The margin (pixels) keeps objects whose mean position lies just off the
    detector, while their new source is on it.
    """
    ny, nx = shape
    m = float(margin_pixels)
    xs = np.array([-0.5 - m, nx - 0.5 + m, nx - 0.5 + m, -0.5 - m])
    ys = np.array([-0.5 - m, -0.5 - m, ny - 0.5 + m, ny - 0.5 + m])
    ra, dec = wcs.all_pix2world(xs, ys, 0)
    corners = [
        UnitVector3d(LonLat.fromDegrees(float(a), float(d))) for a, d in zip(ra, dec, strict=True)
    ]
    return ConvexPolygon.convexHull(corners)


def _image_headers(path: Path) -> tuple[Any, Any]:
    """Primary and image headers of a FITS file (no pixels read)."""
    # astropy.io.fits and .wcs (~0.4 s) only where a detector is read: a run's parent only
    # opens the APDB (which imports pandas and astropy.time itself)
    from astropy.io import fits

    if not path.is_file():
        raise InputError(f"difference image {path} does not exist")
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
            primary = hdul[0].header
            if "IMAGE" in hdul:
                return primary, hdul["IMAGE"].header
            for hdu in hdul:
                if hdu.header.get("NAXIS") == 2:
                    return primary, hdu.header
    except (OSError, ValueError, TypeError) as error:
        raise InputError(f"difference image {path} is not a readable FITS file ({error})") from None
    raise InputError(f"difference image {path} has no 2-D image HDU (NAXIS = 2)")


def region_from_fits(
    path: str | os.PathLike[str], margin_pixels: float = REGION_MARGIN_PIXELS
) -> tuple[Region, float | None]:
    """Footprint of a FITS image from its header WCS, and its exposure time if recorded.

    Returns
    -------
    region : `lsst.sphgeom.Region`
    mjd_tai : `float` or None
        The exposure midpoint, MJD TAI, as the image's visit info gives it
        (`alertpack.inputs.visit_info`: ``DATE-AVG`` with ``TIMESYS``, which
        afw writes, else ``MJD-AVG``, else ``MJD-OBS`` plus half of
        ``EXPTIME``), when the header has one.
    """
    from astropy.wcs import WCS, FITSFixedWarning  # as astropy.io.fits in _image_headers

    path = Path(path)
    primary, header = _image_headers(path)
    check_wcs_orders(header, read_limits(), f"difference image {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header).celestial
    except Exception as error:  # wcslib raises many types
        raise InputError(f"difference image {path}: header WCS unreadable ({error})") from None
    if not wcs.has_celestial:
        raise InputError(f"difference image {path} has no celestial WCS in its header")
    shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
    # afw keeps the visit keys in the primary header, which the image HDU inherits
    visit_info = visit_info_from_header(ChainMap(header, primary), f"difference image ({path})")
    return region_from_wcs(wcs, shape, margin_pixels), visit_info.midpoint_mjd_tai


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def _mon_handler_base() -> type:
    from lsst.dax.apdb.monitor import MonHandler  # the optional `apdb` extra

    return MonHandler


class LibraryTimings:
    """The timers lsst-dax-apdb itself reports (``select_time``, ``insert_time``, ...).

    Use ``with LibraryTimings().installed() as timings:``; ``records`` then
    holds one dict per library timer (``name``, ``tags``, ``real`` seconds,
    ``row_count`` ...).
    """

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def seconds(self, name: str = "select_time") -> float:
        """Total ``real`` seconds of the timers called ``name``."""
        return float(sum(r.get("real", 0.0) for r in self.records if r["name"] == name))

    @contextmanager
    def installed(self) -> Iterator[LibraryTimings]:
        from lsst.dax.apdb.monitor import MonService  # the optional `apdb` extra

        records = self.records

        class _Handler(_mon_handler_base()):  # type: ignore[misc]
            def handle(self, name, timestamp, tags, values, agent_name) -> None:
                records.append({"name": name, "tags": dict(tags), **dict(values)})

        handler = _Handler()
        service = MonService()
        service.add_handler(handler)
        try:
            yield self
        finally:
            service.remove_handler(handler)


def _tai(mjd: float) -> astropy.time.Time:
    return astropy.time.Time(float(mjd), format="mjd", scale="tai")


def _day_obs_start(visit: int) -> float | None:
    """MJD of the day before the night in a Rubin visit id ``YYYYMMDDnnnnn``, if it is one."""
    match = re.fullmatch(r"(\d{4})(\d{2})(\d{2})\d{5}", str(visit))
    if not match:
        return None
    try:
        day = datetime.date(*map(int, match.groups()))
    except ValueError:
        return None
    return float(day.toordinal() - datetime.date(1858, 11, 17).toordinal()) - 1.0


def _timed(timings: dict[str, float], key: str, func: Callable, *args: Any, **kwargs: Any) -> Any:
    start = time.perf_counter()
    result = func(*args, **kwargs)
    timings[key] = timings.get(key, 0.0) + (time.perf_counter() - start)
    return result


def _table_columns(apdb: Apdb, table_name: str) -> list[str]:
    from lsst.dax.apdb import ApdbTables  # the optional `apdb` extra

    table_def = apdb.tableDef(ApdbTables[table_name])
    if table_def is None:
        raise ApdbSchemaError(f"the APDB has no {table_name} table")
    return [column.name for column in table_def.columns]


def _lsst_layout(frame: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """Index on ``index`` while keeping the columns, as ap_association does.

    The index is built from the key columns alone: ``set_index(drop=False)``
    would copy all ~100 columns.
    """
    frame = frame.drop(columns=["pixelId"], errors="ignore")
    keys = [frame[name] for name in index]
    frame.index = pd.MultiIndex.from_arrays(keys) if len(keys) > 1 else pd.Index(keys[0])
    return frame


def _empty_catalogs(apdb: Apdb) -> dict[str, pd.DataFrame]:
    def empty(table: str, index: list[str]) -> pd.DataFrame:
        return _lsst_layout(pd.DataFrame(columns=_table_columns(apdb, table)), index)

    return {
        "diaSourceCat": empty("DiaSource", SOURCE_INDEX),
        "diaObjectCat": empty("DiaObject", OBJECT_INDEX),
        "diaSrcHistory": empty("DiaSource", SOURCE_INDEX),
        "diaForcedSources": empty("DiaForcedSource", FORCED_INDEX),
    }


def _new_sources(
    apdb: Apdb, visit: int, detector: int, region: Region, visit_mjd: float | None,
    timings: dict[str, float],
) -> pd.DataFrame:
    """DiaSources of (visit, detector): region queries from the latest known start onwards."""
    starts = []
    if visit_mjd is not None:
        starts.append(visit_mjd - _NEW_SOURCE_SLACK_DAYS)
    else:
        night = _day_obs_start(visit)
        if night is not None:
            starts.append(night)
    starts.append(0.0)  # the whole region, as a last resort (a wrong or missing visit time)
    now = astropy.time.Time.now()
    found = None
    for start in starts:
        rows = _timed(timings, "getDiaSources_new", apdb.getDiaSources, region, None, now,
                      start_time=_tai(start))
        found = rows[(rows["visit"] == visit) & (rows["detector"] == detector)]
        if len(found):
            break
    assert found is not None
    if not len(found):
        raise ApdbError(
            f"the APDB has DiaSources of visit {visit} detector {detector}, but none inside the "
            "difference image's footprint: give the difference image of this visit and detector"
        )
    return found.sort_values("diaSourceId").reset_index(drop=True)


def read_visit_detector(
    apdb: Apdb,
    visit: int,
    detector: int,
    region: Region,
    *,
    visit_time: float | None = None,
    window_days: float = 365.0,
    timings: dict[str, float] | None = None,
) -> dict[str, pd.DataFrame]:
    """The catalogs of `PackageAlertsTask.run` of one (visit, detector), APDB column names.

    Parameters
    ----------
    apdb : `lsst.dax.apdb.Apdb`
    visit, detector : `int`
        The ccdVisit whose DiaSources become alerts.
    region : `lsst.sphgeom.Region`
        The detector's footprint, padded (`region_from_wcs`).
    visit_time : `float`, optional
        Exposure midpoint, MJD TAI, if known: bounds the query that finds the
        new sources (from a day before). Without it, the night of a Rubin
        visit id ``YYYYMMDDnnnnn``; else the whole region is scanned.
    window_days : `float`
        History window (days before the earliest new source).
    timings : `dict`, optional
        Filled with seconds per library call (``containsVisitDetector``,
        ``getDiaSources_new``, ``getDiaObjects``, ``getDiaSources_history``,
        ``getDiaForcedSources``).

    Returns
    -------
    catalogs : `dict`
        ``diaSourceCat``, ``diaObjectCat``, ``diaSrcHistory``,
        ``diaForcedSources`` in the LSST index layout; all empty when the APDB
        has no DiaSource of (visit, detector).
    """
    timings = {} if timings is None else timings
    visit, detector = int(visit), int(detector)
    if not _timed(timings, "containsVisitDetector", apdb.containsVisitDetector, visit, detector):
        return _empty_catalogs(apdb)
    new = _new_sources(apdb, visit, detector, region, visit_time, timings)

    ids = new["diaObjectId"].dropna()
    object_ids = sorted(int(i) for i in ids.unique() if int(i) != 0)  # 0/null: asteroids
    start = _tai(float(new["midpointMjdTai"].min()) - window_days - _BOUNDARY_SLACK_DAYS)
    reference = _tai(float(new["midpointMjdTai"].max()))

    objects = _timed(timings, "getDiaObjects", apdb.getDiaObjects, region)
    objects = objects[objects["diaObjectId"].isin(object_ids)]
    lost = sorted(set(object_ids) - {int(i) for i in objects["diaObjectId"]})
    if lost:
        raise ApdbError(
            f"{len(lost)} DiaObjects of visit {visit} detector {detector} are not in the APDB "
            f"inside the image footprint (first ids: {lost[:3]}); check the difference image"
        )
    objects = objects.sort_values("diaObjectId").reset_index(drop=True)
    # by object id: the library ignores the region when ids are given
    history = _timed(timings, "getDiaSources_history", apdb.getDiaSources, region, object_ids,
                     reference, start_time=start)
    forced = _timed(timings, "getDiaForcedSources", apdb.getDiaForcedSources, region, object_ids,
                    reference, start_time=start)
    history = history[~history["diaSourceId"].isin(new["diaSourceId"])]
    history = history.sort_values(["diaObjectId", "midpointMjdTai", "diaSourceId"])
    forced = forced.sort_values(["diaObjectId", "midpointMjdTai", "diaForcedSourceId"])
    return {
        "diaSourceCat": _lsst_layout(new, SOURCE_INDEX),
        "diaObjectCat": _lsst_layout(objects, OBJECT_INDEX),
        "diaSrcHistory": _lsst_layout(history.reset_index(drop=True), SOURCE_INDEX),
        "diaForcedSources": _lsst_layout(forced.reset_index(drop=True), FORCED_INDEX),
    }


# ---------------------------------------------------------------------------------------------
# APDB columns -> alert schema fields
# ---------------------------------------------------------------------------------------------
#: (alert record, APDB table, catalog of run()) for each catalog read from the APDB
_RECORDS = (
    ("diaSource", "DiaSource", "diaSourceCat"),
    ("diaSource", "DiaSource", "diaSrcHistory"),
    ("diaObject", "DiaObject", "diaObjectCat"),
    ("prvDiaForcedSources", "DiaForcedSource", "diaForcedSources"),
)
#: timestamp fields of old schemas and the MJD TAI column that fills each
_TIMESTAMP_SOURCES = {
    "time_processed": "timeProcessedMjdTai",
    "validityStart": "validityStartMjdTai",
}
#: id column whose top bits hold the ccdVisitId, per APDB table
_PACKED_ID = {"DiaSource": "diaSourceId", "DiaForcedSource": "diaForcedSourceId"}


def _field_source(field: str, table: str, columns: Set[str], id_bits: int | None) -> str | None:
    """How a schema field is filled: a column name, ``"@ccdVisitId"``, or None (it cannot be)."""
    for candidate in (field, *COLUMN_ALIASES.get(field, ()), current_field_name(field)):
        if candidate in columns:
            return candidate
    if field in _TIMESTAMP_SOURCES and _TIMESTAMP_SOURCES[field] in columns:
        return _TIMESTAMP_SOURCES[field]
    if field == "ccdVisitId" and id_bits is not None and _PACKED_ID.get(table) in columns:
        return "@ccdVisitId"
    return None


def _unfillable(
    schema: AlertSchema, apdb_columns: Mapping[str, list[str]], id_bits: int | None
) -> list[str]:
    """Required fields of ``schema`` that no APDB column fills, as ``record.field``."""
    missing = []
    for record_name, table, _ in _RECORDS[1:]:
        record = schema.record(record_name)
        if record is None:
            continue
        columns = set(apdb_columns[table])
        for avro_field in record["fields"]:
            _, nullable, _ = avro_field_type(avro_field["type"])
            name = avro_field["name"]
            if not nullable and _field_source(name, table, columns, id_bits) is None:
                missing.append(f"{record_name}.{name}")
    return missing


def check_schema_fillable(apdb: Apdb, schema: AlertSchema, id_bits: int | None = None) -> None:
    """Raise `ApdbSchemaError` if the APDB cannot fill a required field of ``schema``."""
    columns = {table: _table_columns(apdb, table) for table in ("DiaSource", "DiaObject",
                                                               "DiaForcedSource")}
    missing = _unfillable(schema, columns, id_bits)
    if not missing:
        return
    fillable = [v for v in available_versions() if not _unfillable(load_schema(str(v)), columns,
                                                                   id_bits)]
    hint = f"choose schema version {fillable[0]} or later" if fillable else "no schema version fits"
    ccd = " (ccdVisitId: give ccdExposureIdBits)" if any(
        m.endswith(".ccdVisitId") for m in missing) else ""
    raise ApdbSchemaError(
        f"the APDB cannot fill alert schema {schema.version}: required {', '.join(missing)} "
        f"{'has' if len(missing) == 1 else 'have'} no APDB column{ccd}; {hint} "
        "(config schemaVersion)"
    )


def _mjd_tai_to_unix_micros(values: pd.Series) -> np.ndarray:
    """MJD TAI -> microseconds since 1970-01-01 UTC (Avro timestamp-micros), NaN for null.

    Float64 holds these whole numbers exactly (about 1.8e15 < 2**53), and NaN
    marks nulls without a pandas extension dtype.
    """
    mjd = values.to_numpy(dtype=np.float64, na_value=np.nan)
    out = np.full(len(mjd), np.nan)
    present = ~np.isnan(mjd)
    if present.any():
        unix = astropy.time.Time(mjd[present], format="mjd", scale="tai").utc.unix
        out[present] = np.round(unix * 1e6)
    return out


@functools.lru_cache(maxsize=64)
def _field_sources(
    version: str, record_name: str, table: str, columns: frozenset[str], id_bits: int | None
) -> tuple[tuple[str, str], ...]:
    """``(field, source)`` of the fields of a record filled from another column (cached)."""
    record = load_schema(version).record(record_name)
    assert record is not None, "conform_to_alert_schema asks only for records the schema has"
    pairs = []
    for avro_field in record["fields"]:
        name = avro_field["name"]
        source = _field_source(name, table, columns, id_bits)
        if source is not None and source != name:
            pairs.append((name, source))
    return tuple(pairs)


def conform_to_alert_schema(
    catalogs: Mapping[str, pd.DataFrame], schema: AlertSchema, id_bits: int | None = None
) -> dict[str, pd.DataFrame]:
    """Add the columns an alert schema names differently from the APDB (see module doc).

    The APDB columns stay (index levels, time columns); each field whose name
    is not a column gets one, filled from its source column. Columns the schema
    does not know are ignored by packaging.
    """
    out = dict(catalogs)
    for record_name, table, catalog in _RECORDS:
        frame = catalogs[catalog]
        if schema.record(record_name) is None or frame is None:
            continue
        pairs = _field_sources(str(schema.version), record_name, table,
                               frozenset(frame.columns), id_bits)
        added: dict[str, np.ndarray | pd.Series] = {}
        for name, source in pairs:
            if source == "@ccdVisitId":
                assert id_bits is not None, "_field_source gives @ccdVisitId only with id bits"
                ids = frame[_PACKED_ID[table]].to_numpy(dtype=np.int64)
                added[name] = (ids.astype(np.uint64) >> np.uint64(64 - id_bits)).astype(np.int64)
            elif name in _TIMESTAMP_SOURCES:
                added[name] = _mjd_tai_to_unix_micros(frame[source])
            else:
                added[name] = frame[source]
        if added:
            out[catalog] = frame.assign(**added)
    return out


# ---------------------------------------------------------------------------------------------
# the one call
# ---------------------------------------------------------------------------------------------
def apdb_visit_inputs(
    config_path: str | os.PathLike[str],
    visit: int,
    detector: int,
    *,
    difference: str | os.PathLike[str],
    template: str | os.PathLike[str] | None = None,
    science: str | os.PathLike[str] | None = None,
    window_days: float = 365.0,
    visit_time: float | astropy.time.Time | None = None,
    schema_version: str | None = None,
    ccd_exposure_id_bits: int | None = None,
    timings: dict[str, float] | None = None,
    calibration: Mapping[str, float] | None = None,
    psfs: Mapping[str, str | os.PathLike[str]] | None = None,
) -> VisitInputs:
    """The inputs of one packaging run of (visit, detector), read from an APDB.

    Parameters
    ----------
    config_path : `str` or path
        APDB config file (``apdb-cli create-sql`` output), or ``label:NAME``.
    visit, detector : `int`
        The ccdVisit whose new DiaSources become alerts.
    difference : `str` or path
        Difference image (FITS): its header WCS gives the query region (no
        pixels are read here) and, if present, its visit info the visit time
        (`region_from_fits`). Passed on as ``diffIm``.
    template, science : `str` or path, optional
        Template and science images (FITS), passed on.
    window_days : `float`
        History window, days (config ``historyWindowDays``).
    visit_time : `float` or `astropy.time.Time`, optional
        Exposure midpoint, MJD TAI (overrides the header).
    schema_version : `str`, optional
        Alert schema the rows are mapped onto (default: the latest).
    ccd_exposure_id_bits : `int`, optional
        Bits of the exposure id packed in the source ids: passed on (packaging
        names alert files by the ccdVisitId they give, and needs them: the
        APDB has no ccdVisitId column), and fills ``ccdVisitId`` of schemas < 7.
    timings : `dict`, optional
        Filled with seconds per library call.
    calibration : `~collections.abc.Mapping` [`str`, `float`], optional
        Image name (``"difference"``, ...) -> nJy per pixel value, for images
        whose files give no unit (`alertpack.inputs.images.as_survey_image`).
    psfs : `~collections.abc.Mapping` [`str`, path], optional
        Image name -> a PSF file replacing the image's own.

    Returns
    -------
    inputs : `~alertpack.visit_inputs.VisitInputs`
        ``diaSourceCat``, ``diaObjectCat``, ``diaSrcHistory``,
        ``diaForcedSources`` (DataFrames, LSST index layout), the image paths,
        ``ccdExposureIdBits``; no ``ssSource``/``mpc_orbits`` (the APDB has no
        solar-system tables). No DiaSources of (visit, detector): empty
        catalogs, 0 alerts.

    Raises
    ------
    ApdbConnectionError
        The database does not answer, when opened or while read (a
        `~alertpack.errors.TransientError`: worth trying again later).
    ApdbConfigError, ApdbCredentialsError, ApdbSchemaError, ApdbError, InputError
        Permanent: the config, the credentials, the schema or the images.
    """
    if visit_time is not None and hasattr(visit_time, "tai"):  # an astropy Time
        visit_time = float(visit_time.tai.mjd)
    schema = load_schema(schema_version)
    apdb = open_apdb(config_path)
    with _unreachable_as_connection_error(apdb, config_path):
        check_schema_fillable(apdb, schema, ccd_exposure_id_bits)
        region, header_mjd = region_from_fits(difference)
        catalogs = read_visit_detector(
            apdb, visit, detector, region,
            visit_time=visit_time if visit_time is not None else header_mjd,
            window_days=window_days, timings=timings,
        )
    conformed: dict[str, Any] = conform_to_alert_schema(catalogs, schema, ccd_exposure_id_bits)
    images = {
        name: _image(path, name, calibration or {}, psfs or {})
        for name, path in (("difference", difference), ("template", template),
                           ("science", science))
    }
    return VisitInputs(
        **conformed,
        diffIm=images["difference"],
        template=images["template"],
        science=images["science"],
        ccdExposureIdBits=ccd_exposure_id_bits,
    )


def _image(
    path: str | os.PathLike[str] | None, name: str, calibration: Mapping[str, float],
    psfs: Mapping[str, str | os.PathLike[str]],
) -> Any:
    """An image for `VisitInputs`: its path (opened when cut), or opened now when the
    caller gives it a calibration or a PSF."""
    if path is None:
        return None
    if name not in calibration and name not in psfs:
        return str(path)
    return as_survey_image(path, name=name, calibration=calibration.get(name),
                           psf=psfs.get(name))


def apdb_run_kwargs(
    config_path: str | os.PathLike[str], visit: int, detector: int, **options: Any
) -> dict[str, Any]:
    """Keyword arguments of `PackageAlertsTask.run` from an APDB: `apdb_visit_inputs`'s.

    Takes the arguments of `apdb_visit_inputs`; returns
    ``apdb_visit_inputs(...).run_kwargs()`` (``ssSource`` and ``mpc_orbits``
    `None`: the APDB has no solar-system tables).
    """
    return apdb_visit_inputs(config_path, visit, detector, **options).run_kwargs()
