"""One FITS exposure layout: a file read by path (lazily) and as an HDUList (in memory) agree.

Every layout alertpack reads is written here with astropy alone, then read
both ways through `alertpack.inputs.images.as_survey_image`: the pixels,
variance, mask, mask planes, WCS, origin and PSF are equal, and equal to what
was written (the oracle is the arrays written, not alertpack's reader). Every
bad layout gives the same one-line error both ways, naming the HDU.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, InverseVariance, StdDevUncertainty, VarianceUncertainty
from astropy.wcs import WCS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertpack.errors import ImageInputError
from alertpack.inputs.images import as_survey_image
from alertpack.packets.survey_image import LazyPlane, SurveyImage

SHAPE = (64, 90)  # (ny, nx)
ORIGIN = (1200, 3400)  # (x0, y0) in the detector
PLANES = {"BAD": 0, "SAT": 1, "CR": 3, "DETECTED": 5, "NO_DATA": 8}
WINDOWS = [(0, 10, 0, 12), (20, 41, 33, 90), (63, 64, 0, 90), (5, 6, 7, 8)]  # y0, y1, x0, x1


def tan_wcs() -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [SHAPE[1] / 2, SHAPE[0] / 2]
    wcs.wcs.cd = np.array([[-5.5e-5, 1e-6], [1e-6, 5.5e-5]])
    return wcs


def image_header(bunit: str | None = "nJy") -> fits.Header:
    header = tan_wcs().to_header()
    if bunit is not None:
        header["BUNIT"] = bunit
    header["LTV1"], header["LTV2"] = -ORIGIN[0], -ORIGIN[1]
    return header


def mask_header(planes=PLANES) -> fits.Header:
    header = fits.Header()
    for plane, bit in planes.items():
        header.append(fits.Card(f"HIERARCH MP_{plane}", bit) if len(plane) > 5 else (
            f"MP_{plane}", bit))
    return header


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(16)
    bits = np.array(list(PLANES.values()))
    return {
        "image": rng.normal(100, 30, SHAPE).astype(np.float32),
        "variance": rng.uniform(40, 60, SHAPE).astype(np.float32),
        "mask": np.bitwise_or.reduce(
            (rng.random((len(bits), *SHAPE)) < 0.2) << bits[:, None, None], axis=0
        ).astype(np.int32),
        "psf": np.outer(np.hanning(7), np.hanning(7)).astype(np.float32),
    }


def lsst_hdus(arrays, *, compression: str | None = None, mask=None, mask_planes=PLANES):
    """The LSST Exposure layout: empty primary, IMAGE/MASK/VARIANCE, MP_* keys, PSF."""
    def extension(data, header, name):
        if compression is None:
            return fits.ImageHDU(data, header, name=name)
        options = {} if compression == "RICE_1" else {"quantize_level": 0}
        return fits.CompImageHDU(
            data, header, name=name, compression_type=compression, **options
        )

    return [
        fits.PrimaryHDU(),
        extension(arrays["image"], image_header(), "IMAGE"),
        extension(arrays["mask"] if mask is None else mask, mask_header(mask_planes), "MASK"),
        extension(arrays["variance"], image_header(None), "VARIANCE"),
        fits.ImageHDU(arrays["psf"], name="PSF"),
    ]


def write(path: Path, hdus) -> Path:
    fits.HDUList(hdus).writeto(path)
    return path


def both_ways(path: Path, **options) -> tuple[SurveyImage, SurveyImage]:
    lazy = as_survey_image(path, name="difference", **options)
    with fits.open(path) as hdul:
        eager = as_survey_image(hdul, name="difference", **options)
    return lazy, eager


def assert_same_image(lazy: SurveyImage, eager: SurveyImage) -> None:
    """The two paths' images are equal in every part (the lazy one window by window too)."""
    assert isinstance(lazy.image, LazyPlane) and isinstance(eager.image, np.ndarray)
    for part in ("image", "variance", "mask"):
        lazy_plane, eager_plane = getattr(lazy, part), getattr(eager, part)
        assert (lazy_plane is None) == (eager_plane is None), part
        if eager_plane is None:
            continue
        assert lazy_plane.dtype == eager_plane.dtype, part
        np.testing.assert_array_equal(np.asarray(lazy_plane), eager_plane, err_msg=part)
        for y0, y1, x0, x1 in WINDOWS:
            np.testing.assert_array_equal(
                lazy_plane[y0:y1, x0:x1], eager_plane[y0:y1, x0:x1], err_msg=part
            )
    assert lazy.mask_planes == eager.mask_planes
    assert lazy.origin == eager.origin
    assert lazy.photo_calib == eager.photo_calib
    assert lazy.wcs.to_header_string() == eager.wcs.to_header_string()
    assert (lazy.psf is None) == (eager.psf is None)
    if eager.psf is not None:
        np.testing.assert_array_equal(lazy.psf, eager.psf)


