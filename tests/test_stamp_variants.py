"""Packets brokers want: lean stamps, compressed variants, north-up stamps, read back by all."""

from __future__ import annotations

import gzip
import io
import logging
import math
import warnings
import zlib

import astropy.units as u
import fastavro
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, VarianceUncertainty
from astropy.wcs import WCS, Sip

from alertpack.config import PackageAlertsConfig
from alertpack.core import AlertPackager
from alertpack.errors import CutoutDecodeError, InputError
from alertpack.inputs.images import as_survey_image
from alertpack.packets.cutouts import extract_stamps
from alertpack.packets.stamp import NO_DATA_PLANE, CutoutStatus
from alertpack.packets.stamp_compression import (
    CUTOUT_COMPRESSIONS,
    decode_stamp,
    encode_stamp,
    stamp_variant,
)
from alertpack.packets.stamp_fits import stamp_fits_bytes
from alertpack.packets.survey_image import SurveyImage, VisitInfo
from alertpack.reference.cutouts import lsst_cutout_bytes
from alertpack.sample import make_visit
from alertpack.tools.fitsverify import run_fitsverify

FIELDS = ("cutoutDifference", "cutoutScience", "cutoutTemplate")


@pytest.fixture(scope="module")
def visit():
    return make_visit(n_sources=12, image_shape=(700, 760), seed=5, n_edge=2)


@pytest.fixture(scope="module")
def difference(visit):
    return as_survey_image(visit.run_kwargs()["diffIm"], name="difference")


def _positions(visit):
    sources = visit.run_kwargs()["diaSourceCat"]
    return np.asarray(sources["ra"], float), np.asarray(sources["dec"], float)


def _first_stamp(image, visit, size):
    stamps, _ = extract_stamps(image, *_positions(visit), size)
    return next(stamp for stamp in stamps if stamp is not None and stamp.status == 0)


def _lsst_bytes(stamp, image, *, hdu_flags):
    start = (stamp.origin[0] - image.origin[0], stamp.origin[1] - image.origin[1])
    return lsst_cutout_bytes(
        np.array(stamp.image), np.array(stamp.variance), np.array(stamp.mask),
        parent_wcs=image.wcs, start=start, ra=stamp.ra, dec=stamp.dec, psf=stamp.psf,
        rotpa=stamp.rotation_angle, xy0=image.origin, hdu_flags=hdu_flags,
    )


# --- the lean default --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [30, 64, 102])
def test_default_stamps_are_within_a_tenth_of_lssts_writer_for_the_same_planes(
    difference, visit, size
):
    stamp = _first_stamp(difference, visit, size)
    ours = stamp_fits_bytes(stamp)
    same_planes = _lsst_bytes(stamp, difference, hdu_flags="MASK")
    assert len(ours) <= 1.10 * len(same_planes)
    with fits.open(io.BytesIO(ours)) as mine, fits.open(io.BytesIO(same_planes)) as theirs:
        assert [hdu.name for hdu in theirs] == ["PRIMARY", "UNCERT", "MASK", "PSFIMAGE"]
        np.testing.assert_array_equal(mine[0].data, theirs[0].data)
        np.testing.assert_array_equal(mine["UNCERT"].data, theirs["UNCERT"].data)
        np.testing.assert_array_equal(mine["MASK"].data, theirs["MASK"].data)
        np.testing.assert_array_equal(mine["PSFIMAGE"].data, theirs["PSFIMAGE"].data)
        # the origin and rotation cards as LSST's own cutouts carry them
        for key in ("CUTMINX", "CUTMINY"):
            assert mine[0].header[key] == theirs[0].header[key]
        assert mine[0].header["ROTPA"] == pytest.approx(theirs[0].header["ROTPA"], abs=1e-12)
    # each header card once: the extensions carry only their own
    with fits.open(io.BytesIO(ours)) as hdus:
        keys = [card.keyword for hdu in hdus for card in hdu.header.cards
                if card.keyword not in ("XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2",
                                        "PCOUNT", "GCOUNT", "EXTNAME", "INHERIT", "BUNIT")]
        assert len(keys) == len(set(keys))
    assert run_fitsverify(ours) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ccd = CCDData.read(io.BytesIO(ours))
    assert ccd.unit == u.nJy and isinstance(ccd.uncertainty, VarianceUncertainty)
    assert ccd.wcs.sip is not None


def _expected_bitpix(mask: np.ndarray) -> int:
    highest = int(np.asarray(mask).max()).bit_length() - 1
    return 8 if highest <= 7 else 16 if highest <= 14 else 32


