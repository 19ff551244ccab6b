"""``alertpack package``: package the built-in sample or a visit's files."""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alertpack.cli._apdb import add_apdb_options, package_from_apdb
from alertpack.cli._config import add_config_options, config_from_args
from alertpack.cli._files import say
from alertpack.cli._progress import Progress, print_pool_summary, print_table
from alertpack.errors import CommandError, InputError

if TYPE_CHECKING:
    from alertpack.config import PackageAlertsConfig
    from alertpack.core import AlertPackager
    from alertpack.scaleout.jobs import DetectorSummary
    from alertpack.scaleout.pool import VisitSummary
    from alertpack.visit_inputs import VisitInputs

HELP = "package the built-in sample or a visit's files into alerts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack package``."""
    parser.add_argument(
        "--sample", action="store_true", help="package the built-in sample visit"
    )
    parser.add_argument(
        "--n-sources", type=int, default=None, help="sample: number of DiaSources"
    )
    parser.add_argument(
        "--image-size",
        default=None,
        metavar="NXxNY",
        help="sample: image size in pixels, e.g. 2048x2048 (default: one LSST detector)",
    )
    parser.add_argument("--seed", type=int, default=None, help="sample: random seed")
    parser.add_argument(
        "--detectors", type=int, default=1,
        help="sample: package a visit of this many detectors (189 for a full LSST visit), "
        "each simulated and packaged in a worker process",
    )
    parser.add_argument(
        "--workers", type=int, default=None,
        help="worker processes for several detectors (default: all cores)",
    )
    parser.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT", default=None,
        help="run one task per detector on this Dask distributed cluster instead of local "
        "processes (workers load, write and produce themselves)",
    )
    parser.add_argument(
        "--visit-dir",
        metavar="DIR",
        nargs="+",
        help="detector directories: diaSourceCat, diaObjectCat, diaSrcHistory, "
        "diaForcedSources, ssSource, mpc_orbits (each .parquet, .csv, .fits or .vot), "
        "difference.fits, template.fits, science.fits, visit.json (those present are used), "
        "or a parent directory whose subdirectories are detectors; several detectors run on "
        "--workers processes or --scheduler; for one detector, the options below override "
        "single files",
    )
    formats = "Parquet, CSV, FITS table or VOTable, by extension"
    parser.add_argument("--sources", help=f"DiaSource catalog ({formats})")
    parser.add_argument("--objects", help=f"DiaObject catalog ({formats})")
    parser.add_argument("--history", help=f"previous DiaSources ({formats})")
    parser.add_argument("--forced", help=f"previous DiaForcedSources ({formats})")
    parser.add_argument("--ss-source", help=f"ssSource rows of asteroid DiaSources ({formats})")
    parser.add_argument("--mpc-orbits", help=f"orbits of those asteroids ({formats})")
    parser.add_argument(
        "--id-bits", type=int, default=None,
        help="ccdExposureIdBits: bits of the exposure id packed into diaSourceId",
    )
    images = "FITS, plain or tile-compressed; only the pixels under the cutouts are read"
    parser.add_argument("--difference", help=f"difference image ({images})")
    parser.add_argument("--template", help=f"template image ({images})")
    parser.add_argument("--science", help=f"science image ({images})")
    add_apdb_options(parser)
    add_config_options(parser)
    parser.add_argument("--produce", action="store_true", help="also send alerts to Kafka")


def _parse_image_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        nx, ny = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise CommandError(f"--image-size {text!r}: expected NXxNY, e.g. 2048x2048") from None
    return ny, nx


def _sample_inputs(args: argparse.Namespace, schema_version: str) -> VisitInputs:
    # the parser stays light: imported when the command runs
    from alertpack.sample import make_visit

    options: dict[str, Any] = {"schema_version": schema_version}
    if args.n_sources is not None:
        options["n_sources"] = args.n_sources
    shape = _parse_image_size(args.image_size)
    if shape is not None:
        options["image_shape"] = shape
    if args.seed is not None:
        options["seed"] = args.seed
    return make_visit(**options).inputs()


def _package_sample_visit(args: argparse.Namespace, config: PackageAlertsConfig) -> int:
    """``--detectors N``: a whole focal plane of sample detectors through the process pool."""
    # the parser stays light: imported when the command runs
    from alertpack.scaleout.pool import package_detectors, sample_detector_loader

    if not args.sample:
        raise CommandError("--detectors is for the built-in sample (--sample)")
    shape = _parse_image_size(args.image_size) or (4000, 4072)
    n_sources = args.n_sources if args.n_sources is not None else 53
    loaders = (
        sample_detector_loader(detector, n_sources, shape, seed=args.seed or 0)
        for detector in range(args.detectors)
    )
    summary = package_detectors(loaders, config, workers=args.workers)
    return print_pool_summary(
        summary, config, f"from {args.detectors} sample detectors", "inputs simulated inside "
        "the workers"
    )


