"""Reading alerts back from a real broker (Tansu): API, errors, ``alertpack consume``."""

from __future__ import annotations

import threading
import time

import fastavro
import pytest
from confluent_kafka import Producer
from lsst.alert.packet import retrieve_alerts

from alertpack.cli import main as cli_main
from alertpack.errors import AlertDecodeError, BrokerUnavailableError, StreamError
from alertpack.kafka.producer import AlertProducer
from alertpack.kafka.settings import KafkaSettings
from alertpack.schema import pack_wire, schema_for_id
from alertpack.tools.consume import iter_kafka_alerts
from broker import make_alerts

pytestmark = pytest.mark.kafka


def produce(server: str, topic: str, alerts, tmp_path) -> None:
    settings = KafkaSettings.resolve(servers=server, topic=topic, flush_timeout=10.0)
    with AlertProducer(settings, failed_dir=tmp_path) as producer:
        result = producer.send(alerts)
    assert result.delivered == len(alerts)


def produce_raw(server: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": server})
    for value in values:
        producer.produce(topic, value, partition=0)
    assert producer.flush(10) == 0


@pytest.fixture(scope="module")
def stream(kafka_broker, tmp_path_factory):
    """A topic holding 30 v11.1 alerts and 6 v9.0 alerts."""
    alerts = make_alerts(30, n_objects=7)
    old = make_alerts(6, version="9.0", seed=3, first_id=20_000)
    produce(kafka_broker.bootstrap, "consume", alerts + old, tmp_path_factory.mktemp("failed"))
    return kafka_broker.bootstrap, "consume", alerts + old


def test_iter_alerts_decodes_every_alert_once(stream):
    server, topic, sent = stream
    consumed = list(iter_kafka_alerts(server, topic, from_beginning=True, timeout=2.0))
    assert len(consumed) == len(sent)
    by_payload = {alert.payload: alert for alert in sent}
    assert len({c.payload for c in consumed}) == len(sent)
    for item in consumed:
        alert = by_payload[item.payload]
        assert item.schema_id == alert.schema_id
        assert item.schema.schema_id == alert.schema_id
        assert item.key_id == alert.key
        assert item.timestamp_ms == alert.timestamp_ms
        assert item.alert == item.schema.packet_schema.deserialize(alert.payload)
        assert item.alert_id == alert.alert_id
        assert item.topic == topic and 0 <= item.partition < 4
    assert {item.partition for item in consumed} != {0}  # several partitions were read
    assert {item.schema_id for item in consumed} == {1101, 900}


SHARED_ATTRIBUTES = (
    "alert", "alert_id", "object_id", "schema", "schema_name", "source", "packet_size", "label"
)


def test_kafka_and_file_alerts_have_one_shape(stream, tmp_path):
    from alertpack.tools.reading import iter_alerts

    server, topic, _ = stream
    (consumed,) = iter_kafka_alerts(server, topic, from_beginning=True, max_alerts=1)
    schema = consumed.schema
    path = tmp_path / "one.avro"
    with path.open("wb") as stream_file:
        schema.packet_schema.store_alerts(stream_file, [consumed.alert])
    (loaded,) = iter_alerts(path)
    for name in SHARED_ATTRIBUTES:
        assert hasattr(consumed, name) and hasattr(loaded, name), name
    for name in ("alert", "alert_id", "object_id", "schema", "schema_name", "packet_size"):
        assert getattr(consumed, name) == getattr(loaded, name), name
    assert consumed.source == f"kafka://{server}/{topic}" and loaded.source == str(path)
    assert consumed.label == f"{topic}[{consumed.partition}]@{consumed.offset}"
    assert loaded.label == f"{path}#0"
    assert consumed.object_id == consumed.alert["diaObject"]["diaObjectId"]


def test_max_alerts_and_idle_timeout(stream):
    server, topic, sent = stream
    started = time.monotonic()
    assert len(list(iter_kafka_alerts(server, topic, from_beginning=True, max_alerts=5))) == 5
    assert time.monotonic() - started < 5
    # everything is read, then nothing comes for 1 s: the iterator ends
    started = time.monotonic()
    assert len(list(iter_kafka_alerts(server, topic, from_beginning=True, timeout=1.0))) == len(
        sent
    )
    assert 1.0 < time.monotonic() - started < 6


def test_without_from_beginning_only_new_alerts(kafka_broker, tmp_path):
    server = kafka_broker.bootstrap
    old, new = make_alerts(1), make_alerts(8, first_id=30_000)
    # Tansu 0.6 reports a wrong end offset for multi-record batches, so the old
    # part is a single one-record batch here.
    produce_raw(server, "only-new", [pack_wire(old[0].schema_id, old[0].payload)])
    later = threading.Timer(1.0, produce, (server, "only-new", new, tmp_path))
    later.start()
    try:
        consumed = list(iter_kafka_alerts(server, "only-new", timeout=2.0))
    finally:
        later.join()
    assert sorted(c.alert_id for c in consumed) == [a.alert_id for a in new]


def test_consumer_group_resumes_after_what_it_handed_out(stream):
    server, topic, sent = stream
    options = {"from_beginning": True, "group": "g1", "timeout": 1.5}
    first = list(iter_kafka_alerts(server, topic, max_alerts=10, **options))
    rest = list(iter_kafka_alerts(server, topic, **options))
    assert len(first) == 10
    assert sorted(c.alert_id for c in first + rest) == sorted(a.alert_id for a in sent)


def test_bad_header_and_unknown_schema_id_are_named(kafka_broker):
    server = kafka_broker.bootstrap
    payload = make_alerts(1)[0].payload
    produce_raw(server, "bad-header", [b"Obj\x01" + payload])
    with pytest.raises(AlertDecodeError, match=r"bad-header\[0\]@0: .*magic byte"):
        list(iter_kafka_alerts(server, "bad-header", from_beginning=True, timeout=2.0))
    produce_raw(server, "unknown-id", [pack_wire(9999, payload)])
    with pytest.raises(AlertDecodeError, match=r"unknown-id\[0\]@0: schema id 9999"):
        list(iter_kafka_alerts(server, "unknown-id", from_beginning=True, timeout=2.0))
    produce_raw(server, "wrong-schema", [pack_wire(1101, b"\x02\x04")])
    with pytest.raises(AlertDecodeError, match=r"does not decode with alert schema 11\.1"):
        list(iter_kafka_alerts(server, "wrong-schema", from_beginning=True, timeout=2.0))


def test_missing_topic_and_unreachable_server(kafka_broker):
    with pytest.raises(StreamError, match="'no-such-topic' does not exist"):
        list(iter_kafka_alerts(kafka_broker.bootstrap, "no-such-topic", timeout=1.0))
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match=r"cannot reach Kafka at 127\.0\.0\.1:9"):
        list(iter_kafka_alerts("127.0.0.1:9", "t", timeout=1.0))
    assert time.monotonic() - started < 5


