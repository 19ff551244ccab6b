"""Postage stamps around sources, as standalone FITS files (the fast path).

`extract_stamps` cuts square stamps of given edge lengths out of one
`~alertpack.packets.survey_image.SurveyImage` for many sources at once:
`alertpack.packets.placement` says where each goes (one world->pixel call for
all of them), `alertpack.packets.stamp_wcs` gives each its WCS, and the
pixels are read-only views of the image where the stamp lies inside it,
padded copies where it reaches beyond the edge (see
`~alertpack.packets.stamp.CutoutStatus`). `make_cutout_bytes` also writes
each stamp as a FITS file (`alertpack.packets.stamp_fits`); it is what the
alert Task uses. `alertpack.reference.cutouts` does the same with
`astropy.nddata.Cutout2D` and `CCDData.write`; tests compare the two.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from alertpack.errors import InputError
from alertpack.packets.placement import place_stamps
from alertpack.packets.stamp import NO_DATA_PLANE, CutoutStatus, Stamp, rotation_angle
from alertpack.packets.stamp_compression import encode_stamp
from alertpack.packets.stamp_orientation import (
    CUTOUT_ORIENTATIONS,
    flipped,
    pixel_operation,
    resample_window,
    resampled,
)
from alertpack.packets.stamp_wcs import stamp_wcs
from alertpack.packets.survey_image import SurveyImage, require_survey_image

__all__ = ["extract_stamps", "make_cutout_bytes", "stamp_mask_planes"]


def extract_stamps(
    image: SurveyImage,
    ra_deg: Any,
    dec_deg: Any,
    sizes: Any,
    *,
    orientation: str = "native",
    psf_per_source: bool = False,
) -> tuple[list[Stamp | None], np.ndarray]:
    """Cut a stamp around every source.

    Parameters
    ----------
    image : `~alertpack.packets.survey_image.SurveyImage`
        The image (convert others with ``alertpack.as_survey_image``).
    ra_deg, dec_deg : array-like
        Source positions, degrees.
    sizes : `int` or array-like of `int`
        Edge length per source (see `~alertpack.packets.placement.cutout_sizes`),
        or one for all.
    orientation : `str`
        ``native`` (the parent's pixel frame, as Rubin) or ``north-up``
        (`alertpack.packets.stamp_orientation`: an exact flip where one
        suffices, else resampled).
    psf_per_source : `bool`, optional
        Give each stamp the PSF at its source where the image has a PSF
        model (``image.psf_model``; `None` where the model fails there, as
        upstream's), instead of the image's average PSF (``image.psf``).

    Returns
    -------
    stamps : `list` [`~alertpack.packets.stamp.Stamp` or `None`]
        One per source; `None` for ``OFF_IMAGE`` and ``BAD_POSITION``.
    status : `numpy.ndarray` [`numpy.uint8`]
        `~alertpack.packets.stamp.CutoutStatus` value per source.

    Raises
    ------
    alertpack.errors.InputError
        If ``image`` is not a SurveyImage, positions and sizes do not give
        one value per source, the image mask has no bit free for
        ``NO_DATA``, or an unknown ``orientation``.
    """
    image = require_survey_image(image, "extract_stamps takes a SurveyImage")
    if orientation not in CUTOUT_ORIENTATIONS:
        raise InputError(
            f"cutout orientation {orientation!r} is not one of {', '.join(CUTOUT_ORIENTATIONS)}"
        )
    stamps, status = _native_stamps(image, ra_deg, dec_deg, sizes, psf_per_source)
    if orientation == "north-up":
        _turn_north_up(image, stamps, status, psf_per_source)
    return stamps, status


def _turn_north_up(
    image: SurveyImage, stamps: list[Stamp | None], status: np.ndarray, psf_per_source: bool
) -> None:
    """Each stamp turned north up in place: an exact flip, or resampled from a larger window."""
    to_resample: list[tuple[int, Stamp]] = []
    for k, stamp in enumerate(stamps):
        if stamp is None:
            continue
        operation = pixel_operation(stamp)
        if operation is None:
            to_resample.append((k, stamp))
        else:
            stamps[k] = flipped(stamp, operation[0], operation[1])
    if not to_resample:
        return
    windows, _ = _native_stamps(
        image,
        [stamp.ra for _, stamp in to_resample],
        [stamp.dec for _, stamp in to_resample],
        np.array([resample_window(stamp.shape[0], stamp.position_angle)
                  for _, stamp in to_resample]),
        psf_per_source,  # a window centred on the same source: the same PSF
    )
    for (k, stamp), window in zip(to_resample, windows, strict=True):
        if window is None:  # the WCS fails at the window's centre
            stamps[k] = None
            status[k] = CutoutStatus.BAD_POSITION
            continue
        stamps[k], outcome = resampled(window, stamp.shape[0])
        status[k] = outcome


def _native_stamps(
    image: SurveyImage, ra_deg: Any, dec_deg: Any, sizes: Any, psf_per_source: bool
) -> tuple[list[Stamp | None], np.ndarray]:
    placement = place_stamps(image, ra_deg, dec_deg, sizes)
    rows = np.flatnonzero(placement.status <= CutoutStatus.PADDED)
    sizes = placement.sizes
    wcs_list, angles = stamp_wcs(
        image.wcs, placement.x_start[rows], placement.y_start[rows], sizes[rows]
    )
    planes, no_data_bit = stamp_mask_planes(image.mask_planes)
    rotation, rotation_source = rotation_angle(image)
    stamps: list[Stamp | None] = [None] * len(sizes)
    for k, row in enumerate(rows):
        local = wcs_list[k]
        if local is None:  # a WCS that fails at the stamp center cannot describe the stamp
            placement.status[row] = CutoutStatus.BAD_POSITION
            continue
        size = int(sizes[row])
        x_start, y_start = int(placement.x_start[row]), int(placement.y_start[row])
        pixels, variance, mask = _cut_planes(image, x_start, y_start, size, 1 << no_data_bit)
        stamps[row] = Stamp(
            image=pixels,
            variance=variance,
            mask=mask,
            mask_planes=planes,
            local_wcs=local,
            origin=(image.origin[0] + x_start, image.origin[1] + y_start),
            psf=_stamp_psf(image, float(placement.x[row]), float(placement.y[row]))
            if psf_per_source and image.psf_model is not None else image.psf,
            position_angle=angles[k],
            center_pixel=(float(placement.x[row] - x_start), float(placement.y[row] - y_start)),
            ra=float(placement.ra[row]),
            dec=float(placement.dec[row]),
            name=image.name,
            status=CutoutStatus(int(placement.status[row])),
            rotation_angle=rotation,
            rotation_source=rotation_source,
        )
    return stamps, placement.status


def _stamp_psf(image: SurveyImage, x: float, y: float) -> np.ndarray | None:
    """The PSF of ``image``'s model at array position (x, y); `None` where it fails there."""
    assert image.psf_model is not None
    try:
        # the model is in the parent (detector) frame, as afw's Psf is
        psf = image.psf_model(image.origin[0] + x, image.origin[1] + y)
    except Exception:  # afw raises its own types (InvalidParameterError, InvalidPsfError)
        return None
    return np.asarray(psf, dtype=np.float32)


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


def make_cutout_bytes(
    image: SurveyImage,
    ra_deg: Any,
    dec_deg: Any,
    sizes: Any,
    *,
    compression: str = "none",
    orientation: str = "native",
    psf_per_source: bool = False,
) -> tuple[list[bytes | None], np.ndarray]:
    """Cutouts of one image for many sources, as FITS bytes.

    Parameters
    ----------
    image, ra_deg, dec_deg, sizes, orientation, psf_per_source
        As for `extract_stamps`.
    compression : `str`
        ``none``, ``gzip``, ``lossless`` or ``lossy16``
        (`alertpack.packets.stamp_compression`).

    Returns
    -------
    cutouts : `list` [`bytes` or `None`]
        FITS bytes per source; `None` where there is no cutout.
    status : `numpy.ndarray` [`numpy.uint8`]
        `~alertpack.packets.stamp.CutoutStatus` value per source.

    Raises
    ------
    alertpack.errors.InputError
        As `extract_stamps` and `~alertpack.packets.stamp_compression.encode_stamp`.
    """
    stamps, status = extract_stamps(
        image, ra_deg, dec_deg, sizes, orientation=orientation, psf_per_source=psf_per_source
    )
    return [None if stamp is None else encode_stamp(stamp, compression) for stamp in stamps], status
