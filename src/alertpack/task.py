"""The `PackageAlertsTask`: DiaSources, their objects, history and images in, alerts out.

This module orchestrates only: validation lives in `alertpack.packets.conform`,
cutouts in `alertpack.packets.cutouts`, encoding in `alertpack.packets.avro`, delivery in
`alertpack.sinks`.

Two calls
---------
`PackageAlertsTask.run` takes the seed's call (2020) and today's
lsst.ap.association call (``diaPipe.py``), told apart by the 4th positional
argument (an image in the seed's, the forced-source catalog today) and by
the keywords only today's has (``calexp``, ``ssSrc``); each maps onto one
`~alertpack.visit_inputs.VisitInputs` (`seed_call_inputs`,
`upstream_call_inputs`). A call that fits neither is a `TypeError` naming
both signatures.
"""

from __future__ import annotations

import inspect
from typing import Any

import lsst.pipe.base as pipeBase
from lsst.utils.timer import timeMethod

from alertpack.config import CUTOUT_FIELDS, PackageAlertsConfig
from alertpack.core import AlertPackager, PackageResult
from alertpack.inputs.images import as_survey_image
from alertpack.packets.assemble import build_alert_parts, prepare_visit
from alertpack.packets.columns import empty_catalog, row_frame
from alertpack.packets.stamp import Stamp
from alertpack.packets.stamp_fits import stamp_fits_bytes
from alertpack.visit_inputs import VisitInputs

__all__ = [
    "PackageAlertsConfig",
    "PackageAlertsTask",
    "SchemaCatalogTask",
    "all_schema_catalogs",
    "seed_call_inputs",
    "upstream_call_inputs",
]

# Alert fields whose record types describe the catalogs run() takes.
_CATALOG_FIELDS = {
    "diaSource": "diaSource",
    "diaObject": "diaObject",
    "diaForcedSource": "prvDiaForcedSources",
    "ssSource": "ssSource",
    "mpc_orbits": "mpc_orbits",
}


def seed_call_inputs(
    diaSourceCat: Any,
    diaObjectCat: Any,
    diaSrcHistory: Any,
    diffIm: Any,
    template: Any,
    ccdExposureIdBits: int | None = None,
    *,
    science: Any = None,
    diaForcedSources: Any = None,
    ssSource: Any = None,
    mpc_orbits: Any = None,
    observation_reason: str | None = None,
    target_name: str | None = None,
    doRunForcedMeasurement: bool = True,
    forcedSourceHistoryThreshold: int = 0,
) -> VisitInputs:
    """The seed's call of ``run`` (2020), with alertpack's keywords, as `VisitInputs`.

    Every argument is the `VisitInputs` field of its name; its files are
    ``{ccdVisitId}.avro`` (config ``alertFileNaming="auto"``).
    """
    return VisitInputs(
        diaSourceCat=diaSourceCat,
        diaObjectCat=diaObjectCat,
        diaSrcHistory=diaSrcHistory,
        diaForcedSources=diaForcedSources,
        ssSource=ssSource,
        mpc_orbits=mpc_orbits,
        diffIm=diffIm,
        template=template,
        science=science,
        ccdExposureIdBits=ccdExposureIdBits,
        observation_reason=observation_reason,
        target_name=target_name,
        doRunForcedMeasurement=doRunForcedMeasurement,
        forcedSourceHistoryThreshold=forcedSourceHistoryThreshold,
    )


