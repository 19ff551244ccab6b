"""A stamp as a standalone FITS file, written from pre-formatted header templates.

`stamp_fits_bytes` writes each stamp's headers from templates built once per
stamp shape and parent image (`functools.lru_cache`), only the per-stamp WCS
and origin cards formatted per stamp, and the pixels converted straight into
the output buffer. `alertpack.reference.cutouts` writes the same files with
`astropy.nddata.CCDData.write`; tests compare the two.

FITS layout of a stamp
----------------------
The layout astropy's `~astropy.nddata.CCDData` reads with its defaults, as
in Rubin's alert cutouts, plus LSST's mask planes and parent-frame keys:

- HDU 0 (``EXTNAME = 'IMAGE'``): float32 image, ``BUNIT = 'nJy'``;
- ``UNCERT``: float32 variance in nJy², ``UTYPE = 'VarianceUncertainty'``
  (present when the image has a variance);
- ``MASK``: int32 bit mask, ``MP_<NAME> = bit`` for every plane;
- ``PSFIMAGE``: float32 PSF image (present when the image has a PSF).

``CCDData.read(io.BytesIO(data))`` gives the image in nJy, the variance as
`~astropy.nddata.VarianceUncertainty`, the mask as booleans (all bits: read
the ``MASK`` extension with `astropy.io.fits`), the PSF and the WCS.

The image, variance and mask headers carry the same WCS, the stamp's
(`alertpack.packets.stamp_wcs`: the parent's TAN-SIP moved to the stamp, or
a TAN linearized at its center); ``LTV1``/``LTV2`` = minus the stamp origin
in the parent (detector) frame and the ``PHYSICAL`` alternate WCS ``A``
(``CRVAL1A``/``CRVAL2A`` = origin) giving parent pixel coordinates, both as
LSST writes them; ``ORIENTAT`` the position angle of the stamp's +y axis in
degrees east of north (the HST keyword for the same quantity); ``CUTOUT``
the name of the parent image; ``HASPSF`` whether the ``PSFIMAGE`` HDU is
there (``F``: the parent image had no PSF alertpack could give).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from alertpack.errors import InputError
from alertpack.packets.stamp import Stamp, whole_image_stamp
from alertpack.packets.stamp_wcs import SipTerms, tan_ctypes
from alertpack.packets.survey_image import SurveyImage, require_survey_image

__all__ = ["stamp_fits_bytes"]

_FITS_BLOCK = 2880
_PLANE_NAME = re.compile(r"[A-Z0-9_-]{1,60}")
_CARD = 80


def _quote(text: str) -> str:
    # a FITS string starts in column 11 (left-justified), at least 8 characters inside quotes
    return ("'" + text.replace("'", "''").ljust(8) + "'").ljust(20)


def _real(value: float) -> str:
    """A FITS real: shortest round-trip digits, with a decimal point or exponent."""
    text = repr(float(value))
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}E{int(exponent):+03d}"
    if "." not in text:
        text += ".0"
    return text


def _card(key: str, value: str, comment: str = "") -> str:
    card = f"{key:<8}= {value:>20}"
    if comment:
        card += f" / {comment}"
    return card[:_CARD].ljust(_CARD)


def _mask_plane_card(plane: str, bit: int) -> str:
    """``MP_<NAME> = bit``; names over 8 characters use a HIERARCH card, as LSST's files do."""
    key = f"MP_{plane}"
    if len(key) <= 8:
        return _card(key, str(bit), "mask plane bit")
    return f"HIERARCH {key} = {bit}"[:_CARD].ljust(_CARD)


def _sip_cards(sip: SipTerms) -> tuple[str, ...]:
    """``A_ORDER``, ``A_i_j``, ... header cards (nonzero terms only)."""
    cards: list[str] = []
    for prefix, terms in (("A", sip.a), ("B", sip.b), ("AP", sip.ap), ("BP", sip.bp)):
        if terms is None:
            continue
        order = len(terms) - 1
        cards.append(_card(f"{prefix}_ORDER", str(order), "SIP polynomial order"))
        for i in range(order + 1):
            for j in range(order + 1 - i):
                if terms[i][j] != 0.0:
                    cards.append(_card(f"{prefix}_{i}_{j}", _real(terms[i][j])))
    return tuple(cards)


def _block_pad(n_bytes: int) -> int:
    return -n_bytes % _FITS_BLOCK


# Cards that change per stamp, in order, with their comments.
_STAMP_CARDS = (
    ("CRPIX1", "reference pixel"),
    ("CRPIX2", "reference pixel"),
    ("CRVAL1", "[deg] RA at CRPIX"),
    ("CRVAL2", "[deg] Dec at CRPIX"),
    ("CD1_1", "[deg/pixel]"),
    ("CD1_2", "[deg/pixel]"),
    ("CD2_1", "[deg/pixel]"),
    ("CD2_2", "[deg/pixel]"),
    ("LTV1", "minus x0 of the stamp in the parent frame"),
    ("LTV2", "minus y0 of the stamp in the parent frame"),
    ("CRVAL1A", "parent x of the first pixel"),
    ("CRVAL2A", "parent y of the first pixel"),
    ("ORIENTAT", "[deg] position angle of +y, east of north"),
)


