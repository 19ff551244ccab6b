"""FITS exposure files, opened lazily: headers checked at open, pixels read per stamp.

`open_fits_image` reads every header of the file and checks it before any
pixel is read: each HDU's declared data fits in the file (a truncated file or
a header claiming a huge ``NAXIS`` is caught here, not by a reshape or an
allocation later) and nothing but padding follows the last complete HDU (a
truncated or damaged header would otherwise silently drop the extensions
after it). Which HDU is the image, mask, variance and PSF, and their shapes,
unit, WCS and mask planes, are decided by
`alertpack.inputs.exposure_layout.resolve_exposure_layout`, as for an HDUList
in memory. The planes of the returned
`~alertpack.packets.survey_image.SurveyImage` are `~alertpack.packets.survey_image.LazyPlane`
objects: the cutout code's ``plane[y0:y1, x0:x1]`` reads only those rows of an
uncompressed HDU (one positioned read through astropy's ``section``, which
applies ``BZERO``/``BSCALE``/``BLANK`` and byte order as ``.data`` does) and
only the tiles under the window of a tile-compressed HDU
(`alertpack.inputs.fits_tiles.GzipTiles` for lossless GZIP tiles, otherwise
`~astropy.io.fits.CompImageHDU.section`). The layout's unit, variance and mask
conversions are applied to each window, elementwise as they are applied to
whole arrays in memory, so the cutouts are byte for byte the same.

Positioned reads rather than a memory map: a map's page faults pull whole
neighbouring pages of every row a stamp crosses into the resident set (about
50 MB per exposure for 60 stamps here), reads keep only the stamp.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.errors import ImageInputError, LimitExceededError
from alertpack.inputs.exposure_layout import WindowReader, describe_hdu, resolve_exposure_layout
from alertpack.inputs.fits_tiles import check_compressed_image, gzip_tile_reader, tile_table
from alertpack.inputs.survey_image import error_text
from alertpack.limits import ReadLimits, check_limit, read_limits
from alertpack.packets.survey_image import SurveyImage

if TYPE_CHECKING:
    from astropy.io import fits

__all__ = ["open_fits_image"]

_FITS_BLOCK = 2880


def open_fits_image(
    path: str | os.PathLike[str],
    *,
    name: str,
    calibration: Any = None,
    limits: ReadLimits | None = None,
) -> SurveyImage:
    """A `SurveyImage` of a FITS file whose pixels are read stamp by stamp.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        A single-HDU image with ``BUNIT`` and a celestial WCS, the LSST
        Exposure layout (``IMAGE``, ``MASK``, ``VARIANCE``, ``PSF``
        extensions) or an astropy CCDData file (``MASK``, ``UNCERT``), plain
        or tile-compressed (see `alertpack.inputs.exposure_layout`).
    name : `str`
        What the image is ("difference", "template", "science"); for messages.
    calibration : `float` or `~astropy.units.Quantity`, optional
        nJy per input unit, for images in counts (see
        `~alertpack.inputs.images.as_survey_image`).
    limits : `~alertpack.limits.ReadLimits`, optional
        Bounds on the declared image and tile sizes and on tile decompression;
        default: `~alertpack.limits.read_limits` (the environment).

    Returns
    -------
    image : `SurveyImage`
        Its planes are `~alertpack.packets.survey_image.LazyPlane` objects; the file
        stays open while they are referenced.

    Raises
    ------
    ImageInputError
        Missing or unreadable file, truncated data or header, or a layout
        `~alertpack.inputs.exposure_layout.resolve_exposure_layout` refuses.
        The message names the file and the HDU.
    LimitExceededError
        An image or tile declaring more than the read limits, or a tile that
        inflates beyond its declared size (when its window is read).
    """
    path = Path(path)
    hdul = _open_checked(path, f"{name} image ({path})")
    readers = _FileWindows(path, hdul, read_limits(limits))
    try:
        layout = resolve_exposure_layout(
            hdul, name=name, source=str(path), calibration=calibration
        )
        return layout.survey_image(readers)
    except (ImageInputError, LimitExceededError):
        hdul.close()
        raise
    finally:
        readers.close_tables()


# --- opening and checking the file structure ---------------------------------------------------


def _open_checked(path: Path, label: str) -> fits.HDUList:
    """All headers read, each HDU's data inside the file, nothing unread after the last."""
    if not path.exists():
        raise ImageInputError(f"{label}: file {path} does not exist")
    if path.is_dir():
        raise ImageInputError(f"{label}: {path} is a directory, not a FITS file")
    # astropy when used: a pool run's parent imports this module but reads no image
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
            f"{label}: {path} is not a readable FITS file ({error_text(error)})"
        ) from None
    for index, span in enumerate(spans):
        end = span["datLoc"] + span["datSpan"]
        if end > file_size:
            hdul.close()
            raise ImageInputError(
                f"{label}, HDU {describe_hdu(hdul, index)}: the header declares data up to byte "
                f"{end} but the file has only {file_size} bytes (truncated file, or a wrong "
                "NAXIS/BITPIX in the header)"
            )
    last_end = spans[-1]["datLoc"] + spans[-1]["datSpan"] if spans else 0
    if file_size > last_end and _has_content(path, last_end):
        hdul.close()
        raise ImageInputError(
            f"{label}: bytes {last_end}..{file_size} after HDU "
            f"{describe_hdu(hdul, len(spans) - 1)} are not a complete FITS HDU (a truncated "
            "or damaged header); the extensions after it cannot be read"
        )
    return hdul


