"""Which HDUs of a FITS exposure hold its image, variance, mask and PSF: decided once.

`resolve_exposure_layout` reads the headers of an `~astropy.io.fits.HDUList`
(held in memory, or a file opened and checked by `alertpack.inputs.fits_files`)
and decides, before any pixel is read (an HDU answers to its ``EXTNAME`` and to
its ``EXTTYPE``: afw wrote only ``EXTTYPE`` before May 2021):

- the image: the ``IMAGE`` extension (the LSST Exposure layout, and the
  stamps `alertpack.packets.cutouts` writes), else the first image HDU with
  pixels that is none of the planes below (a single-HDU image, or the
  primary HDU of an astropy CCDData file);
- the variance: ``VARIANCE`` (LSST), else ``UNCERT`` (CCDData) holding the
  astropy uncertainty class its ``UTYPE`` names (standard deviation when
  ``UTYPE`` is absent);
- the mask: ``MASK``, bits of any integer type (``BZERO``-offset unsigned and
  signed bytes included), plane names from its ``MP_<NAME> = bit`` keys;
  unsigned bytes without plane names are CCDData's boolean mask, the ``BAD``
  plane;
- the PSF: ``PSF`` (else ``PSFIMAGE``), a small 2-D image read whole; else
  the PSF in afw's archive when it can be evaluated without the LSST stack
  (`alertpack.inputs.afw_archive`: a ``GaussianPsf``); else none, and the
  image says why (`ExposureLayout.psf_note`);

and checks that mask and variance have the image's shape, the unit, the
celestial WCS and the origin in the detector (``LTV1``/``LTV2``). The unit is
``calibration`` when given, else ``BUNIT`` (image header, else primary: afw
wrote it only there from 2024 to June 2025) when it is a flux density, else
the ``calibrationMean`` of the ``PhotoCalib`` in afw's archive (counts of
older calexps and difference images; templates carry no ``BUNIT`` and a
PhotoCalib of 1: their pixels are nJy); with none of these it is an error
naming the file and how to give a calibration. An extension name names one
HDU: two HDUs of one name are an error, not a guess. Every refusal, and a
header card astropy cannot parse, is one `~alertpack.errors.ImageInputError`
line naming the source and the HDU.

The `ExposureLayout` it returns builds the
`~alertpack.packets.survey_image.SurveyImage` from plane readers
(`PlaneReaders`): `ArrayPlanes` reads each plane of an HDUList whole into an
array; `alertpack.inputs.fits_files` reads only the windows the stamps need
(planes stay `~alertpack.packets.survey_image.LazyPlane`). The unit, variance
and mask conversions are the same elementwise functions on both, so a file
read by path and the same file as an HDUList give the same image.

Each decision is one function, the place to extend it: which names an HDU
answers to (`_extension_names`), where the calibration comes from
(`_pixel_scale`), where the PSF comes from (`_psf_hdu`, `_archive_psf`); a
PSF given beside the file replaces the file's (`read_psf_file`).
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from alertpack.errors import ImageInputError
from alertpack.inputs.afw_archive import AfwArchive
from alertpack.inputs.survey_image import (
    BOOL_MASK_PLANE,
    UNCERTAINTY_KINDS,
    bool_mask_bits,
    celestial_wcs,
    error_text,
    is_flux_density,
    mask_bits,
    mask_planes_from_header,
    merged_lookup,
    nJy_per_unit,
    origin_from_ltv,
    parse_unit,
    psf_array,
    scaled_float32,
    variance_from_values,
    wcs_from_header,
)
from alertpack.inputs.visit_info import visit_info_from_header
from alertpack.packets.survey_image import LazyPlane, SurveyImage, VisitInfo

if TYPE_CHECKING:
    from astropy.io import fits
    from astropy.wcs import WCS

__all__ = [
    "ArrayPlanes",
    "ExposureLayout",
    "LayoutHDU",
    "PlaneReaders",
    "WindowReader",
    "describe_hdu",
    "read_psf_file",
    "resolve_exposure_layout",
]


EXTENSION_IMAGE = ("IMAGE",)
EXTENSION_VARIANCE = ("VARIANCE",)
EXTENSION_UNCERTAINTY = ("UNCERT",)  # astropy CCDData's name, its class in UTYPE
EXTENSION_MASK = ("MASK",)
EXTENSION_PSF = ("PSF", "PSFIMAGE")  # in order of preference
# Extensions that are planes of the image, never the image itself
_PLANE_EXTENSIONS = EXTENSION_VARIANCE + EXTENSION_UNCERTAINTY + EXTENSION_MASK + EXTENSION_PSF

# A PSF image is read whole; more pixels than this is not a PSF but a damaged header.
MAX_PSF_PIXELS = 4096 * 4096

# BZERO values under which astropy reads integer pixels as integers (BITPIX -> offsets):
# none, the signed byte, or the unsigned 16/32/64-bit types
_INTEGER_BZERO = {8: (0.0, -128.0), 16: (0.0, 2.0**15), 32: (0.0, 2.0**31), 64: (0.0, 2.0**63)}

#: ``(y0, y1, x0, x1) -> raw pixels [y0:y1, x0:x1]`` of one HDU
WindowReader = Callable[[int, int, int, int], np.ndarray]


class PlaneReaders(Protocol):
    """Where the pixels of the planes of one HDUList come from."""

    #: `True`: planes stay `LazyPlane` (read window by window); `False`: read whole into arrays.
    lazy: bool

    def window_reader(self, index: int, label: str) -> WindowReader:
        """The window reader of HDU ``index`` (``label`` names it in messages)."""
        ...


class ArrayPlanes:
    """Plane readers of an HDUList read into memory: each plane whole, a window is a slice.

    Parameters
    ----------
    hdul : `~astropy.io.fits.HDUList`
        The HDUList (its ``.data`` is read when a plane is built).
    """

    lazy = False

    def __init__(self, hdul: fits.HDUList) -> None:
        self._hdul = hdul

    def window_reader(self, index: int, label: str) -> WindowReader:
        pixels = read_pixels(self._hdul[index], label)

        def read(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
            return pixels[y0:y1, x0:x1]

        return read


def read_pixels(hdu: Any, label: str) -> np.ndarray:
    """All pixels of ``hdu`` (astropy's ``.data``), a damaged file an `ImageInputError`."""
    try:
        return np.asarray(hdu.data)
    except Exception as error:  # OSError, ValueError, zlib.error, ... from a damaged file
        raise ImageInputError(
            f"{label}: its pixels cannot be read ({error_text(error)}); "
            "the file is truncated or damaged"
        ) from None


@dataclass(frozen=True)
class LayoutHDU:
    """One HDU as the layout sees it, from its header.

    Attributes
    ----------
    index : `int`
        Its index in the HDUList.
    where : `str`
        Index and name: ``"2 (MASK)"``.
    label : `str`
        What names it in messages: ``"difference image (path), HDU 2 (MASK)"``.
    extnames : `frozenset` [`str`]
        The extension names it answers to, upper case.
    shape : `tuple` [`int`, ...] or `None`
        The array shape its header declares; `None` for a table.
    """

    index: int
    where: str
    label: str
    extnames: frozenset[str]
    shape: tuple[int, ...] | None

    def named(self, names: tuple[str, ...]) -> str | None:
        """The first of ``names`` this HDU answers to."""
        return next((name for name in names if name in self.extnames), None)


@dataclass(frozen=True, eq=False)
class ExposureLayout:
    """The checked layout of one exposure: which HDU is which, and how to convert it.

    Built by `resolve_exposure_layout` from headers alone; `survey_image`
    reads pixels.

    Attributes
    ----------
    hdul : `~astropy.io.fits.HDUList`
        The exposure.
    name : `str`
        What the image is ("difference", "template", "science").
    image : `LayoutHDU`
        The image HDU.
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of image, variance and mask.
    scale : `float`
        nJy per image unit.
    wcs : `~astropy.wcs.WCS`
        Celestial WCS of the image array.
    origin : `tuple` [`int`, `int`]
        ``(x0, y0)`` of the array in the detector.
    variance : `LayoutHDU` or `None`
        The VARIANCE or UNCERT HDU.
    variance_kind : `str`
        What its values are: ``"variance"``, ``"stddev"`` or
        ``"inverse_variance"`` (from ``UTYPE``, see
        `alertpack.inputs.survey_image.UNCERTAINTY_KINDS`).
    mask : `LayoutHDU` or `None`
        The MASK HDU.
    mask_planes : `dict` [`str`, `int`]
        Plane name -> bit.
    mask_is_boolean : `bool`
        The mask holds flags (non-zero is `BOOL_MASK_PLANE`), not bits.
    psf : `LayoutHDU` or `None`
        The PSF image HDU.
    visit_info : `VisitInfo`
        What the image and primary headers say about the visit.
    archive_psf : `numpy.ndarray` or `None`
        The PSF evaluated from afw's archive, when there is no PSF HDU.
    psf_note : `str` or `None`
        Why the image has no PSF (`None` when it has one).
    """

    hdul: Any
    name: str
    image: LayoutHDU
    shape: tuple[int, int]
    scale: float
    wcs: WCS
    origin: tuple[int, int]
    variance: LayoutHDU | None
    variance_kind: str
    mask: LayoutHDU | None
    mask_planes: dict[str, int]
    mask_is_boolean: bool
    psf: LayoutHDU | None
    visit_info: VisitInfo
    archive_psf: np.ndarray | None = None
    psf_note: str | None = None

    def survey_image(self, readers: PlaneReaders) -> SurveyImage:
        """The `SurveyImage` of this layout, its planes read through ``readers``.

        Parameters
        ----------
        readers : `PlaneReaders`
            `ArrayPlanes` for arrays, or the window readers of a file.

        Returns
        -------
        image : `SurveyImage`
        """
        scale, kind = self.scale, self.variance_kind
        image = self._plane(readers, self.image, np.float32, lambda raw: scaled_float32(raw, scale))
        mask = None
        if self.mask is not None:
            bits = bool_mask_bits if self.mask_is_boolean else mask_bits
            mask = self._plane(readers, self.mask, np.int32, bits)
        variance = None
        if self.variance is not None:
            label = self.variance.label

            def to_variance(raw: np.ndarray) -> np.ndarray:
                return variance_from_values(raw, kind, None, None, scale, label)

            variance = self._plane(readers, self.variance, np.float32, to_variance)
        psf = self.archive_psf
        if self.psf is not None:
            psf = psf_array(read_pixels(self.hdul[self.psf.index], self.psf.label), self.psf.label)
        return SurveyImage(
            image=image,
            variance=variance,
            mask=mask,
            mask_planes=dict(self.mask_planes),
            wcs=self.wcs,
            origin=self.origin,
            psf=psf,
            name=self.name,
            photo_calib=scale,
            visit_info=self.visit_info,
            psf_note=self.psf_note,
        )

    def _plane(
        self, readers: PlaneReaders, hdu: LayoutHDU, dtype: Any, convert: Any
    ) -> np.ndarray | LazyPlane:
        plane = LazyPlane(readers.window_reader(hdu.index, hdu.label), self.shape, dtype, convert)
        return plane if readers.lazy else np.asarray(plane)


def resolve_exposure_layout(
    hdul: fits.HDUList, *, name: str, source: str, calibration: Any = None
) -> ExposureLayout:
    """Decide and check, from headers alone, which HDU of ``hdul`` is which plane.

    Parameters
    ----------
    hdul : `~astropy.io.fits.HDUList`
        The exposure: a single image HDU, the LSST Exposure layout (``IMAGE``,
        ``MASK``, ``VARIANCE``, ``PSF``) or an astropy CCDData file (image in
        the primary HDU, ``MASK``, ``UNCERT``), plain or tile-compressed.
    name : `str`
        What the image is ("difference", "template", "science").
    source : `str`
        Where it comes from (a path, "the HDUList"); with ``name`` it begins
        every message.
    calibration : `float` or `~astropy.units.Quantity`, optional
        nJy per input unit, for images in counts or without ``BUNIT``; it
        replaces the PhotoCalib of afw's archive.

    Returns
    -------
    layout : `ExposureLayout`

    Raises
    ------
    ImageInputError
        No image HDU, an image that is not 2-D, planes without an image or of
        another shape, a mask that is not integer bits, an unknown ``UTYPE``,
        a PSF that is not a small 2-D image, two HDUs of one name, no
        celestial WCS, a missing or unknown unit, a damaged afw archive. The
        message names the HDU.
    """
    label = f"{name} image ({source})"
    hdus = _read_hdus(hdul, label)
    image = _image_hdu(hdus, label)
    shape = _plane_shape(image)
    with _header_errors(label):
        archive = AfwArchive.from_hdulist(hdul, label)
    with _header_errors(image.label):
        header, primary_header = hdul[image.index].header, hdul[0].header
        scale = _pixel_scale(header, primary_header, calibration, archive, name, image.label)
        wcs = celestial_wcs(wcs_from_header(header, image.label), image.label)
        origin = origin_from_ltv(merged_lookup(header, primary_header), image.label)
        # afw keeps the visit keys in the primary header, which image HDUs inherit
        visit_info = visit_info_from_header(ChainMap(header, primary_header), image.label)
    mask, mask_planes, mask_is_boolean = _mask_hdu(hdul, hdus, shape, label)
    variance, variance_kind = _variance_hdu(hdul, hdus, shape, label)
    psf = _psf_hdu(hdus, label)
    archive_psf, psf_note = (None, None) if psf is not None else _archive_psf(archive, label)
    return ExposureLayout(
        hdul=hdul,
        name=name,
        image=image,
        shape=shape,
        scale=scale,
        wcs=wcs,
        origin=origin,
        variance=variance,
        variance_kind=variance_kind,
        mask=mask,
        mask_planes=mask_planes,
        mask_is_boolean=mask_is_boolean,
        psf=psf,
        visit_info=visit_info,
        archive_psf=archive_psf,
        psf_note=psf_note,
    )


def describe_hdu(hdul: fits.HDUList, index: int) -> str:
    """``"2 (MASK)"``: the HDU's index and, when it has one, its name."""
    extname = str(hdul[index].name or "").strip()
    return f"{index} ({extname})" if extname else str(index)


# --- which HDU is which ------------------------------------------------------------------------


@contextmanager
def _header_errors(label: str) -> Iterator[None]:
    """A header astropy cannot parse, as one line naming the HDU.

    astropy parses cards when they are first used (and a lazily loaded
    HDUList its HDUs): a damaged card fails there, with a VerifyError,
    KeyError, ... Parsing every card up front would cost ~10 ms an exposure.
    """
    try:
        yield
    except ImageInputError:
        raise
    except Exception as error:
        raise ImageInputError(f"{label}: the header cannot be read ({error_text(error)})") from None


def _read_hdus(hdul: fits.HDUList, label: str) -> list[LayoutHDU]:
    """Every HDU's names and declared shape, read once (a lazy HDUList loads them here)."""
    hdus: list[LayoutHDU] = []
    while True:
        with _header_errors(f"{label}, HDU {len(hdus)}"):
            try:
                hdu = hdul[len(hdus)]
            except IndexError:
                return hdus
            where = describe_hdu(hdul, len(hdus))
            hdus.append(
                LayoutHDU(
                    len(hdus), where, f"{label}, HDU {where}", _extension_names(hdu),
                    _header_shape(hdu),
                )
            )


def _extension_names(hdu: Any) -> frozenset[str]:
    """The extension names an HDU answers to, upper case: its ``EXTNAME`` and its ``EXTTYPE``.

    afw names its planes by ``EXTTYPE`` (``IMAGE``, ``MASK``, ``VARIANCE``)
    and, since May 2021, by ``EXTNAME`` too; older files have ``EXTTYPE`` only.
    """
    names = {str(hdu.name or "").strip().upper()}
    exttype = hdu.header.get("EXTTYPE")
    if isinstance(exttype, str):
        names.add(exttype.strip().upper())
    names.discard("")
    return frozenset(names)


def _is_image_hdu(hdu: Any) -> bool:
    # astropy when used: a pool run's parent imports this module but reads no image
    from astropy.io import fits

    return isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)) and not isinstance(
        hdu, fits.GroupsHDU
    )


