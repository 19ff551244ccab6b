"""Images and catalogs from files: lazy FITS reading, bad files, catalog formats.

The console-script tests run ``python -m alertpack package`` in a subprocess
on files written here with astropy; alerts are read back with
lsst.alert.packet and validated against its official schema.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, VarianceUncertainty
from astropy.table import Table
from astropy.wcs import WCS
from lsst.alert.packet import Schema, retrieve_alerts

from alertpack.config import PackageAlertsConfig
from alertpack.core import AlertPackager
from alertpack.inputs.catalogs import name_catalog_files, read_catalog
from alertpack.inputs.images import as_survey_image
from alertpack.packets.survey_image import LazyPlane
from alertpack.sample import make_visit, write_visit
from alertpack.visit_inputs import VisitInputs

SHAPE = (260, 300)  # (ny, nx)
N_SOURCES = 8
CATALOGS = ("diaSourceCat", "diaObjectCat", "diaSrcHistory", "diaForcedSources", "ssSource",
            "mpc_orbits")


@pytest.fixture(scope="module")
def visit_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("visit")
    write_visit(make_visit(N_SOURCES, SHAPE, seed=3), directory)
    return directory


def compressed_copy(source: Path, target: Path, compression: str) -> Path:
    """The exposure with every image extension tile-compressed (lossless for GZIP)."""
    with fits.open(source) as hdul:
        hdus = [fits.PrimaryHDU(header=hdul[0].header)]
        for hdu in hdul[1:]:
            options = {"quantize_level": 0} if compression.startswith("GZIP") else {}
            hdus.append(fits.CompImageHDU(
                hdu.data, hdu.header, name=hdu.name, compression_type=compression, **options
            ))
        fits.HDUList(hdus).writeto(target)
    return target


def ccddata_from_file(path: Path) -> CCDData:
    """The oracle: an in-memory CCDData of the whole file, read with astropy alone."""
    from alertpack.sample import BitMaskCCDData

    with fits.open(path) as hdul:
        header = hdul["IMAGE"].header
        mask_header = hdul["MASK"].header
        meta = {key: mask_header[key] for key in mask_header if key.startswith("MP_")}
        meta.update(LTV1=header.get("LTV1", 0), LTV2=header.get("LTV2", 0))
        image = BitMaskCCDData(
            np.array(hdul["IMAGE"].data), unit=u.Unit(header["BUNIT"], format="fits"),
            wcs=WCS(header), mask=np.array(hdul["MASK"].data),
            uncertainty=VarianceUncertainty(np.array(hdul["VARIANCE"].data)), meta=meta,
        )
        image.psf = np.array(hdul["PSF"].data)
        return image


def package_payloads(visit_dir: Path, images: dict) -> list[bytes]:
    import pandas as pd

    config = PackageAlertsConfig()
    config.doWriteAlerts = False
    info = json.loads((visit_dir / "visit.json").read_text())
    result = AlertPackager(config).run(VisitInputs(
        diaSourceCat=pd.read_parquet(visit_dir / "diaSourceCat.parquet"),
        diaObjectCat=pd.read_parquet(visit_dir / "diaObjectCat.parquet"),
        diaSrcHistory=pd.read_parquet(visit_dir / "diaSrcHistory.parquet"),
        diaForcedSources=pd.read_parquet(visit_dir / "diaForcedSources.parquet"),
        ccdExposureIdBits=info["ccdExposureIdBits"],
        **images,
    ))
    return result.alerts.payloads


@pytest.mark.parametrize("compression", [None, "GZIP_1", "GZIP_2", "RICE_1"])
def test_file_paths_give_the_bytes_of_in_memory_ccddata(visit_dir, tmp_path, compression):
    roles = {"diffIm": "difference", "template": "template", "science": "science"}
    paths = {}
    for role, name in roles.items():
        path = visit_dir / f"{name}.fits"
        if compression is not None:
            path = compressed_copy(path, tmp_path / f"{name}.fits", compression)
        paths[role] = path
    lazy = package_payloads(visit_dir, {role: str(path) for role, path in paths.items()})
    in_memory = package_payloads(
        visit_dir, {role: ccddata_from_file(path) for role, path in paths.items()}
    )
    assert len(lazy) == N_SOURCES
    assert lazy == in_memory


def test_file_planes_are_lazy_and_read_only_the_window(visit_dir):
    image = as_survey_image(visit_dir / "difference.fits", name="difference")
    assert isinstance(image.image, LazyPlane) and isinstance(image.mask, LazyPlane)
    with fits.open(visit_dir / "difference.fits") as hdul:
        expected = hdul["VARIANCE"].data[10:40, 250:300]
    np.testing.assert_array_equal(image.variance[10:40, 250:400], expected)
    assert image.mask[5:9, 7:8].dtype == np.int32


@pytest.mark.parametrize(
    ("dtype", "bscale", "bzero"),
    [(">i2", 0.25, 100.0), (">u2", 1.0, 0.0), (">f8", 1.0, 0.0), (">i4", 2.0, -5.0)],
)
def test_scaled_and_big_endian_pixels_equal_astropys_data(tmp_path, dtype, bscale, bzero):
    rng = np.random.default_rng(1)
    header = WCS(naxis=2)
    header.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    header.wcs.crval = [10.0, -5.0]
    header.wcs.cdelt = [-5e-5, 5e-5]
    header = header.to_header()
    header["BUNIT"] = "uJy"
    raw = rng.integers(0, 3000, size=(50, 60)).astype(dtype)
    hdu = fits.PrimaryHDU(raw, header)
    if (bscale, bzero) != (1.0, 0.0):
        hdu.header["BSCALE"], hdu.header["BZERO"] = bscale, bzero
    path = tmp_path / "scaled.fits"
    hdu.writeto(path)
    lazy = as_survey_image(path, name="science")
    with fits.open(path) as hdul:
        eager = as_survey_image(hdul, name="science")
        np.testing.assert_array_equal(np.asarray(lazy.image), eager.image)
        np.testing.assert_array_equal(lazy.image[3:9, 50:70], eager.image[3:9, 50:60])


# --- bad image files through the console script ---------------------------------------------


def _damage(source: Path, target: Path, case: str) -> Path:
    data = source.read_bytes()
    with fits.open(source) as hdul:
        spans = [hdul.fileinfo(i) for i in range(len(hdul))]
        if case in ("missing_hdu", "no_wcs", "unknown_bunit", "different_shapes"):
            hdus = [hdu.copy() for hdu in hdul]
            if case == "missing_hdu":
                del hdus[1]
            elif case == "no_wcs":
                for key in ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2"):
                    del hdus[1].header[key]
                hdus[1].header.remove("A_ORDER", ignore_missing=True)
                for key in [k for k in hdus[1].header if k[:2] in ("A_", "B_", "AP", "BP")]:
                    del hdus[1].header[key]
            elif case == "unknown_bunit":
                hdus[1].header["BUNIT"] = "furlongs"
            else:
                hdus[3] = fits.ImageHDU(np.zeros((10, 10), np.float32), name="VARIANCE")
            fits.HDUList(hdus).writeto(target)
            return target
    if case == "truncated_data":
        target.write_bytes(data[: spans[1]["datLoc"] + 5000])
    elif case == "huge_naxis":
        start = spans[1]["hdrLoc"]
        header = data[start : spans[1]["datLoc"]]
        card = header.index(b"NAXIS1  =")
        patched = header[:card] + f"{'NAXIS1':<8}= {999999999:>20}".ljust(80).encode()
        rest = data[spans[1]["datLoc"] :]
        target.write_bytes(data[:start] + patched + header[card + 80 :] + rest)
    elif case == "truncated_mask_header":
        target.write_bytes(data[: spans[2]["hdrLoc"] + 1000])
    elif case == "damaged_tiles":
        compressed_copy(source, target, "GZIP_2")
        with fits.open(target) as hdul:
            heap_start = hdul.fileinfo(1)["datLoc"] + 8 * SHAPE[0]
        damaged = bytearray(target.read_bytes())
        damaged[heap_start : heap_start + 60000] = bytes(60000)
        target.write_bytes(bytes(damaged))
    return target


def run_package(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alertpack", "package", *arguments],
        capture_output=True, text=True, timeout=180, check=False,
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_hdu", "no IMAGE extension"),
        ("no_wcs", "HDU 1 (IMAGE): the WCS has no celestial axes"),
        ("unknown_bunit", "HDU 1 (IMAGE): BUNIT 'furlongs'"),
        ("different_shapes", "HDU 3 (VARIANCE): extension VARIANCE has shape (10, 10)"),
        ("truncated_data", "HDU 1 (IMAGE): the header declares data up to byte"),
        ("huge_naxis", "HDU 1 (IMAGE): the header declares data up to byte"),
        ("truncated_mask_header", "after HDU 1 (IMAGE) are not a complete FITS HDU"),
        ("damaged_tiles", "HDU 1 (IMAGE): pixels of rows"),
    ],
)
def test_bad_image_file_is_one_line_naming_file_and_hdu(visit_dir, tmp_path, case, expected):
    bad = _damage(visit_dir / "difference.fits", tmp_path / "bad.fits", case)
    out = tmp_path / "out"
    completed = run_package(
        "--sources", str(visit_dir / "diaSourceCat.parquet"),
        "--objects", str(visit_dir / "diaObjectCat.parquet"),
        "--difference", str(bad), "--id-bits", "44", "-o", str(out),
    )
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert str(bad) in lines[0] and expected in lines[0], lines[0]
    assert not out.exists()


def test_bad_visit_json_is_a_clear_error(visit_dir, tmp_path):
    directory = tmp_path / "visit"
    directory.mkdir()
    for name in ("diaSourceCat.parquet", "difference.fits"):
        os.link(visit_dir / name, directory / name)
    (directory / "visit.json").write_bytes(b"\xff\xfe{not json")
    completed = run_package("--visit-dir", str(directory), "-o", str(tmp_path / "out"))
    assert completed.returncode == 2
    assert "visit.json" in completed.stderr and "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


# --- catalog formats ----------------------------------------------------------------------------

FORMATS = {"parquet": ".parquet", "csv": ".csv", "fits": ".fits", "votable": ".vot"}


def write_catalogs(visit_dir: Path, directory: Path, fmt: str) -> None:
    """The visit with its catalogs in ``fmt`` (written with astropy) and its images linked."""
    import pandas as pd

    directory.mkdir()
    for name in ("difference.fits", "template.fits", "science.fits", "visit.json"):
        os.link(visit_dir / name, directory / name)
    for role in CATALOGS:
        source = visit_dir / f"{role}.parquet"
        target = directory / f"{role}{FORMATS[fmt]}"
        if fmt == "parquet":
            os.link(source, target)
        else:
            Table.from_pandas(pd.read_parquet(source)).write(target, format=fmt)


def read_alerts(out: Path) -> tuple[list[dict], int]:
    records = []
    for path in sorted(out.glob("*.avro")):
        with open(path, "rb") as stream:
            _, alerts = retrieve_alerts(stream)
            records.extend(alerts)
    return records, len(records)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_catalog_format_through_the_console_script(visit_dir, tmp_path, fmt):
    directory = tmp_path / "visit"
    write_catalogs(visit_dir, directory, fmt)
    out = tmp_path / "out"
    completed = run_package("--visit-dir", str(directory), "-o", str(out))
    assert completed.returncode == 0, completed.stderr
    alerts, count = read_alerts(out)
    assert count == N_SOURCES
    official = Schema.from_file()
    assert all(official.validate(alert) for alert in alerts)
    with fits.open(visit_dir / "difference.fits") as hdul:
        parent = hdul["IMAGE"].data
    checked = 0
    for alert in alerts:
        with fits.open(io.BytesIO(alert["cutoutDifference"])) as stamp:
            x0, y0 = -int(stamp[0].header["LTV1"]), -int(stamp[0].header["LTV2"])
            pixels = stamp[0].data
        ny, nx = pixels.shape
        if x0 >= 0 and y0 >= 0 and x0 + nx <= SHAPE[1] and y0 + ny <= SHAPE[0]:
            np.testing.assert_array_equal(pixels, parent[y0 : y0 + ny, x0 : x0 + nx])
            checked += 1
    assert checked >= N_SOURCES // 2


def test_catalog_formats_give_the_same_alerts_as_parquet(visit_dir, tmp_path):
    frames = {fmt: None for fmt in FORMATS}
    for fmt in frames:
        path = tmp_path / f"diaSourceCat{FORMATS[fmt]}"
        if fmt == "parquet":
            os.link(visit_dir / "diaSourceCat.parquet", path)
        else:
            import pandas as pd

            Table.from_pandas(pd.read_parquet(visit_dir / "diaSourceCat.parquet")).write(
                path, format=fmt
            )
        frames[fmt] = read_catalog(path, "diaSourceCat")
    config = PackageAlertsConfig()
    config.doWriteAlerts = False
    config.cutouts = []
    payloads = {
        fmt: AlertPackager(config).run(
            VisitInputs(diaSourceCat=frame, ccdExposureIdBits=44)).alerts.payloads
        for fmt, frame in frames.items()
    }
    assert all(payloads[fmt] == payloads["parquet"] for fmt in FORMATS)


def test_catalog_lacking_a_column_names_the_file(visit_dir, tmp_path):
    import pandas as pd

    directory = tmp_path / "visit"
    directory.mkdir()
    for name in ("difference.fits", "visit.json"):
        os.link(visit_dir / name, directory / name)
    frame = pd.read_parquet(visit_dir / "diaSourceCat.parquet").drop(columns=["ra"])
    frame.to_csv(directory / "diaSourceCat.csv", index=False)
    completed = run_package("--visit-dir", str(directory), "-o", str(tmp_path / "out"))
    assert completed.returncode == 2
    line = completed.stderr.strip()
    assert f"diaSourceCat (file {directory / 'diaSourceCat.csv'}) lacks column(s) ra" in line
    assert not (tmp_path / "out").exists()


def test_unreadable_and_unknown_catalog_files(tmp_path):
    from alertpack.errors import CatalogFileError

    garbage = tmp_path / "sources.vot"
    garbage.write_text("<VOTABLE garbage")
    with pytest.raises(CatalogFileError, match=r"sources.vot is not a readable VOTable"):
        read_catalog(garbage, "diaSourceCat")
    with pytest.raises(CatalogFileError, match="unknown catalog format"):
        read_catalog(tmp_path / "sources.txt", "diaSourceCat")
    vector = tmp_path / "vector.fits"
    Table({"ra": np.zeros((3, 2))}).write(vector)
    with pytest.raises(CatalogFileError, match="column 'ra' holds arrays"):
        read_catalog(vector, "diaSourceCat")


def test_name_catalog_files_names_each_role_once():
    from alertpack.errors import InputError

    error = InputError("diaObjectCat has no row for diaObjectId 5 of diaSourceCat row 2")
    named = name_catalog_files(error, {"diaObjectCat": Path("o.csv"), "ssSource": Path("s.csv")})
    assert str(named) == (
        "diaObjectCat (file o.csv) has no row for diaObjectId 5 of diaSourceCat row 2"
    )
    assert name_catalog_files(error, {}) is error


def test_dropped_file_images_leave_no_open_files(visit_dir, tmp_path):
    import gc

    gzip = compressed_copy(visit_dir / "difference.fits", tmp_path / "gzip.fits", "GZIP_2")
    before = len(os.listdir("/proc/self/fd"))
    gc.disable()  # the files must close by reference counting alone, as in a busy worker
    try:
        for _ in range(5):
            for path in (visit_dir / "difference.fits", gzip):
                image = as_survey_image(path, name="difference")
                image.image[0:20, 0:20]
                del image
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        gc.enable()


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_damaged_hdulist_is_an_image_input_error(visit_dir, tmp_path):
    from alertpack.errors import ImageInputError

    bad = _damage(visit_dir / "difference.fits", tmp_path / "bad.fits", "truncated_data")
    with fits.open(bad) as hdul, pytest.raises(ImageInputError, match="the HDUList"):
        as_survey_image(hdul, name="difference")
