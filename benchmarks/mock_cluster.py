"""A librdkafka mock Kafka cluster with a simulated round trip, in a process of its own.

librdkafka can run an in-process mock cluster (``test.mock.num.brokers``);
its brokers listen on 127.0.0.1, so clients in other processes can use them
too. ``test.mock.broker.rtt`` delays every response, which is what makes a
flush per message expensive on a real network.

Run as a script, it prints one JSON line ``{"bootstrap": "127.0.0.1:PORT"}``
and keeps the cluster up until its stdin closes. `mock_cluster` does that
from Python.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator

from _common import stop_process


def _serve(brokers: int, rtt_ms: int) -> None:
    from confluent_kafka import Producer

    holder = Producer(
        {
            "test.mock.num.brokers": brokers,
            "test.mock.broker.rtt": rtt_ms,
            # the mock cluster announces itself at NOTICE level; keep stderr quiet
            "log_level": 3,
        }
    )
    metadata = holder.list_topics(timeout=10)
    bootstrap = ",".join(f"{b.host}:{b.port}" for b in metadata.brokers.values())
    print(json.dumps({"bootstrap": bootstrap}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or exits)


@contextlib.contextmanager
def mock_cluster(rtt_ms: int = 10, brokers: int = 1) -> Iterator[str]:
    """Start a mock cluster in a helper process; yield its bootstrap address."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--brokers", str(brokers), "--rtt-ms", str(rtt_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"mock cluster helper exited with {process.wait()}")
        yield json.loads(line)["bootstrap"]
    finally:
        process.stdin.close()
        stop_process(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", type=int, default=1)
    parser.add_argument("--rtt-ms", type=int, default=10)
    args = parser.parse_args()
    _serve(args.brokers, args.rtt_ms)


if __name__ == "__main__":
    main()