def _header_shape(hdu: Any) -> tuple[int, ...] | None:
    """The array shape an image HDU's header declares (`None` for a table)."""
    return tuple(int(n) for n in hdu.shape) if _is_image_hdu(hdu) else None


def _has_pixels(hdu: LayoutHDU) -> bool:
    return hdu.shape is not None and len(hdu.shape) > 0 and all(n > 0 for n in hdu.shape)


def _extension(hdus: list[LayoutHDU], names: tuple[str, ...], label: str) -> LayoutHDU | None:
    """The HDU with the first of ``names`` that one has; two HDUs of that name: an error."""
    for extname in names:
        named = [hdu for hdu in hdus if extname in hdu.extnames]
        if len(named) > 1:
            listed = ", ".join(hdu.where for hdu in named)
            raise ImageInputError(
                f"{label}: HDUs {listed} are all named {extname}; which one to use is "
                "ambiguous (rename or remove the others)"
            )
        if named:
            return named[0]
    return None


def _image_hdu(hdus: list[LayoutHDU], label: str) -> LayoutHDU:
    """The ``IMAGE`` extension, else the first image HDU with pixels that is not a plane."""
    named = _extension(hdus, EXTENSION_IMAGE, label)
    if named is not None:
        if not _has_pixels(named):
            raise ImageInputError(
                f"{named.label}: the IMAGE extension is not an image with pixels "
                f"(shape {named.shape})"
            )
        return named
    planes = [hdu for hdu in hdus if hdu.named(_PLANE_EXTENSIONS)]
    for hdu in hdus:
        if hdu not in planes and _has_pixels(hdu):
            return hdu
    if planes:
        names = " and ".join(str(hdu.named(_PLANE_EXTENSIONS)) for hdu in planes)
        raise ImageInputError(
            f"{label}: has {names} extension(s) but no IMAGE extension with pixels; an "
            "LSST-layout exposure needs IMAGE, MASK and VARIANCE HDUs"
        )
    raise ImageInputError(
        f"{label}: no image HDU with data; expected a primary/image extension with a 2-D "
        "image, or the LSST layout with an IMAGE extension"
    )