def assert_written_wcs(image: SurveyImage) -> None:
    x, y = np.array([0.0, 45.0, 89.0]), np.array([0.0, 30.0, 63.0])
    np.testing.assert_allclose(
        image.wcs.all_pix2world(x, y, 0), tan_wcs().all_pix2world(x, y, 0), rtol=0, atol=1e-12
    )


# --- every layout: both paths give the same image, the image written -----------------------------


def test_single_hdu(tmp_path, arrays):
    path = write(tmp_path / "single.fits", [fits.PrimaryHDU(arrays["image"], image_header("uJy"))])
    lazy, eager = both_ways(path)
    assert_same_image(lazy, eager)
    np.testing.assert_allclose(eager.image, arrays["image"] * 1e3, rtol=1e-6)
    assert eager.variance is None and eager.mask is None and eager.psf is None
    assert eager.mask_planes == {} and eager.origin == ORIGIN
    assert_written_wcs(eager)


@pytest.mark.parametrize("compression", [None, "GZIP_1", "GZIP_2", "RICE_1"])
def test_lsst_layout_plain_and_tile_compressed(tmp_path, arrays, compression):
    path = write(tmp_path / "lsst.fits", lsst_hdus(arrays, compression=compression))
    lazy, eager = both_ways(path)
    assert_same_image(lazy, eager)
    if compression == "RICE_1":
        # lossy: both paths decompress the same quantized values
        np.testing.assert_allclose(eager.image, arrays["image"], atol=3.0)
    else:
        np.testing.assert_array_equal(eager.image, arrays["image"])
        np.testing.assert_array_equal(eager.variance, arrays["variance"])
    np.testing.assert_array_equal(eager.mask, arrays["mask"])  # integer planes: lossless
    np.testing.assert_array_equal(eager.psf, arrays["psf"])
    assert eager.mask_planes == PLANES and eager.origin == ORIGIN
    assert_written_wcs(eager)


@pytest.mark.parametrize(
    ("uncertainty", "variance_of"),
    [
        (VarianceUncertainty, lambda v: v),
        (StdDevUncertainty, np.sqrt),
        (InverseVariance, lambda v: 1 / v),
        (None, np.sqrt),  # no UTYPE: astropy's reader takes a standard deviation
    ],
)
def test_ccddata_file_with_uncert_and_boolean_mask(tmp_path, arrays, uncertainty, variance_of):
    values = variance_of(arrays["variance"].astype(np.float64))
    path = tmp_path / "ccd.fits"
    CCDData(
        arrays["image"], unit="nJy", wcs=tan_wcs(), mask=arrays["mask"] > 0,
        uncertainty=StdDevUncertainty(values) if uncertainty is None else uncertainty(values),
        meta={"LTV1": -ORIGIN[0], "LTV2": -ORIGIN[1]},
    ).write(path)
    if uncertainty is None:
        with fits.open(path, mode="update") as hdul:
            del hdul["UNCERT"].header["UTYPE"]
    with fits.open(path) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "MASK", "UNCERT"]
    lazy, eager = both_ways(path)
    assert_same_image(lazy, eager)
    np.testing.assert_array_equal(eager.image, arrays["image"])
    np.testing.assert_allclose(eager.variance, arrays["variance"], rtol=1e-6)
    # CCDData's boolean mask (unsigned bytes, no plane names) is the BAD plane
    assert eager.mask_planes == {"BAD": 0}
    np.testing.assert_array_equal(eager.mask, (arrays["mask"] > 0).astype(np.int32))
    assert eager.origin == ORIGIN
    assert_written_wcs(eager)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "uint16", "int16", "uint32", "int64"])
