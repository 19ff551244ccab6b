"""A survey-cadence alert stream for brokers to test their consumers against.

`plan_stream` draws how many alerts each visit has (around ``mean_alerts``,
with bursts up to ``burst_alerts``) and spreads them over the detectors;
`simulate_stream` packages visit after visit at the cadence on a
`DetectorExecutor` (local processes or Dask), writing and/or producing from
the workers, and measures each visit's latency: from its scheduled start
to its last alert written and (with Kafka) acknowledged.

Inputs: simulating a full detector (`alertpack.sample.make_visit`) costs
~0.5 s whatever its image size, mostly building catalog tables, which
would make a 189-detector visit take longer than the cadence. So each
worker simulates a few *template* detectors once (``n_templates``, small
images, as many sources as the largest detector of the plan) and caches
them; a detector of a visit takes the first ``n`` sources of template
``detector % n_templates``, re-identified for its visit and detector
(diaSourceIds packed from the new ccdVisitId, the visit's time, and
diaObject/history ids moved to the detector so they do not repeat across
detectors). Cutouts are cut from the template's images at the configured
sizes, so packets have realistic sizes (~130 kB with 20 previous sources
and 20 forced measurements per object); positions repeat across detectors
sharing a template.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.errors import InputError
from alertpack.scaleout.jobs import DetectorJob, DetectorSummary
from alertpack.visit_inputs import VisitInputs

if TYPE_CHECKING:
    from alertpack.sample import SampleVisit

__all__ = [
    "StreamPlan",
    "StreamSummary",
    "VisitRecord",
    "plan_stream",
    "simulate_stream",
    "stream_detector_loader",
]

#: first visit number of a simulated stream (YYYYMMDDnnnnn: a night's 1st visit)
FIRST_VISIT = 2026112500001
#: sources of a template detector with at least this many (make_visit's edges and asteroid)
MIN_TEMPLATE_SOURCES = 8


@dataclass(frozen=True)
class StreamPlan:
    """Alerts per visit and detector of a simulated stream.

    Attributes
    ----------
    visits : `numpy.ndarray` [int64]
        Visit numbers, one per visit.
    counts : `numpy.ndarray` [int64], shape (n_visits, n_detectors)
        Alerts of each detector of each visit.
    bursts : `numpy.ndarray` [bool]
        Visits drawn as bursts.
    """

    visits: np.ndarray
    counts: np.ndarray
    bursts: np.ndarray

    @property
    def n_detectors(self) -> int:
        return self.counts.shape[1]

    @property
    def largest_detector(self) -> int:
        """Most alerts of any detector of any visit."""
        return int(self.counts.max(initial=0))


def plan_stream(
    n_visits: int, n_detectors: int = 189, *, mean_alerts: int = 10_000,
    burst_alerts: int = 40_000, burst_fraction: float = 0.05, seed: int = 0,
) -> StreamPlan:
    """Draw the alerts of each visit and spread them over the detectors.

    A visit has ``mean_alerts`` alerts give or take 10% (normal), or, with
    probability ``burst_fraction``, a burst drawn uniformly between
    ``mean_alerts`` and ``burst_alerts``; its alerts fall on the detectors
    at random (multinomial, equal odds).
    """
    if n_visits < 1 or n_detectors < 1:
        raise InputError(f"give at least one visit and one detector (got {n_visits}, "
                         f"{n_detectors})")
    if not 1 <= n_detectors <= 189:
        raise InputError(f"n_detectors={n_detectors}: LSSTCam has 189 science detectors")
    if mean_alerts < 1 or burst_alerts < mean_alerts or not 0 <= burst_fraction <= 1:
        raise InputError(
            f"alerts per visit: need 1 <= mean ({mean_alerts}) <= burst ({burst_alerts}) and "
            f"0 <= burst fraction ({burst_fraction}) <= 1"
        )
    rng = np.random.default_rng(seed)
    bursts = rng.random(n_visits) < burst_fraction
    normal = np.rint(rng.normal(mean_alerts, 0.1 * mean_alerts, n_visits))
    burst = rng.integers(mean_alerts, burst_alerts, n_visits, endpoint=True)
    totals = np.clip(np.where(bursts, burst, normal), 1, None).astype(np.int64)
    counts = np.stack([rng.multinomial(total, np.full(n_detectors, 1 / n_detectors))
                       for total in totals]).astype(np.int64)
    return StreamPlan(np.arange(n_visits, dtype=np.int64) + FIRST_VISIT, counts, bursts)


# ----------------------------------------------------------------------
# inputs of one detector of one visit, from a cached template


@functools.lru_cache(maxsize=32)
def _template(slot: int, n_sources: int, image_shape: tuple[int, int], seed: int,
              schema_version: str | None) -> SampleVisit:
    """One simulated template detector, cached per worker process."""
    # alertpack.sample (~30 ms) only in the workers: the parent plans and hands visits out
    from alertpack.sample import make_visit

    return make_visit(
        max(n_sources, MIN_TEMPLATE_SOURCES), image_shape, seed=seed + slot, visit=FIRST_VISIT,
        detector=slot, index_layout="columns", schema_version=schema_version,
    )


def _shift(frame: Any, columns: tuple[str, ...], offset: float) -> None:
    """Add ``offset`` to ``columns`` of ``frame`` in place (ids, or times in days)."""
    for column in columns:
        if column in frame.columns:
            frame[column] = frame[column] + offset


def _rows_of(frame: Any, object_ids: Any) -> Any:
    """A copy of the rows of ``frame`` whose diaObjectId is in ``object_ids``."""
    return frame[frame["diaObjectId"].isin(object_ids)].copy()


def _retarget(template: SampleVisit, visit: int, detector: int, n_sources: int) -> VisitInputs:
    """The template's first ``n_sources`` as detector ``detector`` of ``visit``."""
    from alertpack.sample.ids import _COUNTER_BITS, ccd_visit_id, visit_midpoint_mjd  # workers only

    old_ccd = int(ccd_visit_id(template.visit, template.detector))
    new_ccd = int(ccd_visit_id(visit, detector))
    source_offset = (new_ccd - old_ccd) << _COUNTER_BITS
    detector_offset = (detector - template.detector) << _COUNTER_BITS
    days = float(visit_midpoint_mjd(visit) - visit_midpoint_mjd(template.visit))

    sources = template.diaSourceCat.iloc[:n_sources].copy()
    # only the objects of the kept sources, with their history: as the real pipeline gives
    objects_kept = sources["diaObjectId"].dropna()
    _shift(sources, ("diaSourceId", "parentDiaSourceId"), source_offset)
    _shift(sources, ("diaObjectId",), detector_offset)
    _shift(sources, ("midpointMjdTai", "timeProcessedMjdTai"), days)
    sources["visit"] = visit
    sources["detector"] = detector
    objects = _rows_of(template.diaObjectCat, objects_kept)
    _shift(objects, ("diaObjectId",), detector_offset)
    history = _rows_of(template.diaSrcHistory, objects_kept)
    _shift(history, ("diaSourceId", "parentDiaSourceId", "diaObjectId"), detector_offset)
    forced = _rows_of(template.diaForcedSources, objects_kept)
    _shift(forced, ("diaForcedSourceId", "diaObjectId"), detector_offset)
    kept = template.diaSourceCat["diaSourceId"].iloc[:n_sources]
    ss_source = template.ssSource[template.ssSource["diaSourceId"].isin(kept)].copy()
    _shift(ss_source, ("diaSourceId",), source_offset)
    return dataclasses.replace(
        template.inputs(),
        diaSourceCat=sources,
        diaObjectCat=objects,
        diaSrcHistory=history,
        diaForcedSources=forced,
        ssSource=ss_source,
    )


