"""Deliver alerts to a Kafka topic, keep what could not be delivered, send it again.

Every message is in the Confluent wire format (magic byte 0, 4-byte big-endian
schema id, schemaless Avro alert). An `AlertProducer` queues all alerts of a
run on an idempotent confluent-kafka producer, serves delivery reports while it
queues, and flushes once at the end with a bounded timeout. Each alert then
ends in exactly one of two places: delivered (the broker acknowledged it) or a
failed-alerts Avro file with the reason, which `replay` sends again.

One `AlertProducer` (and its confluent-kafka client) serves many runs: an
`~alertpack.core.AlertPackager` creates it with itself, so that connecting
and the idempotent producer's initialisation overlap with packaging, and
closes it in ``close()`` (a finalizer does it at interpreter exit
otherwise). A client that failed fatally, or whose run lost deliveries, is
replaced before the next run.

Interrupts
----------
The end-of-run flush waits in slices of `FLUSH_SLICE_S`, so Ctrl-C
(``KeyboardInterrupt``; the command line turns SIGTERM into the same
exception) ends it at once: what is queued or in flight is purged and every
alert not acknowledged is written to the failed-alerts file before the
exception goes on. SIGKILL cannot be caught: alerts still in memory then
are not in any failed file (which is written atomically, so never partial);
the alert files on disk are complete, and re-running the visit sends them
again.

Message conventions
-------------------
key
    The alert's ``diaObjectId`` as ASCII decimal digits, so all alerts of one
    object land in one partition, in order; `None` (no key) for alerts
    without an object (e.g. solar-system sources).
timestamp
    ``OutgoingAlert.timestamp_ms`` when the caller sets it (alertpack's task
    uses the source's exposure midpoint by default, config ``kafkaTimestamp``),
    else the producer's clock when the alert is queued. A replayed alert keeps
    the timestamp it was first given.

Credentials are held in a `Secret`, which never prints its value; every text
that leaves this module (log lines, librdkafka logs, failure reasons, error
messages) is passed through the settings' redaction first.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import json
import logging
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alertpack.errors import InputError, StreamError, UnknownSchemaError
from alertpack.packets.batch import OutgoingAlert
from alertpack.schema import pack_wire, schema_for_id
from alertpack.sinks.failed import (
    FailedAlert,
    find_failed_alert_files,
    read_failed_alerts,
    write_failed_alerts,
)

__all__ = [
    "ENV_PASSWORD",
    "ENV_SERVER",
    "ENV_TOPIC",
    "ENV_USERNAME",
    "AlertProducer",
    "DeliveryResult",
    "KafkaSettings",
    "Secret",
    "client_logger",
    "register_schema",
    "replay",
]

ENV_SERVER = "AP_KAFKA_SERVER"
ENV_TOPIC = "AP_KAFKA_TOPIC"
ENV_USERNAME = "AP_KAFKA_PRODUCER_USERNAME"
ENV_PASSWORD = "AP_KAFKA_PRODUCER_PASSWORD"

_COMPRESSION_TYPES = ("none", "gzip", "snappy", "lz4", "zstd")
_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_REDACTED = "********"
_TIMING_DETAIL = re.compile(r"\s*\(after \d+ms in state \w+\)")

_log = logging.getLogger(__name__)



class Secret:
    """A credential whose value never appears in ``repr``, ``str`` or formatting.

    Parameters
    ----------
    value : `str`
        The secret text; read it back with `reveal`.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value, for handing to the Kafka client only."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_REDACTED}')"

    def __str__(self) -> str:
        return _REDACTED

    def __format__(self, spec: str) -> str:
        return _REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):
        # Pickling would write the value to disk or across processes; refuse.
        raise TypeError("a Secret cannot be pickled")

    def __deepcopy__(self, memo: dict) -> Secret:
        return self


