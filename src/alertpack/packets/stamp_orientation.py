"""North-up stamps (config ``cutoutOrientation = north-up``): an exact flip, or a resampling.

A stamp cut in the detector's pixel frame points north wherever the camera
rotator put it. `pixel_operation` finds the one of the eight flips and
quarter turns of the pixel array (`numpy` indexing, no interpolation) that
brings +y nearest to north and +x to west (east left); when the remaining
rotation moves no pixel of the stamp by more than `FLIP_TOLERANCE_PIXELS` at
its edge, `flipped` applies it: the pixels are the parent's, and the WCS is
the same transformed exactly (``CRPIX``, ``CD`` and every SIP term of the
parent's TAN-SIP). Otherwise `resampled` reprojects a larger native window
onto a north-up, east-left TAN grid of the same pixel scale centred on the
source, with `reproject` (``reproject_adaptive``: anti-aliased,
flux-conserving; the variance resampled with the same kernel, which keeps
its level but not the correlation resampling adds; the mask by nearest
neighbour). Pixels the window does not cover are NaN with the ``NO_DATA``
bit. The stamp header says which was done (``NORTHUP``, ``ORIENTOP``; see
`alertpack.packets.stamp_fits`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from alertpack.errors import InputError
from alertpack.packets.stamp import NO_DATA_PLANE, CutoutStatus, Stamp
from alertpack.packets.stamp_wcs import LocalTanWcs, SipTerms

__all__ = [
    "CUTOUT_ORIENTATIONS",
    "FLIP_TOLERANCE_PIXELS",
    "flipped",
    "pixel_operation",
    "resample_window",
    "resampled",
]

#: cutoutOrientation values
CUTOUT_ORIENTATIONS = ("native", "north-up")

#: largest displacement (pixels, at the stamp's edge) an exact flip may leave from north up
FLIP_TOLERANCE_PIXELS = 0.5

# Pixels added around the rotated footprint of a resampled stamp: the kernel's reach.
_RESAMPLE_MARGIN = 4

# The eight flips and quarter turns: matrix (new offsets = M @ old offsets) and its name.
_OPERATIONS: tuple[tuple[tuple[tuple[int, int], tuple[int, int]], str], ...] = (
    (((1, 0), (0, 1)), "none"),
    (((-1, 0), (0, 1)), "flip x"),
    (((1, 0), (0, -1)), "flip y"),
    (((-1, 0), (0, -1)), "rotate 180"),
    (((0, -1), (1, 0)), "rotate 90"),
    (((0, 1), (-1, 0)), "rotate 270"),
    (((0, 1), (1, 0)), "transpose"),
    (((0, -1), (-1, 0)), "anti-transpose"),
)


def _jacobian(stamp: Stamp) -> np.ndarray:
    """Unit sky directions (east, north) of the stamp's +x and +y axes, as columns."""
    theta = math.radians(stamp.position_angle)
    (cd11, cd12), (cd21, cd22) = stamp.local_wcs.cd
    parity = 1.0 if cd11 * cd22 - cd12 * cd21 > 0 else -1.0  # -1: east left of north
    y_axis = (math.sin(theta), math.cos(theta))
    x_axis = (parity * math.cos(theta), -parity * math.sin(theta))
    return np.array([[x_axis[0], y_axis[0]], [x_axis[1], y_axis[1]]])


def pixel_operation(stamp: Stamp) -> tuple[np.ndarray, str, float] | None:
    """The exact flip or quarter turn that brings the stamp north up, if close enough.

    Returns
    -------
    operation : `tuple` or `None`
        ``(M, name, residual_deg)``: the integer matrix acting on pixel
        offsets, its name, and the position angle of +y it leaves; `None`
        when the best leaves more than `FLIP_TOLERANCE_PIXELS` at the edge.
    """
    jacobian = _jacobian(stamp)
    target = np.array([[-1.0, 0.0], [0.0, 1.0]])
    best = min(
        _OPERATIONS,
        key=lambda item: float(np.abs(jacobian @ np.array(item[0]).T - target).sum()),
    )
    matrix = np.array(best[0])
    turned = jacobian @ matrix.T
    if turned[0, 0] * turned[1, 1] - turned[0, 1] * turned[1, 0] > 0:
        return None  # mirrored sky: no rotation brings east to the left
    residual = math.degrees(math.atan2(turned[0, 1], turned[1, 1]))
    half_side = stamp.image.shape[0] / 2.0
    if abs(math.radians(residual)) * half_side > FLIP_TOLERANCE_PIXELS:
        return None
    return matrix, best[1], residual


