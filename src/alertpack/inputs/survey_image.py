"""A survey image reduced to what cutouts need, and the conversions that build one.

`SurveyImage` holds the pixels in nJy, their variance in nJy², the bit mask
with its plane names, the celestial WCS of the array, its origin in the
detector (LSST ``xy0``) and optionally a PSF image; planes may be arrays or
`LazyPlane` (read window by window). The unit, variance, mask-plane and WCS
conversions here are shared by the in-memory adapters (`alertpack.inputs.images`)
and the lazy FITS reader (`alertpack.inputs.fits_files`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.errors import InputError

if TYPE_CHECKING:
    from astropy.wcs import WCS

__all__ = [
    "MASK_PLANE_PREFIX",
    "ImageInputError",
    "LazyPlane",
    "SurveyImage",
    "mask_planes_from_header",
]


#: Header/meta key prefix declaring a mask plane's bit (the LSST convention).
MASK_PLANE_PREFIX = "MP_"


# The plane a boolean mask becomes: any flagged pixel is unusable.
BOOL_MASK_PLANE = "BAD"


EXTENSION_IMAGE = ("IMAGE",)


EXTENSION_VARIANCE = ("VARIANCE",)


EXTENSION_UNCERTAINTY = ("UNCERT",)  # astropy CCDData's name, type in UTYPE


EXTENSION_MASK = ("MASK",)


EXTENSION_PSF = ("PSF", "PSFIMAGE")


# Scale factors a float32 multiplication handles without overflow or precision loss.
_FLOAT32_SAFE_SCALE = (1e-20, 1e20)


_UNIT_HINT = (
    "set the image unit (FITS BUNIT or CCDData.unit) to a spectral flux density such as "
    "'nJy', 'Jy' or 'erg/s/cm2/Hz', or wrap the image as "
    "alertpack.as_survey_image(image, name=..., calibration=<nJy per input unit>)"
)


class ImageInputError(InputError):
    """An image that cannot be used for cutouts; the message says which and why."""


class LazyPlane:
    """A 2-D plane of pixels read window by window, converted on the way.

    The cutout code slices images with ``plane[y0:y1, x0:x1]``; a lazy plane
    reads only that window (``read_window(y0, y1, x0, x1)``, raw file values)
    and returns ``convert(raw)``, e.g. the pixels scaled to nJy as float32.
    ``numpy.asarray(plane)`` reads and converts the whole plane.

    Parameters
    ----------
    read_window : callable
        ``(y0, y1, x0, x1) -> numpy.ndarray`` of shape ``(y1 - y0, x1 - x0)``.
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the plane.
    dtype : `numpy.dtype`
        dtype of the converted windows (float32 or int32).
    convert : callable
        Raw window -> converted window (elementwise, so any window of the
        converted plane equals the same window converted alone).
    """

    ndim = 2

    def __init__(
        self, read_window: Any, shape: tuple[int, int], dtype: Any, convert: Any
    ) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self._read_window = read_window
        self._convert = convert

    @property
    def size(self) -> int:
        """Number of pixels."""
        return self.shape[0] * self.shape[1]

    def __getitem__(self, key: Any) -> np.ndarray:
        if not (isinstance(key, tuple) and len(key) == 2 and all(
            isinstance(k, slice) and k.step in (None, 1) for k in key
        )):
            raise TypeError("a LazyPlane is read with two unit-step slices: plane[y0:y1, x0:x1]")
        (y0, y1, _), (x0, x1, _) = (k.indices(n) for k, n in zip(key, self.shape, strict=True))
        y1, x1 = max(y0, y1), max(x0, x1)
        values = self._convert(self._read_window(y0, y1, x0, x1))
        return values.astype(self.dtype, copy=False)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        values = self[0 : self.shape[0], 0 : self.shape[1]]
        return values if dtype is None else values.astype(dtype, copy=False)


@dataclass(eq=False)
class SurveyImage:
    """Everything the cutout code needs from one image.

    Attributes
    ----------
    image : `numpy.ndarray` or `LazyPlane`
        2-D float32 pixels in nJy (a `LazyPlane` for FITS files, read stamp
        by stamp).
    variance : `numpy.ndarray`, `LazyPlane` or `None`
        float32 variance in nJy², same shape as ``image``.
    mask : `numpy.ndarray`, `LazyPlane` or `None`
        int32 bit mask, same shape as ``image``.
    mask_planes : `dict` [`str`, `int`]
        Plane name -> bit number, e.g. ``{"BAD": 0, "SAT": 1, "NO_DATA": 8}``.
    wcs : `astropy.wcs.WCS`
        Celestial WCS of this array: pixel (0, 0) is ``image[0, 0]``; may be TAN-SIP.
    origin : `tuple` [`int`, `int`]
        ``(x0, y0)`` of ``image[0, 0]`` in the parent (detector) frame: LSST's
        ``xy0``; FITS ``LTV1, LTV2 = -x0, -y0``.
    psf : `numpy.ndarray` or `None`
        PSF image at the detector center.
    name : `str`
        What the image is ("difference", "template", "science"), for messages.
    photo_calib : `float`
        nJy per input unit that was applied (1.0 when the input was already a
        flux density in nJy).
    """

    image: np.ndarray | LazyPlane
    variance: np.ndarray | LazyPlane | None
    mask: np.ndarray | LazyPlane | None
    mask_planes: dict[str, int]
    wcs: WCS
    origin: tuple[int, int] = (0, 0)
    psf: np.ndarray | None = None
    name: str = "image"
    photo_calib: float = 1.0

    def __post_init__(self) -> None:
        self.image = _as_2d(self.image, np.float32, f"{self.name} image")
        if self.variance is not None:
            self.variance = _as_2d(self.variance, np.float32, f"{self.name} variance")
        if self.mask is not None:
            self.mask = _as_2d(self.mask, np.int32, f"{self.name} mask")
        if self.psf is not None:
            self.psf = _as_2d(self.psf, np.float32, f"{self.name} PSF")
        for plane_name, array in (("variance", self.variance), ("mask", self.mask)):
            if array is not None and array.shape != self.image.shape:
                raise ImageInputError(
                    f"{self.name} image: the {plane_name} has shape {array.shape} but the image "
                    f"has shape {self.image.shape}; they must describe the same pixels"
                )
        self.mask_planes = {str(k): int(v) for k, v in self.mask_planes.items()}
        for plane, bit in self.mask_planes.items():
            if not 0 <= bit <= 30:
                raise ImageInputError(
                    f"{self.name} image: mask plane {plane!r} has bit {bit}; "
                    "bits of an int32 mask are 0..30"
                )
        self.origin = (int(self.origin[0]), int(self.origin[1]))

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the image array."""
        return self.image.shape


