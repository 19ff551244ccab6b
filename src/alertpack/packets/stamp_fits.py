"""A stamp as a standalone FITS file, written from pre-formatted header templates.

`stamp_fits_bytes` writes each stamp's headers from templates built once per
stamp shape and parent image (`functools.lru_cache`), only the per-stamp WCS
and origin cards formatted per stamp, and the pixels converted straight into
the output buffer. `stamp_hdus` gives the same HDUs unassembled, for the
compressed variants (`alertpack.packets.stamp_compression`).
`alertpack.reference.cutouts` writes the same planes with
`astropy.nddata.CCDData.write`; tests compare the two.

FITS layout of a stamp
----------------------
The layout astropy's `~astropy.nddata.CCDData` reads with its defaults, as
in Rubin's alert cutouts, plus LSST's mask planes and parent-frame keys,
each card written once:

- HDU 0 (``EXTNAME = 'IMAGE'``): float32 image, ``BUNIT = 'nJy'``, and
  every card that describes the stamp: its WCS, origin, orientation;
- ``UNCERT``: float32 variance in nJy², ``UTYPE = 'VarianceUncertainty'``
  (present when the image has a variance), ``INHERIT = T``;
- ``MASK``: the bit mask, ``MP_<NAME> = bit`` for every plane,
  ``INHERIT = T``; stored in the smallest integer type that holds every
  bit set in the stamp (``BITPIX`` 8 up to bit 7, 16 up to bit 14, else 32:
  the values are the same). A plane declared on a higher bit that no pixel
  of the stamp has does not widen it: Rubin declares some 20 planes, and a
  stamp rarely holds the high ones;
- ``PSFIMAGE``: float32 PSF image (present when the image has a PSF).

``CCDData.read(io.BytesIO(data))`` gives the image in nJy, the variance as
`~astropy.nddata.VarianceUncertainty`, the mask as booleans (all bits: read
the ``MASK`` extension with `astropy.io.fits`), the PSF and the WCS.
``INHERIT = T`` (the FITS convention) says the variance and the mask share
the primary header's WCS and keys: readers that follow it (CFITSIO, DS9)
see them there; astropy reads the WCS from the primary.

Cards of the primary header: the stamp's WCS (`alertpack.packets.stamp_wcs`:
the parent's TAN-SIP moved to the stamp, or a TAN linearized at its
center); for a stamp in the parent's pixel frame ``LTV1``/``LTV2`` = minus
the stamp origin in the parent (detector) frame and the ``PHYSICAL``
alternate WCS ``A`` (``CRVAL1A``/``CRVAL2A`` = origin) giving parent pixel
coordinates, both as LSST writes them; ``CUTMINX``/``CUTMINY`` as LSST's
alert cutouts carry them (0-based parent pixel = 1-based stamp pixel +
``CUTMIN``: the origin minus one); ``ROTPA`` the position angle of the focal
plane's +Y axis (its comment says whether from the boresight rotation or the
WCS); ``ORIENTAT`` the position angle of the stamp's +y axis in degrees east
of north (the HST keyword for the same quantity); ``CUTOUT`` the name of the
parent image; ``HASPSF`` whether the ``PSFIMAGE`` HDU is there (``F``: the
parent image had no PSF alertpack could give). A north-up stamp
(`alertpack.packets.stamp_orientation`) carries ``NORTHUP = T`` and
``ORIENTOP``, what was done to it, instead of ``LTV``/``A`` (its pixels are
no longer parent pixels plus an offset).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import numpy as np

from alertpack.errors import InputError
from alertpack.packets.stamp import Stamp, whole_image_stamp
from alertpack.packets.stamp_wcs import SipTerms, tan_ctypes
from alertpack.packets.survey_image import SurveyImage, require_survey_image

__all__ = [
    "FITS_BLOCK",
    "StampHdu",
    "card",
    "end_and_padding",
    "fits_real",
    "fits_string",
    "stamp_fits_bytes",
    "stamp_hdus",
]

#: bytes of a FITS block: every header and data unit fills whole blocks
FITS_BLOCK = 2880
_PLANE_NAME = re.compile(r"[A-Z0-9_-]{1,60}")
_CARD = 80


def fits_string(text: str) -> str:
    """A FITS string value as a card holds it, quoted."""
    # a FITS string starts in column 11 (left-justified), at least 8 characters inside quotes
    return ("'" + text.replace("'", "''").ljust(8) + "'").ljust(20)


def fits_real(value: float) -> str:
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


def card(key: str, value: str, comment: str = "") -> str:
    """One 80-character header card; ``value`` already in FITS form (see `quoted`)."""
    text = f"{key:<8}= {value:>20}"
    if comment:
        text += f" / {comment}"
    return text[:_CARD].ljust(_CARD)


def end_and_padding(header_length: int) -> str:
    """The ``END`` card and the blanks that fill a header of ``header_length`` bytes to a block."""
    return "END".ljust(_CARD) + " " * _block_pad(header_length + _CARD)


def _mask_plane_card(plane: str, bit: int) -> str:
    """``MP_<NAME> = bit``; names over 8 characters use a HIERARCH card, as LSST's files do."""
    key = f"MP_{plane}"
    if len(key) <= 8:
        return card(key, str(bit))
    return f"HIERARCH {key} = {bit}"[:_CARD].ljust(_CARD)


