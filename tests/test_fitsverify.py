"""alertpack.tools.fitsverify with the real fitsverify; FITS conformance of our cutouts."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS

from alertpack.errors import InputError
from alertpack.inputs.images import as_survey_image
from alertpack.packets.cutouts import make_cutout_bytes
from alertpack.packets.stamp import CutoutStatus
from alertpack.packets.stamp_fits import stamp_fits_bytes
from alertpack.packets.survey_image import SurveyImage
from alertpack.tools.fitsverify import run_fitsverify

# No skip when fitsverify is missing: run_fitsverify then fails with the install hint.


def _header_block(cards: list[str]) -> bytes:
    text = "".join(card.ljust(80) for card in [*cards, "END"])
    return (text + " " * (-len(text) % 2880)).encode("ascii")


def _float_image(extra_cards: list[str]) -> bytes:
    cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                  -32",
        "NAXIS   =                    2",
        "NAXIS1  =                    4",
        "NAXIS2  =                    4",
        *extra_cards,
    ]
    return _header_block(cards) + bytes(2880)


def test_clean_file_has_no_problems():
    assert run_fitsverify(_float_image([])) == []


def test_warnings_and_errors_are_reported_one_line_each():
    problems = run_fitsverify(
        _float_image(
            [
                "BLANK   =                   -1",  # error: BLANK with floating-point data
                "EPOCH   =               2000.0",  # warning: deprecated
                "FOO     =                    1",
                "FOO     =                    2",  # warning: duplicated
            ]
        )
    )
    assert len(problems) == 3
    assert any(p.startswith("*** Error:") and "BLANK" in p for p in problems)
    assert any(p.startswith("*** Warning:") and "EPOCH" in p for p in problems)
    assert any("FOO is duplicated" in p for p in problems)


def test_unreadable_bytes_are_a_fatal_problem():
    problems = run_fitsverify(b"SIMPLE  = T".ljust(2880))
    assert problems and any("Fatal" in p or "Error" in p for p in problems)
    # the temporary file name never leaks into the report
    assert all("alertpack-fitsverify-" not in p for p in problems)


def test_missing_binary_gives_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InputError, match="apt-get install fitsverify"):
        run_fitsverify(_float_image([]))


def _survey_image(with_planes: bool) -> SurveyImage:
    shape = (120, 140)
    rng = np.random.default_rng(5)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [10.0, -30.0]
    wcs.wcs.crpix = [70.0, 60.0]
    wcs.wcs.cd = np.array([[-5e-5, 1e-5], [1e-5, 5e-5]])
    planes = {"BAD": 0, "SAT": 1, "DETECTED": 5, "DETECTED_NEGATIVE": 6} if with_planes else {}
    return SurveyImage(
        image=rng.normal(size=shape).astype(np.float32),
        variance=rng.uniform(1, 2, shape).astype(np.float32) if with_planes else None,
        mask=rng.integers(0, 3, shape).astype(np.int32) if with_planes else None,
        mask_planes=planes,
        wcs=wcs,
        origin=(1000, 2000),
        psf=np.full((7, 7), 1 / 49, np.float32) if with_planes else None,
        name="difference",
    )


@pytest.mark.parametrize("with_planes", [True, False])
@pytest.mark.parametrize("size", [29, 30, 102])
def test_cutouts_conform_to_the_fits_standard(with_planes, size):
    image = _survey_image(with_planes)
    x, y = np.array([70.3, 2.2, 139.0]), np.array([60.6, 3.1, 60.0])
    ra, dec = image.wcs.all_pix2world(x, y, 0)
    cutouts, status = make_cutout_bytes(image, ra, dec, size)
    assert CutoutStatus.PADDED in status.tolist()
    for data in cutouts:
        assert run_fitsverify(data) == []


def test_ccddata_cutout_bytes_conform():
    from astropy.nddata import CCDData, VarianceUncertainty

    image = _survey_image(True)
    ccd = CCDData(
        image.image[:30, :30],
        unit="nJy",
        wcs=image.wcs[:30, :30],
        uncertainty=VarianceUncertainty(image.variance[:30, :30]),
    )
    assert run_fitsverify(stamp_fits_bytes(as_survey_image(ccd, name="cutout"))) == []


def test_fk5_cutout_conforms():
    image = _survey_image(True)
    image.wcs.wcs.radesys = "FK5"
    image.wcs.wcs.equinox = 2000.0
    ra, dec = image.wcs.all_pix2world([50.5], [40.5], 0)
    (data,), _ = make_cutout_bytes(image, ra, dec, 31)
    assert run_fitsverify(data) == []
