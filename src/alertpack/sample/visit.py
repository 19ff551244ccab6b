"""The sample visit: `SampleVisit` and the `make_visit` that simulates one.

`make_visit` runs the simulation in order: observing conditions and WCS
(`alertpack.sample.scene`), the static scene and the new sources, the images
(`alertpack.sample.images`), their measurements, the objects' history and
aggregates, the asteroids, and finally fills the schema's records
(`alertpack.sample.records`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.errors import InputError
from alertpack.sample.asteroids import _asteroids
from alertpack.sample.history import _object_histories, _past_epochs
from alertpack.sample.ids import (
    _COUNTER_BITS,
    _MAX_COUNTER,
    CCD_EXPOSURE_ID_BITS,
    N_SCIENCE_DETECTORS,
    ccd_visit_id,
    pack_source_ids,
    visit_midpoint_mjd,
)
from alertpack.sample.images import _render_images
from alertpack.sample.measurements import _measure_new_sources
from alertpack.sample.objects import _aggregate_objects
from alertpack.sample.records import _apply_layout, _fill_tables
from alertpack.sample.scene import (
    DEFAULT_BORESIGHT_DEG,
    _detector_wcs,
    _new_sources,
    _place_on_sky,
    _static_scene,
    _visit_conditions,
)
from alertpack.schema import load_schema
from alertpack.visit_inputs import CATALOGS, IMAGES, VisitInputs

if TYPE_CHECKING:
    import pandas as pd
    from astropy.nddata import CCDData


@dataclass
class SampleVisit:
    """One simulated detector-visit: the inputs of ``PackageAlertsTask.run``.

    Attributes
    ----------
    diaSourceCat : `pandas.DataFrame`
        New DiaSources of this visit (index: see `alertpack.sample.records`).
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

    def inputs(self) -> VisitInputs:
        """The visit as the inputs of one packaging run (`alertpack.core.AlertPackager.run`).

        The catalogs and images themselves, not copies; no scheduler fields
        (the sample has none).
        """
        # the catalogs are attributes of the fields' names, the images of the images' names
        catalogs: dict[str, Any] = {name: getattr(self, name) for name in CATALOGS}
        images: dict[str, Any] = {field: getattr(self, name) for name, field in IMAGES.items()}
        return VisitInputs(**catalogs, **images, ccdExposureIdBits=self.ccdExposureIdBits)

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `alertpack.task.PackageAlertsTask.run`: those of `inputs`."""
        return self.inputs().run_kwargs()


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
        Catalog index layout (see `alertpack.sample.records`).
    schema_version : `str`, optional
        Alert schema whose fields to fill (default: the latest shipped).
    boresight : `tuple` [`float`, `float`]
        Pointing (RA, Dec) of the focal plane center, degrees.

    Returns
    -------
    visit : `SampleVisit`
    """
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