def _plane_shape(image: LayoutHDU) -> tuple[int, int]:
    shape = image.shape or ()
    if len(shape) != 2:
        raise ImageInputError(
            f"{image.label}: data has {len(shape)} dimensions (shape {shape}); cutouts need a "
            "2-D image"
        )
    return shape[0], shape[1]


def _same_shape_plane(
    hdus: list[LayoutHDU], names: tuple[str, ...], shape: tuple[int, int], label: str
) -> LayoutHDU | None:
    """The extension named ``names`` (or `None`), checked to have the image's shape."""
    plane = _extension(hdus, names, label)
    if plane is None:
        return None
    if plane.shape != shape:
        raise ImageInputError(
            f"{plane.label}: extension {plane.named(names)} has shape {plane.shape} but the "
            f"image has shape {shape}; image, mask and variance must describe the same pixels"
        )
    return plane


# --- how each plane is converted ---------------------------------------------------------------


def _pixel_scale(
    header: Any, primary_header: Any, calibration: Any, archive: AfwArchive | None, name: str,
    label: str,
) -> float:
    """nJy per pixel unit: ``calibration``, else a flux-density ``BUNIT``, else the PhotoCalib.

    ``BUNIT`` is read from the image header, else the primary header; the
    PhotoCalib is that of afw's archive (``calibrationMean``), used for a
    missing ``BUNIT`` or one in counts.
    """
    text = header.get("BUNIT", primary_header.get("BUNIT"))
    unit = parse_unit(str(text), label) if text is not None and str(text).strip() else None
    if calibration is not None or (unit is not None and is_flux_density(unit)):
        return nJy_per_unit(unit, calibration, label)
    photo_calib = None if archive is None else archive.photo_calib_mean()
    if photo_calib is not None:
        return photo_calib
    if unit is None:
        raise ImageInputError(
            f"{label}: no BUNIT in the header and no PhotoCalib in the file's archive, so the "
            f"unit of the pixels is unknown; {calibration_hint(name)}"
        )
    return nJy_per_unit(unit, None, label)


