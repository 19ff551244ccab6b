"""Packet size: bytes per alert and packaging time for every cutout option, against LSST's writer.

Run as ``.venv/bin/python benchmarks/bench_packets.py`` (``--quick`` for a
smoke run, ``--json FILE`` to save the results). One run packages the
built-in sample detector (its TAN-SIP WCS with an inverse, nine mask planes,
a 25x25 PSF; three images) with `alertpack.core.AlertPackager` at stamp
sizes 30, 64 and 102 px, once per option: ``cutoutCompression`` none, gzip,
lossless, lossy16, and ``cutoutOrientation=north-up``. Packaging time is
the whole run (catalogs, cutouts, Avro, the alert file), best of
``--repeat``, the options interleaved so that shared-machine load falls on
all alike.

LSST's writer is `alertpack.reference.cutouts.lsst_cutout_bytes`
(``createCcdDataCutout`` + ``streamCcdDataToBytes``: ``CCDData.write``),
given the very stamps alertpack cut. As LSST's task calls it, it writes the
image, its variance and the PSF (the mask, passed as ``flags``, is not
written) with a linear TAN WCS. For the same planes it also writes the mask
(``hdu_flags="MASK"``, int32). alertpack's stamps carry image, variance, the
mask with its plane names (in the smallest integer type that holds them)
and the PSF, with the parent's TAN-SIP WCS, once. The table gives both
ratios: same planes, and alertpack's full stamp against LSST's as it runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import Column, Table, Target, exit_status, machine_line, print_targets, write_json
from alertpack.config import PackageAlertsConfig
from alertpack.core import AlertPackager
from alertpack.inputs.images import as_survey_image
from alertpack.packets.cutouts import extract_stamps
from alertpack.packets.stamp_compression import decode_stamp
from alertpack.reference.cutouts import lsst_cutout_bytes
from alertpack.sample import make_visit

SIZES = (30, 64, 102)
OPTIONS = (
    ("none", "native"),
    ("gzip", "native"),
    ("lossless", "native"),
    ("lossy16", "native"),
    ("none", "north-up"),
)
FIELDS = ("cutoutDifference", "cutoutScience", "cutoutTemplate")
IMAGES = (("difference", "diffIm"), ("science", "science"), ("template", "template"))

TABLE = Table([
    Column("size", 4), Column("option", 18, align="<"), Column("kB/alert", 9, ".1f"),
    Column("kB/stamp", 9, ".2f"), Column("vs none", 8, ".2f", suffix="x"),
    Column("ms/alert", 9, ".3f"), Column("time vs none", 12, ".2f", suffix="x"),
])
LSST_TABLE = Table([
    Column("size", 4), Column("alertpack B/stamp", 17, ".0f"),
    Column("LSST same planes", 16, ".0f"), Column("ratio", 6, ".3f", suffix="x"),
    Column("LSST as run", 11, ".0f"), Column("full ratio", 10, ".3f", suffix="x"),
    Column("LSST ms/stamp", 13, ".3f"),
])


def _config(directory: Path, size: int, compression: str, orientation: str) -> Any:
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(directory)
    config.useBboxSize = False
    config.cutoutSize = size
    config.cutoutCompression = compression
    config.cutoutOrientation = orientation
    config.overwriteAlertFiles = True  # repeats time the write, not the same-file check
    return config


def _packaging(visit: Any, work: Path, size: int, repeat: int) -> dict[tuple[str, str], Any]:
    """Best packaging time and the last result of every option at one stamp size."""
    packagers = {
        option: AlertPackager(_config(work / f"{size}-{option[0]}-{option[1]}", size, *option))
        for option in OPTIONS
    }
    best = dict.fromkeys(OPTIONS, float("inf"))
    results: dict[tuple[str, str], Any] = {}
    for packager in packagers.values():  # warm: header templates, reproject imported
        packager.run(visit.inputs())
    for _ in range(repeat):
        for option, packager in packagers.items():
            inputs = visit.inputs()
            start = time.perf_counter()
            results[option] = packager.run(inputs)
            best[option] = min(best[option], time.perf_counter() - start)
    return {option: (best[option], results[option]) for option in OPTIONS}


def _identical_pixels(plain: Any, packed: Any) -> bool:
    """Every stamp of ``packed`` decodes to the same pixel bytes as ``plain``'s."""
    from astropy.io import fits

    for mine, theirs in zip(plain.alerts, packed.alerts, strict=True):
        for name in FIELDS:
            if (mine[name] is None) != (theirs[name] is None):
                return False
            if mine[name] is None:
                continue
            with fits.open(_bytes_io(mine[name])) as a, \
                    fits.open(_bytes_io(decode_stamp(theirs[name]))) as b:
                for plane in ("IMAGE", "UNCERT", "MASK", "PSFIMAGE"):
                    if not np.array_equal(a[plane].data, b[plane].data, equal_nan=True):
                        return False
    return True


