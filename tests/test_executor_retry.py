"""The detector executor's retries: transient errors with backoff, permanent ones never.

First the policy itself, with loaders that fail on purpose and short waits;
then for real: an APDB on its own PostgreSQL server (tests/pgserver.py),
stopped when the detector job starts and started again a second later, read
by local worker processes and by this process, beside a detector whose
catalog lacks a column.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from alertpack.config import PackageAlertsConfig
from alertpack.errors import (
    ApdbConnectionError,
    ApdbCredentialsError,
    BrokerUnavailableError,
    InputError,
)
from alertpack.sample import make_visit, write_visit
from alertpack.scaleout.jobs import visit_dir_loader
from alertpack.scaleout.pool import DetectorJob, RetryPolicy, package_detectors
from pgserver import PgServer, pg_bindir

#: waits of 0.1, 0.2, 0.4 s: the policy's arithmetic without the default's 14 s
FAST = RetryPolicy(first_delay=0.1, backoff=2.0)
VISIT = 2026112500123


def config_for(directory: Path) -> PackageAlertsConfig:
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(directory)
    return config


@dataclass(frozen=True)
class FailsFirst:
    """A loader whose first ``failures`` calls raise ``error``, then a small sample detector.

    Each call appends its time (monotonic, the same clock in every process)
    to ``log``, so the test sees the attempts and the waits between them.
    """

    log: str
    failures: int
    error: type[Exception]
    detector: int = 0

    def __call__(self):
        with open(self.log, "a") as stream:
            stream.write(f"{time.monotonic()}\n")
        calls = len(Path(self.log).read_text().split())
        if calls <= self.failures:
            raise self.error(f"attempt {calls}: nobody answers")
        return make_visit(4, (200, 220), detector=self.detector, seed=self.detector).inputs()


def call_times(log: Path) -> list[float]:
    return [float(line) for line in log.read_text().split()]


def test_the_default_policy_waits_2_4_8_seconds():
    policy = RetryPolicy()
    assert (policy.transient_attempts, policy.crash_attempts) == (4, 2)
    assert policy.delays() == [2.0, 4.0, 8.0]
    assert RetryPolicy(first_delay=10, max_delay=15).delays() == [10.0, 15.0, 15.0]
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(transient_attempts=0)


def test_a_transient_error_is_retried_with_backoff_until_it_passes(tmp_path):
    log = tmp_path / "calls"
    job = DetectorJob("flaky", FailsFirst(str(log), 2, ApdbConnectionError))
    summary = package_detectors([job], config_for(tmp_path / "out"), workers=1, retry=FAST)
    (detector,) = summary.detectors
    assert summary.failures == [] and detector.n_alerts == 4
    assert detector.attempts == 3
    assert detector.attempt_errors == ["attempt 1: nobody answers", "attempt 2: nobody answers"]
    first, second, third = call_times(log)
    assert second - first >= 0.1 and third - second >= 0.2  # the backoff, doubling
    assert third - second < 2.0


@pytest.mark.parametrize(
    ("error", "attempts"),
    [
        (ApdbConnectionError, 4),     # transient: the policy's attempts, then reported
        (BrokerUnavailableError, 4),
        (ApdbCredentialsError, 1),    # permanent, though an ApdbError: never retried
        (InputError, 1),
        (RuntimeError, 2),            # a crash: retried once, at once
    ],
)
def test_attempts_by_kind_of_error(tmp_path, error, attempts):
    log = tmp_path / "calls"
    job = DetectorJob("failing", FailsFirst(str(log), 99, error))
    summary = package_detectors([job], config_for(tmp_path / "out"), workers=1, retry=FAST)
    (failure,) = summary.failures
    assert failure.attempts == attempts == len(call_times(log))
    assert len(failure.attempt_errors) == attempts - 1
    assert failure.error.endswith(f"attempt {attempts}: nobody answers")
    if attempts == 1 or error is RuntimeError:
        gaps = [b - a for a, b in zip(call_times(log), call_times(log)[1:], strict=False)]
        assert all(gap < 1.0 for gap in gaps)  # no backoff for these


def test_a_job_waiting_for_its_retry_holds_no_worker(tmp_path):
    slow = RetryPolicy(first_delay=1.0)
    jobs = [DetectorJob("flaky", FailsFirst(str(tmp_path / "flaky"), 1, BrokerUnavailableError)),
            DetectorJob("d1", FailsFirst(str(tmp_path / "d1"), 0, RuntimeError, 1)),
            DetectorJob("d2", FailsFirst(str(tmp_path / "d2"), 0, RuntimeError, 2))]
    summary = package_detectors(jobs, config_for(tmp_path / "out"), workers=1, retry=slow)
    assert [d.name for d in summary.detectors] == ["d1", "d2", "flaky"]
    assert call_times(tmp_path / "d2")[0] < call_times(tmp_path / "flaky")[1]
    assert [d.attempts for d in summary.detectors] == [1, 1, 2]


def test_a_transient_error_crosses_from_a_worker_process(tmp_path):
    jobs = [DetectorJob("flaky", FailsFirst(str(tmp_path / "calls"), 1, ApdbConnectionError)),
            DetectorJob("good", FailsFirst(str(tmp_path / "good"), 0, RuntimeError, 1))]
    summary = package_detectors(jobs, config_for(tmp_path / "out"), workers=2, retry=FAST)
    assert summary.failures == [] and summary.n_alerts == 8
    attempts = {d.name: d.attempts for d in summary.detectors}
    assert attempts == {"flaky": 2, "good": 1}


# --------------------------------------------------------------------------- a real outage


@pytest.fixture(scope="module")
def outage_apdb(tmp_path_factory):
    """An APDB with detector 42 on a PostgreSQL server of its own (the test stops it)."""
    pytest.importorskip("lsst.dax.apdb", reason="lsst-dax-apdb (extra 'apdb')")
    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install -y postgresql)")
    from lsst.dax.apdb.sql import ApdbSql

    from alertpack.sample.apdb import write_apdb

    server = PgServer(bindir).start()
    work = tmp_path_factory.mktemp("outage-apdb")
    saved = os.environ.get("LSST_DB_AUTH_CREDENTIALS")
    os.environ["LSST_DB_AUTH_CREDENTIALS"] = server.auth_env
    try:
        ApdbSql.init_database(server.url).save(str(work / "apdb.yaml"))
        write_apdb(work / "apdb.yaml", work / "visit", detectors=[42], n_sources=6,
                   image_shape=(256, 256), n_history=3, n_forced=3)
        yield server, work
    finally:
        server.stop()
        if saved is None:
            os.environ.pop("LSST_DB_AUTH_CREDENTIALS", None)
        else:
            os.environ["LSST_DB_AUTH_CREDENTIALS"] = saved


@dataclass(frozen=True)
class ApdbDetector:
    """Detector 42 read from the APDB; each call appends its time to ``log``."""

    log: str
    config: str
    images: str
    auth_env: str

    def __call__(self):
        # imported before the start is logged: in a fresh worker they take longer than the
        # outage, and the job would only reach the database once it is back
        import lsst.dax.apdb.sql  # noqa: F401
        import psycopg2  # noqa: F401

        from alertpack.inputs.apdb import apdb_visit_inputs

        # forkserver workers keep the environment their server started with
        os.environ["LSST_DB_AUTH_CREDENTIALS"] = self.auth_env
        with open(self.log, "a") as stream:
            stream.write(f"{time.monotonic()}\n")
        images = Path(self.images)
        return apdb_visit_inputs(self.config, VISIT, 42, difference=images / "difference.fits",
                                 template=images / "template.fits", ccd_exposure_id_bits=50)


def _bad_column_dir(directory: Path) -> Path:
    write_visit(make_visit(4, (200, 220), detector=7), directory)
    path = directory / "diaSourceCat.parquet"
    pd.read_parquet(path).drop(columns=["ra"]).to_parquet(path, index=False)
    return directory


@pytest.mark.parametrize("workers", [1, 2], ids=["this-process", "worker-processes"])
def test_database_down_when_the_job_starts_is_packaged_after_a_retry(
        outage_apdb, tmp_path, workers):
    server, work = outage_apdb
    log = tmp_path / "apdb-calls"
    loader = ApdbDetector(str(log), str(work / "apdb.yaml"), str(work / "visit" / "42"),
                          server.auth_env)
    jobs = [DetectorJob("apdb", loader),
            DetectorJob("bad", visit_dir_loader(_bad_column_dir(tmp_path / "bad")))]
    restarted: list[float] = []

    def restart_a_second_after_the_job_starts() -> None:
        deadline = time.monotonic() + 120
        while not log.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1.0)
        server.resume()
        restarted.append(time.monotonic())

    server.halt()
    thread = threading.Thread(target=restart_a_second_after_the_job_starts)
    thread.start()
    try:
        summary = package_detectors(jobs, config_for(tmp_path / "out"), workers=workers)
    finally:
        thread.join()
        if not restarted:
            server.resume()

    packaged = {d.name: d for d in summary.detectors}
    failed = {f.name: f for f in summary.failures}
    assert set(packaged) == {"apdb"} and set(failed) == {"bad"}
    apdb = packaged["apdb"]
    assert apdb.n_alerts == 6 and len(apdb.paths) == 1
    calls = call_times(log)
    assert apdb.attempts == len(calls) >= 2
    assert calls[0] < restarted[0] <= calls[-1]  # down at the first attempt, up at the last
    assert calls[1] - calls[0] >= 2.0  # the default policy's first wait
    reason = apdb.attempt_errors[0]
    assert reason.startswith(("cannot open database", "database ")) and "apdb.yaml" in reason
    assert server.password not in reason
    # the bad column: reported at once, the file named
    bad = failed["bad"]
    assert bad.attempts == 1 and bad.attempt_errors == []
    assert "diaSourceCat (file" in bad.error and "lacks column(s) ra" in bad.error
