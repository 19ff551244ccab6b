"""Reading one detector's alert inputs from an APDB, next to packaging the same detector.

Run::

    .venv/bin/python benchmarks/bench_apdb.py [--quick] [--backends sqlite,postgres]
        [--detectors 5] [--repeats 5] [--json results.json]

For each backend (SQLite file; PostgreSQL: a throwaway server on 127.0.0.1,
from tests/pgserver.py, skipped when not installed) an APDB is made with
the library (``ApdbSql.init_database``) and filled with ``--detectors``
sample detectors of one visit through ``Apdb.store``: 60 new DiaSources per
detector, 20 previous DiaSources and 20 forced sources per DiaObject, over
39 visits spanning 600 days (more than a year of visits, so the 365-day
window cuts); images 2048 x 2048. Then detector 42 is timed:

- ``open``: ``open_apdb`` (``Apdb.from_uri``) once per process, cold;
- ``read cold``: the first `apdb_visit_inputs` of the process;
- ``read``: `apdb_visit_inputs` warm (median of ``--repeats``), and inside it
  ``query``: the ``select_time`` the library itself reports (its monitor);
- ``package``: `AlertPackager.run` on those inputs (median).

Target: reading must not dominate packaging by more than the database's own
query time, i.e. ``read <= package + query`` (warm).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Column, Table, Target, write_json

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from alertpack.config import PackageAlertsConfig  # noqa: E402
from alertpack.core import AlertPackager  # noqa: E402
from alertpack.inputs.apdb import LibraryTimings, apdb_visit_inputs, open_apdb  # noqa: E402
from alertpack.sample.apdb import write_apdb  # noqa: E402
from alertpack.visit_inputs import VisitInputs  # noqa: E402

DETECTOR = 42
TABLE = Table([
    Column("backend", 9, align="<"), Column("APDB rows (obj/src/forced)", 27),
    Column("alerts", 6), Column("prv/frc", 11), Column("open", 6, ".3f"),
    Column("cold", 6, ".3f"), Column("read", 6, ".3f"), Column("query", 6, ".3f"),
    Column("ours", 6, ".3f"), Column("package", 8, ".3f"),
])


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def make_apdb(backend: str, work: Path, args: argparse.Namespace) -> tuple[Path, Any, float]:
    """A filled APDB config of ``backend``; (config path, server to stop or None, fill s)."""
    from lsst.dax.apdb.sql import ApdbSql

    server = None
    if backend == "sqlite":
        url = f"sqlite:///{work}/apdb.db"
    else:
        from pgserver import PgServer, pg_bindir

        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL not installed (apt-get install -y postgresql)")
        server = PgServer(bindir).start()
        os.environ["LSST_DB_AUTH_CREDENTIALS"] = server.auth_env
        url = server.url
    config = work / "apdb.yaml"
    ApdbSql.init_database(url).save(str(config))
    first = max(0, DETECTOR - args.detectors // 2)
    detectors = range(first, first + args.detectors)
    start = time.perf_counter()
    write_apdb(config, work / "visit", detectors=detectors, n_sources=args.n_sources,
               n_history=args.n_history, n_forced=args.n_history,
               image_shape=args.image_shape)
    return config, server, time.perf_counter() - start


def time_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-apdb-{backend}-") as tmp:
        work = Path(tmp)
        config, server, fill_s = make_apdb(backend, work, args)
        try:
            return _time_reads(backend, config, work, fill_s, args)
        finally:
            if server is not None:
                server.stop()


def _read(config: Path, images: Path) -> tuple[VisitInputs, float, float]:
    """(inputs, wall s, library select_time s) of one apdb_visit_inputs call."""
    library = LibraryTimings()
    with library.installed():
        start = time.perf_counter()
        inputs = apdb_visit_inputs(
            config, 2026112500123, DETECTOR, difference=images / "difference.fits",
            template=images / "template.fits", science=images / "science.fits",
            ccd_exposure_id_bits=50,
        )
        wall = time.perf_counter() - start
    return inputs, wall, library.seconds("select_time")


def _time_reads(backend: str, config: Path, work: Path, fill_s: float,
                args: argparse.Namespace) -> dict[str, Any]:
    from lsst.dax.apdb import Apdb

    images = work / "visit" / str(DETECTOR)
    start = time.perf_counter()
    Apdb.from_uri(str(config))  # what open_apdb pays once per worker process
    open_s = time.perf_counter() - start
    apdb = open_apdb(config)
    rows = {str(k): int(v) for k, v in apdb.tableRowCount().items()}
    inputs, cold_s, cold_query_s = _read(config, images)
    reads, queries, packages = [], [], []
    packager_config = PackageAlertsConfig()
    packager_config.alertWriteLocation = str(work / "alerts")
    packager_config.overwriteAlertFiles = True  # repeats write the files again: time the write
    packager = AlertPackager(packager_config)
    for _ in range(args.repeats):
        inputs, wall, query = _read(config, images)
        reads.append(wall)
        queries.append(query)
        start = time.perf_counter()
        result = packager.run(inputs)
        packages.append(time.perf_counter() - start)
    return {
        "backend": backend,
        "rows": rows,
        "fill_s": fill_s,
        "alerts": result.n_alerts,
        "history_rows": len(inputs.diaSrcHistory),
        "forced_rows": len(inputs.diaForcedSources),
        "open_s": open_s,
        "read_cold_s": cold_s,
        "query_cold_s": cold_query_s,
        "read_s": _median(reads),
        "query_s": _median(queries),
        "package_s": _median(packages),
    }


def print_report(results: list[dict[str, Any]], skipped: dict[str, str], quick: bool) -> bool:
    print(f"APDB read vs packaging, detector {DETECTOR} (median of warm runs; seconds)")
    print(TABLE.header())
    print(TABLE.rule())
    for r in results:
        rows = r["rows"]
        counts = f"{rows.get('DiaObject', 0)}/{rows.get('DiaSource', 0)}/" \
                 f"{rows.get('DiaForcedSource', 0)}"
        print(TABLE.row([
            r["backend"], counts, r["alerts"], f"{r['history_rows']:>5}/{r['forced_rows']:<5}",
            r["open_s"], r["read_cold_s"], r["read_s"], r["query_s"], r["read_s"] - r["query_s"],
            r["package_s"],
        ]))
    for backend, reason in skipped.items():
        print(f"{backend:9} skipped: {reason}")
    note = " (quick run: sizes too small for the target to mean anything)" if quick else ""
    print(f"targets{note}")
    targets = []
    for r in results:
        bound = r["package_s"] + r["query_s"]
        target = Target(
            r["backend"],
            f"read {r['read_s']:.3f} s <= package {r['package_s']:.3f} s + library query "
            f"{r['query_s']:.3f} s = {bound:.3f} s",
            r["read_s"] <= bound,
        )
        targets.append(target)
        print(f"{target.verdict()} {target.name}: {target.measured}")
    print("columns: open = Apdb.from_uri once per worker; cold = first read after the fill; "
          "read = warm apdb_visit_inputs; query = the library's own select_time; "
          "ours = read - query")
    return all(target.passed for target in targets)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small APDB (1 detector, 20 sources, 6 history rows), 1 repeat")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--detectors", type=int, default=3, help="sample detectors stored")
    parser.add_argument("--n-sources", type=int, default=60)
    parser.add_argument("--n-history", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, metavar="PATH", help="save the results as JSON")
    args = parser.parse_args(argv)
    args.image_shape = (2048, 2048)
    if args.quick:
        args.detectors, args.n_sources, args.n_history, args.repeats = 1, 20, 6, 1
        args.image_shape = (256, 256)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results, skipped = [], {}
    for backend in args.backends.split(","):
        try:
            results.append(time_backend(backend, args))
        except RuntimeError as error:
            skipped[backend] = str(error)
    met = print_report(results, skipped, args.quick)
    if args.json:
        write_json(args.json, {"results": results, "skipped": skipped, "target_met": met},
                   indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