def _turn_array(array: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``array`` with pixel offsets from its centre mapped by ``matrix`` (square arrays)."""
    n = array.shape[0]
    jj, ii = np.indices(array.shape)
    offsets = np.stack([ii.ravel() * 2 - (n - 1), jj.ravel() * 2 - (n - 1)])  # doubled: integers
    old = matrix.T @ offsets
    return np.ascontiguousarray(
        array[(old[1] + (n - 1)) // 2, (old[0] + (n - 1)) // 2].reshape(array.shape)
    )


def _turn_polynomials(
    first: tuple[tuple[float, ...], ...], second: tuple[tuple[float, ...], ...], matrix: np.ndarray
) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    """SIP polynomials (f, g) of offsets u mapped to M (f, g)(M^T u')."""
    order = max(len(first), len(second)) - 1
    old = np.zeros((2, order + 1, order + 1))
    for index, polynomial in enumerate((first, second)):
        for p, row in enumerate(polynomial):
            old[index, p, : len(row)] = row
    inverse = matrix.T  # u = inverse @ u'
    swapped = inverse[0, 0] == 0  # u depends on v' and v on u'
    sign_u = inverse[0, 1] if swapped else inverse[0, 0]
    sign_v = inverse[1, 0] if swapped else inverse[1, 1]
    substituted = np.zeros_like(old)
    for p in range(order + 1):
        for q in range(order + 1 - p):
            factor = sign_u**p * sign_v**q
            if swapped:
                substituted[:, q, p] = old[:, p, q] * factor
            else:
                substituted[:, p, q] = old[:, p, q] * factor
    new = np.tensordot(matrix, substituted, axes=1)

    def as_terms(values: np.ndarray) -> tuple[tuple[float, ...], ...]:
        return tuple(tuple(float(v) + 0.0 for v in row) for row in values)

    return as_terms(new[0]), as_terms(new[1])


def _turn_wcs(wcs: LocalTanWcs, matrix: np.ndarray, side: int) -> LocalTanWcs:
    center = (side + 1) / 2.0  # 1-based
    crpix = np.array(wcs.crpix) - center
    new_crpix = matrix @ crpix + center
    cd = np.array(wcs.cd) @ matrix.T
    sip = wcs.sip
    if sip is not None:
        a, b = _turn_polynomials(sip.a, sip.b, matrix)
        ap, bp = sip.ap, sip.bp
        if ap is not None and bp is not None:
            ap, bp = _turn_polynomials(ap, bp, matrix)
        sip = SipTerms(a, b, ap, bp)
    return replace(
        wcs,
        crpix=(float(new_crpix[0]), float(new_crpix[1])),
        cd=((float(cd[0, 0]), float(cd[0, 1])), (float(cd[1, 0]), float(cd[1, 1]))),
        sip=sip,
    )


def flipped(stamp: Stamp, matrix: np.ndarray, name: str) -> Stamp:
    """The stamp with its pixel array flipped or turned by ``matrix``, its WCS exactly so."""
    side = stamp.image.shape[0]
    local = _turn_wcs(stamp.local_wcs, matrix, side)
    c = (side - 1) / 2.0
    cx, cy = stamp.center_pixel
    center = matrix @ np.array([cx - c, cy - c]) + c
    return replace(
        stamp,
        image=_turn_array(stamp.image, matrix),
        variance=None if stamp.variance is None else _turn_array(stamp.variance, matrix),
        mask=_turn_array(stamp.mask, matrix),
        local_wcs=local,
        position_angle=_turned_angle(stamp, matrix),
        center_pixel=(float(center[0]), float(center[1])),
        orientation=name if name != "none" else "none: already north up",
    )


def _turned_angle(stamp: Stamp, matrix: np.ndarray) -> float:
    turned = _jacobian(stamp) @ matrix.T
    return math.degrees(math.atan2(turned[0, 1], turned[1, 1])) % 360.0


def resample_window(size: int, angle_deg: float) -> int:
    """Side of the native window that covers a ``size`` stamp turned by ``angle_deg``."""
    theta = math.radians(angle_deg)
    return math.ceil(size * (abs(math.cos(theta)) + abs(math.sin(theta)))) + 2 * _RESAMPLE_MARGIN


def resampled(window: Stamp, size: int) -> tuple[Stamp, CutoutStatus]:
    """A ``size`` north-up stamp on a TAN grid centred on the source, from a larger native window.

    Raises
    ------
    alertpack.errors.InputError
        When ``reproject`` is not installed (``pip install 'alertpack[northup]'``).
    """
    try:
        # reproject (and scipy) load only for north-up stamps that need resampling
        from reproject import reproject_adaptive, reproject_interp
    except ImportError:
        raise InputError(
            "cutoutOrientation=north-up needs the reproject package to resample stamps whose "
            "axes are not along north/east: pip install 'alertpack[northup]'"
        ) from None
    (cd11, cd12), (cd21, cd22) = window.local_wcs.cd
    scale = math.sqrt(abs(cd11 * cd22 - cd12 * cd21))
    target = LocalTanWcs(
        crpix=((size + 1) / 2.0, (size + 1) / 2.0),
        crval=(window.ra, window.dec),
        cd=((-scale, 0.0), (0.0, scale)),
        radesys=window.local_wcs.radesys,
        equinox=window.local_wcs.equinox,
    )
    source_wcs, target_wcs = window.local_wcs.to_astropy(), target.to_astropy()
    shape = (size, size)

    def adaptive(plane: np.ndarray) -> np.ndarray:
        out: Any = reproject_adaptive(
            (np.asarray(plane, dtype=np.float64), source_wcs), target_wcs, shape_out=shape,
            conserve_flux=True, return_footprint=False, boundary_mode="strict",
        )
        return np.asarray(out, dtype=np.float32)

    image = adaptive(window.image)
    variance = None if window.variance is None else adaptive(window.variance)
    nearest: Any = reproject_interp(
        (np.asarray(window.mask, dtype=np.float64), source_wcs), target_wcs, shape_out=shape,
        order="nearest-neighbor", return_footprint=False,
    )
    no_data = 1 << window.mask_planes[NO_DATA_PLANE]
    missing = ~np.isfinite(nearest) | ~np.isfinite(image)
    mask = np.where(missing, no_data, np.nan_to_num(nearest)).astype(np.int32)
    image[missing] = np.nan
    if variance is not None:
        variance[missing] = np.nan
    status = CutoutStatus.PADDED if missing.any() else CutoutStatus.OK
    stamp = replace(
        window,
        image=image,
        variance=variance,
        mask=mask,
        local_wcs=target,
        position_angle=0.0,
        center_pixel=((size - 1) / 2.0, (size - 1) / 2.0),
        status=status,
        orientation="reproject_adaptive, flux-conserving",
    )
    return stamp, status
