"""Kafka delivery against a real broker (Tansu): round trip, faults, replay, schema registry."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections import Counter

import fastavro
import pytest

from alertpack.cli import main as cli_main
from alertpack.errors import ConfigError, FailedAlertFileError
from alertpack.kafka.producer import AlertProducer
from alertpack.kafka.replay import replay
from alertpack.kafka.settings import KafkaSettings
from alertpack.packets.batch import OutgoingAlert
from alertpack.schema import pack_wire, schema_for_id, unpack_wire
from alertpack.sinks.failed import read_failed_alerts
from broker import make_alerts, read_topic

pytestmark = pytest.mark.kafka

PASSWORD = "s3cr3t-Pa55word-do-not-print"


def settings_for(server: str, topic: str, **values) -> KafkaSettings:
    values = {"flush_timeout": 10.0, "delivery_timeout": 8.0, **values}
    return KafkaSettings.resolve(servers=server, topic=topic, **values)


def alert_ids(alerts) -> list[int]:
    return [alert.alert_id for alert in alerts]


# --- delivery -------------------------------------------------------------------------


def test_round_trip_byte_identical_once_each(kafka_broker, tmp_path):
    old = make_alerts(12, version="7.0", seed=2, first_id=20_000)
    alerts = make_alerts(90, n_objects=20) + old
    settings = settings_for(kafka_broker.bootstrap, "roundtrip")
    with AlertProducer(settings, failed_dir=tmp_path) as producer:
        result = producer.send(iter(alerts))
    assert (result.delivered, result.failed, result.failed_path) == (len(alerts), 0, None)
    assert result.latencies.size == len(alerts)
    assert list(tmp_path.iterdir()) == []

    messages = read_topic(kafka_broker.bootstrap, "roundtrip", expected=len(alerts))
    assert len(messages) == len(alerts)
    sent = {(alert.key, alert.timestamp_ms): alert for alert in alerts}
    assert len(sent) == len(alerts)
    partition_of_key: dict[bytes, int] = {}
    for message in messages:
        schema_id, payload = unpack_wire(message.value())
        alert = sent.pop((int(message.key()), message.timestamp()[1]))
        assert payload == alert.payload
        assert schema_id == alert.schema_id
        assert message.key() == str(alert.key).encode()
        partition_of_key.setdefault(message.key(), message.partition())
        assert partition_of_key[message.key()] == message.partition()
    assert not sent
    assert {schema_id for schema_id, _ in map(unpack_wire, (m.value() for m in messages))} == {
        1101,
        700,
    }
    # per-object order is kept within the partition
    by_partition = sorted(messages, key=lambda m: (m.partition(), m.offset()))
    for key in partition_of_key:
        stamps = [m.timestamp()[1] for m in by_partition if m.key() == key]
        assert stamps == sorted(stamps)


def test_local_queue_full_waits_instead_of_failing(kafka_broker, tmp_path):
    alerts = make_alerts(120)
    settings = settings_for(kafka_broker.bootstrap, "backpressure", queue_buffering_max_messages=4)
    with AlertProducer(settings, failed_dir=tmp_path) as producer:
        result = producer.send(alerts)
    assert (result.delivered, result.failed) == (120, 0)
    assert len(read_topic(kafka_broker.bootstrap, "backpressure", expected=120)) == 120


def test_too_large_alert_fails_alone(kafka_broker, tmp_path):
    alerts = make_alerts(20, cutout_bytes=1000)
    big = make_alerts(2, cutout_bytes=30_000, seed=5, first_id=20_000)
    mixed = alerts[:10] + big[:1] + alerts[10:] + big[1:]
    settings = settings_for(kafka_broker.bootstrap, "toolarge", message_max_bytes=40_000)
    with AlertProducer(settings, failed_dir=tmp_path) as producer:
        result = producer.send(mixed)
    assert (result.delivered, result.failed) == (20, 2)
    (reason,) = result.reasons
    assert "MSG_SIZE_TOO_LARGE" in reason and "message_max_bytes=40000" in reason
    assert str(len(big[0].payload) + 5) in reason
    failed = read_failed_alerts(result.failed_path)
    assert sorted(alert_ids(f.alert for f in failed)) == sorted(alert_ids(big))
    assert [f.alert.payload for f in failed] == [b.payload for b in big]
    delivered = read_topic(kafka_broker.bootstrap, "toolarge", expected=20)
    assert len(delivered) == 20


def test_failures_only_counted_when_file_writing_is_off(tmp_path):
    settings = settings_for("127.0.0.1:9", "nowhere", flush_timeout=2.0, delivery_timeout=0.5)
    with AlertProducer(settings, failed_dir=None, write_failed=False) as producer:
        result = producer.send(make_alerts(4))
    assert (result.delivered, result.failed, result.failed_path) == (0, 4, None)
    with pytest.raises(ConfigError, match="failed_dir"):
        AlertProducer(settings, failed_dir=None, write_failed=True)


# --- faults and replay ----------------------------------------------------------------


def test_broker_down_then_replay_delivers_each_once(fresh_kafka_broker, tmp_path):
    broker = fresh_kafka_broker
    broker.stop()
    alerts = make_alerts(40)
    settings = settings_for(broker.bootstrap, "outage", flush_timeout=4.0, delivery_timeout=1.5)
    started = time.monotonic()
    with AlertProducer(settings, failed_dir=tmp_path / "failed") as producer:
        result = producer.send(alerts)
    assert time.monotonic() - started < 4.0 + 2.0
    assert (result.delivered, result.failed) == (0, 40)
    (reason,) = result.reasons
    assert "timed out" in reason and "Connection refused" in reason
    failed = read_failed_alerts(result.failed_path)
    assert result.failed_path.name.startswith("failed-") and result.failed_path.parent.name == (
        "failed"
    )
    assert sorted(alert_ids(f.alert for f in failed)) == sorted(alert_ids(alerts))
    assert {f.topic for f in failed} == {"outage"}
    assert failed[0].alert == next(a for a in alerts if a.alert_id == failed[0].alert.alert_id)

    broker.start()
    replayed = replay(tmp_path / "failed", {"servers": broker.bootstrap})
    assert (replayed.delivered, replayed.failed) == (40, 0)
    assert not result.failed_path.exists()
    messages = read_topic(broker.bootstrap, "outage", expected=40)
    payloads = Counter(unpack_wire(m.value())[1] for m in messages)
    assert len(messages) == 40
    assert set(payloads) == {a.payload for a in alerts}
    assert max(payloads.values()) == 1
    # the recorded timestamps went out again
    assert sorted(m.timestamp()[1] for m in messages) == sorted(a.timestamp_ms for a in alerts)
    # nothing left: a second replay sends nothing
    assert replay(tmp_path / "failed", {"servers": broker.bootstrap}).total == 0


def wait_for_payloads(server: str, topic: str, count: int, timeout: float = 30.0) -> set:
    """Read ``topic`` from the start until ``count`` messages are there: what the broker holds."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": server, "group.id": f"wait-{time.monotonic_ns()}",
                         "enable.auto.commit": False})
    payloads = set()
    deadline = time.monotonic() + timeout
    try:
        partitions = []
        while not partitions and time.monotonic() < deadline:
            topics = consumer.list_topics(topic, timeout=2.0).topics
            if topic in topics and topics[topic].error is None:
                partitions = sorted(topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while len(payloads) < count and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.2):
                if message.error() is None:
                    payloads.add(unpack_wire(message.value())[1])
    finally:
        consumer.close()
    assert len(payloads) >= count, f"only {len(payloads)} of {count} messages reached {topic}"
    return payloads


