"""Read alerts back from a Kafka topic.

Each message is expected in the Confluent wire format (magic byte 0, 4-byte
schema id, schemaless Avro). The schema id is resolved against the schemas
shipped by lsst-alert-packet with Rubin's convention ``major*100+minor``
(`alertpack.schema.schema_for_id`), so no schema registry is needed.

`iter_kafka_alerts` is the Python API; ``alertpack consume`` prints one line
per alert or writes them to Avro container files.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alertpack.errors import (
    AlertDecodeError,
    CommandError,
    InputError,
    StreamError,
    UnknownSchemaError,
    WireFormatError,
)
from alertpack.schema import AlertSchema, schema_for_id, unpack_wire
from alertpack.sinks.kafka import ENV_SERVER, ENV_TOPIC, Secret, client_logger
from alertpack.tools.reading import CUTOUT_FIELDS, alert_id, alert_object_id, field_value

__all__ = [
    "ENV_CONSUMER_PASSWORD",
    "ENV_CONSUMER_USERNAME",
    "ConsumeResult",
    "ConsumedAlert",
    "RejectedMessage",
    "consume_to_directory",
    "decode_message",
    "iter_kafka_alerts",
    "write_alert_files",
]

ENV_CONSUMER_USERNAME = "AP_KAFKA_CONSUMER_USERNAME"
ENV_CONSUMER_PASSWORD = "AP_KAFKA_CONSUMER_PASSWORD"

#: alerts per Avro file written by ``--out``
ALERTS_PER_FILE = 1000

#: ``consume --out`` writes (and commits) pending alerts at least this often, seconds
FLUSH_SECONDS = 5.0

#: subdirectory of ``consume --out DIR`` for messages that are not alerts
REJECTED_DIR = "rejected"

#: seconds a consumer group may take to hand out partitions (Kafka delays the
#: first rebalance by 3 s by default)
GROUP_JOIN_TIMEOUT = 30.0

# how long one consume() call may block, so the idle timeout is checked often
_POLL_SECONDS = 0.25



@dataclass
class ConsumedAlert:
    """One alert read from Kafka.

    It shares its shape with the alerts read from files
    (`alertpack.tools.reading.LoadedAlert`): ``alert``, ``alert_id``,
    ``object_id``, ``schema``, ``schema_name``, ``source``, ``packet_size``
    and ``label`` mean the same on both.

    Attributes
    ----------
    alert : `dict`
        The decoded alert record.
    schema : `~alertpack.schema.AlertSchema`
        The shipped schema the payload was decoded with.
    schema_id : `int`
        Schema id from the wire header.
    payload : `bytes`
        The schemaless Avro record, as received (without the wire header).
    key : `bytes` or `None`
        Message key (alertpack sends the diaObjectId as ASCII digits).
    topic, partition, offset
        Where the message was.
    timestamp_ms : `int` or `None`
        Message timestamp in ms since the Unix epoch, if the broker has one.
    server : `str`
        Bootstrap server(s) it was read from.
    """

    alert: dict[str, Any]
    schema: AlertSchema
    schema_id: int
    payload: bytes
    key: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    server: str = ""

    @property
    def source(self) -> str:
        """``kafka://SERVER/TOPIC``, as `LoadedAlert.source` names a file."""
        return f"kafka://{self.server}/{self.topic}"

    @property
    def schema_name(self) -> str:
        """Full name of the schema the payload was decoded with."""
        return str(self.schema.definition["name"])

    @property
    def packet_size(self) -> int:
        """Bytes of the schemaless Avro record (the payload without the wire header)."""
        return len(self.payload)

    @property
    def object_id(self) -> int | None:
        """The alert's diaObjectId (from diaObject, else diaSource)."""
        return alert_object_id(self.alert)

    @property
    def label(self) -> str:
        """``topic[partition]@offset`` for messages that point at one alert."""
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @property
    def key_id(self) -> int | None:
        """The key as an integer (the diaObjectId), or `None` if it is not decimal digits."""
        if self.key is None or not self.key.isdigit():
            return None
        return int(self.key)

    @property
    def alert_id(self) -> int | None:
        """``diaSourceId`` (``alertId`` in old schemas)."""
        return alert_id(self.alert)

    def summary(self) -> str:
        """One line: where it was, ids, band, time, position, S/N and cutouts."""
        source = self.alert.get("diaSource")
        parts = [
            f"{self.topic}[{self.partition}]@{self.offset}",
            f"schema={self.schema_id}",
            f"alertId={self.alert_id}",
            f"diaObjectId={alert_object_id(self.alert)}",
        ]
        band = field_value(source, "band")
        if band is not None:
            parts.append(f"band={band}")
        mjd = field_value(source, "mjd")
        if mjd is not None:
            parts.append(f"mjd={mjd:.5f}")
        ra, dec = field_value(source, "ra"), field_value(source, "dec")
        if ra is not None and dec is not None:
            parts.append(f"ra={ra:.6f} dec={dec:+.6f}")
        flux, error = field_value(source, "flux"), field_value(source, "flux_err")
        if flux is not None and error:
            parts.append(f"psfFlux/err={flux / error:.1f}")
        cutouts = sum(1 for name in CUTOUT_FIELDS if self.alert.get(name))
        parts.append(f"cutouts={cutouts}")
        parts.append(f"bytes={len(self.payload)}")
        return "  ".join(parts)


