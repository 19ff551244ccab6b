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
import logging
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
from alertpack.inputs.catalogs import read_catalog
from alertpack.inputs.visit_files import (
    VisitDefaults,
    load_visit_files,
    visit_id_bits,
    visit_paths,
)
from alertpack.packets.assemble import source_file_stems
from alertpack.sinks.files import alert_file_path
from alertpack.visit_inputs import VisitInputs

if TYPE_CHECKING:
    from alertpack.core import AlertPackager

__all__ = [
    "DetectorJob",
    "DetectorSummary",
    "check_distinct_alert_files",
    "close_worker_packager",
    "detector_alert_files",
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
    ``absent``, ``renamed`` and ``cutout_status`` are the run's
    (`alertpack.core.PackageResult`): what the alerts lack for want of an
    input, the columns read under another name, the cutout counts.
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
    absent: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, dict[str, str]] = field(default_factory=dict)
    cutout_status: dict[str, int] = field(default_factory=dict)

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


def _drop_summarized(record: logging.LogRecord) -> bool:
    """A worker's log keeps what its summary does not carry (the parent prints the summary)."""
    # alertpack.core.SUMMARIZED: the core is not imported where jobs are only handed out
    return not getattr(record, "alertpack_summarized", False)


def _worker_packager(config_text: str) -> AlertPackager:
    """This process's packager for ``config_text``, built on first use."""
    packager = _PACKAGERS.get(config_text)
    if packager is None:
        # alertpack.core only here, in the workers: a parent that hands jobs out never packages
        from alertpack.core import AlertPackager

        config = PackageAlertsConfig()
        config.loadFromString(config_text)
        log = logging.getLogger("alertpack.worker")
        if _drop_summarized not in log.filters:
            log.addFilter(_drop_summarized)
        packager = AlertPackager(config, log=log)
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
        absent=dict(result.absent),
        renamed={catalog: dict(columns) for catalog, columns in result.renamed.items()},
        cutout_status=dict(result.cutout_status),
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


def _detector_dir_inputs(directory: str, defaults: VisitDefaults | None) -> VisitInputs:
    return load_visit_files(directory, defaults=defaults)


def visit_dir_loader(
    directory: str | os.PathLike[str], defaults: VisitDefaults | None = None
) -> DetectorLoader:
    """A loader for one detector directory (the files of ``alertpack package --visit-dir``).

    ``defaults`` are the visit-wide id bits and calibrations, for what the
    directory's ``visit.json`` does not give.
    """
    return partial(_detector_dir_inputs, str(directory), defaults)


def detector_alert_files(
    directory: str | os.PathLike[str], output: str | os.PathLike[str],
    defaults: VisitDefaults | None = None, file_naming: str = "ccdVisitId",
) -> list[Path]:
    """The alert files the run of one detector directory will write, before it runs.

    Named from its DiaSource catalog as the run names them
    (`~alertpack.packets.assemble.source_file_stems`, ``file_naming`` as
    `alertpack.core.file_naming_of` resolves it; the directory:
    `~alertpack.sinks.files.alert_file_path`).

    Raises
    ------
    InputError
        The directory's catalog or visit.json cannot be read, or the
        ccdVisitIds cannot be derived (that detector's run fails the same way).
    """
    paths = visit_paths(directory)
    if "diaSourceCat" not in paths:
        raise InputError(f"visit directory {directory} has no diaSourceCat file")
    catalog = read_catalog(paths["diaSourceCat"], "diaSourceCat")
    stems = source_file_stems(catalog, visit_id_bits(directory, defaults=defaults), file_naming)
    return [alert_file_path(output, stem) for stem in stems]


def check_distinct_alert_files(planned: dict[str, list[Path]]) -> None:
    """Refuse a run in which two detectors would write the same alert file.

    Parameters
    ----------
    planned : `dict` [`str`, `list` [`pathlib.Path`]]
        Detector name -> the alert files it will write
        (`detector_alert_files`).

    Raises
    ------
    InputError
        Naming the first file two detectors share, both detectors, and how
        many files are shared in all: the second would replace the first's
        alerts.
    """
    writers: dict[Path, str] = {}
    shared: list[tuple[Path, str, str]] = []
    for name, paths in planned.items():
        for path in paths:
            if path in writers:
                shared.append((path, writers[path], name))
            else:
                writers[path] = name
    if shared:
        path, first, second = shared[0]
        more = f" ({len(shared)} files are shared in all)" if len(shared) > 1 else ""
        raise InputError(
            f"detectors {first} and {second} would both write {path}{more}: their DiaSources "
            "name the same ccdVisit, so one would replace the other's alerts; nothing was "
            "written. A copied detector directory, or ids packed with other bits (check "
            "--id-bits and each visit.json's ccdExposureIdBits)?"
        )


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
