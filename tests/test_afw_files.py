"""Exposures laid out as the Rubin pipelines write them (`alertpack.sample.afw_files`), packaged
through the console script: every era of afw's unit keys, every butler write recipe, templates
without BUNIT, pre-2021 files with EXTTYPE only, PSFs from the archive or beside the file.

The oracle of the stamps is astropy reading the written file whole (decompressing every tile),
times the PhotoCalib the generator wrote; alerts validate against lsst.alert.packet's schema.
"""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, VarianceUncertainty
from astropy.wcs import WCS, FITSFixedWarning
from lsst.alert.packet import Schema, retrieve_alerts

from alertpack.errors import ImageInputError
from alertpack.inputs.afw_archive import AfwArchive
from alertpack.inputs.images import as_survey_image
from alertpack.sample import make_visit
from alertpack.sample.afw_files import write_afw_exposure, write_afw_visit
from alertpack.sample.files import write_visit_catalogs
from alertpack.tools.fitsverify import run_fitsverify

CALIBRATION = 0.57  # nJy per count of the counts-era files
IMAGES = {"cutoutDifference": "difference", "cutoutScience": "science",
          "cutoutTemplate": "template"}


@pytest.fixture(scope="module")
def visit():
    visit = make_visit(8, (300, 320), seed=3)
    rng = np.random.default_rng(5)
    for image in (visit.difference, visit.science, visit.template):
        # real variance planes fluctuate with the pixels: lossy16 then quantizes them too
        image.uncertainty.array[...] *= rng.uniform(0.9, 1.1, image.data.shape).astype(np.float32)
    return visit


def _package(directory: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alertpack.cli", "package", "--visit-dir", str(directory),
         "--id-bits", "50", "-o", str(out), *extra],
        capture_output=True, text=True, timeout=300,
    )


def _alerts(out: Path) -> list[dict]:
    files = sorted(out.glob("*.avro"))
    assert len(files) == 1
    with open(files[0], "rb") as stream:
        _, alerts = retrieve_alerts(stream)
        alerts = list(alerts)
    official = Schema.from_file()
    assert alerts and all(official.validate(alert) for alert in alerts)
    return alerts


def _file_planes(path: Path) -> tuple[dict[str, np.ndarray], WCS]:
    """The planes as astropy reads the whole file, found by EXTTYPE, and the image's WCS."""
    with fits.open(path) as hdul:
        planes = {str(hdu.header.get("EXTTYPE")): np.array(hdu.data) for hdu in hdul
                  if hdu.header.get("EXTTYPE") in ("IMAGE", "MASK", "VARIANCE")}
        image = next(hdu for hdu in hdul if hdu.header.get("EXTTYPE") == "IMAGE")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)  # the LINEAR 'A' WCS
            wcs = WCS(image.header)
    return planes, wcs


def _check_stamp(blob: bytes, planes: dict[str, np.ndarray], wcs: WCS, scale: float) -> None:
    """Stamp pixels, variance and mask are the file's window; its WCS the file's."""
    with fits.open(io.BytesIO(blob)) as stamp:
        x0, y0 = -int(stamp[0].header["LTV1"]), -int(stamp[0].header["LTV2"])
        ny, nx = stamp[0].data.shape
        ys, xs = slice(max(y0, 0), y0 + ny), slice(max(x0, 0), x0 + nx)
        inside = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
        window = (ys, xs)
        expected = planes["IMAGE"][window]
        if scale != 1.0:
            np.testing.assert_allclose(stamp[0].data[inside], expected * scale, rtol=1e-6)
            np.testing.assert_allclose(stamp["UNCERT"].data[inside],
                                       planes["VARIANCE"][window] * scale**2, rtol=1e-6)
        else:  # nJy already: bit for bit, lossy16's quantized values included
            np.testing.assert_array_equal(stamp[0].data[inside], expected)
            np.testing.assert_array_equal(stamp["UNCERT"].data[inside], planes["VARIANCE"][window])
        np.testing.assert_array_equal(stamp["MASK"].data[inside], planes["MASK"][window])
        assert stamp["MASK"].header["MP_DETECTED"] == 5
        assert stamp[0].header["HASPSF"] is False and "PSFIMAGE" not in stamp
        local = WCS(stamp[0].header)
        grid = np.array([[0.0, 0.0], [nx - 1.0, 0.0], [0.0, ny - 1.0], [nx / 2, ny / 3]])
        world = local.pixel_to_world_values(grid[:, 0], grid[:, 1])
        back = np.column_stack(wcs.world_to_pixel_values(*world)) - [x0, y0]
        assert np.max(np.abs(back - grid)) < 1e-8  # px (about 4e-10 measured)


