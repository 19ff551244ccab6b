"""Cutout speed: alertpack's fast path against Cutout2D + CCDData.write, side by side.

Run as ``.venv/bin/python benchmarks/bench_cutouts.py`` (``--help`` for options).
Cuts N sources out of one synthetic LSST-detector-sized image (4000 x 4072,
TAN-SIP WCS with a few pixels of distortion at the corners, variance, mask,
PSF) at each stamp size and prints microseconds per cutout for both paths
and their ratio. Both produce FITS bytes of the image, variance, mask and PSF.
"""

from __future__ import annotations

import argparse
import time

import astropy.units as u
import numpy as np
from astropy.nddata import NDData, VarianceUncertainty
from astropy.wcs import WCS, Sip

from _common import Column, Table
from alertpack.packets.cutouts import make_cutout_bytes
from alertpack.packets.stamp import CutoutStatus
from alertpack.packets.survey_image import SurveyImage
from alertpack.reference.cutouts import parent_planes, reference_cutout_bytes

DETECTOR_SHAPE = (4000, 4072)
TABLE = Table([
    Column("size", 5), Column("ok", 5), Column("padded", 6), Column("off", 4),
    Column("reference us", 13, ".1f"), Column("alertpack us", 13, ".1f"),
    Column("ratio", 7, ".0f", suffix="x"), Column("bytes/cutout", 13, ".0f"),
])


def detector_wcs(shape: tuple[int, int]) -> WCS:
    """0.2"/px, rotated 30 degrees, third-order SIP (a few pixels at the corners)."""
    ny, nx = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
    angle = np.radians(30.0)
    rotation = np.array([[-np.cos(angle), np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    wcs.wcs.cd = 0.2 / 3600 * rotation
    a, b = np.zeros((4, 4)), np.zeros((4, 4))
    a[2, 0], a[1, 1], a[3, 0], a[1, 2] = 2e-7, -1e-7, 3e-10, 2e-10
    b[0, 2], b[1, 1], b[0, 3], b[2, 1] = 1.5e-7, 1e-7, -3e-10, 1e-10
    wcs.sip = Sip(a, b, None, None, wcs.wcs.crpix)
    wcs.wcs.set()
    return wcs


def synthetic_image(shape: tuple[int, int], seed: int) -> SurveyImage:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-12:13, -12:13]
    psf = np.exp(-(xx**2 + yy**2) / (2 * 1.7**2)).astype(np.float32)
    return SurveyImage(
        image=rng.normal(0.0, 40.0, shape).astype(np.float32),
        variance=np.full(shape, 1600.0, np.float32),
        mask=(rng.random(shape) < 0.02).astype(np.int32) << 5,
        mask_planes={"BAD": 0, "SAT": 1, "INTRP": 2, "CR": 3, "EDGE": 4, "DETECTED": 5},
        wcs=detector_wcs(shape),
        origin=(0, 0),
        psf=psf / psf.sum(),
        name="difference",
    )


def source_positions(image: SurveyImage, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform over the detector, a few percent near the edges (padded stamps)."""
    rng = np.random.default_rng(seed)
    ny, nx = image.shape
    x = rng.uniform(-10, nx + 10, n)
    y = rng.uniform(-10, ny + 10, n)
    return image.wcs.all_pix2world(x, y, 0)


def time_fast(image, ra, dec, size, repeats) -> tuple[float, np.ndarray, int]:
    make_cutout_bytes(image, ra[:10], dec[:10], size)  # header templates are built once
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        cutouts, status = make_cutout_bytes(image, ra, dec, size)
        best = min(best, time.perf_counter() - start)
    n_bytes = sum(len(c) for c in cutouts if c is not None)
    return best, status, n_bytes


def as_nddata(image: SurveyImage) -> NDData:
    """The same image as the astropy object the reference path reads."""
    return NDData(
        image.image,
        uncertainty=VarianceUncertainty(image.variance),
        mask=image.mask,
        wcs=image.wcs,
        meta={f"MP_{name}": bit for name, bit in image.mask_planes.items()},
        unit=u.nJy,
        psf=image.psf,
    )


def time_reference(image, ra, dec, size) -> tuple[float, int]:
    start = time.perf_counter()
    image = parent_planes(as_nddata(image))  # once per image, timed with the cutouts
    n_bytes = 0
    for ra_i, dec_i in zip(ra, dec, strict=True):
        data = reference_cutout_bytes(image, float(ra_i), float(dec_i), size)
        n_bytes += 0 if data is None else len(data)
    return time.perf_counter() - start, n_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="sources (default 2000)")
    parser.add_argument(
        "--reference-n",
        type=int,
        default=None,
        help="sources timed on the reference path (default: all; it takes ~10 ms each)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 102])
    parser.add_argument("--repeats", type=int, default=3, help="fast-path repetitions (best)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--quick", action="store_true", help="tiny smoke run (50 sources, 10 on the reference)"
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.reference_n, args.repeats = 50, 10, 1

    image = synthetic_image(DETECTOR_SHAPE, args.seed)
    ra, dec = source_positions(image, args.n, args.seed)
    n_reference = args.n if args.reference_n is None else min(args.reference_n, args.n)

    print(
        f"image {DETECTOR_SHAPE[1]}x{DETECTOR_SHAPE[0]} TAN-SIP, {args.n} sources "
        f"(reference timed on {n_reference})"
    )
    print(TABLE.header())
    print(TABLE.rule())
    for size in args.sizes:
        fast_seconds, status, fast_bytes = time_fast(image, ra, dec, size, args.repeats)
        reference_seconds, _ = time_reference(image, ra[:n_reference], dec[:n_reference], size)
        n_cutouts = int(np.sum(status <= CutoutStatus.PADDED))
        fast_us = fast_seconds / args.n * 1e6
        reference_us = reference_seconds / n_reference * 1e6
        print(TABLE.row([
            size, int(np.sum(status == CutoutStatus.OK)),
            int(np.sum(status == CutoutStatus.PADDED)),
            int(np.sum(status == CutoutStatus.OFF_IMAGE)),
            reference_us, fast_us, reference_us / fast_us, fast_bytes / max(n_cutouts, 1),
        ]))


if __name__ == "__main__":
    main()
