"""Postage stamps around sources, serialized as standalone FITS files (the fast path).

`extract_stamps` cuts square stamps of given edge lengths out of one
`~alertpack.packets.survey_image.SurveyImage` for many sources at once (one world->pixel
call for all of them), and `stamp_fits_bytes` writes each stamp as a small
FITS file from pre-formatted header templates. `make_cutout_bytes` does both;
it is what the alert Task uses. `alertpack.reference.cutouts` does the same
with `astropy.nddata.Cutout2D` and `CCDData.write`; tests compare the two.

Stamp placement
---------------
A stamp of ``n`` pixels around a source at 0-based pixel ``(x, y)`` starts at
``ceil(x - n / 2)`` (and likewise in y), the convention of
`astropy.nddata.Cutout2D`: for odd ``n`` the source lies in the central
pixel, for even ``n`` within half a pixel of the stamp center. ``x - n / 2``
is first rounded to 1e-6 pixel so that a source exactly on a placement
boundary (an integer position for even ``n``) does not move by a pixel with
float noise of the WCS round trip.

Outcomes (`CutoutStatus`), one per source
-----------------------------------------
``OK``
    The stamp lies inside the image (its edge may coincide with the image
    edge): every pixel is image data.
``PADDED``
    The stamp reaches beyond the image edge: it keeps its full size, the
    pixels outside the image are NaN in image and variance and carry the
    ``NO_DATA`` mask bit (the plane is added, at the lowest free bit, when
    the image mask has none).
``OFF_IMAGE``
    The stamp does not overlap the image at all: no cutout (`None`).
``BAD_POSITION``
    ra/dec is NaN or infinite, |dec| > 90, or the WCS cannot transform it
    (e.g. the far side of a TAN projection, or a point so far off a SIP
    image that the inverse distortion diverges): no cutout (`None`).

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

The image, variance and mask headers carry the same WCS. For a TAN or
TAN-SIP parent (the FITS form of a detector WCS) it is the parent's own WCS
with ``CRPIX`` moved to the stamp: ``CRVAL``, ``CD`` and the SIP terms
(``A_*``, ``B_*``, ``AP_*``, ``BP_*``, relative to ``CRPIX``) unchanged, so
the stamp maps pixels to the sky exactly as the parent does, at any stamp
size. Any other parent WCS is linearized at the stamp center (``CRPIX`` at
the center, ``CRVAL`` its sky position, ``CD`` the local Jacobian), which
agrees with it to 0.01 pixel over small stamps;
``LTV1``/``LTV2`` = minus the stamp origin in the parent (detector) frame
and the ``PHYSICAL`` alternate WCS ``A`` (``CRVAL1A``/``CRVAL2A`` = origin)
giving parent pixel coordinates, both as LSST writes them; ``ORIENTAT`` the
position angle of the stamp's +y axis in degrees east of north (the HST
keyword for the same quantity); ``CUTOUT`` the name of the parent image.
"""

from __future__ import annotations

import enum
import functools
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.errors import InputError
from alertpack.inputs.images import as_survey_image
from alertpack.packets.survey_image import SurveyImage

if TYPE_CHECKING:
    from astropy.wcs import WCS

__all__ = [
    "NO_DATA_PLANE",
    "CutoutStatus",
    "LocalTanWcs",
    "SipTerms",
    "Stamp",
    "cutout_sizes",
    "extract_stamps",
    "make_cutout_bytes",
    "stamp_fits_bytes",
    "stamp_mask_planes",
]

NO_DATA_PLANE = "NO_DATA"

_FITS_BLOCK = 2880
_PLANE_NAME = re.compile(r"[A-Z0-9_-]{1,60}")
_CARD = 80
# Half-width of the central differences of the local Jacobian, pixels; the
# parent WCS is smooth on this scale, and rounding is ~1e-10 of the result.
_JACOBIAN_STEP = 1.0
# Pixel positions are rounded to this many decimals before stamp placement.
_PLACEMENT_DECIMALS = 6
# Positions this far outside any image are treated as off-image before the
# integer conversion of their stamp corners.
_FAR_PIXELS = 1.0e9