def upstream_call_inputs(
    diaSourceCat: Any,
    diaObjectCat: Any,
    diaSrcHistory: Any,
    diaForcedSources: Any,
    diffIm: Any,
    calexp: Any,
    template: Any,
    ssSrc: Any = None,
    doRunForcedMeasurement: bool = True,
    forcedSourceHistoryThreshold: int = 0,
) -> VisitInputs:
    """Today's lsst.ap.association call of ``run`` (``diaPipe.py``), as `VisitInputs`.

    ``calexp`` is the science image, ``ssSrc`` (a DataFrame or an astropy
    Table, its ``MPCORB_*`` columns giving each solar-system alert's orbit)
    the ``ssSource`` catalog; the scheduler fields come from the difference
    image's headers; its files are ``{visit}_{detector}.avro`` (config
    ``alertFileNaming="auto"``).
    """
    return VisitInputs(
        diaSourceCat=diaSourceCat,
        diaObjectCat=diaObjectCat,
        diaSrcHistory=diaSrcHistory,
        diaForcedSources=diaForcedSources,
        ssSource=_as_catalog(ssSrc),
        diffIm=diffIm,
        template=template,
        science=calexp,
        doRunForcedMeasurement=doRunForcedMeasurement,
        forcedSourceHistoryThreshold=forcedSourceHistoryThreshold,
    )


_SEED_CALL = inspect.signature(seed_call_inputs)
_UPSTREAM_CALL = inspect.signature(upstream_call_inputs)
#: keywords only today's call has
_UPSTREAM_KEYWORDS = ("calexp", "ssSrc")


def _signature_text(signature: inspect.Signature) -> str:
    """``run(a, b, c=..., *, d=...)``: a call's shape, for messages."""
    parts: list[str] = []
    for name, parameter in signature.parameters.items():
        if parameter.kind is parameter.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        parts.append(name if parameter.default is parameter.empty else f"{name}=...")
    return f"run({', '.join(parts)})"


def _positional_count(signature: inspect.Signature) -> int:
    return sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in signature.parameters.values())


def _is_catalog(value: Any) -> bool:
    """A DataFrame, an Arrow table or an astropy Table (never an image)."""
    module = type(value).__module__
    return module.startswith(("pandas", "pyarrow", "astropy.table")) and hasattr(value, "columns")


def _as_catalog(value: Any) -> Any:
    """An astropy Table as a DataFrame (what the catalogs are); anything else as it is."""
    if value is not None and type(value).__module__.startswith("astropy.table"):
        return value.to_pandas()
    return value


def _call_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[VisitInputs, str | None]:
    """The inputs of a ``run`` call and the file naming it implies, or a `TypeError`."""
    fourth = args[3] if len(args) >= 4 else None
    upstream = (
        any(name in kwargs for name in _UPSTREAM_KEYWORDS)
        or _is_catalog(fourth)
        # no forced sources (None) 4th: today's call has 7 positional, the seed's 6 at most
        or (fourth is None and len(args) > _positional_count(_SEED_CALL))
    )
    signature, build = (
        (_UPSTREAM_CALL, upstream_call_inputs) if upstream else (_SEED_CALL, seed_call_inputs)
    )
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        which = "today's lsst.ap.association call" if upstream else "the seed's call"
        raise TypeError(
            f"PackageAlertsTask.run(): {error} (taken as {which}); run takes the seed's call "
            f"{_signature_text(_SEED_CALL)} or today's lsst.ap.association call "
            f"{_signature_text(_UPSTREAM_CALL)}"
        ) from None
    return build(*args, **kwargs), "visit_detector" if upstream else None


def all_schema_catalogs(task: pipeBase.Task) -> dict[str, Any]:
    """Schema catalogs of every task in ``task``'s hierarchy, combined in one dict.

    Works from any task of the hierarchy, including plain `lsst.pipe.base.Task`
    parents (today's pipe_base no longer has ``getAllSchemaCatalogs``).
    """
    combined: dict[str, Any] = {}
    for reference in task.getTaskDict().values():
        get_catalogs = getattr(reference(), "getSchemaCatalogs", None)
        if get_catalogs is not None:
            combined.update(get_catalogs())
    return combined