def test_broker_stopped_mid_run_loses_nothing(fresh_kafka_broker, tmp_path):
    broker = fresh_kafka_broker
    alerts = make_alerts(150)
    settings = settings_for(broker.bootstrap, "midrun", flush_timeout=5.0, delivery_timeout=2.0)
    in_topic_before_stop: set = set()

    def visit():
        for index, alert in enumerate(alerts):
            if index == 60:
                # the first part is in the topic (read back, not assumed after a sleep)
                in_topic_before_stop.update(wait_for_payloads(broker.bootstrap, "midrun", 60))
                broker.stop()
            yield alert

    with AlertProducer(settings, failed_dir=tmp_path) as producer:
        result = producer.send(visit())
    assert result.total == len(alerts)
    failed = read_failed_alerts(result.failed_path)
    assert len(failed) == result.failed
    failed_payloads = {f.alert.payload for f in failed}
    assert len(failed_payloads) == result.failed
    every_payload = {alert.payload for alert in alerts}
    reported_delivered = every_payload - failed_payloads
    assert len(reported_delivered) == result.delivered
    # what was reported delivered is really in the topic: everything sent after the stop failed
    assert reported_delivered <= in_topic_before_stop
    assert {alert.payload for alert in alerts[60:]} <= failed_payloads
    # nothing lost: each alert is in the topic or in the failed-alert file
    assert in_topic_before_stop | failed_payloads == every_payload
    assert result.delivered >= 1

    broker.start()  # in-memory broker: the topic starts empty again
    replayed = replay(result.failed_path, {"servers": broker.bootstrap})
    assert (replayed.delivered, replayed.failed) == (result.failed, 0)
    messages = read_topic(broker.bootstrap, "midrun", expected=result.failed)
    assert sorted(unpack_wire(m.value())[1] for m in messages) == sorted(failed_payloads)


def test_flush_timeout_bounds_the_run(tmp_path):
    # librdkafka would retry for 60 s; the run still ends at the 1 s flush timeout
    settings = settings_for("127.0.0.1:9", "slow", flush_timeout=1.0, delivery_timeout=60.0)
    started = time.monotonic()
    with AlertProducer(settings, failed_dir=tmp_path) as producer:
        result = producer.send(make_alerts(6))
    assert time.monotonic() - started < 3.0
    assert result.failed == 6
    (reason,) = result.reasons
    assert "flush timeout" in reason
    assert len(read_failed_alerts(result.failed_path)) == 6


