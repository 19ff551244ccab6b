"""Signals during the end-of-run Kafka flush of ``alertpack package``, in a real subprocess.

The broker is unreachable (a closed port) and the flush timeout long (60 s):
SIGINT or SIGTERM must end the flush at once, with every alert in the
failed-alerts file and said on stderr; SIGKILL leaves no partial file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fastavro
import pytest

from alertpack.sinks.failed import read_failed_alerts
from broker import free_port

pytestmark = pytest.mark.kafka

N_SOURCES = 12
PROMPT_EXIT_S = 5.0  # the flush alone would take 60 s


def start_package(out: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "alertpack", "package", "--sample",
        "--n-sources", str(N_SOURCES), "--image-size", "300x300", "--produce", "-o", str(out),
        "-c", f"kafkaServer=127.0.0.1:{free_port()}", "-c", "kafkaTopic=interrupted",
        "-c", "kafkaFlushTimeout=60", "-c", "kafkaDeliveryTimeout=120",
        "-c", "kafkaCheck=none",  # no check at the start: the flush meets the broker down
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_flushing(process: subprocess.Popen, out: Path, timeout: float = 60.0) -> Path:
    """The alert file is written just before the alerts are produced: wait for it, then a bit."""
    deadline = time.monotonic() + timeout
    while not list(out.glob("*.avro")):
        if process.poll() is not None:
            raise AssertionError(f"package exited early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("package did not write its alert file in time")
        time.sleep(0.02)
    time.sleep(0.7)  # 12 alerts queue in milliseconds: now it waits in the flush
    assert process.poll() is None
    (alert_file,) = out.glob("*.avro")
    return alert_file


def alert_ids_in(alert_file: Path) -> list[int]:
    with open(alert_file, "rb") as stream:
        return sorted(record["diaSourceId"] for record in fastavro.reader(stream))


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_ends_the_flush_and_saves_every_alert(tmp_path, signum, exit_code):
    out = tmp_path / "alerts"
    process = start_package(out)
    alert_file = wait_until_flushing(process, out)
    signalled = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - signalled < PROMPT_EXIT_S
    assert process.returncode == exit_code, stderr
    (failed_file,) = (out / "failed").glob("failed-*.avro")
    failed = read_failed_alerts(failed_file)
    assert sorted(f.alert.alert_id for f in failed) == alert_ids_in(alert_file)
    assert len(failed) == N_SOURCES
    name = signal.Signals(signum).name
    assert all(f"interrupted by {name}" in f.reason for f in failed)
    assert "interrupted" in stderr and str(failed_file) in stderr
    assert f"{N_SOURCES} not delivered" in stderr
    assert [p.name for p in (out / "failed").iterdir()] == [failed_file.name]  # no temp file


def test_sigkill_mid_flush_leaves_no_partial_failed_file(tmp_path):
    # Alerts held in memory at SIGKILL cannot be saved; the alert file on disk is
    # complete, and re-running the visit sends them again.
    out = tmp_path / "alerts"
    process = start_package(out)
    alert_file = wait_until_flushing(process, out)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert list(out.glob("failed/failed-*.avro")) == []  # written only once the flush ends
    assert len(alert_ids_in(alert_file)) == N_SOURCES


def test_sigkill_while_the_failed_file_is_written_leaves_it_whole_or_absent(tmp_path):
    out = tmp_path / "alerts"
    process = start_package(out)
    alert_file = wait_until_flushing(process, out)
    process.send_signal(signal.SIGINT)
    time.sleep(0.01)  # the failed file is being written about now
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    for path in out.glob("failed/failed-*.avro"):
        assert sorted(f.alert.alert_id for f in read_failed_alerts(path)) == alert_ids_in(
            alert_file
        )
    assert os.path.getsize(alert_file) > 0
