"""FITS exposure files, opened lazily: headers checked at open, pixels read per stamp.

`open_fits_image` reads every header of the file and checks it before any
pixel is read: each HDU's declared data fits in the file (a truncated file or
a header claiming a huge ``NAXIS`` is caught here, not by a reshape or an
allocation later), nothing but padding follows the last complete HDU (a
truncated or damaged header would otherwise silently drop the extensions
after it), the image, mask and variance planes have one shape, and the unit,
WCS and mask planes come from the headers. The planes of the returned
`~alertpack.packets.survey_image.SurveyImage` are `~alertpack.packets.survey_image.LazyPlane`
objects: the cutout code's ``plane[y0:y1, x0:x1]`` reads only those rows of an
uncompressed HDU (one positioned read through astropy's ``section``, which
applies ``BZERO``/``BSCALE``/``BLANK`` and byte order as ``.data`` does) and
only the tiles under the window of a tile-compressed HDU
(`alertpack.inputs.fits_tiles.GzipTiles` for lossless GZIP tiles, otherwise
`~astropy.io.fits.CompImageHDU.section`). Unit, variance and mask conversions
are applied to each window, elementwise as the in-memory path applies them to
whole arrays, so the cutouts are byte for byte the same.

Positioned reads rather than a memory map: a map's page faults pull whole
neighbouring pages of every row a stamp crosses into the resident set (about
50 MB per exposure for 60 stamps here), reads keep only the stamp.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.errors import ImageInputError
from alertpack.inputs.fits_tiles import gzip_tile_reader
from alertpack.inputs.survey_image import (
    BOOL_MASK_PLANE,
    EXTENSION_IMAGE,
    EXTENSION_MASK,
    EXTENSION_PSF,
    EXTENSION_UNCERTAINTY,
    EXTENSION_VARIANCE,
    celestial_wcs,
    mask_planes_from_header,
    merged_lookup,
    nJy_per_unit,
    origin_from_ltv,
    psf_array,
    scaled_float32,
    unit_from_header,
    variance_from_uncertainty,
    wcs_from_header,
)
from alertpack.packets.survey_image import LazyPlane, SurveyImage

if TYPE_CHECKING:
    from astropy.io import fits

__all__ = ["open_fits_image"]

_FITS_BLOCK = 2880
# A PSF image is read whole; more pixels than this is not a PSF but a damaged header.
_MAX_PSF_PIXELS = 4096 * 4096


def open_fits_image(
    path: str | os.PathLike[str], *, name: str, calibration: Any = None
) -> SurveyImage:
    """A `SurveyImage` of a FITS file whose pixels are read stamp by stamp.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        A single-HDU image with ``BUNIT`` and a celestial WCS, or the LSST
        Exposure layout (``IMAGE``, ``MASK``, ``VARIANCE``, ``PSF``
        extensions), plain or tile-compressed.
    name : `str`
        What the image is ("difference", "template", "science"); for messages.
    calibration : `float` or `~astropy.units.Quantity`, optional
        nJy per input unit, for images in counts (see
        `~alertpack.inputs.images.as_survey_image`).

    Returns
    -------
    image : `SurveyImage`
        Its planes are `~alertpack.packets.survey_image.LazyPlane` objects; the file
        stays open while they are referenced.

    Raises
    ------
    ImageInputError
        Missing or unreadable file, truncated data or header, no image HDU,
        planes of different shapes, no celestial WCS, missing or unknown unit.
        The message names the file and the HDU.
    """
    path = Path(path)
    label = f"{name} image ({path})"
    hdul = _open_checked(path, label)
    readers = _WindowReaders(path, hdul)
    image_index = _image_hdu_index(hdul, label)
    image_hdu = hdul[image_index]
    image_label = f"{label}, HDU {_hdu_name(hdul, image_index)}"
    shape = _plane_shape(image_hdu, image_label)
    header, primary_header = image_hdu.header, hdul[0].header
    unit = unit_from_header(header, primary_header, calibration, image_label)
    scale = nJy_per_unit(unit, calibration, image_label)
    wcs = celestial_wcs(wcs_from_header(header, image_label), image_label)
    origin = origin_from_ltv(merged_lookup(header, primary_header), image_label)
    image = LazyPlane(
        readers.reader(image_index, image_label),
        shape,
        np.float32,
        lambda raw: scaled_float32(raw, scale),
    )
    mask, planes = _lazy_mask(readers, shape, label)
    variance = _lazy_variance(readers, unit, scale, shape, label)
    readers.close_tables()
    return SurveyImage(
        image=image,
        variance=variance,
        mask=mask,
        mask_planes=planes,
        wcs=wcs,
        origin=origin,
        psf=_psf(hdul, label),
        name=name,
        photo_calib=scale,
    )


# --- opening and checking the file structure ---------------------------------------------------


def _open_checked(path: Path, label: str) -> fits.HDUList:
    """All headers read, each HDU's data inside the file, nothing unread after the last."""
    if not path.exists():
        raise ImageInputError(f"{label}: file {path} does not exist")
    if path.is_dir():
        raise ImageInputError(f"{label}: {path} is a directory, not a FITS file")
    from astropy.io import fits

    try:
        file_size = path.stat().st_size
        with warnings.catch_warnings():
            # astropy warns about truncation and damaged headers and carries on;
            # the checks below turn each such case into an error naming the HDU
            warnings.simplefilter("ignore")
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            spans = [hdul.fileinfo(index) for index in range(len(hdul))]
    except Exception as error:  # astropy raises OSError, ValueError, VerifyError, ...
        raise ImageInputError(
            f"{label}: {path} is not a readable FITS file ({type(error).__name__}: {error})"
        ) from None
    for index, span in enumerate(spans):
        end = span["datLoc"] + span["datSpan"]
        if end > file_size:
            hdul.close()
            raise ImageInputError(
                f"{label}, HDU {_hdu_name(hdul, index)}: the header declares data up to byte "
                f"{end} but the file has only {file_size} bytes (truncated file, or a wrong "
                "NAXIS/BITPIX in the header)"
            )
    last_end = spans[-1]["datLoc"] + spans[-1]["datSpan"] if spans else 0
    if file_size > last_end and _has_content(path, last_end):
        hdul.close()
        raise ImageInputError(
            f"{label}: bytes {last_end}..{file_size} after HDU {_hdu_name(hdul, len(spans) - 1)} "
            "are not a complete FITS HDU (a truncated or damaged header); the extensions "
            "after it cannot be read"
        )
    return hdul


