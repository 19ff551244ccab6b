"""What an exposure says about its visit, read from afw's header keys on every input route.

The oracle is the header written here with astropy (and astropy's own time
conversion for the expected midpoints), not alertpack's reader.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.time import Time
from astropy.wcs import WCS

from alertpack.errors import ImageInputError
from alertpack.inputs.images import as_survey_image
from alertpack.inputs.visit_info import visit_info_from_header
from alertpack.packets.survey_image import VisitInfo

SHAPE = (20, 24)

#: the primary-header keys afw's setVisitInfoMetadata writes (a subset), as afw spells them
AFW_VISIT_KEYS = {
    "EXPID": 2026112500123,
    "EXPTIME": 30.0,
    "DATE-AVG": "2026-11-25T03:14:15.926535",
    "TIMESYS": "TAI",
    "MJD-AVG-UT1": 61004.13,
    "BORE-ROTANG": 123.25,
    "ROTTYPE": "SKY",
    "IDNUM": 2026112500123,
    "REASON": "wfd",
    "OBJECT": "lowdust",
}


def afw_layout(primary_keys: dict) -> fits.HDUList:
    """Empty primary with the visit keys, IMAGE/MASK/VARIANCE inheriting it (afw's layout)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [53.0, -28.0]
    wcs.wcs.crpix = [12.0, 10.0]
    wcs.wcs.cd = np.array([[-5.5e-5, 0.0], [0.0, 5.5e-5]])
    primary = fits.PrimaryHDU()
    for key, value in primary_keys.items():
        # keys longer than 8 characters are HIERARCH cards, as cfitsio writes them for afw
        primary.header.append(fits.Card(f"HIERARCH {key}" if len(key) > 8 else key, value))
    image_header = wcs.to_header()
    image_header["INHERIT"] = True
    image_header["BUNIT"] = "nJy"
    planes = [
        fits.ImageHDU(np.ones(SHAPE, np.float32), image_header, name="IMAGE"),
        fits.ImageHDU(np.zeros(SHAPE, np.int32), fits.Header({"INHERIT": True}), name="MASK"),
        fits.ImageHDU(np.ones(SHAPE, np.float32), fits.Header({"INHERIT": True}),
                      name="VARIANCE"),
    ]
    return fits.HDUList([primary, *planes])


def expected_afw_visit_info() -> VisitInfo:
    midpoint = Time(AFW_VISIT_KEYS["DATE-AVG"], format="isot", scale="tai").mjd
    return VisitInfo(
        visit_id=2026112500123,
        exposure_id=2026112500123,
        exposure_time_s=30.0,
        midpoint_mjd_tai=midpoint,
        boresight_rotation_deg=123.25,
        rotation_type="SKY",
        observation_reason="wfd",
        target_name="lowdust",
    )


@pytest.mark.parametrize("route", ["file", "hdulist"])
def test_afw_primary_header_keys_reach_the_survey_image(tmp_path, route):
    hdul = afw_layout(AFW_VISIT_KEYS)
    if route == "file":
        path = tmp_path / "calexp.fits"
        hdul.writeto(path)
        image = as_survey_image(path, name="science")
    else:
        image = as_survey_image(hdul, name="science")
    assert image.visit_info == expected_afw_visit_info()


def test_ccddata_meta_carries_the_same_keys():
    ccd = CCDData(np.ones(SHAPE, np.float32), unit="nJy", meta=dict(AFW_VISIT_KEYS),
                  wcs=WCS(afw_layout({})[1].header))
    assert as_survey_image(ccd, name="science").visit_info == expected_afw_visit_info()


def test_nothing_said_is_all_none(tmp_path):
    image = as_survey_image(afw_layout({}), name="template")
    assert image.visit_info == VisitInfo()


def test_image_header_overrides_the_primary():
    hdul = afw_layout(AFW_VISIT_KEYS)
    hdul[1].header.append(fits.Card("HIERARCH BORE-ROTANG", 10.5))
    assert as_survey_image(hdul, name="science").visit_info.boresight_rotation_deg == 10.5


def test_other_conventions_for_reason_and_midpoint():
    start = Time(61004.5, format="mjd", scale="utc")
    info = visit_info_from_header(
        {"OBSREASN": "ddf", "MJD-OBS": start.mjd, "EXPTIME": "30"}, "science image"
    )
    assert info.observation_reason == "ddf"
    assert info.exposure_time_s == 30.0  # old afw files: a numeric string
    midpoint = Time(start.mjd + 15.0 / 86400, format="mjd", scale="utc").tai.mjd
    assert info.midpoint_mjd_tai == pytest.approx(midpoint, abs=1e-9)
    assert visit_info_from_header({"MJD-AVG": 61000.25}, "x").midpoint_mjd_tai == 61000.25
    utc = visit_info_from_header({"DATE-AVG": "2026-11-25T00:00:00", "TIMESYS": "UTC"}, "x")
    assert utc.midpoint_mjd_tai == pytest.approx(
        Time("2026-11-25T00:00:00", scale="utc").tai.mjd, abs=1e-9
    )


def test_empty_scheduler_fields_are_none():
    info = visit_info_from_header({"REASON": "", "OBJECT": "   "}, "x")
    assert info.observation_reason is None and info.target_name is None


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"EXPTIME": "soon"}, r"EXPTIME = 'soon' is not a number"),
        ({"BORE-ROTANG": "north"}, r"BORE-ROTANG = 'north' is not a number"),
        ({"DATE-AVG": "yesterday", "TIMESYS": "TAI"}, r"DATE-AVG = 'yesterday' is not an ISO date"),
        ({"DATE-AVG": "2026-11-25T00:00:00", "TIMESYS": "GPS?"}, r"TIMESYS = 'GPS\?'"),
        ({"IDNUM": 1.5}, r"IDNUM = 1.5 is not a whole number"),
    ],
)
def test_unreadable_values_are_one_line_naming_image_and_key(keys, message):
    hdul = afw_layout(keys)
    with pytest.raises(ImageInputError, match=message) as error:
        as_survey_image(hdul, name="difference")
    assert "difference image" in str(error.value) and "\n" not in str(error.value)
