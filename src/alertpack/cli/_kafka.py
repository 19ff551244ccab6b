"""Command-line options shared by the commands that read a Kafka topic."""

from __future__ import annotations

import argparse

__all__ = ["add_kafka_source_options", "positive_float", "positive_int"]


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds above 0")
    return value


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
        "--max", type=positive_int, default=None, metavar="N",
        help="stop after N alerts (for inspect, also when reading files)",
    )
    group.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="stop when no message arrived for this long (default 10)",
    )
    group.add_argument("--group", default=None, help="consumer group id (default: none, assign)")