def test_mask_is_stored_in_the_smallest_type_that_holds_its_bits(difference, visit):
    stamp = _first_stamp(difference, visit, 30)
    with fits.open(io.BytesIO(stamp_fits_bytes(stamp))) as hdus:
        assert hdus["MASK"].header["BITPIX"] == _expected_bitpix(stamp.mask)
        assert (hdus["MASK"].data == stamp.mask).all()
    # Rubin declares ~20 planes: a high plane no pixel of the stamp has does not widen it
    high = SurveyImage(
        difference.image, difference.variance, difference.mask,
        {**difference.mask_planes, "STREAK": 20}, difference.wcs, name="difference",
    )
    stamp = _first_stamp(high, visit, 30)
    with fits.open(io.BytesIO(stamp_fits_bytes(stamp))) as hdus:
        assert hdus["MASK"].header["BITPIX"] == _expected_bitpix(stamp.mask) < 32
        assert hdus["MASK"].header["MP_STREAK"] == 20
    for bit, bitpix in ((7, 8), (8, 16), (14, 16), (15, 32), (20, 32)):
        stamp.mask = np.zeros_like(np.asarray(stamp.mask))
        stamp.mask[0, 0] = 1 << bit
        with fits.open(io.BytesIO(stamp_fits_bytes(stamp))) as hdus:
            assert hdus["MASK"].header["BITPIX"] == bitpix
            assert hdus["MASK"].data[0, 0] == 1 << bit


def test_rotpa_comes_from_the_boresight_rotation_or_else_the_wcs(difference, visit):
    stamp = _first_stamp(difference, visit, 31)
    header = fits.getheader(io.BytesIO(stamp_fits_bytes(stamp)))
    assert header.comments["ROTPA"].endswith("from WCS")
    # the sample WCS is rotated: the centre's +y angle is close to the stamp's own
    assert header["ROTPA"] == pytest.approx(header["ORIENTAT"], abs=1.0)
    for rotation_type, expected in (("SKY", 123.25), (None, 123.25), ("HORIZON", None)):
        image = SurveyImage(
            difference.image, difference.variance, difference.mask, difference.mask_planes,
            difference.wcs, name="difference",
            visit_info=VisitInfo(boresight_rotation_deg=123.25, rotation_type=rotation_type),
        )
        header = fits.getheader(io.BytesIO(stamp_fits_bytes(_first_stamp(image, visit, 31))))
        if expected is None:  # not an angle on the sky: the WCS says it
            assert header["ROTPA"] != 123.25 and header.comments["ROTPA"].endswith("from WCS")
        else:
            assert header["ROTPA"] == expected and "boresight" in header.comments["ROTPA"]


# --- compressed variants -----------------------------------------------------------------------


def _planes(data: bytes) -> dict[str, np.ndarray]:
    with fits.open(io.BytesIO(decode_stamp(data))) as hdus:
        return {hdu.name: np.array(hdu.data) for hdu in hdus if hdu.data is not None}


@pytest.mark.parametrize("compression", ["gzip", "lossless"])
def test_lossless_variants_keep_every_pixel(difference, visit, compression):
    stamps, _ = extract_stamps(difference, *_positions(visit), 30)
    padded = next(s for s in stamps if s is not None and s.status == CutoutStatus.PADDED)
    for stamp in (_first_stamp(difference, visit, 30), padded):
        data = encode_stamp(stamp, compression)
        assert stamp_variant(data) == compression
        planes = _planes(data)
        np.testing.assert_array_equal(planes["IMAGE"], stamp.image)
        np.testing.assert_array_equal(planes["UNCERT"], stamp.variance)
        np.testing.assert_array_equal(planes["MASK"], stamp.mask)
        np.testing.assert_array_equal(planes["PSFIMAGE"], stamp.psf)
    header = fits.getheader(io.BytesIO(stamp_fits_bytes(padded)))
    assert fits.getheader(io.BytesIO(decode_stamp(data)), "IMAGE")["CRPIX1"] == header["CRPIX1"]


