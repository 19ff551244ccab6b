"""``alertpack replay``: send the alerts of failed-alert files again."""

from __future__ import annotations

import argparse

HELP = "send failed alerts again"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack replay``."""
    parser.add_argument("paths", nargs="+", metavar="FILE|DIR", help="failed-alert files")
    parser.add_argument("--server", default=None, help="bootstrap server(s)")
    parser.add_argument("--topic", default=None, help="topic (default: the one recorded)")
    parser.add_argument("--timeout", type=float, default=30.0, help="flush timeout, seconds")


def run(args: argparse.Namespace) -> int:
    """0 when everything was delivered, 1 otherwise."""
    from alertpack.sinks.kafka import replay

    overrides = {
        "servers": args.server,
        "topic": args.topic,
        "flush_timeout": args.timeout,
        "delivery_timeout": args.timeout,
    }
    result = replay(args.paths, overrides)
    print(f"replayed {result.total} alert(s): {result.summary()}")
    return 0 if result.failed == 0 else 1