def test_integer_masks_of_any_type_keep_their_bits(tmp_path, arrays, dtype):
    # int8 is stored as BITPIX 8 with BZERO -128, uint16/uint32 with their BZERO offsets
    info = np.iinfo(dtype)
    mask = np.random.default_rng(5).integers(info.min, info.max, SHAPE, dtype=dtype,
                                             endpoint=True)
    path = write(tmp_path / f"{dtype}.fits", lsst_hdus(arrays, mask=mask))
    with fits.open(path) as hdul:
        assert (hdul["MASK"].header.get("BZERO", 0) != 0) == (dtype in ("int8", "uint16",
                                                                        "uint32"))
    lazy, eager = both_ways(path)
    assert_same_image(lazy, eager)
    # each stored bit is that bit: the unsigned pattern of the value, its low 32 bits
    pattern = mask.view(f"u{mask.dtype.itemsize}").astype(np.uint64)
    np.testing.assert_array_equal(eager.mask.view(np.uint32), pattern & 0xFFFFFFFF)
    assert eager.mask_planes == PLANES


def test_unsigned_byte_mask_with_planes_is_bits(tmp_path, arrays):
    mask = (arrays["mask"] & 0xFF).astype(np.uint8)
    path = write(tmp_path / "bytes.fits", lsst_hdus(arrays, mask=mask))
    lazy, eager = both_ways(path)
    assert_same_image(lazy, eager)
    np.testing.assert_array_equal(eager.mask, mask.astype(np.int32))
    assert eager.mask_planes == PLANES


def test_compressed_signed_byte_mask(tmp_path, arrays):
    mask = (arrays["mask"] - 128).astype(np.int8)  # BZERO -128 in the compressed header
    path = write(tmp_path / "i1.fits", lsst_hdus(arrays, compression="GZIP_2", mask=mask))
    lazy, eager = both_ways(path)
    assert_same_image(lazy, eager)
    np.testing.assert_array_equal(eager.mask, mask.view(np.uint8).astype(np.int32))


def test_counts_with_calibration_both_ways(tmp_path, arrays):
    hdus = lsst_hdus(arrays)
    hdus[1].header["BUNIT"] = "adu"
    path = write(tmp_path / "counts.fits", hdus)
    lazy, eager = both_ways(path, calibration=0.5)
    assert_same_image(lazy, eager)
    assert eager.photo_calib == 0.5
    np.testing.assert_allclose(eager.image, arrays["image"] * 0.5, rtol=1e-6)
    np.testing.assert_allclose(eager.variance, arrays["variance"] * 0.25, rtol=1e-6)


def test_psf_extension_names_in_order_of_preference(tmp_path, arrays):
    hdus = lsst_hdus(arrays)
    other = np.ones((3, 3), np.float32)
    # PSFIMAGE before PSF in the file: PSF is still the one taken, both ways
    hdus.insert(4, fits.ImageHDU(other, name="PSFIMAGE"))
    path = write(tmp_path / "psfs.fits", hdus)
    lazy, eager = both_ways(path)
    assert_same_image(lazy, eager)
    np.testing.assert_array_equal(eager.psf, arrays["psf"])


# --- every bad layout: the same one-line error both ways -----------------------------------------


def _without(hdus, name):
    return [hdu for hdu in hdus if hdu.name != name]


def _replaced(hdus, name, hdu):
    return [hdu if old.name == name else old for old in hdus]


def _with_header(hdus, name, **cards):
    for hdu in hdus:
        if hdu.name == name:
            for key, value in cards.items():
                if value is None:
                    del hdu.header[key]
                else:
                    hdu.header[key] = value
    return hdus


