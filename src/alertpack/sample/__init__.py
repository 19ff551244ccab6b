"""A built-in, deterministic, realistic Rubin visit: catalogs and images.

`make_visit` simulates one detector of one visit: everything that
``PackageAlertsTask.run`` consumes (new DiaSources, their DiaObjects, the
previous DiaSources and forced photometry of those objects, solar-system rows)
plus the difference, science and template images. The same arguments always
give identical catalogs and pixels. It is the project's demo input and the
input of its tests and benchmarks.

Modules
-------
The simulation runs in the order of these modules; each holds one step and
the conventions of what it makes (in its docstring):

``visit``
    `SampleVisit` and `make_visit` / `make_visits`, which run the steps.
``ids``
    ccdVisitIds, packed DiaSource/DiaForcedSource ids, visit numbers and
    their times (convention: Ids).
``scene``
    Observing conditions, WCS, PSF, the static sky scene and the new sources.
``images``
    The three images and `BitMaskCCDData` (convention: Images).
``measurements``
    Catalog values of the new sources, consistent with the images.
``history``
    Previous visits, detections and forced photometry (convention: Time
    window).
``objects``
    DiaObject aggregates of the detections and forced photometry.
``asteroids``
    Solar-system sources: geometry, ephemerides, orbits.
``records``
    Filling the schema's records into DataFrames (conventions: Catalog
    layout, dtypes).
``files``
    `write_visit` / `read_visit`: a visit directory of Parquet and FITS files.
``apdb``
    `write_apdb`: the sample stored in an APDB (lsst-dax-apdb), files beside it.

Importing this package imports numpy only: pandas and astropy are imported by
the functions that need them, and `BitMaskCCDData` is built on first use.
"""

from __future__ import annotations

from typing import Any

from alertpack.sample.apdb import write_apdb
from alertpack.sample.files import exposure_hdulist as exposure_hdulist
from alertpack.sample.files import read_exposure as read_exposure
from alertpack.sample.files import read_visit, write_visit
from alertpack.sample.history import HISTORY_WINDOW_DAYS as HISTORY_WINDOW_DAYS
from alertpack.sample.history import OLD_HISTORY_DAYS as OLD_HISTORY_DAYS
from alertpack.sample.ids import (
    CCD_EXPOSURE_ID_BITS,
    ccd_visit_id,
    ccd_visit_id_of,
    pack_source_ids,
    visit_midpoint_mjd,
)
from alertpack.sample.ids import DETECTOR_FACTOR as DETECTOR_FACTOR
from alertpack.sample.ids import N_SCIENCE_DETECTORS as N_SCIENCE_DETECTORS
from alertpack.sample.images import MASK_PLANES, _bitmask_ccddata_class
from alertpack.sample.records import index_columns as index_columns
from alertpack.sample.scene import BANDS, PIXEL_SCALE_ARCSEC
from alertpack.sample.scene import DEFAULT_BORESIGHT_DEG as DEFAULT_BORESIGHT_DEG
from alertpack.sample.scene import EXPOSURE_TIME_S as EXPOSURE_TIME_S
from alertpack.sample.scene import psf_image as psf_image
from alertpack.sample.visit import SampleVisit, make_visit, make_visits

# The names imported "as" themselves above are public as well (as they were
# in the single-module sample), though outside __all__.
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
    "write_apdb",
    "write_visit",
]


def __getattr__(name: str) -> Any:
    # BitMaskCCDData is built on first use so that importing alertpack.sample
    # does not import astropy; pickle finds it here by name.
    if name == "BitMaskCCDData":
        return _bitmask_ccddata_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
