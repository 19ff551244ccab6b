"""``alertpack replay``: send the alerts of failed-alert files again."""

from __future__ import annotations

import argparse
import os

from alertpack.cli._files import report_lines, say
from alertpack.errors import CommandError, FailedAlertFileError
from alertpack.kafka.settings import ENV_SERVER

HELP = "send failed alerts again"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack replay``."""
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="FILE|DIR",
        help="failed-alert files, or directories searched recursively for them (e.g. the "
        "alertWriteLocation, whose failed/ subdirectory holds them)",
    )
    parser.add_argument("--server", default=None, help="bootstrap server(s)")
    parser.add_argument("--topic", default=None, help="topic (default: the one recorded)")
    parser.add_argument("--timeout", type=float, default=30.0, help="flush timeout, seconds")


def run(args: argparse.Namespace) -> int:
    """0 when everything was delivered (or nothing had failed); 1 when some alerts failed
    again (they stay in their files) or some files could not be read (each named, left as
    they are; the others are sent); 2 when nothing could be read.
    """
    # the parser stays light: imported when the command runs
    from alertpack.kafka.replay import replay
    from alertpack.sinks.failed import find_failed_alert_files, read_failed_alerts

    problems: list[str] = []
    readable = []
    for path in find_failed_alert_files(args.paths, problems=problems):
        try:
            read_failed_alerts(path)
        except FailedAlertFileError as error:  # named with the others below
            problems.append(str(error))
            continue
        readable.append(path)
    if not readable:
        if report_lines("replay", [], problems):
            return 2
        where = ", ".join(args.paths)
        say(
            f"alertpack replay: nothing to replay: no failed-alert files "
            f"(alertpack.failedAlert records) in {where}",
            error=True,
        )
        return 0
    if not (args.server or os.environ.get(ENV_SERVER, "").strip()):
        raise CommandError(f"no Kafka server given: pass --server (or ${ENV_SERVER})")
    overrides = {
        "servers": args.server,
        "topic": args.topic,
        "flush_timeout": args.timeout,
        "delivery_timeout": args.timeout,
    }
    result = replay(readable, overrides, problems=problems)
    say(f"replayed {result.total} alert(s): {result.summary()}")
    unreadable = report_lines("replay", [], problems)
    return 1 if unreadable or result.failed else 0