LAYOUTS = [("2025", None), ("2025", "lossless"), ("2025", "lossy16"), ("2024", "lossless"),
           ("counts", "lossless"), ("pre2021", None)]


@pytest.mark.parametrize(("layout", "compression"), LAYOUTS,
                         ids=[f"{a}-{b or 'plain'}" for a, b in LAYOUTS])
def test_afw_exposures_package_to_their_pixels_in_njy(visit, tmp_path, layout, compression):
    directory = tmp_path / "det"
    write_afw_visit(visit, directory, layout=layout, compression=compression,
                    calibration=CALIBRATION)
    with fits.open(directory / "template.fits") as hdul:  # templates carry no BUNIT at all
        assert all("BUNIT" not in hdu.header for hdu in hdul)
    with fits.open(directory / "difference.fits") as hdul:
        assert "MJD-OBS" not in hdul[0].header and hdul[0].header["TIMESYS"] == "TAI"
        assert ("IMAGE" in hdul) == (layout != "pre2021")  # EXTNAME only since May 2021
        if compression != "lossy16":  # plain and lossless: the very pixels
            scale = CALIBRATION if layout in ("counts", "pre2021") else 1.0
            expected = (visit.difference.data / np.float32(scale)).astype(np.float32)
            np.testing.assert_array_equal(hdul[1].data, expected)
    run = _package(directory, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    alerts = _alerts(tmp_path / "out")
    scale = CALIBRATION if layout in ("counts", "pre2021") else 1.0
    for field, name in IMAGES.items():
        planes, wcs = _file_planes(directory / f"{name}.fits")
        for alert in alerts:
            if alert[field] is not None:
                _check_stamp(alert[field], planes, wcs, 1.0 if name == "template" else scale)
    assert sum(alert["cutoutTemplate"] is not None for alert in alerts) >= len(alerts) - 3
    # no stamp has a PSF: the archive's PiffPsf and CoaddPsf need the LSST stack; each image
    # warns once, and the summary counts the stamps
    warnings = [line for line in run.stderr.splitlines() if "no PSF for the" in line]
    assert len(warnings) == 3
    assert any("CoaddPsf" in line and "template image" in line for line in warnings)
    assert any("PiffPsf" in line and "difference image" in line for line in warnings)
    n_template = sum(alert["cutoutTemplate"] is not None for alert in alerts)
    assert f"{n_template} template:NO_PSF" in run.stdout
    assert run_fitsverify(alerts[0]["cutoutDifference"]) == []


def test_the_generated_files_are_standard_fits(visit, tmp_path):
    for layout, compression in (("2025", "lossy16"), ("pre2021", None)):
        path = write_afw_exposure(visit.difference, tmp_path / f"{layout}.fits",
                                  visit_info=_info(visit), layout=layout, compression=compression)
        problems = run_fitsverify(path.read_bytes())
        # afw's own files draw these warnings: MASK's valueless BUNIT, the index's dotted names
        afw_traits = [p for p in problems if "BUNIT has a null value" in p or '"cat.' in p]
        assert problems == afw_traits and len(afw_traits) in (2, 3), (layout, problems)


def _info(visit):
    from alertpack.sample.afw_files import visit_info_of

    return visit_info_of(visit)


def test_lossy16_quantizes_with_one_step_per_plane(visit, tmp_path):
    path = write_afw_exposure(visit.difference, tmp_path / "lossy.fits", visit_info=_info(visit),
                              compression="lossy16")
    with fits.open(path, disable_image_compression=True) as raw:
        for name in ("IMAGE", "VARIANCE"):
            table = raw[name]
            assert table.header["ZCMPTYPE"] == "RICE_1"
            assert table.header["ZQUANTIZ"] == "SUBTRACTIVE_DITHER_2"
            steps = np.unique(table.data["ZSCALE"])
            assert len(steps) == 1 and steps[0] == pytest.approx(table.header["UZSCALE"])
            assert table.header["ZTILE2"] == 1
        assert raw["MASK"].header["ZCMPTYPE"] == "GZIP_2"
    with fits.open(path) as hdul:
        image = hdul["IMAGE"].data
        nan = ~np.isfinite(visit.difference.data)
        assert nan.any() and np.isnan(image[nan]).all()  # NaN through ZBLANK
        error = np.abs(image - visit.difference.data)[~nan]
        assert 0 < error.max() <= hdul["IMAGE"].header["UZSCALE"]  # lossy, within one step


def test_the_archive_gives_photocalib_and_psf_classes(visit, tmp_path):
    path = write_afw_exposure(visit.template, tmp_path / "t.fits", visit_info=_info(visit),
                              template=True, layout="pre2021")
    with fits.open(path) as hdul:
        archive = AfwArchive.from_hdulist(hdul, "template image")
        assert archive is not None
        assert archive.photo_calib_mean() == 1.0 and archive.class_of("PSF") == "CoaddPsf"
        assert archive.class_of("FILTER") == "FilterLabel" and archive.class_of("NOPE") is None
        psf, reason = archive.psf()
        assert psf is None and "CoaddPsf" in str(reason)


def test_a_gaussian_psf_in_the_archive_reaches_every_stamp(visit, tmp_path):
    path = write_afw_exposure(visit.difference, tmp_path / "g.fits", visit_info=_info(visit),
                              psf_class="GaussianPsf")
    image = as_survey_image(path, name="difference")
    sigma = float(visit.difference.meta["SEEING"]) / 0.2 / 2.3548
    y, x = np.mgrid[-12:13, -12:13]
    expected = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    np.testing.assert_allclose(image.psf, expected / expected.sum(), rtol=1e-6)
    assert image.psf_note is None


def test_psf_files_beside_the_images(visit, tmp_path):
    directory = tmp_path / "det"
    write_afw_visit(visit, directory)
    psf = np.outer(np.hanning(15), np.hanning(15)).astype(np.float32)
    fits.PrimaryHDU(psf / psf.sum()).writeto(directory / "psf.fits")
    template_psf = tmp_path / "tpsf.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((5, 5), np.float32) / 25,
                                                   name="PSF")]).writeto(template_psf)
    run = _package(directory, tmp_path / "out", "--psf", f"template={template_psf}")
    assert run.returncode == 0, run.stderr
    assert "no PSF" not in run.stderr and "NO_PSF" not in run.stdout
    for alert in _alerts(tmp_path / "out"):
        for field, expected in (("cutoutDifference", psf / psf.sum()),
                                ("cutoutScience", psf / psf.sum()),
                                ("cutoutTemplate", np.full((5, 5), 1 / 25, np.float32))):
            if alert[field] is None:
                continue
            with fits.open(io.BytesIO(alert[field])) as stamp:
                assert stamp[0].header["HASPSF"] is True
                np.testing.assert_array_equal(stamp["PSFIMAGE"].data, expected)


