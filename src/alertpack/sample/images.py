"""The difference, science and template images of the sample.

Images
    Calibrated to nJy, float32, with `~astropy.nddata.VarianceUncertainty`
    (nJy**2), an int32 LSST bit mask whose planes are declared in ``meta``
    (``MP_BAD = 0`` ...), ``LTV1 = LTV2 = 0`` and a TAN-SIP WCS. The science
    image is background subtracted (as an LSST calexp); the template is a
    deeper coadd with better seeing; the difference is science minus the
    PSF-matched template, rendered directly: PSF-shaped transients, negative
    variables and dipoles over the combined noise, without any full-image
    convolution. ``psf`` is the image's PSF at the detector center. The
    images are ``alertpack.sample.BitMaskCCDData``, a CCDData subclass that
    keeps the integer mask (CCDData itself turns masks into booleans).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from alertpack.errors import InputError
from alertpack.sample.scene import (
    _DIPOLE,
    _FULL_DETECTOR_PIXELS,
    _MOFFAT_BETA,
    _NO_DATA_CORNER_PX,
    PIXEL_SCALE_ARCSEC,
    _moffat_alpha,
    psf_image,
)

if TYPE_CHECKING:
    from astropy.nddata import CCDData
    from astropy.wcs import WCS

MASK_PLANES = {
    "BAD": 0,
    "SAT": 1,
    "INTRP": 2,
    "CR": 3,
    "EDGE": 4,
    "DETECTED": 5,
    "DETECTED_NEGATIVE": 6,
    "SUSPECT": 7,
    "NO_DATA": 8,
}
_EDGE_BORDER_PX = 6


def _stamp_grid(x: np.ndarray, y: np.ndarray, half: int):
    """Integer pixel grids (n, k, k) around rounded centers, and offsets from (x, y)."""
    offsets = np.arange(-half, half + 1)
    cx = np.rint(x).astype(np.int64)
    cy = np.rint(y).astype(np.int64)
    ix = cx[:, None, None] + offsets[None, None, :]
    iy = cy[:, None, None] + offsets[None, :, None]
    dx = ix - x[:, None, None]
    dy = iy - y[:, None, None]
    return ix, iy, dx, dy


def _moffat_stamps(x, y, flux, fwhm_arcsec: float, half: int = 12) -> tuple:
    ix, iy, dx, dy = _stamp_grid(np.asarray(x, float), np.asarray(y, float), half)
    alpha = _moffat_alpha(fwhm_arcsec / PIXEL_SCALE_ARCSEC)
    profile = (1.0 + (dx**2 + dy**2) / alpha**2) ** -_MOFFAT_BETA
    profile *= (np.asarray(flux) / profile.sum(axis=(1, 2)))[:, None, None]
    return ix, iy, profile


def _galaxy_stamps(scene: dict[str, Any], fwhm_arcsec: float, half: int = 15) -> tuple:
    """Elliptical Gaussians convolved (in quadrature) with a Gaussian of the seeing."""
    ix, iy, dx, dy = _stamp_grid(scene["galaxy_x"], scene["galaxy_y"], half)
    psf_sigma = fwhm_arcsec / PIXEL_SCALE_ARCSEC / 2.3548
    major = scene["galaxy_sigma"]
    minor = major * scene["galaxy_q"]
    cos, sin = np.cos(scene["galaxy_pa"]), np.sin(scene["galaxy_pa"])
    sa2 = (major**2 + psf_sigma**2)[:, None, None]
    sb2 = (minor**2 + psf_sigma**2)[:, None, None]
    u = dx * cos[:, None, None] + dy * sin[:, None, None]
    v = -dx * sin[:, None, None] + dy * cos[:, None, None]
    profile = np.exp(-0.5 * (u**2 / sa2 + v**2 / sb2))
    profile *= (scene["galaxy_flux"] / profile.sum(axis=(1, 2)))[:, None, None]
    return ix, iy, profile


def _accumulate(image: np.ndarray, stamps: tuple) -> None:
    """Add stamps (ix, iy, values) into ``image`` in place, clipping at the edges."""
    ix, iy, values = stamps
    ny, nx = image.shape
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    flat = (iy * nx + ix)[inside]
    np.add.at(image.reshape(-1), flat, values[inside].astype(image.dtype))


def _static_stamps(scene: dict[str, Any], fwhm: float) -> list[tuple]:
    return [
        _moffat_stamps(scene["star_x"], scene["star_y"], scene["star_flux"], fwhm),
        _galaxy_stamps(scene, fwhm),
    ]


def _transient_stamps(sources: dict[str, np.ndarray], fwhm: float) -> list[tuple]:
    """What the science image has and the template has not: PSFs, dipole lobes."""
    dipole = sources["kind"] == _DIPOLE
    x, y = sources["x"], sources["y"]
    stamps = [_moffat_stamps(x[~dipole], y[~dipole], sources["true_flux"][~dipole], fwhm)]
    if dipole.any():
        shift = sources["dipole_shift"][dipole]
        star = sources["star_flux"][dipole]
        stamps.append(_moffat_stamps(x[dipole] + shift[:, 0], y[dipole] + shift[:, 1], star, fwhm))
        stamps.append(_moffat_stamps(x[dipole], y[dipole], -star, fwhm))
    return stamps


def _cosmic_ray_pixels(rng: np.random.Generator, nx: int, ny: int) -> tuple:
    """Short tracks, ~150 per full detector in a 30 s exposure."""
    n = max(int(150 * nx * ny / _FULL_DETECTOR_PIXELS), 2)
    length = rng.integers(1, 6, n)
    x0 = rng.integers(0, nx, n)
    y0 = rng.integers(0, ny, n)
    angle = rng.uniform(0, np.pi, n)
    steps = np.arange(6)
    keep = steps[None, :] < length[:, None]
    px = np.rint(x0[:, None] + steps * np.cos(angle)[:, None]).astype(np.int64)[keep]
    py = np.rint(y0[:, None] + steps * np.sin(angle)[:, None]).astype(np.int64)[keep]
    inside = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
    return py[inside], px[inside]


def _bit(plane: str) -> np.int32:
    return np.int32(1 << MASK_PLANES[plane])


def _render_images(
    rng: np.random.Generator,
    scene: dict[str, Any],
    sources: dict[str, np.ndarray],
    wcs: WCS,
    nx: int,
    ny: int,
    conditions: dict[str, Any],
) -> dict[str, CCDData]:
    sky_sigma = np.float32(np.sqrt(conditions["sky_variance"]))
    tmpl_sigma = np.float32(np.sqrt(conditions["template_variance"]))
    seeing, tmpl_seeing = conditions["seeing_arcsec"], conditions["template_seeing_arcsec"]
    gain = np.float32(conditions["njy_per_electron"])

    science_noise = rng.standard_normal((ny, nx), dtype=np.float32)
    science_noise *= sky_sigma
    template_noise = rng.standard_normal((ny, nx), dtype=np.float32)
    template_noise *= tmpl_sigma

    static_science = np.zeros((ny, nx), np.float32)
    for stamps in _static_stamps(scene, seeing):
        _accumulate(static_science, stamps)
    transient = np.zeros((ny, nx), np.float32)
    for stamps in _transient_stamps(sources, seeing):
        _accumulate(transient, stamps)
    model_science = static_science + transient
    del static_science

    # Photon noise of the sources: only where there is source light.
    bright = np.flatnonzero(model_science.reshape(-1) > 0.05 * sky_sigma)
    source_counts = model_science.reshape(-1)[bright]
    photon_sigma = np.sqrt(gain * source_counts)
    shot = rng.standard_normal(len(bright), dtype=np.float32) * photon_sigma
    science_noise.reshape(-1)[bright] += shot

    difference = transient + science_noise - template_noise
    science = model_science + science_noise
    science_variance = np.full((ny, nx), conditions["sky_variance"], np.float32)
    science_variance.reshape(-1)[bright] += gain * source_counts

    template = template_noise
    for stamps in _static_stamps(scene, tmpl_seeing):
        _accumulate(template, stamps)
    template_variance = np.full((ny, nx), conditions["template_variance"], np.float32)
    difference_variance = science_variance + template_variance

    masks = _masks(rng, model_science, transient, sky_sigma, conditions, nx, ny)
    del transient
    saturation = np.float32(conditions["saturation_njy"])
    science = np.minimum(science, saturation, out=science)
    no_data = (masks["template"] & _bit("NO_DATA")) != 0
    template[no_data] = np.nan
    difference[no_data] = np.nan

    meta_common = {"LTV1": 0, "LTV2": 0, "BAND": conditions["band"]}
    return {
        "science": _ccd(science, science_variance, masks["science"], wcs, seeing, meta_common),
        "template": _ccd(
            template, template_variance, masks["template"], wcs, tmpl_seeing, meta_common
        ),
        "difference": _ccd(
            difference, difference_variance, masks["difference"], wcs, seeing, meta_common
        ),
    }


def _masks(
    rng: np.random.Generator,
    model_science: np.ndarray,
    transient: np.ndarray,
    sky_sigma: np.float32,
    conditions: dict[str, Any],
    nx: int,
    ny: int,
) -> dict[str, np.ndarray]:
    """LSST mask planes of the three images, built with whole-array arithmetic."""
    saturation = conditions["saturation_njy"]
    science = ((model_science > saturation).astype(np.int32) * (_bit("SAT") | _bit("INTRP")))
    science |= ((model_science > 0.8 * saturation) & (model_science <= saturation)).astype(
        np.int32
    ) * _bit("SUSPECT")
    # Footprints reach down to ~1.5 sigma per pixel for a 5 sigma detection
    # on the PSF-smoothed image.
    science |= (model_science > 1.5 * sky_sigma).astype(np.int32) * _bit("DETECTED")
    # A few bad columns (interpolated over, as ISR does) ...
    bad_columns = rng.choice(np.arange(50, nx - 50), 3, replace=False)
    lengths = rng.integers(ny // 4, ny, 3)
    for column, length in zip(bad_columns, lengths, strict=True):
        science[:length, column] |= _bit("BAD") | _bit("INTRP")
    # ... and repaired cosmic rays.
    cr_y, cr_x = _cosmic_ray_pixels(rng, nx, ny)
    science[cr_y, cr_x] |= _bit("CR") | _bit("INTRP")

    template = (model_science > 1.5 * sky_sigma).astype(np.int32) * _bit("DETECTED")
    corner_x, corner_y = _NO_DATA_CORNER_PX
    template[:corner_y, nx - corner_x :] |= _bit("NO_DATA")

    # The difference keeps the science pixel defects, gets its own detections
    # and an EDGE border where the matching kernel did not reach.
    difference = science & (_bit("BAD") | _bit("SAT") | _bit("INTRP") | _bit("CR")
                            | _bit("SUSPECT"))
    difference |= (transient > 1.5 * sky_sigma).astype(np.int32) * _bit("DETECTED")
    difference |= (transient < -1.5 * sky_sigma).astype(np.int32) * _bit("DETECTED_NEGATIVE")
    difference |= template & _bit("NO_DATA")
    border = _EDGE_BORDER_PX
    for region in (np.s_[:border, :], np.s_[-border:, :], np.s_[:, :border], np.s_[:, -border:]):
        difference[region] |= _bit("EDGE")
    return {"science": science, "template": template, "difference": difference}


@functools.cache
def _bitmask_ccddata_class() -> type:
    # astropy.nddata when the class is first built: importing alertpack.sample stays light
    from astropy.nddata import CCDData

    class BitMaskCCDData(CCDData):
        """`~astropy.nddata.CCDData` whose mask may be an integer bit mask.

        ``CCDData`` turns every mask into booleans, losing the LSST mask
        planes; this subclass keeps integer masks as they are (bool masks
        behave as in ``CCDData``). Plane names are in ``meta`` as
        ``MP_<NAME> = bit``. ``CCDData.write`` stores masks as uint8: write
        with `write_visit` / `exposure_hdulist` to keep all planes.
        """

        # an integer or bool array, or numpy's nomask (a bool scalar) for no mask
        _mask: npt.NDArray[np.integer | np.bool_] | np.bool_

        @property
        def mask(self) -> np.ndarray | None:
            # the setter stores an array or nomask
            return self._mask if isinstance(self._mask, np.ndarray) else None

        @mask.setter
        def mask(self, value: Any) -> None:
            if value is None or value is np.ma.nomask:
                self._mask = np.ma.nomask
                return
            array = np.asarray(value)
            if array.dtype.kind not in "iu":
                array = array.astype(bool)
            if array.shape != self.data.shape:
                raise InputError(
                    f"mask shape {array.shape} differs from the image shape {self.data.shape}"
                )
            self._mask = array

    # Its public home is the package: pickle finds it there by name, through
    # the package's module __getattr__.
    BitMaskCCDData.__module__ = "alertpack.sample"
    BitMaskCCDData.__qualname__ = "BitMaskCCDData"
    return BitMaskCCDData


def _ccd(
    image: np.ndarray,
    variance: np.ndarray,
    mask: np.ndarray,
    wcs: WCS,
    fwhm_arcsec: float,
    meta_common: dict[str, Any],
) -> CCDData:
    # astropy on first use: importing alertpack.sample stays light (numpy only)
    import astropy.units as u
    from astropy.nddata import VarianceUncertainty

    meta: dict[str, Any] = {f"MP_{name}": bit for name, bit in MASK_PLANES.items()}
    meta.update(meta_common)
    meta["SEEING"] = round(fwhm_arcsec, 4)
    return _bitmask_ccddata_class()(
        image.astype(np.float32, copy=False),
        unit=u.nJy,
        uncertainty=VarianceUncertainty(
            variance.astype(np.float32, copy=False), unit=u.nJy**2, copy=False
        ),
        mask=mask.astype(np.int32, copy=False),
        wcs=wcs.deepcopy(),
        meta=meta,
        psf=psf_image(fwhm_arcsec),
    )
