"""No secret in any output, payload, header or log: the one redaction rule and its users.

``alertpack config`` with credentials in URLs, ``dataclasses.asdict`` of the
settings, registry credentials from the environment, the registry client
(no ``Authorization`` across hosts on a redirect, never an answer copied
verbatim, even one that echoes the request's headers), and what the
scale-out sends to its workers.
"""

from __future__ import annotations

import base64
import dataclasses
import http.server
import json
import os
import threading

import pytest

from alertpack.cli import main as cli_main
from alertpack.config import PackageAlertsConfig
from alertpack.errors import ConfigError, StreamError
from alertpack.kafka.producer import AlertProducer
from alertpack.kafka.registry import register_schema
from alertpack.kafka.settings import REDACTED, KafkaSettings, redact
from alertpack.redaction import Secret
from alertpack.scaleout.engines import LocalPoolEngine
from alertpack.scaleout.pool import DetectorExecutor, job_config
from alertpack.sinks.failed import read_failed_alerts
from broker import make_alerts

PASSWORD = "pa55-w0rd-xyzzy"
TOKEN = "tok3n-abcdef-123456"
API_KEY = "k3y-9876543210"


def test_one_rule_masks_tokens_parameters_and_authorization_headers():
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    cases = {
        f"https://{TOKEN}@registry:8081/": f"https://{REDACTED}@registry:8081/",
        f"https://registry/x?api_key={API_KEY}&v=1": f"https://registry/x?api_key={REDACTED}&v=1",
        f"GET /?access_token={TOKEN}": f"GET /?access_token={REDACTED}",
        f"Authorization: Basic {basic}": f"Authorization: Basic {REDACTED}",
        f'{{"authorization": "Bearer {TOKEN}"}}': f'{{"authorization": "Bearer {REDACTED}"}}',
        "connected to broker:9092": "connected to broker:9092",
    }
    for text, shown in cases.items():
        assert redact(text) == shown


def test_config_command_masks_every_credential(capsys):
    argv = [
        "config", "-c", f"kafkaServer=bob:{PASSWORD}@broker:9092",
        "-c", f"schemaRegistryUrl=https://{TOKEN}@registry:8081/?api_key={API_KEY}",
        "-c", f"kafkaPassword={PASSWORD}x",
    ]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    for secret in (PASSWORD, TOKEN, API_KEY):
        assert secret not in out
    assert f"config.kafkaServer='bob:{REDACTED}@broker:9092'" in out
    assert f"config.kafkaPassword='{REDACTED}'" in out
    assert f"config.schemaRegistryUrl='https://{REDACTED}@registry:8081/?api_key={REDACTED}'" in out
    # and the text still loads as a config
    config = PackageAlertsConfig()
    config.loadFromString(out)
    assert config.kafkaPassword == REDACTED


def test_settings_as_dict_and_repr_hold_no_credential():
    settings = KafkaSettings(
        servers=f"bob:{PASSWORD}@broker:9092", topic="t",
        registry_url=f"https://{TOKEN}@registry:8081", registry_username="carol",
        registry_password=PASSWORD + "2",
    )
    shown = [str(dataclasses.asdict(settings)), repr(settings), settings.shown_servers]
    for text in shown:
        assert PASSWORD not in text and TOKEN not in text
    assert isinstance(settings.servers, Secret)
    assert settings.client_config()["bootstrap.servers"] == f"bob:{PASSWORD}@broker:9092"


def test_registry_credentials_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("AP_SCHEMA_REGISTRY_URL", "https://registry:8081")
    monkeypatch.setenv("AP_SCHEMA_REGISTRY_USERNAME", "carol")
    monkeypatch.setenv("AP_SCHEMA_REGISTRY_PASSWORD", PASSWORD)
    settings = KafkaSettings.resolve(servers="h:1", topic="t")
    assert settings.registry_url == "https://registry:8081"
    username, password = settings.registry_credentials
    assert (username, password.reveal()) == ("carol", PASSWORD)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(dataclasses.asdict(settings))
    monkeypatch.delenv("AP_SCHEMA_REGISTRY_PASSWORD")
    with pytest.raises(ConfigError, match="AP_SCHEMA_REGISTRY_PASSWORD"):
        KafkaSettings.resolve(servers="h:1", topic="t")


