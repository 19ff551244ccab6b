"""History of the DiaObjects: previous visits, detections and forced photometry.

Time window
    History rows lie within the last 365 days of the visit
    (``HISTORY_WINDOW_DAYS``), except a few (``OLD_HISTORY_DAYS``) older than
    that, which a packager must drop.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alertpack.sample.ids import (
    _EXPOSURE_CADENCE_DAYS,
    _NIGHT_START_DAYS,
    N_SCIENCE_DETECTORS,
    _visit_numbers,
    ccd_visit_id,
    pack_source_ids,
)
from alertpack.sample.scene import (
    _ASTEROID,
    _BAND_FREQUENCY,
    _NJY_PER_ELECTRON,
    _READ_NOISE_E,
    _SKY_MAG,
    BANDS,
    PIXEL_SCALE_ARCSEC,
    _psf_sums,
)

HISTORY_WINDOW_DAYS = 365.0
OLD_HISTORY_DAYS = (365.0, 730.0)


def _past_epochs(rng: np.random.Generator, midpoint: float, n_needed: int) -> dict[str, np.ndarray]:
    """Previous visits of this field: within the last year, plus a few older ones.

    Derived from the visit alone, so every detector of a visit shares them;
    each detector of this visit saw a different detector of those visits.
    """
    n_recent = n_needed + 12
    n_old = 6
    night_now = np.floor(midpoint - _NIGHT_START_DAYS)
    window = np.arange(1, int(HISTORY_WINDOW_DAYS) - 1)
    recent = np.sort(rng.choice(window, n_recent, replace=False))
    old = np.sort(
        rng.choice(np.arange(int(OLD_HISTORY_DAYS[0]) + 2, int(OLD_HISTORY_DAYS[1])), n_old,
                   replace=False)
    )
    nights_back = np.concatenate([old[::-1], recent[::-1]])
    night = night_now - nights_back
    sequence = rng.integers(1, 1500, len(night))
    mjd = night + _NIGHT_START_DAYS + sequence * _EXPOSURE_CADENCE_DAYS
    return {
        "mjd": mjd,
        "visit": _visit_numbers(night, sequence),
        "band": np.array(BANDS)[rng.choice(len(BANDS), len(night), p=_BAND_FREQUENCY)],
        "detector_shift": rng.integers(1, N_SCIENCE_DETECTORS, len(night)),
        "seeing": rng.uniform(0.6, 1.3, len(night)),
        "is_old": midpoint - mjd > HISTORY_WINDOW_DAYS,
    }


def _choose_epochs(rng: np.random.Generator, n_objects: int, candidates: np.ndarray, k: int):
    """For each object, ``k`` distinct epochs out of ``candidates`` (n_objects, k)."""
    k = min(k, len(candidates))
    order = np.argsort(rng.random((n_objects, len(candidates))), axis=1)[:, :k]
    return candidates[order]


def _object_histories(
    rng: np.random.Generator,
    sources: dict[str, np.ndarray],
    epochs: dict[str, np.ndarray],
    detector: int,
    n_history: int,
    n_forced: int,
    midpoint: float,
    conditions: dict[str, Any],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Previous detections and forced measurements of each new source's DiaObject."""
    has_object = sources["kind"] != _ASTEROID
    objects = np.flatnonzero(has_object)
    n_obj = len(objects)
    # About one in ten DiaObjects is new: no detection before this visit.
    is_new = rng.random(n_obj) < 0.1
    recent = np.flatnonzero(~epochs["is_old"])
    old = np.flatnonzero(epochs["is_old"])

    det_epochs = _choose_epochs(rng, n_obj, recent, n_history)
    n_old_det = np.where(rng.random(n_obj) < 0.3, rng.integers(1, 3, n_obj), 0)
    old_det = _choose_epochs(rng, n_obj, old, 2)
    det_obj, det_epoch = _ragged_pairs(det_epochs, np.where(is_new, 0, det_epochs.shape[1]))
    old_obj, old_epoch = _ragged_pairs(old_det, np.where(is_new, 0, n_old_det))
    det_obj = np.concatenate([det_obj, old_obj])
    det_epoch = np.concatenate([det_epoch, old_epoch])

    forced_epochs = _choose_epochs(rng, n_obj, recent, n_forced)
    n_prev_forced = np.where(is_new, 0, forced_epochs.shape[1])
    f_obj, f_epoch = _ragged_pairs(forced_epochs, n_prev_forced)
    old_f_obj, old_f_epoch = _ragged_pairs(old_det, np.where(is_new, 0, n_old_det))
    f_obj = np.concatenate([f_obj, old_f_obj])
    f_epoch = np.concatenate([f_epoch, old_f_epoch])

    # Light curves: a constant part plus a sinusoid, in difference flux.
    src = objects
    amplitude = np.abs(sources["true_flux"][src]) * rng.uniform(0.2, 0.9, n_obj)
    period = rng.uniform(5.0, 300.0, n_obj)
    phase = rng.uniform(0, 2 * np.pi, n_obj)
    level = sources["true_flux"][src] - amplitude * np.sin(phase)

    def difference_flux(obj: np.ndarray, mjd: np.ndarray) -> np.ndarray:
        return level[obj] + amplitude[obj] * np.sin(
            2 * np.pi * (mjd - midpoint) / period[obj] + phase[obj]
        )

    det_mjd = epochs["mjd"][det_epoch]
    det_band = epochs["band"][det_epoch]
    seeing = epochs["seeing"][det_epoch]
    err = _past_flux_errors(det_band, seeing, np.abs(difference_flux(det_obj, det_mjd)))
    true_det = difference_flux(det_obj, det_mjd)
    # A detection has |S/N| >= 5: a row below that would not exist.
    true_det = np.sign(true_det + 1e-9) * np.maximum(np.abs(true_det), 5.5 * err)
    det_flux = true_det + err * rng.standard_normal(len(det_obj))
    det_flux = np.sign(det_flux) * np.maximum(np.abs(det_flux), 5.0 * err)

    ra0, dec0 = sources["ra"][src], sources["dec"][src]
    astrometric = 0.02 / 3600.0 + 0.1 / 3600.0 * 10 / np.maximum(np.abs(det_flux / err), 5)
    history = {
        "object": det_obj,
        "epoch": det_epoch,
        "visit": epochs["visit"][det_epoch],
        "detector": ((detector + epochs["detector_shift"][det_epoch]) % N_SCIENCE_DETECTORS).astype(
            np.int32
        ),
        "midpointMjdTai": det_mjd,
        "band": det_band.astype(object),
        "psfFlux": det_flux,
        "psfFluxErr": err,
        "snr": np.abs(det_flux) / err,
        "ra": (ra0[det_obj] + rng.normal(0, 1, len(det_obj)) * astrometric
               / np.cos(np.deg2rad(dec0[det_obj]))) % 360.0,
        "dec": dec0[det_obj] + rng.normal(0, 1, len(det_obj)) * astrometric,
        "x": rng.uniform(30, 4042, len(det_obj)),
        "y": rng.uniform(30, 3970, len(det_obj)),
        "psf_sigma_px": seeing / PIXEL_SCALE_ARCSEC / 2.3548,
        "seeing_arcsec": seeing,
        "kind": sources["kind"][src][det_obj],
        "star_flux": sources["star_flux"][src][det_obj],
    }
    history["isNegative"] = history["psfFlux"] < 0
    template_flux = sources["templateFlux"][src][det_obj]
    history["templateFlux"] = template_flux
    history["templateFluxErr"] = sources["templateFluxErr"][src][det_obj]
    history["scienceFlux"] = template_flux + det_flux
    history["scienceFluxErr"] = err * 0.9
    history["bboxSize"] = np.clip(
        np.rint(12 + 6 * np.sqrt(history["snr"])).astype(np.int32) | 1, 15, 81
    ).astype(np.int32)

    f_mjd = epochs["mjd"][f_epoch]
    f_band = epochs["band"][f_epoch]
    f_seeing = epochs["seeing"][f_epoch]
    f_true = difference_flux(f_obj, f_mjd)
    f_err = _past_flux_errors(f_band, f_seeing, np.abs(f_true))
    forced = {
        "object": np.concatenate([f_obj, np.arange(n_obj)]),
        "epoch": np.concatenate([f_epoch, np.full(n_obj, -1)]),
        "visit": np.concatenate([epochs["visit"][f_epoch], sources["visit"][src]]),
        "detector": np.concatenate([
            (detector + epochs["detector_shift"][f_epoch]) % N_SCIENCE_DETECTORS,
            np.full(n_obj, detector),
        ]).astype(np.int32),
        "midpointMjdTai": np.concatenate([f_mjd, np.full(n_obj, midpoint)]),
        "band": np.concatenate([f_band, np.full(n_obj, conditions["band"])]).astype(object),
        "psfFlux": np.concatenate([
            f_true + f_err * rng.standard_normal(len(f_obj)),
            sources["true_flux"][src] + sources["psfFluxErr"][src] * rng.standard_normal(n_obj),
        ]),
        "psfFluxErr": np.concatenate([f_err, sources["psfFluxErr"][src]]),
    }
    template_forced = sources["templateFlux"][src][forced["object"]]
    forced["scienceFlux"] = template_forced + forced["psfFlux"]
    forced["scienceFluxErr"] = forced["psfFluxErr"] * 0.9
    forced["ra"] = ra0[forced["object"]]
    forced["dec"] = dec0[forced["object"]]

    _assign_history_ids(history, forced, epochs, detector, n_obj, sources, src)
    history["diaObjectId"] = forced["objectIdOf"][history["object"]]
    forced["diaObjectId"] = forced["objectIdOf"][forced["object"]]
    sources["diaObjectId"] = np.zeros(len(sources["x"]), np.int64)
    sources["diaObjectId"][src] = forced["objectIdOf"]
    sources["is_new_object"] = np.zeros(len(sources["x"]), bool)
    sources["is_new_object"][src] = is_new
    return history, forced


