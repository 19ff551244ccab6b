"""The simulated sky and observation: conditions, WCS, PSF, scene, new sources.

A visit draws its band and seeing (`_visit_conditions`); each detector gets a
TAN-SIP WCS at its place on the LSSTCam focal plane (`_detector_wcs`), a
static scene of stars and galaxies present in every image (`_static_scene`)
and the new DiaSources of the visit: transients, negative variables, dipoles,
sources near the edges and asteroids (`_new_sources`). Positions are pixels,
fluxes nJy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from astropy.wcs import WCS

BANDS = ("u", "g", "r", "i", "z", "y")
PIXEL_SCALE_ARCSEC = 0.2
EXPOSURE_TIME_S = 30.0
DEFAULT_BORESIGHT_DEG = (150.0, 2.0)
# Per band: sky surface brightness [mag/arcsec**2] and nJy per electron for a
# 30 s LSST exposure (the u and y throughputs are lowest, so one electron is
# worth more flux there).
_SKY_MAG = {"u": 22.9, "g": 22.3, "r": 21.2, "i": 20.5, "z": 19.6, "y": 18.6}
_NJY_PER_ELECTRON = {"u": 1.6, "g": 0.45, "r": 0.5, "i": 0.65, "z": 0.9, "y": 1.9}
_READ_NOISE_E = 9.0
_SATURATION_E = 1.0e5
_BAND_FREQUENCY = np.array([0.07, 0.10, 0.22, 0.22, 0.20, 0.19])
_AB_ZERO_NJY = 3631.0e9
_STARS_PER_DETECTOR = 600
_GALAXIES_PER_DETECTOR = 2500
_FULL_DETECTOR_PIXELS = 4072 * 4000
_NO_DATA_CORNER_PX = (48, 32)

# Kinds of new DiaSources.
_POSITIVE, _NEGATIVE, _DIPOLE, _ASTEROID = 0, 1, 2, 3


# --------------------------------------------------------------------------
# Observing conditions, WCS, PSF
# --------------------------------------------------------------------------


def _visit_conditions(rng: np.random.Generator) -> dict[str, Any]:
    band = BANDS[int(rng.choice(len(BANDS), p=_BAND_FREQUENCY))]
    sky_njy = 10 ** ((31.4 - _SKY_MAG[band]) / 2.5) * PIXEL_SCALE_ARCSEC**2
    gain = _NJY_PER_ELECTRON[band]
    variance = gain * sky_njy + (_READ_NOISE_E * gain) ** 2
    return {
        "band": band,
        "seeing_arcsec": float(rng.uniform(0.72, 0.9)),
        "template_seeing_arcsec": float(rng.uniform(0.62, 0.7)),
        "rotation_deg": float(rng.uniform(0.0, 360.0)),
        "njy_per_electron": gain,
        "sky_variance": float(variance),
        # A coadd of ~20 visits: its noise is about 4.5 times lower.
        "template_variance": float(variance / 20.0),
        "saturation_njy": _SATURATION_E * gain,
    }


def _focal_plane_offset_px(detector: int) -> tuple[float, float]:
    """Detector center relative to the boresight, in pixels (LSSTCam layout)."""
    rafts = [(r, c) for r in range(5) for c in range(5) if (r, c) not in
             {(0, 0), (0, 4), (4, 0), (4, 4)}]
    raft_row, raft_col = rafts[detector // 9]
    sensor_row, sensor_col = divmod(detector % 9, 3)
    raft_pitch, sensor_pitch = 12700.0, 4225.0
    dx = (raft_col - 2) * raft_pitch + (sensor_col - 1) * sensor_pitch
    dy = (raft_row - 2) * raft_pitch + (sensor_row - 1) * sensor_pitch
    return dx, dy


def _cd_matrix(rotation_deg: float) -> np.ndarray:
    scale = PIXEL_SCALE_ARCSEC / 3600.0
    theta = np.deg2rad(rotation_deg)
    # RA grows to the left on the sky (det CD < 0), as in LSST calexps.
    return scale * np.array(
        [[-np.cos(theta), np.sin(theta)], [np.sin(theta), np.cos(theta)]]
    )


def _detector_wcs(
    nx: int,
    ny: int,
    detector: int,
    boresight: tuple[float, float],
    rotation_deg: float,
    rng: np.random.Generator,
) -> WCS:
    """A TAN-SIP WCS: 0.2"/px, rotated, a few pixels of distortion at the corners."""
    # on first use: importing alertpack.sample stays light (numpy only)
    from astropy.wcs import WCS, Sip

    focal = WCS(naxis=2)
    focal.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    focal.wcs.crval = list(boresight)
    focal.wcs.crpix = [1.0, 1.0]
    focal.wcs.cd = _cd_matrix(rotation_deg)
    dx, dy = _focal_plane_offset_px(detector)
    center_ra, center_dec = focal.wcs_pix2world([[dx, dy]], 0)[0]

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    wcs.wcs.crval = [center_ra, center_dec]
    # FITS CRPIX is 1-based: the reference pixel is the detector center.
    wcs.wcs.crpix = [(nx - 1) / 2.0 + 1.0, (ny - 1) / 2.0 + 1.0]
    wcs.wcs.cd = _cd_matrix(rotation_deg)
    wcs.wcs.radesys = "ICRS"
    # Coefficients scaled to a full LSST detector: ~1 px quadratic and ~2-3 px
    # cubic displacement at the corners (2000 px from the center).
    half = 2036.0
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    for p, q in [(2, 0), (1, 1), (0, 2)]:
        a[p, q] = rng.normal(0.0, 0.6) / half**2
        b[p, q] = rng.normal(0.0, 0.6) / half**2
    for p, q in [(3, 0), (2, 1), (1, 2), (0, 3)]:
        a[p, q] = rng.normal(0.0, 0.9) / half**3
        b[p, q] = rng.normal(0.0, 0.9) / half**3
    # Radial (pincushion) term common to all detectors.
    radial = 1.2 / half**3
    a[3, 0] += radial
    a[1, 2] += radial
    b[0, 3] += radial
    b[2, 1] += radial
    ap, bp = _fit_inverse_sip(a, b, half)
    wcs.sip = Sip(a, b, ap, bp, wcs.wcs.crpix)
    wcs.pixel_shape = (nx, ny)
    return wcs