def _has_content(path: Path, offset: int) -> bool:
    """Whether the bytes from ``offset`` hold more than zero/blank padding (first block)."""
    with open(path, "rb") as stream:
        stream.seek(offset)
        tail = stream.read(_FITS_BLOCK)
    return bool(tail.strip(b"\0 "))


def _hdu_name(hdul: fits.HDUList, index: int) -> str:
    extname = str(hdul[index].name or "").strip()
    return f"{index} ({extname})" if extname else str(index)


def _extension_index(hdul: fits.HDUList, names: tuple[str, ...]) -> int | None:
    for index, hdu in enumerate(hdul):
        if str(hdu.name).upper() in names:
            return index
    return None


def _is_image_hdu(hdu: Any) -> bool:
    from astropy.io import fits

    return isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))


def _image_hdu_index(hdul: fits.HDUList, label: str) -> int:
    """The LSST ``IMAGE`` extension, else the first image HDU with pixels (from headers)."""
    named = _extension_index(hdul, EXTENSION_IMAGE)
    if named is not None and _is_image_hdu(hdul[named]) and len(hdul[named].shape) > 0:
        return named
    planes = [
        hdul[index].name
        for index in (
            _extension_index(hdul, EXTENSION_MASK),
            _extension_index(hdul, EXTENSION_VARIANCE),
        )
        if index is not None
    ]
    if planes:
        raise ImageInputError(
            f"{label}: has {' and '.join(planes)} extension(s) but no IMAGE extension with "
            "pixels; an LSST-layout exposure needs IMAGE, MASK and VARIANCE HDUs"
        )
    for index, hdu in enumerate(hdul):
        if _is_image_hdu(hdu) and len(hdu.shape) > 0:
            return index
    raise ImageInputError(
        f"{label}: no image HDU with data; expected a primary/image extension with a 2-D "
        "image, or the LSST layout with an IMAGE extension"
    )


def _plane_shape(hdu: Any, label: str) -> tuple[int, int]:
    shape = tuple(int(n) for n in hdu.shape)
    if len(shape) != 2:
        raise ImageInputError(
            f"{label}: data has {len(shape)} dimensions (shape {shape}); cutouts need a 2-D image"
        )
    return shape[0], shape[1]


def _same_shape_plane(
    readers: _WindowReaders, names: tuple[str, ...], shape: tuple[int, int], label: str
) -> tuple[Any, str, Any] | None:
    """The extension named ``names``, its label and window reader (or `None`), checked to
    have the image's shape."""
    hdul = readers.hdul
    index = _extension_index(hdul, names)
    if index is None:
        return None
    hdu = hdul[index]
    hdu_label = f"{label}, HDU {_hdu_name(hdul, index)}"
    got = tuple(int(n) for n in hdu.shape) if _is_image_hdu(hdu) else None
    if got != shape:
        raise ImageInputError(
            f"{hdu_label}: extension {hdu.name} has shape {got} but the image has shape "
            f"{shape}; image, mask and variance must describe the same pixels"
        )
    return hdu, hdu_label, readers.reader(index, hdu_label)


# --- lazy planes -------------------------------------------------------------------------------