class CutoutStatus(enum.IntEnum):
    """What happened to one source's cutout (see the module docstring)."""

    OK = 0
    PADDED = 1
    OFF_IMAGE = 2
    BAD_POSITION = 3


@dataclass(frozen=True)
class SipTerms:
    """SIP distortion polynomials of a parent WCS, hashable (one per parent image).

    Attributes
    ----------
    a, b : `tuple` [`tuple` [`float`, ...], ...]
        Forward coefficients, ``a[i][j]`` of ``u**i * v**j``.
    ap, bp : same or `None`
        Inverse coefficients, when the parent has them.
    """

    a: tuple[tuple[float, ...], ...]
    b: tuple[tuple[float, ...], ...]
    ap: tuple[tuple[float, ...], ...] | None = None
    bp: tuple[tuple[float, ...], ...] | None = None

    def to_astropy(self, crpix: tuple[float, float]) -> Any:
        """An `astropy.wcs.Sip` about ``crpix`` (FITS 1-based)."""
        from astropy.wcs import Sip

        def array(terms: tuple | None) -> np.ndarray | None:
            return None if terms is None else np.array(terms, dtype=np.float64)

        return Sip(array(self.a), array(self.b), array(self.ap), array(self.bp), crpix)

    def cards(self) -> tuple[str, ...]:
        """``A_ORDER``, ``A_i_j``, ... header cards (nonzero terms only)."""
        cards: list[str] = []
        for prefix, terms in (("A", self.a), ("B", self.b), ("AP", self.ap), ("BP", self.bp)):
            if terms is None:
                continue
            order = len(terms) - 1
            cards.append(_card(f"{prefix}_ORDER", str(order), "SIP polynomial order"))
            for i in range(order + 1):
                for j in range(order + 1 - i):
                    if terms[i][j] != 0.0:
                        cards.append(_card(f"{prefix}_{i}_{j}", _real(terms[i][j])))
        return tuple(cards)


def _ctypes(sip: bool) -> tuple[str, str]:
    return ("RA---TAN-SIP", "DEC--TAN-SIP") if sip else ("RA---TAN", "DEC--TAN")


def _carried_sip(wcs: WCS) -> SipTerms | None:
    """The parent's SIP terms when its WCS is exactly TAN + SIP (nothing else to carry).

    Returns `None` for a parent without SIP, or one with other distortions
    (lookup tables) or another projection: those are linearized instead.
    """
    if wcs.sip is None or wcs.cpdis1 is not None or wcs.cpdis2 is not None:
        return None
    if wcs.det2im1 is not None or wcs.det2im2 is not None:
        return None
    if not all(ctype.split("-")[-2:] == ["TAN", "SIP"] for ctype in wcs.wcs.ctype):
        return None
    if wcs.wcs.lng != 0 or wcs.wcs.lat != 1:
        return None

    def terms(array: np.ndarray | None) -> tuple[tuple[float, ...], ...] | None:
        return None if array is None else tuple(tuple(map(float, row)) for row in array)

    sip = wcs.sip
    return SipTerms(terms(sip.a), terms(sip.b), terms(sip.ap), terms(sip.bp))