def calibration_hint(name: str) -> str:
    """How to give the calibration of the ``name`` image, in each way alertpack takes it."""
    return (
        f"give the {name} image's calibration in nJy per pixel value (1 when the pixels are "
        f"already nJy): --calibration {name}=VALUE for alertpack package, "
        f'"calibration": {{"{name}": VALUE}} in the detector\'s visit.json, or '
        "alertpack.as_survey_image(image, name=..., calibration=VALUE) in Python"
    )


def _variance_hdu(
    hdul: fits.HDUList, hdus: list[LayoutHDU], shape: tuple[int, int], label: str
) -> tuple[LayoutHDU | None, str]:
    """``VARIANCE``, else CCDData's ``UNCERT`` with the kind of values its ``UTYPE`` names."""
    variance = _same_shape_plane(hdus, EXTENSION_VARIANCE, shape, label)
    if variance is not None:
        return variance, "variance"
    uncertainty = _same_shape_plane(hdus, EXTENSION_UNCERTAINTY, shape, label)
    if uncertainty is None:
        return None, "variance"
    with _header_errors(uncertainty.label):
        # astropy CCDData's convention: the class name in UTYPE, standard deviation if absent
        utype = str(hdul[uncertainty.index].header.get("UTYPE", "StdDevUncertainty")).strip()
    if utype not in UNCERTAINTY_KINDS:
        raise ImageInputError(
            f"{uncertainty.label}: UTYPE {utype!r} is not an uncertainty class alertpack "
            f"knows ({', '.join(UNCERTAINTY_KINDS)})"
        )
    return uncertainty, UNCERTAINTY_KINDS[utype]


