"""How a cutout is displayed: decoded, stretched, oriented and given a scale.

What ``alertpack show`` (matplotlib) and ``alertpack browse`` (PNG and SVG)
draw of the three stamps of an alert is decided here once:

- `read_stamp` decodes cutout FITS bytes to a `Stamp` (pixels, celestial WCS,
  unit);
- `display_limits` chooses the pixel values shown as black and white for a
  stretch, `display_levels` maps pixels to grey levels in 0-1 (NaN where a
  padded stamp has no data, which both draw in `NO_DATA_RGB`);
- `north_east_vectors` and `scale_bar` give the compass and a scale bar of
  a round number of arcseconds from the stamp's WCS.

Stretches (`STRETCHES`), as astronomers' viewers name them:

``zscale``
    IRAF's zscale limits, linear between them.
``linear``
    The 0.25th to 99.75th percentiles, linear between them.
``asinh``
    The same percentiles, asinh stretch (astropy ``AsinhStretch(0.1)``): the
    faint outskirts and the bright core at once.

Science and template share one set of limits, so that a brightening reads as
one; the difference has its own, symmetric about zero (grey is no change,
white brighter, black fainter).

astropy is imported on first use: the browse pages are served before any
stamp is drawn.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.errors import InputError
from alertpack.limits import ReadLimits
from alertpack.tools.stamp_reader import open_stamp

if TYPE_CHECKING:
    from astropy.wcs import WCS

__all__ = [
    "DIFFERENCE_FIELD",
    "DIRECT_FIELDS",
    "NO_DATA_RGB",
    "STRETCHES",
    "Stamp",
    "check_stretch",
    "display_levels",
    "display_limits",
    "north_east_vectors",
    "pixel_scale",
    "read_stamp",
    "scale_bar",
    "symmetric_zscale_limits",
    "zscale_limits",
]

STRETCHES = ("asinh", "linear", "zscale")

#: the stamps shown on one common scale, and the one symmetric about zero
DIRECT_FIELDS = ("cutoutScience", "cutoutTemplate")
DIFFERENCE_FIELD = "cutoutDifference"

#: pixels without data (NaN): a dark blue no grey level can be mistaken for
NO_DATA_RGB = (38, 84, 124)

_PERCENTILE = 99.5
_ASINH_A = 0.1
_NICE_ARCSEC = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass
class Stamp:
    """A decoded cutout: pixels (2-D float), its WCS (or `None`) and flux unit."""

    pixels: np.ndarray
    wcs: WCS | None
    unit: str

    @property
    def no_data(self) -> int:
        """Pixels without data (NaN), e.g. outside the detector in a padded stamp."""
        return int(np.count_nonzero(~np.isfinite(self.pixels)))


def read_stamp(data: bytes, *, limits: ReadLimits | None = None) -> Stamp:
    """Decode cutout bytes of any packing: the first 2-D image HDU and its celestial WCS.

    Plain, tile-compressed and gzipped stamps are opened by
    `~alertpack.tools.stamp_reader.open_stamp`: headers checked against the
    read limits (bytes, pixels, SIP orders, gzip tiles) and the declared data
    against the bytes, before any pixel is decoded.

    Raises
    ------
    InputError
        If the bytes do not decode, astropy cannot open them (or they are
        truncated) or they hold no 2-D image; `~alertpack.errors.LimitExceededError`
        beyond the read limits.
    """
    # astropy on first use (see the module docstring)
    from astropy.utils.exceptions import AstropyWarning
    from astropy.wcs import WCS, FITSFixedWarning

    hdus = open_stamp(data, name="the cutout", limits=limits)
    try:
        with warnings.catch_warnings(), hdus:
            # a damaged header is reported as one InputError below, not as warnings
            warnings.simplefilter("ignore", AstropyWarning)
            for hdu in hdus:
                if hdu.is_image and hdu.data is not None and hdu.data.ndim == 2:
                    pixels = np.asarray(hdu.data, dtype=float)
                    header = hdu.header
                    break
            else:
                raise InputError("the cutout holds no 2-D image")
    except InputError:
        raise
    except Exception as error:  # astropy raises many types for bad FITS
        raise InputError(f"the cutout does not open as FITS ({error})") from None
    with warnings.catch_warnings():
        # headers of other pipelines carry non-standard keys; the WCS still reads
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header).celestial
        except Exception:  # an unreadable WCS leaves pixel axes, still a useful plot
            wcs = None
    if wcs is not None and not wcs.has_celestial:
        wcs = None
    return Stamp(pixels, wcs, str(header.get("BUNIT", "")).strip())


def check_stretch(stretch: str) -> str:
    """``stretch`` if it is one of `STRETCHES`.

    Raises
    ------
    InputError
        Naming the stretches there are.
    """
    if stretch not in STRETCHES:
        raise InputError(f"unknown stretch {stretch!r}; choose one of {', '.join(STRETCHES)}")
    return stretch


def _finite(*images: np.ndarray) -> np.ndarray:
    return np.concatenate([image[np.isfinite(image)].ravel() for image in images])


def zscale_limits(*images: np.ndarray) -> tuple[float, float]:
    """Zscale display limits over the finite pixels of all ``images`` together."""
    from astropy.visualization import ZScaleInterval  # on first use, as in read_stamp

    values = _finite(*images)
    if values.size == 0:
        return 0.0, 1.0
    low, high = ZScaleInterval().get_limits(values)
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


def symmetric_zscale_limits(image: np.ndarray) -> tuple[float, float]:
    """Zscale made symmetric about zero: a difference is read against zero."""
    low, high = zscale_limits(image)
    half = max(abs(low), abs(high))
    return -half, half


def _percentile_limits(*images: np.ndarray) -> tuple[float, float]:
    from astropy.visualization import PercentileInterval  # as in zscale_limits

    values = _finite(*images)
    if values.size == 0:
        return 0.0, 1.0
    low, high = PercentileInterval(_PERCENTILE).get_limits(values)
    return (float(low), float(high)) if high > low else (float(low), float(low) + 1.0)


def display_limits(stamps: Mapping[str, Stamp], stretch: str) -> dict[str, tuple[float, float]]:
    """The pixel values shown black and white, by alert field, for one alert's stamps.

    Parameters
    ----------
    stamps : mapping of `str` to `Stamp`
        By alert field (``cutoutScience``, ``cutoutTemplate``,
        ``cutoutDifference``); those absent are left out.
    stretch : `str`
        One of `STRETCHES`.
    """
    check_stretch(stretch)
    limits: dict[str, tuple[float, float]] = {}
    direct = [stamps[name].pixels for name in DIRECT_FIELDS if name in stamps]
    if direct:
        shared = zscale_limits(*direct) if stretch == "zscale" else _percentile_limits(*direct)
        limits.update({name: shared for name in DIRECT_FIELDS if name in stamps})
    if DIFFERENCE_FIELD in stamps:
        pixels = stamps[DIFFERENCE_FIELD].pixels
        if stretch == "zscale":
            half = symmetric_zscale_limits(pixels)[1]
        else:
            finite = np.abs(pixels[np.isfinite(pixels)])
            half = float(np.percentile(finite, _PERCENTILE)) if finite.size else 1.0
        half = half if half > 0 else 1.0
        limits[DIFFERENCE_FIELD] = (-half, half)
    return limits


def _stretch_function(stretch: str) -> Any:
    from astropy.visualization import AsinhStretch, LinearStretch  # as in zscale_limits

    return AsinhStretch(_ASINH_A) if stretch == "asinh" else LinearStretch()


def display_levels(
    pixels: np.ndarray, limits: tuple[float, float], stretch: str, *, symmetric: bool = False
) -> np.ndarray:
    """Grey levels (0 black, 1 white) of ``pixels`` shown between ``limits``; NaN for no data.

    ``symmetric``: the limits are ``(-half, half)`` of a difference image, and
    the stretch runs outwards from zero (0.5, grey) in both directions.
    """
    with np.errstate(invalid="ignore"):
        if symmetric:
            half = limits[1]
            scaled = np.clip(pixels / half, -1.0, 1.0)
            magnitude = _stretch_function(stretch)(np.abs(scaled), clip=True)
            levels = 0.5 + 0.5 * np.sign(scaled) * magnitude
        else:
            low, high = limits
            scaled = np.clip((pixels - low) / (high - low), 0.0, 1.0)
            levels = _stretch_function(stretch)(scaled, clip=True)
    levels = np.asarray(levels, dtype=float)
    levels[~np.isfinite(pixels)] = np.nan
    return levels


def north_east_vectors(wcs: WCS, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Unit pixel vectors towards north and east at the stamp centre."""
    import astropy.units as u  # on first use, as in read_stamp

    ny, nx = shape
    centre = wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    step = 2 * u.arcsec
    origin = np.array([(nx - 1) / 2, (ny - 1) / 2])
    vectors = []
    for position_angle in (0 * u.deg, 90 * u.deg):  # north, then east (PA east of north)
        pixel = np.array(wcs.world_to_pixel(centre.directional_offset_by(position_angle, step)))
        vector = pixel - origin
        vectors.append(vector / np.hypot(*vector))
    return vectors[0], vectors[1]


def pixel_scale(wcs: WCS) -> float:
    """Arcseconds per pixel (the geometric mean of the two axes)."""
    from astropy.wcs.utils import proj_plane_pixel_scales  # as in zscale_limits

    scales = proj_plane_pixel_scales(wcs) * 3600.0
    return float(np.sqrt(abs(scales[0] * scales[1])))


def scale_bar(arcsec_per_pixel: float, width: int) -> tuple[float, str] | None:
    """A bar of a round number of arcseconds, at most 30% of ``width`` pixels.

    Returns
    -------
    bar : `tuple` [`float`, `str`] or `None`
        Its length in pixels and its label (``5″``, ``2′``); `None` when even
        the shortest does not fit or the scale is unknown.
    """
    if not math.isfinite(arcsec_per_pixel) or arcsec_per_pixel <= 0:
        return None
    target = 0.3 * width * arcsec_per_pixel
    fitting = [length for length in _NICE_ARCSEC if length <= target]
    if not fitting:
        return None
    length = fitting[-1]
    label = f"{length:g}″" if length < 60 else f"{length / 60:g}′"
    return length / arcsec_per_pixel, label
