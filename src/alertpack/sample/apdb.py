"""The sample written into an APDB through lsst-dax-apdb's own ``store``, images beside it.

`write_apdb` simulates detectors of one sample visit, stores their catalogs
(the visit and every previous visit of their objects) with ``Apdb.store`` and
writes each detector's visit directory (`write_visit`: FITS images with the
visit time in ``MJD-OBS``, Parquet catalogs, ``visit.json``) under
``directory/<detector>/``. Packaging from the APDB then gives the same alerts
as packaging those catalogs (schemas 9.0 and later, whose names are the
APDB's; ``ssSource``/``mpc_orbits`` have no APDB table).

Storing (`store_visit`)
-----------------------
The APDB keeps DiaObject *versions*: ``store`` closes the open version of each
object it is given and opens one starting at its ``visit_time``. So one
``store`` per visit, oldest first, each with the objects its rows touch; the
current visit last, at the objects' ``validityStartMjdTai`` (the processing
time), so that the stored current versions equal the sample's DiaObjects.
Columns the APDB lacks are dropped; ``pixelId`` and the validity columns are
set by ``store`` itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alertpack.errors import InputError
from alertpack.sample.files import write_visit
from alertpack.sample.visit import make_visit

if TYPE_CHECKING:
    import pandas as pd
    from lsst.dax.apdb import Apdb, ApdbSql, ApdbTables
    from lsst.dax.apdb.schema_model import Table

    from alertpack.visit_inputs import VisitInputs

__all__ = ["ApdbFill", "store_visit", "write_apdb"]

#: the visit of `make_visit` when none is given
_DEFAULT_VISIT = 2026112500123
#: columns ``Apdb.store`` sets itself
_MANAGED = {"pixelId", "validityStartMjdTai", "validityEndMjdTai"}


@dataclass
class ApdbFill:
    """What `write_apdb` stored and wrote."""

    visit: int
    detectors: list[int]
    directories: dict[int, Path] = field(default_factory=dict)
    store_calls: int = 0
    store_seconds: float = 0.0
    row_counts: dict[str, int] = field(default_factory=dict)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Index levels as columns, each once (the LSST layout keeps them as both)."""
    levels = [n for n in frame.index.names if n is not None and n not in frame.columns]
    return frame.reset_index(level=levels) if levels else frame.reset_index(drop=True)


def _table_def(apdb: Apdb, table: ApdbTables) -> Table:
    table_def = apdb.tableDef(table)
    if table_def is None:
        raise InputError(f"the APDB has no {table.name} table")
    return table_def


def _check_string_lengths(apdb: Apdb, table: ApdbTables, frame: pd.DataFrame) -> None:
    """PostgreSQL enforces the schema's string lengths (SQLite does not): fail early, clearly."""
    for column in _table_def(apdb, table).columns:
        if not column.length or column.name not in frame.columns:
            continue
        values = frame[column.name].dropna().astype(str)
        longest = int(values.str.len().max()) if len(values) else 0
        if longest > column.length:
            raise InputError(
                f"{table.name}.{column.name} holds at most {column.length} characters in the "
                f"APDB schema; the catalog has {longest} ({values.iloc[0]!r})"
            )


def _frame(inputs: VisitInputs, name: str) -> pd.DataFrame:
    """Catalog ``name`` of ``inputs`` as a DataFrame (an Arrow table converted)."""
    import pandas as pd  # on first use: importing alertpack.sample stays light (numpy only)

    catalog = getattr(inputs, name)
    if catalog is None:
        raise InputError(f"storing a visit in the APDB needs its {name}")
    return catalog if isinstance(catalog, pd.DataFrame) else catalog.to_pandas()