def _mask_hdu(
    hdul: fits.HDUList, hdus: list[LayoutHDU], shape: tuple[int, int], label: str
) -> tuple[LayoutHDU | None, dict[str, int], bool]:
    """``MASK`` with its plane names, and whether it holds CCDData's boolean flags."""
    mask = _same_shape_plane(hdus, EXTENSION_MASK, shape, label)
    if mask is None:
        return None, {}, False
    with _header_errors(mask.label):
        header = hdul[mask.index].header
        bitpix = int(header.get("BITPIX", 0))
        bzero = _number(header, "BZERO", 0.0, mask.label)
        bscale = _number(header, "BSCALE", 1.0, mask.label)
        planes = mask_planes_from_header(header, mask.label)
    if bscale != 1.0 or bzero not in _INTEGER_BZERO.get(bitpix, ()):
        # astropy reads these as floats: scaled values, not bits
        raise ImageInputError(
            f"{mask.label}: the MASK extension holds floating-point data (BITPIX {bitpix}, "
            f"BZERO {bzero:g}, BSCALE {bscale:g}); a mask must be integer bits (BSCALE 1, "
            "BZERO 0 or the offset of an unsigned type)"
        )
    if bitpix == 8 and bzero == 0.0 and not planes:
        # astropy CCDData writes a boolean mask as unsigned bytes without plane names
        return mask, {BOOL_MASK_PLANE: 0}, True
    return mask, planes, False


