"""Command-line options shared by the commands that read a Kafka topic."""

from __future__ import annotations

import argparse

__all__ = ["add_kafka_source_options"]


def add_kafka_source_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """Add the options that name a topic and how much of it to read."""
    group = parser.add_argument_group("Kafka")
    group.add_argument(
        "--server",
        required=required,
        help="bootstrap server(s), host:port[,host:port]; default $AP_KAFKA_SERVER",
    )
    group.add_argument(
        "--topic", required=required, help="topic to read; default $AP_KAFKA_TOPIC"
    )
    group.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the earliest offset instead of only new messages",
    )
    group.add_argument(
        "--max", type=int, default=None, metavar="N",
        help="stop after N alerts (for inspect, also when reading files)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="stop when no message arrived for this long (default 10)",
    )
    group.add_argument("--group", default=None, help="consumer group id (default: none, assign)")
