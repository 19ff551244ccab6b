"""Survey images from any input, reduced to what cutouts need.

A cutout needs the pixels in nJy, their variance in nJy², the bit mask with
its plane names, the celestial WCS of the array, where the array sits in the
detector (LSST ``xy0``) and, optionally, a PSF image. `as_survey_image`
builds that `SurveyImage` from

- an `astropy.nddata.CCDData` or `~astropy.nddata.NDData` with ``wcs`` and
  ``unit`` (uncertainty as variance, standard deviation or inverse variance;
  mask as bool or as an integer bit mask whose plane names are ``meta`` keys
  ``MP_<NAME> = bit``; ``meta`` ``LTV1``/``LTV2`` for the origin);
- a FITS file (path or `~astropy.io.fits.HDUList`): a single image HDU with a
  celestial WCS and ``BUNIT``, the LSST Exposure layout with extensions
  ``IMAGE``, ``MASK`` and ``VARIANCE`` (and ``PSF``), or an astropy CCDData
  file (``MASK``, ``UNCERT``), which also covers the cutout files
  `alertpack.packets.cutouts` writes; which HDU is which is decided by
  `alertpack.inputs.exposure_layout` for both: an HDUList's planes are read
  into arrays, a path is opened lazily by `alertpack.inputs.fits_files`
  (headers checked at open, planes as `LazyPlane` read stamp by stamp);
- an ``lsst.afw.image.Exposure`` (duck-typed, afw is never imported).

Counts (adu, electron, count) are not flux densities: they need an explicit
``calibration`` in nJy per count, or (FITS files written by afw) the
PhotoCalib of the file's archive. A ``psf`` given here (an array, or a PSF
file: `~alertpack.inputs.exposure_layout.read_psf_file`) replaces the
image's own.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.errors import ImageInputError, InputError
from alertpack.inputs.exposure_layout import ArrayPlanes, read_psf_file, resolve_exposure_layout
from alertpack.inputs.fits_files import open_fits_image
from alertpack.inputs.survey_image import (
    BOOL_MASK_PLANE,
    bool_mask_bits,
    celestial_wcs,
    checked_factor,
    error_text,
    mask_bits,
    mask_planes_from_header,
    nJy_per_unit,
    origin_from_ltv,
    psf_array,
    scaled_float32,
    variance_from_uncertainty,
    wcs_from_header,
)
from alertpack.inputs.visit_info import visit_info_from_header
from alertpack.packets.survey_image import SurveyImage, VisitInfo, require_2d

if TYPE_CHECKING:
    import astropy.units
    from astropy.wcs import WCS

__all__ = ["as_survey_image", "image_visit_info"]


def as_survey_image(
    obj: Any,
    *,
    name: str,
    calibration: float | astropy.units.Quantity | None = None,
    psf: str | os.PathLike[str] | np.ndarray | None = None,
) -> SurveyImage:
    """Build a `SurveyImage` from any supported image input.

    Parameters
    ----------
    obj : `SurveyImage`, `~astropy.nddata.NDData`, `str`, `os.PathLike`, \
            `~astropy.io.fits.HDUList` or ``lsst.afw.image.Exposure``
        The image. A `SurveyImage` is returned as is.
    name : `str`
        What the image is ("difference", "template", "science"); used in messages.
    calibration : `float` or `~astropy.units.Quantity`, optional
        nJy per input unit, for images in counts (adu, electron, count) or
        without a unit. A Quantity (e.g. ``0.8 * u.nJy / u.adu``) is checked
        against the image unit. Not allowed for images already in a flux
        density unit. For an afw Exposure, or a FITS file afw wrote, it
        replaces the PhotoCalib mean.
    psf : path or `numpy.ndarray`, optional
        The image's PSF, replacing its own: a 2-D array, or a FITS file
        holding one (`~alertpack.inputs.exposure_layout.read_psf_file`).

    Returns
    -------
    image : `SurveyImage`

    Raises
    ------
    ImageInputError
        Missing file, no image, not 2-D, no celestial WCS, missing or unknown
        unit, counts without calibration, planes of different shapes, or a
        PSF that is not a small 2-D image.
    """
    image = _survey_image(obj, name, calibration)
    if psf is None:
        return image
    values = (
        read_psf_file(psf, name) if isinstance(psf, (str, os.PathLike))
        else psf_array(psf, f"{name} PSF")
    )
    return dataclasses.replace(image, psf=values, psf_note=None)


def _survey_image(obj: Any, name: str, calibration: Any) -> SurveyImage:
    if isinstance(obj, SurveyImage):
        if calibration is not None:
            raise ImageInputError(
                f"{name} image: a SurveyImage is already in nJy; do not pass calibration"
            )
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return open_fits_image(Path(obj), name=name, calibration=calibration)
    if _is_afw_exposure(obj):
        return _from_afw_exposure(obj, name, calibration)
    # astropy when used: a pool run's parent imports this module but reads no image
    from astropy.io import fits

    if isinstance(obj, fits.HDUList):
        try:
            layout = resolve_exposure_layout(
                obj, name=name, source="the HDUList", calibration=calibration
            )
            return layout.survey_image(ArrayPlanes(obj))
        except InputError:
            raise
        except (OSError, ValueError, TypeError, MemoryError) as error:
            # headers and pixels fail with the HDU named; this is the last resort
            raise ImageInputError(
                f"{name} image (the HDUList): cannot be read ({error_text(error)}); open the "
                "file by path for a check of each HDU"
            ) from None
    # only here: importing astropy.nddata costs ~0.3 s, which FITS inputs never need
    from astropy.nddata import NDData

    if isinstance(obj, NDData):
        return _from_nddata(obj, name, calibration)
    raise ImageInputError(
        f"{name} image: cannot use an object of type {type(obj).__name__}; pass an "
        "astropy CCDData/NDData (with wcs and unit), a FITS file path or HDUList, an "
        "lsst.afw.image.Exposure, or an alertpack.packets.survey_image.SurveyImage"
    )


def image_visit_info(obj: Any, *, name: str) -> VisitInfo:
    """What an image input says about its visit, without converting its pixels.

    Parameters
    ----------
    obj
        Anything `as_survey_image` takes, or `None` (nothing said).
    name : `str`
        What the image is, for messages.

    Raises
    ------
    ImageInputError
        A FITS file or header that cannot be read, or a visit key whose value
        cannot mean what the key says (as `as_survey_image`).
    """
    if obj is None:
        return VisitInfo()
    if isinstance(obj, SurveyImage):
        return obj.visit_info
    if isinstance(obj, (str, os.PathLike)):
        return open_fits_image(Path(obj), name=name).visit_info  # headers only
    if _is_afw_exposure(obj):
        return _afw_visit_info(obj)
    # astropy when used, as in as_survey_image
    from astropy.io import fits

    if isinstance(obj, fits.HDUList):
        return resolve_exposure_layout(obj, name=name, source="the HDUList").visit_info
    meta = getattr(obj, "meta", None)
    if isinstance(meta, Mapping):
        return visit_info_from_header(meta, f"{name} image ({type(obj).__name__})")
    return VisitInfo()


# --- NDData / CCDData -------------------------------------------------------------------------


def _from_nddata(ndd: Any, name: str, calibration: Any) -> SurveyImage:
    label = f"{name} image ({type(ndd).__name__})"
    data = np.asarray(ndd.data)
    require_2d(data, label)
    unit = ndd.unit
    scale = nJy_per_unit(unit, calibration, label)
    meta = ndd.meta if ndd.meta is not None else {}
    mask, planes = _mask_from_nddata(ndd, meta, label, data.shape)
    return SurveyImage(
        image=scaled_float32(data, scale),
        variance=variance_from_uncertainty(ndd.uncertainty, unit, scale, label),
        mask=mask,
        mask_planes=planes,
        wcs=celestial_wcs(ndd.wcs, label),
        origin=origin_from_ltv(meta, label),
        psf=psf_array(getattr(ndd, "psf", None), label),
        name=name,
        photo_calib=scale,
        visit_info=visit_info_from_header(meta, label),
    )


def _mask_from_nddata(
    ndd: Any, meta: Mapping, label: str, shape: tuple[int, ...]
) -> tuple[np.ndarray | None, dict[str, int]]:
    """The int32 bit mask and planes: an integer mask, else integer flags (as LSST's
    alert code stores the afw mask), else a boolean mask as the BAD plane."""
    planes = mask_planes_from_header(meta)
    candidates = [ndd.mask, getattr(ndd, "flags", None)]
    for candidate in candidates:
        if candidate is None:
            continue
        array = np.asarray(candidate)
        if array.shape != shape:
            continue
        if np.issubdtype(array.dtype, np.integer):
            return mask_bits(array), planes
    if ndd.mask is not None:
        array = np.asarray(ndd.mask)
        if array.dtype == np.bool_:
            return bool_mask_bits(array), {BOOL_MASK_PLANE: 0}
        raise ImageInputError(
            f"{label}: mask of dtype {array.dtype} and shape {array.shape} is neither a "
            f"boolean nor an integer bit mask of the image shape {shape}"
        )
    return None, planes


# --- lsst.afw.image.Exposure (duck-typed) --------------------------------------------------

_AFW_EXPOSURE_METHODS = ("getMaskedImage", "getWcs", "getBBox", "getPhotoCalib")


def _is_afw_exposure(obj: Any) -> bool:
    return all(callable(getattr(obj, method, None)) for method in _AFW_EXPOSURE_METHODS)


def _from_afw_exposure(exposure: Any, name: str, calibration: Any) -> SurveyImage:
    """Convert an afw Exposure through its arrays and its WCS's FITS metadata.

    The PhotoCalib's mean calibration is applied (alert cutouts are small
    enough that its spatial variation does not matter).
    """
    label = f"{name} image ({type(exposure).__name__})"
    masked = exposure.getMaskedImage()
    data = np.asarray(masked.getImage().getArray())
    require_2d(data, label)
    bbox = exposure.getBBox()
    origin = (int(bbox.getMinX()), int(bbox.getMinY()))
    scale = _afw_scale(exposure, calibration, label)
    mask_plane = masked.getMask()
    sky_wcs = exposure.getWcs()
    if sky_wcs is None:
        raise ImageInputError(f"{label}: the Exposure has no WCS; attach a SkyWcs before packaging")
    psf = exposure.getPsf() if callable(getattr(exposure, "getPsf", None)) else None
    return SurveyImage(
        image=scaled_float32(data, scale),
        variance=scaled_float32(np.asarray(masked.getVariance().getArray()), scale * scale),
        mask=mask_bits(mask_plane.getArray()),
        mask_planes=dict(mask_plane.getMaskPlaneDict()),
        wcs=celestial_wcs(_wcs_of_afw_array(sky_wcs, origin, label), label),
        origin=origin,
        psf=None
        if psf is None
        else psf_array(psf.computeKernelImage(bbox.getCenter()).getArray(), label),
        psf_model=None if psf is None else _afw_psf_model(psf, bbox.getCenter(), label),
        name=name,
        photo_calib=scale,
        visit_info=_afw_visit_info(exposure),
    )


def _afw_psf_model(psf: Any, center: Any, label: str) -> Any:
    """``(x, y) -> PSF image`` of an afw ``Psf`` at a parent-frame position (as afw computes it).

    The point type is the one of ``center`` (an ``lsst.geom.Point2D`` from
    the Exposure's box), so that afw itself is never imported here.
    """
    point_type = type(center)

    def at(x: float, y: float) -> Any:
        return psf_array(psf.computeKernelImage(point_type(x, y)).getArray(), label)

    return at


def _afw_visit_info(exposure: Any) -> VisitInfo:
    """The fields of an afw Exposure's VisitInfo that alerts use (`None` where unset)."""
    exposure_info = exposure.getInfo() if callable(getattr(exposure, "getInfo", None)) else None
    if exposure_info is None or not exposure_info.hasVisitInfo():
        return VisitInfo()
    info = exposure_info.getVisitInfo()

    def finite(value: float) -> float | None:
        return float(value) if math.isfinite(value) else None

    date = info.getDate()
    rotation = info.getBoresightRotAngle().asDegrees()
    return VisitInfo(
        visit_id=int(info.getId()) or None,
        exposure_id=int(info.getExposureId()) or None,
        exposure_time_s=finite(info.getExposureTime()),
        midpoint_mjd_tai=float(date.get(date.MJD, date.TAI)) if date.isValid() else None,
        boresight_rotation_deg=finite(rotation),
        rotation_type=info.getRotType().name,
        observation_reason=info.getObservationReason() or None,
        target_name=info.getObject() or None,
    )


def _afw_scale(exposure: Any, calibration: Any, label: str) -> float:
    if calibration is not None:
        return nJy_per_unit(None, calibration, label)
    photo_calib = exposure.getPhotoCalib()
    if photo_calib is None:
        raise ImageInputError(
            f"{label}: the Exposure has no PhotoCalib; attach one or pass "
            "calibration=<nJy per count>"
        )
    return checked_factor(photo_calib.getCalibrationMean(), label)


def _wcs_of_afw_array(sky_wcs: Any, origin: tuple[int, int], label: str) -> WCS:
    # astropy when used: a pool run's parent imports this module but reads no image
    from astropy.io import fits

    metadata = sky_wcs.getFitsMetadata()
    items = metadata.toDict() if callable(getattr(metadata, "toDict", None)) else dict(metadata)
    header = fits.Header()
    for key, value in items.items():
        header[key] = value
    # afw's SkyWcs works in the parent frame; the array starts at xy0.
    header["CRPIX1"] = float(header.get("CRPIX1", 0.0)) - origin[0]
    header["CRPIX2"] = float(header.get("CRPIX2", 0.0)) - origin[1]
    return wcs_from_header(header, label)