def decode_message(value: bytes, *, where: str = "message") -> tuple[int, AlertSchema, dict]:
    """Decode a wire-format alert message into ``(schema_id, schema, alert)``.

    Parameters
    ----------
    value : `bytes`
        The Kafka message value.
    where : `str`
        Names the message in errors (e.g. ``topic[partition]@offset``).

    Raises
    ------
    AlertDecodeError
        For a bad header, a schema id lsst-alert-packet does not ship, or a
        payload that does not decode with that schema.
    """
    try:
        schema_id, payload = unpack_wire(value)
        schema = schema_for_id(schema_id)
    except (WireFormatError, UnknownSchemaError) as error:
        raise AlertDecodeError(f"{where}: {error}") from None
    try:
        alert = schema.decode(payload)
    except (EOFError, ValueError, TypeError, IndexError, UnicodeDecodeError) as error:
        raise AlertDecodeError(
            f"{where}: payload of {len(payload)} bytes does not decode with alert schema "
            f"{schema.version} (id {schema_id}): {error!r}; was it written with another schema?"
        ) from None
    return schema_id, schema, alert


def _consumer_config(
    server: str, group: str | None, from_beginning: bool, config: dict | None
) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "bootstrap.servers": server,
        # assign() still needs a group id; a private one commits nothing anywhere
        "group.id": group or f"alertpack-consume-{os.getpid()}-{time.monotonic_ns()}",
        "enable.auto.commit": group is not None,
        # an offset is stored only once its alert was handed out (see _read)
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest" if from_beginning else "latest",
        "enable.partition.eof": False,
        # Tansu and small brokers make group joins slow; keep sessions short
        "session.timeout.ms": 6000,
        "client.id": "alertpack-consume",
    }
    settings.update(config or {})
    return settings


def _redactor(config: dict[str, Any]):
    secrets = [
        str(value)
        for name, value in config.items()
        if "password" in name or "secret" in name or "token" in name
    ]

    def redact(text: str) -> str:
        for secret in secrets:
            if secret:
                text = text.replace(secret, "********")
        return text

    return redact


def _topic_partitions(consumer, server: str, topic: str, timeout: float, redact) -> list[int]:
    from confluent_kafka import KafkaException

    try:
        metadata = consumer.list_topics(topic, timeout=max(timeout, 1.0))
    except KafkaException as error:
        raise StreamError(
            f"cannot reach Kafka at {server} within {max(timeout, 1.0):g} s "
            f"({redact(str(error.args[0]))}); check --server and that the broker is up"
        ) from None
    described = metadata.topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        reason = "" if described is None or described.error is None else f" ({described.error})"
        raise StreamError(f"topic {topic!r} does not exist on {server}{reason}")
    return sorted(described.partitions)


