"""``alertpack browse``: look at alerts in a web page on this machine."""

from __future__ import annotations

import argparse
import os
import sys

from alertpack.cli._kafka import consumer_settings_from_args, port_number
from alertpack.errors import CommandError
from alertpack.kafka.settings import ENV_SERVER, ENV_TOPIC
from alertpack.terminal import printable
from alertpack.tools.browse.server import DEFAULT_PORT, BrowseSession, bind, serve

HELP = "look at alerts (files or a Kafka topic) in a local web page"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack browse``."""
    parser.add_argument(
        "paths", nargs="*", metavar="PATH",
        help="alert files (Avro container or wire format) or directories of *.avro files",
    )
    parser.add_argument(
        "--port", type=port_number, default=None,
        help=f"port on 127.0.0.1 (default {DEFAULT_PORT}, or a free one when it is taken; "
        "0 for any free port)",
    )
    group = parser.add_argument_group(
        "Kafka",
        "show the alerts of a topic as they arrive (with PATHs too, both are shown); "
        "credentials from $AP_KAFKA_CONSUMER_USERNAME and $AP_KAFKA_CONSUMER_PASSWORD",
    )
    group.add_argument("--server", help="bootstrap server(s), host:port; default $AP_KAFKA_SERVER")
    group.add_argument("--topic", help="topic to read; default $AP_KAFKA_TOPIC")
    group.add_argument(
        "--from-beginning", action="store_true",
        help="also show the alerts already on the topic (default: only new ones)",
    )
    group.add_argument(
        "--group", default=None,
        help="consumer group to join and commit offsets in (default: none, nothing committed)",
    )
    # what the shared Kafka helpers read and browse does not offer
    parser.set_defaults(max=None, timeout=None, security_protocol=None, sasl_mechanism=None)


def _say(line: str) -> None:
    # file names, reasons and topic names from input: escaped
    print(f"alertpack browse: {printable(line)}", file=sys.stderr, flush=True)


def _live_feed(args: argparse.Namespace, index):
    """The `LiveFeed` asked for (--server/--topic, or $AP_KAFKA_* without paths), or `None`."""
    wanted = args.server or args.topic or (
        not args.paths and (os.environ.get(ENV_SERVER) or os.environ.get(ENV_TOPIC))
    )
    if not wanted:
        return None
    # the parser stays light: imported when the command runs
    from alertpack.tools.browse.live import LiveFeed

    feed = LiveFeed(
        index, consumer_settings_from_args(args), from_beginning=args.from_beginning,
        group=args.group, on_problem=_say,
    )
    feed.check()
    return feed


def run(args: argparse.Namespace) -> int:
    """Index the inputs in the background and serve the pages until Ctrl-C.

    Exit 130 (Ctrl-C) or 143 (SIGTERM) when stopped; 2 when it cannot start.
    """
    # the parser stays light: imported when the command runs
    from alertpack.tools.browse.app import create_app
    from alertpack.tools.browse.index import AlertIndex

    index = AlertIndex()
    live = _live_feed(args, index)
    if not args.paths and live is None:
        raise CommandError(
            "nothing to show: give alert files or directories, or --server and --topic"
        )
    listener = bind(args.port)
    session = BrowseSession(paths=args.paths, live=live, on_problem=_say, index=index)
    shown = [str(p) for p in args.paths]
    if live is not None:
        shown.append(f"{live.status.topic} at {live.status.server}")
    title = ", ".join(shown)
    app = create_app(index, indexing=session.indexing if args.paths else None, live=live,
                     title=title, on_problem=_say)
    host, port = listener.getsockname()[:2]
    if args.port is None and port != DEFAULT_PORT:
        _say(f"port {DEFAULT_PORT} is in use; serving on a free port instead")
    print(f"alertpack browse: http://{host}:{port}/  ({title}; Ctrl-C to stop)", flush=True)
    session.start()
    try:
        serve(app, listener)
    finally:
        session.close()
        listener.close()
    return 0
