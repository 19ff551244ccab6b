"""Soak: visits packaged back to back by one long-lived AlertPackager, to files and Kafka.

Each visit is the same simulated detector (built once), packaged by one
`AlertPackager` that lives for the whole soak, as the nightly service does:
alerts are written to files and sent to a local Tansu broker. After every
visit the benchmark counts what arrived, independently of alertpack's own
counts (records in the files with fastavro, messages read back from the
topic with a plain consumer, records in failed-alert files), then removes the
files and the topic so that disk and broker memory stay bounded. Reported:

- resident memory (RSS) and open file descriptors of the process, over time;
- alerts lost: given - (in files) for files, given - (on topic + in failed
  files) for Kafka; both must be 0;
- seconds per visit.

Run::

    .venv/bin/python benchmarks/bench_soak.py --quick            # 20 visits of 1,000 alerts
    .venv/bin/python benchmarks/bench_soak.py --visits 200 --alerts 10000
    .venv/bin/python benchmarks/bench_soak.py --no-kafka ...     # files only

Exit status 1 when an alert was lost, or RSS / descriptors kept growing
(second half of the run more than ``--rss-growth-mb`` / any fd above the first
half's maximum).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import fastavro

from _common import resident_mb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from alertpack.config import PackageAlertsConfig  # noqa: E402
from alertpack.core import AlertPackager  # noqa: E402
from alertpack.sample import make_visit  # noqa: E402
from broker import TansuBroker, read_topic  # noqa: E402

TOPIC = "soak"


@dataclass
class VisitFigures:
    visit: int
    seconds: float
    rss_mb: float
    open_fds: int
    given: int
    delivered: int
    in_files: int
    on_topic: int
    in_failed: int


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def records_in(paths) -> int:
    count = 0
    for path in paths:
        with open(path, "rb") as stream:
            count += sum(block.num_records for block in fastavro.block_reader(stream))
    return count


def delete_topic(server: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": server})
    for future in admin.delete_topics([topic], operation_timeout=10).values():
        with contextlib.suppress(Exception):  # not there yet: nothing was sent
            future.result(15)


def soak(args: argparse.Namespace, workdir: Path, server: str | None) -> list[VisitFigures]:
    print(f"simulating one visit of {args.alerts} alerts ...", flush=True)
    inputs = make_visit(n_sources=args.alerts, image_shape=(512, 512), seed=1).inputs()
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(workdir / "alerts")
    config.overwriteAlertFiles = True  # repeats write the files again: time the write
    config.useBboxSize = False
    config.cutoutSize = 30
    if server is not None:
        config.doProduceAlerts = True
        config.kafkaServer = server
        config.kafkaTopic = TOPIC
        config.kafkaDeliveryTimeout = 30.0  # 2,000 alerts queued at once on a shared machine
        config.kafkaCheck = "connection"  # a topic per visit, created on first produce
    figures = []
    with AlertPackager(config) as packager:
        for visit in range(args.visits):
            if server is not None:
                # a topic per visit: deleting the last one cannot race with this one
                topic = f"{TOPIC}-{visit}"
                # the packager's long-lived producer sends to its own settings' topic
                producer = packager.producer
                assert producer is not None
                producer.settings = dataclasses.replace(producer.settings, topic=topic)
            started = time.perf_counter()
            result = packager.run(inputs)
            seconds = time.perf_counter() - started
            in_files = records_in(result.paths)
            on_topic = in_failed = 0
            if server is not None:
                # a generous idle time: the broker shares 2 cores with the packager
                on_topic = len(read_topic(server, topic, expected=result.delivered, idle=5.0))
                failed = list(Path(packager.failed_dir).glob("*.avro"))
                in_failed = records_in(failed)
                for path in failed:
                    path.unlink()
                delete_topic(server, topic)
            for path in result.paths:
                path.unlink()
            figures.append(
                VisitFigures(visit, seconds, resident_mb(), open_fds(), result.n_alerts,
                             result.delivered, in_files, on_topic, in_failed)
            )
            row = figures[-1]
            print(f"visit {visit:4d}: {seconds:6.2f} s  RSS {row.rss_mb:7.1f} MB  "
                  f"fds {row.open_fds:3d}  alerts {row.given}  files {in_files}  "
                  f"delivered {result.delivered}  topic {on_topic}  failed {in_failed}", flush=True)
    return figures


def summarize(figures: list[VisitFigures], kafka: bool, rss_growth_mb: float) -> int:
    half = len(figures) // 2
    first, second = figures[:half] or figures, figures[half:]
    lost_files = sum(f.given - f.in_files for f in figures)
    lost_kafka = sum(f.given - f.on_topic - f.in_failed for f in figures) if kafka else 0
    duplicates = sum(max(0, f.on_topic + f.in_failed - f.given) for f in figures) if kafka else 0
    growth = max(f.rss_mb for f in second) - max(f.rss_mb for f in first)
    fd_growth = max(f.open_fds for f in second) - max(f.open_fds for f in first)
    seconds = sorted(f.seconds for f in figures)
    total = sum(f.given for f in figures)
    print()
    print(f"visits {len(figures)}, alerts {total} "
          f"(per visit: median {seconds[len(seconds) // 2]:.2f} s, max {seconds[-1]:.2f} s)")
    print(f"RSS: first visit {figures[0].rss_mb:.0f} MB, max of first half "
          f"{max(f.rss_mb for f in first):.0f} MB, max of second half "
          f"{max(f.rss_mb for f in second):.0f} MB (growth {growth:+.0f} MB)")
    print(f"open fds: first {figures[0].open_fds}, last {figures[-1].open_fds}, "
          f"growth between halves {fd_growth:+d}")
    print(f"alerts lost: files {lost_files}" + (f", kafka {lost_kafka} (duplicates "
                                                 f"{duplicates})" if kafka else ""))
    bad = lost_files or lost_kafka or growth > rss_growth_mb or fd_growth > 0
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visits", type=int, default=200)
    parser.add_argument("--alerts", type=int, default=10_000, help="alerts per visit")
    parser.add_argument("--quick", action="store_true", help="20 visits of 1,000 alerts")
    parser.add_argument("--no-kafka", action="store_true", help="files only")
    parser.add_argument("--rss-growth-mb", type=float, default=50.0)
    args = parser.parse_args(argv)
    if args.quick:
        args.visits, args.alerts = 20, 1000
    workdir = Path(tempfile.mkdtemp(prefix="alertpack-soak-"))
    try:
        if args.no_kafka:
            figures = soak(args, workdir, None)
        else:
            with TansuBroker(log_dir=workdir) as broker:
                figures = soak(args, workdir, broker.bootstrap)
        return summarize(figures, not args.no_kafka, args.rss_growth_mb)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