class _WindowReaders:
    """Window readers of the HDUs of one open file (see the module docstring)."""

    def __init__(self, path: Path, hdul: fits.HDUList) -> None:
        self.path = path
        self.hdul = hdul
        self._tables: fits.HDUList | None = None

    def _table_view(self, index: int) -> tuple[Any, int]:
        """Header and data offset of HDU ``index`` as the binary table on disk."""
        from astropy.io import fits

        if self._tables is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._tables = fits.open(
                    self.path, memmap=False, lazy_load_hdus=False, disable_image_compression=True
                )
        return self._tables[index].header, self._tables.fileinfo(index)["datLoc"]

    def close_tables(self) -> None:
        """Close the binary-table view of the file (needed only to set up tile readers)."""
        if self._tables is not None:
            self._tables.close()
            self._tables = None

    def reader(self, index: int, label: str) -> Any:
        """``(y0, y1, x0, x1) -> raw pixels`` of HDU ``index``, read on demand."""
        from astropy.io import fits

        hdu = self.hdul[index]
        if isinstance(hdu, fits.CompImageHDU):
            table_header, offset = self._table_view(index)
            tiles = gzip_tile_reader(str(self.path), table_header, hdu.header, offset)
            if tiles is not None:
                read = tiles.read_window
            else:
                section = hdu.section

                def read(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
                    # only the tiles under the window are decompressed
                    return np.asarray(section[y0:y1, x0:x1])
        else:
            section = hdu.section

            def read(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
                # whole rows are one contiguous positioned read; the columns are a view
                return np.asarray(section[y0:y1])[:, x0:x1]

        def read_window(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
            try:
                return read(y0, y1, x0, x1)
            except Exception as error:  # zlib.error, OSError, ... from a damaged file
                raise ImageInputError(
                    f"{label}: pixels of rows {y0}..{y1 - 1} cannot be read "
                    f"({type(error).__name__}: {error})"
                ) from None

        return read_window


def _is_float_hdu(hdu: Any) -> bool:
    header = hdu.header
    return int(header.get("BITPIX", 8)) < 0 or float(header.get("BSCALE", 1.0)) != 1.0


def _lazy_variance(
    readers: _WindowReaders, unit: Any, scale: float, shape: tuple[int, int], label: str
) -> LazyPlane | None:
    found = _same_shape_plane(readers, EXTENSION_VARIANCE, shape, label)
    if found is not None:
        reader = found[2]
        factor = scale * scale
        return LazyPlane(reader, shape, np.float32, lambda raw: scaled_float32(raw, factor))
    found = _same_shape_plane(readers, EXTENSION_UNCERTAINTY, shape, label)
    if found is None:
        return None
    hdu, hdu_label, reader = found
    from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty

    # astropy's CCDData convention: the class name in UTYPE, standard deviation if absent
    kinds = {cls.__name__: cls for cls in (VarianceUncertainty, StdDevUncertainty, InverseVariance)}
    kind = kinds.get(str(hdu.header.get("UTYPE", "")), StdDevUncertainty)

    def to_variance(raw: np.ndarray) -> np.ndarray:
        return variance_from_uncertainty(kind(raw), unit, scale, hdu_label)

    return LazyPlane(reader, shape, np.float32, to_variance)


def _lazy_mask(
    readers: _WindowReaders, shape: tuple[int, int], label: str
) -> tuple[LazyPlane | None, dict[str, int]]:
    found = _same_shape_plane(readers, EXTENSION_MASK, shape, label)
    if found is None:
        return None, {}
    hdu, hdu_label, reader = found
    if _is_float_hdu(hdu):
        raise ImageInputError(
            f"{hdu_label}: the MASK extension holds floating-point data; a mask must be "
            "integer bits"
        )
    planes = mask_planes_from_header(hdu.header)
    unsigned_bytes = int(hdu.header.get("BITPIX")) == 8 and float(hdu.header.get("BZERO", 0)) == 0
    if unsigned_bytes and not planes:
        # astropy CCDData writes a boolean mask as uint8 without plane names
        return LazyPlane(
            reader, shape, np.int32, lambda raw: (raw != 0).astype(np.int32)
        ), {BOOL_MASK_PLANE: 0}
    return LazyPlane(reader, shape, np.int32, lambda raw: raw.astype(np.int32)), planes


def _psf(hdul: fits.HDUList, label: str) -> np.ndarray | None:
    index = _extension_index(hdul, EXTENSION_PSF)
    if index is None:
        return None
    hdu = hdul[index]
    hdu_label = f"{label}, HDU {_hdu_name(hdul, index)}"
    if not _is_image_hdu(hdu) or int(np.prod(hdu.shape)) > _MAX_PSF_PIXELS:
        raise ImageInputError(
            f"{hdu_label}: the PSF extension is not an image of at most "
            f"{_MAX_PSF_PIXELS} pixels (shape {getattr(hdu, 'shape', None)})"
        )
    try:
        data = hdu.data
    except Exception as error:  # a damaged compressed PSF
        raise ImageInputError(
            f"{hdu_label}: the PSF pixels cannot be read ({type(error).__name__}: {error})"
        ) from None
    return psf_array(data, hdu_label)
