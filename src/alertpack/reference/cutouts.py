"""Cutouts the straightforward way: `astropy.nddata.Cutout2D` and `CCDData.write`.

The oracle for `alertpack.packets.cutouts` in tests and its baseline in benchmarks:
one source at a time, astropy doing the placement (``mode="partial"``, NaN
fill), the WCS shift (the parent WCS, SIP included, with a moved reference
pixel) and the FITS writing (primary image, ``UNCERT`` variance, ``MASK``
booleans, ``FLAGS`` with the integer mask bits and ``PSFIMAGE``).

It shares no code with alertpack's fast path: it reads the parent straight
from an astropy `~astropy.nddata.NDData`/`~astropy.nddata.CCDData` (image,
``unit``, ``wcs``, a variance or standard-deviation ``uncertainty``, an
integer bit ``mask`` or ``flags``, ``MP_<NAME> = bit`` plane names in
``meta``, ``psf``) and follows the documented rules on its own.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.nddata import (
    CCDData,
    Cutout2D,
    NoOverlapError,
    StdDevUncertainty,
    VarianceUncertainty,
)

__all__ = ["ParentPlanes", "no_data_bit", "parent_planes", "reference_cutout_bytes"]

# LSST's name of the mask plane of pixels without data.
NO_DATA = "NO_DATA"


def no_data_bit(meta: Any) -> int:
    """The ``NO_DATA`` bit of an image: its ``MP_NO_DATA``, else the lowest bit no plane uses."""
    planes = {
        str(key)[3:].upper(): int(value)
        for key, value in dict(meta or {}).items()
        if str(key).upper().startswith("MP_")
    }
    if NO_DATA in planes:
        return planes[NO_DATA]
    used = set(planes.values())
    return next(bit for bit in range(32) if bit not in used)


@dataclass
class ParentPlanes:
    """A parent image's planes in nJy, converted once for all of its cutouts."""

    parent: Any
    image: np.ndarray
    variance: np.ndarray | None
    mask: np.ndarray
    no_data: int


def parent_planes(parent: Any) -> ParentPlanes:
    """Image in nJy, variance in nJy², integer bit mask and NO_DATA value of an NDData.

    A straightforward packager converts each image once per visit, not once
    per cutout: pass the result to `reference_cutout_bytes` for every source.
    """
    unit = u.Unit(parent.unit) if parent.unit is not None else u.nJy
    scale = unit.to(u.nJy)
    image = np.asarray(parent.data, dtype=np.float32)
    variance = None
    uncertainty = parent.uncertainty
    if isinstance(uncertainty, VarianceUncertainty):
        variance = np.asarray(uncertainty.array, dtype=np.float32)
    elif isinstance(uncertainty, StdDevUncertainty):
        variance = np.square(np.asarray(uncertainty.array, dtype=np.float32))
    if scale != 1.0:
        image = (image * scale).astype(np.float32)
        variance = None if variance is None else (variance * scale**2).astype(np.float32)
    mask = None
    for candidate in (parent.mask, getattr(parent, "flags", None)):
        if candidate is not None and np.asarray(candidate).dtype.kind in "iu":
            mask = np.asarray(candidate, dtype=np.int32)
            break
    if mask is None:
        mask = np.zeros(image.shape, dtype=np.int32)
    return ParentPlanes(parent, image, variance, mask, 1 << no_data_bit(parent.meta))


def reference_cutout_bytes(parent: Any, ra: float, dec: float, size: int) -> bytes | None:
    """FITS bytes of one cutout made with astropy's general-purpose tools.

    Parameters
    ----------
    parent : `astropy.nddata.NDData` or `ParentPlanes`
        The parent image (e.g. a `~astropy.nddata.CCDData`), as described in
        the module docstring, or its planes from `parent_planes`.
    ra, dec : `float`
        Source position, degrees.
    size : `int`
        Edge length of the square cutout, pixels.

    Returns
    -------
    data : `bytes` or `None`
        `None` when the position is not finite or the cutout would not overlap
        the image.
    """
    if not (np.isfinite(ra) and np.isfinite(dec)):
        return None
    planes = parent if isinstance(parent, ParentPlanes) else parent_planes(parent)
    image, variance = planes.image, planes.variance
    position = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
    try:
        pixels = Cutout2D(
            image, position, (size, size), wcs=planes.parent.wcs, mode="partial",
            fill_value=np.nan,
        )
    except (NoOverlapError, ValueError):
        return None
    variance_cut = _same_cutout(variance, pixels, np.nan)
    flags = _same_cutout(planes.mask, pixels, planes.no_data)
    cutout = CCDData(
        pixels.data,
        unit=u.nJy,
        wcs=pixels.wcs,
        uncertainty=None if variance_cut is None else VarianceUncertainty(variance_cut),
        mask=flags != 0,
        flags=flags,
        psf=getattr(planes.parent, "psf", None),
    )
    stream = io.BytesIO()
    cutout.write(stream, format="fits", hdu_flags="FLAGS")
    return stream.getvalue()


def _same_cutout(plane: np.ndarray | None, like: Any, fill: float) -> np.ndarray | None:
    """Cut another plane of the image with the slices astropy chose for the pixels."""
    if plane is None:
        return None
    cut = np.full(like.shape, fill, dtype=plane.dtype)
    cut[like.slices_cutout] = plane[like.slices_original]
    return cut