def _number(header: Any, key: str, default: float, label: str) -> float:
    value = header.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ImageInputError(f"{label}: {key} = {value!r} is not a number") from None


def _archive_psf(
    archive: AfwArchive | None, label: str
) -> tuple[np.ndarray | None, str | None]:
    """The PSF afw's archive gives when the file has no PSF image HDU, else why there is none."""
    if archive is None:
        return None, "no PSF image HDU (and no afw archive)"
    with _header_errors(label):
        psf, reason = archive.psf()
    return (psf_array(psf, label), None) if psf is not None else (None, reason)


def read_psf_file(path: Any, name: str) -> np.ndarray:
    """The PSF image of a PSF file given beside an exposure (``psf.fits``, ``--psf``).

    The file's ``PSF`` (else ``PSFIMAGE``) extension, else its first image
    HDU with pixels: an afw ``computeKernelImage(...).writeFits`` file, or a
    2-D array written with astropy. Read whole, checked to be a small 2-D
    image.

    Parameters
    ----------
    path : path-like
        The PSF file.
    name : `str`
        The image it is the PSF of ("difference", ...), for messages.

    Raises
    ------
    ImageInputError
        A missing or unreadable file, or no small 2-D image in it.
    """
    # astropy when used: a pool run's parent imports this module but reads no image
    from astropy.io import fits

    label = f"{name} PSF ({path})"
    try:
        hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
    except FileNotFoundError:
        raise ImageInputError(f"{label}: file {path} does not exist") from None
    except Exception as error:  # astropy raises OSError, ValueError, ... for a damaged file
        raise ImageInputError(f"{label}: not a readable FITS file ({error_text(error)})") from None
    with hdul:
        hdus = _read_hdus(hdul, label)
        chosen = _psf_hdu(hdus, label)
        if chosen is None:
            chosen = next((hdu for hdu in hdus if _has_pixels(hdu)), None)
        if chosen is None or chosen.shape is None or len(chosen.shape) != 2 or int(
            np.prod(chosen.shape)
        ) > MAX_PSF_PIXELS:
            raise ImageInputError(
                f"{label}: no PSF extension and no 2-D image of at most {MAX_PSF_PIXELS} "
                "pixels in the file"
            )
        psf = psf_array(read_pixels(hdul[chosen.index], chosen.label), chosen.label)
    assert psf is not None  # the HDU has pixels
    if not np.all(np.isfinite(psf)) or not psf.sum() > 0:
        raise ImageInputError(
            f"{label}: the PSF image has non-finite values or does not sum to a positive flux"
        )
    return psf


def _psf_hdu(hdus: list[LayoutHDU], label: str) -> LayoutHDU | None:
    """The PSF image extension, checked to be a small 2-D image (`None`: none, or empty)."""
    psf = _extension(hdus, EXTENSION_PSF, label)
    if psf is None:
        return None
    if psf.shape is None or int(np.prod(psf.shape)) > MAX_PSF_PIXELS:
        raise ImageInputError(
            f"{psf.label}: the PSF extension is not an image of at most "
            f"{MAX_PSF_PIXELS} pixels (shape {psf.shape})"
        )
    if not psf.shape:
        return None
    if len(psf.shape) != 2:
        raise ImageInputError(
            f"{psf.label}: the PSF has shape {psf.shape}; it must be a 2-D image"
        )
    return psf