def _env_or(value: Any, name: str) -> Any:
    """``value`` unless it is unset (None or blank), then the environment variable ``name``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        from_env = os.environ.get(name, "").strip()
        return from_env or None
    return value


@dataclass
class KafkaSettings:
    """Where and how alerts are produced.

    Attributes
    ----------
    servers : `str`
        Bootstrap server(s), ``host:port[,host:port]``.
    topic : `str`
        Topic to produce to.
    username : `str` or `None`
        SASL username; `None` means no authentication.
    password : `Secret` or `None`
        SASL password (a plain `str` is wrapped); hidden in every printout.
    security_protocol : `str` or `None`
        ``SASL_SSL`` (default when a username is set), ``SASL_PLAINTEXT``,
        ``SSL`` or ``PLAINTEXT`` (default without a username; a SASL protocol
        without a username also falls back to ``PLAINTEXT``).
    sasl_mechanism : `str`
        SASL mechanism, ``SCRAM-SHA-512`` as Rubin's brokers use.
    compression_type : `str`
        ``none``, ``gzip``, ``snappy``, ``lz4`` or ``zstd``.
    linger_ms : `float`
        How long the producer waits to fill a batch, in milliseconds.
    batch_size : `int`
        Largest batch in bytes.
    queue_buffering_max_messages : `int`
        Local queue size; a full queue makes `AlertProducer.send` wait, not fail.
    message_max_bytes : `int`
        Largest message (wire header + alert) the producer sends; a larger
        alert fails alone with a clear reason.
    flush_timeout : `float`
        Seconds the end-of-run flush may take; what is still undelivered then
        goes to the failed-alerts file.
    delivery_timeout : `float`
        Seconds librdkafka keeps retrying one message (``message.timeout.ms``).
    registry_url : `str`, `Secret` or `None`
        Confluent schema registry (``https://user:password@host:port`` for
        basic authentication; such a URL is kept as a `Secret`); when set,
        the alert schema is registered under ``{topic}-value`` and the id it
        returns goes on the wire instead of Rubin's ``major*100+minor``.
    extra : `dict`
        More librdkafka properties, applied last.
    """

    servers: str
    topic: str
    username: str | None = None
    password: Secret | None = None
    security_protocol: str | None = None
    sasl_mechanism: str = "SCRAM-SHA-512"
    compression_type: str = "lz4"
    linger_ms: float = 5.0
    batch_size: int = 1_000_000
    queue_buffering_max_messages: int = 100_000
    message_max_bytes: int = 10_000_000
    flush_timeout: float = 30.0
    delivery_timeout: float = 30.0
    registry_url: str | Secret | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.password, str):
            self.password = Secret(self.password) if self.password else None
        if isinstance(self.registry_url, str) and urllib.parse.urlsplit(self.registry_url).password:
            self.registry_url = Secret(self.registry_url)
        # other secrets librdkafka may get (ssl.key.password, oauth secrets, ...)
        self.extra = {
            key: Secret(value) if _looks_secret(key) and isinstance(value, str) else value
            for key, value in self.extra.items()
        }
        self._validate()

    def _validate(self) -> None:
        if not self.servers or not str(self.servers).strip():
            raise InputError(
                f"no Kafka server given: set config kafkaServer (-c kafkaServer=... on the "
                f"command line, --server for replay) or ${ENV_SERVER} to host:port[,host:port]"
            )
        if not self.topic or not str(self.topic).strip():
            raise InputError(
                f"no Kafka topic given: set config kafkaTopic (-c kafkaTopic=..., --topic for "
                f"replay) or ${ENV_TOPIC}"
            )
        if self.compression_type not in _COMPRESSION_TYPES:
            raise InputError(
                f"Kafka compression {self.compression_type!r} is not one of "
                f"{', '.join(_COMPRESSION_TYPES)}"
            )
        if self.security_protocol is not None and self.security_protocol not in (
            _SECURITY_PROTOCOLS
        ):
            raise InputError(
                f"Kafka security protocol {self.security_protocol!r} is not one of "
                f"{', '.join(_SECURITY_PROTOCOLS)}"
            )
        if self.username and self.password is None:
            raise InputError(
                f"Kafka username {self.username!r} is set but no password: set "
                f"${ENV_PASSWORD} (preferred) or config kafkaPassword"
            )
        for name in ("linger_ms", "flush_timeout", "delivery_timeout"):
            if not float(getattr(self, name)) >= 0:
                raise InputError(f"Kafka setting {name}={getattr(self, name)!r} must be >= 0")
        for name in ("batch_size", "queue_buffering_max_messages", "message_max_bytes"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"Kafka setting {name}={getattr(self, name)!r} must be >= 1")

    @classmethod
    def resolve(cls, **config_values: Any) -> KafkaSettings:
        """Settings from explicit values, falling back to Rubin's environment variables.

        Parameters
        ----------
        **config_values
            Any `KafkaSettings` field. `None` or a blank string counts as
            unset: ``servers``, ``topic``, ``username`` and ``password`` then
            come from ``AP_KAFKA_SERVER``, ``AP_KAFKA_TOPIC``,
            ``AP_KAFKA_PRODUCER_USERNAME`` and ``AP_KAFKA_PRODUCER_PASSWORD``;
            other fields keep their defaults.

        Raises
        ------
        InputError
            For an unknown name, a missing server or topic, or a bad value.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config_values) - known)
        if unknown:
            raise InputError(
                f"unknown Kafka setting(s) {unknown}; known: {', '.join(sorted(known))}"
            )
        values = {
            name: value
            for name, value in config_values.items()
            if not (value is None or (isinstance(value, str) and not value.strip()))
        }
        values["servers"] = _env_or(values.get("servers"), ENV_SERVER)
        values["topic"] = _env_or(values.get("topic"), ENV_TOPIC)
        values["username"] = _env_or(values.get("username"), ENV_USERNAME)
        password = values.get("password")
        if isinstance(password, Secret):
            password = password.reveal()
        values["password"] = _env_or(password, ENV_PASSWORD)
        return cls(**values)

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> KafkaSettings:
        """Settings from a `~alertpack.config.PackageAlertsConfig` (``kafka*`` fields).

        Parameters
        ----------
        config : `~alertpack.config.PackageAlertsConfig`
            Its ``kafkaServer``, ``kafkaTopic``, ``kafkaUsername``,
            ``kafkaPassword``, ``kafkaSecurityProtocol``, ``kafkaSaslMechanism``,
            ``kafkaCompression``, ``kafkaLingerMs``, ``kafkaBatchSize``,
            ``kafkaQueueMaxMessages``, ``kafkaMessageMaxBytes``,
            ``kafkaFlushTimeout`` and ``schemaRegistryUrl`` are used when present.
        **overrides
            `KafkaSettings` fields that win over the config.
        """
        names = {
            "servers": "kafkaServer",
            "topic": "kafkaTopic",
            "username": "kafkaUsername",
            "password": "kafkaPassword",
            "security_protocol": "kafkaSecurityProtocol",
            "sasl_mechanism": "kafkaSaslMechanism",
            "compression_type": "kafkaCompression",
            "linger_ms": "kafkaLingerMs",
            "batch_size": "kafkaBatchSize",
            "queue_buffering_max_messages": "kafkaQueueMaxMessages",
            "message_max_bytes": "kafkaMessageMaxBytes",
            "flush_timeout": "kafkaFlushTimeout",
            "delivery_timeout": "kafkaDeliveryTimeout",
            "registry_url": "schemaRegistryUrl",
        }
        values = {
            ours: getattr(config, theirs)
            for ours, theirs in names.items()
            if hasattr(config, theirs)
        }
        values.update(overrides)
        return cls.resolve(**values)

    @property
    def effective_security_protocol(self) -> str:
        """The protocol actually used: SASL needs a username, else PLAINTEXT."""
        if self.username:
            return self.security_protocol or "SASL_SSL"
        if self.security_protocol in (None, "SASL_SSL", "SASL_PLAINTEXT"):
            return "PLAINTEXT"
        return self.security_protocol

    def client_config(self) -> dict[str, Any]:
        """librdkafka properties of an idempotent producer with these settings.

        The result holds the password in clear: hand it to the Kafka client
        only, never log or store it.
        """
        config: dict[str, Any] = {
            "bootstrap.servers": self.servers,
            "client.id": "alertpack",
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": self.compression_type,
            "linger.ms": float(self.linger_ms),
            "batch.size": int(self.batch_size),
            "queue.buffering.max.messages": int(self.queue_buffering_max_messages),
            "message.max.bytes": int(self.message_max_bytes),
            "message.timeout.ms": max(1, round(self.delivery_timeout * 1000)),
            "security.protocol": self.effective_security_protocol,
        }
        if self.effective_security_protocol.startswith("SASL"):
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.username
            config["sasl.password"] = self.password.reveal()
        config.update(
            {k: v.reveal() if isinstance(v, Secret) else v for k, v in self.extra.items()}
        )
        return config

    def redact(self, text: str) -> str:
        """``text`` with the password (and any URL user-info) masked."""
        text = str(text)
        if self.password is not None and self.password.reveal():
            text = text.replace(self.password.reveal(), _REDACTED)
        secrets = [v.reveal() for v in self.extra.values() if isinstance(v, Secret)]
        if isinstance(self.registry_url, Secret):
            secrets.append(urllib.parse.urlsplit(self.registry_url.reveal()).password)
        for secret in secrets:
            if secret:
                text = text.replace(secret, _REDACTED)
        return text

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "registry_url" and isinstance(value, Secret):
                value = _strip_userinfo(value.reveal())  # host without user:password
            shown.append(f"{f.name}={value!r}")
        return f"KafkaSettings({', '.join(shown)})"

    __str__ = __repr__


