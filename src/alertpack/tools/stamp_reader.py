"""Cutout bytes from alerts, opened as FITS with every header checked before any pixel is decoded.

A cutout is FITS bytes inside an alert from anywhere: a 1 MB alert can hold
a tile-compressed stamp that inflates to 15000 x 15000 pixels, or a header
with ``A_ORDER = 400`` that takes astropy minutes to turn into a WCS.
`open_stamp` is how the read tools (``validate``, ``show``, ``browse``) open
one: it reads the headers only and refuses, as one
`~alertpack.errors.LimitExceededError` naming the cutout and the limit, a
cutout larger than ``stamp_bytes``, an image HDU declaring more than
``stamp_pixels``, gzip tiles that inflate beyond their declared size, and
SIP orders beyond ``wcs_order`` (`alertpack.limits`); an HDU whose declared
data runs past the end of the bytes (a truncated cutout) is an
`~alertpack.errors.InputError`. Only then are pixels decoded, by astropy.
"""

from __future__ import annotations

import io
import math
import warnings
from typing import TYPE_CHECKING, Any

from alertpack.errors import InputError, LimitExceededError
from alertpack.limits import (
    GZIP_WBITS,
    ReadLimits,
    check_limit,
    check_wcs_orders,
    inflate,
    read_limits,
)

if TYPE_CHECKING:
    from astropy.io import fits

__all__ = ["gunzipped", "open_stamp"]

_GZIP_TYPES = ("GZIP_1", "GZIP_2")


def open_stamp(
    data: bytes, *, name: str = "cutout", limits: ReadLimits | None = None
) -> fits.HDUList:
    """The HDUs of one cutout, opened by astropy once its headers are within the limits.

    Parameters
    ----------
    data : `bytes`
        The cutout field of an alert: FITS bytes, plain or tile-compressed,
        or a gzipped FITS file (inflated first, `gunzipped`).
    name : `str`
        What it is (``cutoutScience``), for messages.
    limits : `~alertpack.limits.ReadLimits`, optional
        ``stamp_bytes``, ``stamp_pixels`` and ``wcs_order``; default: the environment.

    Returns
    -------
    hdus : `astropy.io.fits.HDUList`
        Pixels not decoded yet (``hdu.data`` decodes them); close it after use.

    Raises
    ------
    LimitExceededError
        Bytes, declared pixels, inflated tiles or SIP orders beyond the limits.
    InputError
        Bytes that are not FITS, or declare data beyond their end (truncated).
    """
    # astropy.io.fits (~0.2 s) on first use: inspect never opens a cutout
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyWarning

    limits = read_limits(limits)
    check_limit(len(data), "stamp_bytes", limits, name, "bytes")
    data = gunzipped(data, name=name, limits=limits)
    try:
        with warnings.catch_warnings():
            # a damaged header is one InputError below, not a warning
            warnings.simplefilter("ignore", AstropyWarning)
            hdus = fits.open(io.BytesIO(data), lazy_load_hdus=False)
            spans = [hdus.fileinfo(index) for index in range(len(hdus))]
    except Exception as error:  # astropy raises many types for bytes that are not FITS
        raise InputError(f"{name} does not open with astropy.io.fits: {error}") from None
    try:
        for index, (hdu, span) in enumerate(zip(hdus, spans, strict=True)):
            where = f"{name}, HDU {index}"
            end = span["datLoc"] + span["datSpan"]
            if end > len(data):
                raise InputError(
                    f"{where}: the header declares data up to byte {end:,} but the cutout has "
                    f"only {len(data):,} bytes (truncated)"
                )
            _check_hdu(hdu, data, index, where, limits)
    except (InputError, LimitExceededError):
        hdus.close()
        raise
    return hdus


def gunzipped(data: bytes, *, name: str = "cutout", limits: ReadLimits | None = None) -> bytes:
    """The FITS bytes of a cutout: a gzipped stamp (ZTF's convention) inflated within the limit.

    The limit is the read limit ``stamp_bytes`` (`alertpack.limits`).

    Plain and tile-compressed stamps are FITS as they are and come back unchanged.

    Raises
    ------
    InputError
        A gzipped stamp that is truncated, gzipped twice, not FITS inside, or
        inflates beyond the read limit ``stamp_bytes``.
    """
    # numpy and the stamp code only where a gzipped cutout is met
    from alertpack.packets.stamp_compression import decode_stamp, stamp_variant

    if stamp_variant(data) != "gzip":
        return data
    try:
        return decode_stamp(data, max_bytes=read_limits(limits).stamp_bytes)
    except InputError as error:
        raise InputError(f"{name}: {error}") from None


def _check_hdu(hdu: Any, data: bytes, index: int, where: str, limits: ReadLimits) -> None:
    """Declared pixels, gzip tiles and WCS orders of one HDU, within the limits."""
    from astropy.io import fits  # as in open_stamp

    if not hdu.is_image:
        return
    header = hdu.header
    n_axes = int(header.get("NAXIS", 0))
    pixels = math.prod(int(header.get(f"NAXIS{axis}", 0)) for axis in range(1, n_axes + 1))
    check_limit(pixels if n_axes else 0, "stamp_pixels", limits, where, "pixels declared")
    if isinstance(hdu, fits.CompImageHDU):
        _check_gzip_tiles(data, index, where, limits)
    check_wcs_orders(header, limits, where)


def _check_gzip_tiles(data: bytes, index: int, where: str, limits: ReadLimits) -> None:
    """Each gzip tile of compressed HDU ``index`` inflates within its declared size.

    astropy's gzip decoding has no bound; the tiles are inflated here first,
    each to at most its pixels' bytes.
    """
    from astropy.io import fits  # as in open_stamp

    with fits.open(io.BytesIO(data), disable_image_compression=True) as tables:
        table = tables[index]
        header = table.header
        shape = [int(header.get(f"ZNAXIS{axis}", 0)) for axis in (1, 2)]
        tile = [int(header.get("ZTILE1", shape[0])), int(header.get("ZTILE2", 1))]
        tile = [min(size, extent) for size, extent in zip(tile, shape, strict=True)]
        check_limit(math.prod(tile), "stamp_pixels", limits, f"{where}: one tile", "pixels")
        tile_bytes = math.prod(tile) * max(abs(int(header.get("ZBITPIX", 32))) // 8, 1)
        columns = ["GZIP_COMPRESSED_DATA"]
        if str(header.get("ZCMPTYPE", "")).strip() in _GZIP_TYPES:
            columns.append("COMPRESSED_DATA")
        names = set(table.columns.names)
        for column in columns:
            if column not in names:
                continue
            for number, compressed in enumerate(table.data[column]):
                if len(compressed):
                    inflate(
                        bytes(compressed), max_bytes=tile_bytes, wbits=GZIP_WBITS,
                        what=f"{where}: tile {number} ({column})",
                    )