def _has_content(path: Path, offset: int) -> bool:
    """Whether the bytes from ``offset`` hold more than zero/blank padding (first block)."""
    with open(path, "rb") as stream:
        stream.seek(offset)
        tail = stream.read(_FITS_BLOCK)
    return bool(tail.strip(b"\0 "))


# --- lazy planes -------------------------------------------------------------------------------


class _FileWindows:
    """Window readers of the HDUs of one open file (see the module docstring)."""

    lazy = True

    def __init__(self, path: Path, hdul: fits.HDUList, limits: ReadLimits) -> None:
        self.path = path
        self.hdul = hdul
        self.limits = limits
        self._tables: fits.HDUList | None = None

    def _table_view(self, index: int) -> tuple[Any, int]:
        """Header and data offset of HDU ``index`` as the binary table on disk."""
        # astropy when used: a pool run's parent imports this module but reads no image
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

    def window_reader(self, index: int, label: str) -> WindowReader:
        """``(y0, y1, x0, x1) -> raw pixels`` of HDU ``index``, read on demand.

        The declared image (and tile) sizes are checked against the read
        limits here, before any pixel is read.
        """
        try:
            read = self._raw_reader(index, label)
        except (ImageInputError, LimitExceededError):
            raise
        except Exception as error:  # astropy's section of a damaged compressed header, ...
            raise ImageInputError(
                f"{label}: the pixels cannot be read ({error_text(error)})"
            ) from None

        def read_window(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
            try:
                return read(y0, y1, x0, x1)
            except LimitExceededError:
                raise
            except Exception as error:  # zlib.error, OSError, ... from a damaged file
                raise ImageInputError(
                    f"{label}: pixels of rows {y0}..{y1 - 1} cannot be read "
                    f"({error_text(error)})"
                ) from None

        return read_window

    def _raw_reader(self, index: int, label: str) -> WindowReader:
        # astropy when used: a pool run's parent imports this module but reads no image
        from astropy.io import fits

        hdu = self.hdul[index]
        if isinstance(hdu, fits.CompImageHDU):
            table_header, offset = self._table_view(index)
            check_compressed_image(table_header, self.limits, label)
            table = tile_table(str(self.path), table_header, offset, label)
            if table is not None:
                tiles = gzip_tile_reader(table, table_header, hdu.header)
                if tiles is not None:
                    return tiles.read_window
            compressed = hdu.section

            def read_tiles(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
                # only the tiles under the window are decompressed, by astropy, whose
                # gzip decoding has no bound: each gzip tile is proved bounded first
                if table is not None:
                    table.check_gzip_tiles(y0, y1, x0, x1)
                return np.asarray(compressed[y0:y1, x0:x1])

            return read_tiles
        n_pixels = math.prod(int(hdu.header.get(f"NAXIS{n}", 0))
                             for n in range(1, int(hdu.header.get("NAXIS", 0)) + 1))
        check_limit(n_pixels, "image_pixels", self.limits, label, "pixels declared (NAXISn)")
        section = hdu.section

        def read_rows(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
            # whole rows are one contiguous positioned read; the columns are a view
            return np.asarray(section[y0:y1])[:, x0:x1]

        return read_rows
