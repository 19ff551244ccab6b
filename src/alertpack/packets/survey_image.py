"""An image reduced to what cutouts need: the contract between image inputs and stamps.

`SurveyImage` holds the pixels in nJy, their variance in nJy², the bit mask
with its plane names, the celestial WCS of the array, its origin in the
detector (LSST ``xy0``), optionally a PSF image, and what the exposure says
about its visit (`VisitInfo`); planes may be arrays or `LazyPlane` (read
window by window). The adapters in `alertpack.inputs` build
one from astropy objects, FITS files and afw exposures; `alertpack.packets.cutouts`
cuts stamps from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from alertpack.errors import ImageInputError

if TYPE_CHECKING:
    from astropy.wcs import WCS

__all__ = ["LazyPlane", "Plane", "SurveyImage", "VisitInfo", "require_2d", "require_survey_image"]


@dataclass(frozen=True)
class VisitInfo:
    """What an exposure records about its visit; every field `None` where it does not say.

    The fields are those of afw's ``VisitInfo`` that alert packets use, under
    the FITS keys afw writes them with (`alertpack.inputs.visit_info` reads
    them).

    Attributes
    ----------
    visit_id : `int` or `None`
        Id of the full focal-plane exposure (``IDNUM``).
    exposure_id : `int` or `None`
        Id of this exposure (``EXPID``).
    exposure_time_s : `float` or `None`
        Exposure duration, seconds (``EXPTIME``).
    midpoint_mjd_tai : `float` or `None`
        Middle of the exposure, MJD in TAI (``DATE-AVG`` with ``TIMESYS``).
    boresight_rotation_deg : `float` or `None`
        Rotation angle at the boresight, degrees (``BORE-ROTANG``): the
        position angle of the focal plane's +Y axis, east of north, when
        ``rotation_type`` is ``"SKY"``.
    rotation_type : `str` or `None`
        What ``boresight_rotation_deg`` is measured against (``ROTTYPE``:
        ``SKY``, ``HORIZON``, ``MOUNT``, ``UNKNOWN``).
    observation_reason : `str` or `None`
        Why the scheduler took the exposure (``REASON``); empty means `None`.
    target_name : `str` or `None`
        Object of interest or field name (``OBJECT``); empty means `None`.
    """

    visit_id: int | None = None
    exposure_id: int | None = None
    exposure_time_s: float | None = None
    midpoint_mjd_tai: float | None = None
    boresight_rotation_deg: float | None = None
    rotation_type: str | None = None
    observation_reason: str | None = None
    target_name: str | None = None


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
        self,
        read_window: Callable[[int, int, int, int], npt.NDArray[Any]],
        shape: tuple[int, int],
        dtype: npt.DTypeLike,
        convert: Callable[[npt.NDArray[Any]], npt.NDArray[Any]],
    ) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self._read_window = read_window
        self._convert = convert

    @property
    def size(self) -> int:
        """Number of pixels."""
        return self.shape[0] * self.shape[1]

    def __getitem__(self, key: tuple[slice, slice]) -> npt.NDArray[Any]:
        if not (isinstance(key, tuple) and len(key) == 2 and all(
            isinstance(k, slice) and k.step in (None, 1) for k in key
        )):
            raise TypeError("a LazyPlane is read with two unit-step slices: plane[y0:y1, x0:x1]")
        (y0, y1, _), (x0, x1, _) = (k.indices(n) for k, n in zip(key, self.shape, strict=True))
        y1, x1 = max(y0, y1), max(x0, x1)
        values = self._convert(self._read_window(y0, y1, x0, x1))
        return values.astype(self.dtype, copy=False)

    def __array__(
        self, dtype: npt.DTypeLike | None = None, copy: bool | None = None
    ) -> npt.NDArray[Any]:
        values = self[0 : self.shape[0], 0 : self.shape[1]]
        return values if dtype is None else values.astype(dtype, copy=False)


#: a plane of an image: pixels in memory or read window by window
type Plane = npt.NDArray[Any] | LazyPlane


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
        PSF image at the detector center: the image's average PSF.
    psf_model : callable or `None`
        ``(x, y) -> PSF image`` at a pixel position of the parent (detector)
        frame, for images that carry a PSF model (an afw Exposure's ``Psf``);
        `None` when the image has one PSF image only (FITS files, CCDData).
    name : `str`
        What the image is ("difference", "template", "science"), for messages.
    photo_calib : `float`
        nJy per input unit that was applied (1.0 when the input was already a
        flux density in nJy).
    visit_info : `VisitInfo`
        What the exposure says about its visit (all `None` when nothing).
    psf_note : `str` or `None`
        Why ``psf`` is `None`, when the input says (e.g. "the file's archive
        holds a CoaddPsf: ..."); its stamps carry no PSF.
    """

    image: Plane
    variance: Plane | None
    mask: Plane | None
    mask_planes: dict[str, int]
    wcs: WCS
    origin: tuple[int, int] = (0, 0)
    psf: npt.NDArray[np.float32] | None = None
    psf_model: Callable[[float, float], npt.NDArray[Any]] | None = None
    name: str = "image"
    photo_calib: float = 1.0
    visit_info: VisitInfo = field(default_factory=VisitInfo)
    psf_note: str | None = None

    def __post_init__(self) -> None:
        self.image = _as_2d(self.image, np.float32, f"{self.name} image")
        if self.variance is not None:
            self.variance = _as_2d(self.variance, np.float32, f"{self.name} variance")
        if self.mask is not None:
            self.mask = _as_2d(self.mask, np.int32, f"{self.name} mask")
        if self.psf is not None:
            self.psf = _as_2d_array(self.psf, np.float32, f"{self.name} PSF")
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


def require_survey_image(image: Any, what: str) -> SurveyImage:
    """``image`` if it is a `SurveyImage`, else an error saying how to make one.

    Parameters
    ----------
    image
        What a caller was given.
    what : `str`
        What the caller takes, e.g. ``"extract_stamps takes a SurveyImage"``.

    Raises
    ------
    alertpack.errors.ImageInputError
        If ``image`` is not a `SurveyImage`.
    """
    if not isinstance(image, SurveyImage):
        raise ImageInputError(
            f"{what}, got a {type(image).__name__}; convert the image first with "
            "alertpack.as_survey_image(image, name=...)"
        )
    return image


def require_2d(data: Any, label: str) -> None:
    if data is None:
        raise ImageInputError(f"{label}: has no pixel data")
    if np.ndim(data) != 2:
        raise ImageInputError(
            f"{label}: data has {np.ndim(data)} dimensions (shape {np.shape(data)}); "
            "cutouts need a 2-D image"
        )


def _as_2d(array: Any, dtype: type[np.generic], label: str) -> Plane:
    if isinstance(array, LazyPlane):
        if array.dtype != np.dtype(dtype):
            raise ImageInputError(f"{label}: lazy plane of dtype {array.dtype}, not {dtype}")
        return array
    return _as_2d_array(array, dtype, label)


def _as_2d_array[T: np.generic](array: Any, dtype: type[T], label: str) -> npt.NDArray[T]:
    values = np.asarray(array)
    require_2d(values, label)
    return values.astype(dtype, copy=False)
