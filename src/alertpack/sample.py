"""A built-in, deterministic, realistic Rubin visit: catalogs and images.

`make_visit` simulates one detector of one visit: everything that
``PackageAlertsTask.run`` consumes (new DiaSources, their DiaObjects, the
previous DiaSources and forced photometry of those objects, solar-system rows)
plus the difference, science and template images. The same arguments always
give identical catalogs and pixels. It is the project's demo input and the
input of its tests and benchmarks.

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
Catalog layout
    ``index_layout="multi"`` (default) indexes DiaSources on
    ``["diaObjectId", <band>, "diaSourceId"]``, forced sources on
    ``["diaObjectId", "diaForcedSourceId"]`` and DiaObjects on
    ``"diaObjectId"``, keeping those as columns too (``drop=False``, as the
    LSST DiaPipelineTask does), so every schema field is a column in either
    layout. ``index_layout="columns"`` gives a plain RangeIndex.
dtypes
    Avro ``long`` int64, ``int`` int32, ``float`` float32, ``double``
    float64, ``boolean`` bool, ``string`` str. A nullable integer column
    that holds nulls uses the pandas masked dtype (``Int64``/``Int32``);
    nulls of floats are NaN, of strings missing values. A
    ``timestamp-micros`` long is int64 microseconds since 1970-01-01 UTC.
Time window
    History rows lie within the last 365 days of the visit, except a few
    (``OLD_HISTORY_DAYS``) older than that, which a packager must drop.
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
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.errors import InputError
from alertpack.packaging import VISIT_FILES, VISIT_INFO_FILE
from alertpack.sinks.files import atomic_output

if TYPE_CHECKING:
    import pandas as pd
    from astropy.nddata import CCDData
    from astropy.wcs import WCS

__all__ = [
    "BANDS",
    "CCD_EXPOSURE_ID_BITS",
    "MASK_PLANES",
    "PIXEL_SCALE_ARCSEC",
    "SampleVisit",
    "ccd_visit_id",
    "ccd_visit_id_of",
    "make_visit",
    "make_visits",
    "pack_source_ids",
    "read_visit",
    "visit_midpoint_mjd",
    "write_visit",
]

BANDS = ("u", "g", "r", "i", "z", "y")
PIXEL_SCALE_ARCSEC = 0.2
CCD_EXPOSURE_ID_BITS = 50
DETECTOR_FACTOR = 256
N_SCIENCE_DETECTORS = 189
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
HISTORY_WINDOW_DAYS = 365.0
OLD_HISTORY_DAYS = (365.0, 730.0)
EXPOSURE_TIME_S = 30.0
DEFAULT_BORESIGHT_DEG = (150.0, 2.0)
_COUNTER_BITS = 64 - CCD_EXPOSURE_ID_BITS
_MAX_COUNTER = (1 << _COUNTER_BITS) - 1
_MJD_UNIX_EPOCH = 40587.0
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
_EDGE_BORDER_PX = 6
_NO_DATA_CORNER_PX = (48, 32)
_GAUSS_MU = 0.01720209895  # Gaussian gravitational constant [au**1.5 / day]
_OBLIQUITY_DEG = 23.439281
# ICRS -> Galactic rotation matrix (Hipparcos definition).
_ICRS_TO_GALACTIC = np.array(
    [
        [-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
        [0.4941094278755837, -0.4448296299600112, 0.7469822444972189],
        [-0.8676661490190047, -0.1980763734312015, 0.4559837761750669],
    ]
)


# --------------------------------------------------------------------------
# Ids and times
# --------------------------------------------------------------------------


def ccd_visit_id(visit: int | np.ndarray, detector: int | np.ndarray) -> int | np.ndarray:
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


def visit_midpoint_mjd(visit: int | np.ndarray) -> float | np.ndarray:
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


# --------------------------------------------------------------------------
# The sample
# --------------------------------------------------------------------------


@dataclass
class SampleVisit:
    """One simulated detector-visit: the inputs of ``PackageAlertsTask.run``.

    Attributes
    ----------
    diaSourceCat : `pandas.DataFrame`
        New DiaSources of this visit (see the module docstring for the index).
    diaObjectCat : `pandas.DataFrame`
        DiaObjects of those sources (solar-system sources have none).
    diaSrcHistory : `pandas.DataFrame`
        Previous DiaSources of those objects, same layout as ``diaSourceCat``.
    diaForcedSources : `pandas.DataFrame`
        Forced photometry of the objects at previous visits and this one,
        indexed on ``["diaObjectId", "diaForcedSourceId"]``.
    ssSource : `pandas.DataFrame`
        One row per solar-system DiaSource (schema record ``ssSource``; for
        versions before 8.0, which have none, the ``diaSourceId`` and
        ``ssObjectId`` link only).
    mpc_orbits : `pandas.DataFrame`
        One orbit row per asteroid: record ``mpc_orbits`` (10.0+), ``MPCORB``
        (8.x-9.x) or ``ssObject`` (3.0-7.x), keyed by designation/ssObjectId.
    difference, template, science : `astropy.nddata.CCDData`
        The images, in nJy.
    ccdExposureIdBits : `int`
        Bits of a source id holding the ccdVisitId.
    ccdVisitId, visit, detector : `int`
    band : `str`
        Filter band of the visit.
    midpointMjdTai : `float`
        Exposure midpoint.
    schema_version : `str`
        Alert schema version whose fields the catalogs carry.
    index_layout : `str`
        ``"multi"`` or ``"columns"``.
    """

    diaSourceCat: pd.DataFrame
    diaObjectCat: pd.DataFrame
    diaSrcHistory: pd.DataFrame
    diaForcedSources: pd.DataFrame
    ssSource: pd.DataFrame
    mpc_orbits: pd.DataFrame
    difference: CCDData
    template: CCDData
    science: CCDData
    ccdExposureIdBits: int
    ccdVisitId: int
    visit: int
    detector: int
    band: str = "r"
    midpointMjdTai: float = 0.0
    schema_version: str = ""
    index_layout: str = "multi"
    extra: dict[str, Any] = field(default_factory=dict)

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `alertpack.task.PackageAlertsTask.run`.

        The catalogs and images themselves, not copies: ``diaSourceCat``,
        ``diaObjectCat``, ``diaSrcHistory``, ``diffIm``, ``template``,
        ``ccdExposureIdBits``, ``science``, ``diaForcedSources``,
        ``ssSource`` and ``mpc_orbits``.
        """
        return {
            "diaSourceCat": self.diaSourceCat,
            "diaObjectCat": self.diaObjectCat,
            "diaSrcHistory": self.diaSrcHistory,
            "diffIm": self.difference,
            "template": self.template,
            "ccdExposureIdBits": self.ccdExposureIdBits,
            "science": self.science,
            "diaForcedSources": self.diaForcedSources,
            "ssSource": self.ssSource,
            "mpc_orbits": self.mpc_orbits,
        }


