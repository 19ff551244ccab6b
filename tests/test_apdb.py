"""Alerts from an APDB: real lsst-dax-apdb on SQLite and on a real PostgreSQL server.

One filled database per backend and module: SQLite made the way the README
shows (``apdb-cli create-sql``, then ``alertpack apdb fill --sample`` in a
subprocess), PostgreSQL through the library's Python API (``init_database``,
then `write_apdb`, i.e. ``Apdb.store``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import fastavro
import numpy as np
import pytest

from alertpack.config import PackageAlertsConfig
from alertpack.core import AlertPackager
from alertpack.errors import (
    ApdbConfigError,
    ApdbConnectionError,
    ApdbCredentialsError,
    ApdbSchemaError,
)
from alertpack.inputs.apdb import apdb_run_kwargs, apdb_visit_inputs, open_apdb
from alertpack.sample import read_visit
from alertpack.visit_inputs import VisitInputs

lsst_dax_apdb = pytest.importorskip("lsst.dax.apdb", reason="lsst-dax-apdb (extra 'apdb')")

VISIT = 2026112500123
N_SOURCES = 12
IMAGE = "256x256"
APDB_CLI = str(Path(sys.executable).with_name("apdb-cli"))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alertpack", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def sqlite_apdb(tmp_path_factory) -> Path:
    """The README's path: apdb-cli create-sql, then alertpack apdb fill (detectors 41, 42)."""
    work = tmp_path_factory.mktemp("sqlite-apdb")
    subprocess.run([APDB_CLI, "create-sql", f"sqlite:///{work}/apdb.db", "apdb.yaml"],
                   cwd=work, check=True, capture_output=True, timeout=120)
    filled = _cli("apdb", "fill", "--sample", "apdb.yaml", "visit", "--detector", "41-42",
                  "--n-sources", str(N_SOURCES), "--image-size", IMAGE, "--n-history", "6",
                  cwd=work)
    assert filled.returncode == 0, filled.stderr[-3000:]
    assert f"stored sample visit {VISIT}, detector(s) 41,42" in filled.stdout
    return work


@pytest.fixture(scope="module")
def postgres_apdb(postgres_server, tmp_path_factory) -> Path:
    """A PostgreSQL APDB filled through the library's API; password only in DbAuth's env."""
    from lsst.dax.apdb.sql import ApdbSql

    from alertpack.sample.apdb import write_apdb

    work = tmp_path_factory.mktemp("pg-apdb")
    saved = os.environ.get("LSST_DB_AUTH_CREDENTIALS")
    os.environ["LSST_DB_AUTH_CREDENTIALS"] = postgres_server.auth_env
    try:
        ApdbSql.init_database(postgres_server.url).save(str(work / "apdb.yaml"))
        assert postgres_server.password not in (work / "apdb.yaml").read_text()
        write_apdb(work / "apdb.yaml", work / "visit", detectors=[42], n_sources=N_SOURCES,
                   image_shape=(256, 256), n_history=6, n_forced=6)
        yield work
    finally:
        if saved is None:
            os.environ.pop("LSST_DB_AUTH_CREDENTIALS", None)
        else:
            os.environ["LSST_DB_AUTH_CREDENTIALS"] = saved


def _from_apdb(work: Path, detector: int = 42, **options) -> dict:
    images = work / "visit" / str(detector)
    return apdb_run_kwargs(
        work / "apdb.yaml", VISIT, detector, difference=images / "difference.fits",
        template=images / "template.fits", science=images / "science.fits",
        ccd_exposure_id_bits=50, **options,
    )


def _from_files(work: Path, detector: int = 42) -> dict:
    """The same catalogs as DataFrames (Parquet written beside the APDB), no solar system."""
    images = work / "visit" / str(detector)
    kwargs = read_visit(images).run_kwargs()
    kwargs.update(ssSource=None, mpc_orbits=None, diffIm=str(images / "difference.fits"),
                  template=str(images / "template.fits"), science=str(images / "science.fits"))
    return kwargs