def _stamp_cards(stamp: Stamp) -> str:
    """The per-stamp WCS/origin cards, formatted once and shared by all HDUs."""
    wcs = stamp.local_wcs
    (cd11, cd12), (cd21, cd22) = wcs.cd
    x0, y0 = stamp.origin
    values = (
        _real(wcs.crpix[0]),
        _real(wcs.crpix[1]),
        _real(wcs.crval[0]),
        _real(wcs.crval[1]),
        _real(cd11),
        _real(cd12),
        _real(cd21),
        _real(cd22),
        _real(-x0),
        _real(-y0),
        _real(x0),
        _real(y0),
        _real(stamp.position_angle),
    )
    return "".join(
        _card(key, value, comment)
        for (key, comment), value in zip(_STAMP_CARDS, values, strict=True)
    )


@dataclass(frozen=True)
class _HduTemplate:
    """Header text before and after the per-stamp cards (END and padding included)."""

    head: str
    tail: str


@dataclass(frozen=True)
class _StampTemplate:
    image: _HduTemplate
    variance: _HduTemplate
    mask: _HduTemplate
    psf_header: bytes | None


def _structure_cards(bitpix: int, shape: tuple[int, ...], *, primary: bool) -> list[str]:
    cards = (
        [_card("SIMPLE", "T", "conforms to FITS standard")]
        if primary
        else [_card("XTENSION", _quote("IMAGE"), "image extension")]
    )
    cards.append(_card("BITPIX", str(bitpix), "array data type"))
    cards.append(_card("NAXIS", "2", "number of array dimensions"))
    cards.append(_card("NAXIS1", str(shape[1])))
    cards.append(_card("NAXIS2", str(shape[0])))
    if primary:
        cards.append(_card("EXTEND", "T", "extensions follow"))
    else:
        cards.append(_card("PCOUNT", "0", "number of parameters"))
        cards.append(_card("GCOUNT", "1", "number of groups"))
    return cards


def _constant_wcs_cards(
    radesys: str, equinox: float | None, sip_cards: tuple[str, ...] | None
) -> list[str]:
    ra_type, dec_type = tan_ctypes(sip_cards is not None)
    projection = "parent's TAN-SIP WCS" if sip_cards is not None else "linear at the center"
    cards = [
        _card("WCSAXES", "2", "number of WCS axes"),
        _card("CTYPE1", _quote(ra_type), projection),
        _card("CTYPE2", _quote(dec_type)),
        _card("CUNIT1", _quote("deg")),
        _card("CUNIT2", _quote("deg")),
        _card("RADESYS", _quote(radesys), "reference frame of RA/Dec"),
        *(sip_cards or ()),
    ]
    if equinox is not None:
        cards.append(_card("EQUINOX", _real(equinox)))
    cards += [
        _card("WCSNAMEA", _quote("PHYSICAL"), "parent (detector) pixel frame"),
        _card("CTYPE1A", _quote("LINEAR")),
        _card("CTYPE2A", _quote("LINEAR")),
        _card("CUNIT1A", _quote("pixel")),
        _card("CUNIT2A", _quote("pixel")),
        _card("CRPIX1A", "1.0"),
        _card("CRPIX2A", "1.0"),
    ]
    return cards


def _psf_card(has_psf: bool) -> str:
    """``HASPSF``: whether the stamp carries its parent's PSF (the ``PSFIMAGE`` HDU)."""
    if has_psf:
        return _card("HASPSF", "T", "the parent image's PSF is in PSFIMAGE")
    return _card("HASPSF", "F", "no PSF: the parent image has none alertpack can give")


def _hdu_template(head_cards: list[str], tail_cards: list[str]) -> _HduTemplate:
    n_cards = len(head_cards) + len(_STAMP_CARDS) + len(tail_cards) + 1
    end = "END".ljust(_CARD) + " " * _block_pad(n_cards * _CARD)
    return _HduTemplate(head="".join(head_cards), tail="".join(tail_cards) + end)


