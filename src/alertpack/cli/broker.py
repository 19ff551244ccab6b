"""``alertpack broker``: a Kafka broker on this machine for trying ``--produce`` and the readers."""

from __future__ import annotations

import argparse
import sys

from alertpack.cli._kafka import port_number
from alertpack.kafka.local_broker import DEFAULT_PORT, HOST, LocalBroker

HELP = "run a Kafka broker on 127.0.0.1 for trying alertpack (Tansu, in memory; Ctrl-C stops)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack broker``."""
    parser.description = (
        "Start the Tansu broker of the `broker` extra (pip install 'alertpack[broker]') on "
        f"{HOST}: plaintext, no credentials, topics created on first use with 4 partitions, "
        "kept in memory until it stops. For first steps and tests, not for production."
    )
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT,
        help=f"port on {HOST} (default {DEFAULT_PORT}; 0 for any free port)",
    )
    parser.add_argument(
        "--topic", default="alerts", help="topic name the printed examples use (default alerts)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the broker until Ctrl-C or SIGTERM (exit 130/143), or until it exits on its own (2)."""
    broker = LocalBroker(args.port)
    broker.start()
    try:
        server, topic = broker.bootstrap, args.topic
        print(f"alertpack broker: Kafka at {server} (Tansu, PLAINTEXT, in memory); "
              "Ctrl-C to stop", flush=True)
        print("  send alerts:  "
              f"AP_KAFKA_SERVER={server} AP_KAFKA_TOPIC={topic} alertpack package --sample "
              "--produce", flush=True)
        print(f"  read them:    alertpack consume --server {server} --topic {topic} "
              "--from-beginning", flush=True)
        print(f"  look at them: alertpack browse --server {server} --topic {topic} "
              "--from-beginning", flush=True)
        status = broker.wait()
        output = broker.output().strip().splitlines()[-3:]
        said = f": {' / '.join(output)}" if output else ""
        print(f"alertpack broker: error: the broker exited with status {status}{said}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM as errors.Terminated (cli.main)
        print("alertpack broker: stopping; its topics are gone", file=sys.stderr, flush=True)
        raise
    finally:
        broker.stop()