def _sip_cards(sip: SipTerms) -> tuple[str, ...]:
    """``A_ORDER``, ``A_i_j``, ... header cards (nonzero terms only)."""
    cards: list[str] = []
    for prefix, terms in (("A", sip.a), ("B", sip.b), ("AP", sip.ap), ("BP", sip.bp)):
        if terms is None:
            continue
        order = len(terms) - 1
        cards.append(card(f"{prefix}_ORDER", str(order), "SIP polynomial order"))
        for i in range(order + 1):
            for j in range(order + 1 - i):
                if terms[i][j] != 0.0:
                    cards.append(card(f"{prefix}_{i}_{j}", fits_real(terms[i][j])))
    return tuple(cards)


def _block_pad(n_bytes: int) -> int:
    return -n_bytes % FITS_BLOCK


@functools.lru_cache(maxsize=64)
def structure_cards(bitpix: int, shape: tuple[int, ...], *, primary: bool) -> str:
    """``SIMPLE``/``XTENSION`` to ``EXTEND``/``GCOUNT`` of a 2-D image HDU."""
    cards = (
        [card("SIMPLE", "T", "conforms to FITS standard")]
        if primary
        else [card("XTENSION", fits_string("IMAGE"), "image extension")]
    )
    cards.append(card("BITPIX", str(bitpix), "array data type"))
    cards.append(card("NAXIS", "2", "number of array dimensions"))
    cards.append(card("NAXIS1", str(shape[1])))
    cards.append(card("NAXIS2", str(shape[0])))
    if primary:
        cards.append(card("EXTEND", "T", "extensions follow"))
    else:
        cards.append(card("PCOUNT", "0", "number of parameters"))
        cards.append(card("GCOUNT", "1", "number of groups"))
    return "".join(cards)


@dataclass(frozen=True)
class StampHdu:
    """One HDU of a stamp file before assembly.

    Attributes
    ----------
    name : `str`
        ``EXTNAME``: ``IMAGE``, ``UNCERT``, ``MASK`` or ``PSFIMAGE``.
    structure : `str`
        Its structure cards as an uncompressed HDU (`structure_cards`).
    cards : `str`
        Its header cards after the structure cards (``EXTNAME`` onwards),
        without ``END``: 80 characters each.
    data : `numpy.ndarray`
        The pixels, any byte order.
    dtype : `str`
        Big-endian FITS type of the data unit (``>f4``, ``>i4``, ``>i2``, ``u1``).
    bitpix : `int`
        ``BITPIX`` of that type.
    """

    name: str
    structure: str
    cards: str
    data: np.ndarray
    dtype: str
    bitpix: int


# Cards of the primary header that change per stamp, in order, with their comments.
_WCS_CARDS = (
    ("CRPIX1", "reference pixel"),
    ("CRPIX2", "reference pixel"),
    ("CRVAL1", "[deg] RA at CRPIX"),
    ("CRVAL2", "[deg] Dec at CRPIX"),
    ("CD1_1", "[deg/pixel]"),
    ("CD1_2", "[deg/pixel]"),
    ("CD2_1", "[deg/pixel]"),
    ("CD2_2", "[deg/pixel]"),
)
_PARENT_FRAME_CARDS = (
    ("LTV1", "minus x0 of the stamp in the parent frame"),
    ("LTV2", "minus y0 of the stamp in the parent frame"),
    ("CRVAL1A", "parent x of the first pixel"),
    ("CRVAL2A", "parent y of the first pixel"),
)
_CUTMIN_COMMENT = "0-based parent {} = stamp pixel + CUTMIN{}"
_ROTPA_COMMENTS = {
    "boresight": "[deg] PA of focal plane +Y, boresight rotation",
    "wcs": "[deg] PA of image +y at its center, from WCS",
}


