"""``alertpack consume``: read alerts from a Kafka topic."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from alertpack.cli._kafka import (
    add_kafka_source_options,
    kafka_alerts_from_args,
    kafka_source_from_args,
    naming_kafka_flags,
)
from alertpack.cli._select import add_selection_options, selection_from_args

if TYPE_CHECKING:  # the read side loads when the command runs, not with --help
    from alertpack.tools.consume import RejectedMessage

HELP = "read alerts from a Kafka topic"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack consume``."""
    add_kafka_source_options(parser, required=False)
    add_selection_options(parser)
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="write alerts to Avro files in DIR (messages that are not alerts go raw to "
        "DIR/rejected/); with --group, offsets are committed only once the alerts are on disk",
    )


def _report_rejected(rejected: RejectedMessage) -> None:
    kept = f"; kept in {rejected.path}" if rejected.path is not None else ""
    print(f"alertpack consume: skipped {rejected.reason}{kept}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Print a line per alert, or write them with ``--out DIR``.

    Exit 0 when every message was an alert, 1 when some were not (each reported,
    and with ``--out`` kept aside), 130/143 on Ctrl-C/SIGTERM after writing and
    committing what was read.
    """
    with naming_kafka_flags():
        return _consume(args)


def _consume(args: argparse.Namespace) -> int:
    # the parser stays light: imported when the command runs
    from alertpack.tools.consume import ConsumeResult, consume_to_directory

    selection = selection_from_args(args)
    unselected = ""
    if args.out:
        settings, options = kafka_source_from_args(args)
        result = ConsumeResult()

        def on_file(path: Path) -> None:
            print(path, flush=True)

        try:
            consume_to_directory(
                settings, None, args.out, result=result, on_file=on_file,
                on_rejected=_report_rejected, selection=selection, **options,
            )
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM as errors.Terminated (cli.main)
            committed = f", offsets of {result.committed} committed" if args.group else ""
            print(
                f"alertpack consume: interrupted; wrote the {result.alerts} alert(s) read so far "
                f"to {len(result.files)} file(s){committed}",
                file=sys.stderr,
            )
            raise
        count, n_rejected = result.alerts, len(result.rejected)
        if selection is not None:
            unselected = f", left out {result.unselected} not selected"
    else:
        rejected: list[RejectedMessage] = []

        def on_rejected(message: RejectedMessage) -> None:
            rejected.append(message)
            _report_rejected(message)

        settings, alerts = kafka_alerts_from_args(
            args, on_rejected=on_rejected, selection=selection
        )
        count = 0
        for consumed in alerts:
            print(consumed.summary(), flush=True)
            count += 1
        n_rejected = len(rejected)
    skipped = f", skipped {n_rejected} message(s) that are not alerts" if n_rejected else ""
    where = f"{settings.topic} at {settings.shown_servers}"
    what = "selected alert(s)" if selection is not None else "alert(s)"
    print(f"read {count} {what} from {where}{unselected}{skipped}", file=sys.stderr)
    return 1 if n_rejected else 0