class _Server(http.server.BaseHTTPRequestHandler):
    """A scriptable registry: each instance's class says what it answers."""

    answer: tuple[int, dict[str, str], bytes] = (200, {}, b'{"id": 7}')
    seen: list[dict[str, str]]

    def _respond(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).seen.append(dict(self.headers))
        code, headers, body = type(self).answer
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _respond

    def log_message(self, *args):
        pass


def serve(answer) -> tuple[http.server.HTTPServer, type]:
    handler = type("Handler", (_Server,), {"answer": answer, "seen": []})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def test_no_authorization_header_across_hosts_on_a_redirect():
    elsewhere, seen_elsewhere = serve((200, {}, b'{"id": 9}'))
    target = f"http://127.0.0.1:{elsewhere.server_port}/subjects/t-value/versions"
    registry, seen_registry = serve((302, {"Location": target}, b""))
    try:
        url = f"http://alice:{PASSWORD}@127.0.0.1:{registry.server_port}"
        assert register_schema(url, "t-value", {"type": "string"}) == 9
    finally:
        registry.shutdown()
        elsewhere.shutdown()
    assert seen_registry.seen[0]["Authorization"].startswith("Basic ")
    assert "Authorization" not in seen_elsewhere.seen[0]  # the other port is another origin


def test_a_registry_echoing_the_headers_puts_no_credential_anywhere(tmp_path, capfd):
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    echo = json.dumps({"error_code": 40101, "message": f"bad auth: Authorization: Basic {basic}"})
    registry, _ = serve((401, {"Content-Type": "application/json"}, echo.encode()))
    try:
        url = f"http://127.0.0.1:{registry.server_port}"
        with pytest.raises(StreamError) as caught:
            register_schema(url, "t-value", {"type": "string"},
                            credentials=("alice", Secret(PASSWORD)))
        # through the producer: the failed alerts' reasons, the log, stderr
        settings = KafkaSettings.resolve(
            servers="127.0.0.1:9", topic="t", flush_timeout=1.0, delivery_timeout=1.0,
            registry_url=f"http://alice:{PASSWORD}@127.0.0.1:{registry.server_port}",
        )
        with AlertProducer(settings, failed_dir=tmp_path) as producer:
            result = producer.send(make_alerts(2))
    finally:
        registry.shutdown()
    assert "HTTP 401" in str(caught.value) and "error_code 40101" in str(caught.value)
    reasons = [failure.reason for failure in read_failed_alerts(result.failed_path)]
    texts = [str(caught.value), result.summary(), *reasons, *capfd.readouterr()]
    for text in texts:
        assert basic not in text and PASSWORD not in text, text
    assert basic.encode() not in result.failed_path.read_bytes()


def test_jobs_carry_no_secret_and_local_workers_get_them_in_their_environment():
    config = PackageAlertsConfig()
    config.kafkaPassword = PASSWORD
    config.kafkaServer = f"bob:{PASSWORD}x@broker:9092"
    config.schemaRegistryUrl = f"https://{TOKEN}@registry:8081"
    text, environment = job_config(config)
    for secret in (PASSWORD, TOKEN):
        assert secret not in text
    assert environment == {
        "AP_KAFKA_PRODUCER_PASSWORD": PASSWORD,
        "AP_KAFKA_SERVER": f"bob:{PASSWORD}x@broker:9092",
        "AP_SCHEMA_REGISTRY_URL": f"https://{TOKEN}@registry:8081",
    }
    # what a worker's settings then read: the same as this process's
    loaded = PackageAlertsConfig()
    loaded.loadFromString(text)
    old = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        settings = KafkaSettings.from_config(loaded, topic="t")
    finally:
        for name, value in old.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
    assert settings.password.reveal() == PASSWORD
    assert settings.registry_url.reveal() == f"https://{TOKEN}@registry:8081"
    # a local worker process gets them in its environment when it starts, not with a job
    engine = LocalPoolEngine(2, environment={"AP_TEST_SECRET_ENV": PASSWORD})
    try:
        assert engine.submit(os.getenv, "AP_TEST_SECRET_ENV").result() == PASSWORD
    finally:
        engine.close()
    assert "AP_TEST_SECRET_ENV" not in os.environ


def test_a_dask_run_refuses_a_configuration_holding_a_secret():
    config = PackageAlertsConfig()
    config.kafkaPassword = PASSWORD
    with pytest.raises(ConfigError) as caught:
        DetectorExecutor(config, scheduler="tcp://127.0.0.1:9")
    message = str(caught.value)
    assert "kafkaPassword" in message and "AP_KAFKA_PRODUCER_PASSWORD" in message
    assert PASSWORD not in message