@dataclass(frozen=True)
class LocalTanWcs:
    """A linear TAN WCS of a stamp, kept as numbers until an astropy WCS is needed.

    Attributes
    ----------
    crpix : `tuple` [`float`, `float`]
        Reference pixel, FITS 1-based.
    crval : `tuple` [`float`, `float`]
        RA, Dec of the reference pixel, degrees.
    cd : `tuple` [`tuple` [`float`, `float`], `tuple` [`float`, `float`]]
        ``CD`` matrix, degrees per pixel.
    radesys : `str`
        Reference frame (``RADESYS``) of the parent WCS.
    equinox : `float` or `None`
        ``EQUINOX`` for FK4/FK5 frames.
    sip : `SipTerms` or `None`
        The parent's SIP distortion (relative to ``crpix``), when carried.
    """

    crpix: tuple[float, float]
    crval: tuple[float, float]
    cd: tuple[tuple[float, float], tuple[float, float]]
    radesys: str = "ICRS"
    equinox: float | None = None
    sip: SipTerms | None = None

    def to_astropy(self) -> WCS:
        """The same WCS as an `astropy.wcs.WCS`."""
        from astropy.wcs import WCS

        wcs = WCS(naxis=2)
        wcs.wcs.ctype = list(_ctypes(self.sip is not None))
        wcs.wcs.cunit = ["deg", "deg"]
        wcs.wcs.crpix = self.crpix
        wcs.wcs.crval = self.crval
        wcs.wcs.cd = np.array(self.cd)
        wcs.wcs.radesys = self.radesys
        if self.equinox is not None:
            wcs.wcs.equinox = self.equinox
        if self.sip is not None:
            wcs.sip = self.sip.to_astropy(self.crpix)
        wcs.wcs.set()
        return wcs

    @property
    def position_angle(self) -> float:
        """Position angle of the +y pixel axis, degrees east of north, in [0, 360)."""
        return _position_angle(self.cd[0][1], self.cd[1][1])


@dataclass(eq=False)
class Stamp:
    """A square cutout of one image around one source.

    Attributes
    ----------
    image : `numpy.ndarray`
        float32 pixels in nJy, NaN where the stamp is off the image. Stamps
        inside the image are read-only views of the parent image.
    variance : `numpy.ndarray` or `None`
        float32 variance in nJy², NaN off the image.
    mask : `numpy.ndarray`
        int32 bit mask; the ``NO_DATA`` bit is set off the image.
    mask_planes : `dict` [`str`, `int`]
        Plane name -> bit, always including ``NO_DATA``.
    local_wcs : `LocalTanWcs`
        Linear TAN WCS of the stamp (pixel (0, 0) = ``image[0, 0]``).
    origin : `tuple` [`int`, `int`]
        ``(x0, y0)`` of ``image[0, 0]`` in the parent (detector) frame.
    psf : `numpy.ndarray` or `None`
        PSF image of the parent.
    position_angle : `float`
        Of the stamp's +y axis, degrees east of north.
    center_pixel : `tuple` [`float`, `float`]
        0-based ``(x, y)`` of the source in the stamp.
    ra, dec : `float`
        Source position, degrees.
    name : `str`
        Name of the parent image.
    status : `CutoutStatus`
        ``OK`` or ``PADDED``.
    """

    image: np.ndarray
    variance: np.ndarray | None
    mask: np.ndarray
    mask_planes: dict[str, int]
    local_wcs: LocalTanWcs
    origin: tuple[int, int]
    psf: np.ndarray | None
    position_angle: float
    center_pixel: tuple[float, float]
    ra: float
    dec: float
    name: str
    status: CutoutStatus = CutoutStatus.OK

    @property
    def wcs(self) -> WCS:
        """The stamp's WCS as an `astropy.wcs.WCS` (built on each access)."""
        return self.local_wcs.to_astropy()

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the stamp."""
        return self.image.shape


# --- sizes -----------------------------------------------------------------------------------


def cutout_sizes(
    n: int,
    cutout_size: int,
    bbox_size: Any = None,
    min_size: int | None = None,
    max_size: int | None = None,
) -> np.ndarray:
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


# --- extraction ------------------------------------------------------------------------------


@dataclass
class _Placement:
    """Where each source's stamp goes, for all sources (arrays of length n)."""

    x: np.ndarray  # source pixel position, 0-based, NaN when bad
    y: np.ndarray
    x_start: np.ndarray  # stamp corner in the image array (int64; 0 where no stamp)
    y_start: np.ndarray
    status: np.ndarray  # CutoutStatus values


