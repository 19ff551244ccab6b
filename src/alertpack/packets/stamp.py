"""A stamp: one source's square cutout of one image, and what became of it.

`Stamp` is what `alertpack.packets.cutouts.extract_stamps` cuts and
`alertpack.packets.stamp_fits.stamp_fits_bytes` writes; `whole_image_stamp`
makes one of a whole small image.

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
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from alertpack.errors import InputError
from alertpack.packets.stamp_wcs import (
    LocalTanWcs,
    cd_matrix,
    celestial_frame,
    linearize,
    position_angle,
)
from alertpack.packets.survey_image import SurveyImage

if TYPE_CHECKING:
    from astropy.wcs import WCS

__all__ = ["NO_DATA_PLANE", "CutoutStatus", "Stamp", "rotation_angle", "whole_image_stamp"]

#: mask plane of the pixels of a stamp that lie outside its image
NO_DATA_PLANE = "NO_DATA"


class CutoutStatus(enum.IntEnum):
    """What happened to one source's cutout (see the module docstring)."""

    OK = 0
    PADDED = 1
    OFF_IMAGE = 2
    BAD_POSITION = 3


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
    local_wcs : `~alertpack.packets.stamp_wcs.LocalTanWcs`
        TAN (or the parent's TAN-SIP) WCS of the stamp (pixel (0, 0) =
        ``image[0, 0]``).
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
    rotation_angle : `float`
        Position angle of the focal plane's +Y axis, degrees east of north
        (FITS ``ROTPA``, as LSST's cutouts carry it): the exposure's boresight
        rotation where the image records one on the sky, else the +y axis of
        the parent image at its centre from its WCS.
    rotation_source : `str`
        Where ``rotation_angle`` comes from: ``"boresight"`` or ``"wcs"``.
    orientation : `str`
        Empty for a stamp in the parent's pixel frame; else what was done to
        turn it north up (`alertpack.packets.stamp_orientation`), e.g.
        ``"flip x"`` or ``"reproject_adaptive"``: then ``origin`` is the
        first pixel of the parent window it was made from.
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
    rotation_angle: float = math.nan
    rotation_source: str = "wcs"
    orientation: str = ""

    @property
    def wcs(self) -> WCS:
        """The stamp's WCS as an `astropy.wcs.WCS` (built on each access)."""
        return self.local_wcs.to_astropy()

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the stamp."""
        return self.image.shape


def rotation_angle(image: SurveyImage) -> tuple[float, str]:
    """``ROTPA`` of an image's stamps: position angle of the focal plane's +Y, and its source.

    The exposure's boresight rotation (``BORE-ROTANG``) when its visit info
    has one measured on the sky (``ROTTYPE`` ``SKY`` or not recorded, as
    LSST's task takes it); otherwise the position angle of the image's +y
    axis at its centre, from its WCS (``"wcs"``; NaN where the WCS fails).

    Returns
    -------
    angle : `float`
        Degrees east of north, in [0, 360).
    source : `str`
        ``"boresight"`` or ``"wcs"``.
    """
    info = image.visit_info
    boresight = info.boresight_rotation_deg
    if boresight is not None and math.isfinite(boresight) and info.rotation_type in (None, "SKY"):
        return float(boresight) % 360.0, "boresight"
    ny, nx = image.shape
    _, cd = linearize(image.wcs, np.array([(nx - 1) / 2.0]), np.array([(ny - 1) / 2.0]))
    if not np.all(np.isfinite(cd)):
        return math.nan, "wcs"
    return position_angle(float(cd[0, 0, 1]), float(cd[0, 1, 1])), "wcs"


def whole_image_stamp(image: SurveyImage) -> Stamp:
    """A Stamp covering a whole (small) image, its WCS linearized at the center."""
    ny, nx = image.shape
    center = np.array([(nx - 1) / 2.0]), np.array([(ny - 1) / 2.0])
    crval, cd = linearize(image.wcs, *center)
    if not (np.all(np.isfinite(cd)) and np.all(np.isfinite(crval))):
        raise InputError(
            f"{image.name}: the WCS cannot be evaluated at the image center; "
            "give the cutout a valid celestial WCS"
        )
    radesys, equinox = celestial_frame(image.wcs)
    local = LocalTanWcs(
        crpix=((nx + 1) / 2.0, (ny + 1) / 2.0),
        crval=(float(crval[0, 0]), float(crval[0, 1])),
        cd=cd_matrix(cd[0]),
        radesys=radesys,
        equinox=equinox,
    )
    # a whole image is read at once (lazy planes too): the stamp is all of it
    variance = None if image.variance is None else np.asarray(image.variance)
    mask = np.zeros(image.shape, np.int32) if image.mask is None else np.asarray(image.mask)
    rotation, rotation_source = rotation_angle(image)
    return Stamp(
        image=np.asarray(image.image),
        variance=variance,
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
        rotation_angle=rotation,
        rotation_source=rotation_source,
    )
