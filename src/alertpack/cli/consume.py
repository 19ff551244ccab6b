"""``alertpack consume``: read alerts from a Kafka topic."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from alertpack.cli._files import say
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
        help="write alerts to Avro files in DIR (messages that are not alerts are kept in "
        "DIR/rejected/); with --group, offsets are committed only once the alerts are on disk",
    )


#: rejects reported one line each, before the rest is summarised
REJECTS_SHOWN = 10
#: then one line per this many rejects
REJECTS_PER_LINE = 1000


class _RejectReport:
    """Prints the first rejects one line each, then one line per `REJECTS_PER_LINE`.

    A flood of garbage (5,000 one-byte messages) is a few lines on stderr,
    not one each: every reject is still kept (``DIR/rejected/``) and counted.
    """

    def __init__(self, kept_in: str | None = None) -> None:
        self.kept_in = kept_in
        self.count = 0
        self._unsaid = 0
        self._last: RejectedMessage | None = None

    def __call__(self, rejected: RejectedMessage) -> None:
        self.count += 1
        if self.count <= REJECTS_SHOWN:
            kept = f"; kept in {self.kept_in}" if self.kept_in else ""
            # a message too large to receive: its reason names the properties to raise
            how = "" if rejected.received else " (-X NAME=VALUE)"
            say(f"alertpack consume: skipped {rejected.reason}{how}{kept}", error=True)
            if self.count == REJECTS_SHOWN:
                say(
                    f"alertpack consume: further rejects are summarised, one line per "
                    f"{REJECTS_PER_LINE}", error=True,
                )
            return
        self._unsaid += 1
        self._last = rejected
        if self._unsaid >= REJECTS_PER_LINE:
            self.summarise()

    def summarise(self) -> None:
        """The line for the rejects not reported yet, if any."""
        if not self._unsaid or self._last is None:
            return
        say(
            f"alertpack consume: skipped {self._unsaid} more message(s) that are not alerts "
            f"({self.count} in all; the last: {self._last.reason})",
            error=True,
        )
        self._unsaid = 0


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
    # the consumer's WARNING for a message too large to receive is reported here, as a
    # reject, once: not again by logging's last-resort handler
    logging.getLogger("alertpack.kafka.consumer").addHandler(logging.NullHandler())
    rejects = _RejectReport(f"{Path(args.out) / 'rejected'}/" if args.out else None)
    if args.out:
        settings, options = kafka_source_from_args(args)
        result = ConsumeResult()

        def on_file(path: Path) -> None:
            say(path, flush=True)

        try:
            consume_to_directory(
                settings, None, args.out, result=result, on_file=on_file,
                on_rejected=rejects, selection=selection, **options,
            )
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM as errors.Terminated (cli.main)
            rejects.summarise()
            committed = f", offsets of {result.committed} committed" if args.group else ""
            print(
                f"alertpack consume: interrupted; wrote the {result.alerts} alert(s) read so far "
                f"to {len(result.files)} file(s){committed}",
                file=sys.stderr,
            )
            raise
        count = result.alerts
        if selection is not None:
            unselected = f", left out {result.unselected} not selected"
    else:
        settings, alerts = kafka_alerts_from_args(args, on_rejected=rejects, selection=selection)
        count = 0
        for consumed in alerts:
            say(consumed.summary(), flush=True)
            count += 1
    rejects.summarise()
    skipped = f", skipped {rejects.count} message(s) that are not alerts" if rejects.count else ""
    where = f"{settings.topic} at {settings.shown_servers}"
    what = "selected alert(s)" if selection is not None else "alert(s)"
    say(f"read {count} {what} from {where}{unselected}{skipped}", error=True)
    return 1 if rejects.count else 0
