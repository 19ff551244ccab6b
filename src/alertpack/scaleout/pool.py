"""Scale-out: package a whole visit, detector by detector, on every core or a cluster.

A Rubin visit is 189 detectors. Each detector is an independent job: its
catalogs and images are loaded *inside* a worker by a picklable loader,
packaged by the worker's long-lived `AlertPackager`, written and produced
there, and only a small `DetectorSummary` comes back. Memory therefore stays
at one detector's working set per worker, however large the visit.

`DetectorExecutor` runs the jobs on an engine (`LocalPoolEngine`, the
default, or `DaskEngine` with a scheduler address) with one policy: jobs
submitted as the engine can take them, failed jobs retried by `RetryPolicy`,
then reported as failed detectors; the others carry on.

Retries (`RetryPolicy`, by the kind of failure)
-----------------------------------------------
- a `~alertpack.errors.TransientError` (the APDB's database or the Kafka
  broker does not answer): retried with exponential backoff, by default 4
  attempts in all, 2, 4 and 8 s apart (14 s of waiting: a database restart);
- a permanent error (any other `~alertpack.errors.AlertPackError`: a missing
  file, a bad column): reported at once, never retried;
- anything else (a crash, a lost worker): retried once, at once.

A job waiting for its retry holds no worker: the others run meanwhile. Each
`DetectorSummary` says how many attempts its job took (``attempts``) and why
the earlier ones failed (``attempt_errors``).

Secrets
-------
The configuration goes to every job as text, and no job carries a secret
(`job_config`): the Kafka password and any credentials in the server string
or the schema registry URL are taken out of it. Workers read them from their
own environment, as the settings do anyway (``AP_KAFKA_PRODUCER_PASSWORD``,
``AP_KAFKA_SERVER``, ``AP_SCHEMA_REGISTRY_URL``/``_USERNAME``/``_PASSWORD``):
local worker processes are given them in their environment when they start;
a Dask cluster is given none, so a configuration holding one is refused
before anything is submitted (set the variables on the workers instead).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from alertpack.config import PackageAlertsConfig
from alertpack.errors import ConfigError, TransientError
from alertpack.kafka.settings import ENV_PASSWORD, ENV_REGISTRY_URL, ENV_SERVER
from alertpack.redaction import url_secrets
from alertpack.scaleout.engines import DaskEngine, LocalPoolEngine
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
    "RetryPolicy",
    "VisitSummary",
    "job_config",
    "package_detectors",
    "sample_detector_loader",
]


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how soon, `DetectorExecutor` runs a failed job again.

    Attributes
    ----------
    transient_attempts : `int`
        Attempts in all (the first included) of a job failing with a
        `~alertpack.errors.TransientError`.
    first_delay : `float`
        Seconds between the first transient failure and the second attempt.
    backoff : `float`
        Each further wait is this many times the one before.
    max_delay : `float`
        No wait is longer than this (s).
    crash_attempts : `int`
        Attempts in all of a job that raised anything else (a crash, a lost
        worker), retried at once.

    Notes
    -----
    The defaults wait 2, 4 and 8 s: four attempts over 14 s of waiting,
    enough for a database or broker restart. A permanent error is never
    retried.
    """

    transient_attempts: int = 4
    first_delay: float = 2.0
    backoff: float = 2.0
    max_delay: float = 60.0
    crash_attempts: int = 2

    def __post_init__(self) -> None:
        if self.transient_attempts < 1 or self.crash_attempts < 1:
            raise ValueError("RetryPolicy: attempts must be at least 1")
        if self.first_delay < 0 or self.backoff < 1 or self.max_delay < 0:
            raise ValueError("RetryPolicy: delays must be >= 0 and backoff >= 1")

    def delay(self, failed_attempts: int) -> float:
        """Seconds to wait after the ``failed_attempts``-th transient failure (1, 2, ...)."""
        return min(self.first_delay * self.backoff ** (failed_attempts - 1), self.max_delay)

    def delays(self) -> list[float]:
        """Every wait of a job that fails transiently each time (s), in order."""
        return [self.delay(n) for n in range(1, self.transient_attempts)]


