"""Detector jobs on a real Dask cluster: a scheduler and two workers started here.

The cluster is real processes on 127.0.0.1 (``dask scheduler``, ``dask
worker --nthreads 1 --no-nanny``); the last test SIGKILLs one worker in the
middle of a detector, producing to a real broker, and checks that nothing is
lost and that duplicates in the topic stay within the count reported.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import fastavro
import pytest

pytest.importorskip("distributed")

from alertpack import PackageAlertsConfig
from alertpack.errors import ConfigError
from alertpack.sample import ccd_visit_id, make_visit, write_visit
from alertpack.scaleout.jobs import START_EVENT
from alertpack.scaleout.pool import DetectorExecutor, package_detectors, sample_detector_loader
from broker import free_port

pytestmark = pytest.mark.slow

DASK = str(Path(sys.executable).with_name("dask"))
SAMPLE_VISIT = 2026112500123  # make_visit's default visit number


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two single-thread workers; yields (address, {address: Popen})."""
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=open(logs / "scheduler.log", "w"),
    )]
    for name in ("w0", "w1"):
        processes.append(subprocess.Popen(
            [DASK, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
             "--host", "127.0.0.1", "--name", name],
            stdout=subprocess.DEVNULL, stderr=open(logs / f"{name}.log", "w"),
        ))
    try:
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            pids = client.run(os.getpid)
        by_pid = {p.pid: p for p in processes[1:]}
        yield address, {worker: by_pid[pid] for worker, pid in pids.items()}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()


def _alert_count(path: Path) -> int:
    with open(path, "rb") as stream:
        return sum(1 for _ in fastavro.reader(stream))