def make_visit(
    n_sources: int = 60,
    image_shape: tuple[int, int] = (4000, 4072),
    *,
    seed: int = 0,
    visit: int = 2026112500123,
    detector: int = 42,
    n_history: int = 20,
    n_forced: int = 20,
    n_edge: int = 3,
    n_asteroids: int = 1,
    index_layout: str = "multi",
    schema_version: str | None = None,
    boresight: tuple[float, float] = DEFAULT_BORESIGHT_DEG,
) -> SampleVisit:
    """Simulate one detector of one Rubin visit, deterministically.

    Parameters
    ----------
    n_sources : `int`
        Number of new DiaSources, including ``n_edge`` near the image edges
        and ``n_asteroids`` solar-system sources.
    image_shape : `tuple` [`int`, `int`]
        ``(ny, nx)``: numpy shape of the images, rows then columns. The
        default is one LSSTCam science detector (4072 x 4000 pixels).
    seed : `int`
        Random seed; the same arguments always give the same visit.
    visit : `int`
        Visit number ``YYYYMMDDnnnnn``; sets the observation time.
    detector : `int`
        LSSTCam science detector, 0-188; sets the field position on the
        focal plane.
    n_history : `int`
        Previous DiaSources per (non-new) DiaObject within the last 365 days.
    n_forced : `int`
        Previous forced measurements per (non-new) DiaObject within the last
        365 days; every DiaObject also has one at this visit.
    n_edge : `int`
        DiaSources whose centroid lies within a few pixels of an edge (the
        first one at a corner).
    n_asteroids : `int`
        Solar-system DiaSources, each with an ``ssSource`` and an orbit row.
    index_layout : {"multi", "columns"}
        Catalog index layout (see the module docstring).
    schema_version : `str`, optional
        Alert schema whose fields to fill (default: the latest shipped).
    boresight : `tuple` [`float`, `float`]
        Pointing (RA, Dec) of the focal plane center, degrees.

    Returns
    -------
    visit : `SampleVisit`
    """
    from alertpack.schema import load_schema

    ny, nx = _check_arguments(
        n_sources, image_shape, detector, n_history, n_forced, n_edge, n_asteroids, index_layout
    )
    schema = load_schema(schema_version)
    midpoint = visit_midpoint_mjd(visit)
    visit_rng = np.random.default_rng([seed, visit, 1])
    det_rng = np.random.default_rng([seed, visit, detector, 2])
    pixel_rng = np.random.default_rng([seed, visit, detector, 3])

    conditions = _visit_conditions(visit_rng)
    wcs = _detector_wcs(nx, ny, detector, boresight, conditions["rotation_deg"], det_rng)
    epochs = _past_epochs(visit_rng, midpoint, max(n_history, n_forced))
    scene = _static_scene(det_rng, nx, ny, conditions["band"])
    sources = _new_sources(det_rng, scene, nx, ny, n_sources, n_edge, n_asteroids, conditions)
    _place_on_sky(sources, wcs)

    ccd_id = int(ccd_visit_id(visit, detector))
    sources["visit"] = np.full(n_sources, visit, np.int64)
    sources["detector"] = np.full(n_sources, detector, np.int32)
    sources["ccdVisitId"] = np.full(n_sources, ccd_id, np.int64)
    sources["diaSourceId"] = pack_source_ids(sources["ccdVisitId"], np.arange(1, n_sources + 1))
    sources["midpointMjdTai"] = np.full(n_sources, midpoint)

    images = _render_images(pixel_rng, scene, sources, wcs, nx, ny, conditions)
    _measure_new_sources(det_rng, sources, images, conditions)

    history, forced = _object_histories(
        det_rng, sources, epochs, detector, n_history, n_forced, midpoint, conditions
    )
    objects = _aggregate_objects(sources, history, forced, midpoint)
    asteroids = _asteroids(det_rng, sources, midpoint, conditions["band"])

    tables = _fill_tables(schema, sources, history, forced, objects, asteroids, det_rng)
    tables = _apply_layout(tables, schema, index_layout)
    return SampleVisit(
        diaSourceCat=tables["diaSource"],
        diaObjectCat=tables["diaObject"],
        diaSrcHistory=tables["history"],
        diaForcedSources=tables["forced"],
        ssSource=tables["ssSource"],
        mpc_orbits=tables["orbits"],
        difference=images["difference"],
        template=images["template"],
        science=images["science"],
        ccdExposureIdBits=CCD_EXPOSURE_ID_BITS,
        ccdVisitId=ccd_id,
        visit=int(visit),
        detector=int(detector),
        band=conditions["band"],
        midpointMjdTai=midpoint,
        schema_version=str(schema.version),
        index_layout=index_layout,
    )


def make_visits(
    n_detectors: int,
    sources_per_detector: int = 60,
    *,
    first_detector: int = 0,
    **kwargs: Any,
) -> Iterator[SampleVisit]:
    """Lazily simulate several detectors of the same visit (a focal plane).

    Parameters
    ----------
    n_detectors : `int`
        Number of detectors, ``first_detector`` .. ``first_detector +
        n_detectors - 1`` (at most the 189 LSSTCam science detectors).
    sources_per_detector : `int`
        ``n_sources`` of each detector.
    first_detector : `int`
        First detector number.
    **kwargs
        Other `make_visit` arguments (``seed``, ``visit``, ``image_shape``, ...).

    Yields
    ------
    visit : `SampleVisit`
        One per detector; all ids differ between detectors (the previous
        visits of neighbouring detectors fell on different detectors).
    """
    if "detector" in kwargs:
        raise InputError("make_visits chooses the detectors; pass first_detector instead")
    last = first_detector + n_detectors
    if n_detectors < 0 or first_detector < 0 or last > N_SCIENCE_DETECTORS:
        raise InputError(
            f"detectors {first_detector}..{last - 1} are not all LSSTCam science detectors "
            f"(0..{N_SCIENCE_DETECTORS - 1}); choose at most {N_SCIENCE_DETECTORS} detectors"
        )
    for detector in range(first_detector, last):
        yield make_visit(sources_per_detector, detector=detector, **kwargs)


def _check_arguments(
    n_sources: int,
    image_shape: tuple[int, int],
    detector: int,
    n_history: int,
    n_forced: int,
    n_edge: int,
    n_asteroids: int,
    index_layout: str,
) -> tuple[int, int]:
    try:
        ny, nx = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise InputError(
            f"image_shape {image_shape!r} must be two integers (rows, columns) in pixels"
        ) from None
    if nx < 64 or ny < 64:
        raise InputError(f"image_shape {image_shape!r} is too small: use at least 64x64 pixels")
    if not 0 <= detector < N_SCIENCE_DETECTORS:
        raise InputError(
            f"detector {detector} is not an LSSTCam science detector (0..{N_SCIENCE_DETECTORS - 1})"
        )
    for name, value in [("n_history", n_history), ("n_forced", n_forced), ("n_edge", n_edge),
                        ("n_asteroids", n_asteroids)]:
        if value < 0:
            raise InputError(f"{name}={value} must not be negative")
    if n_sources < 1 or n_edge + n_asteroids > n_sources:
        raise InputError(
            f"n_sources={n_sources} must be at least 1 and at least n_edge + n_asteroids "
            f"({n_edge} + {n_asteroids})"
        )
    # Each past ccdVisit holds a detection and a forced row per object.
    if 2 * n_sources + 2 > _MAX_COUNTER:
        raise InputError(
            f"n_sources={n_sources} is too many for one detector: at most "
            f"{(_MAX_COUNTER - 2) // 2} fit in the {_COUNTER_BITS}-bit source counter"
        )
    if index_layout not in ("multi", "columns"):
        raise InputError(f"index_layout={index_layout!r}: choose 'multi' or 'columns'")
    return ny, nx


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