@dataclass
class _Tries:
    """A job and its attempts so far: how many started, why the failed ones failed."""

    job: DetectorJob
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class VisitSummary:
    """Totals over the detectors of a visit.

    ``detectors`` holds the packaged detectors, ``failures`` those that
    failed (with their reason). ``redone`` counts detectors whose job started
    more than once (retried, or its worker died): with Kafka on, the alerts
    of such a detector may have been sent twice (``n_possible_duplicates``).
    ``shared_files`` lists the alert files that two packaged detectors both
    reported writing (the later one replaced the other's: only with
    ``overwriteAlertFiles``), as ``(path, first, second)`` detector names.
    """

    detectors: list[DetectorSummary] = field(default_factory=list)
    failures: list[DetectorSummary] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1
    engine: str = ""
    producing: bool = False
    shared_files: list[tuple[str, str, str]] = field(default_factory=list)

    def absent(self) -> dict[str, tuple[int, str]]:
        """Input -> (how many packaged detectors lacked it, the first one's sentence)."""
        found: dict[str, tuple[int, str]] = {}
        for detector in self.detectors:
            for key, sentence in detector.absent.items():
                count, first = found.get(key, (0, f"detector {detector.name}: {sentence}"))
                found[key] = (count + 1, first)
        return found

    def renamed(self) -> dict[str, int]:
        """``"<catalog> column <c> read as <field>"`` -> how many detectors read it so."""
        found: dict[str, int] = {}
        for detector in self.detectors:
            for catalog, columns in detector.renamed.items():
                for field_name, column in columns.items():
                    key = f"{catalog} column {column!r} read as {field_name}"
                    found[key] = found.get(key, 0) + 1
        return found

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


#: config field -> the environment variable a worker's settings read it from when unset
_SECRET_VARIABLES = {
    "kafkaPassword": ENV_PASSWORD,
    "kafkaServer": ENV_SERVER,
    "schemaRegistryUrl": ENV_REGISTRY_URL,
}