def variance_from_uncertainty(
    uncertainty: Any, image_unit: Any, scale: float, label: str
) -> np.ndarray | None:
    """Variance in nJy² from a Variance, StdDev or InverseVariance uncertainty."""
    if uncertainty is None:
        return None
    import astropy.units as u
    from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty

    values = np.asarray(uncertainty.array)
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    unc_unit = uncertainty.unit
    if isinstance(uncertainty, VarianceUncertainty):
        variance, variance_unit = values, unc_unit
    elif isinstance(uncertainty, StdDevUncertainty):
        variance = values * values
        variance_unit = None if unc_unit is None else unc_unit**2
    elif isinstance(uncertainty, InverseVariance):
        with np.errstate(divide="ignore"):
            variance = 1.0 / values
        variance_unit = None if unc_unit is None else unc_unit**-1
    else:
        raise ImageInputError(
            f"{label}: uncertainty of type {type(uncertainty).__name__} is not supported; use "
            "VarianceUncertainty, StdDevUncertainty or InverseVariance"
        )
    return scaled_float32(variance, _variance_scale(variance_unit, image_unit, scale, label, u))


def _variance_scale(variance_unit: Any, image_unit: Any, scale: float, label: str, u: Any) -> float:
    if variance_unit is None or image_unit is None or variance_unit == image_unit**2:
        return scale * scale
    try:
        return float(variance_unit.to(u.nJy**2))
    except u.UnitConversionError:
        pass
    try:
        return float(variance_unit.to(image_unit**2)) * scale * scale
    except u.UnitConversionError:
        raise ImageInputError(
            f"{label}: the uncertainty unit {variance_unit} (as variance) is not the image "
            f"unit squared ({image_unit**2}) nor convertible to nJy**2; give the uncertainty "
            "the image's unit"
        ) from None


