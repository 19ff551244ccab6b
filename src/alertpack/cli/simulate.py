"""``alertpack simulate``: a survey-cadence alert stream for brokers to test against."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import TYPE_CHECKING

from alertpack.cli._config import add_config_options, config_from_args
from alertpack.cli._progress import Progress, print_table
from alertpack.errors import CommandError, InputError
from alertpack.terminal import printable

if TYPE_CHECKING:
    from alertpack.config import PackageAlertsConfig
    from alertpack.scaleout.simulate import StreamSummary, VisitRecord

HELP = "stream simulated visits at survey cadence to files and/or Kafka, measuring latency"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack simulate``."""
    parser.add_argument("--visits", type=int, default=10, help="visits to stream (default 10)")
    parser.add_argument(
        "--cadence", type=float, default=30.0, metavar="SECONDS",
        help="seconds between visit starts (default 30; 0: as fast as possible)",
    )
    parser.add_argument(
        "--detectors", type=int, default=189, help="detectors per visit (default 189)"
    )
    parser.add_argument(
        "--alerts", type=int, default=10_000, help="mean alerts per visit (default 10000)"
    )
    parser.add_argument(
        "--burst-alerts", type=int, default=40_000,
        help="largest burst, alerts per visit (default 40000)",
    )
    parser.add_argument(
        "--burst-fraction", type=float, default=0.05,
        help="fraction of visits that are bursts (default 0.05)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--templates", type=int, default=16,
        help="template detectors simulated once per worker and re-identified for every "
        "detector and visit (default 16)",
    )
    parser.add_argument(
        "--image-size", default="512x512", metavar="NXxNY",
        help="template image size in pixels (cutout sizes come from the config; default 512x512)",
    )
    add_config_options(parser)  # -o DIR: write alert files there
    parser.add_argument(
        "--produce", action="store_true",
        help="send alerts to Kafka (settings as for package: -c kafkaServer=HOST:PORT ...)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="local worker processes (default: all cores)"
    )
    parser.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT", default=None,
        help="run the detectors on this Dask distributed cluster",
    )


def _config(args: argparse.Namespace) -> PackageAlertsConfig:
    """The package config; alert files are written only with ``-o``."""
    if args.output is None and not args.produce:
        raise CommandError("nowhere to send alerts: give -o DIR and/or --produce")
    config = config_from_args(args, produce=args.produce)
    config.doWriteAlerts = args.output is not None
    return config


def _image_shape(text: str) -> tuple[int, int]:
    try:
        nx, ny = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise CommandError(f"--image-size {text!r}: expected NXxNY, e.g. 512x512") from None
    return ny, nx


def _check(args: argparse.Namespace) -> None:
    if args.cadence < 0:
        raise CommandError(f"--cadence {args.cadence}: give 0 or more seconds")
    if args.visits < 1:
        raise CommandError(f"--visits {args.visits}: give at least 1")
    if not 1 <= args.detectors <= 189:
        raise CommandError(f"--detectors {args.detectors}: LSSTCam has 189 science detectors; "
                           "give 1 to 189")
    if args.templates < 1:
        raise CommandError(f"--templates {args.templates}: give at least 1")
    if args.workers is not None and args.workers < 1:
        raise CommandError(f"--workers {args.workers}: give at least 1")


def _report_visit(progress: Progress, record: VisitRecord, summary: StreamSummary) -> None:
    status = (f"{record.n_alerts} alerts{' (burst)' if record.burst else ''}, "
              f"{record.n_bytes / 1e6:.1f} MB, latency {record.latency:.1f} s"
              + (f" (cadence {summary.cadence:g} s)" if summary.cadence else "")
              + (f", {len(record.failures)} detector(s) FAILED" if record.failures else ""))
    rate = (f"{summary.alerts_per_second:.0f} alerts/s, {summary.megabytes_per_second:.1f} MB/s, "
            f"p50 {summary.latency_percentile(50):.1f} s")
    progress.update(str(record.visit), status, postfix=rate)


def _print_summary(summary: StreamSummary, config: PackageAlertsConfig) -> None:
    cadence = f"{summary.cadence:g} s" if summary.cadence else "as fast as possible"
    rows: list[list[object]] = [
        ["visits", len(summary.visits)],
        ["alerts", summary.n_alerts],
        ["MB", f"{summary.n_bytes / 1e6:.1f}"],
        ["seconds", f"{summary.seconds:.1f}"],
        ["alerts/s", f"{summary.alerts_per_second:.0f}"],
        ["MB/s", f"{summary.megabytes_per_second:.2f}"],
        ["latency p50 (s)", f"{summary.latency_percentile(50):.2f}"],
        ["latency p99 (s)", f"{summary.latency_percentile(99):.2f}"],
        ["visit duration p50 (s)", f"{summary.duration_percentile(50):.2f}"],
        ["visit duration p99 (s)", f"{summary.duration_percentile(99):.2f}"],
        ["cadence", cadence],
        ["visits later than cadence", summary.late_visits],
        ["failed detectors", len(summary.failures)],
    ]
    if config.doProduceAlerts:
        rows += [
            ["kafka delivered", sum(v.n_delivered for v in summary.visits)],
            ["kafka failed", sum(v.n_failed for v in summary.visits)],
        ]
    print_table(["stream", "value"], rows)
    for failure in summary.failures:
        tries = f" after {failure.attempts} attempts" if failure.attempts > 1 else ""
        print(f"alertpack simulate: detector {failure.name} failed{tries}: "
              f"{printable(failure.error)}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Stream the visits, report each, and print the final table."""
    # the parser stays light: imported when the command runs
    from alertpack.scaleout.pool import DetectorExecutor
    from alertpack.scaleout.simulate import plan_stream, simulate_stream

    _check(args)
    config = _config(args)
    try:
        plan = plan_stream(
            args.visits, args.detectors, mean_alerts=args.alerts, burst_alerts=args.burst_alerts,
            burst_fraction=args.burst_fraction, seed=args.seed,
        )
    except InputError as error:  # the alert counts: --visits/--detectors are checked above
        raise CommandError(f"--alerts/--burst-alerts/--burst-fraction: {error}") from None
    loader_options = {"n_templates": args.templates, "image_shape": _image_shape(args.image_size),
                      "seed": args.seed, "schema_version": config.schemaVersion}
    with DetectorExecutor(config, workers=args.workers, scheduler=args.scheduler) as executor:
        print(f"alertpack: streaming {args.visits} visits of {args.detectors} detectors on "
              f"{executor.engine.description}", file=sys.stderr, flush=True)
        with Progress(args.visits, "visit") as progress:
            summary = simulate_stream(plan, executor, cadence=args.cadence,
                                      loader_options=loader_options,
                                      on_visit=partial(_report_visit, progress))
    _print_summary(summary, config)
    failed_alerts = sum(v.n_failed for v in summary.visits)
    return 0 if not summary.failures and failed_alerts == 0 else 1