def test_cli_packages_detector_dirs_on_the_cluster_like_locally(cluster, tmp_path):
    from alertpack.scaleout.jobs import detector_dirs, visit_dir_loader

    address, _ = cluster
    for detector in range(3):
        write_visit(make_visit(6, (200, 220), detector=detector, seed=detector),
                    tmp_path / "visit" / f"det{detector}")
    run = subprocess.run(
        [sys.executable, "-m", "alertpack.cli", "package", "--visit-dir",
         str(tmp_path / "visit"), "-o", str(tmp_path / "dask"), "--scheduler", address],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "Dask cluster" in run.stderr
    table = dict(line.rsplit(None, 1) for line in run.stdout.splitlines()[2:11])
    assert table["alerts"] == "18" and table["failed"] == "0", run.stdout
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(tmp_path / "local")
    loaders = [visit_dir_loader(d) for d in detector_dirs([tmp_path / "visit"])]
    assert package_detectors(loaders, config, workers=1).n_alerts == 18
    dask_files = sorted((tmp_path / "dask").glob("*.avro"))
    local_files = sorted((tmp_path / "local").glob("*.avro"))
    assert [p.name for p in dask_files] == [p.name for p in local_files]
    assert len(dask_files) == 3
    for dask_file, local_file in zip(dask_files, local_files, strict=True):
        with open(dask_file, "rb") as a, open(local_file, "rb") as b:
            assert list(fastavro.reader(a)) == list(fastavro.reader(b))


def test_no_secret_reaches_the_scheduler(cluster, tmp_path, monkeypatch):
    from distributed import Client

    address, _ = cluster
    secret = "dask-s3cret-value-42"
    # the client process has credentials, in its environment only
    monkeypatch.setenv("AP_KAFKA_PRODUCER_PASSWORD", secret)
    monkeypatch.setenv("AP_SCHEMA_REGISTRY_PASSWORD", secret)
    held = PackageAlertsConfig()
    held.schemaRegistryUrl = f"https://alice:{secret}@registry:8081"
    with pytest.raises(ConfigError, match="never sent to a Dask cluster"):
        DetectorExecutor(held, scheduler=address)  # refused before anything is submitted
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(tmp_path / "out")
    config.kafkaUsername = "alice"
    seen: list[bytes] = []
    stop, watching = threading.Event(), threading.Event()

    def task_payloads(dask_scheduler) -> list[bytes]:
        # runs on the scheduler (a local function: sent by value, not by module name)
        from distributed.protocol.pickle import dumps

        return [dumps(task.run_spec) for task in dask_scheduler.tasks.values()
                if task.run_spec is not None]

    def watch() -> None:
        with Client(address, timeout=30) as client:
            watching.set()
            while not stop.is_set():
                seen.extend(client.run_on_scheduler(task_payloads))

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert watching.wait(timeout=30)
    try:
        loaders = [sample_detector_loader(d, 5, (600, 600)) for d in range(4)]
        summary = package_detectors(loaders, config, scheduler=address)
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert summary.n_alerts == 20 and summary.failures == []
    assert any(b"alertWriteLocation" in payload for payload in seen), "no payload seen"
    assert not any(secret.encode() in payload for payload in seen)


def _kill_mid_detector(address: str, workers: dict, out: Path,
                       since: float) -> tuple[str, set[str]]:
    """SIGKILL the first worker seen starting a detector whose file is not written yet."""
    from distributed import Client

    with Client(address, timeout=30) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            events = [e for t, e in client.get_events(START_EVENT) if t >= since]
            for event in events:
                name, worker = event["detector"], event["worker"]
                if not (out / f"{ccd_visit_id(SAMPLE_VISIT, int(name))}.avro").exists():
                    workers[worker].send_signal(signal.SIGKILL)
                    started_there = {
                        e["detector"] for t, e in client.get_events(START_EVENT)
                        if t >= since and e["worker"] == worker
                    }
                    return worker, started_there
            time.sleep(0.02)
    raise AssertionError("no detector started on the cluster within 60 s")


@pytest.mark.kafka
def test_a_killed_worker_loses_no_detector(cluster, kafka_broker, tmp_path):
    from broker import create_topic, read_topic

    address, workers = cluster
    out = tmp_path / "alerts"
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(out)
    config.doProduceAlerts = True
    config.kafkaServer = kafka_broker.bootstrap
    config.kafkaTopic = topic = "dask-killed-worker"
    create_topic(kafka_broker.bootstrap, topic)  # each worker's packager checks it exists
    n_detectors, n_sources = 8, 7
    loaders = [sample_detector_loader(d, n_sources, (900, 900)) for d in range(n_detectors)]
    result = {}
    since = time.time()
    runner = threading.Thread(target=lambda: result.update(
        summary=package_detectors(loaders, config, scheduler=address)))
    runner.start()
    killed, started_on_killed = _kill_mid_detector(address, workers, out, since)
    runner.join(timeout=120)
    summary = result["summary"]

    assert workers[killed].wait(timeout=10) == -signal.SIGKILL
    assert summary.failures == []
    assert summary.n_alerts == n_detectors * n_sources
    files = sorted(out.glob("*.avro"))
    expected = sorted(f"{ccd_visit_id(SAMPLE_VISIT, d)}.avro" for d in range(n_detectors))
    assert [f.name for f in files] == expected
    assert all(_alert_count(f) == n_sources for f in files)
    assert not list(out.glob(".*"))  # no partial temporary file left behind
    by_name = {d.name: d for d in summary.detectors}
    unfinished = {n for n in started_on_killed if by_name[n].worker != killed}
    assert unfinished, "the kill landed while a detector was running"
    for name in unfinished:
        assert by_name[name].attempts >= 2
    assert {d.name for d in summary.redone} >= unfinished
    # Kafka: every alert delivered; a redone detector may have sent some twice, and the
    # summary's count bounds how many
    assert summary.n_delivered == summary.n_alerts and summary.n_failed == 0
    assert summary.n_possible_duplicates == sum(d.n_alerts for d in summary.redone) > 0
    messages = read_topic(kafka_broker.bootstrap, topic, expected=summary.n_alerts)
    ids = [m.value() for m in messages]
    assert len(set(ids)) == summary.n_alerts
    assert len(ids) - len(set(ids)) <= summary.n_possible_duplicates