def _store_batches(
    apdb: Apdb, inputs: VisitInputs
) -> list[tuple[float, pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    """``(visit_time MJD TAI, objects, sources, forced)`` per visit, oldest first."""
    import pandas as pd  # on first use: importing alertpack.sample stays light (numpy only)
    from lsst.dax.apdb import ApdbTables  # the optional `apdb` extra

    def columns(table: ApdbTables, frame: pd.DataFrame) -> pd.DataFrame:
        names = [c.name for c in _table_def(apdb, table).columns]
        return frame[[n for n in names if n in frame.columns and n not in _MANAGED]]

    new = _plain(_frame(inputs, "diaSourceCat"))
    catalog_objects = _plain(_frame(inputs, "diaObjectCat"))
    objects = columns(ApdbTables.DiaObject, catalog_objects)
    sources = pd.concat([_plain(_frame(inputs, "diaSrcHistory")), new], ignore_index=True)
    sources = columns(ApdbTables.DiaSource, sources)
    forced = columns(ApdbTables.DiaForcedSource, _plain(_frame(inputs, "diaForcedSources")))
    _check_string_lengths(apdb, ApdbTables.DiaSource, sources)
    _check_string_lengths(apdb, ApdbTables.DiaForcedSource, forced)

    current = int(new["visit"].iloc[0])
    visits = pd.concat([sources[["visit", "midpointMjdTai"]], forced[["visit", "midpointMjdTai"]]])
    visit_times = visits.groupby("visit")["midpointMjdTai"].max().sort_values()
    processed = float(catalog_objects["validityStartMjdTai"].max())
    batches = []
    for visit in [v for v in visit_times.index if v != current] + [current]:
        visit_sources = sources[sources["visit"] == visit].reset_index(drop=True)
        visit_forced = forced[forced["visit"] == visit].reset_index(drop=True)
        touched = pd.concat([visit_sources["diaObjectId"], visit_forced["diaObjectId"]])
        visit_objects = objects[objects["diaObjectId"].isin(touched.dropna().unique())]
        when = processed if visit == current else float(visit_times[visit])
        batches.append((when, visit_objects, visit_sources, visit_forced))
    return batches


def _sql_apdb(apdb: Apdb) -> ApdbSql:
    """``apdb`` itself: the sample is stored in SQL APDBs (``apdb-cli create-sql``)."""
    from lsst.dax.apdb import ApdbSql  # the optional `apdb` extra

    if not isinstance(apdb, ApdbSql):
        raise InputError(
            f"the sample is stored in SQL APDBs (apdb-cli create-sql), not a "
            f"{type(apdb).__name__}"
        )
    return apdb


def _check_store_driver(apdb: Apdb) -> None:
    """``store`` fails through psycopg 3 (SQLAlchemy 2.1's default for ``postgresql://``)."""
    from sqlalchemy.engine import make_url  # comes with the optional `apdb` extra

    url = make_url(str(_sql_apdb(apdb).getConfig().db_url))
    if url.get_backend_name() == "postgresql" and url.get_driver_name() != "psycopg2":
        raise InputError(
            f"storing into {url.render_as_string(hide_password=True)} needs the psycopg2 "
            "driver (with psycopg 3 lsst-dax-apdb's store fails on all-null columns): write "
            "postgresql+psycopg2:// in the config's db_url (reading works with either)"
        )


def store_visit(apdb: Apdb, inputs: VisitInputs) -> int:
    """Store a visit's catalogs and their history with ``Apdb.store``; returns the calls made.

    ``inputs`` are a visit's `~alertpack.visit_inputs.VisitInputs` (e.g.
    ``make_visit(...).inputs()``) with APDB column names (schemas 9.0 and
    later): their DiaSources, DiaObjects, DiaSource history and forced
    sources are stored. Stores must go in time order: call this for the
    visits of an APDB oldest first.
    """
    import astropy.time  # on first use: importing alertpack.sample stays light (numpy only)

    _check_store_driver(apdb)
    batches = _store_batches(apdb, inputs)
    for mjd, objects, sources, forced in batches:
        apdb.store(astropy.time.Time(mjd, format="mjd", scale="tai"), objects, sources, forced)
    return len(batches)


def write_apdb(
    config_path: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    detectors: Iterable[int] = (42,),
    n_sources: int = 60,
    seed: int = 0,
    **visit_options: Any,
) -> ApdbFill:
    """Store sample detectors of one visit in an existing APDB; write their files beside it.

    Parameters
    ----------
    config_path : `str` or path
        APDB config file (``apdb-cli create-sql sqlite:///apdb.db apdb.yaml``).
    directory : `str` or path
        Each detector's visit directory is written to ``directory/<detector>/``
        (``difference.fits``, ``template.fits``, ``science.fits``, Parquet
        catalogs, ``visit.json``).
    detectors : iterable of `int`
        LSSTCam detectors of the visit to simulate and store.
    n_sources, seed, **visit_options
        `alertpack.sample.make_visit` arguments (``visit``, ``image_shape``,
        ``n_history`` ...; not ``schema_version``: the APDB holds schema 10
        names).

    Returns
    -------
    fill : `ApdbFill`
    """
    # inputs.apdb imports pandas and astropy: importing alertpack.sample stays light
    from alertpack.inputs.apdb import open_apdb

    if "schema_version" in visit_options:
        raise InputError("write_apdb stores the APDB's own column names: drop schema_version")
    apdb = _sql_apdb(open_apdb(config_path))
    detectors = [int(d) for d in detectors]
    visit_number = int(visit_options.get("visit", _DEFAULT_VISIT))
    stored = [d for d in detectors if apdb.containsVisitDetector(visit_number, d)]
    if stored:
        raise InputError(
            f"the APDB of {config_path} already holds visit {visit_number} detector(s) "
            f"{', '.join(map(str, stored))}: fill a fresh one (apdb-cli create-sql --drop URL "
            "CONFIG) or choose other detectors"
        )
    fill = ApdbFill(visit=visit_number, detectors=detectors)
    for detector in detectors:
        visit = make_visit(n_sources, seed=seed, detector=detector,
                           **{"visit": visit_number, **visit_options})
        start = time.perf_counter()
        fill.store_calls += store_visit(apdb, visit.inputs())
        fill.store_seconds += time.perf_counter() - start
        written = write_visit(visit, Path(directory) / str(detector))
        fill.directories[detector] = written["visit"].parent
    fill.row_counts = {str(k): int(v) for k, v in apdb.tableRowCount().items()}
    return fill
