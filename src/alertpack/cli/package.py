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
from alertpack.cli._progress import (
    Progress,
    print_pool_summary,
    print_table,
    print_visit_notes,
    warnings_to_stderr,
)
from alertpack.errors import CommandError, InputError

if TYPE_CHECKING:
    from alertpack.config import PackageAlertsConfig
    from alertpack.core import AlertPackager
    from alertpack.inputs.visit_files import VisitDefaults
    from alertpack.scaleout.jobs import DetectorSummary
    from alertpack.scaleout.pool import VisitSummary
    from alertpack.visit_inputs import VisitInputs

HELP = "package the built-in sample or a visit's files into alerts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack package``, one argument group per concern."""
    parser.description = (
        "Package new DiaSources into alerts: the built-in sample (--sample), a visit's files "
        "(--visit-dir, or --sources/--difference/...), or an APDB (--apdb). Alerts go to one "
        "Avro file per ccdVisit under -o, and to Kafka with --produce."
    )
    _add_sample_options(parser)
    _add_file_options(parser)
    _add_image_options(parser)
    add_apdb_options(parser)
    config = parser.add_argument_group(
        "configuration", "PackageAlertsConfig fields: defaults, then -C files, -o/--schema, "
        "then -c pairs (alertpack config prints the result)",
    )
    add_config_options(config)
    _add_output_options(parser)
    _add_scale_out_options(parser)


def _add_sample_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the built-in sample", "a simulated, deterministic visit")
    group.add_argument("--sample", action="store_true", help="package the built-in sample visit")
    group.add_argument(
        "--n-sources", type=int, default=None, metavar="N",
        help="number of DiaSources (default: 60; 53 per detector with --sample-detectors)",
    )
    group.add_argument(
        "--image-size", default=None, metavar="NXxNY",
        help="image size in pixels, e.g. 2048x2048 (default: one LSST detector, 4072x4000)",
    )
    group.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
    group.add_argument(
        "--sample-detectors", dest="detectors", type=int, default=1, metavar="N",
        help="package a visit of N simulated detectors (189 for a full LSST visit), each "
        "simulated and packaged in a worker process (default: 1; --detector picks detectors "
        "of an APDB instead)",
    )


