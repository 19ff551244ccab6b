"""Kafka settings and secrets: producer and consumer settings, one redaction, one client log.

The broker parts run against a real broker (Tansu); the secrets must not
reach any log line (alertpack's or librdkafka's), error, failure reason,
``repr`` or output, for producers and consumers alike.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import pickle
import subprocess
import sys

import pytest

from alertpack.cli import main as cli_main
from alertpack.errors import BrokerUnavailableError, ConfigError
from alertpack.kafka.producer import AlertProducer
from alertpack.kafka.settings import (
    CLIENT_LOGGER_NAME,
    REDACTED,
    ConsumerSettings,
    KafkaSettings,
    client_log,
    redact,
)
from alertpack.sinks.failed import read_failed_alerts
from alertpack.tools.consume import iter_kafka_alerts
from broker import free_port, make_alerts

pytestmark = pytest.mark.kafka

PASSWORD = "s3cr3t-Pa55word-do-not-print"
CONSUMER_PASSWORD = "c0nsumer-Pa55word-do-not-print"


def settings_for(server: str, topic: str, **values) -> KafkaSettings:
    values = {"flush_timeout": 10.0, "delivery_timeout": 8.0, **values}
    return KafkaSettings.resolve(servers=server, topic=topic, **values)


def produce(server: str, topic: str, alerts, tmp_path) -> None:
    with AlertProducer(settings_for(server, topic), failed_dir=tmp_path) as producer:
        assert producer.send(alerts).delivered == len(alerts)


# --- producer settings ------------------------------------------------------------------


def test_resolve_falls_back_to_rubin_environment(monkeypatch):
    monkeypatch.setenv("AP_KAFKA_SERVER", "env-host:9092")
    monkeypatch.setenv("AP_KAFKA_TOPIC", "env-topic")
    monkeypatch.setenv("AP_KAFKA_PRODUCER_USERNAME", "env-user")
    monkeypatch.setenv("AP_KAFKA_PRODUCER_PASSWORD", PASSWORD)
    from_env = KafkaSettings.resolve(servers="", topic=None)
    assert (from_env.servers, from_env.topic, from_env.username) == (
        "env-host:9092",
        "env-topic",
        "env-user",
    )
    assert from_env.password.reveal() == PASSWORD
    config = from_env.client_config()
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.password"] == PASSWORD
    assert config["enable.idempotence"] is True

    explicit = KafkaSettings.resolve(servers="cfg:1", topic="cfg-topic", username="u", password="p")
    assert (explicit.servers, explicit.topic, explicit.username) == ("cfg:1", "cfg-topic", "u")
    assert explicit.password.reveal() == "p"


def test_resolve_from_package_config(monkeypatch):
    from alertpack.config import PackageAlertsConfig

    monkeypatch.delenv("AP_KAFKA_PRODUCER_USERNAME", raising=False)
    config = PackageAlertsConfig()
    config.kafkaServer = "broker:9092"
    config.kafkaTopic = "alerts"
    config.kafkaCompression = "zstd"
    config.kafkaFlushTimeout = 7.0
    settings = KafkaSettings.from_config(config)
    assert (settings.servers, settings.topic, settings.compression_type) == (
        "broker:9092",
        "alerts",
        "zstd",
    )
    assert settings.flush_timeout == 7.0
    # without a username the SASL_SSL default of the config does not apply
    assert settings.client_config()["security.protocol"] == "PLAINTEXT"
    assert "sasl.password" not in settings.client_config()


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"topic": "t"}, ["server", "AP_KAFKA_SERVER"]),
        ({"servers": "h:1"}, ["topic", "AP_KAFKA_TOPIC"]),
        ({"servers": "h:1", "topic": "t", "username": "bob"}, ["AP_KAFKA_PRODUCER_PASSWORD"]),
        ({"servers": "h:1", "topic": "t", "compression_type": "brotli"}, ["brotli", "zstd"]),
        ({"servers": "h:1", "topic": "t", "linger": 3}, ["linger", "linger_ms"]),
    ],
)
def test_resolve_errors_say_what_to_set(monkeypatch, values, words):
    for name in ("SERVER", "TOPIC", "PRODUCER_USERNAME", "PRODUCER_PASSWORD"):
        monkeypatch.delenv(f"AP_KAFKA_{name}", raising=False)
    with pytest.raises(ConfigError) as caught:
        KafkaSettings.resolve(**values)
    for word in words:
        assert word in str(caught.value)


def test_password_never_printed():
    settings = KafkaSettings.resolve(
        servers="h:1",
        topic="t",
        username="alice",
        password=PASSWORD,
        registry_url=f"https://alice:{PASSWORD}@registry:8081",
        extra={"ssl.key.password": PASSWORD},
    )
    shown = [repr(settings), str(settings), f"{settings}", repr(settings.password)]
    shown += [str(dataclasses.asdict(settings)), str(copy.deepcopy(settings))]
    for text in shown:
        assert PASSWORD not in text
    assert "alice" in repr(settings)
    assert settings.redact(f"failed with {PASSWORD}!") == "failed with ********!"
    with pytest.raises(TypeError):
        pickle.dumps(settings)


def test_wrong_password_leaks_nowhere(fresh_kafka_broker, tmp_path, caplog, capfd):
    # Tansu without authentication set up refuses the SASL handshake: the alerts
    # fail with an authentication reason, and the password shows up in no output.
    settings = settings_for(
        fresh_kafka_broker.bootstrap,
        "sasl",
        username="alice",
        password=PASSWORD,
        security_protocol="SASL_PLAINTEXT",
        flush_timeout=3.0,
        delivery_timeout=1.5,
    )
    alerts = make_alerts(3)
    with caplog.at_level(logging.DEBUG):
        with AlertProducer(settings, failed_dir=tmp_path) as producer:
            result = producer.send(alerts)
    assert (result.delivered, result.failed) == (0, 3)
    assert any("_AUTHENTICATION" in reason for reason in result.reasons)
    outputs = [caplog.text, *capfd.readouterr(), str(result), result.summary()]
    outputs += [failure.reason for failure in read_failed_alerts(result.failed_path)]
    assert "librdkafka" in caplog.text  # the client's own log lines were captured too
    for text in outputs:
        assert PASSWORD not in text
    assert PASSWORD.encode() not in result.failed_path.read_bytes()


# --- consumer settings ------------------------------------------------------------------


def test_consumer_settings_from_environment_config_and_explicit_values(monkeypatch):
    from alertpack.config import PackageAlertsConfig

    monkeypatch.setenv("AP_KAFKA_SERVER", "env-host:9092")
    monkeypatch.setenv("AP_KAFKA_TOPIC", "env-topic")
    monkeypatch.setenv("AP_KAFKA_CONSUMER_USERNAME", "carol")
    monkeypatch.setenv("AP_KAFKA_CONSUMER_PASSWORD", CONSUMER_PASSWORD)
    monkeypatch.setenv("AP_KAFKA_PRODUCER_USERNAME", "alice")
    from_env = ConsumerSettings.resolve()
    assert (from_env.servers, from_env.topic, from_env.username) == (
        "env-host:9092", "env-topic", "carol",
    )
    config = from_env.client_config(group=None, from_beginning=True, auto_commit=True)
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl.username"], config["sasl.password"]) == ("carol", CONSUMER_PASSWORD)
    assert config["enable.auto.commit"] is False  # no group: nothing is committed
    assert config["auto.offset.reset"] == "earliest"

    # security protocol and mechanism are settings, not fixed
    chosen = ConsumerSettings.resolve(
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256"
    )
    config = chosen.client_config(group="g", from_beginning=False, auto_commit=True)
    assert (config["security.protocol"], config["sasl.mechanism"]) == (
        "SASL_PLAINTEXT", "SCRAM-SHA-256",
    )
    assert (config["group.id"], config["enable.auto.commit"]) == ("g", True)

    # from a package config: its server, topic and protocol; the consumer's own credentials
    package = PackageAlertsConfig()
    package.kafkaServer, package.kafkaTopic = "cfg:1", "cfg-topic"
    package.kafkaSecurityProtocol, package.kafkaSaslMechanism = "SASL_PLAINTEXT", "PLAIN"
    package.kafkaUsername, package.kafkaPassword = "producer-user", PASSWORD
    from_config = ConsumerSettings.from_config(package)
    assert (from_config.servers, from_config.topic, from_config.username) == (
        "cfg:1", "cfg-topic", "carol",
    )
    assert from_config.client_config(group=None, from_beginning=False, auto_commit=False)[
        "sasl.mechanism"
    ] == "PLAIN"
    assert PASSWORD not in from_config.secrets()

    # explicit values read no environment variable
    explicit = ConsumerSettings(servers="h:1", topic="t")
    assert explicit.username is None
    config = explicit.client_config(group=None, from_beginning=False, auto_commit=False)
    assert config["security.protocol"] == "PLAINTEXT" and "sasl.password" not in config


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"topic": "t"}, ["server", "AP_KAFKA_SERVER"]),
        ({"servers": "h:1"}, ["topic", "AP_KAFKA_TOPIC"]),
        ({"servers": "h:1", "topic": "t", "username": "bob"}, ["AP_KAFKA_CONSUMER_PASSWORD"]),
        ({"servers": "h:1", "topic": "t", "security_protocol": "TLS"}, ["TLS", "SASL_SSL"]),
    ],
)
def test_consumer_settings_errors_say_what_to_set(monkeypatch, values, words):
    for name in ("SERVER", "TOPIC", "CONSUMER_USERNAME", "CONSUMER_PASSWORD"):
        monkeypatch.delenv(f"AP_KAFKA_{name}", raising=False)
    with pytest.raises(ConfigError) as caught:
        ConsumerSettings.resolve(**values)
    for word in words:
        assert word in str(caught.value)


# --- one redaction rule -----------------------------------------------------------------


def test_one_rule_masks_known_secrets_and_any_userinfo():
    assert redact(f"a {PASSWORD} b", [PASSWORD]) == f"a {REDACTED} b"
    # longest first: a secret holding another is masked whole
    assert redact("abc-long abc", ["abc", "abc-long"]) == f"{REDACTED} {REDACTED}"
    for text, shown in [
        ("https://alice:pw@registry:8081/x", f"https://alice:{REDACTED}@registry:8081/x"),
        ("alice:pw@broker:9092,h2:9092", f"alice:{REDACTED}@broker:9092,h2:9092"),
        (
            "[alice:p@ss@127.0.0.1:9]:9092/bootstrap",
            f"[alice:{REDACTED}@127.0.0.1:9]:9092/bootstrap",
        ),
        ("'SASL_SSL://bob:x:y@h:1'", f"'SASL_SSL://bob:{REDACTED}@h:1'"),
        ("broker at h:9092 answered", "broker at h:9092 answered"),
    ]:
        assert redact(text) == shown
    settings = KafkaSettings.resolve(
        servers="h:1", topic="t", extra={"sasl.oauthbearer.client.secret": "oauth-s3cret"}
    )
    assert settings.redact("token oauth-s3cret") == f"token {REDACTED}"


def test_user_pass_server_string_is_masked_in_errors_and_reprs(tmp_path, caplog, capfd):
    port = free_port()  # nobody listens there
    server = f"alice:{PASSWORD}@127.0.0.1:{port}"
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(BrokerUnavailableError) as caught:
            list(iter_kafka_alerts(server, "t", timeout=1.0))
        assert f"alice:{REDACTED}@127.0.0.1:{port}" in str(caught.value)
        # the producer's failure reasons, log lines and failed file too
        settings = settings_for(server, "t", flush_timeout=1.5, delivery_timeout=1.0)
        with AlertProducer(settings, failed_dir=tmp_path) as producer:
            result = producer.send(make_alerts(2))
        assert result.failed == 2
        argv = ["consume", "--server", server, "--topic", "t", "--timeout", "1"]
        assert cli_main(argv) == 2
    captured = capfd.readouterr()
    assert f"alice:{REDACTED}@127.0.0.1" in captured.err and "--server" in captured.err
    outputs = [str(caught.value), repr(settings), caplog.text, *captured, result.summary()]
    outputs += [failure.reason for failure in read_failed_alerts(result.failed_path)]
    assert f"alice:{REDACTED}@127.0.0.1" in repr(settings)
    assert CLIENT_LOGGER_NAME in caplog.text  # librdkafka's lines, which name the server
    for text in outputs:
        assert PASSWORD not in text
    assert PASSWORD.encode() not in result.failed_path.read_bytes()


def test_consumer_password_is_masked_in_librdkafka_lines_errors_and_reprs(caplog, capfd):
    # librdkafka never prints sasl.password itself; to see its lines masked with the
    # consumer's password, the password is put where librdkafka repeats it in every
    # line: the client's name. Only the client log, which knows consumers, masks it.
    settings = ConsumerSettings(
        servers=f"127.0.0.1:{free_port()}", topic="t", username="carol",
        password=CONSUMER_PASSWORD, security_protocol="SASL_PLAINTEXT",
        extra={"client.id": f"reader-{CONSUMER_PASSWORD}"},
    )
    with caplog.at_level(logging.DEBUG, logger=CLIENT_LOGGER_NAME):
        with pytest.raises(BrokerUnavailableError) as caught:
            list(iter_kafka_alerts(settings, timeout=1.0))
    lines = [r.getMessage() for r in caplog.records if r.name == CLIENT_LOGGER_NAME]
    assert lines, "librdkafka's own lines reach the client logger"
    assert all(record.levelno == logging.DEBUG for record in caplog.records
               if record.name == CLIENT_LOGGER_NAME)
    assert all(f"[reader-{REDACTED}#consumer-" in line for line in lines)
    shown = [*lines, str(caught.value), repr(settings), str(settings), f"{settings}"]
    shown += [str(copy.deepcopy(settings)), repr(settings.password), *capfd.readouterr()]
    for text in shown:
        assert CONSUMER_PASSWORD not in text
    assert "carol" in repr(settings)
    with pytest.raises(TypeError):
        pickle.dumps(settings)
    # a refused property: the error masks the consumer's secrets too
    refused = ConsumerSettings(
        servers="h:1", topic="t", extra={"sasl.password": CONSUMER_PASSWORD, "no.such": 1}
    )
    with pytest.raises(ConfigError, match=r"cannot create a Kafka consumer.*no\.such") as caught:
        list(iter_kafka_alerts(refused))
    assert CONSUMER_PASSWORD not in str(caught.value)


def test_producer_and_consumer_secrets_are_masked_while_both_are_alive(
    kafka_broker, tmp_path, caplog
):
    server, topic = kafka_broker.bootstrap, "secrets-alive"
    produce(server, topic, make_alerts(2), tmp_path)
    line = f"saw {PASSWORD} and {CONSUMER_PASSWORD}"
    assert client_log.redact(line) == line  # no live client has them
    producer_settings = settings_for(
        server, topic, username="alice", password=PASSWORD, security_protocol="SASL_PLAINTEXT"
    )
    # PLAINTEXT to the broker, so the consumer reads; its password is a secret property
    consumer_settings = ConsumerSettings(
        servers=server, topic=topic,
        extra={"sasl.username": "carol", "sasl.password": CONSUMER_PASSWORD},
    )
    with caplog.at_level(logging.DEBUG, logger=CLIENT_LOGGER_NAME):
        with AlertProducer(producer_settings, failed_dir=tmp_path):
            assert client_log.redact(line) == f"saw {REDACTED} and {CONSUMER_PASSWORD}"
            alerts = iter_kafka_alerts(consumer_settings, from_beginning=True, timeout=5.0)
            next(alerts)  # the consumer is open and reading
            assert client_log.redact(line) == f"saw {REDACTED} and {REDACTED}"
            client_log.log(logging.INFO, "%s", line)  # as librdkafka calls it
            alerts.close()  # the consumer is closed: its secrets are forgotten
            assert client_log.redact(line) == f"saw {REDACTED} and {CONSUMER_PASSWORD}"
    assert client_log.redact(line) == line  # and the producer's once it is closed
    (record,) = [r for r in caplog.records if "saw" in r.getMessage()]
    assert record.getMessage() == f"saw {REDACTED} and {REDACTED}"
    assert (record.name, record.levelno) == (CLIENT_LOGGER_NAME, logging.DEBUG)


def test_importing_the_settings_installs_no_logging_filter():
    code = (
        "import logging\n"
        "import alertpack.kafka.settings, alertpack.kafka.producer, alertpack.kafka.consumer\n"
        "import alertpack.tools.consume\n"
        "loggers = [logging.root, *logging.root.manager.loggerDict.values()]\n"
        "filtered = [getattr(l, 'name', l) for l in loggers if getattr(l, 'filters', None)]\n"
        "assert not filtered, filtered\n"
        "handled = [l.name for l in loggers if getattr(l, 'handlers', None)]\n"
        "assert not handled, handled\n"
        "assert 'confluent_kafka' not in __import__('sys').modules\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