def _check_outputs(config: PackageAlertsConfig) -> None:
    """Output directories are writable, checked before the work (`OutputError` otherwise)."""
    # the parser stays light: imported when the command runs
    from alertpack.sinks.files import check_output_directory

    if config.doWriteAlerts:
        check_output_directory(config.alertWriteLocation)
    if config.doProduceAlerts and config.failedAlertsLocation.strip():
        check_output_directory(config.failedAlertsLocation)


#: VisitInputs field -> the option naming its single file
_FILE_OPTIONS = {
    "diaSourceCat": "sources",
    "diaObjectCat": "objects",
    "diaSrcHistory": "history",
    "diaForcedSources": "forced",
    "ssSource": "ss_source",
    "mpc_orbits": "mpc_orbits",
    "diffIm": "difference",
    "template": "template",
    "science": "science",
}


def _report_interrupted_delivery(packager: AlertPackager) -> None:
    """Say where the alerts of an interrupted run's Kafka delivery went."""
    delivery = packager.producer.last_result if packager.producer is not None else None
    if delivery is None:
        return
    saved = f", saved to {delivery.failed_path}" if delivery.failed_path else ""
    print(
        f"alertpack package: interrupted; kafka: {delivery.delivered} delivered, "
        f"{delivery.failed} not delivered{saved}"
        + (f" (send them with: alertpack replay {delivery.failed_path})" if saved else ""),
        file=sys.stderr,
    )


def _warn_unused_cutout_size(config: PackageAlertsConfig, sources: Any) -> None:
    """Say so when a set cutoutSize cannot apply: bboxSize sizes the cutouts instead."""
    asked = config.cutoutSize != config._fields["cutoutSize"].default  # -c or a config file
    # the parser stays light: imported when the command runs
    from alertpack.packets.columns import CatalogColumns

    # a DataFrame (columns or index levels) or, read from Parquet, an Arrow table
    has_bbox = "bboxSize" in CatalogColumns(sources, "diaSourceCat")
    if asked and config.useBboxSize and has_bbox:
        print(
            f"alertpack package: warning: cutoutSize={config.cutoutSize} applies only to "
            "sources without a bboxSize: useBboxSize is on and the catalog has bboxSize "
            f"(add -c useBboxSize=false to cut every stamp {config.cutoutSize} px)",
            file=sys.stderr,
        )


def _single_file_options(args: argparse.Namespace) -> list[str]:
    """The single-file options given (``--sources``, ..., ``--id-bits``)."""
    names = [*_FILE_OPTIONS.values(), "id_bits"]
    return [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is not None]


def _detector_directories(args: argparse.Namespace) -> list[Path]:
    """The detector directories of ``--visit-dir`` (checked before any work)."""
    # the parser stays light: imported when the command runs
    from alertpack.scaleout.jobs import detector_dirs

    try:
        return detector_dirs(args.visit_dir)
    except InputError as error:  # the message starts with the path given
        raise CommandError(f"--visit-dir {error}") from None


def _visit_file_inputs(args: argparse.Namespace, directory: Path | None) -> VisitInputs:
    """The `VisitInputs` of ``--visit-dir`` (one detector) and the single-file options."""
    # the parser stays light: imported when the command runs
    from alertpack.inputs.visit_files import load_visit_files

    if directory is None and (args.sources is None or args.difference is None):
        raise CommandError(
            "give --sample, --visit-dir DIR, or at least --sources CATALOG and "
            "--difference IMAGE.fits (plus --objects, --history, --forced, --template, --science)"
        )
    files = {name: getattr(args, option) for name, option in _FILE_OPTIONS.items()}
    return load_visit_files(directory, files=files, id_bits=args.id_bits)


def _package_detector_dirs(
    args: argparse.Namespace, config: PackageAlertsConfig, directories: list[Path]
) -> int:
    """Several detector directories on the worker pool or a Dask cluster, with progress."""
    # the parser stays light: imported when the command runs
    from alertpack.scaleout.jobs import DetectorJob, visit_dir_loader
    from alertpack.scaleout.pool import DetectorExecutor

    given = _single_file_options(args)
    if given:
        raise CommandError(
            f"{', '.join(given)}: single-file options apply to one detector; "
            "put the files in each detector's directory (visit.json for ccdExposureIdBits)"
        )
    if args.workers is not None and args.workers < 1:
        raise CommandError(f"--workers {args.workers}: give at least 1")
    jobs = [DetectorJob(str(path), visit_dir_loader(path)) for path in directories]
    with DetectorExecutor(config, workers=args.workers, scheduler=args.scheduler) as executor:
        print(f"alertpack: packaging {len(jobs)} detectors on {executor.engine.description}",
              file=sys.stderr, flush=True)
        with Progress(len(jobs), "detector") as progress:
            summary = executor.run(jobs, partial(_report_detector, progress))
    _print_visit_summary(summary, config)
    return 0 if not summary.failures and summary.n_failed == 0 else 1