def _sip_eval(coeffs: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.zeros_like(u)
    order = coeffs.shape[0] - 1
    for p in range(order + 1):
        for q in range(order + 1 - p):
            if coeffs[p, q]:
                out += coeffs[p, q] * u**p * v**q
    return out


def _fit_inverse_sip(
    a: np.ndarray, b: np.ndarray, half: float, order: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares AP/BP so that FITS readers without iteration invert the SIP."""
    grid = np.linspace(-1.3 * half, 1.3 * half, 41)
    u, v = (g.ravel() for g in np.meshgrid(grid, grid))
    uu = u + _sip_eval(a, u, v)
    vv = v + _sip_eval(b, u, v)
    terms = [(p, q) for p in range(order + 1) for q in range(order + 1 - p)]
    scale = 1.3 * half
    design = np.stack([(uu / scale) ** p * (vv / scale) ** q for p, q in terms], axis=1)
    sol_u, *_ = np.linalg.lstsq(design, u - uu, rcond=None)
    sol_v, *_ = np.linalg.lstsq(design, v - vv, rcond=None)
    ap = np.zeros((order + 1, order + 1))
    bp = np.zeros((order + 1, order + 1))
    for (p, q), cu, cv in zip(terms, sol_u, sol_v, strict=True):
        ap[p, q] = cu / scale ** (p + q)
        bp[p, q] = cv / scale ** (p + q)
    return ap, bp


_MOFFAT_BETA = 3.5


def _moffat_alpha(fwhm_px: float, beta: float = _MOFFAT_BETA) -> float:
    return fwhm_px / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def psf_image(fwhm_arcsec: float, size: int = 25) -> np.ndarray:
    """A normalized Moffat (beta 3.5) PSF image, ``size`` x ``size``, centered."""
    alpha = _moffat_alpha(fwhm_arcsec / PIXEL_SCALE_ARCSEC)
    offsets = np.arange(size) - (size - 1) / 2.0
    r2 = offsets[None, :] ** 2 + offsets[:, None] ** 2
    profile = (1.0 + r2 / alpha**2) ** -_MOFFAT_BETA
    return (profile / profile.sum()).astype(np.float32)


def _psf_sums(fwhm_arcsec: float) -> tuple[float, float]:
    """Sum of PSF**2 (inverse effective area, 1/px) and the PSF's Gaussian sigma (px)."""
    psf = psf_image(fwhm_arcsec, 41).astype(np.float64)
    return float(np.sum(psf**2)), fwhm_arcsec / PIXEL_SCALE_ARCSEC / 2.3548


# --------------------------------------------------------------------------
# Sky scene and new sources
# --------------------------------------------------------------------------


def _mag_to_njy(mag: np.ndarray) -> np.ndarray:
    return _AB_ZERO_NJY * 10 ** (-0.4 * np.asarray(mag))


def _powerlaw_mags(rng: np.random.Generator, n: int, low: float, high: float, slope: float):
    """Magnitudes with counts growing as 10**(slope * m) between low and high."""
    u = rng.random(n)
    lo, hi = 10 ** (slope * low), 10 ** (slope * high)
    return np.log10(lo + u * (hi - lo)) / slope


def _static_scene(rng: np.random.Generator, nx: int, ny: int, band: str) -> dict[str, Any]:
    """Stars and galaxies (positions in pixels, fluxes in nJy), present in all images."""
    area = nx * ny / _FULL_DETECTOR_PIXELS
    n_stars = max(int(_STARS_PER_DETECTOR * area), 8)
    n_galaxies = max(int(_GALAXIES_PER_DETECTOR * area), 8)
    colour = {"u": 1.2, "g": 0.5, "r": 0.0, "i": -0.2, "z": -0.3, "y": -0.35}[band]
    star_mags = _powerlaw_mags(rng, n_stars, 14.0, 25.0, 0.25) + colour
    galaxy_mags = _powerlaw_mags(rng, n_galaxies, 17.0, 25.5, 0.35) + 0.6 * colour
    return {
        "star_x": rng.uniform(-10, nx + 10, n_stars),
        "star_y": rng.uniform(-10, ny + 10, n_stars),
        "star_flux": _mag_to_njy(star_mags),
        "galaxy_x": rng.uniform(-15, nx + 15, n_galaxies),
        "galaxy_y": rng.uniform(-15, ny + 15, n_galaxies),
        "galaxy_flux": _mag_to_njy(galaxy_mags),
        # Half-light-ish Gaussian sigma [px], axis ratio and position angle.
        "galaxy_sigma": np.clip(rng.lognormal(np.log(2.0), 0.45, n_galaxies), 0.8, 9.0),
        "galaxy_q": rng.uniform(0.3, 1.0, n_galaxies),
        "galaxy_pa": rng.uniform(0.0, np.pi, n_galaxies),
    }

def _edge_positions(rng: np.random.Generator, n: int, nx: int, ny: int):
    """Centroids within 1.5-9 px of an edge; the first one near the (0, 0) corner."""
    inset = rng.uniform(1.5, 9.0, (n, 2))
    side = rng.integers(0, 4, n)
    x = rng.uniform(20, nx - 20, n)
    y = rng.uniform(20, ny - 20, n)
    x = np.where(side == 0, inset[:, 0], np.where(side == 1, nx - 1 - inset[:, 0], x))
    y = np.where(side == 2, inset[:, 1], np.where(side == 3, ny - 1 - inset[:, 1], y))
    if n:
        x[0], y[0] = inset[0]
    return x, y


def _new_sources(
    rng: np.random.Generator,
    scene: dict[str, Any],
    nx: int,
    ny: int,
    n_sources: int,
    n_edge: int,
    n_asteroids: int,
    conditions: dict[str, Any],
) -> dict[str, np.ndarray]:
    """Kinds, pixel positions and true difference fluxes of the new DiaSources."""
    n_interior = n_sources - n_edge - n_asteroids
    kind = np.full(n_sources, _POSITIVE, np.int8)
    draw = rng.random(n_interior)
    kind[:n_interior] = np.where(draw < 0.12, _NEGATIVE, np.where(draw < 0.18, _DIPOLE, _POSITIVE))
    kind[n_interior + n_edge :] = _ASTEROID

    margin = 40.0
    x = rng.uniform(margin, nx - margin, n_sources)
    y = rng.uniform(margin, ny - margin, n_sources)
    ex, ey = _edge_positions(rng, n_edge, nx, ny)
    x[n_interior : n_interior + n_edge] = ex
    y[n_interior : n_interior + n_edge] = ey

    # Variables and dipoles sit on stars of the scene; half of the positive
    # transients on galaxies (supernovae near their hosts).
    host_star = np.full(n_sources, -1)
    host_galaxy = np.full(n_sources, -1)
    on_star = np.flatnonzero((kind == _NEGATIVE) | (kind == _DIPOLE))
    bright = np.flatnonzero(
        (scene["star_flux"] > 2e4) & (scene["star_flux"] < 3e6)
        & (scene["star_x"] > margin) & (scene["star_x"] < nx - margin)
        & (scene["star_y"] > margin) & (scene["star_y"] < ny - margin)
    )
    if len(on_star) and len(bright):
        host_star[on_star] = rng.choice(bright, len(on_star), replace=len(bright) < len(on_star))
        x[on_star] = scene["star_x"][host_star[on_star]]
        y[on_star] = scene["star_y"][host_star[on_star]]
    else:
        kind[on_star] = _POSITIVE
    positive = np.flatnonzero(kind[:n_interior] == _POSITIVE)
    hosted = positive[rng.random(len(positive)) < 0.5]
    inside = np.flatnonzero(
        (scene["galaxy_x"] > margin) & (scene["galaxy_x"] < nx - margin)
        & (scene["galaxy_y"] > margin) & (scene["galaxy_y"] < ny - margin)
    )
    if len(hosted) and len(inside):
        host_galaxy[hosted] = rng.choice(inside, len(hosted))
        offset = rng.normal(0.0, 1.0, (len(hosted), 2)) * scene["galaxy_sigma"][
            host_galaxy[hosted], None
        ]
        x[hosted] = scene["galaxy_x"][host_galaxy[hosted]] + offset[:, 0]
        y[hosted] = scene["galaxy_y"][host_galaxy[hosted]] + offset[:, 1]
    x = np.clip(x, 0.5, nx - 1.5)
    y = np.clip(y, 0.5, ny - 1.5)
    no_data_x, no_data_y = _NO_DATA_CORNER_PX
    in_no_data = (x > nx - 1 - no_data_x - 6) & (y < no_data_y + 6)
    x[in_no_data] -= no_data_x + 12

    # Detection S/N: many faint, few bright (integral counts ~ S**-1.5).
    snr_true = 5.5 * (1.0 - rng.random(n_sources)) ** (-1.0 / 1.5)
    snr_true = np.minimum(snr_true, 2000.0)
    psf_sum2, _ = _psf_sums(conditions["seeing_arcsec"])
    err_bg = np.sqrt((conditions["sky_variance"] + conditions["template_variance"]) / psf_sum2)
    flux = snr_true * err_bg
    flux[kind == _NEGATIVE] *= -1.0
    star_flux = np.where(host_star >= 0, scene["star_flux"][np.maximum(host_star, 0)], 0.0)
    # A variable cannot fade below zero.
    flux = np.where(kind == _NEGATIVE, np.maximum(flux, -0.8 * star_flux), flux)
    # A dipole is a star whose image moved by a fraction of a pixel; its
    # catalog flux is about that of the positive lobe.
    shift = rng.normal(0.0, 0.25, (n_sources, 2))
    _, psf_sigma = _psf_sums(conditions["seeing_arcsec"])
    lobe = 0.5 * star_flux * np.hypot(shift[:, 0], shift[:, 1]) / psf_sigma
    flux = np.where(kind == _DIPOLE, np.maximum(lobe, 6.0 * err_bg), flux)
    return {
        "kind": kind,
        "x": x.astype(np.float32).astype(np.float64),
        "y": y.astype(np.float32).astype(np.float64),
        "true_flux": flux,
        "host_star": host_star,
        "host_galaxy": host_galaxy,
        "star_flux": star_flux,
        "dipole_shift": np.where((kind == _DIPOLE)[:, None], shift, 0.0),
        "is_edge": np.isin(np.arange(n_sources), np.arange(n_interior, n_interior + n_edge)),
    }


def _place_on_sky(sources: dict[str, np.ndarray], wcs: WCS) -> None:
    ra, dec = wcs.all_pix2world(sources["x"], sources["y"], 0)
    sources["ra"] = np.asarray(ra, dtype=np.float64) % 360.0
    sources["dec"] = np.asarray(dec, dtype=np.float64)