@functools.lru_cache(maxsize=256)
def _stamp_template(
    shape: tuple[int, int],
    name: str,
    mask_planes: tuple[tuple[str, int], ...],
    radesys: str,
    equinox: float | None,
    psf_shape: tuple[int, int] | None,
    sip: SipTerms | None = None,
) -> _StampTemplate:
    """Header templates for one stamp shape and parent image, built once."""
    _check_plane_names(dict(mask_planes))
    wcs_cards = _constant_wcs_cards(radesys, equinox, None if sip is None else _sip_cards(sip))
    image = _hdu_template(
        [
            *_structure_cards(-32, shape, primary=True),
            _card("EXTNAME", _quote("IMAGE"), "stamp pixels"),
            _card("BUNIT", _quote("nJy"), "spectral flux density"),
            _card("CUTOUT", _quote(name[:60]), "image the stamp was cut from"),
            _psf_card(psf_shape is not None),
            *wcs_cards,
        ],
        [],
    )
    variance = _hdu_template(
        [
            *_structure_cards(-32, shape, primary=False),
            _card("EXTNAME", _quote("UNCERT"), "variance of the pixels"),
            _card("UTYPE", _quote("VarianceUncertainty"), "astropy uncertainty class"),
            _card("BUNIT", _quote("nJy2"), "variance unit"),
            *wcs_cards,
        ],
        [],
    )
    mask = _hdu_template(
        [
            *_structure_cards(32, shape, primary=False),
            _card("EXTNAME", _quote("MASK"), "bit mask"),
            *wcs_cards,
        ],
        [_mask_plane_card(plane, bit) for plane, bit in mask_planes],
    )
    psf_header = None
    if psf_shape is not None:
        cards = [
            *_structure_cards(-32, psf_shape, primary=False),
            _card("EXTNAME", _quote("PSFIMAGE"), "PSF of the parent image"),
            "END".ljust(_CARD),
        ]
        text = "".join(cards)
        psf_header = (text + " " * _block_pad(len(text))).encode("ascii")
    return _StampTemplate(image=image, variance=variance, mask=mask, psf_header=psf_header)


def stamp_fits_bytes(stamp: Stamp | SurveyImage) -> bytes:
    """A stamp as a standalone FITS file (layout in the module docstring).

    Parameters
    ----------
    stamp : `~alertpack.packets.stamp.Stamp` or \
            `~alertpack.packets.survey_image.SurveyImage`
        A stamp from `~alertpack.packets.cutouts.extract_stamps`, or a whole
        small image, written with a WCS linearized at its center (convert a
        CCDData cutout with ``alertpack.as_survey_image(ccd, name="cutout")``).

    Returns
    -------
    data : `bytes`

    Raises
    ------
    alertpack.errors.InputError
        For another type of ``stamp``, mask plane names that cannot be FITS
        keywords, or a whole image whose WCS fails at its center.
    """
    if not isinstance(stamp, Stamp):
        image = require_survey_image(stamp, "stamp_fits_bytes takes a Stamp or a SurveyImage")
        stamp = whole_image_stamp(image)
    template = _stamp_template(
        stamp.image.shape,
        stamp.name,
        tuple(stamp.mask_planes.items()),
        stamp.local_wcs.radesys,
        stamp.local_wcs.equinox,
        None if stamp.psf is None else stamp.psf.shape,
        stamp.local_wcs.sip,
    )
    dynamic = _stamp_cards(stamp)
    hdus: list[tuple[bytes, np.ndarray, str]] = [
        ((template.image.head + dynamic + template.image.tail).encode("ascii"), stamp.image, ">f4")
    ]
    if stamp.variance is not None:
        header = template.variance.head + dynamic + template.variance.tail
        hdus.append((header.encode("ascii"), stamp.variance, ">f4"))
    header = template.mask.head + dynamic + template.mask.tail
    hdus.append((header.encode("ascii"), stamp.mask, ">i4"))
    if stamp.psf is not None:
        assert template.psf_header is not None  # the template was made with the PSF's shape
        hdus.append((template.psf_header, stamp.psf, ">f4"))
    return _assemble(hdus)


def _assemble(hdus: list[tuple[bytes, np.ndarray, str]]) -> bytes:
    """Headers and big-endian data, each data unit zero-padded to whole FITS blocks.

    The pixels are converted straight into the output buffer, so each is
    copied once before the final `bytes`.
    """
    sizes = [(len(header), array.size * 4) for header, array, _ in hdus]
    total = sum(h + d + _block_pad(d) for h, d in sizes)
    buffer = np.zeros(total, dtype=np.uint8)
    offset = 0
    for (header, array, dtype), (header_size, data_size) in zip(hdus, sizes, strict=True):
        buffer[offset : offset + header_size] = np.frombuffer(header, dtype=np.uint8)
        offset += header_size
        target = buffer[offset : offset + data_size].view(dtype).reshape(array.shape)
        target[...] = array
        offset += data_size + _block_pad(data_size)
    return buffer.tobytes()


def _check_plane_names(planes: dict[str, int]) -> None:
    for plane in planes:
        if _PLANE_NAME.fullmatch(plane) is None:
            raise InputError(
                f"mask plane name {plane!r} cannot be a FITS keyword; use up to 60 characters "
                "A-Z, 0-9, '_' or '-'"
            )