@contextlib.contextmanager
def _open_consumer(
    server: str,
    topic: str,
    *,
    from_beginning: bool,
    timeout: float,
    group: str | None,
    config: dict[str, Any] | None,
    auto_commit: bool,
) -> Iterator[tuple[Any, list, Any]]:
    """A consumer reading every partition of ``topic``: ``(consumer, early messages, redact)``."""
    from confluent_kafka import (
        OFFSET_BEGINNING,
        OFFSET_END,
        Consumer,
        KafkaException,
        TopicPartition,
    )

    settings = _consumer_config(server, group, from_beginning, config)
    settings["enable.auto.commit"] = auto_commit and group is not None
    redact = _redactor(settings)
    # librdkafka's own lines go to the masked alertpack logger, not raw to stderr;
    # connection failures reach the user as one clear error below
    settings["logger"] = client_logger
    try:
        consumer = Consumer(settings)
    except (KafkaException, ValueError, TypeError) as error:
        raise InputError(f"cannot create a Kafka consumer: {redact(str(error))}") from None
    try:
        partitions = _topic_partitions(consumer, server, topic, timeout, redact)
        early: list = []
        if group is None:
            start = OFFSET_BEGINNING if from_beginning else OFFSET_END
            consumer.assign([TopicPartition(topic, p, start) for p in partitions])
        else:
            early = _join_group(consumer, topic, group, max(timeout, GROUP_JOIN_TIMEOUT))
        yield consumer, early, redact
    finally:
        consumer.close()


def iter_kafka_alerts(
    server: str,
    topic: str,
    *,
    from_beginning: bool = False,
    max_alerts: int | None = None,
    timeout: float = 10.0,
    group: str | None = None,
    config: dict[str, Any] | None = None,
    on_rejected: Callable[[RejectedMessage], None] | None = None,
) -> Iterator[ConsumedAlert]:
    """Alerts on a topic, decoded, in arrival order.

    Parameters
    ----------
    server : `str`
        Bootstrap server(s), ``host:port[,host:port]``.
    topic : `str`
        Topic to read; all its partitions are read.
    from_beginning : `bool`
        Start at the earliest offset; else only messages that arrive from now on
        (with a ``group``: where the group left off, this deciding only for a new group).
    max_alerts : `int`, optional
        Stop after this many alerts.
    timeout : `float`
        Stop when no message arrived for this many seconds.
    group : `str`, optional
        Consumer group to join and commit offsets in; by default no group
        (all partitions are assigned directly, which is much faster to start).
        An offset is stored once its alert was handed out (the caller's loop
        body ran) and committed in the background and when the iterator ends.
    config : `dict`, optional
        More librdkafka properties (e.g. ``security.protocol``, ``sasl.*``).
    on_rejected : callable, optional
        Called with a `RejectedMessage` for each message that is not a
        decodable alert, and reading goes on; by default such a message raises.

    Yields
    ------
    alert : `ConsumedAlert`

    Raises
    ------
    StreamError
        When the broker cannot be reached or the topic does not exist.
    AlertDecodeError
        At a message that is not a decodable alert (it names topic, partition,
        offset), unless ``on_rejected`` is given.
    """
    if max_alerts is not None and max_alerts <= 0:
        return
    source = {"from_beginning": from_beginning, "timeout": timeout, "group": group}
    opened = _open_consumer(server, topic, config=config, auto_commit=True, **source)
    count = 0
    with opened as (consumer, early, redact):
        for message in _iter_messages(consumer, early, timeout, redact):
            try:
                consumed = _to_consumed(message)
            except AlertDecodeError as error:
                if on_rejected is None:
                    raise
                on_rejected(RejectedMessage.of(message, str(error)))
            else:
                consumed.server = server
                yield consumed
                count += 1
            if group is not None:
                consumer.store_offsets(message)
            if max_alerts is not None and count >= max_alerts:
                return


def _join_group(consumer, topic: str, group: str, timeout: float) -> list:
    """Subscribe and wait (bounded) for the partitions, so that joining is not idle time.

    Returns the messages that arrived together with the assignment.
    """
    assigned: list = []
    consumer.subscribe([topic], on_assign=lambda _, partitions: assigned.extend(partitions))
    deadline = time.monotonic() + timeout
    while not assigned:
        if time.monotonic() > deadline:
            raise StreamError(
                f"consumer group {group!r} got no partitions of {topic!r} within {timeout:g} s"
            )
        messages = consumer.consume(500, timeout=_POLL_SECONDS)
        if messages:
            return messages
    return []


