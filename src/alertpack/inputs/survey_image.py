"""The conversions that build a `~alertpack.packets.survey_image.SurveyImage`.

Units to nJy, uncertainties to variance, mask bits and plane names, the
celestial WCS and the origin in the detector: shared by the adapters of
`alertpack.inputs.images` (NDData, afw) and the FITS exposure layout
(`alertpack.inputs.exposure_layout`), for arrays and stamp windows alike.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.errors import ImageInputError
from alertpack.limits import check_wcs_orders, read_limits

if TYPE_CHECKING:
    from astropy.wcs import WCS

__all__ = [
    "MASK_PLANE_PREFIX",
    "mask_planes_from_header",
]


#: Header/meta key prefix declaring a mask plane's bit (the LSST convention).
MASK_PLANE_PREFIX = "MP_"


# The plane a boolean mask becomes: any flagged pixel is unusable.
BOOL_MASK_PLANE = "BAD"


#: astropy uncertainty class names (CCDData's ``UTYPE``) -> what the values are
UNCERTAINTY_KINDS = {
    "VarianceUncertainty": "variance",
    "StdDevUncertainty": "stddev",
    "InverseVariance": "inverse_variance",
}


# Scale factors a float32 multiplication handles without overflow or precision loss.
_FLOAT32_SAFE_SCALE = (1e-20, 1e20)


_UNIT_HINT = (
    "set the image unit (FITS BUNIT or CCDData.unit) to a spectral flux density such as "
    "'nJy', 'Jy' or 'erg/s/cm2/Hz', or wrap the image as "
    "alertpack.as_survey_image(image, name=..., calibration=<nJy per input unit>)"
)



def variance_from_uncertainty(
    uncertainty: Any, image_unit: Any, scale: float, label: str
) -> np.ndarray | None:
    """Variance in nJy² from a Variance, StdDev or InverseVariance uncertainty."""
    if uncertainty is None:
        return None
    # astropy.nddata (~0.3 s) only for NDData inputs: FITS inputs never import it
    from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty

    for cls in (VarianceUncertainty, StdDevUncertainty, InverseVariance):
        if isinstance(uncertainty, cls):
            kind = UNCERTAINTY_KINDS[cls.__name__]
            return variance_from_values(
                uncertainty.array, kind, uncertainty.unit, image_unit, scale, label
            )
    raise ImageInputError(
        f"{label}: uncertainty of type {type(uncertainty).__name__} is not supported; use "
        "VarianceUncertainty, StdDevUncertainty or InverseVariance"
    )


def variance_from_values(
    values: Any, kind: str, unit: Any, image_unit: Any, scale: float, label: str
) -> np.ndarray:
    """Variance in nJy² (float32) from uncertainty values.

    Parameters
    ----------
    values : array-like
        The uncertainty values (an array or a stamp window of one).
    kind : `str`
        What they are: ``"variance"``, ``"stddev"`` or ``"inverse_variance"``
        (see `UNCERTAINTY_KINDS`).
    unit : `~astropy.units.Unit` or `None`
        Unit of the values; `None` means the image unit (squared for a variance).
    image_unit : `~astropy.units.Unit` or `None`
        Unit of the image pixels.
    scale : `float`
        nJy per image unit.
    label : `str`
        What the values are, for messages.
    """
    values = np.asarray(values)
    if kind == "variance":
        return scaled_float32(values, _variance_scale(unit, image_unit, scale, label))
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    if kind == "stddev":
        variance = values * values
        variance_unit = None if unit is None else unit**2
    else:
        with np.errstate(divide="ignore"):
            variance = 1.0 / values
        variance_unit = None if unit is None else unit**-1
    return scaled_float32(variance, _variance_scale(variance_unit, image_unit, scale, label))


def _variance_scale(variance_unit: Any, image_unit: Any, scale: float, label: str) -> float:
    if variance_unit is None or image_unit is None or variance_unit == image_unit**2:
        return scale * scale
    # astropy when used: a pool run's parent imports this module but reads no image
    import astropy.units as u

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


def error_text(error: BaseException) -> str:
    """``"Type: message"`` of a library's exception on one line (wcslib's span several)."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def parse_unit(text: str, label: str) -> Any:
    """The astropy unit a ``BUNIT`` names (FITS, generic or lower-case spelling)."""
    # astropy when used: a pool run's parent imports this module but reads no image
    import astropy.units as u

    text = text.strip()
    for candidate, unit_format in ((text, "fits"), (text, None), (text.lower(), None)):
        try:
            return u.Unit(candidate, format=unit_format)
        except ValueError:
            continue
    raise ImageInputError(f"{label}: BUNIT {text!r} is not a unit astropy knows; {_UNIT_HINT}")