def test_interrupted_run_still_writes_failed_file(tmp_path):
    settings = settings_for("127.0.0.1:9", "interrupted", flush_timeout=2.0, delivery_timeout=0.5)
    alerts = make_alerts(5)

    def visit():
        yield from alerts[:3]
        raise RuntimeError("catalog reader broke")

    with AlertProducer(settings, failed_dir=tmp_path) as producer:
        with pytest.raises(RuntimeError, match="catalog reader broke"):
            producer.send(visit())
    (written,) = tmp_path.glob("failed-*.avro")
    assert alert_ids(f.alert for f in read_failed_alerts(written)) == alert_ids(alerts[:3])


def test_replay_keeps_only_what_failed_again(kafka_broker, tmp_path):
    small = make_alerts(6, cutout_bytes=500)
    large = make_alerts(2, cutout_bytes=20_000, seed=9, first_id=20_000)
    down = settings_for("127.0.0.1:9", "partial", flush_timeout=2.0, delivery_timeout=0.5)
    with AlertProducer(down, failed_dir=tmp_path) as producer:
        path = producer.send(small + large).failed_path
    again = replay(
        path, {"servers": kafka_broker.bootstrap, "topic": "partial", "message_max_bytes": 30_000}
    )
    assert (again.delivered, again.failed, again.failed_paths) == (6, 2, [path])
    kept = read_failed_alerts(path)
    assert sorted(alert_ids(f.alert for f in kept)) == sorted(alert_ids(large))
    assert all("MSG_SIZE_TOO_LARGE" in f.reason for f in kept)
    assert list(tmp_path.glob("failed-*.avro")) == [path]


def test_replay_command(fresh_kafka_broker, tmp_path, capsys):
    broker = fresh_kafka_broker
    broker.stop()
    settings = settings_for(broker.bootstrap, "cli-replay", flush_timeout=2.0, delivery_timeout=0.5)
    with AlertProducer(settings, failed_dir=tmp_path) as producer:
        producer.send(make_alerts(5))
    assert cli_main(["replay", str(tmp_path), "--server", broker.bootstrap, "--timeout", "2"]) == 1
    assert "delivered 0, failed 5" in capsys.readouterr().out
    broker.start()
    assert cli_main(["replay", str(tmp_path), "--server", broker.bootstrap]) == 0
    assert "delivered 5, failed 0" in capsys.readouterr().out
    assert list(tmp_path.glob("failed-*.avro")) == []
    assert len(read_topic(broker.bootstrap, "cli-replay", expected=5)) == 5


def test_replay_rejects_other_files(tmp_path, capsys):
    alerts_file = tmp_path / "alerts.avro"
    schema = schema_for_id(1101)
    with open(alerts_file, "wb") as stream:
        fastavro.writer(stream, fastavro.parse_schema(schema.definition), [])
    with pytest.raises(FailedAlertFileError, match=r"not alertpack\.failedAlert"):
        replay(alerts_file, {"servers": "h:1"})
    (tmp_path / "failed-junk.avro").write_bytes(b"not avro at all")
    with pytest.raises(FailedAlertFileError, match=r"failed-junk\.avro"):
        replay(tmp_path / "failed-junk.avro", {"servers": "h:1"})
    assert cli_main(["replay", str(tmp_path / "missing.avro"), "--server", "h:1"]) == 2
    assert "missing.avro does not exist" in capsys.readouterr().err


# --- schema registry ------------------------------------------------------------------


class _Registry(http.server.BaseHTTPRequestHandler):
    """A minimal Confluent-registry endpoint: POST /subjects/<s>/versions -> {"id": 42}."""

    received: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((self.path, json.loads(body["schema"])))
        answer = json.dumps({"id": 42}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def test_registry_id_goes_on_the_wire(kafka_broker, tmp_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        settings = settings_for(kafka_broker.bootstrap, "registered", registry_url=url)
        with AlertProducer(settings, failed_dir=tmp_path) as producer:
            result = producer.send(make_alerts(5))
    finally:
        server.shutdown()
    assert result.delivered == 5
    ((path, schema),) = _Registry.received
    assert path == "/subjects/registered-value/versions"
    assert fastavro.parse_schema(schema)["name"] == "lsst.v11_1.alert"
    messages = read_topic(kafka_broker.bootstrap, "registered", expected=5)
    assert {unpack_wire(m.value())[0] for m in messages} == {42}


def test_unreachable_registry_fails_alerts_into_the_file(tmp_path):
    settings = settings_for("127.0.0.1:9", "t", registry_url="http://127.0.0.1:9/")
    with AlertProducer(settings, failed_dir=tmp_path) as producer:
        result = producer.send(make_alerts(3))
    assert result.failed == 3
    (reason,) = result.reasons
    assert "schema registry at http://127.0.0.1:9" in reason


def test_outgoing_alert_wire_bytes():
    alert = make_alerts(1)[0]
    assert isinstance(alert, OutgoingAlert)
    wire = pack_wire(alert.schema_id, alert.payload)
    assert wire[:5] == b"\x00\x00\x00\x04\x4d"  # 1101 big-endian after magic 0
