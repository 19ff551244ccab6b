"""Read raw messages from every partition of a Kafka topic.

`open_consumer` creates a confluent-kafka consumer from `ConsumerSettings`,
checks that the broker answers and the topic exists, and either assigns all
partitions directly (no group: fast to start, commits nothing) or joins a
consumer group and waits, bounded, for its partitions. The `TopicConsumer`
it yields iterates messages until none arrived for a while (or for as long as
the caller wants: no idle limit, and a `threading.Event` that ends the read),
stores offsets of what was handed out and commits offsets explicitly.

What the messages mean (decoding alerts, keeping rejected ones aside,
writing them to files) is the read side's: `alertpack.tools.consume`.
Every error text goes through the settings' redaction.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
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
        self, client: Consumer, settings: ConsumerSettings, topic: str, group: str | None
    ) -> None:
        self.client = client
        self.settings = settings
        self.topic = topic
        self.group = group
        # messages that came with the group's assignment, handed out first
        self._early: list[Message] = []

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
    ) -> Iterator[Message]: ...

    @overload
    def messages(
        self, timeout: float | None, *, idle_ticks: bool, stop: threading.Event | None = None
    ) -> Iterator[Message | None]: ...

    def messages(
        self,
        timeout: float | None,
        *,
        idle_ticks: bool = False,
        stop: threading.Event | None = None,
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

        Raises
        ------
        StreamError
            At an error that is fatal or that retrying cannot cure.
        """
        batch, self._early = self._early, []
        last_arrival = time.monotonic()
        while True:
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
    client, log_token = new_client(Consumer, settings, config, kind="consumer")
    try:
        consumer = TopicConsumer(client, settings, settings.topic, group)
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