def wcs_from_header(header: Any, label: str) -> WCS:
    """The WCS of an image header, its distortion orders checked against the read limits first."""
    # astropy when used: a pool run's parent imports this module but reads no image
    from astropy.wcs import WCS, FITSFixedWarning

    check_wcs_orders(header, read_limits(), label)
    try:
        with warnings.catch_warnings():
            # LSST headers carry non-standard keys (e.g. the PHYSICAL 'A' WCS)
            # that astropy repairs with a warning; the celestial WCS is unaffected.
            warnings.simplefilter("ignore", FITSFixedWarning)
            return WCS(header)
    except Exception as error:  # wcslib raises many types for a bad header
        raise ImageInputError(
            f"{label}: the header WCS cannot be read ({error_text(error)}); "
            "fix the CTYPE/CRVAL/CRPIX/CD keywords"
        ) from None


def merged_lookup(header: Any, fallback: Any) -> dict[str, Any]:
    merged = {key: fallback[key] for key in ("LTV1", "LTV2") if key in fallback}
    merged.update({key: header[key] for key in ("LTV1", "LTV2") if key in header})
    return merged


def mask_planes_from_header(meta: Mapping, label: str | None = None) -> dict[str, int]:
    """Mask plane bits declared as ``MP_<NAME> = bit`` in a header or meta mapping.

    Parameters
    ----------
    meta : `~collections.abc.Mapping`
        A FITS header, CCDData ``meta`` or any mapping.
    label : `str`, optional
        What ``meta`` belongs to (file and HDU), to begin the error message.

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
                where = "" if label is None else f"{label}: "
                raise ImageInputError(
                    f"{where}mask plane key {key} = {value!r} is not an integer bit number"
                ) from None
    return planes


def mask_bits(values: Any) -> np.ndarray:
    """An integer bit mask as int32, each stored bit kept as that bit.

    Signed types narrower than 32 bits are read as their unsigned pattern (an
    int8 or int16 mask value -128 is bit 7 or 7..15, not sign-extended into
    bits 8..31); wider types keep bits 0..31.
    """
    values = np.asarray(values)
    if values.dtype.kind == "i" and values.dtype.itemsize < 4:
        values = values.view(values.dtype.str.replace("i", "u"))
    return values.astype(np.int32, copy=False)


def bool_mask_bits(values: Any) -> np.ndarray:
    """A boolean mask (or bytes, non-zero meaning flagged) as int32 bit 0 (`BOOL_MASK_PLANE`)."""
    return (np.asarray(values) != 0).astype(np.int32)


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


def is_flux_density(unit: Any) -> bool:
    """Whether ``unit`` converts to nJy (a linear spectral flux density)."""
    # astropy when used: a pool run's parent imports this module but reads no image
    import astropy.units as u

    return not isinstance(unit, u.FunctionUnitBase) and unit.is_equivalent(u.nJy)


def nJy_per_unit(unit: Any, calibration: Any, label: str) -> float:
    """Factor turning pixel values in ``unit`` into nJy."""
    # astropy when used: a pool run's parent imports this module but reads no image
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
        factor = float(unit.to(u.nJy))
        # a calibration saying what BUNIT says (1 for nJy) agrees; it is no conversion
        if float(calibration) == factor:
            return factor
        raise ImageInputError(
            f"{label}: the image is already in {unit}, a flux density; do not pass calibration"
        )
    return checked_factor(calibration, label)


def celestial_wcs(wcs: Any, label: str) -> WCS:
    # astropy when used: a pool run's parent imports this module but reads no image
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
        try:
            wcs = wcs.celestial
        except Exception as error:  # e.g. more WCS axes than the header's NAXIS
            raise ImageInputError(
                f"{label}: the celestial axes of the {wcs.naxis}-axis WCS cannot be taken "
                f"apart ({error_text(error)}); give the image a 2-axis RA/Dec WCS"
            ) from None
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