@dataclass(frozen=True)
class StreamDetectorLoader:
    """Picklable loader of one detector of one simulated visit (see the module notes)."""

    visit: int
    detector: int
    n_sources: int
    template_sources: int
    n_templates: int = 16
    image_shape: tuple[int, int] = (512, 512)
    seed: int = 0
    schema_version: str | None = None

    def __call__(self) -> VisitInputs:
        template = _template(self.detector % self.n_templates, self.template_sources,
                             self.image_shape, self.seed, self.schema_version)
        return _retarget(template, self.visit, self.detector, self.n_sources)


def stream_detector_loader(visit: int, detector: int, n_sources: int, template_sources: int,
                           **options: Any) -> StreamDetectorLoader:
    """A loader of one detector of one simulated visit (options: see `StreamDetectorLoader`)."""
    return StreamDetectorLoader(visit, detector, n_sources, template_sources, **options)


# ----------------------------------------------------------------------
# the stream


@dataclass
class VisitRecord:
    """One visit of the stream: what it produced and how late it finished.

    ``latency`` (s) runs from the visit's scheduled start (``index * cadence``
    after the stream's start) to its last detector written and acknowledged,
    so a stream falling behind its cadence shows it.
    """

    visit: int
    n_alerts: int
    n_bytes: int
    latency: float
    seconds: float
    burst: bool
    n_delivered: int = 0
    n_failed: int = 0
    failures: list[DetectorSummary] = field(default_factory=list)