def _payloads(kwargs: dict, out: Path, schema: str | None = None) -> dict[int, bytes]:
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(out)
    if schema:
        config.schemaVersion = schema
    result = AlertPackager(config).run(VisitInputs(**kwargs))
    return {
        result.alerts[i]["diaSource"]["diaSourceId"]: bytes(payload)
        for i, payload in enumerate(result.alerts.payloads)
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_alerts_from_apdb_equal_alerts_from_dataframes(backend, request, tmp_path):
    work = request.getfixturevalue(f"{backend}_apdb")
    from_apdb = _payloads(_from_apdb(work), tmp_path / "apdb")
    from_frames = _payloads(_from_files(work), tmp_path / "frames")
    assert len(from_apdb) == N_SOURCES
    assert from_apdb.keys() == from_frames.keys()
    assert [i for i in from_apdb if from_apdb[i] != from_frames[i]] == []


def test_only_the_visit_detector_and_the_window(sqlite_apdb):
    kwargs = _from_apdb(sqlite_apdb)
    new = kwargs["diaSourceCat"]
    assert set(new["visit"]) == {VISIT} and set(new["detector"]) == {42}
    expected = read_visit(sqlite_apdb / "visit" / "42")
    assert sorted(new["diaSourceId"]) == sorted(expected.diaSourceCat["diaSourceId"])
    first = float(new["midpointMjdTai"].min())
    histories = (("diaSrcHistory", "diaSourceId"), ("diaForcedSources", "diaForcedSourceId"))
    for catalog, key in histories:
        got = kwargs[catalog]
        sample = getattr(expected, catalog)
        in_window = sample[sample["midpointMjdTai"] >= first - 365]
        assert (sample["midpointMjdTai"] < first - 365).any(), "the sample has rows to leave out"
        assert set(in_window[key]) <= set(got[key])
        assert got["midpointMjdTai"].min() >= first - 365 - 1e-4


def test_visit_time_from_header_or_option_finds_the_same_rows(sqlite_apdb):
    header = _from_apdb(sqlite_apdb)
    midpoint = float(header["diaSourceCat"]["midpointMjdTai"].iloc[0])
    given = _from_apdb(sqlite_apdb, visit_time=midpoint)
    wrong = _from_apdb(sqlite_apdb, visit_time=40000.0)  # falls back to the whole region
    expected = list(header["diaSourceCat"]["diaSourceId"])
    for kwargs in (given, wrong):
        assert list(kwargs["diaSourceCat"]["diaSourceId"]) == expected


def test_the_apdb_gives_visit_inputs_and_their_run_kwargs(sqlite_apdb):
    images = sqlite_apdb / "visit" / "42"
    inputs = apdb_visit_inputs(sqlite_apdb / "apdb.yaml", VISIT, 42,
                               difference=images / "difference.fits",
                               science=images / "science.fits", ccd_exposure_id_bits=50)
    assert isinstance(inputs, VisitInputs)
    assert len(inputs.diaSourceCat) == N_SOURCES and list(inputs.diaSourceCat.index.names) == [
        "diaObjectId", "band", "diaSourceId"]
    assert len(inputs.diaSrcHistory) and len(inputs.diaForcedSources)
    assert inputs.diffIm == str(images / "difference.fits") and inputs.template is None
    assert inputs.science == str(images / "science.fits")
    assert inputs.ccdExposureIdBits == 50 and inputs.files == {}
    assert inputs.ssSource is None and inputs.mpc_orbits is None  # no solar-system tables
    kwargs = _from_apdb(sqlite_apdb)
    assert kwargs.keys() == inputs.run_kwargs().keys()
    import pandas as pd

    for name in ("diaSourceCat", "diaObjectCat", "diaSrcHistory", "diaForcedSources"):
        pd.testing.assert_frame_equal(kwargs[name], getattr(inputs, name))


def test_a_detector_without_rows_gives_no_alerts(sqlite_apdb, tmp_path):
    images = sqlite_apdb / "visit" / "42"
    kwargs = apdb_run_kwargs(sqlite_apdb / "apdb.yaml", VISIT, 43,
                             difference=images / "difference.fits", ccd_exposure_id_bits=50)
    assert all(len(kwargs[name]) == 0 for name in
               ("diaSourceCat", "diaObjectCat", "diaSrcHistory", "diaForcedSources"))
    assert AlertPackager(_config(tmp_path)).run(VisitInputs(**kwargs)).n_alerts == 0


def _config(out: Path) -> PackageAlertsConfig:
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(out)
    return config


def test_the_wrong_difference_image_is_a_named_error(sqlite_apdb):
    from alertpack.errors import ApdbError

    with pytest.raises(ApdbError, match="none inside the difference image's footprint"):
        apdb_run_kwargs(sqlite_apdb / "apdb.yaml", VISIT, 42,
                        difference=sqlite_apdb / "visit" / "41" / "difference.fits")


def test_old_schemas_get_renamed_and_converted_fields(sqlite_apdb, tmp_path):
    kwargs = _from_apdb(sqlite_apdb, schema_version="8.0")
    sources = kwargs["diaSourceCat"]
    # MJD TAI -> unix microseconds UTC: TAI - UTC = 37 s since 2017 (independent arithmetic)
    expected = (sources["timeProcessedMjdTai"].to_numpy() - 40587.0) * 86400e6 - 37e6
    np.testing.assert_allclose(sources["time_processed"].to_numpy(), expected, atol=1e3)
    objects = kwargs["diaObjectCat"]
    expected = (objects["validityStartMjdTai"].to_numpy() - 40587.0) * 86400e6 - 37e6
    np.testing.assert_allclose(objects["validityStart"].to_numpy(), expected, atol=1e3)
    assert len(_payloads(kwargs, tmp_path / "v8", "8.0")) == N_SOURCES

    kwargs = _from_apdb(sqlite_apdb, schema_version="7.3")
    sources = kwargs["diaSourceCat"]
    assert list(sources["is_negative"]) == list(sources["isNegative"])
    assert len(_payloads(kwargs, tmp_path / "v7", "7.3")) == N_SOURCES


def test_schema_the_apdb_cannot_fill_is_a_named_error(sqlite_apdb):
    with pytest.raises(ApdbSchemaError) as error:
        _from_apdb(sqlite_apdb, schema_version="6.1")
    message = str(error.value)
    assert "6.1" in message and "diaSource.flags" in message and "7.0 or later" in message
    assert "ccdVisitId" not in message  # filled from the source ids (ccdExposureIdBits given)
    with pytest.raises(ApdbSchemaError, match=r"diaSource\.ccdVisitId"):
        apdb_run_kwargs(sqlite_apdb / "apdb.yaml", VISIT, 42, schema_version="6.1",
                        difference=sqlite_apdb / "visit" / "42" / "difference.fits")


def test_one_apdb_per_process_and_config(sqlite_apdb, postgres_apdb):
    sqlite = open_apdb(sqlite_apdb / "apdb.yaml")
    assert open_apdb(str(sqlite_apdb / "apdb.yaml")) is sqlite
    assert open_apdb(postgres_apdb / "apdb.yaml") is not sqlite


def test_storing_through_psycopg3_is_refused_clearly(postgres_apdb, tmp_path):
    from alertpack.errors import InputError
    from alertpack.sample.apdb import store_visit

    pytest.importorskip("psycopg", reason="psycopg 3 not installed (SQLAlchemy's default)")
    text = (postgres_apdb / "apdb.yaml").read_text()
    (tmp_path / "pg3.yaml").write_text(text.replace("postgresql+psycopg2://", "postgresql://"))
    apdb = open_apdb(tmp_path / "pg3.yaml")  # reading works through psycopg 3
    assert apdb.containsVisitDetector(VISIT, 42)
    with pytest.raises(InputError, match=r"needs the psycopg2 driver.*postgresql\+psycopg2://"):
        store_visit(apdb, {})


def test_filling_the_same_detectors_twice_is_refused(sqlite_apdb, tmp_path):
    from alertpack.errors import InputError
    from alertpack.sample.apdb import write_apdb

    before = open_apdb(sqlite_apdb / "apdb.yaml").tableRowCount()
    with pytest.raises(InputError, match=r"already holds visit 2026112500123 detector\(s\) 42"):
        write_apdb(sqlite_apdb / "apdb.yaml", tmp_path, detectors=[40, 42])
    assert open_apdb(sqlite_apdb / "apdb.yaml").tableRowCount() == before
    assert not any(tmp_path.iterdir())


def test_config_outcomes(tmp_path):
    with pytest.raises(ApdbConfigError, match="does not exist; make one with `apdb-cli"):
        open_apdb(tmp_path / "nope.yaml")
    (tmp_path / "hello.yaml").write_text("hello\n")
    with pytest.raises(ApdbConfigError, match="is not an APDB config file"):
        open_apdb(tmp_path / "hello.yaml")
    (tmp_path / "gone.yaml").write_text(
        f"db_url: sqlite:///file:{tmp_path}/gone.db?mode=rw&uri=true\nimplementation_type: sql\n")
    with pytest.raises(ApdbConnectionError, match="unable to open database file"):
        open_apdb(tmp_path / "gone.yaml")
    sqlite3.connect(tmp_path / "empty.db").close()
    (tmp_path / "empty.yaml").write_text(
        f"db_url: sqlite:///file:{tmp_path}/empty.db?mode=rw&uri=true\nimplementation_type: sql\n")
    with pytest.raises(ApdbConfigError, match="has no APDB tables"):
        open_apdb(tmp_path / "empty.yaml")


def test_postgres_outcomes_never_show_the_password(postgres_server, tmp_path, monkeypatch):
    monkeypatch.delenv("LSST_DB_AUTH_CREDENTIALS", raising=False)
    secret = "s3cret-Wrong-pw"
    with socket_closed_port() as port:
        (tmp_path / "down.yaml").write_text(
            f"db_url: postgresql+psycopg2://apdb:{secret}@127.0.0.1:{port}/apdb\n"
            "implementation_type: sql\n")
        with pytest.raises(ApdbConnectionError) as error:
            open_apdb(tmp_path / "down.yaml")
    assert "Connection refused" in str(error.value) and secret not in str(error.value)
    assert not isinstance(error.value, ApdbCredentialsError)

    (tmp_path / "wrong.yaml").write_text(
        f"db_url: postgresql+psycopg2://apdb:{secret}@127.0.0.1:{postgres_server.port}/apdb\n"
        "implementation_type: sql\n")
    with pytest.raises(ApdbCredentialsError) as error:
        open_apdb(tmp_path / "wrong.yaml")
    assert "password authentication failed" in str(error.value)
    assert secret not in str(error.value) and "***" in str(error.value)

    (tmp_path / "nopw.yaml").write_text(
        f"db_url: {postgres_server.url}\nimplementation_type: sql\n")
    with pytest.raises(ApdbCredentialsError, match="no password supplied"):
        open_apdb(tmp_path / "nopw.yaml")


class socket_closed_port:
    """A port on 127.0.0.1 that nothing listens on."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    def __exit__(self, *exc_info) -> None:
        return None


@pytest.mark.slow
def test_cli_package_from_apdb(sqlite_apdb, tmp_path):
    common = ["package", "--apdb", "apdb.yaml", "--visit", str(VISIT), "--id-bits", "50",
              "--difference", "visit/{detector}/difference.fits",
              "--template", "visit/{detector}/template.fits"]
    many = _cli(*common, "--detector", "41-42", "--workers", "2", "-o", str(tmp_path / "many"),
                cwd=sqlite_apdb)
    assert many.returncode == 0, many.stderr[-3000:]
    assert f"packaged {2 * N_SOURCES} alerts of visit {VISIT}, 2 detectors" in many.stdout
    counts = {}
    for path in (tmp_path / "many").glob("*.avro"):
        with open(path, "rb") as stream:
            counts[path.name] = sum(1 for _ in fastavro.reader(stream))
    assert sorted(counts.values()) == [N_SOURCES, N_SOURCES]

    empty = _cli(*common[:-4], "--difference", "visit/42/difference.fits", "--detector", "43",
                 "-o", str(tmp_path / "empty"), cwd=sqlite_apdb)
    assert empty.returncode == 0, empty.stderr[-3000:]
    assert "packaged 0 alerts" in empty.stdout and "no DiaSources in the APDB" in empty.stdout



def test_cli_errors_are_one_line(sqlite_apdb, tmp_path, capsys, monkeypatch):
    from alertpack.cli import main

    monkeypatch.chdir(sqlite_apdb)
    common = ["package", "--visit", str(VISIT), "--detector", "42",
              "--difference", "visit/{detector}/difference.fits", "-o", str(tmp_path / "out")]
    bits = ["--id-bits", "50"]
    for options, message in [
        (["--apdb", "missing.yaml", *bits], "missing.yaml does not exist"),
        (["--apdb", "apdb.yaml", "--schema", "6.1", *bits], "cannot fill alert schema 6.1"),
        (["--apdb", "apdb.yaml", "--detector", "x", *bits], "expected numbers and ranges"),
        (["--apdb", "apdb.yaml"], "--apdb needs --id-bits N"),
    ]:
        assert main([*common, *options]) == 2
        err = capsys.readouterr().err
        assert err.startswith("alertpack package: error:") and message in err
        assert err.strip().count("\n") == 0
    assert not (tmp_path / "out").exists()  # nothing written by the failures


def test_config_file_holds_no_password(postgres_apdb):
    text = (postgres_apdb / "apdb.yaml").read_text()
    assert "postgresql+psycopg2://apdb@127.0.0.1" in text
    assert json.loads(os.environ["LSST_DB_AUTH_CREDENTIALS"])[0]["password"] not in text