def _add_file_options(parser: argparse.ArgumentParser) -> None:
    formats = "Parquet, CSV, FITS table or VOTable, by extension"
    group = parser.add_argument_group(
        "a visit's files",
        "a detector's catalogs (and images, below) as files; a directory holds them under "
        "fixed names",
    )
    group.add_argument(
        "--visit-dir", metavar="DIR", nargs="+",
        help="detector directories: diaSourceCat, diaObjectCat, diaSrcHistory, "
        "diaForcedSources, ssSource, mpc_orbits (each .parquet, .csv, .fits or .vot), "
        "difference.fits, template.fits, science.fits, PSF files (difference_psf.fits, "
        "science_psf.fits, template_psf.fits; psf.fits for difference and science), visit.json "
        "(ccdExposureIdBits, calibration); those present are used. Or a parent directory "
        "whose subdirectories are detectors; several detectors run on --workers processes or "
        "--scheduler. For one detector, the single-file options override its files",
    )
    group.add_argument("--sources", metavar="FILE", help=f"DiaSource catalog ({formats})")
    group.add_argument("--objects", metavar="FILE", help=f"DiaObject catalog ({formats})")
    group.add_argument("--history", metavar="FILE", help=f"previous DiaSources ({formats})")
    group.add_argument("--forced", metavar="FILE", help=f"previous DiaForcedSources ({formats})")
    group.add_argument(
        "--ss-source", metavar="FILE", help=f"ssSource rows of asteroid DiaSources ({formats})"
    )
    group.add_argument(
        "--mpc-orbits", metavar="FILE", help=f"orbits of those asteroids ({formats})"
    )
    group.add_argument(
        "--id-bits", type=int, default=None, metavar="N",
        help="ccdExposureIdBits: bits of the exposure id packed into diaSourceId (the "
        "instrument's packing, for every detector of the visit; a detector's visit.json gives "
        "its own; default: a ccdVisitId column)",
    )


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "images",
        "FITS files, plain or tile-compressed (as afw writes them, or astropy CCDData); only "
        "the pixels under the cutouts are read",
    )
    group.add_argument("--difference", metavar="FILE", help="difference image (required)")
    group.add_argument("--template", metavar="FILE", help="template image (default: none)")
    group.add_argument("--science", metavar="FILE", help="science image (default: none)")
    group.add_argument(
        "--calibration", action="append", default=[], metavar="IMAGE=NJY[,...]",
        help="nJy per pixel value of an image whose file gives no unit (no BUNIT and no "
        "PhotoCalib in afw's archive), e.g. difference=0.57,template=1; repeatable; for every "
        "detector of a visit (a detector's visit.json gives its own)",
    )
    group.add_argument(
        "--psf", action="append", default=[], metavar="IMAGE=FILE",
        help="a FITS file holding an image's PSF (a 2-D image), e.g. template=tpsf.fits; "
        "repeatable; replaces the PSF of the image file (default: the file's PSF HDU or "
        "evaluable afw PSF, else the visit directory's PSF files, else none: the stamps say so)",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    # the variables the producer settings fall back to, named where they are read
    from alertpack.kafka.settings import ENV_PASSWORD, ENV_SERVER, ENV_TOPIC, ENV_USERNAME

    group = parser.add_argument_group(
        "output and delivery",
        f"Kafka settings not given by kafka* config fields (-c) come from ${ENV_SERVER} "
        f"(host:port[,...]), ${ENV_TOPIC}, ${ENV_USERNAME} and ${ENV_PASSWORD} (SASL_SSL, "
        "SCRAM-SHA-512; without a username: PLAINTEXT)",
    )
    group.add_argument(
        "--overwrite", action="store_true",
        help="replace existing alert files that hold other alerts (config overwriteAlertFiles; "
        "default: stop before writing; a file holding the same alerts is kept)",
    )
    group.add_argument(
        "--produce", action="store_true",
        help="also send the alerts to Kafka (config doProduceAlerts; default: files only)",
    )


def _add_scale_out_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "several detectors", "--visit-dir directories, --detector lists, --detectors N"
    )
    group.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="worker processes (default: all cores)",
    )
    group.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT", default=None,
        help="run one task per detector on this Dask distributed cluster instead of local "
        "processes (workers load, write and produce themselves; default: local processes)",
    )


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
    """``--sample-detectors N``: a focal plane of sample detectors through the process pool."""
    # the parser stays light: imported when the command runs
    from alertpack.scaleout.pool import package_detectors, sample_detector_loader

    if not args.sample:
        raise CommandError("--sample-detectors is for the built-in sample (--sample); "
                           "--detector picks the detectors of an APDB (--apdb)")
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
    """The single-file options given (``--sources``, ..., ``--psf``): one detector's files."""
    given = [f"--{name.replace('_', '-')}" for name in _FILE_OPTIONS.values()
             if getattr(args, name) is not None]
    return given + (["--psf"] if args.psf else [])


def _image_assignments(values: list[str], option: str, what: str) -> dict[str, str]:
    """``IMAGE=VALUE[,IMAGE=VALUE]`` options (repeatable) as image name -> text."""
    # the parser stays light: imported when the command runs
    from alertpack.visit_inputs import IMAGES

    found: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            name, sep, text = part.partition("=")
            name = name.strip()
            if not sep or name not in IMAGES or not text.strip():
                raise CommandError(
                    f"{option} {part!r}: expected IMAGE={what} with IMAGE one of "
                    f"{', '.join(IMAGES)}"
                )
            found[name] = text.strip()
    return found


def _calibrations(args: argparse.Namespace) -> dict[str, float]:
    """``--calibration difference=0.57,template=1`` as image name -> nJy per pixel value."""
    # the parser stays light: imported when the command runs
    from alertpack.inputs.visit_files import check_calibrations

    found: dict[str, float] = {}
    for name, text in _image_assignments(args.calibration, "--calibration", "NJY").items():
        try:
            found[name] = float(text)
        except ValueError:
            raise CommandError(
                f"--calibration {name}={text}: not a number of nJy per pixel value (1 when the "
                "pixels are already nJy)"
            ) from None
    try:
        return check_calibrations(found, "--calibration")
    except InputError as error:  # the message starts with the option
        raise CommandError(str(error)) from None


def _psf_files(args: argparse.Namespace) -> dict[str, str]:
    """``--psf template=tpsf.fits`` as image name -> PSF file."""
    return _image_assignments(args.psf, "--psf", "FILE")


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
    return load_visit_files(
        directory, files=files, id_bits=args.id_bits, calibration=_calibrations(args),
        psfs=_psf_files(args),
    )


