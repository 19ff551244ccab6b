"""``alertpack consume`` against an attacker's topic (real Tansu broker).

A record followed by extra bytes is rejected, not written into a file it
would corrupt; a message too large to receive is skipped with a WARNING that
names the setting, and the group goes on past it; the buffer is bounded by
bytes; a flood of garbage is a few lines; topic names make visible, short
file names.
"""

from __future__ import annotations

import json
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Producer
from lsst.alert.packet import Schema

from alertpack.cli import main as cli_main
from alertpack.schema import load_schema, pack_wire
from alertpack.tools.consume import consume_to_directory, topic_file_stem
from broker import make_alerts

pytestmark = pytest.mark.kafka


def produce(server: str, topic: str, values: list[tuple[int, bytes]], **config) -> None:
    producer = Producer({"bootstrap.servers": server, **config})
    for partition, value in values:
        producer.produce(topic, value, partition=partition)
    assert producer.flush(20) == 0


def wire(alert, extra: bytes = b"") -> bytes:
    return pack_wire(alert.schema_id, alert.payload + extra)


def argv(server: str, topic: str, out: Path, *more: str) -> list[str]:
    return ["consume", "--server", server, "--topic", topic, "--from-beginning",
            "--timeout", "2", "--out", str(out), *more]


def alerts_in(directory: Path) -> list[dict]:
    """Every alert of the Avro files of ``directory``, each checked by lsst.alert.packet."""
    official = Schema.from_file(str(load_schema("11.1").path))
    records = []
    for path in sorted(directory.glob("*.avro")):
        with path.open("rb") as stream:
            for record in fastavro.reader(stream):
                assert official.validate(record)
                records.append(record)
    return records


def rejected_in(directory: Path) -> list[dict]:
    """The records of the rejected-message files of ``consume --out directory``."""
    records = []
    for path in sorted((directory / "rejected").glob("*.avro")):
        with path.open("rb") as stream:
            records.extend(fastavro.reader(stream))
    return records


def test_a_record_with_bytes_after_it_is_rejected_not_written(kafka_broker, tmp_path, capsys):
    # it was accepted raw and every later alert of its file became undecodable (exit 0)
    server, topic = kafka_broker.bootstrap, "trailing-bytes"
    first, second, third = make_alerts(3, first_id=60_000)
    produce(server, topic, [(0, wire(first)), (0, wire(second, b"\x02\x04 more")),
                            (0, wire(third))])
    out = tmp_path / "out"
    assert cli_main(argv(server, topic, out, "--group", "g-trailing")) == 1
    err = capsys.readouterr().err
    assert f"{topic}[0]@1" in err and "bytes after the record" in err
    assert sorted(r["diaSourceId"] for r in alerts_in(out)) == [60_000, 60_002]
    (record,) = rejected_in(out)
    assert (record["offset"], record["value"]) == (1, wire(second, b"\x02\x04 more"))
    assert record["reason"].startswith(f"{topic}[0]@1: payload of ")
    # the group goes on after it: nothing is read again
    assert cli_main(argv(server, topic, tmp_path / "again", "--group", "g-trailing")) == 0


def test_a_message_too_large_to_receive_is_skipped_and_the_group_goes_on(
    kafka_broker, tmp_path, capsys
):
    # a 120 MB message ahead of a good alert: consume read nothing, said nothing, exit 0,
    # and the group stayed stuck; here 3 MB against a consumer limited to 1 MB
    server, topic = kafka_broker.bootstrap, "too-large"
    good, other = make_alerts(2, first_id=61_000)
    produce(server, topic, [(0, b"\x00" * 3_000_000), (0, wire(good)), (1, wire(other))],
            **{"message.max.bytes": 10_000_000})
    limits = ["-X", "receive.message.max.bytes=1000000", "-X", "fetch.max.bytes=500000",
              "-X", "max.partition.fetch.bytes=500000", "-X", "message.max.bytes=500000",
              # the wait for librdkafka's reconnection after the refused answers, kept short
              "-X", "reconnect.backoff.max.ms=1000"]
    out = tmp_path / "out"
    assert cli_main(argv(server, topic, out, "--group", "g-large", *limits)) == 1
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if "too large to receive" in line]
    assert f"{topic}[0]@0" in line and "receive.message.max.bytes=1,000,000" in line
    assert "raise the consumer properties receive.message.max.bytes" in line and "-X" in line
    assert sorted(r["diaSourceId"] for r in alerts_in(out)) == [61_000, 61_001]
    (record,) = rejected_in(out)
    assert (record["partition"], record["offset"], record["received"]) == (0, 0, False)
    assert record["value"] == b"" and "too large to receive" in record["reason"]
    # its offset was committed with its neighbours': the group is not stuck there
    assert cli_main(argv(server, topic, tmp_path / "again", "--group", "g-large", *limits)) == 0
    assert alerts_in(tmp_path / "again") == []


