"""The per-detector job: the one function every engine runs, and its loaders.

A detector job loads its own inputs (a picklable *loader* runs inside the
worker), packages them with the worker's long-lived `AlertPackager` and
writes and produces there; only a small `DetectorSummary` goes back. The
local process pool and Dask distributed run this same `run_detector`.

Each worker process keeps one packager (and so, with ``doProduceAlerts``,
one Kafka producer) for every detector it takes, built on its first job from
the configuration sent as text and closed when the worker exits.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import util
from pathlib import Path
from typing import TYPE_CHECKING

from alertpack.config import PackageAlertsConfig
from alertpack.errors import AlertPackError, InputError, TransientError
from alertpack.inputs.visit_files import load_visit_files
from alertpack.visit_inputs import VisitInputs

if TYPE_CHECKING:
    from alertpack.core import AlertPackager

__all__ = [
    "DetectorJob",
    "DetectorSummary",
    "close_worker_packager",
    "detector_dirs",
    "run_detector",
    "sample_detector_loader",
    "visit_dir_loader",
]

#: a picklable, argument-less callable returning the inputs of one detector's run
DetectorLoader = Callable[[], VisitInputs]

#: topic of the Dask worker event logged when a detector job starts
START_EVENT = "alertpack-detector-start"


@dataclass(frozen=True)
class DetectorJob:
    """One detector to package: a name for reports and the loader of its inputs."""

    name: str
    loader: DetectorLoader


@dataclass
class DetectorSummary:
    """What one detector job produced (or why it failed).

    ``error`` is `None` for a packaged detector; otherwise the one-line
    reason and every count is 0. ``seconds`` is the whole job (wall),
    ``load_seconds`` the part spent loading inputs, ``cpu_seconds`` the CPU
    time of the worker process during the job (all of the last attempt).
    ``attempts`` counts the times the job ran (see
    `alertpack.scaleout.pool.RetryPolicy`), ``attempt_errors`` the one-line
    reason of each attempt that failed and was retried, in order.
    """

    n_alerts: int = 0
    n_bytes: int = 0
    paths: list[Path] = field(default_factory=list)
    n_delivered: int = 0
    n_failed: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    name: str = ""
    load_seconds: float = 0.0
    worker: str = ""
    error: str | None = None
    attempts: int = 1
    cpu_seconds: float = 0.0
    attempt_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the detector was packaged."""
        return self.error is None


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MB).

    ``VmHWM`` is this process's own high-water mark; ``ru_maxrss`` (the
    fallback off Linux) can carry over a larger parent's peak across fork.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource  # POSIX only: the fallback off Linux

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ----------------------------------------------------------------------
# one packager per worker process

_PACKAGERS: dict[str, AlertPackager] = {}
# A Dask worker may run several threads; the packager and its producer are
# used by one job at a time (run workers with --nthreads 1 for CPU-bound work).
_PACKAGER_LOCK = threading.Lock()


def _worker_packager(config_text: str) -> AlertPackager:
    """This process's packager for ``config_text``, built on first use."""
    packager = _PACKAGERS.get(config_text)
    if packager is None:
        # alertpack.core only here, in the workers: a parent that hands jobs out never packages
        from alertpack.core import AlertPackager

        config = PackageAlertsConfig()
        config.loadFromString(config_text)
        packager = AlertPackager(config)
        if not _PACKAGERS:
            _close_at_exit()
        _PACKAGERS[config_text] = packager
    return packager


def _close_at_exit() -> None:
    """Close the packagers when this process exits (pool workers skip atexit)."""
    # multiprocessing children leave through os._exit after running these finalizers
    util.Finalize(None, close_worker_packager, exitpriority=10)
    atexit.register(close_worker_packager)


def close_worker_packager() -> None:
    """Close every packager this process keeps (flushes and closes its producer)."""
    while _PACKAGERS:
        _, packager = _PACKAGERS.popitem()
        packager.close()


def _log_start(name: str) -> str:
    """Record the start of a job where the client can count it; the worker's name."""
    # a Dask worker has imported distributed; a pool worker need not pay for importing it
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return f"pid {os.getpid()}"
    try:
        worker = distributed.get_worker()
    except ValueError:  # not inside a Dask worker
        return f"pid {os.getpid()}"
    worker.log_event(START_EVENT, {"detector": name, "worker": worker.address})
    return worker.address


def run_detector(config_text: str, job: DetectorJob) -> DetectorSummary:
    """Load, package, write and produce one detector in this worker.

    A permanent error (any `AlertPackError` but a `TransientError`: a
    missing file, a bad column, ...) is returned as a failed summary: trying
    again would fail the same way. A `TransientError` (a database or broker
    that does not answer) and anything else raise, for the executor to retry
    (`alertpack.scaleout.pool.RetryPolicy`).
    """
    start, start_cpu = time.perf_counter(), time.process_time()
    worker = _log_start(job.name)
    try:
        inputs = job.loader()
        loaded = time.perf_counter()
        with _PACKAGER_LOCK:
            result = _worker_packager(config_text).run(inputs)
    except TransientError:
        raise
    except AlertPackError as error:
        return DetectorSummary(name=job.name, worker=worker, error=str(error),
                               seconds=time.perf_counter() - start)
    return DetectorSummary(
        n_alerts=result.n_alerts,
        n_bytes=result.alerts.nbytes,
        paths=list(result.paths),
        n_delivered=result.delivered,
        n_failed=result.failed,
        seconds=time.perf_counter() - start,
        peak_rss_mb=peak_rss_mb(),
        name=job.name,
        load_seconds=loaded - start,
        worker=worker,
        cpu_seconds=time.process_time() - start_cpu,
    )


# ----------------------------------------------------------------------
# loaders


def _sample_inputs(detector: int, n_sources: int, image_shape: tuple[int, int],
                   seed: int) -> VisitInputs:
    # alertpack.sample (~30 ms) only for sample runs: packaging files never needs it
    from alertpack.sample import make_visit

    return make_visit(n_sources, image_shape, seed=seed + detector, detector=detector).inputs()


def sample_detector_loader(
    detector: int, n_sources: int = 53, image_shape: tuple[int, int] = (4000, 4072),
    seed: int = 0,
) -> DetectorLoader:
    """A loader for one detector of the built-in sample (for demos and benchmarks)."""
    return partial(_sample_inputs, detector, n_sources, image_shape, seed)


def _detector_dir_inputs(directory: str) -> VisitInputs:
    return load_visit_files(directory)


def visit_dir_loader(directory: str | os.PathLike[str]) -> DetectorLoader:
    """A loader for one detector directory (the files of ``alertpack package --visit-dir``)."""
    return partial(_detector_dir_inputs, str(directory))


def _is_detector_dir(path: Path) -> bool:
    """A detector directory holds a DiaSource catalog (any supported format)."""
    return any(path.glob("diaSourceCat.*"))


def detector_dirs(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """Detector directories of ``paths``: each one itself, or its detector subdirectories.

    Raises
    ------
    InputError
        A path is not a directory, or neither it nor any subdirectory holds
        a ``diaSourceCat`` file; the message starts with the path.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise InputError(f"{path} is not a directory")
        if _is_detector_dir(path):
            found.append(path)
            continue
        children = sorted(p for p in path.iterdir() if p.is_dir() and _is_detector_dir(p))
        if not children:
            raise InputError(
                f"{path} holds no diaSourceCat file and no detector subdirectory "
                "with one; give a detector's directory or their parent"
            )
        found.extend(children)
    return found
