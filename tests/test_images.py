"""Every input route of alertpack.inputs.images.as_survey_image, with astropy-made inputs."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import (
    CCDData,
    InverseVariance,
    NDData,
    StdDevUncertainty,
    VarianceUncertainty,
)
from astropy.wcs import WCS

from alertpack.errors import ImageInputError, InputError
from alertpack.inputs.images import as_survey_image
from alertpack.packets.survey_image import SurveyImage

SHAPE = (40, 50)
PLANES = {"BAD": 0, "SAT": 1, "CR": 3, "DETECTED": 5, "DETECTED_NEGATIVE": 6, "NO_DATA": 8}


def tan_wcs(shape=SHAPE) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    wcs.wcs.cd = np.array([[-5.5e-5, 0.0], [0.0, 5.5e-5]])
    return wcs


@pytest.fixture
def arrays():
    rng = np.random.default_rng(3)
    return {
        "image": rng.normal(100, 10, SHAPE).astype(np.float32),
        "variance": rng.uniform(50, 60, SHAPE).astype(np.float32),
        "mask": (rng.integers(0, 2, SHAPE) << rng.integers(0, 7, SHAPE)).astype(np.int32),
        "psf": np.full((5, 5), 1 / 25, np.float32),
    }


def assert_same_pixels(image: SurveyImage, arrays, scale: float = 1.0) -> None:
    np.testing.assert_allclose(image.image, arrays["image"] * scale, rtol=1e-6)
    assert image.image.dtype == np.float32 and image.image.shape == SHAPE


def assert_same_wcs(image: SurveyImage, wcs: WCS) -> None:
    x, y = np.array([0.0, 10.0, 49.0]), np.array([0.0, 20.0, 39.0])
    np.testing.assert_allclose(image.wcs.all_pix2world(x, y, 0), wcs.all_pix2world(x, y, 0))


# --- CCDData / NDData ------------------------------------------------------------------------


def full_ccddata(arrays, unit: str, origin: tuple[int, int]) -> CCDData:
    """A CCDData with every plane: variance, bit mask (as flags), planes, origin, PSF."""
    # CCDData turns any mask into booleans: the bit mask travels as flags, as in LSST's cutouts
    return CCDData(
        arrays["image"],
        unit=unit,
        wcs=tan_wcs(),
        uncertainty=VarianceUncertainty(arrays["variance"]),
        flags=arrays["mask"],
        meta={"LTV1": -origin[0], "LTV2": -origin[1], **{f"MP_{k}": v for k, v in PLANES.items()}},
        psf=arrays["psf"],
    )


def test_ccddata_in_njy(arrays):
    ccd = full_ccddata(arrays, "nJy", (100, 250))
    image = as_survey_image(ccd, name="difference")
    np.testing.assert_array_equal(image.image, arrays["image"])
    np.testing.assert_array_equal(image.variance, arrays["variance"])
    np.testing.assert_array_equal(image.mask, arrays["mask"])
    np.testing.assert_array_equal(image.psf, arrays["psf"])
    assert image.mask_planes == PLANES
    assert image.origin == (100, 250)
    assert image.name == "difference" and image.photo_calib == 1.0
    assert_same_wcs(image, tan_wcs())


@pytest.mark.parametrize(
    ("unit", "scale"),
    [("Jy", 1e9), ("mJy", 1e6), ("uJy", 1e3), (u.erg / u.s / u.cm**2 / u.Hz, 1e32)],
)
def test_ccddata_flux_density_units_become_njy(arrays, unit, scale):
    # values of a realistic size in each unit, ~100 nJy
    ccd = CCDData(
        arrays["image"].astype(np.float64) / scale,
        unit=unit,
        wcs=tan_wcs(),
        uncertainty=StdDevUncertainty(np.sqrt(arrays["variance"].astype(np.float64)) / scale),
    )
    image = as_survey_image(ccd, name="science")
    assert image.photo_calib == pytest.approx(scale)
    assert_same_pixels(image, arrays)
    np.testing.assert_allclose(image.variance, arrays["variance"], rtol=1e-5)


def test_counts_without_calibration_is_a_clear_error(arrays):
    ccd = CCDData(arrays["image"], unit="adu", wcs=tan_wcs())
    with pytest.raises(InputError, match=r"science image.*adu.*calibration=<nJy per count>"):
        as_survey_image(ccd, name="science")


def test_counts_with_calibration(arrays):
    ccd = CCDData(
        arrays["image"],
        unit="electron",
        wcs=tan_wcs(),
        uncertainty=VarianceUncertainty(arrays["variance"]),
    )
    image = as_survey_image(ccd, name="science", calibration=0.25)
    assert image.photo_calib == 0.25
    assert_same_pixels(image, arrays, 0.25)
    np.testing.assert_allclose(image.variance, arrays["variance"] * 0.0625, rtol=1e-6)
    image = as_survey_image(ccd, name="science", calibration=2 * u.uJy / u.electron)
    assert image.photo_calib == pytest.approx(2000.0)


@pytest.mark.parametrize(
    ("unit", "calibration", "message"),
    [
        ("Jy", 2.0, "already in Jy"),
        ("adu", 1.0 * u.nJy / u.electron, "not a flux density"),
        ("adu", -1.0, "positive finite"),
        ("adu", float("nan"), "positive finite"),
        (u.ABmag, None, "magnitudes are not image units"),
        ("erg/(s cm2 Angstrom)", None, "not a spectral flux density"),
    ],
)
def test_unit_and_calibration_errors(arrays, unit, calibration, message):
    ccd = CCDData(arrays["image"], unit=unit, wcs=tan_wcs())
    with pytest.raises(ImageInputError, match=message):
        as_survey_image(ccd, name="template", calibration=calibration)


def test_nddata_without_unit_needs_calibration(arrays):
    ndd = NDData(arrays["image"], wcs=tan_wcs())
    with pytest.raises(InputError, match="no unit"):
        as_survey_image(ndd, name="template")
    assert as_survey_image(ndd, name="template", calibration=3.0).photo_calib == 3.0


def test_bool_mask_becomes_bad_plane_and_inverse_variance(arrays):
    bad = arrays["mask"] > 0
    ccd = CCDData(
        arrays["image"],
        unit="nJy",
        wcs=tan_wcs(),
        mask=bad,
        uncertainty=InverseVariance(1 / arrays["variance"]),
    )
    image = as_survey_image(ccd, name="template")
    assert image.mask_planes == {"BAD": 0}
    np.testing.assert_array_equal(image.mask, bad.astype(np.int32))
    np.testing.assert_allclose(image.variance, arrays["variance"], rtol=1e-6)


def test_integer_bit_mask_of_nddata(arrays):
    ndd = NDData(
        arrays["image"],
        unit="nJy",
        wcs=tan_wcs(),
        mask=arrays["mask"],
        meta={f"MP_{k}": v for k, v in PLANES.items()},
    )
    image = as_survey_image(ndd, name="difference")
    np.testing.assert_array_equal(image.mask, arrays["mask"])
    assert image.mask_planes == PLANES


def test_nddata_errors(arrays):
    with pytest.raises(ImageInputError, match="no WCS"):
        as_survey_image(CCDData(arrays["image"], unit="nJy"), name="science")
    spectral = WCS(naxis=2)
    spectral.wcs.ctype = ["WAVE", "FREQ"]
    with pytest.raises(ImageInputError, match="no celestial axes"):
        as_survey_image(CCDData(arrays["image"], unit="nJy", wcs=spectral), name="science")
    galactic = WCS(naxis=2)
    galactic.wcs.ctype = ["GLON-TAN", "GLAT-TAN"]
    with pytest.raises(ImageInputError, match="not equatorial"):
        as_survey_image(CCDData(arrays["image"], unit="nJy", wcs=galactic), name="science")
    cube = CCDData(np.zeros((3, *SHAPE)), unit="nJy")
    with pytest.raises(ImageInputError, match="3 dimensions"):
        as_survey_image(cube, name="science")
    with pytest.raises(ImageInputError, match="LTV1"):
        as_survey_image(
            CCDData(arrays["image"], unit="nJy", wcs=tan_wcs(), meta={"LTV1": 0.5}), name="x"
        )
    with pytest.raises(ImageInputError, match="cannot use an object of type list"):
        as_survey_image([[1.0]], name="science")


def test_survey_image_passes_through_and_checks_shapes(arrays):
    image = SurveyImage(arrays["image"], None, None, {}, tan_wcs(), name="difference")
    assert as_survey_image(image, name="ignored") is image
    with pytest.raises(ImageInputError, match="already in nJy"):
        as_survey_image(image, name="difference", calibration=2.0)
    with pytest.raises(ImageInputError, match=r"variance has shape \(3, 3\)"):
        SurveyImage(arrays["image"], np.zeros((3, 3)), None, {}, tan_wcs(), name="difference")
    with pytest.raises(ImageInputError, match="bits of an int32 mask"):
        SurveyImage(arrays["image"], None, arrays["mask"], {"X": 31}, tan_wcs())


# --- FITS files ------------------------------------------------------------------------------


def image_header(bunit: str | None = "nJy", ltv=(0, 0)) -> fits.Header:
    header = tan_wcs().to_header()
    if bunit is not None:
        header["BUNIT"] = bunit
    header["LTV1"], header["LTV2"] = ltv
    return header


def test_single_hdu_fits_file(tmp_path, arrays):
    path = tmp_path / "science.fits"
    fits.PrimaryHDU(arrays["image"], image_header("Jy", (-7, -9))).writeto(path)
    image = as_survey_image(path, name="science")
    assert_same_pixels(image, arrays, 1e9)
    assert image.variance is None and image.mask is None and image.mask_planes == {}
    assert image.origin == (7, 9)
    assert_same_wcs(image, tan_wcs())
    assert as_survey_image(str(path), name="science").origin == (7, 9)


def test_first_image_extension_is_used(tmp_path, arrays):
    path = tmp_path / "template.fits"
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(arrays["image"], image_header())])
    hdul.writeto(path)
    assert_same_pixels(as_survey_image(path, name="template"), arrays)


def write_lsst_exposure(path, arrays, *, bunit="nJy", with_psf=True):
    """The LSST Exposure layout: empty primary, IMAGE/MASK/VARIANCE, MP_* keys on MASK."""
    header = image_header(bunit, (-1000, -2000))
    mask_header = image_header(None, (-1000, -2000))
    for plane, bit in PLANES.items():
        # long names become HIERARCH cards, as afw writes them
        mask_header.append(
            fits.Card(f"HIERARCH MP_{plane}", bit) if len(plane) > 5 else (f"MP_{plane}", bit)
        )
    hdus = [
        fits.PrimaryHDU(),
        fits.ImageHDU(arrays["image"], header, name="IMAGE"),
        fits.ImageHDU(arrays["mask"], mask_header, name="MASK"),
        fits.ImageHDU(arrays["variance"], image_header(None, (-1000, -2000)), name="VARIANCE"),
    ]
    if with_psf:
        hdus.append(fits.ImageHDU(arrays["psf"], name="PSF"))
    fits.HDUList(hdus).writeto(path)


def test_lsst_exposure_layout_file(tmp_path, arrays):
    path = tmp_path / "difference.fits"
    write_lsst_exposure(path, arrays)
    image = as_survey_image(path, name="difference")
    np.testing.assert_array_equal(image.image, arrays["image"])
    np.testing.assert_array_equal(image.variance, arrays["variance"])
    np.testing.assert_array_equal(image.mask, arrays["mask"])
    np.testing.assert_array_equal(image.psf, arrays["psf"])
    assert image.mask_planes == PLANES
    assert image.origin == (1000, 2000)
    assert_same_wcs(image, tan_wcs())
    with fits.open(path) as hdul:
        from_hdulist = as_survey_image(hdul, name="difference")
    np.testing.assert_array_equal(from_hdulist.mask, arrays["mask"])


def test_lsst_layout_in_counts(tmp_path, arrays):
    path = tmp_path / "calexp.fits"
    write_lsst_exposure(path, arrays, bunit="adu", with_psf=False)
    with pytest.raises(ImageInputError, match=r"science image \(.*calexp.fits\).*adu"):
        as_survey_image(path, name="science")
    image = as_survey_image(path, name="science", calibration=0.5)
    assert_same_pixels(image, arrays, 0.5)
    np.testing.assert_allclose(image.variance, arrays["variance"] * 0.25, rtol=1e-6)
    assert image.psf is None


def test_fits_errors(tmp_path, arrays):
    with pytest.raises(ImageInputError, match="does not exist"):
        as_survey_image(tmp_path / "missing.fits", name="science")
    not_fits = tmp_path / "notes.fits"
    not_fits.write_text("not a FITS file")
    with pytest.raises(ImageInputError, match="not a readable FITS file"):
        as_survey_image(not_fits, name="science")

    no_unit = tmp_path / "no_unit.fits"
    fits.PrimaryHDU(arrays["image"], image_header(None)).writeto(no_unit)
    with pytest.raises(ImageInputError, match=r"no BUNIT.*calibration"):
        as_survey_image(no_unit, name="template")
    assert as_survey_image(no_unit, name="template", calibration=2.0).photo_calib == 2.0

    bad_unit = tmp_path / "bad_unit.fits"
    fits.PrimaryHDU(arrays["image"], image_header("furlongs")).writeto(bad_unit)
    with pytest.raises(ImageInputError, match="BUNIT 'furlongs'"):
        as_survey_image(bad_unit, name="template")

    no_wcs = tmp_path / "no_wcs.fits"
    fits.PrimaryHDU(arrays["image"], fits.Header({"BUNIT": "nJy"})).writeto(no_wcs)
    with pytest.raises(ImageInputError, match="no celestial axes"):
        as_survey_image(no_wcs, name="science")

    cube = tmp_path / "cube.fits"
    fits.PrimaryHDU(np.zeros((2, *SHAPE), np.float32), image_header()).writeto(cube)
    with pytest.raises(ImageInputError, match="3 dimensions"):
        as_survey_image(cube, name="science")

    table_only = tmp_path / "table.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])]
    ).writeto(table_only)
    with pytest.raises(ImageInputError, match="no image HDU"):
        as_survey_image(table_only, name="science")

    mismatch = tmp_path / "mismatch.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(arrays["image"], image_header(), name="IMAGE"),
            fits.ImageHDU(np.zeros((4, 4), np.float32), name="VARIANCE"),
        ]
    ).writeto(mismatch)
    with pytest.raises(ImageInputError, match=r"VARIANCE has shape \(4, 4\)"):
        as_survey_image(mismatch, name="difference")


# --- lsst.afw.image.Exposure, duck-typed ---------------------------------------------------


class _Plane:
    def __init__(self, array, planes=None):
        self._array, self._planes = array, planes

    def getArray(self):
        return self._array

    def getMaskPlaneDict(self):
        return dict(self._planes)


class _MaskedImage:
    def __init__(self, arrays):
        self._arrays = arrays

    def getImage(self):
        return _Plane(self._arrays["image"])

    def getVariance(self):
        return _Plane(self._arrays["variance"])

    def getMask(self):
        return _Plane(self._arrays["mask"], PLANES)


class _Box:
    def __init__(self, x0, y0, shape):
        self.x0, self.y0, self.shape = x0, y0, shape

    def getMinX(self):
        return self.x0

    def getMinY(self):
        return self.y0

    def getCenter(self):
        return (self.x0 + self.shape[1] / 2, self.y0 + self.shape[0] / 2)


class _SkyWcs:
    """afw's SkyWcs works in the parent frame: its FITS metadata has CRPIX shifted by xy0."""

    def __init__(self, header: fits.Header, origin):
        self._metadata = dict(header)
        self._metadata["CRPIX1"] += origin[0]
        self._metadata["CRPIX2"] += origin[1]

    def getFitsMetadata(self):
        return self._metadata


