"""Read alerts back from a Kafka topic.

Each message is expected in the Confluent wire format (magic byte 0, 4-byte
schema id, schemaless Avro). The schema id is resolved against the schemas
shipped by lsst-alert-packet with Rubin's convention ``major*100+minor``
(`alertpack.schema.schema_for_id`), so no schema registry is needed.

`iter_kafka_alerts` is the Python API; ``alertpack consume`` prints one line
per alert or writes them to Avro container files. The consumer itself (its
settings, partitions, group, offsets) is `alertpack.kafka.consumer`'s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alertpack.errors import AlertDecodeError, StreamError, UnknownSchemaError, WireFormatError
from alertpack.kafka.consumer import (
    OversizedMessage,
    TopicConsumer,
    message_position,
    open_consumer,
)
from alertpack.kafka.settings import ConsumerSettings
from alertpack.kafka.signals import signals_deferred
from alertpack.schema import AlertSchema, schema_for_id, unpack_wire
from alertpack.sinks.files import atomic_output, check_output_directory
from alertpack.tools.reading import (
    CUTOUT_FIELDS,
    alert_id,
    alert_object_id,
    cutout_fits,
    field_value,
    signal_to_noise,
)
from alertpack.tools.rejected import write_rejected
from alertpack.tools.selection import Selection

__all__ = [
    "ConsumeResult",
    "ConsumedAlert",
    "RejectedMessage",
    "consume_to_directory",
    "decode_message",
    "iter_kafka_alerts",
    "topic_file_stem",
    "write_alert_files",
]

#: alerts per Avro file written by ``--out``
ALERTS_PER_FILE = 1000

#: ``consume --out`` writes (and commits) pending alerts at least this often, seconds
FLUSH_SECONDS = 5.0

#: subdirectory of ``consume --out DIR`` for messages that are not alerts
REJECTED_DIR = "rejected"

#: seconds the broker may take to answer the first request when the read has no idle limit
CONNECT_SECONDS = 10.0

#: ``consume --out`` also writes (and commits) once the alerts read hold this many bytes
MAX_PENDING_BYTES = 64 << 20

# the most characters of a topic name that go into a file name (then a hash of the rest)
_TOPIC_NAME_CHARS = 80



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
        return message_position(self.topic, self.partition, self.offset)

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

    def cutout(self, name: str, *, max_bytes: int | None = None) -> bytes | None:
        """The cutout ``name`` as a plain FITS file, any variant decoded (`cutout_fits`)."""
        return cutout_fits(self.alert, name, max_bytes=max_bytes)

    def summary(self) -> str:
        """One line: where it was, ids, band, time, position, S/N and cutouts."""
        source = self.alert.get("diaSource")
        parts = [
            self.label,
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
        snr = signal_to_noise(source)
        if snr is not None:
            parts.append(f"snr={snr:.1f}")
        cutouts = sum(1 for name in CUTOUT_FIELDS if self.alert.get(name))
        parts.append(f"cutouts={cutouts}")
        parts.append(f"bytes={len(self.payload)}")
        return "  ".join(parts)


def decode_message(
    value: bytes, *, where: str = "message"
) -> tuple[int, AlertSchema, dict[str, Any]]:
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
        payload that is not exactly one record of that schema.
    """
    try:
        schema_id, payload = unpack_wire(value)
        schema = schema_for_id(schema_id)
    except (WireFormatError, UnknownSchemaError) as error:
        raise AlertDecodeError(f"{where}: {error}") from None
    # exactly: a record with bytes after it is no alert (kept, it would corrupt its file)
    return schema_id, schema, schema.decode(payload, what=where)


