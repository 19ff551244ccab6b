"""`VisitInputs`: everything one packaging run takes, in one typed value.

Every producer of inputs builds one: `alertpack.task.PackageAlertsTask.run`
(from LSST's call), `alertpack.inputs.visit_files.load_visit_files` (a visit
directory and files), `alertpack.inputs.apdb.apdb_visit_inputs` (an APDB),
`alertpack.sample.SampleVisit.inputs` (the built-in sample) and the stream
simulator (`alertpack.scaleout.simulate`); `alertpack.core.AlertPackager.run`
takes it. This module imports nothing else of alertpack, so that every layer
may use it without an arrow pointing up.

Naming
------
A field that is an argument of ``PackageAlertsTask.run`` carries that
argument's name exactly, as LSST spells it (``diaSourceCat``, ``diffIm``,
``ccdExposureIdBits``, ``doRunForcedMeasurement``, and ``mpc_orbits``,
``observation_reason``, ``target_name``, which are snake_case there too). So
``VisitInputs(**kwargs)`` takes the keywords of the seed's ``run`` call,
`VisitInputs.run_kwargs` gives them back, and a validation message about
``diaSourceCat`` names the field. What alertpack adds that is not an argument
of ``run`` (``files``) is snake_case and marked so in its
field metadata (`is_run_argument`).

Today's lsst.ap.association call (``run(diaSourceCat, diaObjectCat,
diaSrcHistory, diaForcedSources, diffIm, calexp, template, ssSrc=...,
doRunForcedMeasurement=..., forcedSourceHistoryThreshold=...)``) maps onto
the same fields in `alertpack.task`: ``calexp`` is ``science``, ``ssSrc`` is
``ssSource`` (its ``MPCORB_*`` columns give the orbits); that call's file
naming (``{visit}_{detector}.avro``) is an option of the packager's run, not
an input.

Extending
---------
A new input is one field here, with a default (`None` for "not given"), so
that every producer keeps working unchanged; the Task maps its argument onto
the field and the core reads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["CATALOGS", "IMAGES", "Catalog", "ImageInput", "VisitInputs", "is_run_argument"]

#: a catalog: a `pandas.DataFrame` (LSST index layout or plain columns) or a `pyarrow.Table`
type Catalog = pd.DataFrame | pa.Table

#: an image: anything `alertpack.inputs.images.as_survey_image` accepts (astropy
#: ``CCDData``/``NDData``, a FITS path or ``HDUList``, an afw Exposure, a ``SurveyImage``)
type ImageInput = Any

#: the catalog fields, in the order of ``PackageAlertsTask.run``
CATALOGS = (
    "diaSourceCat", "diaObjectCat", "diaSrcHistory", "diaForcedSources", "ssSource",
    "mpc_orbits",
)

#: image name (as in config ``cutouts`` and cutout headers) -> its field
IMAGES = {"difference": "diffIm", "template": "template", "science": "science"}

# field metadata key: False for a field that is not an argument of PackageAlertsTask.run
_RUN_ARGUMENT = "run_argument"


# eq=False: catalogs and images have no single truth value; two inputs are the same by identity
@dataclass(frozen=True, kw_only=True, eq=False)
class VisitInputs:
    """The catalogs, images, ids and scheduler fields of one packaging run (one ccdVisit).

    Build it with keywords; every field but ``diaSourceCat`` may be left out.
    It is frozen: derive a changed copy with `dataclasses.replace`. The
    values are not copied or checked here: the packager validates them once
    against the alert schema (`alertpack.packets.assemble.prepare_visit`).

    Attributes
    ----------
    diaSourceCat : `pandas.DataFrame` or `pyarrow.Table`
        New DiaSources, indexed on ``["diaObjectId", "band" (or
        "filterName"), "diaSourceId"]`` or with those as plain columns.
    diaObjectCat : `pandas.DataFrame` or `pyarrow.Table`, optional
        DiaObjects of the new DiaSources, indexed on ``diaObjectId``.
    diaSrcHistory : `pandas.DataFrame` or `pyarrow.Table`, optional
        Previous DiaSources of those objects (layout of ``diaSourceCat``).
    diaForcedSources : `pandas.DataFrame` or `pyarrow.Table`, optional
        Forced photometry history of the DiaObjects.
    ssSource : `pandas.DataFrame` or `pyarrow.Table`, optional
        Solar-system rows of asteroid DiaSources, matched on ``diaSourceId``.
    mpc_orbits : `pandas.DataFrame` or `pyarrow.Table`, optional
        Orbits of those asteroids, matched on ``ssObjectId`` or designation.
    diffIm : image, optional
        Difference image (see `ImageInput`); needed for difference cutouts.
    template : image, optional
        Template image; `None`: no template cutouts.
    science : image, optional
        Science image; `None`: no science cutouts.
    ccdExposureIdBits : `int`, optional
        Bits of the exposure id packed into ``diaSourceId``
        (``ccdVisitId = diaSourceId >> (64 - ccdExposureIdBits)``), for
        catalogs without a ``ccdVisitId`` column.
    observation_reason, target_name : `str`, optional
        Scheduler fields of schema v8+; `None`: the catalog columns of those
        names, else what the difference image's headers say (afw's
        ``REASON``/``OBJECT``); an empty text is null.
    doRunForcedMeasurement : `bool`
        Whether forced photometry was run for this visit (upstream's
        argument); False: every alert's ``prvDiaForcedSources`` is ``[]``.
    forcedSourceHistoryThreshold : `int`
        Objects with fewer ``nDiaSources`` than this get
        ``prvDiaForcedSources = []`` (upstream's argument; 0: none).
    files : `~collections.abc.Mapping` [`str`, `pathlib.Path`]
        Catalog field -> the file it was read from, for catalogs read from
        files; validation messages name the file beside the catalog
        (``diaSourceCat (file visit/diaSourceCat.csv) lacks column ra``).
        Not an argument of ``run``.
    """

    diaSourceCat: Catalog
    diaObjectCat: Catalog | None = None
    diaSrcHistory: Catalog | None = None
    diaForcedSources: Catalog | None = None
    ssSource: Catalog | None = None
    mpc_orbits: Catalog | None = None
    diffIm: ImageInput | None = None
    template: ImageInput | None = None
    science: ImageInput | None = None
    ccdExposureIdBits: int | None = None
    observation_reason: str | None = None
    target_name: str | None = None
    doRunForcedMeasurement: bool = True
    forcedSourceHistoryThreshold: int = 0
    files: Mapping[str, Path] = field(default_factory=dict, metadata={_RUN_ARGUMENT: False})

    def run_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``PackageAlertsTask.run`` for these inputs.

        Every field that is an argument of the seed's ``run`` call (not
        ``files``), with its value itself, not a copy.
        """
        return {
            item.name: getattr(self, item.name)
            for item in dataclasses.fields(self)
            if is_run_argument(item.name)
        }

    def images(self) -> dict[str, ImageInput | None]:
        """Image name (``"difference"``, ``"template"``, ``"science"``) -> the image or `None`."""
        return {name: getattr(self, attribute) for name, attribute in IMAGES.items()}

    def catalogs(self) -> dict[str, Catalog | None]:
        """Catalog field (``"diaSourceCat"``, ...) -> the catalog or `None`."""
        return {name: getattr(self, name) for name in CATALOGS}

    def __repr__(self) -> str:
        # the default repr would print whole catalogs and pixel arrays into logs
        parts = [f"{item.name}={_describe(getattr(self, item.name))}"
                 for item in dataclasses.fields(self)
                 if item.name != "files" and not _is_default(getattr(self, item.name), item)]
        if self.files:
            parts.append(f"files={ {name: str(path) for name, path in self.files.items()} }")
        return f"VisitInputs({', '.join(parts)})"


def is_run_argument(name: str) -> bool:
    """True when field ``name`` of `VisitInputs` is an argument of ``PackageAlertsTask.run``."""
    for item in dataclasses.fields(VisitInputs):
        if item.name == name:
            return bool(item.metadata.get(_RUN_ARGUMENT, True))
    raise KeyError(f"VisitInputs has no field {name!r}")


def _is_default(value: Any, item: dataclasses.Field[Any]) -> bool:
    """Whether a field holds nothing to show: `None`, or a plain value equal to its default."""
    if value is None:
        return True
    plain = isinstance(value, (bool, int, float, str))
    return plain and item.default is not dataclasses.MISSING and value == item.default


def _describe(value: Any) -> str:
    """A short description of a field's value: its type and size, not its contents."""
    if isinstance(value, (str, int, float, bool, Path)):
        return repr(value) if not isinstance(value, Path) else repr(str(value))
    rows = getattr(value, "num_rows", None)
    if rows is None and hasattr(value, "columns") and hasattr(value, "__len__"):
        rows = len(value)
    if rows is not None:
        return f"<{type(value).__name__}: {rows} rows>"
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"<{type(value).__name__}: shape {tuple(shape)}>"
    return f"<{type(value).__name__}>"