def extract_stamps(
    image: SurveyImage, ra_deg: Any, dec_deg: Any, sizes: Any
) -> tuple[list[Stamp | None], np.ndarray]:
    """Cut a stamp around every source.

    Parameters
    ----------
    image : `~alertpack.packets.survey_image.SurveyImage`
        The image (anything `~alertpack.inputs.images.as_survey_image` accepts).
    ra_deg, dec_deg : array-like
        Source positions, degrees.
    sizes : `int` or array-like of `int`
        Edge length per source (see `cutout_sizes`), or one for all.

    Returns
    -------
    stamps : `list` [`Stamp` or `None`]
        One per source; `None` for ``OFF_IMAGE`` and ``BAD_POSITION``.
    status : `numpy.ndarray` [`numpy.uint8`]
        `CutoutStatus` value per source.
    """
    image = as_survey_image(image, name="image")
    ra, dec, sizes = _source_arrays(ra_deg, dec_deg, sizes)
    placement = _place_stamps(image, ra, dec, sizes)
    has_stamp = placement.status <= CutoutStatus.PADDED
    rows = np.flatnonzero(has_stamp)
    half = (sizes[rows] - 1) / 2.0
    center_x = placement.x_start[rows] + half
    center_y = placement.y_start[rows] + half
    crval, cd = _linearize(image.wcs, center_x, center_y)
    # a WCS that fails at the stamp center cannot describe the stamp
    broken = ~np.all(np.isfinite(cd.reshape(len(rows), 4)), axis=1) | ~np.all(
        np.isfinite(crval), axis=1
    )
    placement.status[rows[broken]] = CutoutStatus.BAD_POSITION
    planes, no_data_bit = stamp_mask_planes(image.mask_planes)
    frame = _frame_of(image.wcs)
    sip = _carried_sip(image.wcs)
    if sip is not None:
        parent_crpix = image.wcs.wcs.crpix
        parent_crval = (float(image.wcs.wcs.crval[0]), float(image.wcs.wcs.crval[1]))
        (p11, p12), (p21, p22) = image.wcs.pixel_scale_matrix
        parent_cd = ((float(p11), float(p12)), (float(p21), float(p22)))
    stamps: list[Stamp | None] = [None] * len(ra)
    for k, row in enumerate(rows):
        if broken[k]:
            continue
        size = int(sizes[row])
        x_start, y_start = int(placement.x_start[row]), int(placement.y_start[row])
        pixels, variance, mask = _cut_planes(image, x_start, y_start, size, 1 << no_data_bit)
        cd_k = ((float(cd[k, 0, 0]), float(cd[k, 0, 1])), (float(cd[k, 1, 0]), float(cd[k, 1, 1])))
        if sip is None:
            local = LocalTanWcs(
                crpix=(half[k] + 1.0, half[k] + 1.0),
                crval=(float(crval[k, 0]), float(crval[k, 1])),
                cd=cd_k,
                radesys=frame[0],
                equinox=frame[1],
            )
        else:  # the parent's own WCS, moved to the stamp: exact at any size
            local = LocalTanWcs(
                crpix=(float(parent_crpix[0] - x_start), float(parent_crpix[1] - y_start)),
                crval=parent_crval,
                cd=parent_cd,
                radesys=frame[0],
                equinox=frame[1],
                sip=sip,
            )
        stamps[row] = Stamp(
            image=pixels,
            variance=variance,
            mask=mask,
            mask_planes=planes,
            local_wcs=local,
            origin=(image.origin[0] + x_start, image.origin[1] + y_start),
            psf=image.psf,
            position_angle=_position_angle(cd_k[0][1], cd_k[1][1]),
            center_pixel=(float(placement.x[row] - x_start), float(placement.y[row] - y_start)),
            ra=float(ra[row]),
            dec=float(dec[row]),
            name=image.name,
            status=CutoutStatus(int(placement.status[row])),
        )
    return stamps, placement.status


def _source_arrays(ra_deg: Any, dec_deg: Any, sizes: Any) -> tuple[np.ndarray, ...]:
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


