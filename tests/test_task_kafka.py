"""The Task delivering to a real Kafka-protocol broker (Tansu, started by the tests)."""

from __future__ import annotations

import pytest

from alertpack import PackageAlertsConfig, PackageAlertsTask
from alertpack.sample import make_visit
from alertpack.schema import unpack_wire
from alertpack.sinks.failed import read_failed_alerts

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def visit():
    return make_visit(n_sources=12, image_shape=(700, 700), seed=5)


def producing_task(tmp_path, server, topic, *, create=True, **overrides):
    from broker import producing_config

    return PackageAlertsTask(
        config=producing_config(tmp_path, server, topic, create=create, **overrides)
    )


def test_run_delivers_every_alert_once_byte_identical(kafka_broker, visit, tmp_path):
    from broker import read_topic

    topic = "task-roundtrip"
    task = producing_task(tmp_path, kafka_broker.bootstrap, topic)
    result = task.run(**visit.run_kwargs())
    assert result.nDelivered == result.nAlerts == 12 and result.nFailed == 0
    assert result.paths  # files and Kafka both on
    messages = read_topic(kafka_broker.bootstrap, topic, expected=12)
    assert len(messages) == 12
    sent = dict(zip(result.alerts.alert_ids.tolist(), result.alerts.payloads, strict=True))
    keys = dict(
        zip(result.alerts.alert_ids.tolist(), result.alerts.object_ids.tolist(), strict=True)
    )
    seen = set()
    for message in messages:
        schema_id, payload = unpack_wire(message.value())
        assert schema_id == 1101
        alert = task.alertSchema.decode(payload)
        alert_id = alert["diaSourceId"]
        assert payload == sent[alert_id]
        expected_key = keys[alert_id]
        if expected_key > 0:
            assert int(message.key()) == expected_key
        else:
            assert message.key() is None
        seen.add(alert_id)
    assert seen == set(sent)
    metadata = task.getFullMetadata().to_dict()["packageAlerts"]
    assert metadata["nDelivered"] == 12 and metadata["nFailed"] == 0


def test_broker_down_puts_every_alert_in_the_failed_file(visit, tmp_path):
    from broker import free_port

    # no check at the start (kafkaCheck=none): the alerts meet the broker down
    task = producing_task(
        tmp_path, f"127.0.0.1:{free_port()}", "nowhere", create=False, doWriteAlerts=False,
        kafkaFlushTimeout=3.0, kafkaDeliveryTimeout=2.0, kafkaCheck="none",
    )
    result = task.run(**visit.run_kwargs())
    assert result.nDelivered == 0 and result.nFailed == result.nAlerts == 12
    failed = read_failed_alerts(result.failedPath)
    assert sorted(a.alert.alert_id for a in failed) == sorted(result.alerts.alert_ids.tolist())
    assert {a.alert.payload for a in failed} == set(result.alerts.payloads)


def test_missing_server_fails_before_any_work(monkeypatch, tmp_path):
    from alertpack.errors import ConfigError

    monkeypatch.delenv("AP_KAFKA_SERVER", raising=False)
    config = PackageAlertsConfig()
    config.doProduceAlerts = True
    config.kafkaTopic = "t"
    with pytest.raises(ConfigError, match="no Kafka server given"):
        PackageAlertsTask(config=config)