def job_config(config: PackageAlertsConfig) -> tuple[str, dict[str, str]]:
    """The configuration text every job carries, without a secret, and the secrets apart.

    Returns
    -------
    text : `str`
        ``config`` as an override file with ``kafkaPassword`` empty, and
        ``kafkaServer`` and ``schemaRegistryUrl`` empty where they hold
        credentials (user-info): a worker's settings then read them from
        its environment.
    environment : `dict` [`str`, `str`]
        Environment variable -> the value taken out: what a worker needs
        in its environment to produce as this process would.
    """
    public = PackageAlertsConfig()
    public.loadFromString(config.saveToString())
    environment: dict[str, str] = {}
    for name, variable in _SECRET_VARIABLES.items():
        value = getattr(public, name)
        if value and (name == "kafkaPassword" or url_secrets(value)):
            environment[variable] = value
            setattr(public, name, "")
    return public.saveToString(), environment


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
    retry : `RetryPolicy`, optional
        Attempts and waits of failed jobs (default: `RetryPolicy()`, see
        the module notes).

    Notes
    -----
    The executor (and so each worker's packager and Kafka producer) lives
    until `close`; several `map` calls reuse it, e.g. one per visit.
    """

    def __init__(self, config: PackageAlertsConfig | None = None, *, workers: int | None = None,
                 scheduler: str | None = None, retry: RetryPolicy | None = None) -> None:
        config = config if config is not None else PackageAlertsConfig()
        config.validate()
        self.producing = bool(config.doProduceAlerts)
        # no job carries a secret (see the module notes)
        self._config_text, secrets = job_config(config)
        if scheduler and secrets:
            fields = [name for name, variable in _SECRET_VARIABLES.items() if variable in secrets]
            raise ConfigError(
                f"the configuration holds credentials ({', '.join(fields)}), which are never "
                f"sent to a Dask cluster: leave them out and set {', '.join(sorted(secrets))} "
                "in the workers' environment"
            )
        self.retry = retry if retry is not None else RetryPolicy()
        self.engine = (
            DaskEngine(scheduler) if scheduler else LocalPoolEngine(workers, environment=secrets)
        )

    @property
    def workers(self) -> int:
        return self.engine.workers

    def map(self, jobs: Iterable[DetectorJob]) -> Iterator[DetectorSummary]:
        """Each job's summary as it completes (failed ones with ``error`` set).

        Jobs are consumed lazily, at most the engine's ``in_flight`` submitted
        at once (two per local worker; all of them on Dask); a job waiting to
        be retried (`RetryPolicy`) is not submitted until its time comes.
        """
        in_flight = self.engine.in_flight
        tries: dict[Any, _Tries] = {}
        pending: set = set()
        waiting: list[tuple[float, int, _Tries]] = []  # (due, tie-break, job): a heap
        order = itertools.count()
        finished: list[DetectorSummary] = []

        def submit(job_tries: _Tries) -> None:
            future = self.engine.submit(run_detector, self._config_text, job_tries.job)
            job_tries.attempts += 1
            tries[future] = job_tries
            pending.add(future)

        jobs = iter(jobs)
        exhausted = False
        while pending or waiting or not exhausted:
            # due retries first, then new jobs, within in_flight
            while waiting and waiting[0][0] <= time.monotonic() and len(pending) < in_flight:
                submit(heapq.heappop(waiting)[2])
            while not exhausted and len(pending) < in_flight:
                job = next(jobs, None)
                if job is None:
                    exhausted = True
                    break
                submit(_Tries(job))
            if not pending:
                if waiting:  # nothing runs: sleep until the next retry is due
                    time.sleep(max(0.0, waiting[0][0] - time.monotonic()))
                continue
            # wake for the next retry only when there is room to submit it
            room = len(pending) < in_flight
            timeout = max(0.0, waiting[0][0] - time.monotonic()) if waiting and room else None
            done, pending = self.engine.wait_first(pending, timeout=timeout)
            for future in done:
                job_tries = tries.pop(future)
                summary, delay = self._outcome(future, job_tries)
                if summary is None:  # to be retried after ``delay`` seconds
                    if delay > 0:
                        due = time.monotonic() + delay
                        heapq.heappush(waiting, (due, next(order), job_tries))
                    else:
                        submit(job_tries)
                    continue
                finished.append(summary)
                yield summary
        self._count_hidden_restarts(finished)

    def _outcome(self, future: Any, job_tries: _Tries) -> tuple[DetectorSummary | None, float]:
        """The job's summary, or `None` and the seconds to wait before its retry."""
        try:
            summary = future.result()
        except TransientError as error:
            reason = _one_line(str(error))
            if job_tries.attempts < self.retry.transient_attempts:
                job_tries.errors.append(reason)
                return None, self.retry.delay(job_tries.attempts)
            summary = DetectorSummary(name=job_tries.job.name, error=reason)
        except Exception as error:
            reason = _one_line(str(error))
            text = f"{type(error).__name__}: {reason}".rstrip(": ")
            if job_tries.attempts < self.retry.crash_attempts:
                job_tries.errors.append(text)
                return None, 0.0
            summary = DetectorSummary(name=job_tries.job.name, error=text)
        summary.attempts = job_tries.attempts
        summary.attempt_errors = list(job_tries.errors)
        return summary, 0.0

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
        writers: dict[str, str] = {}
        for detector in self.map(jobs):
            (summary.detectors if detector.ok else summary.failures).append(detector)
            for path in map(str, detector.paths):
                if path in writers and writers[path] != detector.name:
                    summary.shared_files.append((path, writers[path], detector.name))
                writers.setdefault(path, detector.name)
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


def _one_line(text: str) -> str:
    """The first line of an error's message."""
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def _as_jobs(loaders: Iterable[DetectorLoader | DetectorJob]) -> Iterator[DetectorJob]:
    for index, loader in enumerate(loaders):
        yield loader if isinstance(loader, DetectorJob) else DetectorJob(str(index), loader)


def package_detectors(
    loaders: Iterable[DetectorLoader | DetectorJob], config: PackageAlertsConfig | None = None, *,
    workers: int | None = None, scheduler: str | None = None,
    on_detector: Callable[[DetectorSummary], None] | None = None,
    retry: RetryPolicy | None = None,
) -> VisitSummary:
    """Package many detectors, each loaded and packaged inside a worker.

    Parameters
    ----------
    loaders : iterable of callables or `DetectorJob`
        One picklable, argument-less callable per detector returning its
        `~alertpack.visit_inputs.VisitInputs` (e.g.
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
    retry : `RetryPolicy`, optional
        Attempts and waits of failed jobs (see the module notes).

    Returns
    -------
    summary : `VisitSummary`
        Packaged and failed detectors; nothing raised for a failed detector.
    """
    with DetectorExecutor(config, workers=workers, scheduler=scheduler, retry=retry) as executor:
        return executor.run(_as_jobs(loaders), on_detector)