def _iter_messages(
    consumer, messages: list, timeout: float, redact, *, idle_ticks: bool = False
) -> Iterator[Any]:
    """Raw messages (not errors) until none arrived for ``timeout`` s.

    With ``idle_ticks``, `None` comes after each poll that brought nothing, so
    that the caller can do timed work while the topic is quiet.
    """
    last_arrival = time.monotonic()
    while True:
        for message in messages:
            if message.error():
                error = message.error()
                if error.fatal() or not error.retriable():
                    raise StreamError(f"reading {message.topic()}: {redact(str(error))}")
                continue
            last_arrival = time.monotonic()
            yield message
        idle = time.monotonic() - last_arrival
        if idle >= timeout:
            return
        messages = consumer.consume(500, timeout=min(_POLL_SECONDS, timeout - idle))
        if idle_ticks and not messages:
            yield None


def _where(message) -> str:
    return f"{message.topic()}[{message.partition()}]@{message.offset()}"


def _to_consumed(message) -> ConsumedAlert:
    value = message.value()
    if value is None:
        raise AlertDecodeError(f"{_where(message)}: empty message (no value), not an alert")
    schema_id, schema, alert = decode_message(value, where=_where(message))
    timestamp_type, timestamp = message.timestamp()
    return ConsumedAlert(
        alert=alert,
        schema=schema,
        schema_id=schema_id,
        payload=bytes(value[5:]),
        key=message.key(),
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        timestamp_ms=timestamp if timestamp_type != 0 else None,
    )


@dataclass
class RejectedMessage:
    """A message that is not a decodable alert, kept aside instead of lost.

    Attributes
    ----------
    topic, partition, offset
        Where it was.
    reason : `str`
        Why it is not an alert (names topic, partition and offset).
    value : `bytes`
        The message value as received.
    path : `pathlib.Path` or `None`
        Where it was kept (``DIR/rejected/...``), when written to a directory.
    """

    topic: str
    partition: int
    offset: int
    reason: str
    value: bytes
    path: Path | None = None

    @classmethod
    def of(cls, message, reason: str) -> RejectedMessage:
        """The rejected Kafka ``message``."""
        return cls(
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            reason=reason,
            value=bytes(message.value() or b""),
        )

    @property
    def file_name(self) -> str:
        """``<topic>-p<partition>-o<offset>.msg``: the raw value, named by where it was."""
        return f"{_safe_name(self.topic)}-p{self.partition}-o{self.offset}.msg"


@dataclass
class ConsumeResult:
    """What `consume_to_directory` did so far (filled in as it goes, also on interrupt).

    Attributes
    ----------
    alerts : `int`
        Alerts written to files.
    files : `list` [`pathlib.Path`]
        Alert files written.
    rejected : `list` [`RejectedMessage`]
        Messages that were not alerts, kept in ``DIR/rejected/``.
    committed : `int`
        Messages (alerts and rejected) whose offsets were committed to the group.
    """

    alerts: int = 0
    files: list[Path] = field(default_factory=list)
    rejected: list[RejectedMessage] = field(default_factory=list)
    committed: int = 0


def _safe_name(topic: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in topic)


