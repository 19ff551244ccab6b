"""DiaObjects: aggregates of the detections and forced photometry per object."""

from __future__ import annotations

import numpy as np

from alertpack.sample.scene import _ASTEROID, BANDS


def _aggregate_objects(
    sources: dict[str, np.ndarray],
    history: dict[str, np.ndarray],
    forced: dict[str, np.ndarray],
    midpoint: float,
) -> dict[str, np.ndarray]:
    src = np.flatnonzero(sources["kind"] != _ASTEROID)
    n_obj = len(src)
    obj = np.concatenate([history["object"], np.arange(n_obj)])
    flux = np.concatenate([history["psfFlux"], sources["psfFlux"][src]])
    err = np.concatenate([history["psfFluxErr"], sources["psfFluxErr"][src]])
    mjd = np.concatenate([history["midpointMjdTai"], np.full(n_obj, midpoint)])
    band = np.concatenate([history["band"], sources["band"][src]]).astype(str)
    ra = np.concatenate([history["ra"], sources["ra"][src]])
    dec = np.concatenate([history["dec"], sources["dec"][src]])

    count = np.bincount(obj, minlength=n_obj)
    objects: dict[str, np.ndarray] = {
        "diaObjectId": sources["diaObjectId"][src],
        "ra": _circular_mean_deg(ra, obj, n_obj),
        "dec": np.bincount(obj, dec, n_obj) / count,
        "nDiaSources": count.astype(np.int32),
        "firstDiaSourceMjdTai": _group_min(mjd, obj, n_obj),
        "lastDiaSourceMjdTai": np.full(n_obj, midpoint),
        "source_row": src,
    }
    astrometric = 0.05 / 3600.0 / np.sqrt(count)
    objects["raErr"] = astrometric
    objects["decErr"] = astrometric
    objects["ra_dec_Cov"] = 0.1 * astrometric**2
    for b in BANDS:
        _band_statistics(objects, b, band == b, obj, flux, err, mjd, n_obj)
        in_band = forced["band"].astype(str) == b
        f_obj = forced["object"][in_band]
        for prefix, values, errors in [
            ("fp", forced["psfFlux"][in_band], forced["psfFluxErr"][in_band]),
            ("science", forced["scienceFlux"][in_band], forced["scienceFluxErr"][in_band]),
        ]:
            mean, mean_err, sigma, ndata = _weighted_stats(values, errors, f_obj, n_obj)
            objects[f"{b}_{prefix}FluxMean"] = mean
            objects[f"{b}_{prefix}FluxMeanErr"] = mean_err
            objects[f"{b}_{prefix}FluxSigma"] = sigma
            objects[f"{b}_{prefix}FluxNdata"] = ndata
    return objects


def _circular_mean_deg(ra: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    rad = np.deg2rad(ra)
    s = np.bincount(group, np.sin(rad), n)
    c = np.bincount(group, np.cos(rad), n)
    return np.rad2deg(np.arctan2(s, c)) % 360.0


def _group_min(values: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.inf)
    np.minimum.at(out, group, values)
    return np.where(np.isfinite(out), out, np.nan)


def _group_max(values: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, -np.inf)
    np.maximum.at(out, group, values)
    return np.where(np.isfinite(out), out, np.nan)


def _weighted_stats(values, errors, group, n):
    """Inverse-variance mean, its error, standard deviation and count per group."""
    ndata = np.bincount(group, minlength=n)
    weight = 1.0 / errors**2
    sum_w = np.bincount(group, weight, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(group, weight * values, n) / sum_w
        mean_err = 1.0 / np.sqrt(sum_w)
        plain_mean = np.bincount(group, values, n) / ndata
        dev = values - plain_mean[group] if len(group) else values
        var = np.bincount(group, dev**2, n) / np.maximum(ndata - 1, 1)
    sigma = np.where(ndata > 1, np.sqrt(var), np.nan)
    return mean, mean_err, sigma, ndata.astype(np.int32)


def _band_statistics(objects, b, in_band, obj, flux, err, mjd, n_obj) -> None:
    g, f, e, t = obj[in_band], flux[in_band], err[in_band], mjd[in_band]
    mean, mean_err, sigma, ndata = _weighted_stats(f, e, g, n_obj)
    objects[f"{b}_psfFluxMean"] = mean
    objects[f"{b}_psfFluxMeanErr"] = mean_err
    objects[f"{b}_psfFluxSigma"] = sigma
    objects[f"{b}_psfFluxNdata"] = ndata
    objects[f"{b}_psfFluxMin"] = _group_min(f, g, n_obj)
    objects[f"{b}_psfFluxMax"] = _group_max(f, g, n_obj)
    with np.errstate(invalid="ignore", divide="ignore"):
        objects[f"{b}_psfFluxErrMean"] = np.bincount(g, e, n_obj) / ndata
        chi = (f - mean[g]) / e if len(g) else f
        objects[f"{b}_psfFluxChi2"] = np.where(ndata > 0, np.bincount(g, chi**2, n_obj), np.nan)
    # Largest |flux change| per day between consecutive detections in the band.
    order = np.lexsort((t, g))
    gs, fs, ts = g[order], f[order], t[order]
    same = gs[1:] == gs[:-1] if len(gs) else np.zeros(0, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.abs(np.diff(fs)) / np.maximum(np.diff(ts), 1e-3)
    objects[f"{b}_psfFluxMaxSlope"] = _group_max(slope[same], gs[1:][same], n_obj)