def _image_without_wcs(arrays):
    header = image_header()
    for key in [k for k in header if k.startswith(("CTYPE", "CRVAL", "CRPIX", "CD", "PC"))]:
        del header[key]
    return fits.ImageHDU(arrays["image"], header, name="IMAGE")


BAD_LAYOUTS = {
    "no IMAGE": (lambda a: _without(lsst_hdus(a), "IMAGE"),
                 "has MASK and VARIANCE and PSF extension(s) but no IMAGE extension"),
    "empty IMAGE": (lambda a: _replaced(lsst_hdus(a), "IMAGE", fits.ImageHDU(name="IMAGE")),
                    "HDU 1 (IMAGE): the IMAGE extension is not an image with pixels"),
    "table only": (lambda a: [fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
                       [fits.Column("a", "E", array=[1.0])])], "no image HDU with data"),
    "3-D image": (lambda a: [fits.PrimaryHDU(np.zeros((2, *SHAPE), np.float32), image_header())],
                  "HDU 0 (PRIMARY): data has 3 dimensions"),
    "variance shape": (
        lambda a: _replaced(lsst_hdus(a), "VARIANCE",
                            fits.ImageHDU(np.zeros((4, 4), np.float32), name="VARIANCE")),
        r"HDU 3 (VARIANCE): extension VARIANCE has shape (4, 4) but the image has shape"),
    "variance is a table": (
        lambda a: _replaced(lsst_hdus(a), "VARIANCE", fits.BinTableHDU.from_columns(
            [fits.Column("a", "E", array=[1.0])], name="VARIANCE")),
        "HDU 3 (VARIANCE): extension VARIANCE has shape None"),
    "mask shape": (
        lambda a: _replaced(lsst_hdus(a), "MASK",
                            fits.ImageHDU(np.zeros((SHAPE[1], SHAPE[0]), np.int32), name="MASK")),
        "HDU 2 (MASK): extension MASK has shape (90, 64)"),
    "float mask": (
        lambda a: _replaced(lsst_hdus(a), "MASK",
                            fits.ImageHDU(a["mask"].astype(np.float32), name="MASK")),
        "HDU 2 (MASK): the MASK extension holds floating-point data (BITPIX -32"),
    "scaled byte mask": (
        lambda a: _with_header(lsst_hdus(a, mask=(a["mask"] & 0x7F).astype(np.uint8)), "MASK",
                               BZERO=128),
        "HDU 2 (MASK): the MASK extension holds floating-point data (BITPIX 8, BZERO 128"),
    "mask with BSCALE": (
        lambda a: _with_header(lsst_hdus(a, mask=a["mask"].astype(np.int16)), "MASK",
                               BSCALE=2.0),
        "holds floating-point data (BITPIX 16, BZERO 0, BSCALE 2)"),
    "mask BZERO not a number": (
        lambda a: _with_header(lsst_hdus(a, mask=a["mask"].astype(np.int16)), "MASK",
                               BZERO="zero"),
        "HDU 2 (MASK): BZERO = 'zero' is not a number"),
    "mask plane not a bit": (
        lambda a: _with_header(lsst_hdus(a), "MASK", MP_EDGE="four"),
        "HDU 2 (MASK): mask plane key MP_EDGE = 'four' is not an integer bit number"),
    "two MASK HDUs": (
        lambda a: [*lsst_hdus(a), fits.ImageHDU(a["mask"], name="MASK")],
        "HDUs 2 (MASK), 5 (MASK) are all named MASK"),
    "unknown UTYPE": (
        lambda a: [fits.PrimaryHDU(a["image"], image_header()),
                   fits.ImageHDU(a["variance"], fits.Header({"UTYPE": "Quartiles"}),
                                 name="UNCERT")],
        "HDU 1 (UNCERT): UTYPE 'Quartiles' is not an uncertainty class"),
    "PSF is a table": (
        lambda a: _replaced(lsst_hdus(a), "PSF", fits.BinTableHDU.from_columns(
            [fits.Column("a", "E", array=[1.0])], name="PSF")),
        "HDU 4 (PSF): the PSF extension is not an image"),
    "3-D PSF": (
        lambda a: _replaced(lsst_hdus(a), "PSF",
                            fits.ImageHDU(np.zeros((2, 5, 5), np.float32), name="PSF")),
        "HDU 4 (PSF): the PSF has shape (2, 5, 5)"),
    "no BUNIT": (lambda a: _with_header(lsst_hdus(a), "IMAGE", BUNIT=None),
                 "HDU 1 (IMAGE): no BUNIT in the header"),
    "unknown BUNIT": (lambda a: _with_header(lsst_hdus(a), "IMAGE", BUNIT="furlongs"),
                      "HDU 1 (IMAGE): BUNIT 'furlongs'"),
    "no WCS": (lambda a: _replaced(lsst_hdus(a), "IMAGE", _image_without_wcs(a)),
               "HDU 1 (IMAGE): the WCS has no celestial axes"),
    "fractional LTV": (lambda a: _with_header(lsst_hdus(a), "IMAGE", LTV1=-0.5),
                       "HDU 1 (IMAGE): LTV1 = -0.5 is not a whole number of pixels"),
}