# Kinds of new DiaSources.
_POSITIVE, _NEGATIVE, _DIPOLE, _ASTEROID = 0, 1, 2, 3


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


# --------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------


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
    from astropy.nddata import CCDData

    class BitMaskCCDData(CCDData):
        """`~astropy.nddata.CCDData` whose mask may be an integer bit mask.

        ``CCDData`` turns every mask into booleans, losing the LSST mask
        planes; this subclass keeps integer masks as they are (bool masks
        behave as in ``CCDData``). Plane names are in ``meta`` as
        ``MP_<NAME> = bit``. ``CCDData.write`` stores masks as uint8: write
        with `write_visit` / `exposure_hdulist` to keep all planes.
        """

        @property
        def mask(self) -> np.ndarray | None:
            return None if self._mask is np.ma.nomask else self._mask

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

    BitMaskCCDData.__module__ = __name__
    BitMaskCCDData.__qualname__ = "BitMaskCCDData"
    return BitMaskCCDData


def __getattr__(name: str) -> Any:
    # BitMaskCCDData is built on first use so that importing alertpack.sample
    # does not import astropy; pickle finds it here by name.
    if name == "BitMaskCCDData":
        return _bitmask_ccddata_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _ccd(
    image: np.ndarray,
    variance: np.ndarray,
    mask: np.ndarray,
    wcs: WCS,
    fwhm_arcsec: float,
    meta_common: dict[str, Any],
) -> CCDData:
    import astropy.units as u
    from astropy.nddata import VarianceUncertainty

    meta = {f"MP_{name}": bit for name, bit in MASK_PLANES.items()}
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


# --------------------------------------------------------------------------
# Measurements of the new sources
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# History: previous visits, detections and forced photometry
# --------------------------------------------------------------------------


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
    starts = np.flatnonzero(np.r_[True, obj_sorted[1:] != obj_sorted[:-1]]) if len(order) else []
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


# --------------------------------------------------------------------------
# DiaObjects: aggregates of the detections and forced photometry
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Asteroids
# --------------------------------------------------------------------------


def _unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _equatorial_to_ecliptic(vectors: np.ndarray) -> np.ndarray:
    eps = np.deg2rad(_OBLIQUITY_DEG)
    rotation = np.array([[1, 0, 0], [0, np.cos(eps), np.sin(eps)], [0, -np.sin(eps), np.cos(eps)]])
    return vectors @ rotation.T


