"""Where stamps go: their sizes, the sources' pixel positions, and each stamp's place.

A stamp of ``n`` pixels around a source at 0-based pixel ``(x, y)`` starts at
``ceil(x - n / 2)`` (and likewise in y), the convention of
`astropy.nddata.Cutout2D`: for odd ``n`` the source lies in the central
pixel, for even ``n`` within half a pixel of the stamp center. ``x - n / 2``
is first rounded to 1e-6 pixel so that a source exactly on a placement
boundary (an integer position for even ``n``) does not move by a pixel with
float noise of the WCS round trip. All sources go through the WCS in one
call. The outcome per source is a `~alertpack.packets.stamp.CutoutStatus`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from alertpack.errors import InputError
from alertpack.packets.stamp import CutoutStatus
from alertpack.packets.survey_image import SurveyImage

if TYPE_CHECKING:
    from astropy.wcs import WCS

__all__ = ["Placement", "cutout_sizes", "place_stamps"]

# Pixel positions are rounded to this many decimals before stamp placement.
_PLACEMENT_DECIMALS = 6
# Positions this far outside any image are treated as off-image before the
# integer conversion of their stamp corners.
_FAR_PIXELS = 1.0e9


def cutout_sizes(
    n: int,
    cutout_size: int,
    bbox_size: Any = None,
    min_size: int | None = None,
    max_size: int | None = None,
) -> npt.NDArray[np.int64]:
    """Edge length in pixels of each source's cutout.

    Parameters
    ----------
    n : `int`
        Number of sources.
    cutout_size : `int`
        Size for every source when ``bbox_size`` is `None`, and for sources
        whose ``bbox_size`` is missing (NaN) or not positive.
    bbox_size : array-like, optional
        Per-source footprint bounding-box size (e.g. ``diaSource.bboxSize``).
    min_size, max_size : `int`, optional
        Bounds applied to ``bbox_size``-driven sizes (not to ``cutout_size``).

    Returns
    -------
    sizes : `numpy.ndarray` [`int`]
        ``n`` edge lengths.
    """
    cutout_size = _positive_size(cutout_size, "cutout_size")
    if bbox_size is None:
        return np.full(n, cutout_size, dtype=np.int64)
    bbox = np.asarray(bbox_size, dtype=np.float64)
    if bbox.ndim == 0:
        bbox = np.full(n, float(bbox))
    if bbox.shape != (n,):
        raise InputError(f"bbox_size has {bbox.size} values for {n} sources; give one per source")
    low = None if min_size is None else _positive_size(min_size, "min_size")
    high = None if max_size is None else _positive_size(max_size, "max_size")
    if low is not None and high is not None and low > high:
        raise InputError(f"min_size {low} is larger than max_size {high}; swap them")
    usable = np.isfinite(bbox) & (bbox > 0)
    from_bbox = np.ceil(np.where(usable, bbox, 1.0))
    if low is not None or high is not None:
        from_bbox = np.clip(from_bbox, low, high)
    return np.where(usable, from_bbox, cutout_size).astype(np.int64)


def _positive_size(value: Any, what: str) -> int:
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} = {value!r} is not a whole number of pixels") from None
    if size <= 0 or size != value:
        raise InputError(f"{what} = {value!r} must be a positive whole number of pixels")
    return size


@dataclass
class Placement:
    """Where each source's stamp goes, for all sources (arrays of length n).

    Attributes
    ----------
    ra, dec : `numpy.ndarray` [`numpy.float64`]
        Source positions, degrees.
    sizes : `numpy.ndarray` [`numpy.int64`]
        Stamp edge lengths, pixels.
    x, y : `numpy.ndarray` [`numpy.float64`]
        Source pixel positions in the image array, 0-based; NaN where the
        position is bad.
    x_start, y_start : `numpy.ndarray` [`numpy.int64`]
        First pixel of each stamp in the image array (0 where there is none).
    status : `numpy.ndarray` [`numpy.uint8`]
        `~alertpack.packets.stamp.CutoutStatus` value per source.
    """

    ra: npt.NDArray[np.float64]
    dec: npt.NDArray[np.float64]
    sizes: npt.NDArray[np.int64]
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    x_start: npt.NDArray[np.int64]
    y_start: npt.NDArray[np.int64]
    status: npt.NDArray[np.uint8]


def _source_arrays(
    ra_deg: Any, dec_deg: Any, sizes: Any
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """``(ra, dec, sizes)`` as 1-D float64, float64 and int64 arrays of one length."""
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=np.float64))
    if ra.shape != dec.shape or ra.ndim != 1:
        raise InputError(
            f"ra has shape {ra.shape} and dec {dec.shape}; give one 1-D value per source for both"
        )
    size_values = np.atleast_1d(np.asarray(sizes))
    if size_values.size == 1:
        size_values = np.full(ra.shape, size_values.reshape(-1)[0])
    if size_values.shape != ra.shape:
        raise InputError(f"sizes has {size_values.size} values for {ra.size} sources")
    if not np.issubdtype(size_values.dtype, np.number):
        raise InputError(f"sizes of dtype {size_values.dtype} are not numbers of pixels")
    as_float = size_values.astype(np.float64)
    if np.any(~np.isfinite(as_float) | (as_float != np.round(as_float)) | (as_float < 1)):
        raise InputError("sizes must be positive whole numbers of pixels (see cutout_sizes)")
    return ra, dec, as_float.astype(np.int64)


def place_stamps(image: SurveyImage, ra_deg: Any, dec_deg: Any, sizes: Any) -> Placement:
    """Where the stamp of every source goes in ``image``, and its `CutoutStatus`.

    Parameters
    ----------
    image : `~alertpack.packets.survey_image.SurveyImage`
        The image (its shape and WCS are used).
    ra_deg, dec_deg : array-like
        Source positions, degrees.
    sizes : `int` or array-like of `int`
        Edge length per source (see `cutout_sizes`), or one for all.

    Returns
    -------
    placement : `Placement`

    Raises
    ------
    alertpack.errors.InputError
        If positions and sizes do not give one value per source, or a size
        is not a positive whole number.
    """
    ra, dec, sizes = _source_arrays(ra_deg, dec_deg, sizes)
    ny, nx = image.shape
    margin = max(nx, ny) + (int(sizes.max()) if sizes.size else 0)
    x, y = _world_to_pixel(image.wcs, ra, dec, (ny, nx), margin)
    status = np.full(ra.shape, CutoutStatus.BAD_POSITION, dtype=np.uint8)
    good = np.isfinite(x) & np.isfinite(y)
    near = good & (np.abs(x) < _FAR_PIXELS) & (np.abs(y) < _FAR_PIXELS)
    x_start = np.zeros(ra.shape, dtype=np.int64)
    y_start = np.zeros(ra.shape, dtype=np.int64)
    x_start[near] = _stamp_start(x[near], sizes[near])
    y_start[near] = _stamp_start(y[near], sizes[near])
    x_end, y_end = x_start + sizes, y_start + sizes
    overlaps = near & (x_start < nx) & (x_end > 0) & (y_start < ny) & (y_end > 0)
    inside = (x_start >= 0) & (y_start >= 0) & (x_end <= nx) & (y_end <= ny)
    status[good] = CutoutStatus.OFF_IMAGE
    status[overlaps] = CutoutStatus.PADDED
    status[overlaps & inside] = CutoutStatus.OK
    return Placement(
        ra=ra, dec=dec, sizes=sizes, x=x, y=y, x_start=x_start, y_start=y_start, status=status
    )


def _stamp_start(
    position: npt.NDArray[np.float64], sizes: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """First pixel of each stamp: ``ceil(position - size / 2)``, as Cutout2D places it.

    Rounding to a micro-pixel first keeps a source sitting exactly on a pixel
    boundary (e.g. given at an integer pixel and sent through the WCS and back)
    in the same stamp whichever way float noise tips it.
    """
    return np.ceil(np.round(position - sizes / 2.0, _PLACEMENT_DECIMALS)).astype(np.int64)


def _world_to_pixel(
    wcs: WCS,
    ra: npt.NDArray[np.float64],
    dec: npt.NDArray[np.float64],
    shape: tuple[int, int],
    margin: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """0-based pixel positions of all sources in one WCS call; NaN where it fails.

    Sources whose linear (distortion-free) position is more than ``margin``
    pixels outside the image keep that position: their stamps cannot reach
    the image, and iterating the inverse distortion that far out may diverge.
    """
    x = np.full(ra.shape, np.nan)
    y = np.full(ra.shape, np.nan)
    valid = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
    if not valid.any():
        return x, y
    world = np.empty((int(valid.sum()), 2))
    world[:, wcs.wcs.lng] = ra[valid]
    world[:, wcs.wcs.lat] = dec[valid]
    try:
        linear = np.asarray(wcs.wcs_world2pix(world, 0), dtype=np.float64)
    except (ValueError, MemoryError, ArithmeticError):
        return x, y
    ny, nx = shape
    far = (
        (linear[:, 0] < -margin)
        | (linear[:, 0] > nx + margin)
        | (linear[:, 1] < -margin)
        | (linear[:, 1] > ny + margin)
    )
    pixels = linear.copy()
    near = np.isfinite(linear).all(axis=1) & ~far
    if wcs.has_distortion and near.any():
        pixels[near] = _distorted_world_to_pixel(wcs, world[near])
    x[valid] = pixels[:, 0]
    y[valid] = pixels[:, 1]
    return x, y


def _distorted_world_to_pixel(
    wcs: WCS, world: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    # astropy.wcs (~0.5 s): whoever made ``wcs`` loaded it; importing this module does not
    from astropy.wcs import NoConvergence

    try:
        return np.asarray(wcs.all_world2pix(world, 0), dtype=np.float64)
    except NoConvergence as failure:
        # keep the points that converged; divergent ones have no position
        pixels = np.array(failure.best_solution, dtype=np.float64)
        if failure.divergent is not None:
            pixels[np.asarray(failure.divergent, dtype=np.intp)] = np.nan
        return pixels
    except (ValueError, MemoryError, ArithmeticError):
        return np.full(world.shape, np.nan)
