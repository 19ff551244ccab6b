"""``alertpack package --apdb CONFIG``: inputs of one visit's detectors read from an APDB."""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from alertpack.cli._progress import print_pool_summary
from alertpack.errors import CommandError
from alertpack.terminal import printable

if TYPE_CHECKING:
    from alertpack.config import PackageAlertsConfig
    from alertpack.scaleout.jobs import DetectorLoader

__all__ = ["add_apdb_options", "package_from_apdb", "parse_detectors"]


def add_apdb_options(parser: argparse.ArgumentParser) -> None:
    """``--apdb``, ``--visit``, ``--detector``, ``--visit-time`` (images: the file options)."""
    group = parser.add_argument_group(
        "APDB input",
        "new DiaSources of --visit/--detector, their DiaObjects and histories read from an "
        "APDB (lsst-dax-apdb); --difference/--template/--science may hold '{detector}', "
        "e.g. 'visit/{detector}/difference.fits'",
    )
    group.add_argument(
        "--apdb", metavar="CONFIG",
        help="APDB config file, as written by `apdb-cli create-sql URL CONFIG` (or label:NAME)",
    )
    group.add_argument("--visit", type=int, help="visit whose DiaSources become alerts")
    group.add_argument(
        "--detector", action="append", default=[], metavar="LIST",
        help="APDB detector(s) to read: 42, 0-188 or 1,5,9-12 (repeatable); several run in "
        "worker processes (--sample-detectors N simulates detectors instead)",
    )
    group.add_argument(
        "--visit-time", type=float, default=None, metavar="MJD",
        help="exposure midpoint, MJD TAI (default: the difference image header's DATE-AVG "
        "with TIMESYS, else MJD-AVG, else MJD-OBS + EXPTIME/2)",
    )


def parse_detectors(specs: list[str]) -> list[int]:
    """Detector numbers of ``--detector`` values such as ``42``, ``0-188``, ``1,5,9-12``."""
    detectors: list[int] = []
    for spec in specs:
        for part in spec.split(","):
            part = part.strip()
            try:
                if "-" in part:
                    first, last = (int(p) for p in part.split("-", 1))
                    if last < first:
                        raise ValueError
                    detectors.extend(range(first, last + 1))
                else:
                    detectors.append(int(part))
            except ValueError:
                raise CommandError(
                    f"--detector {spec!r}: expected numbers and ranges, e.g. 42, 0-188, 1,5,9-12"
                ) from None
    return list(dict.fromkeys(detectors))


def _image_path(pattern: str | None, detector: int, option: str) -> str | None:
    """The file of ``detector`` named by an image option; `None` when it was not given."""
    if pattern is None:
        return None
    path = Path(pattern.replace("{detector}", str(detector)))
    if not path.is_file():
        raise CommandError(f"{option} {path} (detector {detector}) does not exist")
    return str(path)


def _required_image_path(pattern: str | None, detector: int, option: str) -> str:
    path = _image_path(pattern, detector, option)
    if path is None:
        raise CommandError(f"--apdb needs {option} FITS (may contain '{{detector}}')")
    return path


def _loaders(
    args: argparse.Namespace, config: PackageAlertsConfig, detectors: list[int],
    calibration: dict[str, float], psfs: dict[str, str],
) -> list[DetectorLoader]:
    """One picklable `apdb_visit_inputs` call per detector; every file checked before any work."""
    from alertpack.inputs.apdb import apdb_visit_inputs  # pandas, astropy: not in the parser

    loaders: list[DetectorLoader] = []
    for detector in detectors:
        detector_psfs = {
            name: _required_image_path(pattern, detector, f"--psf {name}=")
            for name, pattern in psfs.items()
        }
        loaders.append(partial(
            apdb_visit_inputs, args.apdb, args.visit, detector,
            difference=_required_image_path(args.difference, detector, "--difference"),
            template=_image_path(args.template, detector, "--template"),
            science=_image_path(args.science, detector, "--science"),
            window_days=config.historyWindowDays,
            visit_time=args.visit_time,
            schema_version=config.schemaVersion,
            ccd_exposure_id_bits=args.id_bits,
            calibration=calibration,
            psfs=detector_psfs,
        ))
    return loaders


def package_from_apdb(
    args: argparse.Namespace, config: PackageAlertsConfig, calibration: dict[str, float],
    psfs: dict[str, str],
) -> int:
    """Package detectors of a visit from an APDB and print a summary; the exit status.

    ``calibration`` and ``psfs`` are those of ``--calibration`` and ``--psf``
    (PSF paths may hold ``{detector}``, as the image paths).
    """
    if args.visit is None or not args.detector:
        raise CommandError("--apdb needs --visit V and --detector D (e.g. 42 or 0-188)")
    if args.sample or args.visit_dir or args.sources:
        raise CommandError("--apdb reads the catalogs: drop --sample/--visit-dir/--sources")
    if args.id_bits is None:
        # the APDB stores visit and detector but not how ids pack them; files are named by it
        raise CommandError(
            "--apdb needs --id-bits N: the bits of the exposure id packed into diaSourceId "
            "(the APDB does not record them; alert files are named by the ccdVisitId they give)"
        )
    from alertpack.inputs.apdb import open_apdb  # pandas, astropy: not in the parser

    detectors = parse_detectors(args.detector)
    loaders = _loaders(args, config, detectors, calibration, psfs)
    open_apdb(args.apdb)  # a wrong path, server or password fails here, before any work
    if len(detectors) == 1:
        return _package_one(loaders[0], config, args.visit, detectors[0])
    from alertpack.scaleout.pool import package_detectors  # lsst.pex.config: not in the parser

    summary = package_detectors(loaders, config, workers=args.workers)
    empty = [d for d, s in zip(detectors, summary.detectors, strict=True) if s.n_alerts == 0]
    status = print_pool_summary(
        summary, config, f"of visit {args.visit}, {len(detectors)} detectors, from APDB "
        f"{args.apdb}"
    )
    if empty:
        print(f"  no DiaSources in the APDB for {len(empty)} detector(s): "
              f"{', '.join(map(str, empty[:20]))}{' ...' if len(empty) > 20 else ''}")
    return status


def _package_one(
    loader: DetectorLoader, config: PackageAlertsConfig, visit: int, detector: int
) -> int:
    from alertpack.core import AlertPackager  # lsst.pex.config, fastavro: not in the parser

    # the packager (and its Kafka producer) is made first: connecting overlaps the APDB read
    with AlertPackager(config) as packager:
        start = time.perf_counter()
        inputs = loader()
        read = time.perf_counter()
        result = packager.run(inputs)
        elapsed = time.perf_counter() - read
    print(
        f"alertpack: packaged {result.n_alerts} alerts of visit {visit} detector {detector} "
        f"from APDB (schema {config.schemaVersion}) in {elapsed:.2f} s "
        f"[APDB read {read - start:.2f} s]"
    )
    if result.n_alerts == 0:
        print(f"  no DiaSources in the APDB for visit {visit} detector {detector}: no alerts")
    for path in result.paths:
        print(f"  wrote {printable(path)}")
    if config.doProduceAlerts:
        print(f"  kafka: {result.delivered} delivered, {result.failed} failed"
              + (f" (saved to {result.failed_path})" if result.failed_path else ""))
    return 0 if result.failed == 0 else 1
