"""Cutouts the straightforward way: `astropy.nddata.Cutout2D` and `CCDData.write`.

The oracle for `alertpack.packets.cutouts` in tests and its baseline in benchmarks:
one source at a time, astropy doing the placement (``mode="partial"``, NaN
fill), the WCS shift (the parent WCS, SIP included, with a moved reference
pixel) and the FITS writing (primary image, ``UNCERT`` variance, ``MASK``
booleans, ``FLAGS`` with the integer mask bits and ``PSFIMAGE``).

`lsst_cutout_bytes` is LSST's own writer, as ``createCcdDataCutout`` and
``streamCcdDataToBytes`` of lsst/ap_association's ``packageAlerts.py`` make
an alert cutout: a `~astropy.nddata.CCDData` of the image, its
`~astropy.nddata.VarianceUncertainty`, the integer mask as ``flags``, a
local linear TAN WCS at the source (``CRPIX`` the source pixel, ``CRVAL``
its position, ``CD`` the local Jacobian of the parent WCS), the PSF,
``meta`` ``cutMinX``/``cutMinY`` and the ``ROTPA`` card, unit nJy, written
with ``CCDData.write(stream, format="fits")``: the primary image,
``UNCERT`` and ``PSFIMAGE`` (``CCDData.to_hdu`` writes the flags only when
asked, ``hdu_flags="MASK"``, which is how a comparison for the same planes
adds the mask). It is the baseline of the packet-size benchmark.

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
from astropy.wcs import WCS

__all__ = [
    "ParentPlanes",
    "lsst_cutout_bytes",
    "no_data_bit",
    "parent_planes",
    "reference_cutout_bytes",
]

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


# Half-width of the central differences of LSST's local linear WCS, pixels.
_JACOBIAN_STEP = 0.5


def _local_cd(parent_wcs: Any, x: float, y: float, center: SkyCoord) -> np.ndarray:
    """``CD`` of a TAN WCS tangent at ``center``: d(east, north)/d(x, y), degrees per pixel."""
    h = _JACOBIAN_STEP
    xs = np.array([x + h, x - h, x, x])
    ys = np.array([y, y, y + h, y - h])
    ra, dec = parent_wcs.all_pix2world(xs, ys, 0)
    east, north = center.spherical_offsets_to(SkyCoord(ra * u.deg, dec * u.deg, frame="icrs"))
    east, north = east.to_value(u.deg), north.to_value(u.deg)
    return np.array([
        [(east[0] - east[1]) / (2 * h), (east[2] - east[3]) / (2 * h)],
        [(north[0] - north[1]) / (2 * h), (north[2] - north[3]) / (2 * h)],
    ])


def lsst_cutout_bytes(
    image: np.ndarray,
    variance: np.ndarray,
    mask: np.ndarray,
    *,
    parent_wcs: Any,
    start: tuple[int, int],
    ra: float,
    dec: float,
    psf: np.ndarray | None = None,
    rotpa: float | None = None,
    xy0: tuple[int, int] = (0, 0),
    hdu_flags: str | None = None,
) -> bytes:
    """A cutout as LSST's alert packager writes it (see the module docstring).

    Parameters
    ----------
    image, variance, mask : `numpy.ndarray`
        The stamp's pixels (nJy), variance (nJy²) and integer bit mask.
    parent_wcs : `astropy.wcs.WCS`
        WCS of the parent image array.
    start : `tuple` [`int`, `int`]
        0-based ``(x, y)`` of the stamp's first pixel in the parent array.
    ra, dec : `float`
        The source, degrees: the tangent point of the stamp's WCS.
    psf : `numpy.ndarray`, optional
        PSF image attached to the cutout.
    rotpa : `float`, optional
        ``ROTPA``, the boresight rotation angle, degrees.
    xy0 : `tuple` [`int`, `int`]
        Parent (detector) frame position of the parent array's first pixel.
    hdu_flags : `str`, optional
        Also write the mask, as an extension of this name (LSST's task does not).

    Returns
    -------
    data : `bytes`
    """
    center = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
    x, y = (float(v) for v in parent_wcs.world_to_pixel(center))
    cut_min_x, cut_min_y = xy0[0] + start[0] - 1, xy0[1] + start[1] - 1
    # as LSST: CRPIX is the source's pixel with the stamp's first pixel at 1
    wcs = WCS(naxis=2)
    wcs.array_shape = image.shape
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crpix = [x - start[0] + 1, y - start[1] + 1]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.cd = _local_cd(parent_wcs, x, y, center)
    cutout = CCDData(
        data=image,
        uncertainty=VarianceUncertainty(variance),
        flags=mask,
        wcs=wcs,
        psf=psf,
        meta={"cutMinX": cut_min_x, "cutMinY": cut_min_y},
        unit=u.nJy,
    )
    cutout.header["ROTPA"] = (rotpa, "Pos angle in deg of focal plane +Y wrt North")
    stream = io.BytesIO()
    cutout.write(stream, format="fits", hdu_flags=hdu_flags)
    return stream.getvalue()