def _file_stem(topic: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{_safe_name(topic)}-{stamp}"


def write_alert_files(
    alerts: Iterator[ConsumedAlert],
    directory: str | os.PathLike,
    *,
    topic: str = "alerts",
    per_file: int = ALERTS_PER_FILE,
) -> tuple[int, list[Path]]:
    """Write consumed alerts to Avro container files, one schema version per file.

    Files are ``<topic>-<UTC time>-v<major>_<minor>-<n>.avro`` with at most
    ``per_file`` alerts each, written atomically; they read back with
    fastavro or `lsst.alert.packet`. (To commit offsets only once the alerts
    are on disk, use `consume_to_directory`.)

    Returns
    -------
    count, paths : `int`, `list` [`pathlib.Path`]
        Alerts written and the files.
    """
    pending = _PendingFiles(Path(directory), topic, per_file)
    count = 0
    for consumed in alerts:
        pending.add(consumed)
        count += 1
        if pending.full:
            pending.write()
    pending.write()
    return count, pending.written


class _PendingFiles:
    """Alerts read but not yet on disk, by schema id, and the offsets they cover."""

    def __init__(self, directory: Path, topic: str, per_file: int):
        self.directory = directory
        self.stem = _file_stem(topic)
        self.per_file = per_file
        self.payloads: dict[int, list[bytes]] = {}
        # (topic, partition) -> next offset to commit, once the payloads are written
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.n_messages = 0
        self.started = time.monotonic()
        self.written: list[Path] = []

    def __len__(self) -> int:
        return sum(len(batch) for batch in self.payloads.values())

    @property
    def full(self) -> bool:
        return any(len(batch) >= self.per_file for batch in self.payloads.values())

    def age(self) -> float:
        return time.monotonic() - self.started

    def add(self, consumed: ConsumedAlert) -> None:
        self.payloads.setdefault(consumed.schema_id, []).append(consumed.payload)
        self.cover(consumed.topic, consumed.partition, consumed.offset)

    def cover(self, topic: str, partition: int, offset: int) -> None:
        """Count a message (alert or rejected) among those committed with the next write."""
        key = (topic, partition)
        self.next_offsets[key] = max(self.next_offsets.get(key, 0), offset + 1)
        self.n_messages += 1

    def write(self) -> list[Path]:
        """Write every pending batch as files; a batch leaves memory only once on disk."""
        paths = []
        for schema_id in list(self.payloads):
            batch = self.payloads[schema_id]
            while batch:
                chunk = batch[: self.per_file]
                path = _write_batch(self.directory, self.stem, schema_id, chunk, self.n_files)
                del batch[: self.per_file]
                self.written.append(path)
                paths.append(path)
            del self.payloads[schema_id]
        self.started = time.monotonic()
        return paths

    @property
    def n_files(self) -> int:
        return len(self.written)


def _write_batch(
    directory: Path, stem: str, schema_id: int, payloads: list[bytes], n: int
) -> Path:
    """One container file of the payloads as received (no decode and re-encode)."""
    from alertpack.packets.avro import write_container
    from alertpack.sinks.files import atomic_output

    schema = schema_for_id(schema_id)
    version = schema.version
    path = directory / f"{stem}-v{version.major}_{version.minor}-{n:04d}.avro"
    with atomic_output(path) as stream:
        write_container(stream, schema.definition, payloads)
    return path


def _keep_aside(directory: Path, rejected: RejectedMessage) -> RejectedMessage:
    """Write a rejected message's raw value to ``directory/rejected/``, atomically."""
    from alertpack.sinks.files import atomic_output

    path = directory / REJECTED_DIR / rejected.file_name
    with atomic_output(path) as stream:
        stream.write(rejected.value)
    rejected.path = path
    return rejected


def consume_to_directory(
    server: str,
    topic: str,
    directory: str | os.PathLike,
    *,
    from_beginning: bool = False,
    max_alerts: int | None = None,
    timeout: float = 10.0,
    group: str | None = None,
    config: dict[str, Any] | None = None,
    per_file: int = ALERTS_PER_FILE,
    flush_seconds: float = FLUSH_SECONDS,
    result: ConsumeResult | None = None,
    on_file: Callable[[Path], None] | None = None,
    on_rejected: Callable[[RejectedMessage], None] | None = None,
) -> ConsumeResult:
    """Read a topic into Avro files, committing each offset only once its alert is on disk.

    Alerts are written as by `write_alert_files` whenever ``per_file`` of one
    schema version are pending or ``flush_seconds`` passed, and when reading
    ends, also by an exception such as `KeyboardInterrupt`: what was read is
    written, then the group's offsets are committed, then the exception goes on.
    Delivery is at-least-once: a crash between a write and its commit makes the
    next run read those alerts again.

    A message that is not a decodable alert is kept aside raw as
    ``directory/rejected/<topic>-p<partition>-o<offset>.msg`` and reported to
    ``on_rejected``; its neighbours are read and written as usual.

    Parameters
    ----------
    server, topic, from_beginning, max_alerts, timeout, group, config
        As for `iter_kafka_alerts`.
    directory : path-like
        Output directory; checked before reading, created with the first file.
    per_file : `int`
        Alerts per file at most.
    flush_seconds : `float`
        Write (and commit) pending alerts at least this often.
    result : `ConsumeResult`, optional
        Filled in as the work goes on (so that a caller catching an interrupt
        knows what was done); a new one by default.
    on_file, on_rejected : callable, optional
        Called with each file written and each message rejected.

    Returns
    -------
    result : `ConsumeResult`
    """
    from alertpack.sinks.files import check_output_directory

    directory = check_output_directory(directory)
    result = result if result is not None else ConsumeResult()
    if max_alerts is not None and max_alerts <= 0:
        return result
    pending = _PendingFiles(directory, topic, per_file)
    source = {"from_beginning": from_beginning, "timeout": timeout, "group": group}
    opened = _open_consumer(server, topic, config=config, auto_commit=False, **source)

    def flush(consumer) -> None:
        n_alerts = len(pending)
        for path in pending.write():
            result.files.append(path)
            if on_file is not None:
                on_file(path)
        result.alerts += n_alerts
        if group is not None and pending.next_offsets:
            _commit(consumer, pending.next_offsets)
            result.committed += pending.n_messages
        pending.next_offsets = {}
        pending.n_messages = 0

    with opened as (consumer, early, redact):
        try:
            for message in _iter_messages(consumer, early, timeout, redact, idle_ticks=True):
                if message is None:
                    if pending.age() >= flush_seconds:
                        flush(consumer)
                    continue
                try:
                    pending.add(_to_consumed(message))
                except AlertDecodeError as error:
                    rejected = _keep_aside(directory, RejectedMessage.of(message, str(error)))
                    result.rejected.append(rejected)
                    pending.cover(rejected.topic, rejected.partition, rejected.offset)
                    if on_rejected is not None:
                        on_rejected(rejected)
                if pending.full or pending.age() >= flush_seconds:
                    flush(consumer)
                if max_alerts is not None and result.alerts + len(pending) >= max_alerts:
                    break
        except BaseException:
            # interrupted (Ctrl-C, SIGTERM) or failed: what was read is still written
            flush(consumer)
            raise
        flush(consumer)
    return result


def _commit(consumer, next_offsets: dict[tuple[str, int], int]) -> None:
    from confluent_kafka import KafkaException, TopicPartition

    offsets = [TopicPartition(t, p, offset) for (t, p), offset in sorted(next_offsets.items())]
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as error:
        raise StreamError(
            f"alerts are on disk but committing their offsets failed ({error.args[0]}); "
            "the next run of this group reads them again"
        ) from None


def _credentials_config() -> dict[str, Any]:
    username = os.environ.get(ENV_CONSUMER_USERNAME, "").strip()
    if not username:
        return {}
    password = Secret(os.environ.get(ENV_CONSUMER_PASSWORD, ""))
    if not password.reveal():
        raise CommandError(f"${ENV_CONSUMER_USERNAME} is set but ${ENV_CONSUMER_PASSWORD} is not")
    return {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": username,
        "sasl.password": password.reveal(),
    }


def kafka_source_from_args(args) -> tuple[str, str, dict[str, Any]]:
    """``(server, topic, options)`` for the Kafka source options of a command.

    Server and topic default to ``$AP_KAFKA_SERVER`` and ``$AP_KAFKA_TOPIC``;
    ``$AP_KAFKA_CONSUMER_USERNAME`` / ``$AP_KAFKA_CONSUMER_PASSWORD`` switch on
    SASL_SSL with SCRAM-SHA-512. ``options`` are the keyword arguments of
    `iter_kafka_alerts` and `consume_to_directory`.
    """
    server = (args.server or os.environ.get(ENV_SERVER, "")).strip()
    topic = (args.topic or os.environ.get(ENV_TOPIC, "")).strip()
    if not server or not topic:
        missing = "--server (or $AP_KAFKA_SERVER)" if not server else "--topic (or $AP_KAFKA_TOPIC)"
        raise CommandError(f"no Kafka {missing.split()[0][2:]} given: pass {missing}")
    options = {
        "from_beginning": args.from_beginning,
        "max_alerts": args.max,
        "timeout": args.timeout,
        "group": args.group,
        "config": _credentials_config(),
    }
    return server, topic, options


def kafka_alerts_from_args(
    args, on_rejected: Callable[[RejectedMessage], None] | None = None
) -> tuple[str, str, Iterator[ConsumedAlert]]:
    """``(server, topic, alerts)`` for the Kafka source options of a command.

    See `kafka_source_from_args`; ``on_rejected`` as for `iter_kafka_alerts`.
    """
    server, topic, options = kafka_source_from_args(args)
    return server, topic, iter_kafka_alerts(server, topic, on_rejected=on_rejected, **options)
