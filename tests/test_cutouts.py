"""Fast cutouts (alertpack.packets.cutouts) against astropy's readers and the Cutout2D reference."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, NDData, VarianceUncertainty
from astropy.wcs import WCS, FITSFixedWarning, Sip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertpack.errors import InputError
from alertpack.inputs.images import as_survey_image
from alertpack.inputs.survey_image import (
    mask_planes_from_header,
)
from alertpack.packets.cutouts import extract_stamps, make_cutout_bytes
from alertpack.packets.placement import cutout_sizes
from alertpack.packets.stamp import NO_DATA_PLANE, CutoutStatus, Stamp
from alertpack.packets.stamp_fits import stamp_fits_bytes
from alertpack.packets.survey_image import SurveyImage
from alertpack.reference.cutouts import reference_cutout_bytes

DETECTOR_SHAPE = (4000, 4072)  # ny, nx of an LSST detector
PLANES = {"BAD": 0, "SAT": 1, "INTRP": 2, "CR": 3, "EDGE": 4, "DETECTED": 5}
ROTATION_DEG = 30.0


def detector_wcs() -> WCS:
    """TAN-SIP WCS of a detector: 0.2"/px, rotated, a few pixels of distortion at the corners."""
    ny, nx = DETECTOR_SHAPE
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
    scale = 0.2 / 3600
    angle = np.radians(ROTATION_DEG)
    wcs.wcs.cd = scale * np.array([[-np.cos(angle), np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[2, 0], a[1, 1], a[3, 0], a[1, 2] = 2e-7, -1e-7, 3e-10, 2e-10
    b[0, 2], b[1, 1], b[0, 3], b[2, 1] = 1.5e-7, 1e-7, -3e-10, 1e-10
    wcs.sip = Sip(a, b, None, None, wcs.wcs.crpix)
    wcs.wcs.set()
    return wcs


def sip_distortion_at(wcs: WCS, x: float, y: float) -> float:
    """Pixels between the SIP position and the linear one, at a 0-based pixel."""
    focal = wcs.sip_pix2foc(np.array([[x, y]]), 0)[0]
    linear = np.array([x, y]) - (wcs.wcs.crpix - 1)
    return float(np.hypot(*(focal - linear)))


def crop_image(
    x0: int, y0: int, shape: tuple[int, int], seed: int = 0, *, psf: bool = True
) -> SurveyImage:
    """A random image of part of the detector, starting at (x0, y0) in the detector frame."""
    rng = np.random.default_rng(seed)
    wcs = detector_wcs()[y0 : y0 + shape[0], x0 : x0 + shape[1]]
    psf_image = None
    if psf:
        yy, xx = np.mgrid[-7:8, -7:8]
        psf_image = np.exp(-(xx**2 + yy**2) / 8.0).astype(np.float32)
        psf_image /= psf_image.sum()
    return SurveyImage(
        image=rng.normal(0, 30, shape).astype(np.float32),
        variance=rng.uniform(800, 1000, shape).astype(np.float32),
        mask=rng.integers(0, 64, shape).astype(np.int32) * (rng.random(shape) < 0.1),
        mask_planes=dict(PLANES),
        wcs=wcs,
        origin=(x0, y0),
        psf=psf_image,
        name="difference",
    )


@pytest.fixture(scope="module")
def corner_image() -> SurveyImage:
    # the detector's corner, where the distortion is largest
    return crop_image(3772, 3700, (300, 300))


def sky_at(image: SurveyImage, x, y) -> tuple[np.ndarray, np.ndarray]:
    ra, dec = image.wcs.all_pix2world(np.atleast_1d(x), np.atleast_1d(y), 0)
    return ra, dec


def read_back(data: bytes) -> fits.HDUList:
    return fits.open(io.BytesIO(data))


def parent_window(plane: np.ndarray, x_start: int, y_start: int, size: int, fill) -> np.ndarray:
    """The parent's pixels under a stamp, ``fill`` where the stamp leaves the image."""
    out = np.full((size, size), fill, dtype=plane.dtype)
    ny, nx = plane.shape
    for j in range(size):
        for i in range(size):
            y, x = y_start + j, x_start + i
            if 0 <= y < ny and 0 <= x < nx:
                out[j, i] = plane[y, x]
    return out


# --- sizes -----------------------------------------------------------------------------------


def test_packets_take_survey_images_and_never_import_the_inputs(corner_image):
    ccd = CCDData(corner_image.image[:20, :20] * u.nJy, wcs=corner_image.wcs[:20, :20])
    with pytest.raises(InputError, match=r"extract_stamps takes a SurveyImage, got a CCDData; "
                       r".*alertpack\.as_survey_image"):
        extract_stamps(ccd, [1.0], [1.0], 10)
    with pytest.raises(InputError, match="stamp_fits_bytes takes a Stamp or a SurveyImage"):
        stamp_fits_bytes(ccd)
    code = (
        "import importlib, pkgutil, sys\n"
        "import alertpack.packets as packets\n"
        "for module in pkgutil.iter_modules(packets.__path__):\n"
        "    importlib.import_module('alertpack.packets.' + module.name)\n"
        "print([name for name in sys.modules if name.startswith('alertpack.inputs')])\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert completed.stdout.strip() == "[]"


def test_cutout_sizes_fixed_and_bbox_driven():
    assert cutout_sizes(3, 30).tolist() == [30, 30, 30]
    bbox = np.array([10, 45, 200, np.nan, 0])
    assert cutout_sizes(5, 30, bbox).tolist() == [10, 45, 200, 30, 30]
    assert cutout_sizes(5, 30, bbox, min_size=20, max_size=102).tolist() == [20, 45, 102, 30, 30]
    assert cutout_sizes(5, 30, bbox).dtype == np.int64
    # the bounds apply to bbox-driven sizes, the fallback is the configured size as given
    assert cutout_sizes(2, 10, [np.nan, 5], min_size=20).tolist() == [10, 20]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cutout_size": 0}, "cutout_size"),
        ({"cutout_size": 30, "bbox_size": [1, 2]}, "bbox_size has 2 values"),
        ({"cutout_size": 30, "bbox_size": [1, 2, 3], "min_size": 50, "max_size": 20}, "min_size"),
    ],
)
def test_cutout_sizes_rejects_bad_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        cutout_sizes(3, **kwargs)


# --- placement and outcomes ------------------------------------------------------------------


def test_outcomes_at_edges_and_bad_positions(corner_image):
    nx = corner_image.shape[1]
    size = 31
    x = np.array([150.2, 15.0, 284.0, 0.3, 0.0, -20.0, nx - 1 + 15.2, 150.0])
    y = np.array([140.7, 15.0, 284.0, 0.4, 150.0, -20.0, 150.0, 150.0])
    ra, dec = sky_at(corner_image, x, y)
    ra[-1] = np.nan
    ra = np.append(ra, [150.0, 330.0])
    dec = np.append(dec, [95.0, -2.0])  # beyond the pole; the far side of the TAN projection
    stamps, status = extract_stamps(corner_image, ra, dec, size)
    expected = [
        CutoutStatus.OK,  # center
        CutoutStatus.OK,  # just inside: the stamp's first pixel is the image's first pixel
        CutoutStatus.OK,  # just inside at the far corner
        CutoutStatus.PADDED,  # corner
        CutoutStatus.PADDED,  # half outside
        CutoutStatus.OFF_IMAGE,  # source off the image, stamp misses it
        CutoutStatus.PADDED,  # source off the image, stamp still overlaps
        CutoutStatus.BAD_POSITION,  # NaN ra
        CutoutStatus.BAD_POSITION,  # |dec| > 90
        CutoutStatus.BAD_POSITION,  # opposite side of the sky
    ]
    assert status.tolist() == [int(s) for s in expected]
    assert [stamp is None for stamp in stamps] == [
        s in (CutoutStatus.OFF_IMAGE, CutoutStatus.BAD_POSITION) for s in expected
    ]
    assert stamps[1].origin == (corner_image.origin[0], corner_image.origin[1])
    assert stamps[2].origin[0] + size == corner_image.origin[0] + nx
    for stamp, outcome in zip(stamps, status, strict=True):
        if stamp is not None:
            assert stamp.image.shape == (size, size)
            assert stamp.status == outcome


def test_half_outside_stamp_is_padded_with_nan_and_no_data(corner_image):
    size = 30
    ra, dec = sky_at(corner_image, 3.3, 150.6)
    (stamp,), status = extract_stamps(corner_image, ra, dec, size)
    assert status[0] == CutoutStatus.PADDED
    x_start = stamp.origin[0] - corner_image.origin[0]
    y_start = stamp.origin[1] - corner_image.origin[1]
    assert x_start == int(np.ceil(3.3 - size / 2)) < 0
    outside = np.zeros((size, size), bool)
    outside[:, :-x_start] = True
    no_data = 1 << stamp.mask_planes[NO_DATA_PLANE]
    assert np.all(np.isnan(stamp.image[outside])) and np.all(np.isnan(stamp.variance[outside]))
    assert np.all(stamp.mask[outside] == no_data)
    assert not np.any(stamp.mask[~outside] & no_data)
    np.testing.assert_array_equal(
        stamp.image[~outside],
        parent_window(corner_image.image, x_start, y_start, size, np.nan)[~outside],
    )


@pytest.mark.parametrize("size", [5, 6, 30, 31, 102])
def test_odd_and_even_sizes_center_the_source(corner_image, size):
    x = np.array([150.0, 150.49, 150.51, 149.7])
    y = np.array([150.0, 120.2, 181.5, 140.99])
    stamps, status = extract_stamps(corner_image, *sky_at(corner_image, x, y), size)
    assert np.all(status == CutoutStatus.OK)
    for stamp in stamps:
        cx, cy = stamp.center_pixel
        assert stamp.image.shape == (size, size)
        assert abs(cx - (size - 1) / 2) <= 0.5 + 1e-6 and abs(cy - (size - 1) / 2) <= 0.5 + 1e-6
        if size % 2:
            assert round(cx) == round(cy) == size // 2


def test_integer_position_with_even_size_is_stable(corner_image):
    # an exact pixel boundary must not move by a pixel with float noise of the round trip
    ra, dec = sky_at(corner_image, np.full(20, 100.0), np.full(20, 100.0))
    ra = ra + np.linspace(-1e-13, 1e-13, 20)
    stamps, _ = extract_stamps(corner_image, ra, dec, 30)
    assert {stamp.origin for stamp in stamps} == {
        (corner_image.origin[0] + 85, corner_image.origin[1] + 85)
    }


def test_bbox_driven_sizes(corner_image):
    x = np.array([100.5, 150.2, 200.7])
    sizes = cutout_sizes(3, 30, bbox_size=[12, 250, np.nan], min_size=16, max_size=64)
    stamps, status = extract_stamps(corner_image, *sky_at(corner_image, x, x), sizes)
    assert [stamp.image.shape[0] for stamp in stamps] == [16, 64, 30]
    assert status.tolist() == [CutoutStatus.OK] * 3


def test_bad_arguments_are_input_errors(corner_image):
    with pytest.raises(InputError, match="ra has shape"):
        extract_stamps(corner_image, [1.0, 2.0], [1.0], 30)
    with pytest.raises(InputError, match="sizes"):
        extract_stamps(corner_image, [1.0], [1.0], 0)
    with pytest.raises(InputError, match="sizes has 2 values"):
        extract_stamps(corner_image, [1.0], [1.0], [30, 30])


# --- FITS bytes read back by astropy ---------------------------------------------------------


def test_bytes_read_back_with_astropy(corner_image):
    size = 30
    x = np.array([120.3, 2.6])
    y = np.array([88.8, 298.1])
    cutouts, status = make_cutout_bytes(corner_image, *sky_at(corner_image, x, y), size)
    assert status.tolist() == [CutoutStatus.OK, CutoutStatus.PADDED]
    for data, xs, ys in zip(cutouts, x, y, strict=True):
        x_start, y_start = int(np.ceil(xs - size / 2)), int(np.ceil(ys - size / 2))
        with read_back(data) as hdul:
            assert [hdu.name for hdu in hdul] == ["IMAGE", "UNCERT", "MASK", "PSFIMAGE"]
            assert hdul[0].header["BUNIT"] == "nJy"
            assert hdul[0].data.dtype == np.dtype(">f4")
            np.testing.assert_array_equal(
                hdul[0].data, parent_window(corner_image.image, x_start, y_start, size, np.nan)
            )
            np.testing.assert_array_equal(
                hdul["UNCERT"].data,
                parent_window(corner_image.variance, x_start, y_start, size, np.nan),
            )
            planes = mask_planes_from_header(hdul["MASK"].header)
            assert planes == {**PLANES, NO_DATA_PLANE: 6}
            np.testing.assert_array_equal(
                hdul["MASK"].data,
                parent_window(corner_image.mask, x_start, y_start, size, 1 << 6),
            )
            np.testing.assert_array_equal(hdul["PSFIMAGE"].data, corner_image.psf)
            primary = hdul[0].header
            assert primary["LTV1"] == -(corner_image.origin[0] + x_start)
            assert primary["LTV2"] == -(corner_image.origin[1] + y_start)
            assert primary["CRVAL1A"] == corner_image.origin[0] + x_start
            # LSST's cutMinX/cutMinY: 0-based parent pixel = 1-based stamp pixel + CUTMIN
            assert primary["CUTMINX"] == corner_image.origin[0] + x_start - 1
            assert primary["CUTMINY"] == corner_image.origin[1] + y_start - 1
            for hdu in hdul[1:3]:  # each card once: the extensions inherit the primary's
                assert hdu.header["INHERIT"] is True
                assert not {"LTV1", "CRPIX1", "CTYPE1", "CUTMINX"} & set(hdu.header)
            physical = WCS(hdul[0].header, key="A")
            parent_xy = physical.wcs_pix2world([[0, 0], [size - 1, 3]], 0)
            np.testing.assert_allclose(
                parent_xy,
                [
                    [corner_image.origin[0] + x_start, corner_image.origin[1] + y_start],
                    [
                        corner_image.origin[0] + x_start + size - 1,
                        corner_image.origin[1] + y_start + 3,
                    ],
                ],
            )
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # astropy must not need to repair anything
            ccd = CCDData.read(io.BytesIO(data))
        assert ccd.unit == u.nJy
        assert isinstance(ccd.uncertainty, VarianceUncertainty)
        np.testing.assert_array_equal(
            ccd.data, parent_window(corner_image.image, x_start, y_start, size, np.nan)
        )
        np.testing.assert_array_equal(
            ccd.mask, parent_window(corner_image.mask, x_start, y_start, size, 1 << 6) != 0
        )
        assert ccd.psf.shape == corner_image.psf.shape


def test_position_angle_and_orientat_key(corner_image):
    ra, dec = sky_at(corner_image, 150.2, 150.3)
    (stamp,), _ = extract_stamps(corner_image, ra, dec, 31)
    # the +y axis is rotated from north toward east by the WCS rotation (plus a little distortion)
    assert stamp.position_angle == pytest.approx(ROTATION_DEG, abs=0.5)
    # direction of +y measured on the sky with the parent WCS
    parent_pa = _sky_position_angle(corner_image.wcs, 150.0, 150.0)
    assert stamp.position_angle == pytest.approx(parent_pa, abs=1e-3)
    with read_back(stamp_fits_bytes(stamp)) as hdul:
        assert hdul[0].header["ORIENTAT"] == pytest.approx(stamp.position_angle, abs=1e-12)


def _sky_position_angle(wcs: WCS, x: float, y: float) -> float:
    from astropy.coordinates import SkyCoord

    (ra0, ra1), (dec0, dec1) = wcs.all_pix2world([x, x], [y, y + 1], 0)
    start, end = SkyCoord(ra0 * u.deg, dec0 * u.deg), SkyCoord(ra1 * u.deg, dec1 * u.deg)
    return start.position_angle(end).to_value(u.deg) % 360.0


@pytest.mark.parametrize("size", [30, 102, 200])  # 200: the default maxCutoutSize
def test_local_wcs_matches_sip_parent_to_a_hundredth_pixel(size):
    """Over many whole stamps up to maxCutoutSize, at the center and the distorted corners."""
    from alertpack.tools.fitsverify import run_fitsverify

    ny, nx = DETECTOR_SHAPE
    wcs = detector_wcs()
    assert sip_distortion_at(wcs, 0, 0) > 2.0  # a few pixels, as for a real detector
    # lazily allocated zeros: only the WCS and the shape matter here
    detector = SurveyImage(
        np.zeros(DETECTOR_SHAPE, np.float32), None, None, {}, wcs, name="science"
    )
    rng = np.random.default_rng(size)
    corners_x = [size / 2 + 0.3, nx - size / 2 - 0.7, size / 2 + 0.1, nx - size / 2 - 0.2]
    corners_y = [size / 2 + 0.4, ny - size / 2 - 0.6, ny - size / 2 - 0.1, size / 2 + 0.8]
    x = np.concatenate([[nx / 2], corners_x, rng.uniform(size / 2, nx - size / 2, 20)])
    y = np.concatenate([[ny / 2], corners_y, rng.uniform(size / 2, ny - size / 2, 20)])
    stamps, status = extract_stamps(detector, *wcs.all_pix2world(x, y, 0), size)
    assert np.all(status == CutoutStatus.OK)
    jj, ii = np.mgrid[0:size, 0:size]
    worst = 0.0
    for stamp in stamps:
        data = stamp_fits_bytes(stamp)
        with read_back(data) as hdul:
            assert hdul[0].header["CTYPE1"] == "RA---TAN-SIP"
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a standard header astropy need not repair
                local = WCS(hdul[0].header)
        parent_x, parent_y = ii.ravel() + stamp.origin[0], jj.ravel() + stamp.origin[1]
        sky = wcs.all_pix2world(parent_x, parent_y, 0)
        local_x, local_y = local.all_world2pix(*sky, 0)
        worst = max(worst, np.hypot(local_x - ii.ravel(), local_y - jj.ravel()).max())
        # and forwards: the stamp's pixel_to_world is the parent's
        stamp_sky = local.pixel_to_world(ii.ravel(), jj.ravel())
        parent_sky = wcs.pixel_to_world(parent_x, parent_y)
        assert stamp_sky.separation(parent_sky).to_value(u.arcsec).max() < 0.01 * 0.2
    assert worst < 0.01
    assert run_fitsverify(stamp_fits_bytes(stamps[1])) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ccd = CCDData.read(io.BytesIO(stamp_fits_bytes(stamps[1])))
    assert ccd.wcs.sip is not None and ccd.shape == (size, size)


def test_image_without_mask_or_variance_or_psf():
    image = crop_image(0, 0, (80, 90), psf=False)
    image = SurveyImage(image.image, None, None, {}, image.wcs, name="template")
    cutouts, status = make_cutout_bytes(image, *sky_at(image, [40.2, 1.2], [40.3, 40.1]), 20)
    assert status.tolist() == [CutoutStatus.OK, CutoutStatus.PADDED]
    for data in cutouts:
        with read_back(data) as hdul:
            assert [hdu.name for hdu in hdul] == ["IMAGE", "MASK"]
            assert hdul[0].header["CUTOUT"] == "template"
            assert mask_planes_from_header(hdul["MASK"].header) == {NO_DATA_PLANE: 0}
    with read_back(cutouts[1]) as hdul:
        assert np.all(hdul["MASK"].data[:, :8] == 1) and np.all(hdul["MASK"].data[:, 8:] == 0)


def test_long_mask_plane_names_round_trip(corner_image):
    planes = {**PLANES, "DETECTED_NEGATIVE": 6, "NO_DATA": 8, "SUSPECT": 7}
    image = SurveyImage(
        corner_image.image, corner_image.variance, corner_image.mask, planes, corner_image.wcs
    )
    (data,), _ = make_cutout_bytes(image, *sky_at(image, 50.5, 60.5), 16)
    with read_back(data) as hdul:
        assert mask_planes_from_header(hdul["MASK"].header) == planes


def test_survey_image_round_trip_through_bytes(corner_image):
    ra, dec = sky_at(corner_image, 220.4, 70.2)
    (stamp,), _ = extract_stamps(corner_image, ra, dec, 25)
    with read_back(stamp_fits_bytes(stamp)) as hdul:
        again = as_survey_image(hdul, name="difference")
    np.testing.assert_array_equal(again.image, stamp.image)
    np.testing.assert_array_equal(again.variance, stamp.variance)
    np.testing.assert_array_equal(again.mask, stamp.mask)
    np.testing.assert_array_equal(again.psf, stamp.psf)
    assert again.mask_planes == stamp.mask_planes
    assert again.origin == stamp.origin


def test_ccddata_cutout_to_bytes():
    """The Task may hand over an astropy CCDData cutout (as LSST's code makes them)."""
    parent = crop_image(1000, 1200, (64, 64))
    ccd = CCDData(
        parent.image[10:40, 12:42] * u.nJy,
        wcs=parent.wcs[10:40, 12:42],
        uncertainty=VarianceUncertainty(parent.variance[10:40, 12:42]),
        flags=parent.mask[10:40, 12:42],
        meta={"LTV1": -1012, "LTV2": -1210, **{f"MP_{k}": v for k, v in PLANES.items()}},
    )
    data = stamp_fits_bytes(as_survey_image(ccd, name="cutout"))
    with read_back(data) as hdul:
        np.testing.assert_array_equal(hdul[0].data, ccd.data)
        np.testing.assert_array_equal(hdul["UNCERT"].data, ccd.uncertainty.array)
        np.testing.assert_array_equal(hdul["MASK"].data, ccd.flags)
        assert mask_planes_from_header(hdul["MASK"].header) == PLANES
        assert (hdul[0].header["LTV1"], hdul[0].header["LTV2"]) == (-1012, -1210)
        local = WCS(hdul[0].header)
    jj, ii = np.mgrid[0:30, 0:30]
    sky = ccd.wcs.all_pix2world(ii.ravel(), jj.ravel(), 0)
    x, y = local.all_world2pix(*sky, 0)
    assert np.hypot(x - ii.ravel(), y - jj.ravel()).max() < 0.01


# --- against the Cutout2D reference ----------------------------------------------------------


def compare_with_reference(image: SurveyImage, x: float, y: float, size: int) -> None:
    ra, dec = sky_at(image, x, y)
    (ours,), status = make_cutout_bytes(image, ra, dec, size)
    reference = reference_cutout_bytes(as_nddata(image), float(ra[0]), float(dec[0]), size)
    if reference is None:
        assert ours is None and status[0] == CutoutStatus.OFF_IMAGE
        return
    assert ours is not None
    with read_back(ours) as mine, read_back(reference) as theirs:
        np.testing.assert_array_equal(mine[0].data, theirs[0].data)
        np.testing.assert_array_equal(mine["UNCERT"].data, theirs["UNCERT"].data)
        np.testing.assert_array_equal(mine["MASK"].data, theirs["FLAGS"].data)
        np.testing.assert_array_equal(mine["PSFIMAGE"].data, theirs["PSFIMAGE"].data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            their_wcs = WCS(theirs[0].header)
        my_wcs = WCS(mine[0].header)
    # the same WCS: the parent's TAN-SIP with CRPIX moved to the stamp (astropy writes
    # 14 significant digits, alertpack the shortest exact repr)
    np.testing.assert_array_equal(my_wcs.wcs.crpix, their_wcs.wcs.crpix)
    for mine_value, their_value in (
        (my_wcs.wcs.crval, their_wcs.wcs.crval),
        (my_wcs.pixel_scale_matrix, their_wcs.pixel_scale_matrix),
        (my_wcs.sip.a, their_wcs.sip.a),
        (my_wcs.sip.b, their_wcs.sip.b),
    ):
        np.testing.assert_allclose(mine_value, their_value, rtol=1e-13, atol=0)
    jj, ii = np.mgrid[0:size, 0:size]
    mine_sky = my_wcs.pixel_to_world(ii.ravel(), jj.ravel())
    their_sky = their_wcs.pixel_to_world(ii.ravel(), jj.ravel())
    assert mine_sky.separation(their_sky).to_value(u.arcsec).max() < 1e-6


def as_nddata(image: SurveyImage) -> NDData:
    """The test image as the astropy object the (alertpack-free) reference reads."""
    return NDData(
        image.image,
        uncertainty=None if image.variance is None else VarianceUncertainty(image.variance),
        mask=image.mask,
        wcs=image.wcs,
        meta={f"MP_{name}": bit for name, bit in image.mask_planes.items()},
        unit=u.nJy,
        psf=image.psf,
    )


@pytest.mark.parametrize(
    ("x", "y", "size"),
    [
        (150.3, 149.6, 30),  # inside, even
        (150.3, 149.6, 31),  # inside, odd
        (0.4, 0.2, 30),  # corner
        (299.2, 150.7, 51),  # half outside
        (-14.6, 150.2, 30),  # source off the image, stamp overlaps
        (-40.3, -40.1, 30),  # no overlap
        (100.7, 200.1, 102),
    ],
)
def test_matches_reference(corner_image, x, y, size):
    compare_with_reference(corner_image, x, y, size)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    x=st.floats(-30.0, 330.0),
    y=st.floats(-30.0, 330.0),
    size=st.integers(3, 64),
)
def test_random_centers_match_reference(corner_image, x, y, size):
    # a source exactly on a placement boundary may tip either way in either implementation
    offset = x - size / 2.0, y - size / 2.0
    if any(abs(v - round(v)) < 1e-6 for v in offset):
        return
    compare_with_reference(corner_image, x, y, size)


def test_stamp_dataclass_exposes_astropy_wcs(corner_image):
    (stamp,), _ = extract_stamps(corner_image, *sky_at(corner_image, 77.7, 88.8), 21)
    assert isinstance(stamp, Stamp)
    x, y = stamp.wcs.all_world2pix([stamp.ra], [stamp.dec], 0)
    assert (float(x[0]), float(y[0])) == pytest.approx(stamp.center_pixel, abs=0.01)
    assert not stamp.image.flags.writeable  # a view of the parent


def test_stamp_larger_than_the_image_is_padded_all_round():
    small = crop_image(2000, 1500, (20, 25), psf=False)
    ra, dec = sky_at(small, 12.3, 9.6)
    (stamp,), status = extract_stamps(small, ra, dec, 40)
    assert status[0] == CutoutStatus.PADDED
    x_start, y_start = int(np.ceil(12.3 - 20)), int(np.ceil(9.6 - 20))
    assert stamp.origin == (2000 + x_start, 1500 + y_start)
    inside = np.zeros((40, 40), bool)
    inside[-y_start : -y_start + 20, -x_start : -x_start + 25] = True
    np.testing.assert_array_equal(stamp.image[inside].reshape(20, 25), small.image)
    assert np.all(np.isnan(stamp.image[~inside]))
    no_data = 1 << stamp.mask_planes[NO_DATA_PLANE]
    assert np.all(stamp.mask[~inside] == no_data) and not np.any(stamp.mask[inside] & no_data)


def test_fk5_parent_frame_is_kept():
    image = crop_image(0, 0, (60, 60), psf=False)
    image.wcs.wcs.radesys = "FK5"
    image.wcs.wcs.equinox = 2000.0
    (data,), _ = make_cutout_bytes(image, *sky_at(image, 30.2, 30.7), 20)
    with read_back(data) as hdul:
        assert hdul[0].header["RADESYS"] == "FK5" and hdul[0].header["EQUINOX"] == 2000.0
        assert WCS(hdul[0].header).wcs.radesys == "FK5"


def test_far_off_sources_are_off_image_not_bad_positions():
    # the inverse SIP distortion diverges degrees away; those sources are simply elsewhere
    wcs = detector_wcs()
    detector = SurveyImage(np.zeros(DETECTOR_SHAPE, np.float32), None, None, {}, wcs)
    ra = np.array([150.0, 151.0, 153.0, 160.0, 150.0, 330.0])
    dec = np.array([2.0, 2.0, 2.0, 2.0, 40.0, -2.0])
    _, status = extract_stamps(detector, ra, dec, 30)
    assert status.tolist() == [CutoutStatus.OK] + [CutoutStatus.OFF_IMAGE] * 4 + [
        CutoutStatus.BAD_POSITION
    ]
