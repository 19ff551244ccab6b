"""Today's Rubin pipeline's Kafka conventions, against a real Kafka-protocol broker (Tansu).

The diaPipe call produces with upstream's environment variables and override
file: every message carries the ``producer_timestamp`` header, the metadata
gets upstream's five keys. Before any work the packager checks, within
``maxTimeout``, that the broker answers and has the topic, and says what is
wrong in one line naming the security protocol.
"""

from __future__ import annotations

import time

import pytest
from astropy.time import Time

from alertpack import PackageAlertsConfig, PackageAlertsTask
from alertpack.config import load_config_file
from alertpack.errors import BrokerUnavailableError, StreamError
from alertpack.sample import make_visit
from alertpack.schema import unpack_wire
from broker import create_topic, free_port, read_topic
from test_upstream_compat import override_file
from upstream import afw_visit_keys, diapipe_inputs, write_afw_exposure

pytestmark = pytest.mark.kafka

EXPOSURE_TIME_S = 30.0


@pytest.fixture(scope="module")
def shaped_run_inputs(tmp_path_factory):
    visit = make_visit(n_sources=10, image_shape=(300, 300), seed=8)
    shaped = diapipe_inputs(visit)
    directory = tmp_path_factory.mktemp("exposures")
    keys = afw_visit_keys(shaped.visit, shaped.midpoint_mjd_tai, rotation_deg=40.0,
                          reason="wfd", target="", exposure_time_s=EXPOSURE_TIME_S)
    images = (
        write_afw_exposure(directory / "diffIm.fits", visit.difference, keys),
        write_afw_exposure(directory / "calexp.fits", visit.science, keys),
        write_afw_exposure(directory / "template.fits", visit.template, {}),
    )
    return shaped, images


def producing_task(tmp_path, monkeypatch, server, topic, **extra):
    # as upstream: the server and topic from Rubin's environment variables
    monkeypatch.setenv("AP_KAFKA_SERVER", server)
    monkeypatch.setenv("AP_KAFKA_TOPIC", topic)
    config = PackageAlertsConfig()
    load_config_file(config, override_file(
        tmp_path / "upstream_config.py", tmp_path / "alerts", doProduceAlerts=True, **extra))
    return PackageAlertsTask(config=config)


def test_diapipe_call_sends_producer_timestamps_and_records_upstreams_metadata(
    kafka_broker, shaped_run_inputs, tmp_path, monkeypatch
):
    shaped, (difference, calexp, template) = shaped_run_inputs
    topic = "upstream-diapipe"
    create_topic(kafka_broker.bootstrap, topic)
    task = producing_task(tmp_path, monkeypatch, kafka_broker.bootstrap, topic)
    before = time.time()
    result = task.run(shaped.diaSourceCat, shaped.diaObjectCat, shaped.diaSrcHistory,
                      shaped.diaForcedSources, difference, calexp, template,
                      ssSrc=shaped.ssSrc, doRunForcedMeasurement=True,
                      forcedSourceHistoryThreshold=0)
    after = time.time()
    task.close()
    assert result.nDelivered == result.nAlerts == len(shaped.diaSourceCat)
    metadata = task.getFullMetadata().to_dict()["packageAlerts"]
    midpoint = Time(shaped.midpoint_mjd_tai, format="mjd", scale="tai").tai.unix
    start, end = metadata["produce_start_timestamp"], metadata["produce_end_timestamp"]
    assert before <= start <= end <= after
    assert metadata["visit_midpoint"] == pytest.approx(midpoint, abs=1e-3)
    assert metadata["total_alerts"] == result.nAlerts
    assert metadata["alert_timing_since_shutter_close"] == pytest.approx(
        end - (midpoint + EXPOSURE_TIME_S / 2), abs=1e-3)

    messages = read_topic(kafka_broker.bootstrap, topic, expected=result.nAlerts)
    assert len(messages) == result.nAlerts
    sent = set(result.alerts.payloads)
    for message in messages:
        assert unpack_wire(message.value())[1] in sent
        headers = dict(message.headers())
        stamp = float(headers["producer_timestamp"].decode("utf-8"))  # str(time.time()*1000)
        assert start * 1000 <= stamp <= end * 1000
    decoded = [task.alertSchema.decode(unpack_wire(m.value())[1]) for m in messages]
    assert {a["observation_reason"] for a in decoded} == {"wfd"}
    assert {a["target_name"] for a in decoded} == {None}  # OBJECT = '' -> null


def test_missing_topic_fails_at_construction_naming_it(kafka_broker, tmp_path, monkeypatch):
    started = time.monotonic()
    with pytest.raises(StreamError, match=r"topic 'no-such-topic' does not exist.*kafkaCheck"):
        producing_task(tmp_path, monkeypatch, kafka_broker.bootstrap, "no-such-topic")
    assert time.monotonic() - started < 5.0  # maxTimeout of the override file
    # the check asks for the topic list: it did not create the topic on the way
    with pytest.raises(StreamError, match="does not exist"):
        producing_task(tmp_path, monkeypatch, kafka_broker.bootstrap, "no-such-topic")
    # a broker that creates topics on first use: check the connection only
    task = producing_task(tmp_path, monkeypatch, kafka_broker.bootstrap, "no-such-topic",
                          kafkaCheck="connection")
    task.close()


def test_broker_down_fails_within_max_timeout_naming_the_protocol(tmp_path, monkeypatch):
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError) as caught:
        producing_task(tmp_path, monkeypatch, f"127.0.0.1:{free_port()}", "t", maxTimeout=1.5)
    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 4.0
    message = str(caught.value)
    assert "within 1.5 s (config maxTimeout)" in message
    assert "security protocol PLAINTEXT" in message and "Connection refused" in message


def test_sasl_against_a_plaintext_broker_fails_in_seconds_with_a_protocol_hint(
    kafka_broker, tmp_path, monkeypatch
):
    monkeypatch.setenv("AP_KAFKA_PRODUCER_USERNAME", "alice")
    monkeypatch.setenv("AP_KAFKA_PRODUCER_PASSWORD", "s3cret-pw")
    started = time.monotonic()
    with pytest.raises(StreamError) as caught:
        producing_task(tmp_path, monkeypatch, kafka_broker.bootstrap, "t", maxTimeout=15.0,
                       kafkaSecurityProtocol="SASL_PLAINTEXT")
    assert time.monotonic() - started < 5.0  # a refused handshake does not wait maxTimeout
    message = str(caught.value)
    assert "SASL_PLAINTEXT" in message and "needs PLAINTEXT" in message
    assert "AP_KAFKA_PRODUCER_USERNAME" in message and "s3cret-pw" not in message


def test_tls_against_a_plaintext_broker_names_the_protocol_after_max_timeout(
    kafka_broker, tmp_path, monkeypatch
):
    # a plaintext listener never answers a TLS hello: only the bound ends the wait
    monkeypatch.setenv("AP_KAFKA_PRODUCER_USERNAME", "alice")
    monkeypatch.setenv("AP_KAFKA_PRODUCER_PASSWORD", "s3cret-pw")
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError) as caught:
        producing_task(tmp_path, monkeypatch, kafka_broker.bootstrap, "t", maxTimeout=2.0)
    assert time.monotonic() - started < 6.0
    message = str(caught.value)
    assert "security protocol SASL_SSL" in message and "no TLS handshake answered" in message
    assert "needs PLAINTEXT" in message and "s3cret-pw" not in message