def unit_from_header(header: Any, primary_header: Any, calibration: Any, label: str) -> Any:
    text = header.get("BUNIT", primary_header.get("BUNIT"))
    if text is None or not str(text).strip():
        if calibration is None:
            raise ImageInputError(f"{label}: no BUNIT in the header; {_UNIT_HINT}")
        return None
    return _parse_unit(str(text), label)


def _parse_unit(text: str, label: str) -> Any:
    import astropy.units as u

    text = text.strip()
    for candidate, unit_format in ((text, "fits"), (text, None), (text.lower(), None)):
        try:
            return u.Unit(candidate, format=unit_format)
        except ValueError:
            continue
    raise ImageInputError(f"{label}: BUNIT {text!r} is not a unit astropy knows; {_UNIT_HINT}")


def wcs_from_header(header: Any, label: str) -> WCS:
    from astropy.wcs import WCS, FITSFixedWarning

    try:
        with warnings.catch_warnings():
            # LSST headers carry non-standard keys (e.g. the PHYSICAL 'A' WCS)
            # that astropy repairs with a warning; the celestial WCS is unaffected.
            warnings.simplefilter("ignore", FITSFixedWarning)
            return WCS(header)
    except Exception as error:  # wcslib raises many types for a bad header
        raise ImageInputError(
            f"{label}: the header WCS cannot be read ({type(error).__name__}: {error}); "
            "fix the CTYPE/CRVAL/CRPIX/CD keywords"
        ) from None


def merged_lookup(header: Any, fallback: Any) -> dict[str, Any]:
    merged = {key: fallback[key] for key in ("LTV1", "LTV2") if key in fallback}
    merged.update({key: header[key] for key in ("LTV1", "LTV2") if key in header})
    return merged


def mask_planes_from_header(meta: Mapping) -> dict[str, int]:
    """Mask plane bits declared as ``MP_<NAME> = bit`` in a header or meta mapping.

    Parameters
    ----------
    meta : `~collections.abc.Mapping`
        A FITS header, CCDData ``meta`` or any mapping.

    Returns
    -------
    planes : `dict` [`str`, `int`]
        Plane name (without the prefix) -> bit number.
    """
    planes = {}
    for key, value in meta.items():
        key = str(key)
        if key.upper().startswith(MASK_PLANE_PREFIX) and len(key) > len(MASK_PLANE_PREFIX):
            try:
                planes[key[len(MASK_PLANE_PREFIX) :].upper()] = int(value)
            except (TypeError, ValueError):
                raise ImageInputError(
                    f"mask plane key {key} = {value!r} is not an integer bit number"
                ) from None
    return planes


def require_2d(data: Any, label: str) -> None:
    if data is None:
        raise ImageInputError(f"{label}: has no pixel data")
    if np.ndim(data) != 2:
        raise ImageInputError(
            f"{label}: data has {np.ndim(data)} dimensions (shape {np.shape(data)}); "
            "cutouts need a 2-D image"
        )


def _as_2d(array: Any, dtype: type, label: str) -> np.ndarray | LazyPlane:
    if isinstance(array, LazyPlane):
        if array.dtype != np.dtype(dtype):
            raise ImageInputError(f"{label}: lazy plane of dtype {array.dtype}, not {dtype}")
        return array
    values = np.asarray(array)
    require_2d(values, label)
    return values.astype(dtype, copy=False)


def scaled_float32(values: np.ndarray, scale: float) -> np.ndarray:
    """``values * scale`` as float32; no copy when already float32 and not scaled."""
    values = np.asarray(values)
    if scale == 1.0:
        return values.astype(np.float32, copy=False)
    if values.dtype == np.float32 and _FLOAT32_SAFE_SCALE[0] < scale < _FLOAT32_SAFE_SCALE[1]:
        return values * np.float32(scale)
    # e.g. erg/s/cm2/Hz (1e32 nJy each): scale in double precision so that
    # neither the factor nor intermediate values leave the float32 range
    return (values.astype(np.float64) * scale).astype(np.float32)


