"""The packaging core: catalogs and images in, an alert batch out, to the sinks.

`AlertPackager` does the whole job of `PackageAlertsTask.run` without
`lsst.pipe.base`: the command line and the worker processes use it directly,
and the Task is the LSST API over it. A run takes one
`~alertpack.visit_inputs.VisitInputs` (catalogs, images, ids, scheduler
fields), however it was made: by the Task, from files, from an APDB, by the
sample or the simulator. One packager is meant to live for many
runs (a worker keeps it for every detector it takes), so that the schema, the
encoder and, with ``doProduceAlerts``, the Kafka producer are built once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.config import CUTOUT_FIELDS, PackageAlertsConfig
from alertpack.errors import InputError
from alertpack.inputs.catalogs import name_catalog_files
from alertpack.inputs.images import as_survey_image, image_visit_info
from alertpack.kafka.settings import KafkaSettings
from alertpack.packets.assemble import (
    VisitCatalogs,
    absent_catalogs,
    build_alert_parts,
    fill_scheduler_fields,
    prepare_visit,
    time_column,
)
from alertpack.packets.avro import AlertEncoder
from alertpack.packets.batch import AlertBatch, unix_seconds_of_mjd_tai
from alertpack.packets.cutouts import make_cutout_bytes
from alertpack.packets.placement import cutout_sizes
from alertpack.packets.stamp import CutoutStatus
from alertpack.packets.survey_image import SurveyImage, VisitInfo
from alertpack.schema import WIRE_HEADER_SIZE, load_schema
from alertpack.sinks.files import write_alert_files
from alertpack.visit_inputs import VisitInputs

if TYPE_CHECKING:  # the producer loads only with doProduceAlerts
    from alertpack.kafka.producer import AlertProducer, DeliveryResult

__all__ = ["PRODUCTION_METADATA", "SUMMARIZED", "AlertPackager", "PackageResult"]

#: a context manager factory timing one named stage of a run
StageTimer = Callable[[str], AbstractContextManager[Any]]

#: attribute set (True) on the log records of what `PackageResult.absent` and
#: `PackageResult.renamed` also hold: a caller printing the result's summary (a pool
#: worker, whose parent prints it) may drop them
SUMMARIZED = "alertpack_summarized"
#: the metadata today's Rubin pipeline's Task records about producing (-1: not produced)
PRODUCTION_METADATA = (
    "visit_midpoint",
    "produce_start_timestamp",
    "produce_end_timestamp",
    "alert_timing_since_shutter_close",
    "total_alerts",
)


@dataclass
class PackageResult:
    """What one run of the packager produced.

    Attributes
    ----------
    alerts : `AlertBatch`
        The encoded alerts (decoded on access).
    paths : `list` [`pathlib.Path`]
        Alert files written, one per ccdVisit.
    delivered, failed : `int`
        Kafka outcome (0 when not producing).
    failed_path : `pathlib.Path` or `None`
        Failed-alerts file of this run, if one was written.
    cutout_status : `dict` [`str`, `int`]
        ``"<image>:<CutoutStatus name>"`` -> count.
    unmatched_orbits : `int`
        Solar-system sources given no orbit because no ``mpc_orbits`` row
        matches (their orbit field is null).
    stage_seconds : `dict` [`str`, `float`]
        Wall time of each stage of the run.
    n_stamps : `int`
        Cutouts the alerts carry (all images).
    stamp_bytes : `int`
        Their total size in bytes, as carried (compressed when configured).
    absent : `dict` [`str`, `str`]
        What the alerts lack because an input was not given (a catalog, an
        image, a PSF): input -> one sentence saying what is null. Keys are
        catalog names (``"diaObjectCat"``, ``"ssSource"``, ...), image names
        (``"template"``) and ``"<image> PSF"``.
    renamed : `dict` [`str`, `dict` [`str`, `str`]]
        Catalog -> {schema field: the column read for it under another
        name} (see `alertpack.packets.conform`).
    visit_midpoint_mjd_tai : `float` or `None`
        The visit's exposure midpoint (the difference image's, else the
        sources' when they share one), MJD TAI.
    exposure_time_s : `float` or `None`
        The difference image's exposure time, seconds.
    produce_start, produce_end : `float` or `None`
        Unix time (s) around the Kafka delivery; `None` when not producing.
    """

    alerts: AlertBatch
    paths: list[Path] = field(default_factory=list)
    delivered: int = 0
    failed: int = 0
    failed_path: Path | None = None
    cutout_status: dict[str, int] = field(default_factory=dict)
    unmatched_orbits: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    n_stamps: int = 0
    stamp_bytes: int = 0
    absent: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, dict[str, str]] = field(default_factory=dict)
    visit_midpoint_mjd_tai: float | None = None
    exposure_time_s: float | None = None
    produce_start: float | None = None
    produce_end: float | None = None

    def production_metadata(self) -> dict[str, float]:
        """Today's Rubin pipeline's production metadata (`PRODUCTION_METADATA`).

        ``visit_midpoint`` (Unix seconds, UTC, of the exposure midpoint; -1
        when unknown), ``produce_start_timestamp`` and
        ``produce_end_timestamp`` (Unix seconds around the Kafka delivery),
        ``alert_timing_since_shutter_close`` (delivery end minus the
        exposure's end, seconds; -1 without the exposure time),
        ``total_alerts`` (alerts delivered); all -1 but ``visit_midpoint``
        when not producing. Computed when asked: the time scales (ERFA and
        astropy's leap seconds) load only then.
        """
        production = dict.fromkeys(PRODUCTION_METADATA, -1.0)
        midpoint_mjd = self.visit_midpoint_mjd_tai
        midpoint = -1.0 if midpoint_mjd is None else float(unix_seconds_of_mjd_tai(midpoint_mjd))
        production["visit_midpoint"] = midpoint
        if self.produce_start is None or self.produce_end is None:
            return production
        production["produce_start_timestamp"] = self.produce_start
        production["produce_end_timestamp"] = self.produce_end
        production["total_alerts"] = float(self.delivered)
        if midpoint_mjd is not None and self.exposure_time_s is not None:
            production["alert_timing_since_shutter_close"] = self.produce_end - (
                midpoint + self.exposure_time_s / 2
            )
        return production

    @property
    def n_alerts(self) -> int:
        """Number of alerts packaged."""
        return len(self.alerts)

    @property
    def bytes_per_alert(self) -> float:
        """Mean size of an encoded alert, bytes (0 without alerts)."""
        return self.alerts.nbytes / self.n_alerts if self.n_alerts else 0.0

    @property
    def bytes_per_stamp(self) -> float:
        """Mean size of a cutout as carried, bytes (0 without cutouts)."""
        return self.stamp_bytes / self.n_stamps if self.n_stamps else 0.0

    def counts(self) -> dict[str, int]:
        """The run's counts as metadata entries (nAlerts, nBytes, bytesPerAlert, nStamps,
        nBytesStamps, bytesPerStamp, cutouts_..., nDelivered, ...)."""
        counts = {
            "nAlerts": self.n_alerts,
            "nBytes": self.alerts.nbytes,
            "bytesPerAlert": round(self.bytes_per_alert),
            "nStamps": self.n_stamps,
            "nBytesStamps": self.stamp_bytes,
            "bytesPerStamp": round(self.bytes_per_stamp),
        }
        for key, count in sorted(self.cutout_status.items()):
            counts[f"cutouts_{key.replace(':', '_')}"] = count
        counts["nOrbitsUnmatched"] = self.unmatched_orbits
        counts["nDelivered"] = self.delivered
        counts["nFailed"] = self.failed
        return counts


class AlertPackager:
    """Package DiaSources, their objects, history and image cutouts into alerts.

    Parameters
    ----------
    config : `PackageAlertsConfig`, optional
        Validated here; Kafka settings are resolved and the broker checked
        here too, so that a missing server, an unreachable broker or a
        missing topic fails before any work is done.
    log : `logging.Logger` or `logging.LoggerAdapter`, optional
        Where progress and non-fatal outcomes are logged (the Task gives its own).

    Notes
    -----
    With ``doProduceAlerts`` the packager creates its Kafka producer here
    (`producer`) and checks the connection and the topic within
    ``maxTimeout`` (`AlertProducer.check_connection`, as ``kafkaCheck``
    says); the idempotent producer's initialisation then runs in the
    background while the first run packages, and every run reuses it.
    `close` (or the context manager, or a finalizer at exit) flushes and
    closes it.
    """

    def __init__(
        self,
        config: PackageAlertsConfig | None = None,
        *,
        log: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        self.config = config if config is not None else PackageAlertsConfig()
        self.config.validate()
        self.log: logging.Logger | logging.LoggerAdapter[Any] = (
            log if log is not None else logging.getLogger("alertpack")
        )
        self.schema = load_schema(self.config.schemaVersion)
        self.encoder = AlertEncoder(self.schema)
        self.kafka_settings: KafkaSettings | None = None
        #: the Kafka producer every run sends with (`None` without doProduceAlerts)
        self.producer: AlertProducer | None = None
        if self.config.doProduceAlerts:
            # the producer loads confluent_kafka (~0.06 s): only with doProduceAlerts
            from alertpack.kafka.producer import AlertProducer

            self.kafka_settings = KafkaSettings.from_config(self.config)
            producer = AlertProducer(
                self.kafka_settings,
                failed_dir=self.failed_dir,
                write_failed=self.config.doWriteFailedAlerts,
                log=self.log,
            )
            try:
                # as upstream's Task: the broker answers and has the topic, or no work is done
                if self.config.kafkaCheck != "none":
                    producer.check_connection(
                        self.config.maxTimeout, require_topic=self.config.kafkaCheck == "topic"
                    )
            except BaseException:
                producer.close()
                raise
            self.producer = producer

    # ------------------------------------------------------------------

    def run(
        self,
        inputs: VisitInputs,
        *,
        stage_timer: StageTimer | None = None,
        file_naming: str | None = None,
    ) -> PackageResult:
        """Package one run's sources into alerts, written and sent as configured.

        Parameters
        ----------
        inputs : `~alertpack.visit_inputs.VisitInputs`
            The catalogs, images, ids and scheduler fields of the run (see
            `PackageAlertsTask.run` for what each means).
        stage_timer : callable, optional
            A context-manager factory called with each stage's name (the
            Task passes its ``timer``); stage times are also returned in
            `PackageResult.stage_seconds`.
        file_naming : `str`, optional
            How the caller's call names alert files when config
            ``alertFileNaming`` is ``"auto"``: ``"visit_detector"`` (today's
            Rubin call) or ``"ccdVisitId"`` (the default).

        Raises
        ------
        InputError
            A catalog or image the run cannot use; for catalogs read from
            files (``inputs.files``) the message names the file.
        """
        try:
            return self._run(inputs, stage_timer, self.file_naming(file_naming))
        except InputError as error:
            if not inputs.files:
                raise
            raise name_catalog_files(error, inputs.files) from None

    def file_naming(self, asked: str | None = None) -> str:
        """How alert files are named (`file_naming_of` this packager's config)."""
        return file_naming_of(self.config, asked)

    def _run(
        self, inputs: VisitInputs, stage_timer: StageTimer | None, file_naming: str
    ) -> PackageResult:
        timings: dict[str, float] = {}
        stage = _timed_stages(timings, stage_timer)
        with stage("prepareCatalogs"):
            catalogs = self.prepare(inputs, file_naming=file_naming)
        for catalog, columns in catalogs.renamed.items():
            for field_name, column in columns.items():
                self.log.info("%s column %r is read as %s.", catalog, column, field_name,
                              extra={SUMMARIZED: True})
        if catalogs.n_alerts == 0:
            self.log.info("No DiaSources to package; no alert file written.")
            # the metadata still says when the visit was, as upstream's (no image is cut)
            visit_info = image_visit_info(inputs.diffIm, name="difference")
            return PackageResult(alerts=self.batch(catalogs, []), stage_seconds=timings,
                                 renamed=catalogs.renamed,
                                 visit_midpoint_mjd_tai=_visit_midpoint(visit_info, catalogs),
                                 exposure_time_s=visit_info.exposure_time_s)

        with stage("makeCutouts"):
            images = self.open_images(inputs.images())
            visit_info = image_visit_info(images.get("difference"), name="difference")
            fill_scheduler_fields(catalogs, visit_info.observation_reason, visit_info.target_name)
            cutouts, statuses, missing_psf = self.make_cutouts(catalogs, images)
        with stage("encodeAlerts"):
            batch = self.encode(catalogs, cutouts)
        stamps = [blob for blobs in cutouts.values() for blob in blobs if blob is not None]
        result = PackageResult(alerts=batch, cutout_status=dict(statuses), stage_seconds=timings,
                               unmatched_orbits=catalogs.n_unmatched_orbits,
                               n_stamps=len(stamps), stamp_bytes=sum(map(len, stamps)),
                               renamed=catalogs.renamed,
                               absent=self._absent(catalogs, inputs, missing_psf, statuses),
                               visit_midpoint_mjd_tai=_visit_midpoint(visit_info, catalogs),
                               exposure_time_s=visit_info.exposure_time_s)
        for sentence in result.absent.values():
            self.log.warning("%s.", sentence, extra={SUMMARIZED: True})
        if result.unmatched_orbits:
            self.log.warning(
                "%d solar-system source(s) match no mpc_orbits row (by ssObjectId or "
                "designation): their orbit is null.", result.unmatched_orbits,
            )
        if self.config.doWriteAlerts:
            with stage("writeAlerts"):
                result.paths = self.write(batch)
        if self.config.doProduceAlerts:
            with stage("produceAlerts"):
                result.produce_start = time.time()
                try:
                    delivery = self.produce(batch)
                finally:
                    # recorded also when interrupted, as upstream's
                    result.produce_end = time.time()
            result.delivered = delivery.delivered
            result.failed = delivery.failed
            result.failed_path = delivery.failed_path
        self.log.info(
            "Packaged %d alerts (%d bytes) into %d file(s).",
            len(batch), batch.nbytes, len(result.paths),
        )
        return result

    # ------------------------------------------------------------------
    # the stages of a run, each usable on its own

    def prepare(self, inputs: VisitInputs, *, file_naming: str | None = None) -> VisitCatalogs:
        """Validate the catalogs once against the schema into typed columns."""
        return prepare_visit(self.schema, inputs, file_naming=self.file_naming(file_naming))

    def open_images(self, images: Mapping[str, Any]) -> dict[str, Any]:
        """The run's images with their FITS files opened (lazily: headers checked, no pixels).

        Images in memory stay as given: `make_cutouts` converts one at a
        time, so that a run holds one converted image, not three.
        """
        return {
            name: as_survey_image(image, name=name)
            if isinstance(image, (str, os.PathLike)) else image
            for name, image in images.items()
        }

    def make_cutouts(
        self, catalogs: VisitCatalogs, images: Mapping[str, Any]
    ) -> tuple[dict[str, list[bytes | None]], Counter[str], dict[str, str]]:
        """FITS cutouts of every configured image around every source.

        ``images``: image name -> any image input (`open_images` opens the
        files of a run once). The template's stamps get the boresight
        rotation of the science image (else the difference image), as today's
        Rubin pipeline gives them: the template is warped onto the science
        exposure's pixels, and a coadd's own header has none.

        Returns
        -------
        cutouts : `dict` [`str`, `list`]
            Alert field (``cutoutDifference``, ...) -> FITS bytes or `None` per source.
        statuses : `collections.Counter`
            ``"<image>:<CutoutStatus name>"`` -> count, and ``"<image>:NO_PSF"``
            -> the stamps of an image without a PSF.
        missing_psf : `dict` [`str`, `str`]
            Image name -> why it has no PSF, for the images without one.
        """
        sources = catalogs.sources
        dec_column = "dec" if "dec" in sources.columns else "decl"
        ra, dec = sources.columns["ra"], sources.columns[dec_column]
        sizes = cutout_sizes(
            sources.n_rows,
            self.config.cutoutSize,
            bbox_size=self._bbox_sizes(catalogs),
            min_size=self.config.minCutoutSize,
            max_size=self.config.maxCutoutSize,
        )
        cutouts: dict[str, list[bytes | None]] = {}
        statuses: Counter[str] = Counter()
        missing_psf: dict[str, str] = {}
        for name in self.config.cutouts:
            field_name = CUTOUT_FIELDS[name]
            if field_name not in self.schema.field_names:
                continue
            if images.get(name) is None:
                if name == "difference":
                    raise InputError(
                        "diffIm is None but the config asks for difference cutouts; pass the "
                        "difference image or remove 'difference' from config.cutouts"
                    )
                self.log.debug("No %s image given: %s left null.", name, field_name)
                continue
            image = as_survey_image(images[name], name=name)
            if name == "template":
                image = _with_boresight_of(image, images.get("science"), images.get("difference"))
            blobs, outcome = make_cutout_bytes(
                image, ra, dec, sizes,
                compression=self.config.cutoutCompression,
                orientation=self.config.cutoutOrientation,
                psf_per_source=not self.config.useAveragePsf,
            )
            cutouts[field_name] = blobs
            for status, count in zip(*np.unique(outcome, return_counts=True), strict=True):
                statuses[f"{name}:{CutoutStatus(status).name}"] += int(count)
            if image.psf is None:
                statuses[f"{name}:NO_PSF"] = sum(blob is not None for blob in blobs)
                missing_psf[name] = image.psf_note or "none given"
        for key, count in sorted(statuses.items()):
            if not key.endswith((":OK", ":NO_PSF")) and count:
                self.log.info("%d %s cutout(s) %s.", count, *key.split(":"))
        return cutouts, statuses, missing_psf

    def _absent(
        self, catalogs: VisitCatalogs, inputs: VisitInputs, missing_psf: dict[str, str],
        statuses: Counter[str],
    ) -> dict[str, str]:
        """What the alerts lack for want of an input: catalogs, images, PSFs."""
        absent = absent_catalogs(catalogs)
        images = inputs.images()
        for name in self.config.cutouts:
            field_name = CUTOUT_FIELDS[name]
            if field_name in self.schema.field_names and images.get(name) is None:
                absent[name] = f"no {name} image: {field_name} is null in every alert"
        for name, reason in missing_psf.items():
            absent[f"{name} PSF"] = (
                f"no PSF for the {name} image ({reason}): its {statuses[f'{name}:NO_PSF']} "
                "stamp(s) carry none (HASPSF = F)"
            )
        return absent

    def _bbox_sizes(self, catalogs: VisitCatalogs) -> np.ndarray | None:
        sources = catalogs.sources
        if not self.config.useBboxSize or "bboxSize" not in sources.columns:
            return None
        bbox = sources.columns["bboxSize"].astype(np.float64)
        bbox_nulls = sources.nulls.get("bboxSize")
        if bbox_nulls is not None:
            bbox[bbox_nulls] = np.nan  # cutout_sizes falls back to cutoutSize
        return bbox

    def encode(
        self, catalogs: VisitCatalogs, cutouts: dict[str, list[bytes | None]]
    ) -> AlertBatch:
        """Assemble and encode one alert per source."""
        parts = build_alert_parts(catalogs, cutouts, window_days=self.config.historyWindowDays)
        return self.batch(catalogs, self.encoder.encode(parts))

    def batch(self, catalogs: VisitCatalogs, payloads: list[bytes]) -> AlertBatch:
        """An `AlertBatch` of encoded ``payloads`` with the routing keys of ``catalogs``."""
        sources = catalogs.sources
        object_ids = sources.columns["diaObjectId"].copy()
        object_nulls = sources.nulls.get("diaObjectId")
        if object_nulls is not None:
            object_ids[object_nulls] = -1
        return AlertBatch(
            schema=self.schema,
            payloads=payloads,
            alert_ids=sources.columns["diaSourceId"],
            object_ids=object_ids,
            ccd_visit_ids=catalogs.ccd_visit_ids,
            times_mjd_tai=sources.columns[time_column(sources)],
            visits=catalogs.visits,
            detectors=catalogs.detectors,
            file_naming=catalogs.file_naming,
        )

    def write(self, batch: AlertBatch) -> list[Path]:
        """Write the batch to one Avro file per ccdVisit (or visit and detector) under
        ``alertWriteLocation``."""
        return write_alert_files(
            batch, self.config.alertWriteLocation, codec=self.config.fileCodec,
            overwrite=self.config.overwriteAlertFiles,
        )

    def produce(self, batch: AlertBatch) -> DeliveryResult:
        """Send the batch to Kafka with the packager's producer.

        Undelivered alerts go to this run's failed-alert file, also when the
        run is interrupted (then ``producer.last_result`` tells where).

        Returns
        -------
        result : `alertpack.kafka.producer.DeliveryResult`
            This run's alerts only.
        """
        if self.producer is None:
            raise InputError("this packager does not produce alerts: set doProduceAlerts")
        self._warn_oversized(batch)
        observation_time = self.config.kafkaTimestamp == "observation"
        result = self.producer.send(batch.outgoing(observation_time=observation_time))
        for reason, count in result.reasons.items():
            self.log.warning("%d alert(s) not delivered: %s", count, reason)
        return result

    def _warn_oversized(self, batch: AlertBatch) -> None:
        """Say before producing when alerts exceed the producer's ``message.max.bytes``."""
        limit = (
            self.kafka_settings.message_max_bytes if self.kafka_settings is not None
            else self.config.kafkaMessageMaxBytes
        )
        sizes = np.fromiter(map(len, batch.payloads), dtype=np.int64, count=len(batch))
        sizes += WIRE_HEADER_SIZE
        over = sizes > limit
        if over.any():
            self.log.warning(
                "%d alert(s) of up to %d bytes exceed the producer's message.max.bytes (%d): "
                "they will not be delivered and go to the failed-alert file; raise "
                "kafkaMessageMaxBytes (and the broker's and topic's limits) or make the "
                "cutouts smaller (cutoutCompression=gzip, maxCutoutSize)",
                int(over.sum()), int(sizes.max()), limit,
            )

    @property
    def failed_dir(self) -> Path:
        """Failed-alert files go here: failedAlertsLocation or <alertWriteLocation>/failed."""
        config = self.config
        return Path(config.failedAlertsLocation or Path(config.alertWriteLocation, "failed"))

    def close(self) -> None:
        """Flush and close the Kafka producer, when the packager has one."""
        if self.producer is not None:
            self.producer.close()

    def __enter__(self) -> AlertPackager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_boresight_of(template: SurveyImage, *images: Any) -> SurveyImage:
    """``template`` with the boresight rotation of the first of ``images`` that records one."""
    for image in images:
        info = image_visit_info(image, name="image")
        if info.boresight_rotation_deg is not None:
            return dataclasses.replace(template, visit_info=dataclasses.replace(
                template.visit_info,
                boresight_rotation_deg=info.boresight_rotation_deg,
                rotation_type=info.rotation_type,
            ))
    return template


def _visit_midpoint(visit_info: VisitInfo, catalogs: VisitCatalogs) -> float | None:
    """The visit's exposure midpoint (MJD TAI): the difference image's, else the sources'."""
    midpoint = visit_info.midpoint_mjd_tai
    return midpoint if midpoint is not None else _single_time(catalogs)


def _single_time(catalogs: VisitCatalogs) -> float | None:
    """The sources' exposure midpoint (MJD TAI) when they all share one, else `None`."""
    times = catalogs.sources.columns[time_column(catalogs.sources)]
    if len(times) == 0 or not np.all(times == times[0]) or not np.isfinite(times[0]):
        return None
    return float(times[0])


def _timed_stages(
    timings: dict[str, float], outer: StageTimer | None
) -> Callable[[str], AbstractContextManager[None]]:
    """A stage context manager that records wall time, inside ``outer``'s when given."""

    @contextlib.contextmanager
    def stage(name: str) -> Iterator[None]:
        with outer(name) if outer is not None else contextlib.nullcontext():
            start = time.perf_counter()
            try:
                yield
            finally:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - start

    return stage



def file_naming_of(config: PackageAlertsConfig, asked: str | None = None) -> str:
    """How a run names its alert files: config ``alertFileNaming``, or ``asked`` when it is auto.

    ``asked`` is what the caller's call implies (the Task: ``"visit_detector"``
    for today's Rubin pipeline's call); the command line and workers ask
    nothing, so ``auto`` is ``"ccdVisitId"`` there.
    """
    naming = config.alertFileNaming
    if naming != "auto":
        return str(naming)
    return asked or "ccdVisitId"
