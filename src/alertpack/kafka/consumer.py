"""Read raw messages from every partition of a Kafka topic.

`open_consumer` creates a confluent-kafka consumer from `ConsumerSettings`,
checks that the broker answers and the topic exists, and either assigns all
partitions directly (no group: fast to start, commits nothing) or joins a
consumer group and waits, bounded, for its partitions. The `TopicConsumer`
it yields iterates messages until none arrived for a while (or for as long as
the caller wants: no idle limit, and a `threading.Event` that ends the read),
stores offsets of what was handed out and commits offsets explicitly.

A message larger than the consumer may receive (librdkafka's
``receive.message.max.bytes``, which a broker's answer to a fetch must fit
in) would stall the consumer for good: librdkafka drops the answer, says so
only in a log line ("increase receive.message.max.bytes") and fetches the
same message again, for ever, and nothing behind it on any partition of that
broker arrives. The consumer watches its own log lines for that one; then a
short-lived probe consumer finds the partition and offset of the message
(the first one, from where reading stands, that its fetch fails on), the
message is skipped (the consumer seeks past it) and reported as an
`OversizedMessage`, at WARNING on the ``alertpack.kafka.consumer`` logger
with the setting that would let it through, and reading goes on.

What the messages mean (decoding alerts, keeping rejected ones aside,
writing them to files) is the read side's: `alertpack.tools.consume`.
Every error text goes through the settings' redaction.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, overload

from alertpack.errors import BrokerUnavailableError, StreamError
from alertpack.kafka.settings import ConsumerSettings, client_log, error_text, new_client

# confluent_kafka (~0.06 s) loads with the first client, not with alertpack.kafka, which
# the CLI and the read side import for settings and types (test_kafka_settings checks it)
if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, TopicPartition

__all__ = [
    "GROUP_JOIN_TIMEOUT",
    "POLL_SECONDS",
    "OversizedMessage",
    "TopicConsumer",
    "message_position",
    "open_consumer",
]

#: seconds a consumer group may take to hand out partitions (Kafka delays the
#: first rebalance by 3 s by default)
GROUP_JOIN_TIMEOUT = 30.0

#: longest a consume() call blocks: how often the idle limit and the stop event are checked
POLL_SECONDS = 0.25

# messages asked for per consume() call
_BATCH = 500

# librdkafka's line (a log line, not an error) for a fetch answer it refuses to receive
_TOO_LARGE = re.compile(
    r"Invalid response size (?P<size>\d+) \(0\.\.(?P<limit>\d+)\): "
    r"increase receive\.message\.max\.bytes"
)
# seconds a probe may take to fetch one partition's next message or fail on it
_PROBE_SECONDS = 5.0

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OversizedMessage:
    """A message too large for this consumer to receive, skipped so that reading goes on.

    Attributes
    ----------
    topic, partition, offset
        Where it is (the message is still on the topic).
    answer_bytes : `int`
        Size of the broker's answer that carried it (the message and a little more).
    limit : `int`
        The consumer's ``receive.message.max.bytes``.
    """

    topic: str
    partition: int
    offset: int
    answer_bytes: int
    limit: int

    @property
    def reason(self) -> str:
        """One line: where, how large, what was done, which setting would read it."""
        return (
            f"{self.topic}[{self.partition}]@{self.offset}: a message too large to receive (the "
            f"broker's answer was {self.answer_bytes:,} bytes, over the consumer's "
            f"receive.message.max.bytes={self.limit:,}): skipped, reading goes on; to read it, "
            f"raise the consumer properties receive.message.max.bytes above "
            f"{self.answer_bytes:,} and fetch.max.bytes (at least 512 bytes below it)"
        )


class TopicConsumer:
    """A consumer on every partition of one topic, as `open_consumer` yields it.

    Attributes
    ----------
    settings : `ConsumerSettings`
        What it was opened with.
    topic : `str`
        The topic read.
    group : `str` or `None`
        The consumer group, if one was joined.
    client
        The ``confluent_kafka.Consumer``.
    """

    def __init__(
        self,
        client: Consumer,
        settings: ConsumerSettings,
        topic: str,
        group: str | None,
        *,
        from_beginning: bool = False,
    ) -> None:
        self.client = client
        self.settings = settings
        self.topic = topic
        self.group = group
        self.from_beginning = from_beginning
        # messages that came with the group's assignment, handed out first
        self._early: list[Message] = []
        # (answer bytes, limit) of the last "increase receive.message.max.bytes" line
        self._too_large: tuple[int, int] | None = None
        # partition -> the offset after the last message skipped as too large: a line of a
        # fetch made before the seek must not make it be found (and reported) again
        self._skipped: dict[int, int] = {}

    def notice_line(self, line: str) -> None:
        """Look at one of this client's librdkafka lines (`new_client`'s ``on_line``)."""
        match = _TOO_LARGE.search(line)
        if match is not None:
            self._too_large = (int(match["size"]), int(match["limit"]))

    def partitions(self, timeout: float) -> list[int]:
        """The topic's partition numbers, asking the broker for at most ``timeout`` s (>= 1).

        Raises
        ------
        BrokerUnavailableError
            When no broker answers at the configured servers.
        StreamError
            When the topic does not exist.
        """
        # confluent_kafka: with the first client, not at import (see the imports)
        from confluent_kafka import KafkaException

        wait = max(timeout, 1.0)
        servers = self.settings.shown_servers
        try:
            metadata = self.client.list_topics(self.topic, timeout=wait)
        except KafkaException as error:
            raise BrokerUnavailableError(
                f"cannot reach Kafka at {servers} within {wait:g} s "
                f"({self.settings.redact(error_text(error))}); check the server address and "
                "that the broker is up"
            ) from None
        described = metadata.topics.get(self.topic)
        if described is None or described.error is not None or not described.partitions:
            reason = "" if described is None or described.error is None else f" ({described.error})"
            raise StreamError(
                f"topic {self.topic!r} does not exist on {servers}{self.settings.redact(reason)}"
            )
        return sorted(described.partitions)

    def assign(self, partitions: list[int], *, from_beginning: bool) -> None:
        """Read ``partitions`` directly, from the earliest offset or from the end."""
        # confluent_kafka: with the first client, not at import (see the imports)
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        self.client.assign([TopicPartition(self.topic, p, start) for p in partitions])

    def join_group(self, timeout: float) -> None:
        """Subscribe and wait (bounded) for the partitions, so that joining is not idle time.

        Messages that arrive together with the assignment are handed out first
        by `messages`.

        Raises
        ------
        StreamError
            When the group hands out no partition within ``timeout`` s.
        """
        assigned: list[TopicPartition] = []
        self.client.subscribe(
            [self.topic], on_assign=lambda _, partitions: assigned.extend(partitions)
        )
        deadline = time.monotonic() + timeout
        while not assigned:
            if time.monotonic() > deadline:
                raise StreamError(
                    f"consumer group {self.group!r} got no partitions of {self.topic!r} "
                    f"within {timeout:g} s"
                )
            messages = self.client.consume(_BATCH, timeout=POLL_SECONDS)
            if messages:
                self._early = messages
                return

    @overload
    def messages(
        self,
        timeout: float | None,
        *,
        idle_ticks: Literal[False] = False,
        stop: threading.Event | None = None,
        on_oversized: Callable[[OversizedMessage], None] | None = None,
    ) -> Iterator[Message]: ...

    @overload
    def messages(
        self,
        timeout: float | None,
        *,
        idle_ticks: bool,
        stop: threading.Event | None = None,
        on_oversized: Callable[[OversizedMessage], None] | None = None,
    ) -> Iterator[Message | None]: ...

    def messages(
        self,
        timeout: float | None,
        *,
        idle_ticks: bool = False,
        stop: threading.Event | None = None,
        on_oversized: Callable[[OversizedMessage], None] | None = None,
    ) -> Iterator[Message | None]:
        """Raw messages (not errors) until none arrived for ``timeout`` s, or ``stop`` is set.

        Parameters
        ----------
        timeout : `float` or `None`
            Seconds without a message after which the read ends; `None`: no
            idle limit (the read ends only by ``stop``, or by the caller).
        idle_ticks : `bool`
            Yield `None` after each poll that brought nothing, so that the
            caller can do timed work while the topic is quiet.
        stop : `threading.Event`, optional
            Ends the read once set (from any thread), within `POLL_SECONDS`;
            messages already received but not handed out are not handed out.

        A message too large to receive is skipped (see the module notes),
        logged at WARNING and given to ``on_oversized``; it counts as an
        arrival.

        Raises
        ------
        StreamError
            At an error that is fatal or that retrying cannot cure; at a
            message too large to receive when there is no ``on_oversized``.
        """
        batch, self._early = self._early, []
        last_arrival = time.monotonic()
        while True:
            if self._too_large is not None:
                skipped = self._skip_oversized()
                if skipped is not None:
                    # librdkafka backs off before it connects again after the refused
                    # answers: the idle time starts once it may have
                    last_arrival = time.monotonic() + self._reconnect_backoff()
                    _log.warning("%s", skipped.reason)
                    if on_oversized is None:
                        raise StreamError(skipped.reason)
                    on_oversized(skipped)
            for message in batch:
                if stop is not None and stop.is_set():
                    return
                error = message.error()
                if error is not None:
                    if error.fatal() or not error.retriable():
                        raise StreamError(
                            f"reading {message.topic()}: {self.settings.redact(str(error))}"
                        )
                    continue
                last_arrival = time.monotonic()
                yield message
            if stop is not None and stop.is_set():
                return
            wait = POLL_SECONDS
            if timeout is not None:
                idle = time.monotonic() - last_arrival
                if idle >= timeout:
                    return
                wait = min(wait, timeout - idle)
            batch = self.client.consume(_BATCH, timeout=wait)
            if idle_ticks and not batch:
                yield None

    def store_offset(self, message: Message) -> None:
        """Mark ``message`` handed out: the background commit of a group covers it."""
        self.client.store_offsets(message)

    def store_next(self, partition: int, offset: int) -> None:
        """Mark everything before ``offset`` of ``partition`` handed out (a skipped message)."""
        # confluent_kafka: with the first client, not at import (see the imports)
        from confluent_kafka import TopicPartition

        self.client.store_offsets(offsets=[TopicPartition(self.topic, partition, offset)])

    # --- a message too large to receive ------------------------------------------------------

    def _skip_oversized(self) -> OversizedMessage | None:
        """Find the message librdkafka cannot receive and seek past it (`None`: not found)."""
        # confluent_kafka: with the first client, not at import (see the imports)
        from confluent_kafka import Consumer, TopicPartition

        assert self._too_large is not None
        answer_bytes, limit = self._too_large
        self._too_large = None
        failed: list[str] = []
        config = self.settings.client_config(
            group=self.group, from_beginning=self.from_beginning, auto_commit=False
        )
        # a fresh connection: the consumer's own is torn down at every refused answer
        probe, token = new_client(
            Consumer, self.settings, config, kind="consumer",
            on_line=lambda line: failed.append(line) if _TOO_LARGE.search(line) else None,
        )
        try:
            for partition, offset in self._unread(probe):
                del failed[:]
                probe.assign([TopicPartition(self.topic, partition, offset)])
                if self._probe_fails(probe, failed):
                    self.client.seek(TopicPartition(self.topic, partition, offset + 1))
                    self._skipped[partition] = offset + 1
                    return OversizedMessage(self.topic, partition, offset, answer_bytes, limit)
        finally:
            try:
                probe.close()
            finally:
                client_log.forget(token)
        return None

    def _reconnect_backoff(self) -> float:
        """Seconds librdkafka waits at most before it connects again (reconnect.backoff.max.ms)."""
        try:
            return float(self.settings.extra.get("reconnect.backoff.max.ms", 10_000)) / 1000
        except (TypeError, ValueError):
            return 10.0

    def _unread(self, probe: Consumer) -> Iterator[tuple[int, int]]:
        """``(partition, next offset)`` of each assigned partition with messages not read yet."""
        # confluent_kafka: with the first client, not at import (see the imports)
        from confluent_kafka import TopicPartition

        positions = self.client.position(self.client.assignment())
        committed = {}
        if self.group is not None:
            committed = {
                tp.partition: tp.offset
                for tp in probe.committed(
                    [TopicPartition(self.topic, tp.partition) for tp in positions], timeout=5
                )
            }
        for position in sorted(positions, key=lambda tp: tp.partition):
            low, high = probe.get_watermark_offsets(
                TopicPartition(self.topic, position.partition), timeout=5, cached=False
            )
            offset = position.offset
            if offset < 0:
                offset = committed.get(position.partition, -1)
            if offset < 0:
                offset = low if self.from_beginning else high
            offset = max(offset, self._skipped.get(position.partition, -1))
            if low <= offset < high:
                yield position.partition, offset

    @staticmethod
    def _probe_fails(probe: Consumer, failed: list[str]) -> bool:
        """Whether the probe's fetch is refused as too large before a message arrives."""
        deadline = time.monotonic() + _PROBE_SECONDS
        while time.monotonic() < deadline and not failed:
            if any(message.error() is None for message in probe.consume(1, timeout=0.2)):
                return False
        return bool(failed)

    def commit(self, next_offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit ``(topic, partition) -> next offset`` to the group, waiting for the broker.

        Raises
        ------
        StreamError
            When the commit fails.
        """
        # confluent_kafka: with the first client, not at import (see the imports)
        from confluent_kafka import KafkaException, TopicPartition

        offsets = [TopicPartition(t, p, offset) for (t, p), offset in sorted(next_offsets.items())]
        try:
            self.client.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            raise StreamError(
                f"committing offsets of group {self.group!r} failed "
                f"({self.settings.redact(error_text(error))})"
            ) from None


def message_position(topic: str, partition: int, offset: int) -> str:
    """Where a message is, as every alertpack message prints it: ``topic[partition]@offset``."""
    return f"{topic}[{partition}]@{offset}"


@contextlib.contextmanager
def open_consumer(
    settings: ConsumerSettings,
    *,
    from_beginning: bool,
    timeout: float,
    group: str | None,
    auto_commit: bool,
) -> Iterator[TopicConsumer]:
    """A `TopicConsumer` reading every partition of ``settings.topic``; closed after the block.

    Parameters
    ----------
    settings : `ConsumerSettings`
        Servers, topic, credentials.
    from_beginning : `bool`
        Start at the earliest offset (with a group: only where it has none yet).
    timeout : `float`
        Seconds the broker may take to answer the first request.
    group : `str` or `None`
        Consumer group to join; `None` assigns all partitions directly.
    auto_commit : `bool`
        With a group, commit stored offsets in the background (else only
        `TopicConsumer.commit` commits).

    Raises
    ------
    ConfigError
        When librdkafka refuses the settings.
    BrokerUnavailableError
        When no broker answers.
    StreamError
        When the topic does not exist or the group hands out no partitions.
    """
    # confluent_kafka: with the first client, not at import (see the imports)
    from confluent_kafka import Consumer

    config = settings.client_config(
        group=group, from_beginning=from_beginning, auto_commit=auto_commit
    )
    noticed: list[TopicConsumer] = []
    client, log_token = new_client(
        Consumer, settings, config, kind="consumer",
        on_line=lambda line: noticed[0].notice_line(line) if noticed else None,
    )
    try:
        consumer = TopicConsumer(
            client, settings, settings.topic, group, from_beginning=from_beginning
        )
        noticed.append(consumer)
        partitions = consumer.partitions(timeout)
        if group is None:
            consumer.assign(partitions, from_beginning=from_beginning)
        else:
            consumer.join_group(max(timeout, GROUP_JOIN_TIMEOUT))
        yield consumer
    finally:
        try:
            client.close()
        finally:
            client_log.forget(log_token)
