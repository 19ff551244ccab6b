"""``alertpack inspect``: one row per alert, from files or a Kafka topic."""

from __future__ import annotations

import argparse
import os
import sys

from alertpack.cli._files import report_file_problems
from alertpack.cli._kafka import (
    add_kafka_source_options,
    kafka_source_from_args,
    naming_kafka_flags,
)
from alertpack.cli._select import add_selection_options, selection_from_args
from alertpack.errors import CommandError
from alertpack.kafka.settings import ENV_SERVER, ENV_TOPIC

HELP = "one row per alert: ids, band, time, S/N, ..."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack inspect``."""
    parser.add_argument("paths", nargs="*", metavar="PATH", help="Avro files or directories")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_selection_options(parser)
    add_kafka_source_options(parser, required=False, reads_files=True)


def run(args: argparse.Namespace) -> int:
    """A table (or JSON Lines with ``--json``), one row per alert."""
    # the parser stays light: imported when the command runs
    from alertpack.tools.inspection import (
        iter_alert_summaries,
        kafka_alerts,
        summarize_alert,
        write_json_lines,
        write_table,
    )
    from alertpack.tools.reading import ReadReport

    if args.paths and (args.server or args.topic):
        raise CommandError("give either alert files/directories or --server/--topic, not both")

    selection = selection_from_args(args)
    report = ReadReport()
    if args.paths:
        rows = iter_alert_summaries(
            args.paths, max_alerts=args.max, report=report, selection=selection
        )
    else:
        if not (args.server or os.environ.get(ENV_SERVER)):
            raise CommandError(
                "give alert files or directories, or a Kafka source with --server and --topic "
                f"(or ${ENV_SERVER} and ${ENV_TOPIC})"
            )
        settings, options = kafka_source_from_args(args)
        alerts = kafka_alerts(settings, selection=selection, **options)
        rows = (summarize_alert(alert) for alert in alerts)
    writer = write_json_lines if args.json else write_table
    with naming_kafka_flags():
        count = writer(rows, sys.stdout)
    sys.stdout.flush()
    status = report_file_problems("inspect", report, read_any=count > 0)
    if count == 0 and status == 0:
        print(f"alertpack inspect: no alerts{' selected' if selection else ''}", file=sys.stderr)
    return status