def _lonlat_deg(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon = np.rad2deg(np.arctan2(vectors[..., 1], vectors[..., 0])) % 360.0
    lat = np.rad2deg(np.arcsin(np.clip(vectors[..., 2], -1, 1)))
    return lon, lat


def _sun_geocentric_equatorial(mjd: float) -> np.ndarray:
    """Unit vector to the Sun (low-precision solar ephemeris, ~0.01 deg)."""
    d = mjd - 51544.5
    mean_anomaly = np.deg2rad((357.529 + 0.98560028 * d) % 360.0)
    longitude = np.deg2rad(
        (280.459 + 0.98564736 * d + 1.915 * np.sin(mean_anomaly)
         + 0.020 * np.sin(2 * mean_anomaly)) % 360.0
    )
    eps = np.deg2rad(_OBLIQUITY_DEG)
    return np.array(
        [np.cos(longitude), np.cos(eps) * np.sin(longitude), np.sin(eps) * np.sin(longitude)]
    )


_DESIGNATION_HALF_MONTHS = "ABCDEFGHJKLMNOPQRSTUVWXY"
_DESIGNATION_ORDER = "ABCDEFGHJKLMNOPQRSTUVWXYZ"


def _pack_designation(year: int, half_month: str, order_letter: str, cycle: int) -> str:
    """MPC packed provisional designation, e.g. (2019, 'Q', 'B', 12) -> 'K19Q12B'."""
    century = "IJK"[year // 100 - 18]
    if cycle < 100:
        cycle_text = f"{cycle:02d}"
    else:
        tens, units = divmod(cycle, 10)
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        cycle_text = letters[tens - 10] + str(units)
    return f"{century}{year % 100:02d}{half_month}{cycle_text}{order_letter}"


_V_MINUS_BAND = {"u": -1.4, "g": -0.35, "r": 0.2, "i": 0.35, "z": 0.4, "y": 0.45}


def _asteroids(
    rng: np.random.Generator, sources: dict[str, np.ndarray], midpoint: float, band: str
) -> dict[str, np.ndarray]:
    """Geometry and orbits of the solar-system sources, physically consistent."""
    rows = np.flatnonzero(sources["kind"] == _ASTEROID)
    n = len(rows)
    year = rng.integers(2005, 2025, n)
    half = rng.integers(0, len(_DESIGNATION_HALF_MONTHS), n)
    order = rng.integers(0, len(_DESIGNATION_ORDER), n)
    cycle = rng.integers(0, 250, n)
    unpacked = [
        f"{y} {_DESIGNATION_HALF_MONTHS[h]}{_DESIGNATION_ORDER[o]}{c if c else ''}"
        for y, h, o, c in zip(year, half, order, cycle, strict=True)
    ]
    packed = [
        _pack_designation(int(y), _DESIGNATION_HALF_MONTHS[h], _DESIGNATION_ORDER[o], int(c))
        for y, h, o, c in zip(year, half, order, cycle, strict=True)
    ]
    ss_object_id = np.array(
        [int.from_bytes(p.encode("ascii").ljust(8, b"\0"), "big") >> 8 for p in packed],
        dtype=np.int64,
    )

    a = rng.uniform(2.2, 3.3, n)
    e = rng.uniform(0.02, 0.25, n)
    incl = np.abs(rng.normal(0, 8, n))
    direction = _unit_vectors(sources["ra"][rows], sources["dec"][rows])
    sun = _sun_geocentric_equatorial(midpoint)
    earth_helio = -sun
    cos_elong = direction @ sun
    elongation = np.rad2deg(np.arccos(np.clip(cos_elong, -1, 1)))
    # Heliocentric distance along the orbit, then the topocentric distance
    # from the Sun-Earth-asteroid triangle.
    r = a * (1 - e * np.cos(rng.uniform(0, 2 * np.pi, n)))
    r = np.maximum(r, 1.0 + 1e-3)
    sin_e = np.sqrt(1 - cos_elong**2)
    delta = cos_elong + np.sqrt(r**2 - sin_e**2)
    helio = earth_helio[None, :] + delta[:, None] * direction
    r = np.linalg.norm(helio, axis=1)
    phase = np.rad2deg(np.arcsin(np.clip(sin_e / r, -1, 1)))
    # Speed from the vis-viva equation, prograde in the ecliptic plane.
    speed = _GAUSS_MU * np.sqrt(2.0 / r - 1.0 / a)
    pole = _unit_vectors(np.full(n, 270.0), np.full(n, 90.0 - _OBLIQUITY_DEG))
    along = np.cross(pole, helio / r[:, None])
    along /= np.linalg.norm(along, axis=1)[:, None]
    helio_v = speed[:, None] * along
    earth_v = _GAUSS_MU * np.cross(pole[:1], earth_helio[None, :])[0]
    topo = helio - earth_helio[None, :]
    topo_v = helio_v - earth_v[None, :]
    range_rate = np.sum(topo_v * direction, axis=1)
    helio_rate = np.sum(helio_v * helio, axis=1) / r
    tangential = topo_v - range_rate[:, None] * direction
    rate_deg_day = np.rad2deg(np.linalg.norm(tangential, axis=1) / delta)
    east = np.stack([-np.sin(np.deg2rad(sources["ra"][rows])),
                     np.cos(np.deg2rad(sources["ra"][rows])), np.zeros(n)], axis=1)
    north = np.cross(direction, east)
    rate_ra = np.rad2deg(np.sum(tangential * east, axis=1) / delta)
    rate_dec = np.rad2deg(np.sum(tangential * north, axis=1) / delta)

    # The H magnitude is the one that makes the predicted V magnitude match
    # the detected flux (H, G photometric system; V - band colour of an S type).
    g_slope = np.full(n, 0.15)
    phase_rad = np.deg2rad(phase)
    phi1 = np.exp(-3.33 * np.tan(phase_rad / 2) ** 0.63)
    phi2 = np.exp(-1.87 * np.tan(phase_rad / 2) ** 1.22)
    observed_mag = -2.5 * np.log10(np.abs(sources["true_flux"][rows]) / _AB_ZERO_NJY)
    v_mag = observed_mag + _V_MINUS_BAND[band]
    h_mag = v_mag - 5 * np.log10(r * delta) + 2.5 * np.log10(
        (1 - g_slope) * phi1 + g_slope * phi2
    )
    offset_arcsec = np.abs(rng.normal(0, 0.3, n))
    offset_angle = rng.uniform(0, 2 * np.pi, n)
    offset_ra = offset_arcsec * np.cos(offset_angle)
    offset_dec = offset_arcsec * np.sin(offset_angle)
    ecl_lon, ecl_lat = _lonlat_deg(_equatorial_to_ecliptic(direction))
    gal_lon, gal_lat = _lonlat_deg(direction @ _ICRS_TO_GALACTIC.T)
    period = 365.25 * a**1.5
    mean_anomaly = rng.uniform(0, 360, n)
    epoch = np.full(n, np.floor(midpoint / 100.0) * 100.0)
    return {
        "rows": rows,
        "diaSourceId": sources["diaSourceId"][rows],
        "ssObjectId": ss_object_id,
        "designation": np.array(unpacked, dtype=object),
        "packed": np.array(packed, dtype=object),
        "eclLambda": ecl_lon, "eclBeta": ecl_lat, "galLon": gal_lon, "galLat": gal_lat,
        "elongation": elongation, "phaseAngle": phase,
        "topoRange": delta, "topoRangeRate": range_rate,
        "helioRange": r, "helioRangeRate": helio_rate,
        "ephRa": (sources["ra"][rows] - offset_ra / 3600.0
                  / np.cos(np.deg2rad(sources["dec"][rows]))) % 360.0,
        "ephDec": sources["dec"][rows] - offset_dec / 3600.0,
        "ephVmag": v_mag, "ephRate": rate_deg_day, "ephRateRa": rate_ra,
        "ephRateDec": rate_dec, "ephOffset": offset_arcsec,
        "ephOffsetRa": offset_ra, "ephOffsetDec": offset_dec,
        "ephOffsetAlongTrack": offset_arcsec * np.cos(offset_angle - 0.3),
        "ephOffsetCrossTrack": offset_arcsec * np.sin(offset_angle - 0.3),
        "helio_x": helio[:, 0], "helio_y": helio[:, 1], "helio_z": helio[:, 2],
        "helio_vx": helio_v[:, 0], "helio_vy": helio_v[:, 1], "helio_vz": helio_v[:, 2],
        "helio_vtot": np.linalg.norm(helio_v, axis=1),
        "topo_x": topo[:, 0], "topo_y": topo[:, 1], "topo_z": topo[:, 2],
        "topo_vx": topo_v[:, 0], "topo_vy": topo_v[:, 1], "topo_vz": topo_v[:, 2],
        "topo_vtot": np.linalg.norm(topo_v, axis=1),
        "diaDistanceRank": np.ones(n, np.int64),
        # Orbit.
        "a": a, "e": e, "i": incl, "q": a * (1 - e),
        "node": rng.uniform(0, 360, n), "argperi": rng.uniform(0, 360, n),
        "mean_anomaly": mean_anomaly, "period": period, "mean_motion": 360.0 / period,
        "peri_time": (360.0 - mean_anomaly) / (360.0 / period),
        "epoch_mjd": epoch, "h": h_mag, "g": g_slope,
        "arc_length_total": rng.uniform(800, 7000, n),
        "nobs_total": rng.integers(40, 900, n), "nopp": rng.integers(3, 15, n),
        "orbit_type_int": np.full(n, 11), "u_param": rng.integers(0, 4, n),
        "not_normalized_rms": rng.uniform(0.2, 0.6, n),
        "normalized_rms": rng.uniform(0.4, 0.9, n),
        "earth_moid": np.maximum(a * (1 - e) - 1.0, 0.01),
        "trail_rate_deg_day": rate_deg_day,
    }


# --------------------------------------------------------------------------
# Filling schema records
# --------------------------------------------------------------------------


def _avro_type(avro: Any) -> tuple[str, bool, str | None]:
    """(base type, nullable, logical type) of a flat Avro field type."""
    nullable = False
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        nullable = len(branches) < len(avro)
        avro = branches[0]
    if isinstance(avro, dict):
        return avro["type"], nullable, avro.get("logicalType")
    return avro, nullable, None


_NUMPY_DTYPES = {
    "long": np.int64,
    "int": np.int32,
    "float": np.float32,
    "double": np.float64,
    "boolean": np.bool_,
}

# Old schema names -> current names (only where the name itself changed).
_RENAMES = {
    "midPointTai": "midpointMjdTai",
    "filterName": "band",
    "totFlux": "scienceFlux",
    "totFluxErr": "scienceFluxErr",
    "diffFlux": "psfFlux",
    "diffFluxErr": "psfFluxErr",
    "is_negative": "isNegative",
    "time_processed": "timeProcessedMjdTai",
    "radecTai": "midpointMjdTai",
    "radecMjdTai": "midpointMjdTai",
    "eclipticLambda": "eclLambda",
    "eclipticBeta": "eclBeta",
    "galacticL": "galLon",
    "galacticB": "galLat",
    "heliocentricDist": "helioRange",
    "topocentricDist": "topoRange",
    "predictedVMagnitude": "ephVmag",
    "residualRa": "ephOffsetRa",
    "residualDec": "ephOffsetDec",
    "mpcDesignation": "designation",
    "mpcH": "h",
    "epoch": "epoch_mjd",
    "M": "mean_anomaly",
    "peri": "argperi",
    "incl": "i",
    "t_p": "peri_time",
    "lan": "node",
    "aop": "argperi",
}
_RENAME_PATTERNS = [
    (re.compile(r"decl"), "dec"),
    (re.compile(r"Decl"), "Dec"),
    (re.compile(r"^ps(?=[A-Z])"), "psf"),
    (re.compile(r"_ps(?=[A-Z])"), "_psf"),
    (re.compile(r"^dip(?=[A-Z])"), "dipole"),
    (re.compile(r"_dip(?=[A-Z])"), "_dipole"),
    (re.compile(r"^([ugrizy])PSFlux"), r"\1_psfFlux"),
    (re.compile(r"^([ugrizy])FPFlux"), r"\1_fpFlux"),
    (re.compile(r"^heliocentric(V?)([XYZ])$"), r"helio_\1\2"),
    (re.compile(r"^topocentric(V?)([XYZ])$"), r"topo_\1\2"),
]


def _current_name(name: str) -> str:
    """The current-schema name of an old field name (itself when unchanged)."""
    if name in _RENAMES:
        return _RENAMES[name]
    for pattern, replacement in _RENAME_PATTERNS:
        name = pattern.sub(replacement, name)
    if name.startswith(("helio_", "topo_")):
        name = name.lower()
    return name


class _Filler:
    """Fills one schema record's columns from known values or plausible draws.

    ``known`` maps current-schema names to arrays; names missing from it are
    drawn from the field's name and type (errors positive, covariances small,
    flags mostly False, positions near the row's ra/dec, times near its
    midpoint, ...), a few nullable ones partly null.
    """

    def __init__(self, known: dict[str, Any], n_rows: int, rng: np.random.Generator) -> None:
        self.known = known
        self.n = n_rows
        self.rng = rng

    def column(self, avro_field: dict[str, Any]) -> Any:
        import pandas as pd

        name = avro_field["name"]
        base, nullable, logical = _avro_type(avro_field["type"])
        current = _current_name(name)
        value = self.known.get(name, self.known.get(current))
        if value is None:
            value = self._draw(current, base, nullable)
        if callable(value):
            value = value()
        value = np.broadcast_to(np.asarray(value), (self.n,)) if np.ndim(value) == 0 else value
        if logical == "timestamp-micros":
            value = _as_micros(value)
        if base == "string":
            return pd.Series(np.asarray(value, dtype=object), dtype=_string_dtype())
        if base in ("long", "int"):
            return _integer_series(value, base, nullable, name)
        if base == "boolean":
            return pd.Series(np.asarray(value, dtype=bool))
        if base == "bytes":
            return pd.Series(np.asarray(value, dtype=object))
        array = np.asarray(value, dtype=np.float64)
        if not nullable and np.isnan(array).any():
            array = np.nan_to_num(array, nan=0.0)
        return pd.Series(array.astype(_NUMPY_DTYPES[base]))

    def _draw(self, name: str, base: str, nullable: bool) -> np.ndarray:
        n, rng = self.n, self.rng
        ra = self.known.get("ra")
        dec = self.known.get("dec")
        mjd = self.known.get("midpointMjdTai")
        flux = self.known.get("psfFlux")
        if base == "boolean":
            return rng.random(n) < 0.01
        if base == "string":
            return np.full(n, "", dtype=object)
        if base == "bytes":
            return np.full(n, b"", dtype=object)
        if base in ("long", "int"):
            if name.endswith("Id") or (name.startswith("nearbyObj") and name[-1].isdigit()):
                return (np.nan if nullable else np.zeros(n, np.int64))
            if name == "flags":
                return np.where(rng.random(n) < 0.05, 1 << rng.integers(0, 20, n), 0)
            if "Ndata" in name or name.startswith(("num", "n")):
                return rng.integers(5, 60, n)
            return rng.integers(0, 4, n)
        values = self._draw_float(name, ra, dec, mjd, flux)
        if nullable and not name.startswith(("ra", "dec")):
            values = np.where(rng.random(n) < 0.03, np.nan, values)
        return values

    def _draw_float(self, name, ra, dec, mjd, flux) -> np.ndarray:
        n, rng = self.n, self.rng
        low = name.lower()
        scale = np.abs(flux) if flux is not None else np.full(n, 1000.0)
        if "lcperiodic" in low or "lcnonperiodic" in low or "nearbyobj" in low:
            # Light-curve features and neighbours were never computed.
            return np.full(n, np.nan)
        if name.endswith("_Cov"):
            return rng.normal(0.0, 1e-3, n) * rng.random(n)
        if name.endswith(("Err", "Sigma", "_unc")) or "Err" in name:
            return np.abs(rng.normal(0.05, 0.02, n)) * (scale if "Flux" in name else 1.0) + 1e-6
        if "Chi2" in name:
            return rng.chisquare(30, n)
        if "LnL" in name:
            return -rng.chisquare(30, n) / 2
        if "Flux" in name or "flux" in low:
            return scale * rng.normal(1.0, 0.05, n)
        if name.endswith("Ra") and ra is not None:
            return (ra + rng.normal(0, 0.1, n) / 3600.0) % 360.0
        if name.endswith("Dec") and dec is not None:
            return dec + rng.normal(0, 0.1, n) / 3600.0
        if "Angle" in name or "Lon" in name:
            return rng.uniform(-90.0, 90.0, n)
        if "Length" in name or "Dist" in name:
            return np.abs(rng.normal(0.3, 0.2, n))
        if ("Mjd" in name or "Tai" in name or "Date" in name) and mjd is not None:
            return mjd - rng.uniform(0, 30, n)
        if name.startswith(("pm", "parallax")):
            return rng.normal(0.0, 2.0, n)
        if "H" in name and len(name) <= 4:
            return rng.uniform(14, 19, n)
        if "G" in name and len(name) <= 6:
            return np.full(n, 0.15)
        if "extendedness" in low or "reliability" in low or "spurious" in low:
            return rng.random(n)
        return rng.normal(0.0, 1.0, n)


def _string_dtype() -> Any:
    """pandas' default string dtype: ``str`` on pandas 3, object before."""
    import pandas as pd

    return pd.Series(["x"]).dtype


def _as_micros(value: Any) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    # MJD values become microseconds since 1970; unix micros pass through.
    with np.errstate(invalid="ignore"):
        is_mjd = np.nanmax(np.abs(array), initial=0.0) < 1e6
    if is_mjd:
        return np.where(np.isnan(array), np.nan, (array - _MJD_UNIX_EPOCH) * 86400e6).round()
    return array


def _integer_series(value: Any, base: str, nullable: bool, name: str) -> pd.Series:
    import pandas as pd

    dtype = _NUMPY_DTYPES[base]
    array = np.asarray(value)
    nulls = np.asarray(pd.isna(array), dtype=bool) if array.dtype.kind in "fO" else None
    if nulls is not None and nulls.any():
        if not nullable:
            raise AssertionError(f"sample bug: non-nullable {name} has nulls")
        # Masked dtype (Int64/Int32): object input keeps int64 ids exact.
        filled = np.where(nulls, 0, array)
        filled = np.rint(filled.astype(np.float64)) if filled.dtype.kind == "f" else filled
        return pd.Series(pd.arrays.IntegerArray(filled.astype(dtype), nulls))
    if array.dtype.kind == "f":
        array = np.rint(array)
    return pd.Series(array.astype(dtype))


def _frame(record: dict[str, Any] | None, known: dict[str, Any], n: int, rng) -> pd.DataFrame:
    import pandas as pd

    if record is None:
        return pd.DataFrame({name: values for name, values in known.items()})
    filler = _Filler(known, n, rng)
    columns = {f["name"]: filler.column(f) for f in record["fields"]}
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def _diasource_known(rows: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Current-schema DiaSource values derived from the simulated quantities."""
    n = len(rows["ra"])
    flux, err, snr = rows["psfFlux"], rows["psfFluxErr"], rows["snr"]
    psf_sigma = rows["psf_sigma_px"]
    pos_err_px = np.sqrt(2.0) * psf_sigma / np.maximum(snr, 1.0)
    pos_err_deg = pos_err_px * PIXEL_SCALE_ARCSEC / 3600.0
    psf_moment = (psf_sigma * PIXEL_SCALE_ARCSEC) ** 2
    aperture_err = err * np.sqrt(np.pi * 12**2 / (4 * np.pi * psf_sigma**2))
    kind = rows.get("kind", np.zeros(n, np.int8))
    is_dipole = rows.get("isDipole", kind == _DIPOLE)
    dipole = rows.get("dipoleFitAttempted", is_dipole)
    star = rows.get("star_flux", np.zeros(n))
    trail_length = np.abs(rng.normal(0.0, 0.15, n))
    nan = np.full(n, np.nan)
    processed = rows["midpointMjdTai"] + rng.uniform(60.0, 300.0, n) / 86400.0
    known: dict[str, Any] = {
        "diaSourceId": rows["diaSourceId"],
        "visit": rows["visit"],
        "detector": rows["detector"],
        "ccdVisitId": rows["ccdVisitId"],
        "diaObjectId": rows["diaObjectId"],
        "ssObjectId": rows.get("ssObjectId", nan),
        "parentDiaSourceId": nan,
        "midpointMjdTai": rows["midpointMjdTai"],
        "exposureTime": np.full(n, EXPOSURE_TIME_S),
        "ra": rows["ra"],
        "dec": rows["dec"],
        "raErr": pos_err_deg,
        "decErr": pos_err_deg,
        "ra_dec_Cov": 0.05 * pos_err_deg**2 * rng.normal(0, 1, n),
        "x": rows["x"],
        "y": rows["y"],
        "xErr": pos_err_px,
        "yErr": pos_err_px,
        "x_y_Cov": 0.05 * pos_err_px**2 * rng.normal(0, 1, n),
        "centroid_flag": rng.random(n) < 0.01,
        "apFlux": flux * 0.97 + aperture_err * rng.standard_normal(n),
        "apFluxErr": aperture_err,
        "apFlux_flag": rows.get("apFlux_flag_apertureTruncated", np.zeros(n, bool)),
        "apFlux_flag_apertureTruncated": rows.get(
            "apFlux_flag_apertureTruncated", np.zeros(n, bool)
        ),
        "snr": snr,
        "psfFlux": flux,
        "psfFluxErr": err,
        "psfRa": rows["ra"],
        "psfDec": rows["dec"],
        "psfRaErr": pos_err_deg,
        "psfDecErr": pos_err_deg,
        "psfLnL": -0.5 * rng.chisquare(313, n),
        "psfChi2": rng.chisquare(300, n),
        "psfNdata": np.full(n, 313, np.int32),
        "psfFlux_flag": rng.random(n) < 0.005,
        "isNegative": flux < 0,
        "trailFlux": flux * rng.normal(1.0, 0.03, n),
        "trailFluxErr": err * 1.1,
        "trailRa": rows["ra"],
        "trailDec": rows["dec"],
        "trailRaErr": pos_err_deg * 1.2,
        "trailDecErr": pos_err_deg * 1.2,
        "trailLength": trail_length,
        "trailLengthErr": 0.1 + 0.5 / np.maximum(snr, 1.0),
        "trailAngle": rng.uniform(-90.0, 90.0, n),
        "trailAngleErr": np.minimum(
            90.0, 30.0 / np.maximum(snr, 1.0) / np.maximum(trail_length, 0.05)
        ),
        "trailChi2": rng.chisquare(300, n),
        "trailNdata": np.full(n, 313, np.int32),
        "trailAlgorithm": np.where(rng.random(n) < 0.9, 2.0, np.nan),
        "trail_flag_edge": rows.get("psfFlux_flag_edge", np.zeros(n, bool)),
        "trail_flag": rng.random(n) < 0.01,
        "dipoleMeanFlux": np.where(dipole, np.abs(flux) + 0.02 * star, np.nan),
        "dipoleMeanFluxErr": np.where(dipole, err, np.nan),
        "dipoleFluxDiff": np.where(dipole, flux * 0.1, np.nan),
        "dipoleFluxDiffErr": np.where(dipole, err * 1.4, np.nan),
        "dipoleRa": np.where(dipole, rows["ra"], np.nan),
        "dipoleDec": np.where(dipole, rows["dec"], np.nan),
        "dipoleLength": np.where(
            dipole, np.hypot(*rows.get("dipole_shift", np.zeros((n, 2))).T) * PIXEL_SCALE_ARCSEC
            + np.abs(rng.normal(0.0, 0.02, n)), np.nan
        ),
        "dipoleAngle": np.where(dipole, rng.uniform(-180, 180, n), np.nan),
        "dipoleChi2": np.where(dipole, rng.chisquare(600, n), np.nan),
        "dipoleNdata": np.where(dipole, 626, 0).astype(np.int32),
        "scienceFlux": rows["scienceFlux"],
        "scienceFluxErr": rows["scienceFluxErr"],
        "forced_PsfFlux_flag": np.zeros(n, bool),
        "forced_PsfFlux_flag_edge": rows.get("forced_PsfFlux_flag_edge", np.zeros(n, bool)),
        "forced_PsfFlux_flag_noGoodPixels": np.zeros(n, bool),
        "psfFlux_flag_edge": rows.get("psfFlux_flag_edge", np.zeros(n, bool)),
        "psfFlux_flag_noGoodPixels": np.zeros(n, bool),
        "templateFlux": rows["templateFlux"],
        "templateFluxErr": rows["templateFluxErr"],
        "ixx": psf_moment * rng.normal(1.0, 0.05, n),
        "iyy": psf_moment * rng.normal(1.0, 0.05, n),
        "ixy": psf_moment * rng.normal(0.0, 0.03, n),
        "ixxPSF": psf_moment,
        "iyyPSF": psf_moment,
        "ixyPSF": psf_moment * 0.01,
        "shape_flag": rng.random(n) < 0.02,
        "shape_flag_no_pixels": np.zeros(n, bool),
        "shape_flag_not_contained": np.zeros(n, bool),
        "shape_flag_parent_source": np.zeros(n, bool),
        "extendedness": np.clip(rng.beta(0.5, 6.0, n), 0, 1),
        "reliability": np.clip(rng.beta(8.0, 1.2, n), 0, 1),
        "spuriousness": lambda: 1.0 - known["reliability"],
        "reliabilityVersion": np.full(n, "ml-rb-v1.2", dtype=object),
        "band": rows["band"],
        "isDipole": is_dipole,
        "dipoleFitAttempted": dipole,
        "timeProcessedMjdTai": processed,
        "timeWithdrawnMjdTai": nan,
        "bboxSize": rows["bboxSize"],
        "programId": np.zeros(n, np.int32),
        "flags": np.zeros(n, np.int64),
        "glint_trail": np.zeros(n, bool),
        "pixelFlags_offimage": np.zeros(n, bool),
    }
    for plane in ("bad", "cr", "edge", "nodata", "interpolated", "saturated", "suspect", "streak",
                  "injected", "injected_template"):
        for suffix in ("", "Center"):
            key = f"pixelFlags_{plane}{suffix}"
            known[key] = rows.get(key, np.zeros(n, bool))
    known["pixelFlags"] = np.zeros(n, bool)
    return known


def _fill_tables(
    schema: Any,
    sources: dict[str, np.ndarray],
    history: dict[str, np.ndarray],
    forced: dict[str, np.ndarray],
    objects: dict[str, np.ndarray],
    asteroids: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> dict[str, pd.DataFrame]:

    n = len(sources["x"])
    # Float arrays cannot hold int64 ssObjectIds exactly: carry them as object.
    ss_column = np.full(n, None, dtype=object)
    ss_column[asteroids["rows"]] = asteroids["ssObjectId"]
    record = schema.record("diaSource")
    known = _diasource_known(sources, rng)
    known["ssObjectId"] = ss_column
    object_column = sources["diaObjectId"].astype(object)
    object_column[asteroids["rows"]] = None
    known["diaObjectId"] = object_column
    asteroid = sources["kind"] == _ASTEROID
    if asteroid.any():
        rate = np.zeros(n)
        rate[asteroids["rows"]] = asteroids["trail_rate_deg_day"]
        known["trailLength"] = np.where(
            asteroid, rate * 3600.0 * EXPOSURE_TIME_S / 86400.0, known["trailLength"]
        )
    dia_source = _frame(record, known, n, rng)

    history_known = _diasource_known(history, rng)
    history_known["ssObjectId"] = np.full(len(history["ra"]), np.nan)
    dia_history = _frame(record, history_known, len(history["ra"]), rng)

    n_forced = len(forced["ra"])
    forced_known = {
        key: forced[key]
        for key in ("diaForcedSourceId", "diaObjectId", "ra", "dec", "visit", "detector",
                    "ccdVisitId", "psfFlux", "psfFluxErr", "midpointMjdTai", "scienceFlux",
                    "scienceFluxErr", "band")
    }
    forced_known["timeProcessedMjdTai"] = forced["midpointMjdTai"] + rng.uniform(
        60.0, 300.0, n_forced
    ) / 86400.0
    forced_known["timeWithdrawnMjdTai"] = np.full(n_forced, np.nan)
    forced_known["x"] = rng.uniform(0, 4072, n_forced)
    forced_known["y"] = rng.uniform(0, 4000, n_forced)
    forced_known["flags"] = np.zeros(n_forced, np.int64)
    dia_forced = _frame(schema.record("prvDiaForcedSources"), forced_known, n_forced, rng)

    n_obj = len(objects["diaObjectId"])
    object_known = dict(objects)
    object_known["validityStartMjdTai"] = np.full(
        n_obj, float(np.max(known["timeProcessedMjdTai"]))
    )
    object_known["midpointMjdTai"] = object_known["lastDiaSourceMjdTai"]
    object_known["psfFlux"] = sources["psfFlux"][objects["source_row"]]
    object_known["flags"] = np.zeros(n_obj, np.int64)
    object_known["pmParallaxNdata"] = objects["nDiaSources"]
    dia_object = _frame(schema.record("diaObject"), object_known, n_obj, rng)

    ss_source, orbits = _solar_system_tables(schema, asteroids, rng)
    return {
        "diaSource": dia_source,
        "history": dia_history,
        "forced": dia_forced,
        "diaObject": dia_object,
        "ssSource": ss_source,
        "orbits": orbits,
    }


def _solar_system_tables(schema: Any, asteroids: dict[str, np.ndarray], rng):
    n = len(asteroids["rows"])
    known = dict(asteroids)
    known["midpointMjdTai"] = asteroids["epoch_mjd"]
    ss_record = schema.record("ssSource")
    if ss_record is None:
        ss_source = _frame(
            None,
            {"diaSourceId": asteroids["diaSourceId"], "ssObjectId": asteroids["ssObjectId"]},
            n,
            rng,
        )
    else:
        ss_source = _frame(ss_record, known, n, rng)
    orbit_record = next(
        (schema.record(name) for name in ("mpc_orbits", "MPCORB", "ssObject")
         if schema.record(name) is not None),
        None,
    )
    created = _mjd_to_unix_micros(asteroids["epoch_mjd"] - 30.0)
    orbit_json = [
        json.dumps({"designation": d, "a": round(float(a), 6), "e": round(float(e), 6),
                    "i": round(float(i), 5), "epoch_mjd": float(t)})
        for d, a, e, i, t in zip(asteroids["designation"], asteroids["a"], asteroids["e"],
                                 asteroids["i"], asteroids["epoch_mjd"], strict=True)
    ]
    known.update({
        "id": np.arange(1, n + 1) + 1_000_000,
        "packed_primary_provisional_designation": asteroids["packed"],
        "unpacked_primary_provisional_designation": asteroids["designation"],
        "mpc_orb_jsonb": np.array(orbit_json, dtype=object),
        "created_at": created,
        "updated_at": created + 86_400_000_000 * 7,
        "fitting_datetime": created + 86_400_000_000 * 6,
        "arc_length_sel": asteroids["arc_length_total"],
        "nobs_total_sel": asteroids["nobs_total"],
        # No non-gravitational parameters were fit for a main-belt asteroid.
        **{name: np.full(n, np.nan) for name in
           ("yarkovsky", "srp", "a1", "a2", "a3", "dt", "yarkovsky_unc", "srp_unc", "a1_unc",
            "a2_unc", "a3_unc", "dt_unc")},
    })
    for name in ("a", "q", "e", "i", "node", "argperi", "peri_time", "mean_anomaly", "period",
                 "mean_motion"):
        known[f"{name}_unc"] = np.abs(known[name]) * 1e-6 + 1e-8
    orbits = _frame(orbit_record, known, n, rng)
    return ss_source, orbits


def _apply_layout(
    tables: dict[str, pd.DataFrame], schema: Any, layout: str
) -> dict[str, pd.DataFrame]:
    if layout == "columns":
        return tables
    band = _band_field(schema)
    out = dict(tables)
    for key in ("diaSource", "history"):
        out[key] = tables[key].set_index(["diaObjectId", band, "diaSourceId"], drop=False)
    out["forced"] = tables["forced"].set_index(["diaObjectId", "diaForcedSourceId"], drop=False)
    out["diaObject"] = tables["diaObject"].set_index("diaObjectId", drop=False)
    return out


def _band_field(schema: Any) -> str:
    names = {f["name"] for f in schema.record("diaSource")["fields"]}
    return "band" if "band" in names else "filterName"


def index_columns(schema_version: str | None = None) -> dict[str, list[str]]:
    """Index columns of each catalog in the ``"multi"`` layout."""
    from alertpack.schema import load_schema

    band = _band_field(load_schema(schema_version))
    return {
        "diaSourceCat": ["diaObjectId", band, "diaSourceId"],
        "diaSrcHistory": ["diaObjectId", band, "diaSourceId"],
        "diaForcedSources": ["diaObjectId", "diaForcedSourceId"],
        "diaObjectCat": ["diaObjectId"],
    }


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------

# The visit-directory layout is the one `alertpack package --visit-dir` reads.
_IMAGE_ATTRIBUTES = {"diffIm": "difference", "science": "science", "template": "template"}
_CATALOG_FILES = {name: f for name, f in VISIT_FILES.items() if name not in _IMAGE_ATTRIBUTES}
_IMAGE_FILES = {_IMAGE_ATTRIBUTES[name]: VISIT_FILES[name] for name in _IMAGE_ATTRIBUTES}
_VISIT_FILE = VISIT_INFO_FILE


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write through ``write(fileobj)``; the file appears at ``path`` only when complete."""
    with atomic_output(path) as stream:
        write(stream)


def exposure_hdulist(image: CCDData, **primary_keys: Any) -> Any:
    """An LSST-Exposure-style `~astropy.io.fits.HDUList` of a CCDData.

    Empty primary HDU, then ``IMAGE`` (BUNIT, WCS, LTV1/LTV2), ``MASK`` (int32,
    ``MP_<PLANE>`` keys), ``VARIANCE`` (BUNIT nJy**2) and, when the image has
    one, ``PSF`` extensions.
    """
    import astropy.units as u
    from astropy.io import fits

    primary = fits.PrimaryHDU()
    for key, value in primary_keys.items():
        primary.header[key] = value
    wcs_header = image.wcs.to_header(relax=True)
    ltv = {"LTV1": image.meta.get("LTV1", 0), "LTV2": image.meta.get("LTV2", 0)}
    hdus = [primary]
    extensions = [
        ("IMAGE", np.asarray(image.data, np.float32), image.unit.to_string("fits")),
        ("MASK", np.asarray(image.mask, np.int32), None),
        ("VARIANCE", np.asarray(image.uncertainty.array, np.float32),
         (u.nJy**2).to_string("fits")),
    ]
    for name, data, unit in extensions:
        hdu = fits.ImageHDU(data, name=name)
        hdu.header["EXTTYPE"] = name
        hdu.header.update(wcs_header)
        hdu.header.update(ltv)
        if unit is not None:
            hdu.header["BUNIT"] = unit
        if name == "MASK":
            for key, value in image.meta.items():
                if key.startswith("MP_"):
                    # Long plane names need HIERARCH cards, as LSST writes them.
                    hdu.header[f"HIERARCH {key}" if len(key) > 8 else key] = value
        hdus.append(hdu)
    if image.psf is not None:
        psf = fits.ImageHDU(np.asarray(image.psf, np.float32), name="PSF")
        psf.header["EXTTYPE"] = "PSF"
        hdus.append(psf)
    return fits.HDUList(hdus)


def write_visit(visit: SampleVisit, directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Write a visit's catalogs (Parquet) and images (LSST-layout FITS), atomically.

    Parquet files hold the columns layout (no index); `read_visit` restores
    the index. A ``visit.json`` records the ids and the schema version.

    Returns
    -------
    paths : `dict` [`str`, `pathlib.Path`]
        ``diaSourceCat``, ``diaObjectCat``, ``diaSrcHistory``,
        ``diaForcedSources``, ``ssSource``, ``mpc_orbits``, ``difference``,
        ``science``, ``template`` and ``visit``.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the visit directory {directory}: {error}") from None
    paths: dict[str, Path] = {}
    for name, filename in _CATALOG_FILES.items():
        frame = getattr(visit, name).reset_index(drop=True)
        path = directory / filename
        _atomic_write(path, lambda stream, frame=frame: frame.to_parquet(stream, index=False))
        paths[name] = path
    primary = {"VISIT": visit.visit, "DETECTOR": visit.detector, "CCDVISIT": visit.ccdVisitId,
               "BAND": visit.band, "MJD-OBS": visit.midpointMjdTai, "TIMESYS": "TAI"}
    for name, filename in _IMAGE_FILES.items():
        hdul = exposure_hdulist(getattr(visit, name), **primary)
        path = directory / filename
        _atomic_write(path, hdul.writeto)
        paths[name] = path
    info = {
        "visit": visit.visit,
        "detector": visit.detector,
        "ccdVisitId": visit.ccdVisitId,
        "ccdExposureIdBits": visit.ccdExposureIdBits,
        "band": visit.band,
        "midpointMjdTai": visit.midpointMjdTai,
        "schema_version": visit.schema_version,
        "files": {name: path.name for name, path in paths.items()},
    }
    path = directory / _VISIT_FILE
    _atomic_write(path, lambda stream: stream.write(json.dumps(info, indent=2).encode()))
    paths["visit"] = path
    return paths


def read_exposure(path: str | os.PathLike[str]) -> CCDData:
    """Read an image file (e.g. one written by `write_visit`) into a bit-mask CCDData."""
    import astropy.units as u
    from astropy.nddata import VarianceUncertainty

    from alertpack.images import as_survey_image

    image = as_survey_image(str(path), name=Path(path).name)
    meta = {f"MP_{name}": bit for name, bit in image.mask_planes.items()}
    meta.update({"LTV1": -image.origin[0], "LTV2": -image.origin[1]})
    variance = None
    if image.variance is not None:
        variance = VarianceUncertainty(image.variance, unit=u.nJy**2)
    return _bitmask_ccddata_class()(
        image.image, unit=u.nJy, uncertainty=variance, mask=image.mask, wcs=image.wcs,
        meta=meta, psf=image.psf,
    )


def read_visit(directory: str | os.PathLike[str], *, index_layout: str = "multi") -> SampleVisit:
    """Read a visit written by `write_visit`."""
    import pandas as pd

    directory = Path(directory)
    info_path = directory / _VISIT_FILE
    if not info_path.is_file():
        raise InputError(
            f"{directory} has no {_VISIT_FILE}: it is not a visit written by write_visit"
        )
    info = json.loads(info_path.read_text())
    frames = {}
    for name, filename in _CATALOG_FILES.items():
        path = directory / filename
        if not path.is_file():
            raise InputError(f"visit directory {directory} lacks {filename}")
        frames[name] = pd.read_parquet(path)
    if index_layout == "multi":
        for name, columns in index_columns(info["schema_version"]).items():
            frames[name] = frames[name].set_index(columns, drop=False)
    images = {name: read_exposure(directory / filename) for name, filename in _IMAGE_FILES.items()}
    return SampleVisit(
        **frames,
        **images,
        ccdExposureIdBits=info["ccdExposureIdBits"],
        ccdVisitId=info["ccdVisitId"],
        visit=info["visit"],
        detector=info["detector"],
        band=info["band"],
        midpointMjdTai=info["midpointMjdTai"],
        schema_version=info["schema_version"],
        index_layout=index_layout,
    )