def _report_detector(progress: Progress, detector: DetectorSummary) -> None:
    if detector.ok:
        status = (f"{detector.n_alerts} alerts, {detector.n_bytes / 1e6:.1f} MB, "
                  f"{detector.seconds:.2f} s" if not progress.is_tty else "")
    else:
        status = f"FAILED: {detector.error}"
    progress.update(detector.name, status)


def _print_visit_summary(summary: VisitSummary, config: PackageAlertsConfig) -> None:
    """The final table, then one line per failed detector."""
    rows: list[list[object]] = [
        ["detectors", len(summary.detectors) + len(summary.failures)],
        ["packaged", len(summary.detectors)],
        ["failed", len(summary.failures)],
        ["alerts", summary.n_alerts],
        ["MB", f"{summary.n_bytes / 1e6:.1f}"],
        ["seconds", f"{summary.seconds:.1f}"],
        ["alerts/s", f"{summary.n_alerts / max(summary.seconds, 1e-9):.0f}"],
        ["workers", summary.workers],
        ["peak RSS per worker (MB)", f"{summary.peak_rss_mb:.0f}"],
        ["redone detectors", len(summary.redone)],
    ]
    if config.doProduceAlerts:
        rows += [
            ["kafka delivered", summary.n_delivered],
            ["kafka failed", summary.n_failed],
            ["kafka possibly sent twice", summary.n_possible_duplicates],
        ]
    print_table(["visit", "value"], rows)
    print(f"alert files under {config.alertWriteLocation}")
    for failure in summary.failures:
        tries = f" after {failure.attempts} attempts" if failure.attempts > 1 else ""
        say(f"alertpack package: detector {failure.name} failed{tries}: {failure.error}",
            error=True)


def run(args: argparse.Namespace) -> int:
    """Package a visit and print a short summary (alerts, bytes, time, path)."""
    # the parser stays light: imported when the command runs
    from alertpack.core import AlertPackager

    config = config_from_args(args, produce=args.produce)
    _check_outputs(config)
    if args.apdb is not None:
        return package_from_apdb(args, config)
    if args.detectors != 1:
        if args.detectors < 1:
            raise CommandError(f"--detectors {args.detectors}: give at least 1")
        return _package_sample_visit(args, config)
    directory = None
    if args.visit_dir is not None and not args.sample:
        one_dir_with_overrides = len(args.visit_dir) == 1 and _single_file_options(args)
        directories = [Path(args.visit_dir[0])] if one_dir_with_overrides else (
            _detector_directories(args))
        if len(directories) > 1 or args.workers is not None or args.scheduler is not None:
            return _package_detector_dirs(args, config, directories)
        directory = directories[0]
    # the packager first: its Kafka producer connects while the inputs load
    with AlertPackager(config) as packager:
        start = time.perf_counter()
        if args.sample:
            inputs = _sample_inputs(args, config.schemaVersion)
            what = "sample visit"
        else:
            inputs = _visit_file_inputs(args, directory)
            what = "visit"
        _warn_unused_cutout_size(config, inputs.diaSourceCat)
        prepared = time.perf_counter()
        try:
            result = packager.run(inputs)
        except KeyboardInterrupt:
            _report_interrupted_delivery(packager)
            raise
    elapsed = time.perf_counter() - prepared

    print(
        f"alertpack: packaged {result.n_alerts} alerts from the {what} "
        f"(schema {config.schemaVersion}) in {elapsed:.2f} s "
        f"[inputs {prepared - start:.2f} s]"
    )
    print(f"  size: {result.alerts.nbytes / 1e6:.2f} MB, "
          f"{result.alerts.nbytes / max(result.n_alerts, 1) / 1e3:.1f} kB per alert")
    for path in result.paths:
        say(f"  wrote {path}")
    if not result.paths:
        print("  no alert file written" + ("" if result.n_alerts else " (no DiaSources)"))
    unusual = {key: count for key, count in result.cutout_status.items() if not key.endswith(":OK")}
    if unusual:
        print("  cutouts: " + ", ".join(f"{count} {key}" for key, count in sorted(unusual.items())))
    if result.unmatched_orbits:
        print(f"  warning: {result.unmatched_orbits} solar-system source(s) match no "
              "mpc_orbits row: their orbit is null", file=sys.stderr)
    if config.doProduceAlerts:
        print(f"  kafka: {result.delivered} delivered, {result.failed} failed"
              + (f" (saved to {result.failed_path})" if result.failed_path else ""))
    return 0 if result.failed == 0 else 1