def test_gzip_stamps_follow_the_ztf_convention(difference, visit, tmp_path):
    stamp = _first_stamp(difference, visit, 30)
    data = encode_stamp(stamp, "gzip")
    assert len(data) <= 0.5 * len(stamp_fits_bytes(stamp))
    assert gzip.decompress(data) == stamp_fits_bytes(stamp)  # the plain stamp, gzipped whole
    with fits.open(gzip.GzipFile(fileobj=io.BytesIO(data))) as hdus:
        np.testing.assert_array_equal(hdus[0].data, stamp.image)
    path = tmp_path / "stamp.fits.gz"
    path.write_bytes(data)
    with fits.open(path) as hdus:  # astropy opens it with no arguments from a file
        np.testing.assert_array_equal(hdus["UNCERT"].data, stamp.variance)
    with pytest.raises(OSError):  # but not from the bytes as they are
        fits.open(io.BytesIO(data))
    assert run_fitsverify(gzip.decompress(data)) == []


@pytest.mark.parametrize("compression", ["lossless", "lossy16"])
def test_tile_compressed_stamps_open_as_they_are(difference, visit, compression):
    stamp = _first_stamp(difference, visit, 64)
    data = encode_stamp(stamp, compression)
    assert run_fitsverify(data) == []
    with fits.open(io.BytesIO(data)) as hdus:
        assert [hdu.name for hdu in hdus] == ["PRIMARY", "IMAGE", "UNCERT", "MASK", "PSFIMAGE"]
        assert all(isinstance(hdu, fits.CompImageHDU) for hdu in hdus[1:])
        assert hdus["IMAGE"].data.shape == (64, 64)
        np.testing.assert_array_equal(hdus["MASK"].data, stamp.mask)
        np.testing.assert_array_equal(hdus["PSFIMAGE"].data, stamp.psf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ccd = CCDData.read(io.BytesIO(data), hdu="IMAGE")
    assert ccd.unit == u.nJy and isinstance(ccd.uncertainty, VarianceUncertainty)
    jj, ii = np.mgrid[0:64:7, 0:64:7]
    np.testing.assert_allclose(
        ccd.wcs.all_pix2world(ii.ravel(), jj.ravel(), 0),
        stamp.wcs.all_pix2world(ii.ravel(), jj.ravel(), 0), rtol=0, atol=1e-12,
    )


def _psf_flux(image, variance, psf):
    """Optimal (PSF-weighted) flux of a source at the stamp centre, and its error."""
    n, m = image.shape[0], psf.shape[0]
    start = (n - m) // 2
    cut = image[start : start + m, start : start + m].astype(float)
    var = variance[start : start + m, start : start + m].astype(float)
    weight = psf / var
    norm = np.sum(psf * weight)
    return float(np.sum(weight * cut) / norm), float(1 / math.sqrt(norm))


def test_lossy16_error_is_bounded_by_a_sixteenth_sigma_and_photometry_kept(difference, visit):
    stamps, _ = extract_stamps(difference, *_positions(visit), 31)
    checked = 0
    for stamp in stamps:
        if stamp is None:
            continue
        data = encode_stamp(stamp, "lossy16")
        assert stamp_variant(data) == "lossy16"
        planes = _planes(data)
        header = fits.getheader(io.BytesIO(decode_stamp(data)), "IMAGE")
        sigma = np.sqrt(stamp.variance)
        finite = np.isfinite(stamp.image)
        error = np.abs(planes["IMAGE"][finite] - stamp.image[finite])
        assert error.max() <= header["QERRMAX"] * (1 + 1e-6)
        assert np.all(error <= sigma[finite] / 16)
        assert header["QSTEP"] == pytest.approx(np.nanmin(sigma) / 16, rel=1e-6)
        # NaN (off the detector) stays NaN, the mask and the PSF stay exact
        np.testing.assert_array_equal(np.isnan(planes["IMAGE"]), ~finite)
        np.testing.assert_array_equal(planes["MASK"], stamp.mask)
        np.testing.assert_array_equal(planes["PSFIMAGE"], stamp.psf)
        np.testing.assert_allclose(planes["UNCERT"], stamp.variance, rtol=1e-3)
        if np.all(finite):
            flux, flux_error = _psf_flux(stamp.image, stamp.variance, stamp.psf)
            lossy, _ = _psf_flux(planes["IMAGE"], planes["UNCERT"], stamp.psf)
            # quantization noise is sigma/(16 sqrt 12) a pixel: a fiftieth of the flux error
            assert abs(lossy - flux) < 0.1 * flux_error
            checked += 1
    assert checked >= 5
    # exact zeros survive the dither (SUBTRACTIVE_DITHER_2)
    stamp = _first_stamp(difference, visit, 31)
    stamp.image = np.array(stamp.image)
    stamp.image[3:6, 3:6] = 0.0
    assert np.all(_planes(encode_stamp(stamp, "lossy16"))["IMAGE"][3:6, 3:6] == 0.0)


def test_compressed_variants_are_smaller_where_they_should_be(difference, visit):
    for size in (30, 102):
        stamp = _first_stamp(difference, visit, size)
        plain = len(stamp_fits_bytes(stamp))
        sizes = {name: len(encode_stamp(stamp, name)) for name in CUTOUT_COMPRESSIONS}
        assert sizes["none"] == plain
        assert sizes["gzip"] < 0.5 * plain
        assert sizes["lossy16"] <= sizes["lossless"] <= plain
    assert sizes["lossless"] < 0.7 * plain  # at 102 px tile compression pays


def test_decode_stamp_is_bounded_and_says_what_is_wrong(difference, visit):
    stamp = _first_stamp(difference, visit, 30)
    with pytest.raises(CutoutDecodeError, match="inflates to more than 1000 bytes"):
        decode_stamp(encode_stamp(stamp, "gzip"), max_bytes=1000)
    bomb = gzip.compress(b"SIMPLE  =" + bytes(50_000_000), compresslevel=9)
    with pytest.raises(CutoutDecodeError, match="more than"):
        decode_stamp(bomb, max_bytes=10_000_000)
    with pytest.raises(CutoutDecodeError, match="declares more than 10000 bytes"):
        decode_stamp(encode_stamp(stamp, "lossless"), max_bytes=10_000)
    with pytest.raises(CutoutDecodeError, match="truncated"):
        decode_stamp(encode_stamp(stamp, "gzip")[:-40])
    with pytest.raises(CutoutDecodeError, match="neither FITS nor gzipped FITS"):
        decode_stamp(b"PNG and other things" * 10)
    with pytest.raises(CutoutDecodeError, match="gzipped twice"):
        decode_stamp(gzip.compress(encode_stamp(stamp, "gzip")))
    assert stamp_variant(b"not a stamp") == "unknown"
    assert decode_stamp(stamp_fits_bytes(stamp)) == stamp_fits_bytes(stamp)
    with pytest.raises(InputError, match="not one of none, gzip, lossless, lossy16"):
        encode_stamp(stamp, "bzip2")


def test_config_choices_are_the_packet_codes():
    config = PackageAlertsConfig()
    assert set(config._fields["cutoutCompression"].allowed) - {None} == set(CUTOUT_COMPRESSIONS)
    from alertpack.packets.stamp_orientation import CUTOUT_ORIENTATIONS

    assert set(config._fields["cutoutOrientation"].allowed) - {None} == set(CUTOUT_ORIENTATIONS)


# --- north up ----------------------------------------------------------------------------------


def _aligned_image(rotation_deg: float, *, mirrored: bool = False) -> SurveyImage:
    """A TAN-SIP image whose +y points ``rotation_deg`` east of north."""
    ny, nx = 300, 320
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    wcs.wcs.crval = [30.0, -20.0]
    wcs.wcs.crpix = [140.5, 170.5]
    t = math.radians(rotation_deg)
    parity = -1.0 if mirrored else 1.0
    scale = 0.2 / 3600
    wcs.wcs.cd = scale * np.array([[-parity * math.cos(t), math.sin(t)],
                                   [parity * math.sin(t), math.cos(t)]])
    a, b = np.zeros((4, 4)), np.zeros((4, 4))
    a[2, 0], a[1, 1], a[0, 3], b[0, 2], b[2, 1], b[3, 0] = 4e-6, -2e-6, 1e-8, 3e-6, 2e-8, -1e-8
    wcs.sip = Sip(a, b, None, None, wcs.wcs.crpix)
    wcs.wcs.set()
    rng = np.random.default_rng(3)
    return SurveyImage(
        rng.normal(0, 10, (ny, nx)).astype(np.float32),
        rng.uniform(90, 110, (ny, nx)).astype(np.float32),
        (rng.random((ny, nx)) < 0.05).astype(np.int32) * 4,
        {"BAD": 0, "SAT": 1, "CR": 2},
        wcs, origin=(1000, 2000), name="science",
    )


@pytest.mark.parametrize(("rotation", "mirrored"), [
    (0.0, False), (90.0, False), (180.3, False), (270.0, False), (0.0, True), (89.8, True),
])
def test_north_up_by_an_exact_flip_keeps_pixels_and_wcs(rotation, mirrored):
    image = _aligned_image(rotation, mirrored=mirrored)
    x, y = np.array([100.3, 200.6]), np.array([120.2, 150.9])
    ra, dec = image.wcs.all_pix2world(x, y, 0)
    stamps, status = extract_stamps(image, ra, dec, 31, orientation="north-up")
    native, _ = extract_stamps(image, ra, dec, 31)
    assert status.tolist() == [0, 0]
    for stamp, original in zip(stamps, native, strict=True):
        assert stamp.orientation  # the header says what was done
        assert not stamp.orientation.startswith("reproject")
        assert abs((stamp.position_angle + 180) % 360 - 180) < 1.0
        # same pixel values, only moved; each still sits where the parent WCS puts it
        assert sorted(stamp.image.ravel()) == sorted(original.image.ravel())
        wcs = WCS(fits.getheader(io.BytesIO(stamp_fits_bytes(stamp))))
        jj, ii = np.mgrid[0:31, 0:31]
        sky = wcs.all_pix2world(ii.ravel(), jj.ravel(), 0)
        px, py = image.wcs.all_world2pix(*sky, 0)
        parent = image.image[np.rint(py).astype(int), np.rint(px).astype(int)]
        np.testing.assert_allclose(px, np.rint(px), atol=1e-6)
        np.testing.assert_array_equal(stamp.image.ravel(), parent)
        # north is up, east left
        east, north = _sky_axes(wcs, 15, 15)
        assert north[1] > 0.99 and east[0] < -0.99
        header = fits.getheader(io.BytesIO(stamp_fits_bytes(stamp)))
        assert header["NORTHUP"] is True and header["ORIENTOP"] == stamp.orientation
        assert "LTV1" not in header and "CUTMINX" in header


def _sky_axes(wcs, x, y):
    """Unit pixel vectors towards east and north at (x, y)."""
    ra, dec = wcs.all_pix2world([x], [y], 0)
    step = 1.0 / 3600
    out = []
    for dra, ddec in ((step / math.cos(math.radians(dec[0])), 0.0), (0.0, step)):
        px, py = wcs.all_world2pix(ra + dra, dec + ddec, 0)
        vector = np.array([px[0] - x, py[0] - y])
        out.append(vector / np.hypot(*vector))
    return out


def test_north_up_resampled_where_no_flip_fits(difference, visit):
    ra, dec = _positions(visit)
    stamps, status = extract_stamps(difference, ra, dec, 31, orientation="north-up")
    native, native_status = extract_stamps(difference, ra, dec, 31)
    assert (status == native_status)[native_status > CutoutStatus.PADDED].all()
    checked = 0
    for stamp, original in zip(stamps, native, strict=True):
        if stamp is None:
            continue
        assert stamp.orientation.startswith("reproject")
        data = stamp_fits_bytes(stamp)
        assert run_fitsverify(data) == []
        header = fits.getheader(io.BytesIO(data))
        assert header["NORTHUP"] is True and header["ORIENTAT"] == 0.0
        wcs = WCS(header)
        east, north = _sky_axes(wcs, 15, 15)
        assert north[1] > 0.9999 and east[0] < -0.9999
        x, y = wcs.world_to_pixel_values(stamp.ra, stamp.dec)
        assert (float(x), float(y)) == pytest.approx((15.0, 15.0), abs=1e-6)
        if stamp.status == CutoutStatus.OK and original.status == CutoutStatus.OK:
            # flux within the central aperture is kept by the flux-conserving resampling
            yy, xx = np.mgrid[0:31, 0:31]
            cx, cy = original.center_pixel
            ring = (xx - cx) ** 2 + (yy - cy) ** 2 <= 8**2
            inside = (xx - 15) ** 2 + (yy - 15) ** 2 <= 8**2
            noise = math.sqrt(float(np.sum(original.variance[ring])))
            assert abs(np.sum(stamp.image[inside]) - np.sum(original.image[ring])) < 3 * noise
            checked += 1
        else:
            no_data = 1 << stamp.mask_planes[NO_DATA_PLANE]
            missing = np.isnan(stamp.image)
            assert missing.any() and np.all(stamp.mask[missing] & no_data)
    assert checked >= 5


# --- the packager, the counts and the readers --------------------------------------------------


def _packaged(visit, tmp_path, **settings):
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(tmp_path)
    for name, value in settings.items():
        setattr(config, name, value)
    return AlertPackager(config).run(visit.inputs())


def test_packager_sizes_and_every_variant_reads_back(visit, tmp_path):
    from alertpack.tools.browse.stamps import render_stamps
    from alertpack.tools.inspection import summarize_alert, validate_alert
    from alertpack.tools.plotting import plot_alert
    from alertpack.tools.reading import iter_alerts

    plain = _packaged(visit, tmp_path / "none")
    counts = plain.counts()
    assert counts["nStamps"] == 3 * plain.n_alerts - sum(
        v for k, v in plain.cutout_status.items() if "OFF" in k or "BAD" in k
    )
    assert counts["bytesPerAlert"] == round(plain.alerts.nbytes / plain.n_alerts)
    assert counts["bytesPerStamp"] == round(counts["nBytesStamps"] / counts["nStamps"])
    parsed = fastavro.parse_schema(plain.alerts.schema.packet_schema.definition)
    for compression in ("gzip", "lossless", "lossy16"):
        result = _packaged(visit, tmp_path / compression, cutoutCompression=compression)
        if compression == "gzip":
            assert result.alerts.nbytes <= 0.5 * plain.alerts.nbytes
        alerts = list(iter_alerts([tmp_path / compression]))
        assert len(alerts) == plain.n_alerts
        for index, (loaded, plain_alert) in enumerate(zip(alerts, plain.alerts, strict=True)):
            fastavro.validation.validate(loaded.alert, parsed, raise_errors=True)
            assert summarize_alert(loaded)["cutoutCompression"] == compression
            if index < 3:  # astropy and fitsverify on a few: each fitsverify run is a process
                assert [p for p in validate_alert(loaded) if p.check == "cutouts"] == []
            for name in FIELDS:
                if plain_alert[name] is None:
                    assert loaded.cutout(name) is None
                    continue
                mine = _planes(loaded.cutout(name))
                theirs = _planes(plain_alert[name])
                if compression != "lossy16":
                    np.testing.assert_array_equal(mine["IMAGE"], theirs["IMAGE"])
                np.testing.assert_array_equal(mine["MASK"], theirs["MASK"])
        panels = render_stamps(alerts[0].alert)
        assert all(panel.error is None and panel.png for panel in panels.values())
        plot_alert(alerts[0].alert)


def test_to_parquet_decodes_cutouts_on_request(visit, tmp_path):
    import pyarrow.parquet as pq

    from alertpack.tools.parquet import alerts_to_parquet

    _packaged(visit, tmp_path / "alerts", cutoutCompression="gzip")
    kept = alerts_to_parquet(tmp_path / "alerts", tmp_path / "kept")["alerts"][0]
    decoded = alerts_to_parquet(tmp_path / "alerts", tmp_path / "decoded",
                                decode_cutouts=True)["alerts"][0]
    kept_column = pq.read_table(kept).column("cutoutDifference").to_pylist()
    decoded_column = pq.read_table(decoded).column("cutoutDifference").to_pylist()
    for gz, plain in zip(kept_column, decoded_column, strict=True):
        if gz is None:
            assert plain is None
            continue
        assert stamp_variant(gz) == "gzip" and stamp_variant(plain) == "none"
        assert gzip.decompress(gz) == plain


def test_warning_before_producing_alerts_over_message_max_bytes(visit, tmp_path, kafka_broker,
                                                                 caplog):
    from broker import producing_config

    config = producing_config(tmp_path, kafka_broker.bootstrap, "oversized-alerts",
                              kafkaMessageMaxBytes=20_000)
    with AlertPackager(config) as packager, caplog.at_level(logging.WARNING, "alertpack"):
        result = packager.run(visit.inputs())
    warning = [r.getMessage() for r in caplog.records if "message.max.bytes" in r.getMessage()]
    assert len(warning) == 1 and f"{result.n_alerts} alert(s)" in warning[0]
    assert "cutoutCompression=gzip" in warning[0]
    assert result.failed == result.n_alerts and result.failed_path is not None


def test_package_command_reports_sizes_and_takes_the_cutout_options(tmp_path, capsys):
    from alertpack.cli import main

    assert main(["package", "--sample", "--n-sources", "5", "--image-size", "400x400",
                 "-o", str(tmp_path), "--cutout-compression", "gzip",
                 "--cutout-orientation", "north-up"]) == 0
    out = capsys.readouterr().out
    assert "kB per alert" in out and "kB per stamp" in out and "cutoutCompression=gzip" in out
    from alertpack.tools.reading import iter_alerts

    alert = next(iter(iter_alerts([tmp_path]))).alert
    header = fits.getheader(io.BytesIO(gzip.decompress(alert["cutoutDifference"])))
    assert header["NORTHUP"] is True
    assert zlib.crc32(alert["cutoutDifference"])  # bytes, not None