def _bytes_io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def _lsst_sizes(visit: Any, size: int) -> tuple[float, float, float, float]:
    """Mean bytes per stamp: alertpack's, LSST's for the same planes, LSST's as run; LSST's ms."""
    from alertpack.packets.stamp_fits import stamp_fits_bytes

    run = visit.run_kwargs()
    sources = run["diaSourceCat"]
    ra, dec = np.asarray(sources["ra"], float), np.asarray(sources["dec"], float)
    ours, same, as_run, seconds, count = 0, 0, 0, 0.0, 0
    for name, key in IMAGES:
        image = as_survey_image(run[key], name=name)
        stamps, _ = extract_stamps(image, ra, dec, size)
        for stamp in stamps:
            if stamp is None:
                continue
            start_xy = (stamp.origin[0] - image.origin[0], stamp.origin[1] - image.origin[1])
            arguments = dict(
                parent_wcs=image.wcs, start=start_xy, ra=stamp.ra, dec=stamp.dec,
                psf=stamp.psf, rotpa=stamp.rotation_angle, xy0=image.origin,
            )
            planes = (np.array(stamp.image), np.array(stamp.variance), np.array(stamp.mask))
            ours += len(stamp_fits_bytes(stamp))
            same += len(lsst_cutout_bytes(*planes, **arguments, hdu_flags="MASK"))
            begin = time.perf_counter()
            as_run += len(lsst_cutout_bytes(*planes, **arguments))
            seconds += time.perf_counter() - begin
            count += 1
    return ours / count, same / count, as_run / count, seconds / count * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small detector, one repeat")
    parser.add_argument("--n-sources", type=int, default=None, help="alerts (default 60)")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs (default 5)")
    parser.add_argument("--json", default=None, metavar="FILE", help="save the results")
    args = parser.parse_args()
    n_sources = args.n_sources or (12 if args.quick else 60)
    repeat = args.repeat or (1 if args.quick else 5)
    shape = (800, 800) if args.quick else (4000, 4072)
    print(machine_line("bench_packets", args.quick))
    visit = make_visit(n_sources=n_sources, image_shape=shape, seed=1)
    print(f"sample detector {shape[1]}x{shape[0]}, {n_sources} alerts, 3 cutouts each, "
          f"best of {repeat}")
    rows: list[dict[str, Any]] = []
    lsst_rows: list[dict[str, Any]] = []
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="bench-packets-") as work:
        print(TABLE.header())
        print(TABLE.rule())
        for size in SIZES:
            measured = _packaging(visit, Path(work), size, repeat)
            seconds_none, plain = measured[("none", "native")]
            for (compression, orientation), (seconds, result) in measured.items():
                label = compression if orientation == "native" else f"{compression}, {orientation}"
                row = {
                    "size": size, "option": label,
                    "kB/alert": result.bytes_per_alert / 1e3,
                    "kB/stamp": result.bytes_per_stamp / 1e3,
                    "vs none": result.alerts.nbytes / plain.alerts.nbytes,
                    "ms/alert": seconds / result.n_alerts * 1e3,
                    "time vs none": seconds / seconds_none,
                }
                rows.append(row)
                print(TABLE.row(row))
            gzip_seconds, gzipped = measured[("gzip", "native")]
            identical = _identical_pixels(plain, gzipped) and _identical_pixels(
                plain, measured[("lossless", "native")][1]
            )
            if size == 30:
                ratio = gzipped.alerts.nbytes / plain.alerts.nbytes
                targets.append(Target(
                    "gzip packets <= 0.5x the default at 30 px, identical pixels",
                    f"{ratio:.2f}x, pixels {'identical' if identical else 'DIFFER'}",
                    ratio <= 0.5 and identical,
                ))
            time_ratio = gzip_seconds / seconds_none
            targets.append(Target(f"packaging with gzip <= 1.3x the time without at {size} px",
                                  f"{time_ratio:.2f}x", time_ratio <= 1.3))
            ours, same, as_run, lsst_ms = _lsst_sizes(visit, size)
            lsst_rows.append({
                "size": size, "alertpack B/stamp": ours, "LSST same planes": same,
                "ratio": ours / same, "LSST as run": as_run, "full ratio": ours / as_run,
                "LSST ms/stamp": lsst_ms,
            })
            targets.append(Target(f"default <= 1.10x LSST's bytes, same planes, {size} px",
                                  f"{ours / same:.3f}x", ours / same <= 1.10))
    print()
    print("LSST's writer (CCDData.write) on the same stamps; same planes: image, variance, mask, "
          "PSF; as run: image, variance, PSF")
    print(LSST_TABLE.header())
    print(LSST_TABLE.rule())
    for row in lsst_rows:
        print(LSST_TABLE.row(row))
    print()
    print_targets(targets)
    if args.json:
        write_json(args.json, {
            "quick": args.quick, "n_sources": n_sources, "shape": shape, "rows": rows,
            "lsst": lsst_rows,
            "targets": [{"name": t.name, "measured": t.measured, "passed": t.passed}
                        for t in targets],
        })
    return exit_status(targets, enforce=not args.quick)


if __name__ == "__main__":
    sys.exit(main())