@pytest.mark.parametrize("case", list(BAD_LAYOUTS))
def test_bad_layout_is_the_same_error_both_ways(tmp_path, arrays, case):
    build, expected = BAD_LAYOUTS[case]
    path = tmp_path / "bad.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's warnings on writing odd headers
        write(path, build(arrays))
    with pytest.raises(ImageInputError) as lazy:
        as_survey_image(path, name="difference")
    with fits.open(path) as hdul, pytest.raises(ImageInputError) as eager:
        as_survey_image(hdul, name="difference")
    lazy_message, eager_message = str(lazy.value), str(eager.value)
    assert "\n" not in lazy_message
    assert lazy_message.startswith(f"difference image ({path})")
    assert expected in lazy_message, lazy_message
    assert lazy_message.replace(str(path), "the HDUList") == eager_message


def test_headers_are_checked_before_pixels_in_memory(tmp_path, arrays):
    # truncated pixels and a bad unit: the unit (a header) is the error, no pixel is read
    path = write(tmp_path / "lsst.fits", _with_header(lsst_hdus(arrays), "IMAGE", BUNIT="furlongs"))
    with fits.open(path) as hdul:
        data_start = hdul.fileinfo(1)["datLoc"]
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(path.read_bytes()[: data_start + 100])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(truncated) as hdul, pytest.raises(ImageInputError, match="furlongs"):
            as_survey_image(hdul, name="difference")
        # with a good unit the damaged pixels are the error, naming the HDU
        good = tmp_path / "good.fits"
        write(good, lsst_hdus(arrays))
        good_truncated = tmp_path / "good-truncated.fits"
        with fits.open(good) as hdul:
            data_start = hdul.fileinfo(1)["datLoc"]
        good_truncated.write_bytes(good.read_bytes()[: data_start + 100])
        with fits.open(good_truncated) as hdul, pytest.raises(
            ImageInputError, match=r"\(the HDUList\), HDU 1 \(IMAGE\): its pixels cannot be read"
        ):
            as_survey_image(hdul, name="difference")


def test_uncert_file_by_path_does_not_import_nddata(tmp_path, arrays):
    path = tmp_path / "ccd.fits"
    CCDData(arrays["image"], unit="nJy", wcs=tan_wcs(),
            uncertainty=InverseVariance(1 / arrays["variance"])).write(path)
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from alertpack.inputs.images import as_survey_image\n"
        f"image = as_survey_image({str(path)!r}, name='template')\n"
        "assert image.variance[0:5, 0:5].dtype == np.float32\n"
        "assert 'astropy.nddata' not in sys.modules\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr[-2000:]


# --- damaged headers: one line both ways, never a traceback -------------------------------------


def _with_value(data: bytes, keyword: str, value: str) -> bytes:
    """``data`` with the value field (columns 11-30) of the first ``keyword`` card replaced."""
    start = data.index(f"{keyword:<8}= ".encode())
    return data[: start + 10] + f"{value:>20}".encode() + data[start + 30 :]