def checked_factor(value: Any, label: str) -> float:
    factor = float(value)
    if not math.isfinite(factor) or factor <= 0:
        raise ImageInputError(f"{label}: calibration {value!r} must be a positive finite number")
    return factor


def nJy_per_unit(unit: Any, calibration: Any, label: str) -> float:
    """Factor turning pixel values in ``unit`` into nJy."""
    import astropy.units as u

    if isinstance(unit, u.FunctionUnitBase):
        raise ImageInputError(
            f"{label}: unit {unit} is logarithmic (magnitudes are not image units); "
            "convert the image to a linear flux density such as nJy"
        )
    if calibration is not None:
        return _calibration_factor(unit, calibration, label, u)
    if unit is None:
        raise ImageInputError(f"{label}: the image has no unit; {_UNIT_HINT}")
    if unit.is_equivalent(u.nJy):
        return float(unit.to(u.nJy))
    raise ImageInputError(
        f"{label}: unit {unit} is not a spectral flux density; for counts (adu, electron, "
        "count) wrap the image as alertpack.as_survey_image(image, name=..., "
        "calibration=<nJy per count>) (a float or e.g. 0.5 * u.nJy / u.adu), "
        "otherwise convert the image to nJy"
    )


def _calibration_factor(unit: Any, calibration: Any, label: str, u: Any) -> float:
    if isinstance(calibration, u.Quantity):
        per_pixel_unit = calibration * (u.dimensionless_unscaled if unit is None else unit)
        try:
            return checked_factor(per_pixel_unit.to_value(u.nJy), label)
        except u.UnitConversionError:
            raise ImageInputError(
                f"{label}: calibration {calibration} times the image unit "
                f"{unit or 'dimensionless'} is not a flux density; give it in nJy per image unit"
            ) from None
    if unit is not None and unit.is_equivalent(u.nJy):
        raise ImageInputError(
            f"{label}: the image is already in {unit}, a flux density; do not pass calibration"
        )
    return checked_factor(calibration, label)


def celestial_wcs(wcs: Any, label: str) -> WCS:
    from astropy.wcs import WCS

    if wcs is None:
        raise ImageInputError(
            f"{label}: no WCS; cutouts need a celestial (RA/Dec) WCS in the header or CCDData.wcs"
        )
    if not isinstance(wcs, WCS):
        low_level = getattr(wcs, "low_level_wcs", None)
        if not isinstance(low_level, WCS):
            raise ImageInputError(
                f"{label}: WCS of type {type(wcs).__name__} is not supported; "
                "use an astropy.wcs.WCS (FITS WCS)"
            )
        wcs = low_level
    if not wcs.has_celestial:
        raise ImageInputError(
            f"{label}: the WCS has no celestial axes (CTYPE {list(wcs.wcs.ctype)}); cutouts "
            "need RA---xxx/DEC--xxx axes"
        )
    if wcs.naxis != 2:
        wcs = wcs.celestial
    ctypes = [wcs.wcs.ctype[wcs.wcs.lng], wcs.wcs.ctype[wcs.wcs.lat]]
    if not (ctypes[0].upper().startswith("RA") and ctypes[1].upper().startswith("DEC")):
        raise ImageInputError(
            f"{label}: celestial WCS axes {ctypes} are not equatorial; cutouts need RA/DEC axes"
        )
    return wcs


def origin_from_ltv(meta: Mapping, label: str) -> tuple[int, int]:
    origin = []
    for key in ("LTV1", "LTV2"):
        value = meta.get(key, 0) if hasattr(meta, "get") else 0
        try:
            shift = float(value)
        except (TypeError, ValueError):
            raise ImageInputError(f"{label}: {key} = {value!r} is not a number") from None
        if not math.isfinite(shift) or shift != round(shift):
            raise ImageInputError(
                f"{label}: {key} = {value!r} is not a whole number of pixels; "
                "LTV1/LTV2 must be minus the integer origin (xy0) of the array"
            )
        origin.append(-round(shift))
    return origin[0], origin[1]


def psf_array(psf: Any, label: str) -> np.ndarray | None:
    if psf is None:
        return None
    values = np.asarray(getattr(psf, "data", psf), dtype=np.float32)
    if values.ndim != 2:
        raise ImageInputError(f"{label}: the PSF has shape {values.shape}; it must be a 2-D image")
    return values