def test_no_unit_anywhere_names_the_file_and_what_to_pass(visit, tmp_path):
    directory = tmp_path / "det"
    write_afw_visit(visit, directory)
    # a template written without afw's archive, and without BUNIT: nothing says its unit
    template = visit.template
    header = template.wcs.to_header(relax=True)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.asarray(template.data), header=header,
                                                   name="IMAGE")]).writeto(
        directory / "template.fits", overwrite=True)
    run = _package(directory, tmp_path / "out")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"template image ({directory / 'template.fits'}), HDU 1 (IMAGE): no BUNIT" in run.stderr
    assert "no PhotoCalib" in run.stderr and "--calibration template=" in run.stderr
    assert not (tmp_path / "out").exists()  # before any output
    run = _package(directory, tmp_path / "out", "--calibration", "template=1")
    assert run.returncode == 0, run.stderr
    assert all(alert["cutoutTemplate"] is not None for alert in _alerts(tmp_path / "out")[:3])
    # the same through visit.json, for every detector of a visit
    (directory / "visit.json").write_text('{"calibration": {"template": 1.0}}')
    run = _package(directory, tmp_path / "again")
    assert run.returncode == 0, run.stderr


def test_calibration_option_values_are_checked(tmp_path):
    directory = tmp_path / "det"
    write_visit_catalogs(make_visit(4, (100, 120)), directory)
    for value, message in (("template", "expected IMAGE=NJY"), ("calexp=1", "IMAGE one of"),
                           ("template=-1", "positive number")):
        run = _package(directory, tmp_path / "out", "--calibration", value)
        assert run.returncode == 2 and message in run.stderr, run.stderr