def test_consume_command_prints_one_line_per_alert(stream, capsys):
    server, topic, sent = stream
    argv = ["consume", "--server", server, "--topic", topic, "--from-beginning", "--timeout", "2"]
    assert cli_main(argv) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == len(sent)
    assert all(line.startswith(f"{topic}[") for line in lines)
    ids = sorted(int(line.split("alertId=")[1].split()[0]) for line in lines)
    assert ids == sorted(alert.alert_id for alert in sent)
    assert "schema=900" in captured.out and "cutouts=3" in captured.out
    assert f"read {len(sent)} alert(s)" in captured.err


def test_consume_command_writes_avro_files(stream, tmp_path, capsys):
    server, topic, sent = stream
    out = tmp_path / "out"
    argv = ["consume", "--server", server, "--topic", topic, "--from-beginning"]
    assert cli_main([*argv, "--timeout", "2", "--out", str(out)]) == 0
    paths = sorted(out.glob("*.avro"))
    assert [p.name.split("-v")[1][:4] for p in paths] == ["11_1", "9_0-"]
    assert [str(p) for p in paths] == sorted(capsys.readouterr().out.split())
    expected = {
        alert.alert_id: schema_for_id(alert.schema_id).packet_schema.deserialize(alert.payload)
        for alert in sent
    }
    read = {}
    for path in paths:
        with open(path, "rb") as stream_file:
            _, records = retrieve_alerts(stream_file)
            for record in records:
                read[record.get("diaSourceId", record.get("alertId"))] = record
        with open(path, "rb") as stream_file:
            fastavro.reader(stream_file)  # a valid container
    assert read == expected


def test_consume_command_errors(monkeypatch, capsys):
    monkeypatch.delenv("AP_KAFKA_SERVER", raising=False)
    monkeypatch.delenv("AP_KAFKA_TOPIC", raising=False)
    assert cli_main(["consume", "--topic", "t"]) == 2
    assert "--server" in capsys.readouterr().err
    monkeypatch.setenv("AP_KAFKA_CONSUMER_USERNAME", "bob")
    monkeypatch.delenv("AP_KAFKA_CONSUMER_PASSWORD", raising=False)
    assert cli_main(["consume", "--server", "h:1", "--topic", "t"]) == 2
    assert "AP_KAFKA_CONSUMER_PASSWORD" in capsys.readouterr().err


def test_a_read_without_idle_limit_ends_when_its_stop_event_is_set(kafka_broker, tmp_path):
    server, topic = kafka_broker.bootstrap, "no-idle-limit"
    produce(server, topic, make_alerts(2, first_id=40_000), tmp_path)
    stop = threading.Event()
    read: list = []
    finished = threading.Event()

    def reader() -> None:
        for alert in iter_kafka_alerts(server, topic, from_beginning=True, timeout=None,
                                       stop=stop):
            read.append(alert.alert_id)
        finished.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while len(read) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(read) == 2
    # quiet for longer than any idle limit it could have: still reading
    assert not finished.wait(3.0)
    produce(server, topic, make_alerts(1, first_id=40_100), tmp_path)
    deadline = time.monotonic() + 10
    while len(read) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(read) == [40_000, 40_001, 40_100]
    stopped = time.monotonic()
    stop.set()
    assert finished.wait(5.0)
    assert time.monotonic() - stopped < 1.5  # within a poll or so
    thread.join(5)