def _looks_secret(property_name: str) -> bool:
    name = property_name.lower()
    return any(word in name for word in ("password", "secret", "token", "key.pem", "jaas"))


def _strip_userinfo(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


@dataclass
class DeliveryResult:
    """What happened to the alerts of one run.

    Attributes
    ----------
    delivered : `int`
        Alerts the broker acknowledged.
    failed : `int`
        Alerts not delivered (each is in a failed-alerts file when writing
        them is on).
    failed_paths : `list` [`pathlib.Path`]
        Failed-alerts files that hold the failures (written or kept).
    reasons : `collections.Counter` [`str`]
        Failure reason -> number of alerts.
    latencies : `numpy.ndarray`
        Seconds from queueing to acknowledgement, per delivered alert.
    elapsed : `float`
        Wall-clock seconds of the run.
    failed_alerts : `list` [`FailedAlert`]
        The failures themselves.
    """

    delivered: int = 0
    failed: int = 0
    failed_paths: list[Path] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    latencies: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    elapsed: float = 0.0
    failed_alerts: list[FailedAlert] = field(default_factory=list, repr=False)

    @property
    def failed_path(self) -> Path | None:
        """The failed-alerts file of the run, if one was written (the first of several)."""
        return self.failed_paths[0] if self.failed_paths else None

    @property
    def total(self) -> int:
        """Alerts handled: delivered + failed."""
        return self.delivered + self.failed

    def latency_percentile(self, percent: float) -> float:
        """A percentile of the delivery latency in seconds (NaN when nothing was delivered)."""
        if self.latencies.size == 0:
            return float("nan")
        return float(np.percentile(self.latencies, percent))

    def merged(self, other: DeliveryResult) -> DeliveryResult:
        """This result and ``other`` added up."""
        return DeliveryResult(
            delivered=self.delivered + other.delivered,
            failed=self.failed + other.failed,
            failed_paths=[*self.failed_paths, *other.failed_paths],
            reasons=self.reasons + other.reasons,
            latencies=np.concatenate([self.latencies, other.latencies]),
            elapsed=self.elapsed + other.elapsed,
            failed_alerts=[*self.failed_alerts, *other.failed_alerts],
        )

    def summary(self) -> str:
        """One line: counts, reasons and files."""
        text = f"delivered {self.delivered}, failed {self.failed}"
        if self.reasons:
            text += " (" + "; ".join(f"{n} x {r}" for r, n in self.reasons.most_common()) + ")"
        if self.failed_paths:
            text += "; failed alerts in " + ", ".join(map(str, self.failed_paths))
        return text


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# Settings of the producers alive now: librdkafka log lines are masked with all of them.
_live_settings: weakref.WeakValueDictionary[int, KafkaSettings] = weakref.WeakValueDictionary()


class _RedactingFilter(logging.Filter):
    """Masks secrets in librdkafka's log records and demotes them to DEBUG.

    librdkafka repeats a connection failure at every retry; each distinct
    client error is already reported once as a warning by the producer.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        text = record.getMessage()
        for settings in list(_live_settings.values()):
            text = settings.redact(text)
        record.msg = text
        record.args = ()
        return True


client_logger = logging.getLogger(f"{__name__}.librdkafka")
client_logger.addFilter(_RedactingFilter())


#: The end-of-run flush waits in slices this long (s), so that an interrupt is served promptly.
FLUSH_SLICE_S = 0.1


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block, then deliver the first one that came.

    Only the main thread receives signals in Python; elsewhere this does nothing.
    """
    names = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in names}
    if any(handler is None for handler in previous.values()):
        yield  # a handler installed outside Python cannot be put back
        return
    arrived: list[int] = []
    for signum in names:
        signal.signal(signum, lambda number, frame: arrived.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if arrived:
            signal.raise_signal(arrived[0])


def _stop_description(error: BaseException) -> str:
    """How an exception that ended a run is named in failure reasons."""
    signum = getattr(error, "signum", None)
    if signum is not None:
        return f"the run was interrupted by {signal.Signals(signum).name}"
    if isinstance(error, KeyboardInterrupt):
        return "the run was interrupted by SIGINT"
    return f"the run stopped on {type(error).__name__}: {error}"


class _Run:
    """Book-keeping of one `AlertProducer.send`: what is in flight and how each alert ended.

    Each message's delivery callback is bound to the run that queued it, so a
    run's result holds only its own alerts, on a producer that lives for many runs.
    """

    def __init__(self, redact, flush_timeout: float) -> None:
        self.redact = redact
        self.flush_timeout = flush_timeout
        self.pending: dict[int, tuple[OutgoingAlert, str]] = {}
        self.next_token = 0
        self.delivered = 0
        self.latencies: list[float] = []
        self.failures: list[FailedAlert] = []
        #: alerts the client took but did not deliver (not those refused by produce())
        self.undelivered = 0
        self.last_client_error: str | None = None
        #: why the run stopped early (an interrupt, an exception), None after a normal flush
        self.stopped_by: str | None = None

    def add(self, alert: OutgoingAlert, topic: str) -> int:
        token = self.next_token
        self.next_token += 1
        self.pending[token] = (alert, topic)
        return token

    def on_delivery(self, token: int, error, message) -> None:
        entry = self.pending.pop(token, None)
        if entry is None:
            return  # settled (failed) already when the run ended; a late report changes nothing
        alert, topic = entry
        if error is None:
            self.delivered += 1
            latency = message.latency()
            if latency is not None:
                self.latencies.append(latency)
        else:
            self.undelivered += 1
            self.fail(alert, topic, self.reason_for(error))

    def fail(self, alert: OutgoingAlert, topic: str, reason: str) -> None:
        self.failures.append(FailedAlert(alert, topic, self.redact(reason), _now_ms()))

    def fail_pending(self) -> None:
        """Fail every alert without a delivery report (none is left unaccounted for)."""
        if self.stopped_by:
            reason = f"no delivery report: {self.stopped_by}"
        else:
            reason = f"no delivery report within the {self.flush_timeout:g} s flush timeout"
        self.undelivered += len(self.pending)
        for alert, topic in self.pending.values():
            self.fail(alert, topic, reason)
        self.pending.clear()

    def reason_for(self, error) -> str:
        from confluent_kafka import KafkaError

        code = error.code()
        when = f"before {self.stopped_by}" if self.stopped_by else "before the flush timeout"
        if code == KafkaError._PURGE_QUEUE:
            return f"not sent {when} (purged from the local queue)"
        if code == KafkaError._PURGE_INFLIGHT:
            return (
                f"no acknowledgement {when} (in flight; the broker may "
                "have stored it, a replay can duplicate it)"
            )
        reason = f"{error.name()}: {error.str()}"
        if code == KafkaError._MSG_TIMED_OUT and self.last_client_error:
            reason += f" (client error: {self.last_client_error})"
        return reason

    def result(self, elapsed: float) -> DeliveryResult:
        return DeliveryResult(
            delivered=self.delivered,
            failed=len(self.failures),
            reasons=Counter(failure.reason for failure in self.failures),
            latencies=np.asarray(self.latencies, dtype=float),
            elapsed=elapsed,
            failed_alerts=self.failures,
        )


class _Client:
    """The confluent-kafka producer of an `AlertProducer`, and what its callbacks learn.

    Kept apart from the `AlertProducer` so that the producer's error callback
    does not keep the `AlertProducer` alive, and so that its finalizer can
    close the client without it.
    """

    def __init__(self, settings: KafkaSettings, log: Any) -> None:
        self.settings = settings
        self.log = log
        self.owner_pid = os.getpid()
        self.run: _Run | None = None
        self.last_error: str | None = None
        #: the reason of a fatal librdkafka error; the client is then unusable
        self.fatal: str | None = None
        #: why the client should not be trusted with another run (set after failed deliveries)
        self.stale: str | None = None
        self.producer = self._make_producer()

    def _make_producer(self):
        from confluent_kafka import KafkaException, Producer

        self.KafkaException = KafkaException  # imported once, caught on every message
        config = self.settings.client_config()
        config["error_cb"] = self.on_error
        config["logger"] = client_logger
        try:
            # librdkafka connects and initialises the idempotent producer in its own
            # threads from here on: that overlaps with whatever the caller does next.
            return Producer(config)
        except (KafkaException, ValueError, TypeError) as error:
            raise InputError(
                f"cannot create a Kafka producer with these settings: "
                f"{self.settings.redact(_error_text(error))}"
            ) from None

    def on_error(self, error) -> None:
        # Timing details ("after 3ms in state CONNECT") would make every reason unique.
        text = _TIMING_DETAIL.sub("", self.settings.redact(f"{error.name()}: {error.str()}"))
        if error.fatal():
            self.fatal = text
            self.log.warning("Kafka producer failed fatally: %s", text)
        elif text != self.last_error:
            self.log.warning("Kafka client error: %s", text)
        self.last_error = text
        if self.run is not None:
            self.run.last_client_error = text

    def serve(self, wait: float = 0.0, *, flush: bool = False) -> None:
        """Serve delivery reports: poll, or flush for at most ``wait`` s.

        A fatal error, which confluent-kafka raises from here, marks the
        client unusable instead of propagating.
        """
        try:
            if flush:
                self.producer.flush(wait)
            else:
                self.producer.poll(wait)
        except self.KafkaException as error:
            if not self.note_fatal(error):
                raise

    def note_fatal(self, exception: BaseException) -> bool:
        """Whether ``exception`` carries a fatal error; if so the client is marked unusable."""
        inner = exception.args[0] if exception.args else None
        if not (hasattr(inner, "fatal") and inner.fatal()):
            return False
        if self.fatal is None:
            self.fatal = self.settings.redact(_error_text(exception))
            self.log.warning("Kafka producer failed fatally: %s", self.fatal)
        return True

    def renew_if_needed(self) -> None:
        """Replace a producer that failed fatally, or whose last run lost deliveries, by a new one.

        After failed deliveries an idempotent producer can be stuck: e.g. a
        broker restarted without its state answers UNKNOWN_PRODUCER_ID to
        every epoch librdkafka bumps to on its own. A new producer asks for
        a new producer id; it costs one initialisation, on the failure path only.
        """
        if self.fatal is not None:
            self.log.warning("Kafka producer failed fatally (%s); using a new one", self.fatal)
        elif self.stale is not None:
            self.log.info("Kafka producer replaced: %s", self.stale)
        else:
            return
        old, self.producer = self.producer, None
        _discard(old)
        self.fatal = self.stale = None
        self.producer = self._make_producer()


def _discard(producer) -> None:
    """Drop whatever ``producer`` still holds and release it (also after a fatal error)."""
    from confluent_kafka import KafkaException

    with contextlib.suppress(KafkaException):
        producer.purge(in_queue=True, in_flight=True)
    with contextlib.suppress(KafkaException):
        producer.poll(0)
    producer.close()


def _close_client(client: _Client, flush_timeout: float) -> None:
    """Flush (bounded) what the client still holds and release it; at most once.

    Also the finalizer of an `AlertProducer` (at garbage collection or at
    interpreter exit). A forked child's copy of the client belongs to its
    parent: it is left alone.
    """
    producer, client.producer = client.producer, None
    if producer is None or client.owner_pid != os.getpid():
        return
    try:
        if client.fatal is None and len(producer):
            producer.flush(flush_timeout)
    finally:
        _discard(producer)


class AlertProducer:
    """Sends alerts to Kafka; what is not delivered goes to a failed-alerts file.

    Parameters
    ----------
    settings : `KafkaSettings`
        Server, topic, credentials and producer tuning.
    failed_dir : path-like or `None`
        Directory for failed-alerts files (``failed-<UTC time>-<pid>.avro``).
    write_failed : `bool`
        Write undelivered alerts to ``failed_dir`` (config ``doWriteFailedAlerts``).
        When False they are only counted and logged.
    log : `logging.Logger`-like or `None`
        Where to report; librdkafka's own log lines go to the
        ``alertpack.sinks.kafka.librdkafka`` logger, credentials masked.

    Notes
    -----
    One producer is meant to `send` many runs: the confluent-kafka client is
    created here (connecting and initialising the idempotent producer start
    in the background, overlapping with the caller's work) and reused by
    every run. Each run ends flushed: its `DeliveryResult` and its
    failed-alerts file hold its own alerts only. A client that failed
    fatally (a librdkafka fatal error), or whose last run did not deliver
    everything, is replaced before the next run. Threads sharing one
    producer take turns, one run at a time.

    Use as a context manager, or call `close`; a finalizer closes the
    client at garbage collection or interpreter exit otherwise.

    An interrupt (``KeyboardInterrupt``, or any exception) during a run
    ends it at once: what is queued or in flight is purged and, with every
    alert not acknowledged, written to the failed-alerts file before the
    exception propagates; `last_result` then holds the run's result.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        failed_dir: str | os.PathLike | None,
        write_failed: bool = True,
        log: Any = None,
    ) -> None:
        if write_failed and failed_dir is None:
            raise InputError(
                "write_failed is on but no failed_dir is given: set failedAlertsLocation "
                "(or pass failed_dir) or turn doWriteFailedAlerts off"
            )
        self.settings = settings
        self.failed_dir = None if failed_dir is None else Path(failed_dir)
        self.write_failed = write_failed
        self.log = log if log is not None else _log
        #: the result of the latest `send`, also when it was interrupted
        self.last_result: DeliveryResult | None = None
        self._registry_ids: dict[tuple[str, int], int] = {}
        # threads sharing one producer (e.g. a Dask worker's) take turns: a run's
        # book-keeping and a client replacement are never interleaved with another's
        self._one_run_at_a_time = threading.Lock()
        _live_settings[id(settings)] = settings
        self._client = _Client(settings, self.log)
        self._finalizer = weakref.finalize(
            self, _close_client, self._client, float(settings.flush_timeout)
        )

    def __enter__(self) -> AlertProducer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return not self._finalizer.alive

    def close(self) -> None:
        """Flush what the client still holds (nothing after a `send` returned) and release it."""
        self._finalizer()

    def send(self, alerts: Iterable[OutgoingAlert], *, topic: str | None = None) -> DeliveryResult:
        """Send a run of alerts and wait (bounded) until each is delivered or failed.

        Parameters
        ----------
        alerts : iterable of `OutgoingAlert`
            The run; consumed lazily, so a generator never holds all payloads.
        topic : `str`, optional
            Topic for this run instead of ``settings.topic``.

        Returns
        -------
        result : `DeliveryResult`
            ``delivered + failed`` is the number of alerts taken from ``alerts``,
            also when this method is interrupted: then the failed-alerts file
            is written (and `last_result` set) before the exception propagates.
        """
        with self._one_run_at_a_time:
            return self._send(alerts, topic)

    def _send(self, alerts: Iterable[OutgoingAlert], topic: str | None) -> DeliveryResult:
        if self.closed:
            raise StreamError("this AlertProducer is closed; create a new one")
        self._client.renew_if_needed()
        topic = topic or self.settings.topic
        run = self._client.run = _Run(self.settings.redact, float(self.settings.flush_timeout))
        started = time.perf_counter()
        try:
            for alert in alerts:
                self._enqueue(run, alert, topic)
            self._flush(run)
        except BaseException as error:
            run.stopped_by = _stop_description(error)
            raise
        finally:
            # a second Ctrl-C must not stop the failed-alerts file half-way
            with _signals_deferred():
                try:
                    self._settle(run)
                finally:
                    run.fail_pending()  # what settling could not account for, if it failed
                    self._client.run = None
                    if run.undelivered:
                        self._client.stale = f"{run.undelivered} alert(s) of its last run failed"
                    result = self.last_result = run.result(time.perf_counter() - started)
                    self._record_failures(result, topic)
        return result

    def _enqueue(self, run: _Run, alert: OutgoingAlert, topic: str) -> None:
        client = self._client
        try:
            wire_id = self._wire_schema_id(topic, alert.schema_id)
        except StreamError as error:
            run.fail(alert, topic, str(error))
            return
        value = pack_wire(wire_id, alert.payload)
        key = None if alert.key is None else b"%d" % alert.key
        token = run.add(alert, topic)
        on_delivery = functools.partial(run.on_delivery, token)
        timestamp = 0 if alert.timestamp_ms is None else int(alert.timestamp_ms)
        producer = client.producer
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery, timestamp=timestamp)
                break
            except BufferError:
                # local queue full: let librdkafka drain it, then retry (backpressure)
                client.serve(0.05)
            except client.KafkaException as error:
                reason = self._produce_error_reason(error, value)
                if client.note_fatal(error):
                    reason += f" (the producer failed fatally: {client.fatal})"
                run.pending.pop(token)
                run.fail(alert, topic, reason)
                break
        try:
            producer.poll(0)  # serve delivery reports as they come
        except client.KafkaException as error:
            if not client.note_fatal(error):
                raise

    def _produce_error_reason(self, exception, value: bytes) -> str:
        from confluent_kafka import KafkaError

        error = exception.args[0] if exception.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            return (
                f"MSG_SIZE_TOO_LARGE: message of {len(value)} bytes exceeds the producer limit "
                f"message_max_bytes={self.settings.message_max_bytes} (config "
                "kafkaMessageMaxBytes; the broker and topic limits must allow it too)"
            )
        return _error_text(exception)

    def _flush(self, run: _Run) -> None:
        """Wait until every alert of the run is reported, at most ``flush_timeout`` seconds.

        The wait is cut in short slices so that an interrupt (raised between
        slices) ends it promptly.
        """
        deadline = time.monotonic() + run.flush_timeout
        while run.pending and self._client.fatal is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._client.serve(min(remaining, FLUSH_SLICE_S), flush=True)

    def _settle(self, run: _Run) -> None:
        """Purge what is still queued or in flight; every alert of the run then has an outcome."""
        from confluent_kafka import KafkaException

        if run.pending:
            try:
                self._client.producer.purge(in_queue=True, in_flight=True)
            except KafkaException as error:
                if not self._client.note_fatal(error):
                    raise
            self._client.serve()  # the reports of the purged messages arrive here
        run.fail_pending()

    def _record_failures(self, result: DeliveryResult, topic: str) -> None:
        if result.failed and self.write_failed:
            path = write_failed_alerts(result.failed_alerts, self.failed_dir)
            result.failed_paths.append(path)
        level = logging.WARNING if result.failed else logging.INFO
        self.log.log(level, "Kafka %s: %s", topic, result.summary())

    def _wire_schema_id(self, topic: str, schema_id: int) -> int:
        if not self.settings.registry_url:
            return schema_id
        cache_key = (topic, schema_id)
        if cache_key not in self._registry_ids:
            try:
                definition = schema_for_id(schema_id).definition
            except UnknownSchemaError as error:
                raise StreamError(str(error)) from None
            self._registry_ids[cache_key] = register_schema(
                self.settings.registry_url, f"{topic}-value", definition
            )
        return self._registry_ids[cache_key]


def _error_text(error: BaseException) -> str:
    inner = error.args[0] if error.args else error
    if hasattr(inner, "str") and hasattr(inner, "name"):
        return f"{inner.name()}: {inner.str()}"
    return str(inner)


def register_schema(
    registry_url: str | Secret,
    subject: str,
    definition: Mapping[str, Any],
    *,
    timeout: float = 10.0,
) -> int:
    """Register an Avro schema with a Confluent schema registry and return its id.

    Registering a schema the subject already has returns the existing id.
    User-info in the URL (``https://user:password@host``) is sent as HTTP
    basic authentication and never shown.

    Raises
    ------
    StreamError
        When the registry cannot be reached or refuses the schema.
    """
    if isinstance(registry_url, Secret):
        registry_url = registry_url.reveal()
    parts = urllib.parse.urlsplit(registry_url)
    base = _strip_userinfo(registry_url).rstrip("/")
    url = f"{base}/subjects/{urllib.parse.quote(subject, safe='')}/versions"
    headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
    if parts.username is not None:
        user_password = f"{urllib.parse.unquote(parts.username)}:"
        user_password += urllib.parse.unquote(parts.password or "")
        headers["Authorization"] = "Basic " + base64.b64encode(user_password.encode()).decode()
    body = json.dumps({"schema": json.dumps(definition)}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    shown = url
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read()[:300].decode(errors="replace")
        raise StreamError(
            f"schema registry refused subject {subject!r} at {shown}: HTTP {error.code} {detail}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise StreamError(f"schema registry at {shown} cannot be used: {error}") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
        raise StreamError(f"schema registry at {shown} answered without an id: {answer!r}")
    return answer["id"]


def _group_by_topic(failures: list[FailedAlert]) -> Iterator[tuple[str, list[FailedAlert]]]:
    topics: dict[str, list[FailedAlert]] = {}
    for failure in failures:
        topics.setdefault(failure.topic, []).append(failure)
    yield from topics.items()


def replay(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    settings: KafkaSettings | Mapping[str, Any] | None = None,
    *,
    log: Any = None,
) -> DeliveryResult:
    """Send the alerts of failed-alerts files again.

    Each file is rewritten (atomically) with only the alerts that failed
    again, with their new reason, or deleted when all went through.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        Failed-alerts files, or directories whose ``failed-*.avro`` are taken.
    settings : `KafkaSettings`, mapping or `None`
        A `KafkaSettings` sends everything to its topic. A mapping holds
        `KafkaSettings.resolve` values (e.g. ``{"servers": ..., "flush_timeout": 10}``);
        without a ``topic`` in it, each alert goes back to the topic it was meant for.

    Returns
    -------
    result : `DeliveryResult`
        Counts over all files; ``failed_paths`` are the files kept.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = find_failed_alert_files(paths)
    contents = [(path, read_failed_alerts(path)) for path in files]
    total = DeliveryResult()
    everything = [failure for _, failures in contents for failure in failures]
    if not everything:
        for path, _ in contents:
            path.unlink()
        return total
    fixed_topic = isinstance(settings, KafkaSettings) or bool(settings and settings.get("topic"))
    if not isinstance(settings, KafkaSettings):
        overrides = dict(settings or {})
        overrides.setdefault("topic", None)
        overrides["topic"] = overrides["topic"] or everything[0].topic
        settings = KafkaSettings.resolve(**overrides)
    with AlertProducer(settings, failed_dir=None, write_failed=False, log=log) as producer:
        for path, failures in contents:
            still_failed: list[FailedAlert] = []
            for topic, group in _group_by_topic(failures):
                target = settings.topic if fixed_topic else topic
                result = producer.send((failure.alert for failure in group), topic=target)
                still_failed.extend(result.failed_alerts)
                total = total.merged(result)
            if still_failed:
                write_failed_alerts(still_failed, path.parent, path=path)
                total.failed_paths.append(path)
            else:
                path.unlink()
    return total