def _ragged_pairs(chosen: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(object, epoch) pairs taking the first ``counts[i]`` entries of row ``i``."""
    if chosen.shape[1] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    keep = np.arange(chosen.shape[1])[None, :] < np.asarray(counts)[:, None]
    rows = np.broadcast_to(np.arange(chosen.shape[0])[:, None], chosen.shape)
    return rows[keep].astype(np.int64), chosen[keep].astype(np.int64)


def _past_flux_errors(band: np.ndarray, seeing: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """PSF flux errors [nJy] at past visits of the given bands and seeing."""
    gain = np.array([_NJY_PER_ELECTRON[b] for b in BANDS])
    sky = 10 ** ((31.4 - np.array([_SKY_MAG[b] for b in BANDS])) / 2.5) * PIXEL_SCALE_ARCSEC**2
    band_index = np.searchsorted(np.array(BANDS), band, sorter=np.argsort(BANDS))
    band_index = np.argsort(BANDS)[band_index]
    var = gain[band_index] * sky[band_index] + (_READ_NOISE_E * gain[band_index]) ** 2
    var *= 1.05  # template noise
    # Effective area of a Moffat PSF grows as the seeing squared.
    sum2_ref, _ = _psf_sums(0.8)
    sum2 = sum2_ref * (0.8 / seeing) ** 2
    return np.sqrt(var / sum2 + gain[band_index] * flux)


def _assign_history_ids(
    history: dict[str, np.ndarray],
    forced: dict[str, np.ndarray],
    epochs: dict[str, np.ndarray],
    detector: int,
    n_obj: int,
    sources: dict[str, np.ndarray],
    src: np.ndarray,
) -> None:
    """Packed ids: detections first, then forced rows, numbered within each ccdVisit."""
    det_ccd = ccd_visit_id(history["visit"], history["detector"])
    forced_ccd = ccd_visit_id(forced["visit"], forced["detector"])
    history["ccdVisitId"] = det_ccd
    forced["ccdVisitId"] = forced_ccd
    history["diaSourceId"] = pack_source_ids(det_ccd, 1 + _rank_within(det_ccd))
    n_det_in = _count_in(det_ccd, forced_ccd)
    # The current visit's numbers 1..n_sources are taken by the new DiaSources.
    n_det_in = np.where(forced["epoch"] < 0, len(sources["x"]), n_det_in)
    forced["diaForcedSourceId"] = pack_source_ids(
        forced_ccd, 1 + n_det_in + _rank_within(forced_ccd)
    )
    # A DiaObject's id is the id of its first DiaSource.
    first_id = sources["diaSourceId"][src].copy()
    first_mjd = np.full(n_obj, np.inf)
    order = np.lexsort((history["midpointMjdTai"], history["object"]))
    obj_sorted = history["object"][order]
    starts = (np.flatnonzero(np.r_[True, obj_sorted[1:] != obj_sorted[:-1]]) if len(order)
              else np.zeros(0, np.intp))
    first_rows = order[starts]
    first_id[history["object"][first_rows]] = history["diaSourceId"][first_rows]
    first_mjd[history["object"][first_rows]] = history["midpointMjdTai"][first_rows]
    forced["objectIdOf"] = first_id


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """0-based position of each element among the elements of its group."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.r_[True, sorted_groups[1:] != sorted_groups[:-1]] if len(groups) else np.zeros(0)
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(groups)), 0))
    rank = np.empty(len(groups), np.int64)
    rank[order] = np.arange(len(groups)) - group_start
    return rank


def _count_in(groups: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """How many elements of ``groups`` equal each query."""
    values, counts = np.unique(groups, return_counts=True)
    if len(values) == 0:
        return np.zeros(len(queries), np.int64)
    pos = np.clip(np.searchsorted(values, queries), 0, len(values) - 1)
    return np.where(values[pos] == queries, counts[pos], 0)
