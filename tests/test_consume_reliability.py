"""``alertpack consume``: nothing read is lost, whatever happens (real Tansu broker).

An offset is committed only once its alert is on disk; Ctrl-C and SIGTERM write
what was read, commit, then exit 130/143; a message that is not an alert is kept
aside in ``DIR/rejected/`` and its neighbours are still written.
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
from confluent_kafka import Producer

from alertpack.cli import main as cli_main
from alertpack.kafka.producer import AlertProducer
from alertpack.kafka.settings import KafkaSettings
from alertpack.schema import pack_wire
from broker import make_alerts

pytestmark = pytest.mark.kafka

GARBAGE = b"this is not an alert \xff\x00"


def produce_alerts(server: str, topic: str, alerts, failed_dir) -> None:
    settings = KafkaSettings.resolve(servers=server, topic=topic, flush_timeout=10.0)
    with AlertProducer(settings, failed_dir=failed_dir) as producer:
        assert producer.send(alerts).delivered == len(alerts)


def produce_partition0(server: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": server})
    for value in values:
        producer.produce(topic, value, partition=0)
    assert producer.flush(10) == 0


def ids_in(directory: Path) -> list[int]:
    """diaSourceIds of every alert in the Avro files of ``directory`` (not rejected/)."""
    ids = []
    for path in sorted(directory.glob("*.avro")):
        with path.open("rb") as stream:
            ids.extend(record["diaSourceId"] for record in fastavro.reader(stream))
    return ids


def consume_argv(server: str, topic: str, out: Path, group: str, timeout: float) -> list[str]:
    return [
        "consume", "--server", server, "--topic", topic, "--from-beginning",
        "--group", group, "--timeout", str(timeout), "--out", str(out),
    ]


def test_bad_message_is_kept_aside_and_its_neighbours_written(kafka_broker, tmp_path, capsys):
    server, topic = kafka_broker.bootstrap, "garbage-between"
    first, second = make_alerts(2, first_id=40_000)
    produce_partition0(
        server,
        topic,
        [pack_wire(first.schema_id, first.payload), GARBAGE, pack_wire(1101, second.payload)],
    )
    out = tmp_path / "out"
    status = cli_main(consume_argv(server, topic, out, "g-garbage", 2.0))
    captured = capsys.readouterr()
    assert status == 1
    assert sorted(ids_in(out)) == [40_000, 40_001]
    (kept,) = (out / "rejected").glob(f"{topic}-*.avro")
    with kept.open("rb") as stream:
        (record,) = list(fastavro.reader(stream))
    assert (record["partition"], record["offset"], record["value"]) == (0, 1, GARBAGE)
    assert record["reason"].startswith(f"{topic}[0]@1: ")
    assert f"{topic}[0]@1" in captured.err and f"kept in {out / 'rejected'}/" in captured.err
    assert "skipped 1 message(s) that are not alerts" in captured.err
    # everything (the bad message too) was committed: the group reads nothing more
    again = tmp_path / "again"
    assert cli_main(consume_argv(server, topic, again, "g-garbage", 1.5)) == 0
    assert ids_in(again) == []


def test_printing_goes_past_a_bad_message(kafka_broker, capsys):
    server, topic = kafka_broker.bootstrap, "garbage-print"
    alert = make_alerts(1, first_id=41_000)[0]
    produce_partition0(server, topic, [GARBAGE, pack_wire(alert.schema_id, alert.payload)])
    argv = ["consume", "--server", server, "--topic", topic, "--from-beginning", "--timeout", "2"]
    assert cli_main(argv) == 1
    captured = capsys.readouterr()
    assert "alertId=41000" in captured.out
    assert f"{topic}[0]@0" in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_writes_what_was_read_then_commits(kafka_broker, tmp_path, signum, status):
    server = kafka_broker.bootstrap
    topic = f"interrupted-{signum}"
    sent = make_alerts(36, first_id=50_000 + 100 * signum)
    produce_alerts(server, topic, sent, tmp_path / "failed")
    # a marker read last on partition 0 tells that the reader is at work
    produce_partition0(server, topic, [GARBAGE])
    out, group = tmp_path / "out", f"g-interrupt-{signum}"
    command = [sys.executable, "-m", "alertpack", *consume_argv(server, topic, out, group, 60)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 40
    while not any("skipped" in line for line in lines):
        assert process.poll() is None and time.monotonic() < deadline, lines
        time.sleep(0.1)
    time.sleep(1.0)  # the alerts are read, not yet written (files come every 5 s)
    process.send_signal(signum)
    assert process.wait(timeout=20) == status
    reader.join(timeout=5)
    assert "interrupted; wrote the" in "".join(lines), lines
    assert "Traceback" not in "".join(lines)
    first_run = ids_in(out)
    assert first_run, "what was read before the interrupt is on disk"
    # a second run of the group starts after what the first one wrote: no loss, no repeat
    rest = tmp_path / "rest"
    assert cli_main(consume_argv(server, topic, rest, group, 2.0)) == 0
    assert sorted(first_run + ids_in(rest)) == sorted(a.alert_id for a in sent)