def _stamp_cards(stamp: Stamp) -> str:
    """The per-stamp cards of the primary header: WCS, origin, angles."""
    wcs = stamp.local_wcs
    (cd11, cd12), (cd21, cd22) = wcs.cd
    x0, y0 = stamp.origin
    values = [
        fits_real(wcs.crpix[0]), fits_real(wcs.crpix[1]),
        fits_real(wcs.crval[0]), fits_real(wcs.crval[1]),
        fits_real(cd11), fits_real(cd12), fits_real(cd21), fits_real(cd22),
    ]
    cards = [card(key, value, comment) for (key, comment), value in zip(
        _WCS_CARDS, values, strict=True
    )]
    if not stamp.orientation:
        cards += [card(key, fits_real(value), comment) for (key, comment), value in zip(
            _PARENT_FRAME_CARDS, (-x0, -y0, x0, y0), strict=True
        )]
    cards.append(card("CUTMINX", str(x0 - 1), _CUTMIN_COMMENT.format("x", "X")))
    cards.append(card("CUTMINY", str(y0 - 1), _CUTMIN_COMMENT.format("y", "Y")))
    angle = fits_real(stamp.position_angle)
    cards.append(card("ORIENTAT", angle, "[deg] PA of +y, east of north"))
    rotation = stamp.rotation_angle if math.isfinite(stamp.rotation_angle) else (
        stamp.position_angle
    )
    source = stamp.rotation_source if math.isfinite(stamp.rotation_angle) else "wcs"
    cards.append(card("ROTPA", fits_real(rotation), _ROTPA_COMMENTS[source]))
    return "".join(cards)


@dataclass(frozen=True)
class _StampTemplate:
    """Header text of a stamp's HDUs, the per-stamp cards of the primary left out."""

    image_cards: str
    variance_cards: str
    mask_cards: str
    psf_cards: str


def _constant_wcs_cards(
    radesys: str, equinox: float | None, sip_cards: tuple[str, ...] | None, parent_frame: bool
) -> list[str]:
    ra_type, dec_type = tan_ctypes(sip_cards is not None)
    projection = "parent's TAN-SIP WCS" if sip_cards is not None else "linear at the center"
    cards = [
        card("WCSAXES", "2", "number of WCS axes"),
        card("CTYPE1", fits_string(ra_type), projection),
        card("CTYPE2", fits_string(dec_type)),
        card("CUNIT1", fits_string("deg")),
        card("CUNIT2", fits_string("deg")),
        card("RADESYS", fits_string(radesys), "reference frame of RA/Dec"),
        *(sip_cards or ()),
    ]
    if equinox is not None:
        cards.append(card("EQUINOX", fits_real(equinox)))
    if parent_frame:
        cards += [
            card("WCSNAMEA", fits_string("PHYSICAL"), "parent (detector) pixel frame"),
            card("CTYPE1A", fits_string("LINEAR")),
            card("CTYPE2A", fits_string("LINEAR")),
            card("CUNIT1A", fits_string("pixel")),
            card("CUNIT2A", fits_string("pixel")),
            card("CRPIX1A", "1.0"),
            card("CRPIX2A", "1.0"),
        ]
    return cards


_MASK_TYPES = ((7, ">u1", 8), (14, ">i2", 16), (31, ">i4", 32))


def _mask_type(mask: np.ndarray) -> tuple[str, int]:
    """The smallest FITS integer type that holds every bit set in ``mask``."""
    if mask.size and mask.dtype.kind in "iu":
        low, high = int(mask.min()), int(mask.max())
        if low < 0:
            return ">i4", 32
        used = high.bit_length() - 1
    else:
        used = 0
    for highest_bit, dtype, bitpix in _MASK_TYPES:
        if used <= highest_bit:
            return dtype, bitpix
    return ">i4", 32


def _psf_card(has_psf: bool) -> str:
    """``HASPSF``: whether the stamp carries its parent's PSF (the ``PSFIMAGE`` HDU)."""
    if has_psf:
        return card("HASPSF", "T", "the parent image's PSF is in PSFIMAGE")
    return card("HASPSF", "F", "no PSF: the parent image has none alertpack can give")


