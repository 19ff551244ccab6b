"""Send the alerts of failed-alerts files again (``alertpack replay``).

Each file is rewritten (atomically) with only the alerts that failed again,
with their new reason, or deleted when all went through. A replayed alert
keeps its key and the timestamp it was first given.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from alertpack.errors import FailedAlertFileError
from alertpack.kafka.producer import AlertProducer, DeliveryResult
from alertpack.kafka.settings import KafkaSettings
from alertpack.sinks.failed import (
    FailedAlert,
    find_failed_alert_files,
    read_failed_alerts,
    write_failed_alerts,
)

__all__ = ["replay"]


def _group_by_topic(failures: list[FailedAlert]) -> Iterator[tuple[str, list[FailedAlert]]]:
    topics: dict[str, list[FailedAlert]] = {}
    for failure in failures:
        topics.setdefault(failure.topic, []).append(failure)
    yield from topics.items()


def replay(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    settings: KafkaSettings | Mapping[str, Any] | None = None,
    *,
    log: Any = None,
    problems: list[str] | None = None,
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
    problems : `list` [`str`], optional
        Collects, one line each, the files that cannot be read (and what
        `find_failed_alert_files` finds wrong); they are left as they are and
        the others are sent. Without it, the first such file raises.

    Returns
    -------
    result : `DeliveryResult`
        Counts over all files; ``failed_paths`` are the files kept.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    contents = []
    for path in find_failed_alert_files(paths, problems=problems):
        try:
            contents.append((path, read_failed_alerts(path)))
        except FailedAlertFileError as error:
            if problems is None:
                raise
            problems.append(str(error))
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
