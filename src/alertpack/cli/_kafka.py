"""Command-line options shared by the commands that read a Kafka topic, and what they build.

The options become `~alertpack.kafka.settings.ConsumerSettings` and the
keyword arguments of `~alertpack.tools.consume.iter_kafka_alerts` here; the
library below takes those typed values, and its errors get the names of the
options that set them here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from alertpack.errors import BrokerUnavailableError, CommandError
from alertpack.kafka.settings import ENV_SERVER, ENV_TOPIC, SECURITY_PROTOCOLS, ConsumerSettings

__all__ = [
    "add_kafka_source_options",
    "consumer_settings_from_args",
    "kafka_alerts_from_args",
    "kafka_source_from_args",
    "naming_kafka_flags",
    "port_number",
    "positive_float",
    "positive_int",
]


def _whole_number(text: str, low: int, high: int | None, what: str, limits: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"{value} {limits}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    return _whole_number(text, 1, None, "a whole number", "must be at least 1")


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535 (0: any free one)."""
    return _whole_number(text, 0, 65535, "a port number", "is not a port number (0 to 65535)")


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds above 0")
    return value


def add_kafka_source_options(
    parser: argparse.ArgumentParser, *, required: bool, reads_files: bool = False
) -> None:
    """Add the options that name a topic and how much of it to read.

    ``reads_files``: the command also reads alert files, where ``--max`` applies too.
    """
    group = parser.add_argument_group(
        "Kafka", "read a topic (credentials: $AP_KAFKA_CONSUMER_USERNAME and "
        "$AP_KAFKA_CONSUMER_PASSWORD, when set)",
    )
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
        help="stop after N alerts (selected ones, with --where/--object)"
        + (", from files too" if reads_files else "; default: read until --timeout passes "
           "without a message"),
    )
    group.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="stop when no message arrived for this long (default 10)",
    )
    group.add_argument("--group", default=None, help="consumer group id (default: none, assign)")
    group.add_argument(
        "--security-protocol",
        choices=SECURITY_PROTOCOLS,
        default=None,
        help="with $AP_KAFKA_CONSUMER_USERNAME/_PASSWORD set: SASL_SSL (default) or "
        "SASL_PLAINTEXT; without: PLAINTEXT (default) or SSL",
    )
    group.add_argument(
        "--sasl-mechanism",
        default=None,
        metavar="NAME",
        help="SASL mechanism with a username (default SCRAM-SHA-512)",
    )
    group.add_argument(
        "-X", "--property", action="append", default=[], metavar="NAME=VALUE",
        help="a librdkafka consumer property, e.g. receive.message.max.bytes=200000000 "
        "(repeatable; secret ones are masked like the password)",
    )


def _properties(pairs: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs of ``--property`` as a mapping."""
    properties = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"--property {pair.split('=')[0]!r}: expected NAME=VALUE")
        properties[name.strip()] = value
    return properties


def consumer_settings_from_args(args: argparse.Namespace) -> ConsumerSettings:
    """The consumer settings of the Kafka source options (`add_kafka_source_options`).

    Server and topic default to ``$AP_KAFKA_SERVER`` and ``$AP_KAFKA_TOPIC``;
    ``$AP_KAFKA_CONSUMER_USERNAME`` / ``$AP_KAFKA_CONSUMER_PASSWORD`` switch on
    SASL (``--security-protocol``, ``--sasl-mechanism``).

    Raises
    ------
    CommandError
        When no server or no topic is given.
    ConfigError
        For settings the library cannot use (a username without a password).
    """
    for flag, variable in (("--server", ENV_SERVER), ("--topic", ENV_TOPIC)):
        given = getattr(args, flag[2:]) or os.environ.get(variable, "")
        if not given.strip():
            raise CommandError(f"no Kafka {flag[2:]} given: pass {flag} (or ${variable})")
    return ConsumerSettings.resolve(
        servers=args.server,
        topic=args.topic,
        security_protocol=args.security_protocol,
        sasl_mechanism=args.sasl_mechanism,
        extra=_properties(getattr(args, "property", [])),
    )


def kafka_source_from_args(args: argparse.Namespace) -> tuple[ConsumerSettings, dict[str, Any]]:
    """``(settings, options)``: options are how much to read, as `iter_kafka_alerts` takes them."""
    options = {
        "from_beginning": args.from_beginning,
        "max_alerts": args.max,
        "timeout": args.timeout,
        "group": args.group,
    }
    return consumer_settings_from_args(args), options


def kafka_alerts_from_args(
    args: argparse.Namespace,
    on_rejected: Callable[[Any], None] | None = None,
    selection: Any = None,
) -> tuple[ConsumerSettings, Iterator[Any]]:
    """``(settings, alerts)``: the `ConsumedAlert` s the options name, read lazily.

    ``on_rejected`` and ``selection`` as for `~alertpack.tools.consume.iter_kafka_alerts`.
    """
    # the parser stays light: imported when the command runs
    from alertpack.tools.consume import iter_kafka_alerts

    settings, options = kafka_source_from_args(args)
    alerts = iter_kafka_alerts(settings, on_rejected=on_rejected, selection=selection, **options)
    return settings, alerts


@contextlib.contextmanager
def naming_kafka_flags() -> Iterator[None]:
    """Errors of the Kafka source that the options can fix, with the options' names."""
    try:
        yield
    except BrokerUnavailableError as error:
        raise CommandError(f"{error} (the server: --server or ${ENV_SERVER})") from None