@functools.lru_cache(maxsize=256)
def _stamp_template(
    shape: tuple[int, int],
    name: str,
    mask_planes: tuple[tuple[str, int], ...],
    radesys: str,
    equinox: float | None,
    sip: SipTerms | None,
    orientation: str,
    has_psf: bool,
) -> _StampTemplate:
    """Header templates for one stamp shape and parent image, built once."""
    _check_plane_names(dict(mask_planes))
    wcs_cards = _constant_wcs_cards(
        radesys, equinox, None if sip is None else _sip_cards(sip), not orientation
    )
    image_cards = [
        card("EXTNAME", fits_string("IMAGE"), "stamp pixels"),
        card("BUNIT", fits_string("nJy"), "spectral flux density"),
        card("CUTOUT", fits_string(name[:60]), "image the stamp was cut from"),
        _psf_card(has_psf),
    ]
    if orientation:
        image_cards += [
            card("NORTHUP", "T", "north up, east left"),
            card("ORIENTOP", fits_string(orientation[:60]), "how the stamp was turned north up"),
        ]
    image_cards += wcs_cards
    variance_cards = "".join([
        card("EXTNAME", fits_string("UNCERT"), "variance of the pixels"),
        card("UTYPE", fits_string("VarianceUncertainty"), "astropy uncertainty class"),
        card("BUNIT", fits_string("nJy2"), "variance unit"),
        card("INHERIT", "T", "WCS and keys of the primary header apply"),
    ])
    mask_cards = "".join([
        card("EXTNAME", fits_string("MASK"), "bit mask"),
        card("INHERIT", "T", "WCS and keys of the primary header apply"),
        *(_mask_plane_card(plane, bit) for plane, bit in mask_planes),
    ])
    return _StampTemplate(
        image_cards="".join(image_cards),
        variance_cards=variance_cards,
        mask_cards=mask_cards,
        psf_cards=card("EXTNAME", fits_string("PSFIMAGE"), "PSF of the parent image"),
    )


def _template_of(stamp: Stamp) -> _StampTemplate:
    return _stamp_template(
        stamp.image.shape,
        stamp.name,
        tuple(stamp.mask_planes.items()),
        stamp.local_wcs.radesys,
        stamp.local_wcs.equinox,
        stamp.local_wcs.sip,
        stamp.orientation,
        stamp.psf is not None,
    )


def _as_stamp(stamp: Stamp | SurveyImage) -> Stamp:
    if isinstance(stamp, Stamp):
        return stamp
    image = require_survey_image(stamp, "stamp_fits_bytes takes a Stamp or a SurveyImage")
    return whole_image_stamp(image)


def stamp_hdus(stamp: Stamp | SurveyImage) -> list[StampHdu]:
    """The HDUs of a stamp's FITS file (layout in the module docstring), primary first.

    Parameters
    ----------
    stamp : `~alertpack.packets.stamp.Stamp` or \
            `~alertpack.packets.survey_image.SurveyImage`
        As for `stamp_fits_bytes`.

    Raises
    ------
    alertpack.errors.InputError
        As `stamp_fits_bytes`.
    """
    stamp = _as_stamp(stamp)
    template = _template_of(stamp)
    shape = stamp.image.shape
    hdus = [StampHdu(
        "IMAGE", structure_cards(-32, shape, primary=True),
        template.image_cards + _stamp_cards(stamp), stamp.image, ">f4", -32,
    )]
    if stamp.variance is not None:
        hdus.append(StampHdu(
            "UNCERT", structure_cards(-32, shape, primary=False), template.variance_cards,
            stamp.variance, ">f4", -32,
        ))
    mask_dtype, mask_bitpix = _mask_type(stamp.mask)
    hdus.append(StampHdu(
        "MASK", structure_cards(mask_bitpix, shape, primary=False), template.mask_cards,
        stamp.mask, mask_dtype, mask_bitpix,
    ))
    if stamp.psf is not None:
        hdus.append(StampHdu(
            "PSFIMAGE", structure_cards(-32, stamp.psf.shape, primary=False),
            template.psf_cards, stamp.psf, ">f4", -32,
        ))
    return hdus


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
    parts = []
    for hdu in stamp_hdus(stamp):
        header = hdu.structure + hdu.cards
        parts.append(
            ((header + end_and_padding(len(header))).encode("ascii"), hdu.data, hdu.dtype)
        )
    return _assemble(parts)


def _assemble(hdus: list[tuple[bytes, np.ndarray, str]]) -> bytes:
    """Headers and big-endian data, each data unit zero-padded to whole FITS blocks.

    The pixels are converted straight into the output buffer, so each is
    copied once before the final `bytes`.
    """
    sizes = [(len(header), array.size * np.dtype(dtype).itemsize) for header, array, dtype in hdus]
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