def _place_stamps(
    image: SurveyImage, ra: np.ndarray, dec: np.ndarray, sizes: np.ndarray
) -> _Placement:
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
    return _Placement(x=x, y=y, x_start=x_start, y_start=y_start, status=status)


def _stamp_start(position: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """First pixel of each stamp: ``ceil(position - size / 2)``, as Cutout2D places it.

    Rounding to a micro-pixel first keeps a source sitting exactly on a pixel
    boundary (e.g. given at an integer pixel and sent through the WCS and back)
    in the same stamp whichever way float noise tips it.
    """
    return np.ceil(np.round(position - sizes / 2.0, _PLACEMENT_DECIMALS)).astype(np.int64)


def _world_to_pixel(
    wcs: WCS, ra: np.ndarray, dec: np.ndarray, shape: tuple[int, int], margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """0-based pixel positions of all sources in one WCS call; NaN where it fails.

    Sources whose linear (distortion-free) position is more than ``margin``
    pixels outside the image keep that position: their stamps cannot reach
    the image, and iterating the inverse distortion that far out may diverge.
    """
    from astropy.wcs import NoConvergence

    x = np.full(ra.shape, np.nan)
    y = np.full(ra.shape, np.nan)
    valid = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
    if not valid.any():
        return x, y
    world = np.empty((int(valid.sum()), 2))
    world[:, wcs.wcs.lng] = ra[valid]
    world[:, wcs.wcs.lat] = dec[valid]
    try:
        linear = wcs.wcs_world2pix(world, 0)
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
        pixels[near] = _distorted_world_to_pixel(wcs, world[near], NoConvergence)
    x[valid] = pixels[:, 0]
    y[valid] = pixels[:, 1]
    return x, y


def _distorted_world_to_pixel(wcs: WCS, world: np.ndarray, no_convergence: type) -> np.ndarray:
    try:
        return wcs.all_world2pix(world, 0)
    except no_convergence as failure:
        # keep the points that converged; divergent ones have no position
        pixels = np.array(failure.best_solution, dtype=np.float64)
        if failure.divergent is not None:
            pixels[np.asarray(failure.divergent, dtype=np.intp)] = np.nan
        return pixels
    except (ValueError, MemoryError, ArithmeticError):
        return np.full(world.shape, np.nan)


def _pixel_to_world(wcs: WCS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    world = wcs.all_pix2world(np.column_stack([x, y]), 0)
    return world[:, wcs.wcs.lng], world[:, wcs.wcs.lat]


def _linearize(wcs: WCS, center_x: np.ndarray, center_y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sky position and local TAN ``CD`` matrix of the parent WCS at many pixels.

    Returns ``crval`` (m, 2) degrees and ``cd`` (m, 2, 2) degrees per pixel:
    central differences of the gnomonic projection about each center of the
    parent's pixel->sky map, i.e. the Jacobian of a TAN WCS tangent there.
    """
    m = len(center_x)
    if m == 0:
        return np.empty((0, 2)), np.empty((0, 2, 2))
    h = _JACOBIAN_STEP
    px = np.concatenate([center_x, center_x + h, center_x - h, center_x, center_x])
    py = np.concatenate([center_y, center_y, center_y, center_y + h, center_y - h])
    try:
        lon, lat = _pixel_to_world(wcs, px, py)
    except (ValueError, ArithmeticError):
        return np.full((m, 2), np.nan), np.full((m, 2, 2), np.nan)
    lon0, lat0 = lon[:m], lat[:m]
    xi, eta = _gnomonic(lon[m:], lat[m:], np.tile(lon0, 4), np.tile(lat0, 4))
    xi, eta = xi.reshape(4, m), eta.reshape(4, m)
    cd = np.empty((m, 2, 2))
    cd[:, 0, 0] = (xi[0] - xi[1]) / (2 * h)
    cd[:, 0, 1] = (xi[2] - xi[3]) / (2 * h)
    cd[:, 1, 0] = (eta[0] - eta[1]) / (2 * h)
    cd[:, 1, 1] = (eta[2] - eta[3]) / (2 * h)
    return np.column_stack([lon0 % 360.0, lat0]), cd


def _gnomonic(
    lon: np.ndarray, lat: np.ndarray, lon0: np.ndarray, lat0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Standard coordinates (xi east, eta north), degrees, of points about tangent points."""
    a, d = np.radians(lon), np.radians(lat)
    a0, d0 = np.radians(lon0), np.radians(lat0)
    cos_d, sin_d = np.cos(d), np.sin(d)
    cos_d0, sin_d0 = np.cos(d0), np.sin(d0)
    cos_da = np.cos(a - a0)
    denominator = sin_d0 * sin_d + cos_d0 * cos_d * cos_da
    xi = cos_d * np.sin(a - a0) / denominator
    eta = (cos_d0 * sin_d - sin_d0 * cos_d * cos_da) / denominator
    return np.degrees(xi), np.degrees(eta)


def _position_angle(cd_xi_y: float, cd_eta_y: float) -> float:
    # +y moves by (xi, eta) = (CD1_2, CD2_2); angle from north (eta) toward east (xi)
    return math.degrees(math.atan2(cd_xi_y, cd_eta_y)) % 360.0


def _frame_of(wcs: WCS) -> tuple[str, float | None]:
    radesys = (wcs.wcs.radesys or "ICRS").strip() or "ICRS"
    equinox = float(wcs.wcs.equinox) if radesys in ("FK4", "FK5") else None
    if equinox is not None and not math.isfinite(equinox):
        equinox = 2000.0 if radesys == "FK5" else 1950.0
    return radesys, equinox


def stamp_mask_planes(planes: dict[str, int]) -> tuple[dict[str, int], int]:
    """The parent's planes plus NO_DATA (at the lowest free bit when missing)."""
    if NO_DATA_PLANE in planes:
        return dict(planes), planes[NO_DATA_PLANE]
    used = set(planes.values())
    free = next((bit for bit in range(31) if bit not in used), None)
    if free is None:
        raise InputError(
            f"the image mask uses all 31 bits and has no {NO_DATA_PLANE} plane to mark padding"
        )
    return {**planes, NO_DATA_PLANE: free}, free


@functools.cache
def _empty_mask(size: int) -> np.ndarray:
    # shared by all stamps of an image without mask; read-only so none can alter it
    mask = np.zeros((size, size), dtype=np.int32)
    mask.flags.writeable = False
    return mask


def _cut_planes(
    image: SurveyImage, x_start: int, y_start: int, size: int, no_data_value: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Image, variance and mask stamps: read-only views inside, padded copies at edges."""
    ny, nx = image.shape
    x_end, y_end = x_start + size, y_start + size
    if x_start >= 0 and y_start >= 0 and x_end <= nx and y_end <= ny:
        window = (slice(y_start, y_end), slice(x_start, x_end))
        pixels = _read_only(image.image[window])
        variance = None if image.variance is None else _read_only(image.variance[window])
        mask = _empty_mask(size) if image.mask is None else _read_only(image.mask[window])
        return pixels, variance, mask
    # overlap of the stamp with the image, in image and in stamp coordinates
    ix0, iy0 = max(x_start, 0), max(y_start, 0)
    ix1, iy1 = min(x_end, nx), min(y_end, ny)
    source = (slice(iy0, iy1), slice(ix0, ix1))
    target = (slice(iy0 - y_start, iy1 - y_start), slice(ix0 - x_start, ix1 - x_start))
    pixels = np.full((size, size), np.nan, dtype=np.float32)
    pixels[target] = image.image[source]
    variance = None
    if image.variance is not None:
        variance = np.full((size, size), np.nan, dtype=np.float32)
        variance[target] = image.variance[source]
    mask = np.full((size, size), no_data_value, dtype=np.int32)
    mask[target] = 0 if image.mask is None else image.mask[source]
    return pixels, variance, mask


def _read_only(view: np.ndarray) -> np.ndarray:
    view = view.view()
    view.flags.writeable = False
    return view


# --- FITS serialization ----------------------------------------------------------------------


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
    ra_type, dec_type = _ctypes(sip_cards is not None)
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
    wcs_cards = _constant_wcs_cards(radesys, equinox, None if sip is None else sip.cards())
    image = _hdu_template(
        [
            *_structure_cards(-32, shape, primary=True),
            _card("EXTNAME", _quote("IMAGE"), "stamp pixels"),
            _card("BUNIT", _quote("nJy"), "spectral flux density"),
            _card("CUTOUT", _quote(name[:60]), "image the stamp was cut from"),
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


def stamp_fits_bytes(stamp: Any) -> bytes:
    """A stamp as a standalone FITS file (layout in the module docstring).

    Parameters
    ----------
    stamp : `Stamp`, `~astropy.nddata.CCDData` or any image input
        A `Stamp` from `extract_stamps`, or a whole small image (e.g. a
        CCDData cutout) that `~alertpack.inputs.images.as_survey_image` accepts;
        the latter is written with a WCS linearized at its center.

    Returns
    -------
    data : `bytes`
    """
    if not isinstance(stamp, Stamp):
        stamp = _stamp_of_whole_image(as_survey_image(stamp, name="cutout"))
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


def _stamp_of_whole_image(image: SurveyImage) -> Stamp:
    """A Stamp covering a whole (small) image, its WCS linearized at the center."""
    ny, nx = image.shape
    center = np.array([(nx - 1) / 2.0]), np.array([(ny - 1) / 2.0])
    crval, cd = _linearize(image.wcs, *center)
    if not (np.all(np.isfinite(cd)) and np.all(np.isfinite(crval))):
        raise InputError(
            f"{image.name}: the WCS cannot be evaluated at the image center; "
            "give the cutout a valid celestial WCS"
        )
    cd_matrix = ((float(cd[0, 0, 0]), float(cd[0, 0, 1])), (float(cd[0, 1, 0]), float(cd[0, 1, 1])))
    radesys, equinox = _frame_of(image.wcs)
    local = LocalTanWcs(
        crpix=((nx + 1) / 2.0, (ny + 1) / 2.0),
        crval=(float(crval[0, 0]), float(crval[0, 1])),
        cd=cd_matrix,
        radesys=radesys,
        equinox=equinox,
    )
    mask = image.mask if image.mask is not None else np.zeros(image.shape, dtype=np.int32)
    return Stamp(
        image=image.image,
        variance=image.variance,
        mask=mask,
        mask_planes=dict(image.mask_planes),
        local_wcs=local,
        origin=image.origin,
        psf=image.psf,
        position_angle=local.position_angle,
        center_pixel=((nx - 1) / 2.0, (ny - 1) / 2.0),
        ra=local.crval[0],
        dec=local.crval[1],
        name=image.name,
        status=CutoutStatus.OK,
    )


def make_cutout_bytes(
    image: SurveyImage, ra_deg: Any, dec_deg: Any, sizes: Any
) -> tuple[list[bytes | None], np.ndarray]:
    """Cutouts of one image for many sources, as FITS bytes.

    Parameters
    ----------
    image : `~alertpack.packets.survey_image.SurveyImage`
        The image (or anything `~alertpack.inputs.images.as_survey_image` accepts).
    ra_deg, dec_deg : array-like
        Source positions, degrees.
    sizes : `int` or array-like of `int`
        Edge length per source, or one for all.

    Returns
    -------
    cutouts : `list` [`bytes` or `None`]
        FITS bytes per source; `None` where there is no cutout.
    status : `numpy.ndarray` [`numpy.uint8`]
        `CutoutStatus` value per source.
    """
    stamps, status = extract_stamps(image, ra_deg, dec_deg, sizes)
    return [None if stamp is None else stamp_fits_bytes(stamp) for stamp in stamps], status
