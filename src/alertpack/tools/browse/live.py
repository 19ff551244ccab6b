"""Alerts arriving on a Kafka topic, added to the browse index as they come.

`LiveFeed` reads the topic in a background thread with
`alertpack.iter_kafka_alerts`: every partition assigned directly, no consumer
group and nothing committed, unless a ``group`` is given (then offsets are
committed in it, as ``alertpack consume --group`` does). Each alert goes into
the index, its payload into the index's temporary spool file. A message that
is not an alert is one line (``on_problem``) and reading goes on.

The read has no idle limit; `LiveFeed.stop` sets the event that
`iter_kafka_alerts` checks after every poll, which ends the read cleanly (the
consumer is closed, a group's offsets committed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alertpack.errors import AlertPackError, BrokerUnavailableError, StreamError
from alertpack.kafka.consumer import open_consumer
from alertpack.kafka.settings import ConsumerSettings
from alertpack.tools.browse.index import AlertIndex
from alertpack.tools.consume import iter_kafka_alerts

__all__ = ["LiveFeed", "LiveStatus"]

#: seconds the topic check before serving may take
CHECK_SECONDS = 10.0
_RETRY_SECONDS = 5.0


@dataclass
class LiveStatus:
    """What the page shows about the topic being read."""

    server: str
    topic: str
    alerts: int = 0
    rejected: int = 0
    running: bool = False
    error: str | None = None
    last_arrival: float | None = None


class LiveFeed:
    """Read ``topic`` on ``server`` into ``index`` in a background thread.

    Parameters
    ----------
    index : `AlertIndex`
        Where the alerts go.
    settings : `~alertpack.kafka.settings.ConsumerSettings`
        Bootstrap server(s), topic and credentials.
    from_beginning : `bool`
        Start at the earliest offsets; by default only new alerts.
    group : `str`, optional
        Consumer group to join and commit in; by default none (nothing committed).
    on_problem : callable, optional
        Called with one line for each message that is not an alert and each
        connection problem.
    """

    def __init__(
        self,
        index: AlertIndex,
        settings: ConsumerSettings,
        *,
        from_beginning: bool = False,
        group: str | None = None,
        on_problem: Callable[[str], None] | None = None,
    ):
        self.index = index
        self.settings = settings
        self.status = LiveStatus(server=settings.shown_servers, topic=settings.topic)
        self._from_beginning = from_beginning
        self._group = group
        self._on_problem = on_problem
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._errors_said: set[str] = set()

    def check(self, timeout: float = CHECK_SECONDS) -> None:
        """Make sure the broker answers and the topic exists, within ``timeout`` seconds.

        Raises
        ------
        StreamError
            Naming the server or the topic, and what to check.
        """
        try:
            with open_consumer(self.settings, from_beginning=False, timeout=timeout,
                               group=None, auto_commit=False):
                pass
        except BrokerUnavailableError as error:
            protocol = self.settings.effective_security_protocol
            raise StreamError(f"{error} (this client speaks {protocol})") from None

    def start(self) -> None:
        """Start reading in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="alertpack-browse-live",
                                        daemon=True)
        self.status.running = True
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the read and wait (at most ``timeout`` s) for the consumer to close."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _problem(self, line: str) -> None:
        if self._on_problem is not None:
            self._on_problem(line)

    def _client_error(self, error: Any) -> None:
        text = f"Kafka at {self.status.server}: {error.str()}"
        self.status.error = text
        if text not in self._errors_said:  # once each, not once per retry
            self._errors_said.add(text)
            self._problem(text)

    def _rejected(self, message: Any) -> None:
        self.status.rejected += 1
        self._problem(f"skipped {message.reason}")

    def _run(self) -> None:
        config = {"error_cb": self._client_error}
        from_beginning = self._from_beginning
        try:
            while not self._stop.is_set():
                try:
                    for consumed in iter_kafka_alerts(
                        self.settings, from_beginning=from_beginning, timeout=None,
                        group=self._group, config=config, on_rejected=self._rejected,
                        stop=self._stop,
                    ):
                        self.index.add_alert(consumed.alert, consumed.payload, consumed.schema,
                                             consumed.source, consumed.label)
                        self.status.alerts += 1
                        self.status.last_arrival = time.time()
                        self.status.error = None
                    from_beginning = False
                except Exception as error:  # the read starts again; the page stays up
                    text = str(error) if isinstance(error, AlertPackError) else (
                        f"reading {self.status.topic} failed ({type(error).__name__}: {error})"
                    )
                    self.status.error = text
                    self._problem(f"{text}; reading again in {_RETRY_SECONDS:g} s")
                    from_beginning = False
                    self._stop.wait(_RETRY_SECONDS)
        finally:
            self.status.running = False
