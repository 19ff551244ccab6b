"""Cutouts the straightforward way: `astropy.nddata.Cutout2D` and `CCDData.write`.

The oracle for `alertpack.packets.cutouts` in tests and its baseline in benchmarks:
one source at a time, astropy doing the placement (``mode="partial"``, NaN
fill), the WCS shift (the parent WCS, SIP included, with a moved reference
pixel) and the FITS writing (primary image, ``UNCERT`` variance, ``MASK``
booleans, ``FLAGS`` with the integer mask bits and ``PSFIMAGE``).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from alertpack.inputs.images import SurveyImage
from alertpack.packets.cutouts import stamp_mask_planes

__all__ = ["reference_cutout_bytes"]


def reference_cutout_bytes(image: SurveyImage, ra: float, dec: float, size: int) -> bytes | None:
    """FITS bytes of one cutout made with astropy's general-purpose tools.

    Parameters
    ----------
    image : `~alertpack.inputs.images.SurveyImage`
        The parent image.
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
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.nddata import CCDData, Cutout2D, NoOverlapError, VarianceUncertainty

    if not (np.isfinite(ra) and np.isfinite(dec)):
        return None
    position = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
    try:
        pixels = Cutout2D(
            image.image, position, (size, size), wcs=image.wcs, mode="partial", fill_value=np.nan
        )
    except (NoOverlapError, ValueError):
        return None
    variance = _same_cutout(image.variance, pixels, np.nan)
    _, no_data_bit = stamp_mask_planes(image.mask_planes)
    no_data = 1 << no_data_bit
    mask = image.mask if image.mask is not None else np.zeros(image.shape, dtype=np.int32)
    flags = _same_cutout(mask, pixels, no_data)
    cutout = CCDData(
        pixels.data,
        unit=u.nJy,
        wcs=pixels.wcs,
        uncertainty=None if variance is None else VarianceUncertainty(variance),
        mask=flags != 0,
        flags=flags,
        psf=image.psf,
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

