"""Catalog measurements of the new DiaSources, consistent with the images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.sample.images import _bit
from alertpack.sample.scene import _DIPOLE, _psf_sums

if TYPE_CHECKING:
    from astropy.nddata import CCDData


def _measure_new_sources(
    rng: np.random.Generator,
    sources: dict[str, np.ndarray],
    images: dict[str, CCDData],
    conditions: dict[str, Any],
) -> None:
    """Catalog values consistent with the images: fluxes, errors, flags."""
    n = len(sources["x"])
    psf_sum2, psf_sigma = _psf_sums(conditions["seeing_arcsec"])
    gain = conditions["njy_per_electron"]
    bg_var = conditions["sky_variance"] + conditions["template_variance"]
    total_science = np.abs(sources["true_flux"]) + sources["star_flux"]
    # Photon noise of the source adds roughly its flux times nJy/electron.
    err = np.sqrt(bg_var / psf_sum2 + gain * total_science)
    flux = sources["true_flux"] + err * rng.standard_normal(n)
    # Detected at 5 sigma or more: a fainter measurement would not be a DiaSource.
    flux = np.sign(sources["true_flux"]) * np.maximum(np.abs(flux), 5.0 * err)
    sources["psfFluxErr"] = err
    sources["psfFlux"] = flux
    sources["snr"] = np.abs(flux) / err
    sources["band"] = np.full(n, conditions["band"], dtype=object)
    sources["psf_sigma_px"] = np.full(n, psf_sigma)
    sources["seeing_arcsec"] = np.full(n, conditions["seeing_arcsec"])

    template_flux = sources["star_flux"].copy()
    hosted = sources["host_galaxy"] >= 0
    # A host contributes the part of its light under the PSF at the transient.
    host_light = rng.uniform(0.5, 3.0, hosted.sum())
    template_flux[hosted] = 0.15 * sources["true_flux"][hosted] * host_light
    template_err = np.sqrt(conditions["template_variance"] / psf_sum2 + 0.05 * template_flux)
    sources["templateFlux"] = template_flux + template_err * rng.standard_normal(n)
    sources["templateFluxErr"] = template_err
    science_err = np.sqrt(conditions["sky_variance"] / psf_sum2 + gain * total_science)
    science_true = template_flux + sources["true_flux"]
    if np.any(sources["kind"] == _DIPOLE):
        science_true = np.where(sources["kind"] == _DIPOLE, sources["star_flux"], science_true)
    sources["scienceFlux"] = science_true + science_err * rng.standard_normal(n)
    sources["scienceFluxErr"] = science_err

    mask = np.asarray(images["difference"].mask)
    ny, nx = mask.shape
    ix = np.clip(np.rint(sources["x"]).astype(int), 0, nx - 1)
    iy = np.clip(np.rint(sources["y"]).astype(int), 0, ny - 1)
    center_bits = _box_or(mask, ix, iy, 1)
    bbox = np.clip(np.rint(12 + 6 * np.sqrt(sources["snr"])).astype(np.int32), 15, 80)
    bbox += (bbox % 2 == 0).astype(np.int32)  # odd: centered on the peak pixel
    sources["bboxSize"] = bbox
    footprint_bits = _box_or(mask, ix, iy, bbox // 2)
    for plane, name in [("BAD", "bad"), ("CR", "cr"), ("EDGE", "edge"), ("NO_DATA", "nodata"),
                        ("INTRP", "interpolated"), ("SAT", "saturated"), ("SUSPECT", "suspect")]:
        sources[f"pixelFlags_{name}"] = (footprint_bits & _bit(plane)) != 0
        sources[f"pixelFlags_{name}Center"] = (center_bits & _bit(plane)) != 0
    sources["pixelFlags_edge"] |= sources["is_edge"]
    sources["pixelFlags_offimage"] = np.zeros(n, bool)
    half_psf = 12
    near_edge = (
        (sources["x"] < half_psf) | (sources["y"] < half_psf)
        | (sources["x"] > nx - 1 - half_psf) | (sources["y"] > ny - 1 - half_psf)
    )
    sources["psfFlux_flag_edge"] = near_edge
    sources["forced_PsfFlux_flag_edge"] = near_edge
    aperture = 12  # radius of apFlux, pixels
    sources["apFlux_flag_apertureTruncated"] = (
        (sources["x"] < aperture) | (sources["y"] < aperture)
        | (sources["x"] > nx - 1 - aperture) | (sources["y"] > ny - 1 - aperture)
    )
    sources["isNegative"] = sources["psfFlux"] < 0
    sources["isDipole"] = sources["kind"] == _DIPOLE
    sources["dipoleFitAttempted"] = sources["isDipole"] | (rng.random(n) < 0.05)


def _box_or(mask: np.ndarray, ix: np.ndarray, iy: np.ndarray, half: np.ndarray | int):
    """Bitwise OR of ``mask`` over a box of half-width ``half`` around each (ix, iy)."""
    ny, nx = mask.shape
    half = np.broadcast_to(np.asarray(half), ix.shape)
    out = np.zeros(len(ix), np.int32)
    # Per-source slicing: the number of new sources per detector is small.
    for k, (x, y, h) in enumerate(zip(ix, iy, half, strict=True)):
        box = mask[max(y - h, 0) : min(y + h + 1, ny), max(x - h, 0) : min(x + h + 1, nx)]
        out[k] = np.bitwise_or.reduce(box, axis=None)
    return out