def _errors_both_ways(path: Path) -> tuple[str, str]:
    with pytest.raises(ImageInputError) as lazy:
        as_survey_image(path, name="difference")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdul, pytest.raises(ImageInputError) as eager:
            as_survey_image(hdul, name="difference")
    messages = str(lazy.value), str(eager.value)
    assert all("\n" not in message for message in messages)
    return messages


def test_unparsable_mask_card_names_the_hdu(tmp_path, arrays):
    path = write(tmp_path / "lsst.fits", lsst_hdus(arrays))
    bad = tmp_path / "bad.fits"
    bad.write_bytes(_with_value(path.read_bytes(), "MP_SAT", "1.2.3"))
    # astropy reads the card as a string when it loads every HDU at open (the path), and
    # fails on its first use when it loads them lazily (an HDUList): one line either way
    for message in _errors_both_ways(bad):
        assert "HDU 2 (MASK): " in message and "MP_SAT" in message, message


def test_wcslib_error_is_one_line(tmp_path, arrays):
    header = image_header()
    header["CUNIT1"] = "'deg'V"
    path = write(tmp_path / "unit.fits", [fits.PrimaryHDU(arrays["image"], header)])
    lazy, eager = _errors_both_ways(path)
    assert "HDU 0 (PRIMARY): the header WCS cannot be read" in lazy
    assert lazy.replace(str(path), "the HDUList") == eager


@pytest.mark.filterwarnings("ignore:divide by zero")  # astropy's tile count of ZTILE1 = 0
def test_compressed_tiles_of_no_pixels_are_one_line(tmp_path, arrays):
    path = write(tmp_path / "gzip.fits", lsst_hdus(arrays, compression="GZIP_2"))
    bad = tmp_path / "bad.fits"
    bad.write_bytes(_with_value(path.read_bytes(), "ZTILE1", "0"))
    with pytest.raises(ImageInputError, match=r"bad.fits\), HDU 1 \(IMAGE\)") as error:
        as_survey_image(bad, name="difference").image[0:5, 0:5]
    assert "\n" not in str(error.value)


@st.composite
def _damaged_headers(draw, data: bytes, spans: list[tuple[int, int]]) -> bytes:
    damaged = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        start, end = draw(st.sampled_from(spans))
        damaged[draw(st.integers(start, end - 1))] = draw(st.sampled_from(
            list(b"0123456789 -+.'=ABCDEFGHIJKLMNOPQRSTUVWXYZ\x00")))
    return bytes(damaged)


def _fuzz_headers(examples: int, derandomize: bool):
    @settings(max_examples=examples, deadline=None, derandomize=derandomize, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data(), compression=st.sampled_from([None, "GZIP_2"]))
    def test(tmp_path, arrays, data, compression):
        """Headers with damaged bytes: an image or one ImageInputError line, both ways."""
        path = tmp_path / f"good-{compression}.fits"
        if not path.exists():
            write(path, lsst_hdus(arrays, compression=compression))
        with fits.open(path) as hdul:
            spans = [(hdul.fileinfo(i)["hdrLoc"], hdul.fileinfo(i)["datLoc"])
                     for i in range(len(hdul))]
        damaged = tmp_path / "damaged.fits"
        damaged.write_bytes(data.draw(_damaged_headers(path.read_bytes(), spans)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                hdul = fits.open(damaged)
            except Exception:  # astropy's own refusal: only the path route is ours
                hdul = None
            for source in (damaged, hdul):
                if source is None:
                    continue
                try:
                    image = as_survey_image(source, name="difference")
                    for plane in (image.image, image.mask, image.variance):
                        if plane is not None:
                            plane[0:5, 0:5]
                except ImageInputError as error:
                    assert "\n" not in str(error)
            if hdul is not None:
                hdul.close()

    return test


test_fuzz_damaged_headers = _fuzz_headers(60, True)
test_soak_fuzz_damaged_headers = pytest.mark.soak(_fuzz_headers(3000, False))