def _package_detector_dirs(
    args: argparse.Namespace, config: PackageAlertsConfig, directories: list[Path]
) -> int:
    """Several detector directories on the worker pool or a Dask cluster, with progress."""
    # the parser stays light: imported when the command runs
    from alertpack.inputs.visit_files import VisitDefaults
    from alertpack.scaleout.jobs import DetectorJob, visit_dir_loader
    from alertpack.scaleout.pool import DetectorExecutor

    given = _single_file_options(args)
    if given:
        raise CommandError(
            f"{', '.join(given)}: single-file options apply to one detector; "
            "put the files in each detector's directory (PSF files beside the images)"
        )
    if args.workers is not None and args.workers < 1:
        raise CommandError(f"--workers {args.workers}: give at least 1")
    defaults = VisitDefaults(id_bits=args.id_bits, calibration=_calibrations(args))
    if config.doWriteAlerts:
        _check_distinct_alert_files(directories, config, defaults)
    jobs = [DetectorJob(str(path), visit_dir_loader(path, defaults)) for path in directories]
    with DetectorExecutor(config, workers=args.workers, scheduler=args.scheduler) as executor:
        print(f"alertpack: packaging {len(jobs)} detectors on {executor.engine.description}",
              file=sys.stderr, flush=True)
        with Progress(len(jobs), "detector") as progress:
            summary = executor.run(jobs, partial(_report_detector, progress))
    _print_visit_summary(summary, config)
    ok = not summary.failures and summary.n_failed == 0 and not summary.shared_files
    return 0 if ok else 1


def _check_distinct_alert_files(
    directories: list[Path], config: PackageAlertsConfig, defaults: VisitDefaults
) -> None:
    """Before any work: no two detectors of the run may write the same alert file."""
    # the parser stays light: imported when the command runs
    from alertpack.core import file_naming_of
    from alertpack.scaleout.jobs import check_distinct_alert_files, detector_alert_files

    naming = file_naming_of(config)
    planned: dict[str, list[Path]] = {}
    for path in directories:
        try:
            planned[str(path)] = detector_alert_files(
                path, config.alertWriteLocation, defaults, naming
            )
        except InputError:
            continue  # that detector's run fails on its own, with the same message
    check_distinct_alert_files(planned)


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
    print_visit_notes(summary)
    for failure in summary.failures:
        tries = f" after {failure.attempts} attempts" if failure.attempts > 1 else ""
        say(f"alertpack package: detector {failure.name} failed{tries}: {failure.error}",
            error=True)


def run(args: argparse.Namespace) -> int:
    """Package a visit and print a short summary (alerts, bytes, time, path)."""
    # the parser stays light: imported when the command runs

    config = config_from_args(args, produce=args.produce)
    if args.overwrite:
        config.overwriteAlertFiles = True
    with warnings_to_stderr():
        return _run(args, config)


def _run(args: argparse.Namespace, config: PackageAlertsConfig) -> int:
    # the parser stays light: imported when the command runs
    from alertpack.core import AlertPackager

    _check_outputs(config)
    if args.apdb is not None:
        return package_from_apdb(args, config, _calibrations(args), _psf_files(args))
    if args.detector:
        raise CommandError("--detector picks detectors of an APDB (with --apdb); for a visit of "
                           "N simulated detectors use --sample --sample-detectors N")
    if args.detectors != 1:
        if args.detectors < 1:
            raise CommandError(f"--sample-detectors {args.detectors}: give at least 1")
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
          f"{result.bytes_per_alert / 1e3:.1f} kB per alert, "
          f"{result.bytes_per_stamp / 1e3:.1f} kB per stamp ({result.n_stamps} stamps, "
          f"cutoutCompression={config.cutoutCompression})")
    for path in result.paths:
        say(f"  wrote {path}")
    if not result.paths:
        print("  no alert file written" + ("" if result.n_alerts else " (no DiaSources)"))
    unusual = {key: count for key, count in result.cutout_status.items() if not key.endswith(":OK")}
    if unusual:
        print("  cutouts: " + ", ".join(f"{count} {key}" for key, count in sorted(unusual.items())))
    for catalog, columns in sorted(result.renamed.items()):
        for field_name, column in sorted(columns.items()):
            print(f"  note: {catalog} column {column!r} read as {field_name}")
    if result.absent:
        print(f"  absent: {', '.join(result.absent)} (warnings above)")
    if result.unmatched_orbits:
        print(f"  warning: {result.unmatched_orbits} solar-system source(s) match no "
              "mpc_orbits row: their orbit is null", file=sys.stderr)
    if config.doProduceAlerts:
        print(f"  kafka: {result.delivered} delivered, {result.failed} failed"
              + (f" (saved to {result.failed_path})" if result.failed_path else ""))
    return 0 if result.failed == 0 else 1