def test_the_consume_buffer_is_bounded_by_bytes(kafka_broker, tmp_path):
    # 150 valid 8 MB alerts took 2 GB: the buffer was bounded by count (1,000) and time
    server, topic = kafka_broker.bootstrap, "big-alerts"
    alerts = make_alerts(24, first_id=62_000, cutout_bytes=100_000)
    produce(server, topic, [(0, wire(alert)) for alert in alerts])
    out = tmp_path / "out"
    written = []
    consume_to_directory(server, topic, out, from_beginning=True, timeout=2.0,
                         max_pending_bytes=1_000_000, on_file=written.append)
    sizes = [path.stat().st_size for path in written]
    assert len(written) >= 6 and max(sizes) < 1_000_000 + 400_000, sizes
    assert sorted(r["diaSourceId"] for r in alerts_in(out)) == [a.alert_id for a in alerts]


def test_a_flood_of_garbage_is_a_few_lines_and_every_message_is_kept(
    kafka_broker, tmp_path, capsys
):
    # 5,000 one-byte messages made 5,000 stderr lines
    server, topic = kafka_broker.bootstrap, "garbage-flood"
    (alert,) = make_alerts(1, first_id=63_000)
    produce(server, topic, [(0, bytes([i % 256])) for i in range(5000)] + [(0, wire(alert))])
    out = tmp_path / "out"
    assert cli_main(argv(server, topic, out)) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) <= 20, err
    text = "\n".join(err)
    assert "skipped 1000 more message(s) that are not alerts (1010 in all" in text
    assert "more message(s) that are not alerts (5000 in all" in text
    assert err[-1].endswith("skipped 5000 message(s) that are not alerts")
    kept = rejected_in(out)
    assert sorted(r["offset"] for r in kept) == list(range(5000))
    assert all(r["value"] == bytes([r["offset"] % 256]) for r in kept)
    assert len(list((out / "rejected").iterdir())) <= 3  # a file per write, not per message
    assert [r["diaSourceId"] for r in alerts_in(out)] == [63_000]


def test_topic_names_make_visible_short_file_names(kafka_broker, tmp_path, capsys):
    # a 200-character topic could not be consumed to files; a leading "." made hidden files
    server = kafka_broker.bootstrap
    topic = "." + "x" * 199
    (alert,) = make_alerts(1, first_id=64_000)
    produce(server, topic, [(0, wire(alert)), (0, b"junk")])
    out = tmp_path / "out"
    assert cli_main(argv(server, topic, out)) == 1
    names = [path.name for path in out.rglob("*") if path.is_file()]
    assert names and all(not name.startswith(".") and len(name) < 160 for name in names)
    assert topic_file_stem(topic) != topic_file_stem("." + "x" * 198 + "y")
    capsys.readouterr()
    assert cli_main(["inspect", "--json", str(out)]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["diaSourceId"] == 64_000


def test_property_option_reaches_the_consumer(kafka_broker, capsys):
    status = cli_main(["consume", "--server", kafka_broker.bootstrap, "--topic", "nothing-here",
                       "--timeout", "1", "-X", "no.such.property=1"])
    err = capsys.readouterr().err
    assert status == 2 and "no.such.property" in err and err.count("\n") == 1


def test_rejected_values_leave_memory_once_kept(kafka_broker, tmp_path):
    server, topic = kafka_broker.bootstrap, "rejected-memory"
    produce(server, topic, [(0, b"x" * 100_000) for _ in range(5)])
    result = consume_to_directory(server, topic, tmp_path / "out", from_beginning=True,
                                  timeout=2.0)
    assert len(result.rejected) == 5
    # each value is on disk, not in memory
    assert all(r.value == b"" and r.path is not None for r in result.rejected)
    assert [len(r["value"]) for r in rejected_in(tmp_path / "out")] == [100_000] * 5
