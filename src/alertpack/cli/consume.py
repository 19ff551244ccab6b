"""``alertpack consume``: read alerts from a Kafka topic."""

from __future__ import annotations

import argparse
import sys

from alertpack.cli._kafka import add_kafka_source_options

HELP = "read alerts from a Kafka topic"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack consume``."""
    add_kafka_source_options(parser, required=False)
    parser.add_argument("--out", default=None, metavar="DIR", help="write alerts to Avro files")


def run(args: argparse.Namespace) -> int:
    """Print a line per alert, or write them with ``--out DIR``."""
    from alertpack.tools.consume import kafka_alerts_from_args, write_alert_files

    server, topic, alerts = kafka_alerts_from_args(args)
    if args.out:
        count, paths = write_alert_files(alerts, args.out, topic=topic)
        for path in paths:
            print(path)
    else:
        count = 0
        for consumed in alerts:
            print(consumed.summary(), flush=True)
            count += 1
    print(f"read {count} alert(s) from {topic} at {server}", file=sys.stderr)
    return 0