class SchemaCatalogTask(pipeBase.Task):
    """A `lsst.pipe.base.Task` with the schema-catalog methods pipe_base removed."""

    def getSchemaCatalogs(self) -> dict[str, Any]:
        """Get the schemas generated by this task: none by default.

        Subclasses that use schemas override this; catalogs must not depend
        on the data, so they are known from construction on.
        """
        return {}

    def getAllSchemaCatalogs(self) -> dict[str, Any]:
        """Get schema catalogs for all tasks in the hierarchy, combined in one dict.

        Any task of the hierarchy gives the same answer: the catalogs of
        the top-level task and of every subtask.
        """
        return all_schema_catalogs(self)


class PackageAlertsTask(SchemaCatalogTask):
    """Package DiaSources, DiaObjects, their history and image cutouts into Avro alerts.

    Alerts follow the configured Rubin alert schema version, are written to
    one Avro container file per ccdVisit, and, when configured, sent to
    Kafka in the Confluent wire format.

    With ``doProduceAlerts`` the Task's packager creates one Kafka producer
    with the Task and every `run` reuses it; `close` (or ``with``, or a
    finalizer at interpreter exit) flushes and closes it.
    """

    ConfigClass = PackageAlertsConfig
    _DefaultName = "packageAlerts"
    config: PackageAlertsConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # the core validates the config and resolves Kafka settings now, so
        # that a bad value or a missing server fails before any work is done
        self.packager = AlertPackager(self.config, log=self.log)
        self.alertSchema = self.packager.schema

    def close(self) -> None:
        """Flush and close the Kafka producer the Task keeps (with ``doProduceAlerts``)."""
        self.packager.close()

    def __enter__(self) -> PackageAlertsTask:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------
    # Schema catalogs (removed from today's pipe_base; kept with the
    # documented semantics).

    def getSchemaCatalogs(self) -> dict[str, Any]:
        """Get the schemas generated by this task.

        Returns
        -------
        schemaCatalogs : `dict`
            Catalog name to an empty `pandas.DataFrame` whose columns and
            dtypes are those of the configured alert schema's record type:
            the catalogs `run` takes (``diaSource``, ``diaObject``,
            ``diaForcedSource``, and ``ssSource``/``mpc_orbits`` where the
            schema has them).
        """
        catalogs = {}
        for name, alert_field in _CATALOG_FIELDS.items():
            record = self.alertSchema.record(alert_field)
            if record is not None:
                catalogs[name] = empty_catalog(record)
        return catalogs

    # ------------------------------------------------------------------

    @timeMethod
    def run(self, *args: Any, **kwargs: Any) -> pipeBase.Struct:
        """Package DiaSources/Object and exposure data into Avro alerts.

        Takes either call; the two are told apart by the 4th positional
        argument (an image in the seed's, a catalog in today's) and by the
        keywords only today's has (``calexp``, ``ssSrc``). Any other call
        is a `TypeError` naming both signatures.

        **The seed's call** (2020, with alertpack's keywords)::

            run(diaSourceCat, diaObjectCat, diaSrcHistory, diffIm, template,
                ccdExposureIdBits=None, *, science=None, diaForcedSources=None,
                ssSource=None, mpc_orbits=None, observation_reason=None,
                target_name=None, doRunForcedMeasurement=True,
                forcedSourceHistoryThreshold=0)

        **Today's lsst.ap.association call** (``diaPipe.py``)::

            run(diaSourceCat, diaObjectCat, diaSrcHistory, diaForcedSources,
                diffIm, calexp, template, ssSrc=None,
                doRunForcedMeasurement=True, forcedSourceHistoryThreshold=0)

        Parameters
        ----------
        diaSourceCat : `pandas.DataFrame`
            New DiaSources, indexed on ``["diaObjectId", "filterName" or
            "band", "diaSourceId"]`` or with those as plain columns.
        diaObjectCat : `pandas.DataFrame`
            DiaObjects matched to the new DiaSources, indexed on ``diaObjectId``.
        diaSrcHistory : `pandas.DataFrame` or `None`
            Previous DiaSources of those objects (same layout as
            ``diaSourceCat``). Rows outside ``historyWindowDays`` and the new
            source itself are left out of each alert.
        diffIm, template : image
            Difference and template images: `astropy.nddata.CCDData`,
            ``NDData``, a FITS path or ``HDUList``, or an afw Exposure.
            ``template`` may be `None` (no template cutouts).
        ccdExposureIdBits : `int`, optional
            The seed's call: bits of the exposure id packed into
            ``diaSourceId``: ``ccdVisitId = diaSourceId >> (64 -
            ccdExposureIdBits)``. Used when ``diaSourceCat`` has no
            ``ccdVisitId`` column; with neither, files named by ccdVisitId are
            an `~alertpack.errors.InputError` (no name is guessed).
        science, calexp : image, optional
            Science image, for ``cutoutScience`` (``calexp`` in today's call).
        diaForcedSources : `pandas.DataFrame`, optional
            Forced photometry of the DiaObjects, this visit's included (as
            ``diaPipe`` passes it): each alert carries its object's rows up
            to and including its exposure, within ``historyWindowDays``.
        ssSource, ssSrc : `pandas.DataFrame` or `astropy.table.Table`, optional
            Solar-system rows of asteroid DiaSources, matched on
            ``diaSourceId``; ``MPCORB_*`` columns give each one's orbit when
            no ``mpc_orbits`` table is given.
        mpc_orbits : `pandas.DataFrame`, optional
            The seed's call: orbits, matched on ``ssObjectId`` or
            ``designation``. A solar-system source no orbit matches gets a
            null orbit, counted in ``nOrbitsUnmatched`` (result and metadata)
            with a warning in the log.
        observation_reason, target_name : `str`, optional
            The seed's call: scheduler fields of schema v8+; default the
            catalog columns of those names, else the difference image's
            headers (afw's ``REASON``/``OBJECT``); empty text is null.
        doRunForcedMeasurement : `bool`, optional
            False: forced measurement was not run; every alert's
            ``prvDiaForcedSources`` is ``[]``.
        forcedSourceHistoryThreshold : `int`, optional
            Alerts of objects with fewer ``nDiaSources`` get
            ``prvDiaForcedSources = []``.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``alerts`` (`AlertBatch`: decoded on access, ``.payloads`` the
            Avro bytes), ``nAlerts``, ``path`` (the alert file when the run
            wrote exactly one, else `None`), ``paths`` (all written files),
            ``nDelivered``, ``nFailed`` and ``failedPath`` (Kafka),
            ``cutoutStatus`` (count per `CutoutStatus` and image, and
            ``<image>:NO_PSF``: stamps of an image without a PSF), and
            ``absent`` (input -> what the alerts lack without it; each also
            logged as a warning). Upstream's Task returns nothing; the
            metadata gets its keys (``visit_midpoint``,
            ``produce_start_timestamp``, ``produce_end_timestamp``,
            ``alert_timing_since_shutter_close``, ``total_alerts``) besides
            alertpack's counts.

        Notes
        -----
        The arguments become one `~alertpack.visit_inputs.VisitInputs`
        (`seed_call_inputs`, `upstream_call_inputs`), which
        `AlertPackager.run` packages; ``VisitInputs.run_kwargs()`` gives such
        inputs back as keywords of the seed's call. Alert files are named
        ``{ccdVisitId}.avro`` for the seed's call and
        ``{visit}_{detector}.avro`` for today's (config ``alertFileNaming``).
        """
        # the one place the calls meet VisitInputs
        inputs, file_naming = _call_inputs(args, kwargs)
        result = self.packager.run(inputs, stage_timer=self.timer, file_naming=file_naming)
        return self._struct(result)

    # both signatures are documented above; introspection shows the seed's
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
         *_SEED_CALL.parameters.values()]
    )

    def _struct(self, result: PackageResult) -> pipeBase.Struct:
        """The run's result as the Task returns it, its counts in the metadata."""
        for key, value in result.counts().items():
            self.metadata[key] = value
        for key, number in result.production_metadata().items():
            self.metadata[key] = number
        return pipeBase.Struct(
            alerts=result.alerts,
            nAlerts=result.n_alerts,
            path=result.paths[0] if len(result.paths) == 1 else None,
            paths=result.paths,
            nDelivered=result.delivered,
            nFailed=result.failed,
            failedPath=result.failed_path,
            cutoutStatus=result.cutout_status,
            nOrbitsUnmatched=result.unmatched_orbits,
            absent=result.absent,
        )

    # ------------------------------------------------------------------

    def makeAlertDict(
        self,
        alertId: int,
        diaSource: Any,
        diaObject: Any,
        objDiaSrcHistory: Any,
        diffImCutout: Any,
        templateCutout: Any,
        *,
        scienceCutout: Any = None,
        objDiaForcedSources: Any = None,
        ssSource: Any = None,
        mpc_orbits: Any = None,
    ) -> dict[str, Any]:
        """Convert data and package into a dictionary alert.

        Parameters
        ----------
        alertId : `int`
            Id of the alert (the triggering ``diaSourceId`` in schema v8+).
        diaSource : `pandas.Series`, `dict` or one-row `pandas.DataFrame`
            New single DiaSource to package.
        diaObject : `pandas.Series`, `dict`, one-row DataFrame or `None`
            DiaObject that diaSource is matched to.
        objDiaSrcHistory : `pandas.DataFrame` or `None`
            12-month history of diaObject excluding the latest DiaSource.
        diffImCutout, templateCutout : cutout, `bytes` or `None`
            Cutouts of the difference and template images (anything
            `makeCutoutBytes` takes, or FITS bytes already).
        scienceCutout : cutout, `bytes` or `None`, optional
            Cutout of the science image.
        objDiaForcedSources, ssSource, mpc_orbits : optional
            Forced-photometry history and solar-system rows.

        Returns
        -------
        alert : `dict`
            The alert, conforming to the configured schema version.
        """
        source_frame = row_frame(diaSource, ("diaObjectId", "band", "diaSourceId"), "diaSource")
        inputs = VisitInputs(
            diaSourceCat=source_frame,
            diaObjectCat=(
                None if diaObject is None else row_frame(diaObject, ("diaObjectId",), "diaObject")
            ),
            diaSrcHistory=objDiaSrcHistory,
            diaForcedSources=objDiaForcedSources,
            ssSource=None if ssSource is None else row_frame(ssSource, (), "ssSource"),
            mpc_orbits=None if mpc_orbits is None else row_frame(mpc_orbits, (), "mpc_orbits"),
        )
        catalogs = prepare_visit(self.alertSchema, inputs, require_ccd_visit=False)
        cutouts = {
            CUTOUT_FIELDS[name]: [None if cutout is None else self.makeCutoutBytes(cutout)]
            for name, cutout in (
                ("difference", diffImCutout),
                ("template", templateCutout),
                ("science", scienceCutout),
            )
        }
        parts = build_alert_parts(
            catalogs, cutouts, window_days=self.config.historyWindowDays
        )
        # every field of the schema is a key, None when absent, as in LSST's
        # makeAlertDict: code ported from LSST reads alert["ssSource"] etc.
        alert = parts.alert_dict(0, self.alertSchema.field_names)
        id_field = "diaSourceId" if "diaSourceId" in alert else "alertId"
        alert[id_field] = int(alertId)
        return alert

    def makeCutoutBytes(self, cutout: Any) -> bytes:
        """Serialize a cutout into bytes.

        Parameters
        ----------
        cutout : `alertpack.packets.stamp.Stamp`, `astropy.nddata.CCDData` or `bytes`
            Cutout to serialize; FITS bytes are returned unchanged.

        Returns
        -------
        cutoutBytes : `bytes`
            The cutout as a standalone FITS file.
        """
        if isinstance(cutout, (bytes, bytearray, memoryview)):
            return bytes(cutout)
        if not isinstance(cutout, Stamp):
            cutout = as_survey_image(cutout, name="cutout")
        return stamp_fits_bytes(cutout)