def consumer_settings(
    source: str | ConsumerSettings,
    topic: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> ConsumerSettings:
    """The `~alertpack.kafka.settings.ConsumerSettings` a read function was given.

    Parameters
    ----------
    source : `str` or `ConsumerSettings`
        Bootstrap server(s) (explicit: no environment variable is read), or settings.
    topic : `str`, optional
        The topic; with settings, instead of theirs.
    config : mapping, optional
        More librdkafka properties, over the settings' ``extra``.
    """
    if isinstance(source, ConsumerSettings):
        changes: dict[str, Any] = {}
        if topic:
            changes["topic"] = topic
        if config:
            changes["extra"] = {**source.extra, **config}
        return dataclasses.replace(source, **changes) if changes else source
    return ConsumerSettings(servers=source, topic=topic or "", extra=dict(config or {}))


def iter_kafka_alerts(
    source: str | ConsumerSettings,
    topic: str | None = None,
    *,
    from_beginning: bool = False,
    max_alerts: int | None = None,
    timeout: float | None = 10.0,
    group: str | None = None,
    config: Mapping[str, Any] | None = None,
    on_rejected: Callable[[RejectedMessage], None] | None = None,
    stop: threading.Event | None = None,
    selection: Selection | None = None,
) -> Iterator[ConsumedAlert]:
    """Alerts on a topic, decoded, in arrival order.

    Parameters
    ----------
    source : `str` or `~alertpack.kafka.settings.ConsumerSettings`
        Bootstrap server(s), ``host:port[,host:port]`` (no credentials unless
        in ``config``), or settings with servers, topic and credentials
        (e.g. `ConsumerSettings.resolve`, which reads ``AP_KAFKA_*``).
    topic : `str`, optional
        Topic to read (all its partitions); required with a server string.
    from_beginning : `bool`
        Start at the earliest offset; else only messages that arrive from now on
        (with a ``group``: where the group left off, this deciding only for a new group).
    max_alerts : `int`, optional
        Stop after this many alerts (selected ones, with a ``selection``).
    timeout : `float` or `None`
        Stop when no message arrived for this many seconds; `None`: no idle
        limit, the read goes on until ``stop`` is set or the caller stops
        iterating (the broker then gets `CONNECT_SECONDS` to answer first).
    group : `str`, optional
        Consumer group to join and commit offsets in; by default no group
        (all partitions are assigned directly, which is much faster to start).
        An offset is stored once its alert was handed out (the caller's loop
        body ran) and committed in the background and when the iterator ends.
    config : mapping, optional
        More librdkafka properties (e.g. ``security.protocol``, ``sasl.*``);
        secret ones are masked like the settings' password.
    on_rejected : callable, optional
        Called with a `RejectedMessage` for each message that is not exactly
        one decodable alert, or too large to receive (skipped, see
        `alertpack.kafka.consumer`), and reading goes on; by default such a
        message raises.
    stop : `threading.Event`, optional
        Set it (from any thread) to end the read cleanly within
        `~alertpack.kafka.consumer.POLL_SECONDS`: the consumer is closed and a
        group's offsets of what was handed out are committed.
    selection : `~alertpack.tools.selection.Selection`, optional
        Yield only the alerts it selects; the offsets of the others are
        stored as read (a group does not read them again).

    Yields
    ------
    alert : `ConsumedAlert`

    Raises
    ------
    ConfigError
        For missing or unusable settings (no server, no topic, a property
        librdkafka refuses).
    BrokerUnavailableError
        When no broker answers.
    StreamError
        When the topic does not exist or reading fails.
    AlertDecodeError
        At a message that is not a decodable alert (it names topic, partition,
        offset), unless ``on_rejected`` is given (a message too large to
        receive is a `StreamError` then).
    """
    settings = consumer_settings(source, topic, config)
    if max_alerts is not None and max_alerts <= 0:
        return
    opened = open_consumer(
        settings, from_beginning=from_beginning,
        timeout=CONNECT_SECONDS if timeout is None else timeout, group=group, auto_commit=True,
    )
    count = 0
    with opened as consumer:

        def skipped(oversized: OversizedMessage) -> None:
            if group is not None:
                consumer.store_next(oversized.partition, oversized.offset + 1)
            assert on_rejected is not None
            on_rejected(RejectedMessage.oversized(oversized))

        handler = None if on_rejected is None else skipped
        for message in consumer.messages(timeout, stop=stop, on_oversized=handler):
            try:
                consumed = _to_consumed(message)
            except AlertDecodeError as error:
                if on_rejected is None:
                    raise
                on_rejected(RejectedMessage.of(message, str(error)))
            else:
                if selection is None or selection.matches(consumed.alert):
                    consumed.server = settings.shown_servers
                    yield consumed
                    count += 1
            if group is not None:
                consumer.store_offset(message)
            if max_alerts is not None and count >= max_alerts:
                return


def _where(message: Any) -> str:
    return message_position(message.topic(), message.partition(), message.offset())


def _to_consumed(message: Any) -> ConsumedAlert:
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
        The message value as received; emptied once it is kept in a file
        (``path``), so that rejects do not fill memory.
    path : `pathlib.Path` or `None`
        The rejected-message file it was kept in (``DIR/rejected/...``, see
        `alertpack.tools.rejected`), once written there.
    received : `bool`
        False for a message too large to receive, which was skipped and of
        which only the place is known (it stays on the topic).
    """

    topic: str
    partition: int
    offset: int
    reason: str
    value: bytes
    path: Path | None = None
    received: bool = True

    @classmethod
    def of(cls, message: Any, reason: str) -> RejectedMessage:
        """The rejected Kafka ``message``."""
        return cls(
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            reason=reason,
            value=bytes(message.value() or b""),
        )

    @classmethod
    def oversized(cls, skipped: OversizedMessage) -> RejectedMessage:
        """A message too large to receive: only where it is is known (``received`` False)."""
        return cls(
            topic=skipped.topic,
            partition=skipped.partition,
            offset=skipped.offset,
            reason=skipped.reason,
            value=b"",
            received=False,
        )

    def record(self) -> dict[str, Any]:
        """The `~alertpack.tools.rejected.REJECTED_SCHEMA` record that keeps it."""
        return {
            "topic": self.topic, "partition": self.partition, "offset": self.offset,
            "reason": self.reason, "received": self.received, "value": self.value,
        }


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
    unselected : `int`
        Alerts read that the selection left out (not written).
    """

    alerts: int = 0
    files: list[Path] = field(default_factory=list)
    rejected: list[RejectedMessage] = field(default_factory=list)
    committed: int = 0
    unselected: int = 0


def topic_file_stem(topic: str) -> str:
    """A topic name as the start of a file name: visible, portable and short.

    Characters other than ASCII letters, digits, ``-``, ``_`` and ``.`` become
    ``_``, a leading ``.`` too (no hidden files); a name longer than 80
    characters keeps its first 80 and a hash of the whole (``-h1a2b3c4d``),
    so that distinct topics stay distinct and every name fits the filesystem.
    """
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in topic)
    safe = "_" + safe[1:] if safe.startswith(".") else safe
    if len(safe) > _TOPIC_NAME_CHARS:
        digest = hashlib.sha256(topic.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        safe = f"{safe[:_TOPIC_NAME_CHARS]}-h{digest}"
    return safe or "_"


def _file_stem(topic: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{topic_file_stem(topic)}-{stamp}"


def write_alert_files(
    alerts: Iterator[ConsumedAlert],
    directory: str | os.PathLike[str],
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

    def __init__(
        self, directory: Path, topic: str, per_file: int, max_bytes: int = MAX_PENDING_BYTES
    ):
        self.directory = directory
        self.stem = _file_stem(topic)
        self.per_file = per_file
        self.max_bytes = max_bytes
        self.n_bytes = 0
        self.payloads: dict[int, list[bytes]] = {}
        # the rejects since the last write: their reasons go into one file with it
        self.rejected: list[RejectedMessage] = []
        # (topic, partition) -> next offset to commit, once the payloads are written
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.n_messages = 0
        self.started = time.monotonic()
        self.written: list[Path] = []
        self.n_rejected_files = 0

    def __len__(self) -> int:
        return sum(len(batch) for batch in self.payloads.values())

    @property
    def full(self) -> bool:
        if self.n_bytes >= self.max_bytes:
            return True
        return any(len(batch) >= self.per_file for batch in self.payloads.values())

    def age(self) -> float:
        return time.monotonic() - self.started

    def add(self, consumed: ConsumedAlert) -> None:
        self.payloads.setdefault(consumed.schema_id, []).append(consumed.payload)
        self.n_bytes += len(consumed.payload)
        self.cover(consumed.topic, consumed.partition, consumed.offset)

    def reject(self, rejected: RejectedMessage) -> None:
        """Keep a rejected message for the next write (its value counts like an alert's)."""
        self.rejected.append(rejected)
        self.n_bytes += len(rejected.value)
        self.cover(rejected.topic, rejected.partition, rejected.offset)

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
        if self.rejected:
            name = f"{self.stem}-{self.n_rejected_files:04d}.avro"
            path = write_rejected(
                self.directory / REJECTED_DIR / name, (r.record() for r in self.rejected)
            )
            for rejected in self.rejected:
                rejected.path, rejected.value = path, b""  # on disk now, not in memory
            self.n_rejected_files += 1
            self.rejected = []
        self.n_bytes = 0
        self.started = time.monotonic()
        return paths

    @property
    def n_files(self) -> int:
        return len(self.written)


def _write_batch(
    directory: Path, stem: str, schema_id: int, payloads: list[bytes], n: int
) -> Path:
    """One container file of the payloads as received (no decode and re-encode)."""
    # packets.avro (and numpy) only for writing: readers of iter_kafka_alerts never load them
    from alertpack.packets.avro import write_container

    schema = schema_for_id(schema_id)
    version = schema.version
    path = directory / f"{stem}-v{version.major}_{version.minor}-{n:04d}.avro"
    with atomic_output(path) as stream:
        write_container(stream, schema.definition, payloads)
    return path


def consume_to_directory(
    source: str | ConsumerSettings,
    topic: str | None,
    directory: str | os.PathLike[str],
    *,
    from_beginning: bool = False,
    max_alerts: int | None = None,
    timeout: float = 10.0,
    group: str | None = None,
    config: Mapping[str, Any] | None = None,
    per_file: int = ALERTS_PER_FILE,
    flush_seconds: float = FLUSH_SECONDS,
    max_pending_bytes: int = MAX_PENDING_BYTES,
    result: ConsumeResult | None = None,
    on_file: Callable[[Path], None] | None = None,
    on_rejected: Callable[[RejectedMessage], None] | None = None,
    selection: Selection | None = None,
) -> ConsumeResult:
    """Read a topic into Avro files, committing each offset only once its alert is on disk.

    Alerts are written as by `write_alert_files` whenever ``per_file`` of one
    schema version are pending or ``flush_seconds`` passed, and when reading
    ends, also by an exception such as `KeyboardInterrupt`: what was read is
    written, then the group's offsets are committed, then the exception goes on;
    SIGINT and SIGTERM wait while a write and its commit are under way.
    Delivery is at-least-once: a crash between a write and its commit makes the
    next run read those alerts again.

    A message that is not exactly one decodable alert is reported to
    ``on_rejected`` and kept, with where it was and why, in the
    rejected-message file of the next write,
    ``directory/rejected/<topic>-<UTC time>-<n>.avro``
    (`alertpack.tools.rejected`); its neighbours are read and written as
    usual, and its offset is committed with theirs. A message too large to
    receive is skipped (see `alertpack.kafka.consumer`) and kept the same way,
    without its value: its offset is committed like a reject's, so the group
    goes on. An alert that ``selection`` does not select is counted
    (``result.unselected``), not written, and its offset committed with the
    others.

    Parameters
    ----------
    source, topic, from_beginning, max_alerts, timeout, group, config, selection
        As for `iter_kafka_alerts`.
    directory : path-like
        Output directory; checked before reading, created with the first file.
    per_file : `int`
        Alerts per file at most.
    flush_seconds : `float`
        Write (and commit) pending alerts at least this often.
    max_pending_bytes : `int`
        Write (and commit) as soon as the alerts read hold this many bytes:
        memory is bounded by bytes, not only by ``per_file`` alerts.
    result : `ConsumeResult`, optional
        Filled in as the work goes on (so that a caller catching an interrupt
        knows what was done); a new one by default.
    on_file, on_rejected : callable, optional
        Called with each file written and each message rejected.

    Returns
    -------
    result : `ConsumeResult`
    """
    directory = check_output_directory(directory)
    result = result if result is not None else ConsumeResult()
    if max_alerts is not None and max_alerts <= 0:
        return result
    settings = consumer_settings(source, topic, config)
    pending = _PendingFiles(directory, settings.topic, per_file, max_pending_bytes)

    def reject(rejected: RejectedMessage) -> None:
        result.rejected.append(rejected)
        pending.reject(rejected)
        if on_rejected is not None:
            on_rejected(rejected)

    def flush(consumer: TopicConsumer) -> None:
        # a second Ctrl-C must not cut a write or its commit short
        with signals_deferred():
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

    opened = open_consumer(
        settings, from_beginning=from_beginning, timeout=timeout, group=group, auto_commit=False
    )
    with opened as consumer:
        try:
            messages = consumer.messages(
                timeout, idle_ticks=True,
                on_oversized=lambda skipped: reject(RejectedMessage.oversized(skipped)),
            )
            for message in messages:
                if message is None:
                    if pending.age() >= flush_seconds:
                        flush(consumer)
                    continue
                try:
                    consumed = _to_consumed(message)
                    if selection is None or selection.matches(consumed.alert):
                        pending.add(consumed)
                    else:
                        result.unselected += 1
                        pending.cover(consumed.topic, consumed.partition, consumed.offset)
                except AlertDecodeError as error:
                    reject(RejectedMessage.of(message, str(error)))
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


def _commit(consumer: TopicConsumer, next_offsets: Mapping[tuple[str, int], int]) -> None:
    try:
        consumer.commit(next_offsets)
    except StreamError as error:
        raise StreamError(
            f"alerts are on disk but {error}; the next run of this group reads them again"
        ) from None
