"""Scale-out: package a whole visit, detector by detector, on every core or a cluster.

A Rubin visit is 189 detectors. Each detector is an independent job: its
catalogs and images are loaded *inside* a worker by a picklable loader,
packaged by the worker's long-lived `AlertPackager`, written and produced
there, and only a small `DetectorSummary` comes back. Memory therefore stays
at one detector's working set per worker, however large the visit.

`DetectorExecutor` runs the jobs on an engine (`LocalPoolEngine`, the
default, or `DaskEngine` with a scheduler address) with one policy: jobs
submitted as the engine can take them, a job that raises is retried once,
then reported as a failed detector; the others carry on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from alertpack.scaleout.jobs import (
    DetectorJob,
    DetectorLoader,
    DetectorSummary,
    run_detector,
    sample_detector_loader,
)

__all__ = [
    "DetectorExecutor",
    "DetectorJob",
    "DetectorSummary",
    "VisitSummary",
    "package_detectors",
    "sample_detector_loader",
]

#: attempts of a job that raises: the first and one retry
MAX_ATTEMPTS = 2


@dataclass
class VisitSummary:
    """Totals over the detectors of a visit.

    ``detectors`` holds the packaged detectors, ``failures`` those that
    failed (with their reason). ``redone`` counts detectors whose job started
    more than once (retried, or its worker died): with Kafka on, the alerts
    of such a detector may have been sent twice (``n_possible_duplicates``).
    """

    detectors: list[DetectorSummary] = field(default_factory=list)
    failures: list[DetectorSummary] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1
    engine: str = ""
    producing: bool = False

    @property
    def n_alerts(self) -> int:
        return sum(d.n_alerts for d in self.detectors)

    @property
    def n_bytes(self) -> int:
        return sum(d.n_bytes for d in self.detectors)

    @property
    def n_delivered(self) -> int:
        return sum(d.n_delivered for d in self.detectors)

    @property
    def n_failed(self) -> int:
        """Alerts not delivered to Kafka (in failed-alert files)."""
        return sum(d.n_failed for d in self.detectors)

    @property
    def cpu_seconds(self) -> float:
        """CPU time of the workers on the packaged detectors (s)."""
        return sum(d.cpu_seconds for d in self.detectors)

    @property
    def peak_rss_mb(self) -> float:
        """Largest resident memory of any one worker (MB)."""
        return max((d.peak_rss_mb for d in self.detectors), default=0.0)

    @property
    def redone(self) -> list[DetectorSummary]:
        """Packaged detectors whose job ran more than once."""
        return [d for d in self.detectors if d.attempts > 1]

    @property
    def n_possible_duplicates(self) -> int:
        """Alerts that may be in the Kafka topic twice (an upper bound; 0 without Kafka)."""
        return sum(d.n_alerts for d in self.redone) if self.producing else 0


class DetectorExecutor:
    """Run detector jobs on a local process pool or a Dask cluster, one policy for both.

    Parameters
    ----------
    config : `PackageAlertsConfig`, optional
        Configuration of every worker's packager (sent as text).
    workers : `int`, optional
        Local processes (default: all cores; ``1`` runs in this process).
        Ignored with ``scheduler``.
    scheduler : `str`, optional
        Dask scheduler address, ``tcp://HOST:PORT``: one task per detector
        on that cluster.

    Notes
    -----
    The executor (and so each worker's packager and Kafka producer) lives
    until `close`; several `map` calls reuse it, e.g. one per visit.
    """

    def __init__(self, config: Any = None, *, workers: int | None = None,
                 scheduler: str | None = None) -> None:
        from alertpack.config import PackageAlertsConfig
        from alertpack.scaleout.engines import DaskEngine, LocalPoolEngine

        config = config if config is not None else PackageAlertsConfig()
        config.validate()
        self.producing = bool(config.doProduceAlerts)
        self._config_text = config.saveToString()
        self.engine = DaskEngine(scheduler) if scheduler else LocalPoolEngine(workers)

    @property
    def workers(self) -> int:
        return self.engine.workers

    def map(self, jobs: Iterable[DetectorJob]) -> Iterator[DetectorSummary]:
        """Each job's summary as it completes (failed ones with ``error`` set).

        Jobs are consumed lazily, at most the engine's ``in_flight`` submitted
        at once (two per local worker; all of them on Dask).
        """
        in_flight = self.engine.in_flight
        attempts: dict[Any, tuple[DetectorJob, int]] = {}
        pending: set = set()
        finished: list[DetectorSummary] = []
        jobs = iter(jobs)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < in_flight:
                job = next(jobs, None)
                if job is None:
                    exhausted = True
                    break
                future = self.engine.submit(run_detector, self._config_text, job)
                attempts[future] = (job, 1)
                pending.add(future)
            if not pending:
                break
            done, pending = self.engine.wait_first(pending)
            for future in done:
                job, attempt = attempts.pop(future)
                summary = self._outcome(future, job, attempt)
                if summary is None:  # raised: once more
                    retry = self.engine.submit(run_detector, self._config_text, job)
                    attempts[retry] = (job, attempt + 1)
                    pending.add(retry)
                    continue
                finished.append(summary)
                yield summary
        self._count_hidden_restarts(finished)

    def _outcome(self, future: Any, job: DetectorJob, attempt: int) -> DetectorSummary | None:
        """The job's summary; `None` when it raised and may be retried."""
        try:
            summary = future.result()
        except Exception as error:
            if attempt < MAX_ATTEMPTS:
                return None
            reason = str(error).strip().splitlines()
            text = f"{type(error).__name__}: {reason[0] if reason else ''}".rstrip(": ")
            summary = DetectorSummary(name=job.name, error=text)
        summary.attempts = attempt
        return summary

    def _count_hidden_restarts(self, summaries: list[DetectorSummary]) -> None:
        """Attempts the engine redid unseen (a Dask worker died mid-job)."""
        starts = self.engine.job_starts()
        for summary in summaries:
            summary.attempts = max(summary.attempts, starts.get(summary.name, 0))

    def run(self, jobs: Iterable[DetectorJob],
            on_detector: Callable[[DetectorSummary], None] | None = None) -> VisitSummary:
        """Run every job; a `VisitSummary` of the packaged and the failed detectors."""
        summary = VisitSummary(workers=self.workers, engine=self.engine.description,
                               producing=self.producing)
        start = time.perf_counter()
        for detector in self.map(jobs):
            (summary.detectors if detector.ok else summary.failures).append(detector)
            if on_detector is not None:
                on_detector(detector)
        summary.seconds = time.perf_counter() - start
        return summary

    def close(self) -> None:
        """Stop the local workers (their packagers close) or disconnect from Dask."""
        self.engine.close()

    def __enter__(self) -> DetectorExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_jobs(loaders: Iterable[DetectorLoader | DetectorJob]) -> Iterator[DetectorJob]:
    for index, loader in enumerate(loaders):
        yield loader if isinstance(loader, DetectorJob) else DetectorJob(str(index), loader)


def package_detectors(
    loaders: Iterable[DetectorLoader | DetectorJob], config: Any = None, *,
    workers: int | None = None, scheduler: str | None = None,
    on_detector: Callable[[DetectorSummary], None] | None = None,
) -> VisitSummary:
    """Package many detectors, each loaded and packaged inside a worker.

    Parameters
    ----------
    loaders : iterable of callables or `DetectorJob`
        One picklable, argument-less callable per detector returning the
        keyword arguments of `AlertPackager.run` (e.g.
        `sample_detector_loader` or `alertpack.scaleout.jobs.visit_dir_loader`),
        or a named `DetectorJob`. Consumed lazily.
    config : `PackageAlertsConfig`, optional
        Configuration of every detector's packager.
    workers : `int`, optional
        Local processes; default all cores. ``1`` runs in this process.
    scheduler : `str`, optional
        Run on this Dask cluster instead (``tcp://HOST:PORT``).
    on_detector : callable, optional
        Called with each detector's summary as it completes (progress).

    Returns
    -------
    summary : `VisitSummary`
        Packaged and failed detectors; nothing raised for a failed detector.
    """
    with DetectorExecutor(config, workers=workers, scheduler=scheduler) as executor:
        return executor.run(_as_jobs(loaders), on_detector)