class _Calib:
    def __init__(self, mean):
        self.mean = mean

    def getCalibrationMean(self):
        return self.mean


class _Psf:
    def __init__(self, array):
        self.array = array

    def computeKernelImage(self, position):
        return _Plane(self.array)


class _FakeExposure:
    """Only the Exposure methods alertpack calls; afw is not installable here."""

    def __init__(self, arrays, origin, calibration):
        self._arrays, self._origin, self._calibration = arrays, origin, calibration

    def getMaskedImage(self):
        return _MaskedImage(self._arrays)

    def getBBox(self):
        return _Box(*self._origin, SHAPE)

    def getWcs(self):
        return _SkyWcs(tan_wcs().to_header(), self._origin)

    def getPhotoCalib(self):
        return _Calib(self._calibration)

    def getPsf(self):
        return _Psf(self._arrays["psf"])


def test_afw_exposure_duck_typed_equals_ccddata_route(arrays):
    exposure = _FakeExposure(arrays, (300, 400), calibration=0.8)
    from_exposure = as_survey_image(exposure, name="science")
    ccd = full_ccddata(arrays, "adu", (300, 400))
    from_ccd = as_survey_image(ccd, name="science", calibration=0.8)
    for plane in ("image", "variance", "mask", "psf"):
        np.testing.assert_array_equal(getattr(from_exposure, plane), getattr(from_ccd, plane))
    assert from_exposure.mask_planes == from_ccd.mask_planes
    assert from_exposure.origin == from_ccd.origin == (300, 400)
    assert from_exposure.photo_calib == from_ccd.photo_calib == 0.8
    x, y = np.array([0.0, 49.0]), np.array([0.0, 39.0])
    np.testing.assert_allclose(
        from_exposure.wcs.all_pix2world(x, y, 0), from_ccd.wcs.all_pix2world(x, y, 0)
    )
