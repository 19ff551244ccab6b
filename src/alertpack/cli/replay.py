"""``alertpack replay``: send the alerts of failed-alert files again."""

from __future__ import annotations

import argparse
import os
import sys

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
    """0 when everything was delivered (or nothing had failed), 1 when some alerts failed
    again (they stay in their files), 2 when a file could not be read (the others are sent).
    """
    # the parser stays light: imported when the command runs
    from alertpack.kafka.replay import replay
    from alertpack.sinks.failed import find_failed_alert_files, read_failed_alerts

    readable, status = [], 0
    for path in find_failed_alert_files(args.paths):
        try:
            read_failed_alerts(path)
        except FailedAlertFileError as error:
            print(f"alertpack replay: error: {error}", file=sys.stderr)
            status = 2
            continue
        readable.append(path)
    if not readable:
        if status == 0:
            where = ", ".join(args.paths)
            print(
                f"alertpack replay: nothing to replay: no failed-alert files "
                f"(alertpack.failedAlert records) in {where}",
                file=sys.stderr,
            )
        return status
    if not (args.server or os.environ.get(ENV_SERVER, "").strip()):
        raise CommandError(f"no Kafka server given: pass --server (or ${ENV_SERVER})")
    overrides = {
        "servers": args.server,
        "topic": args.topic,
        "flush_timeout": args.timeout,
        "delivery_timeout": args.timeout,
    }
    result = replay(readable, overrides)
    print(f"replayed {result.total} alert(s): {result.summary()}")
    return status or (0 if result.failed == 0 else 1)
