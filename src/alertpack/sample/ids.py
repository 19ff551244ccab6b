"""Ids and times of the sample: ccdVisitIds, packed source ids, visit numbers.

Conventions
-----------
Ids
    ``ccdVisitId = visit * 256 + detector`` (LSSTCam has fewer than 256
    detectors, so the detector occupies the low 8 bits) and every DiaSource
    and DiaForcedSource id packs the ccdVisitId of the image it was measured
    on in its top ``CCD_EXPOSURE_ID_BITS = 50`` bits::

        diaSourceId = (ccdVisitId << 14) | counter      # counter in [1, 16383]
        ccdVisitId = diaSourceId >> (64 - 50)

    A visit number is ``YYYYMMDDnnnnn`` (day of observation and sequence
    number, as Rubin numbers exposures), about 2.0e12, so ``ccdVisitId``
    needs 49 bits; 50 bits keep the sign bit clear and every id a positive
    int64. A DiaObject's id is the id of its first DiaSource, as in the LSST
    pipelines. Solar-system DiaSources are not associated with a DiaObject:
    their ``diaObjectId`` is null, they carry an ``ssObjectId`` instead,
    which packs the ASCII bytes of the packed MPC designation (7 characters,
    56 bits).
Times
    A visit number implies its exposure midpoint: exposures of a night start
    about 23:30 UTC of the day of observation and follow each other every
    ~40 s (`visit_midpoint_mjd`).
"""

from __future__ import annotations

from typing import overload

import numpy as np
import numpy.typing as npt

from alertpack.errors import InputError

CCD_EXPOSURE_ID_BITS = 50
DETECTOR_FACTOR = 256
N_SCIENCE_DETECTORS = 189
_COUNTER_BITS = 64 - CCD_EXPOSURE_ID_BITS
_MAX_COUNTER = (1 << _COUNTER_BITS) - 1
_MJD_UNIX_EPOCH = 40587.0


@overload
def ccd_visit_id(visit: int, detector: int) -> np.int64: ...
@overload
def ccd_visit_id(
    visit: npt.NDArray[np.integer], detector: int | npt.NDArray[np.integer]
) -> npt.NDArray[np.int64]: ...
@overload
def ccd_visit_id(
    visit: int | npt.NDArray[np.integer], detector: npt.NDArray[np.integer]
) -> npt.NDArray[np.int64]: ...
def ccd_visit_id(
    visit: int | npt.NDArray[np.integer], detector: int | npt.NDArray[np.integer]
) -> np.int64 | npt.NDArray[np.int64]:
    """The ccdVisitId of a (visit, detector): ``visit * 256 + detector``."""
    return np.asarray(visit, dtype=np.int64) * DETECTOR_FACTOR + np.asarray(detector, np.int64)


def pack_source_ids(ccd_visit_ids: np.ndarray, counters: np.ndarray) -> np.ndarray:
    """Pack ccdVisitIds into the top `CCD_EXPOSURE_ID_BITS` bits of int64 source ids.

    Parameters
    ----------
    ccd_visit_ids : `numpy.ndarray`
        ccdVisitId of the image each source was measured on; must be below
        ``2**(CCD_EXPOSURE_ID_BITS - 1)``.
    counters : `numpy.ndarray`
        Number of each source within its ccdVisit, in ``[0, 2**14)``.

    Returns
    -------
    ids : `numpy.ndarray` [int64]
    """
    ccd_visit_ids = np.asarray(ccd_visit_ids, dtype=np.int64)
    counters = np.asarray(counters, dtype=np.int64)
    if np.any(counters < 0) or np.any(counters > _MAX_COUNTER):
        raise InputError(
            f"source counter out of range [0, {_MAX_COUNTER}]: at most {_MAX_COUNTER} sources "
            f"fit in one ccdVisit with ccdExposureIdBits={CCD_EXPOSURE_ID_BITS}; "
            "ask for fewer sources per detector"
        )
    if np.any(ccd_visit_ids < 0) or np.any(ccd_visit_ids >= 1 << (CCD_EXPOSURE_ID_BITS - 1)):
        raise InputError(
            f"ccdVisitId does not fit in {CCD_EXPOSURE_ID_BITS - 1} bits; use a visit number "
            "of the form YYYYMMDDnnnnn (below 2.2e12)"
        )
    return (ccd_visit_ids << _COUNTER_BITS) | counters


def ccd_visit_id_of(source_ids: np.ndarray) -> np.ndarray:
    """Invert `pack_source_ids`: the ccdVisitId packed in each source id."""
    return np.asarray(source_ids, dtype=np.int64) >> _COUNTER_BITS


def _day_obs_mjd(day_obs: np.ndarray) -> np.ndarray:
    """MJD at 00:00 UTC of YYYYMMDD integers."""
    day_obs = np.asarray(day_obs, dtype=np.int64)
    text = np.char.mod("%08d", day_obs)
    dates = np.array(
        [f"{t[:4]}-{t[4:6]}-{t[6:]}" for t in np.atleast_1d(text)], dtype="datetime64[D]"
    )
    return (dates - np.datetime64("1858-11-17", "D")).astype(np.float64).reshape(day_obs.shape)


def _mjd_day_obs(mjd_midnight: np.ndarray) -> np.ndarray:
    """YYYYMMDD integers of MJDs at 00:00 UTC (vectorized calendar conversion)."""
    days = np.asarray(mjd_midnight, dtype=np.int64) - int(_MJD_UNIX_EPOCH)
    dates = days.astype("datetime64[D]")
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    return years * 10000 + months * 100 + day


# Exposures of a night start about 23:30 UTC of the day of observation (dusk in
# Chile) and follow each other every ~40 s.
_NIGHT_START_DAYS = 0.98
_EXPOSURE_CADENCE_DAYS = 40.0 / 86400.0


@overload
def visit_midpoint_mjd(visit: int) -> float: ...
@overload
def visit_midpoint_mjd(visit: npt.NDArray[np.integer]) -> npt.NDArray[np.float64]: ...
def visit_midpoint_mjd(visit: int | npt.NDArray[np.integer]) -> float | npt.NDArray[np.float64]:
    """Exposure midpoint (MJD TAI) implied by a visit number ``YYYYMMDDnnnnn``.

    Raises
    ------
    InputError
        If the visit number does not start with a valid date.
    """
    visit_arr = np.asarray(visit, dtype=np.int64)
    day_obs = visit_arr // 100000
    sequence = visit_arr % 100000
    if np.any(day_obs < 19700101) or np.any(day_obs > 21991231):
        raise InputError(
            f"visit {visit} is not of the form YYYYMMDDnnnnn (day of observation + sequence "
            "number, e.g. 2026112500123); the sample derives the observation time from it"
        )
    try:
        midnight = _day_obs_mjd(day_obs)
    except ValueError as error:
        raise InputError(
            f"visit {visit} does not start with a valid date YYYYMMDD: {error}"
        ) from None
    mjd = midnight + _NIGHT_START_DAYS + sequence * _EXPOSURE_CADENCE_DAYS
    return float(mjd) if np.ndim(mjd) == 0 else mjd


def _visit_numbers(mjd_midnight: np.ndarray, sequence: np.ndarray) -> np.ndarray:
    return _mjd_day_obs(mjd_midnight) * 100000 + np.asarray(sequence, dtype=np.int64)


def _mjd_to_unix_micros(mjd: np.ndarray) -> np.ndarray:
    return np.round((np.asarray(mjd) - _MJD_UNIX_EPOCH) * 86400e6).astype(np.int64)
