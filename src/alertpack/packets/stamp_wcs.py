"""The WCS of a stamp: the parent's own TAN-SIP moved to the stamp, or a local linearization.

For a TAN or TAN-SIP parent (the FITS form of a detector WCS) a stamp's WCS
is the parent's own with ``CRPIX`` moved to the stamp: ``CRVAL``, ``CD`` and
the SIP terms (``A_*``, ``B_*``, ``AP_*``, ``BP_*``, relative to ``CRPIX``)
unchanged, so the stamp maps pixels to the sky exactly as the parent does,
at any stamp size. Any other parent WCS is linearized at the stamp center
(``CRPIX`` at the center, ``CRVAL`` its sky position, ``CD`` the local
Jacobian of the gnomonic projection), which agrees with it to 0.01 pixel
over small stamps. Both are `LocalTanWcs`: numbers until an astropy WCS is
asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from astropy.wcs import WCS

__all__ = [
    "LocalTanWcs",
    "SipTerms",
    "carried_sip",
    "cd_matrix",
    "celestial_frame",
    "linearize",
    "position_angle",
    "stamp_wcs",
    "tan_ctypes",
]

# Half-width of the central differences of the local Jacobian, pixels; the
# parent WCS is smooth on this scale, and rounding is ~1e-10 of the result.
_JACOBIAN_STEP = 1.0


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
        # astropy.wcs (~0.5 s): stamps are written without it (stamp_fits); only on request
        from astropy.wcs import Sip

        def array(terms: tuple[tuple[float, ...], ...] | None) -> npt.NDArray[np.float64] | None:
            return None if terms is None else np.array(terms, dtype=np.float64)

        return Sip(array(self.a), array(self.b), array(self.ap), array(self.bp), crpix)


def tan_ctypes(sip: bool) -> tuple[str, str]:
    """``CTYPE1``, ``CTYPE2`` of a TAN WCS, with or without SIP distortion."""
    return ("RA---TAN-SIP", "DEC--TAN-SIP") if sip else ("RA---TAN", "DEC--TAN")



def carried_sip(wcs: WCS) -> SipTerms | None:
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

    def terms(array: npt.NDArray[np.float64]) -> tuple[tuple[float, ...], ...]:
        return tuple(tuple(map(float, row)) for row in array)

    sip = wcs.sip  # a and b always; ap and bp when the parent has an inverse
    return SipTerms(
        terms(sip.a),
        terms(sip.b),
        None if sip.ap is None else terms(sip.ap),
        None if sip.bp is None else terms(sip.bp),
    )


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
        # astropy.wcs (~0.5 s): stamps are written without it (stamp_fits); only on request
        from astropy.wcs import WCS

        wcs = WCS(naxis=2)
        wcs.wcs.ctype = list(tan_ctypes(self.sip is not None))
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
        return position_angle(self.cd[0][1], self.cd[1][1])


def _pixel_to_world(wcs: WCS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    world = wcs.all_pix2world(np.column_stack([x, y]), 0)
    return world[:, wcs.wcs.lng], world[:, wcs.wcs.lat]


def linearize(wcs: WCS, center_x: np.ndarray, center_y: np.ndarray) -> tuple[np.ndarray, ...]:
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


def position_angle(cd_xi_y: float, cd_eta_y: float) -> float:
    """Position angle of a pixel axis whose step moves ``(xi, eta)`` by ``(cd_xi_y, cd_eta_y)``."""
    # +y moves by (xi, eta) = (CD1_2, CD2_2); angle from north (eta) toward east (xi)
    return math.degrees(math.atan2(cd_xi_y, cd_eta_y)) % 360.0


def celestial_frame(wcs: WCS) -> tuple[str, float | None]:
    """``(RADESYS, EQUINOX)`` of a WCS; the equinox only for FK4/FK5, defaulted when unset."""
    radesys = (wcs.wcs.radesys or "ICRS").strip() or "ICRS"
    equinox = float(wcs.wcs.equinox) if radesys in ("FK4", "FK5") else None
    if equinox is not None and not math.isfinite(equinox):
        equinox = 2000.0 if radesys == "FK5" else 1950.0
    return radesys, equinox


def cd_matrix(cd: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """A 2x2 ``CD`` array as the nested tuple `LocalTanWcs` holds."""
    return ((float(cd[0, 0]), float(cd[0, 1])), (float(cd[1, 0]), float(cd[1, 1])))


def stamp_wcs(
    parent: WCS, x_start: np.ndarray, y_start: np.ndarray, sizes: np.ndarray
) -> tuple[list[LocalTanWcs | None], list[float]]:
    """The WCS of square stamps cut from ``parent``, and the position angle of each.

    Parameters
    ----------
    parent : `astropy.wcs.WCS`
        Celestial WCS of the parent image array (0-based pixel ``(0, 0)`` is
        its first pixel).
    x_start, y_start : `numpy.ndarray` [`int`]
        First pixel of each stamp in the parent array.
    sizes : `numpy.ndarray` [`int`]
        Edge length of each stamp, pixels.

    Returns
    -------
    wcs : `list` [`LocalTanWcs` or `None`]
        Per stamp: the parent's TAN-SIP moved to the stamp when it carries
        over exactly (`carried_sip`), else the linearization at the stamp
        center; `None` where the parent WCS fails at the center.
    position_angles : `list` [`float`]
        Of each stamp's +y axis at its center, degrees east of north (NaN
        where ``wcs`` is `None`).
    """
    half = (sizes - 1) / 2.0
    crval, cd = linearize(parent, x_start + half, y_start + half)
    # a WCS that fails at the stamp center cannot describe the stamp
    broken = ~np.all(np.isfinite(cd.reshape(len(sizes), 4)), axis=1) | ~np.all(
        np.isfinite(crval), axis=1
    )
    radesys, equinox = celestial_frame(parent)
    sip = carried_sip(parent)
    if sip is not None:
        parent_crpix = parent.wcs.crpix
        parent_crval = (float(parent.wcs.crval[0]), float(parent.wcs.crval[1]))
        parent_cd = cd_matrix(parent.pixel_scale_matrix)
    wcs_list: list[LocalTanWcs | None] = []
    angles: list[float] = []
    for k in range(len(sizes)):
        if broken[k]:
            wcs_list.append(None)
            angles.append(math.nan)
            continue
        local_cd = cd_matrix(cd[k])
        if sip is None:
            local = LocalTanWcs(
                crpix=(half[k] + 1.0, half[k] + 1.0),
                crval=(float(crval[k, 0]), float(crval[k, 1])),
                cd=local_cd,
                radesys=radesys,
                equinox=equinox,
            )
        else:  # the parent's own WCS, moved to the stamp: exact at any size
            local = LocalTanWcs(
                crpix=(float(parent_crpix[0] - x_start[k]), float(parent_crpix[1] - y_start[k])),
                crval=parent_crval,
                cd=parent_cd,
                radesys=radesys,
                equinox=equinox,
                sip=sip,
            )
        wcs_list.append(local)
        angles.append(position_angle(local_cd[0][1], local_cd[1][1]))
    return wcs_list, angles