def test_counts_without_photocalib_or_calibration_is_refused_in_python(visit, tmp_path):
    path = tmp_path / "counts.fits"
    ccd = CCDData(np.asarray(visit.difference.data), unit="adu", wcs=visit.difference.wcs,
                  uncertainty=VarianceUncertainty(visit.difference.uncertainty.array))
    ccd.write(path)
    with pytest.raises(ImageInputError, match="calibration"):
        as_survey_image(path, name="difference")
    assert as_survey_image(path, name="difference", calibration=0.5).photo_calib == 0.5


def test_damaged_archives_are_one_line_naming_the_file(visit, tmp_path):
    path = write_afw_exposure(visit.difference, tmp_path / "d.fits", visit_info=_info(visit))
    with fits.open(path) as hdul:
        hdul["IMAGE"].header.remove("BUNIT")  # so that the PhotoCalib gives the unit
        hdul[0].header["ARCHIVE_ID_PHOTOCALIB"] = 99
        hdul.writeto(tmp_path / "wrong_id.fits")
        hdul[0].header["ARCHIVE_ID_PHOTOCALIB"] = 4
        hdul["PhotoCalib"].header["AR_CATN"] = 7
        hdul.writeto(tmp_path / "wrong_table.fits")
    with pytest.raises(ImageInputError, match=r"PHOTOCALIB archive id 99.*does not list"):
        as_survey_image(tmp_path / "wrong_id.fits", name="difference")
    with pytest.raises(ImageInputError, match=r"wrong_table.fits.*is not archive table"):
        as_survey_image(tmp_path / "wrong_table.fits", name="difference")


def test_the_apdb_visit_time_comes_from_date_avg(visit, tmp_path):
    pytest.importorskip("lsst.sphgeom")
    from alertpack.inputs.apdb import region_from_fits

    path = write_afw_exposure(visit.difference, tmp_path / "d.fits", visit_info=_info(visit),
                              compression="lossless")
    _, mjd = region_from_fits(path)
    assert mjd == pytest.approx(visit.midpointMjdTai, abs=1e-8)  # DATE-AVG, TAI; no MJD-OBS


def test_the_task_counts_stamps_without_psf_in_its_metadata(visit, tmp_path):
    from alertpack.config import PackageAlertsConfig
    from alertpack.task import PackageAlertsTask

    directory = tmp_path / "det"
    write_afw_visit(visit, directory)
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(tmp_path / "out")
    kwargs = visit.run_kwargs()
    kwargs.update(diffIm=str(directory / "difference.fits"),
                  template=str(directory / "template.fits"), science=None)
    with PackageAlertsTask(config=config) as task:
        result = task.run(**kwargs)
        metadata = task.getFullMetadata().to_dict()["packageAlerts"]
    n_difference = sum(alert["cutoutDifference"] is not None for alert in result.alerts)
    assert metadata["cutouts_difference_NO_PSF"] == n_difference > 0
    assert "template PSF" in result.absent and "science" in result.absent
    _alerts(tmp_path / "out")


def test_the_visit_keys_of_afw_files_reach_the_survey_image(visit, tmp_path):
    from alertpack.sample.afw_files import AfwVisitInfo

    info = AfwVisitInfo(visit_id=visit.visit, exposure_id=7, midpoint_mjd_tai=61370.25,
                        rotation_deg=33.5, reason="template_building", target="field 9")
    path = write_afw_exposure(visit.science, tmp_path / "s.fits", visit_info=info,
                              layout="pre2021", compression="lossless")
    got = as_survey_image(path, name="science").visit_info
    assert (got.visit_id, got.exposure_id, got.exposure_time_s) == (visit.visit, 7, 30.0)
    assert got.midpoint_mjd_tai == pytest.approx(61370.25, abs=1e-9)
    assert (got.boresight_rotation_deg, got.rotation_type) == (33.5, "SKY")
    assert (got.observation_reason, got.target_name) == ("template_building", "field 9")