@dataclass
class StreamSummary:
    """Totals over the visits of a stream."""

    visits: list[VisitRecord] = field(default_factory=list)
    seconds: float = 0.0
    cadence: float = 0.0

    @property
    def n_alerts(self) -> int:
        return sum(v.n_alerts for v in self.visits)

    @property
    def n_bytes(self) -> int:
        return sum(v.n_bytes for v in self.visits)

    @property
    def alerts_per_second(self) -> float:
        return self.n_alerts / self.seconds if self.seconds > 0 else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return self.n_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def latency_percentile(self, percent: float) -> float:
        """Latency (s) at ``percent`` over the visits."""
        latencies = [v.latency for v in self.visits]
        return float(np.percentile(latencies, percent)) if latencies else 0.0

    def duration_percentile(self, percent: float) -> float:
        """Time (s) from a visit's actual start to its end, at ``percent`` over the visits.

        Unlike the latency, it leaves out the wait for earlier visits when the
        stream is behind its cadence.
        """
        durations = [v.seconds for v in self.visits]
        return float(np.percentile(durations, percent)) if durations else 0.0

    @property
    def late_visits(self) -> int:
        """Visits whose latency exceeded the cadence (0 when as fast as possible)."""
        return sum(v.latency > self.cadence for v in self.visits) if self.cadence > 0 else 0

    @property
    def failures(self) -> list[DetectorSummary]:
        return [f for v in self.visits for f in v.failures]


def _visit_jobs(plan: StreamPlan, index: int, loader_options: dict[str, Any]) -> list[DetectorJob]:
    visit = int(plan.visits[index])
    return [
        DetectorJob(
            f"{visit}/{detector}",
            stream_detector_loader(visit, detector, int(count), plan.largest_detector,
                                   **loader_options),
        )
        for detector, count in enumerate(plan.counts[index])
        if count > 0
    ]


def simulate_stream(
    plan: StreamPlan, executor: Any, *, cadence: float = 30.0,
    loader_options: dict[str, Any] | None = None,
    on_visit: Callable[[VisitRecord, StreamSummary], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> StreamSummary:
    """Package the visits of ``plan`` at ``cadence`` on ``executor``.

    Parameters
    ----------
    plan : `StreamPlan`
    executor : `alertpack.scaleout.pool.DetectorExecutor`
        Where the detectors run; kept for every visit, so its workers' packagers
        and producers stay warm.
    cadence : `float`
        Seconds between visit starts; 0 starts each visit when the last ends.
    loader_options : `dict`, optional
        ``n_templates``, ``image_shape``, ``seed``, ``schema_version`` of
        the detector loaders.
    on_visit : callable, optional
        Called after each visit with its record and the summary so far.
    """
    loader_options = loader_options or {}
    summary = StreamSummary(cadence=cadence)
    start = clock()
    for index in range(len(plan.visits)):
        scheduled = start + index * cadence
        wait = scheduled - clock()
        if wait > 0:
            time.sleep(wait)
        begun = clock()
        visit = executor.run(_visit_jobs(plan, index, loader_options))
        finished = clock()
        record = VisitRecord(
            visit=int(plan.visits[index]), n_alerts=visit.n_alerts, n_bytes=visit.n_bytes,
            latency=finished - (scheduled if cadence > 0 else begun), seconds=finished - begun,
            burst=bool(plan.bursts[index]), n_delivered=visit.n_delivered,
            n_failed=visit.n_failed, failures=visit.failures,
        )
        summary.visits.append(record)
        summary.seconds = finished - start
        if on_visit is not None:
            on_visit(record, summary)
    return summary
