"""Deliver alerts to a Kafka topic; what is not delivered goes to a failed-alerts file.

Every message is in the Confluent wire format (magic byte 0, 4-byte big-endian
schema id, schemaless Avro alert). An `AlertProducer` queues all alerts of a
run on an idempotent confluent-kafka producer, serves delivery reports while it
queues, and flushes once at the end with a bounded timeout. Each alert then
ends in exactly one of two places: delivered (the broker acknowledged it) or a
failed-alerts Avro file with the reason, which `alertpack.kafka.replay` sends
again.

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
exception goes on, with SIGINT and SIGTERM held back meanwhile
(`alertpack.kafka.signals`). SIGKILL cannot be caught: alerts still in memory
then are not in any failed file (which is written atomically, so never
partial); the alert files on disk are complete, and re-running the visit
sends them again.

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
header ``producer_timestamp``
    On every message, as today's Rubin pipeline sends it: the producer's clock
    when the alert is queued, milliseconds since the Unix epoch, as the UTF-8
    text of a float (``str(time.time() * 1000)``); a replayed alert gets the
    time it is sent again.

Connection check
----------------
`AlertProducer.check_connection` asks the broker for its topics, bounded
by a timeout (config ``maxTimeout``), before anything is produced: the
packager calls it when it creates its producer, as upstream's Task does in
its constructor. It fails with one line that says what went wrong: no
answer (naming the security protocol in use, since a TLS client facing a
plaintext listener hears nothing back), a refused SASL handshake or
credentials, or a topic the broker does not have.

Every text that leaves this module (log lines, librdkafka's, failure
reasons, error messages) is masked with the settings' redaction first
(`alertpack.kafka.settings`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from alertpack.errors import ConfigError, StreamError, UnknownSchemaError
from alertpack.kafka.registry import register_schema
from alertpack.kafka.settings import (
    KafkaSettings,
    client_log,
    connection_failure,
    error_text,
    new_client,
)
from alertpack.kafka.signals import signals_deferred, stop_description
from alertpack.packets.batch import OutgoingAlert
from alertpack.schema import pack_wire, schema_for_id
from alertpack.sinks.failed import FailedAlert, write_failed_alerts

# confluent_kafka (~0.06 s) loads with the first client, not with alertpack.kafka, which
# the CLI and the read side import for settings and types (test_kafka_settings checks it)
if TYPE_CHECKING:
    from confluent_kafka import KafkaError, KafkaException, Message, Producer

__all__ = ["FLUSH_SLICE_S", "PRODUCER_TIMESTAMP_HEADER", "AlertProducer", "DeliveryResult"]

#: The end-of-run flush waits in slices this long (s), so that an interrupt is served promptly.
FLUSH_SLICE_S = 0.1

#: the header every message carries: when it was queued, ms since the epoch (float text)
PRODUCER_TIMESTAMP_HEADER = "producer_timestamp"

#: the connection check asks for metadata in slices this long (s), reading errors between
_CHECK_SLICE_S = 0.25

_TIMING_DETAIL = re.compile(r"\s*\(after \d+ms in state \w+\)")

_log = logging.getLogger(__name__)


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
    latencies: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0), repr=False)
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


class _Run:
    """Book-keeping of one `AlertProducer.send`: what is in flight and how each alert ended.

    Each message's delivery callback is bound to the run that queued it, so a
    run's result holds only its own alerts, on a producer that lives for many runs.
    """

    def __init__(self, redact: Callable[[str], str], flush_timeout: float) -> None:
        self._redact = redact
        # failures share a few reasons: each is masked once, not once per alert
        self._redacted: dict[str, str] = {}
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

    def on_delivery(self, token: int, error: KafkaError | None, message: Message) -> None:
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
        shown = self._redacted.get(reason)
        if shown is None:
            shown = self._redacted[reason] = self._redact(reason)
        self.failures.append(FailedAlert(alert, topic, shown, _now_ms()))

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

    def reason_for(self, error: KafkaError) -> str:
        # confluent_kafka: with the first client, not at import (see the imports)
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

    def __init__(
        self, settings: KafkaSettings, log: logging.Logger | logging.LoggerAdapter[Any]
    ) -> None:
        self.settings = settings
        self.log = log
        self.owner_pid = os.getpid()
        self.run: _Run | None = None
        self.last_error: str | None = None
        #: the reason of a fatal librdkafka error; the client is then unusable
        self.fatal: str | None = None
        #: why the client should not be trusted with another run (set after failed deliveries)
        self.stale: str | None = None
        #: the producer's registration with `client_log` (its secrets are masked meanwhile)
        self.log_token: int | None = None
        #: ``(code name, text)`` of the client errors reported so far (the connection check's)
        self.errors_seen: list[tuple[str, str]] = []
        #: during the connection check: errors are recorded, not logged (its message has them)
        self.quiet = False
        #: the confluent-kafka producer; `None` once released
        self.producer: Producer | None = self._make_producer()

    def live_producer(self) -> Producer:
        """The producer, which a run needs (`StreamError` once it is released)."""
        if self.producer is None:
            raise StreamError("the Kafka producer is closed; create a new AlertProducer")
        return self.producer

    def _make_producer(self) -> Producer:
        # confluent_kafka: with the first client, not at import (see the imports)
        from confluent_kafka import KafkaException, Producer

        #: caught on every message: imported once, here
        self.KafkaException: type[KafkaException] = KafkaException
        config = self.settings.client_config()
        config["error_cb"] = self.on_error
        # librdkafka connects and initialises the idempotent producer in its own
        # threads from here on: that overlaps with whatever the caller does next.
        producer, self.log_token = new_client(Producer, self.settings, config, kind="producer")
        return producer

    def release(self, producer: Producer) -> None:
        """Drop whatever ``producer`` still holds, close it and forget its secrets."""
        with contextlib.suppress(self.KafkaException):
            producer.purge(in_queue=True, in_flight=True)
        with contextlib.suppress(self.KafkaException):
            producer.poll(0)
        producer.close()
        if self.log_token is not None:
            client_log.forget(self.log_token)
            self.log_token = None

    def on_error(self, error: KafkaError) -> None:
        # Timing details ("after 3ms in state CONNECT") would make every reason unique.
        text = _TIMING_DETAIL.sub("", self.settings.redact(f"{error.name()}: {error.str()}"))
        if len(self.errors_seen) < 100:
            self.errors_seen.append((error.name(), text))
        if error.fatal():
            self.fatal = text
            self.log.warning("Kafka producer failed fatally: %s", text)
        elif text != self.last_error and not self.quiet:
            self.log.warning("Kafka client error: %s", text)
        self.last_error = text
        if self.run is not None:
            self.run.last_client_error = text

    def serve(self, wait: float = 0.0, *, flush: bool = False) -> None:
        """Serve delivery reports: poll, or flush for at most ``wait`` s.

        A fatal error, which confluent-kafka raises from here, marks the
        client unusable instead of propagating.
        """
        producer = self.live_producer()
        try:
            if flush:
                producer.flush(wait)
            else:
                producer.poll(wait)
        except self.KafkaException as error:
            if not self.note_fatal(error):
                raise

    def note_fatal(self, exception: BaseException) -> bool:
        """Whether ``exception`` carries a fatal error; if so the client is marked unusable."""
        inner: Any = exception.args[0] if exception.args else None
        if not (hasattr(inner, "fatal") and inner.fatal()):
            return False
        if self.fatal is None:
            self.fatal = self.settings.redact(error_text(exception))
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
        if old is not None:
            self.release(old)
        self.fatal = self.stale = None
        self.producer = self._make_producer()


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
        client.release(producer)


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
        ``alertpack.kafka.librdkafka`` logger, credentials masked.

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
        failed_dir: str | os.PathLike[str] | None,
        write_failed: bool = True,
        log: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        if write_failed and failed_dir is None:
            raise ConfigError(
                "write_failed is on but no failed_dir is given: set failedAlertsLocation "
                "(or pass failed_dir) or turn doWriteFailedAlerts off"
            )
        self.settings = settings
        self.failed_dir = None if failed_dir is None else Path(failed_dir)
        self.write_failed = write_failed
        self.log: logging.Logger | logging.LoggerAdapter[Any] = log if log is not None else _log
        #: the result of the latest `send`, also when it was interrupted
        self.last_result: DeliveryResult | None = None
        self._registry_ids: dict[tuple[str, int], int] = {}
        # threads sharing one producer (e.g. a Dask worker's) take turns: a run's
        # book-keeping and a client replacement are never interleaved with another's
        self._one_run_at_a_time = threading.Lock()
        self._client = _Client(settings, self.log)
        self._finalizer = weakref.finalize(
            self, _close_client, self._client, float(settings.flush_timeout)
        )

    def __enter__(self) -> AlertProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return not self._finalizer.alive

    def close(self) -> None:
        """Flush what the client still holds (nothing after a `send` returned) and release it."""
        self._finalizer()

    def check_connection(self, timeout: float, *, require_topic: bool = True) -> None:
        """Ask the broker for its topics within ``timeout`` s; fail clearly if it cannot say.

        Parameters
        ----------
        timeout : `float`
            Seconds to wait for an answer (config ``maxTimeout``).
        require_topic : `bool`
            Fail when the settings' topic does not exist (config
            ``kafkaCheck="topic"``); the topic list is asked for without
            naming it, so a broker that creates topics on request does not
            create it here.

        Raises
        ------
        BrokerUnavailableError
            No answer within ``timeout`` (the message names the security
            protocol and what the client heard, if anything).
        StreamError
            The broker refused the SASL handshake or the credentials, or,
            with ``require_topic``, has no such topic.
        """
        client = self._client
        producer = client.live_producer()
        deadline = time.monotonic() + timeout
        client.quiet = True
        try:
            while True:
                try:
                    metadata = producer.list_topics(timeout=min(_CHECK_SLICE_S, timeout))
                    break
                except client.KafkaException as error:
                    last = error_text(error)
                client.serve()  # the client errors reported meanwhile, by the error callback
                failure = connection_failure(
                    self.settings, client.errors_seen, last, timeout,
                    timed_out=time.monotonic() >= deadline,
                )
                if failure is not None:
                    raise failure
        finally:
            client.quiet = False
        topic = self.settings.topic
        if require_topic and topic not in metadata.topics:
            known = sorted(name for name in metadata.topics if not name.startswith("__"))
            shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
            raise StreamError(
                f"topic {topic!r} does not exist on Kafka at {self.settings.shown_servers} "
                f"(topics there: {shown or 'none'}); create it, correct kafkaTopic / "
                "$AP_KAFKA_TOPIC, or set kafkaCheck=connection for a broker that creates "
                "topics on first use"
            )

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
            run.stopped_by = stop_description(error)
            raise
        finally:
            # a second Ctrl-C must not stop the failed-alerts file half-way
            with signals_deferred():
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
        producer = client.live_producer()
        while True:
            try:
                headers: list[tuple[str, str | bytes | None]] = [
                    (PRODUCER_TIMESTAMP_HEADER, str(time.time() * 1000).encode("utf-8"))
                ]
                producer.produce(
                    topic, value, key, on_delivery=on_delivery, timestamp=timestamp,
                    headers=headers,
                )
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

    def _produce_error_reason(self, exception: BaseException, value: bytes) -> str:
        # confluent_kafka: with the first client, not at import (see the imports)
        from confluent_kafka import KafkaError

        error = exception.args[0] if exception.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            return (
                f"MSG_SIZE_TOO_LARGE: message of {len(value)} bytes exceeds the producer limit "
                f"message_max_bytes={self.settings.message_max_bytes} (config "
                "kafkaMessageMaxBytes; the broker and topic limits must allow it too)"
            )
        return error_text(exception)

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
        if run.pending:
            try:
                self._client.live_producer().purge(in_queue=True, in_flight=True)
            except self._client.KafkaException as error:
                if not self._client.note_fatal(error):
                    raise
            self._client.serve()  # the reports of the purged messages arrive here
        run.fail_pending()

    def _record_failures(self, result: DeliveryResult, topic: str) -> None:
        if result.failed and self.write_failed and self.failed_dir is not None:
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
                self.settings.registry_url, f"{topic}-value", definition,
                credentials=self.settings.registry_credentials,
            )
        return self._registry_ids[cache_key]


