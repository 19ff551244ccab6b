"""Scaling: per-alert and per-detector cost, and 1 vs 2 workers on the pool and on Dask.

Run::

    .venv/bin/python benchmarks/bench_scaling.py [--quick] [--detectors 32] [--alerts 60]

1. **Costs** in this process, one warm `AlertPackager`: detectors of
   ``small`` and ``large`` alerts (inputs from the simulate loaders, cached
   templates, built before timing); a line through the median CPU times
   (``time.process_time``, less sensitive than wall time to other load on
   a shared machine) gives the fixed cost per detector and the cost per alert.
2. **Speed-up**: the same visit of ``--detectors`` detectors of ``--alerts``
   alerts, written to files, on 1 and 2 workers of the local pool and of a
   Dask cluster (a scheduler and workers started here as subprocesses,
   ``--nthreads 1``). Each engine first runs a warm-up visit (workers start,
   import, build their template and packager), then the timed visit.
3. **A Rubin night**: the workers (one core each) needed for visits of
   10,000 alerts every 30 s and bursts of 40,000 within the 60 s budget,
   from the CPU costs of 1 and the CPU efficiency of 2.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import Column, Table, machine_line, stop_process
from alertpack.config import PackageAlertsConfig
from alertpack.core import AlertPackager
from alertpack.scaleout.jobs import DetectorJob
from alertpack.scaleout.pool import DetectorExecutor
from alertpack.scaleout.simulate import FIRST_VISIT, stream_detector_loader

IMAGE_SHAPE = (512, 512)
TEMPLATE_SOURCES = 400
SPEED_TABLE = Table([
    Column("engine", 8), Column("workers", 8), Column("seconds", 8, ".2f"),
    Column("alerts/s", 9, ".0f"), Column("speed-up", 9, ".2f"), Column("CPU s", 7, ".2f"),
    Column("cores used", 11, ".2f"),
])


def _config(directory: Path) -> PackageAlertsConfig:
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(directory)
    config.overwriteAlertFiles = True  # repeats write the files again: time the write
    return config


def _loader(visit: int, detector: int, n_alerts: int) -> Any:
    return stream_detector_loader(visit, detector, n_alerts, TEMPLATE_SOURCES, n_templates=1,
                                  image_shape=IMAGE_SHAPE)


def measure_costs(directory: Path, sizes: tuple[int, int], repeats: int) -> dict[str, float]:
    """Median seconds per detector run at two sizes -> fixed and per-alert cost."""
    packager = AlertPackager(_config(directory))
    _loader(FIRST_VISIT, 0, 1)()  # template built before timing
    medians, cpu_medians, loads = [], [], []
    for n_alerts in sizes:
        times, cpu_times, load_times = [], [], []
        for repeat in range(repeats + 1):
            start = time.process_time()
            inputs = _loader(FIRST_VISIT + repeat, repeat % 189, n_alerts)()
            loaded, loaded_cpu = time.perf_counter(), time.process_time()
            packager.run(inputs)
            if repeat:  # the first run of a size warms caches
                times.append(time.perf_counter() - loaded)
                cpu_times.append(time.process_time() - loaded_cpu)
                load_times.append(loaded_cpu - start)
        medians.append(float(np.median(times)))
        cpu_medians.append(float(np.median(cpu_times)))
        loads.append(float(np.median(load_times)))
    per_alert = (cpu_medians[1] - cpu_medians[0]) / (sizes[1] - sizes[0])
    return {"per_alert": per_alert, "per_detector": cpu_medians[0] - per_alert * sizes[0],
            "small": medians[0], "large": medians[1], "small_cpu": cpu_medians[0],
            "large_cpu": cpu_medians[1], "load": float(np.median(loads))}


def _visit_jobs(visit: int, n_detectors: int, n_alerts: int) -> list[DetectorJob]:
    return [DetectorJob(f"{visit}/{d}", _loader(visit, d, n_alerts)) for d in range(n_detectors)]


def time_visit(executor: DetectorExecutor, n_detectors: int, n_alerts: int,
               warmup: int) -> tuple[float, float]:
    """Warm the workers with ``warmup`` detectors, then time a visit: (wall s, CPU s of jobs)."""
    executor.run(_visit_jobs(FIRST_VISIT, warmup, n_alerts))
    summary = executor.run(_visit_jobs(FIRST_VISIT + 1, n_detectors, n_alerts))
    assert not summary.failures, summary.failures
    assert summary.n_alerts == n_detectors * n_alerts
    return summary.seconds, summary.cpu_seconds


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalDaskCluster:
    """A scheduler and single-thread workers on 127.0.0.1, as subprocesses."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.dask = str(Path(sys.executable).with_name("dask"))
        self.processes = [subprocess.Popen(
            [self.dask, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]

    def add_workers(self, n: int) -> None:
        from distributed import Client

        for _ in range(n):
            self.processes.append(subprocess.Popen(
                [self.dask, "worker", self.address, "--nthreads", "1", "--no-dashboard",
                 "--host", "127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(len(self.processes) - 1, timeout=120)

    def close(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            stop_process(process)


def measure_speedups(root: Path, n_detectors: int,
                     n_alerts: int) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of the timed visit on pool 1/2 workers and Dask 1/2 workers."""
    results = {}
    warmup = 8
    for workers in (1, 2):
        with DetectorExecutor(_config(root / f"pool{workers}"), workers=workers) as executor:
            results[f"pool {workers}"] = time_visit(executor, n_detectors, n_alerts, warmup)
    cluster = LocalDaskCluster()
    try:
        for workers in (1, 2):
            cluster.add_workers(workers - (len(cluster.processes) - 1))
            with DetectorExecutor(_config(root / f"dask{workers}"),
                                  scheduler=cluster.address) as executor:
                results[f"dask {workers}"] = time_visit(executor, n_detectors, n_alerts, warmup)
    finally:
        cluster.close()
    return results


def workers_for_a_night(costs: dict[str, float], efficiency: float, *, cadence: float = 30.0,
                        budget: float = 60.0, alerts: int = 10_000, burst: int = 40_000,
                        detectors: int = 189) -> dict[str, float]:
    """Workers needed: keep up with the cadence, and finish a burst within the budget.

    A visit costs ``detectors * per_detector + alerts * per_alert`` CPU-seconds
    (plus loading inputs, ``load`` per detector here); ``efficiency`` is the
    CPU per alert on 1 worker over that on 2 (one worker per core assumed).
    """
    per_detector = costs["per_detector"] + costs["load"]

    def work(n_alerts: int) -> float:
        return detectors * per_detector + n_alerts * costs["per_alert"]

    steady = work(alerts) / cadence / efficiency
    # a burst must be done within the budget while the next visit (cadence later) arrives
    in_budget = (work(burst) + work(alerts) * max(budget - cadence, 0) / cadence) / budget
    burst_workers = in_budget / efficiency
    return {"work_visit": work(alerts), "work_burst": work(burst), "steady": steady,
            "burst": burst_workers, "needed": float(np.ceil(max(steady, burst_workers)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument("--detectors", type=int, default=32)
    parser.add_argument("--alerts", type=int, default=60, help="alerts per detector")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.detectors, args.alerts, args.repeats = 8, 20, 2
    sizes = (10, 200)
    print(machine_line("bench_scaling"), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        root = Path(tmp)
        costs = measure_costs(root / "costs", sizes, args.repeats)
        print(f"\ncosts (one warm packager, writing files, images {IMAGE_SHAPE[1]}x"
              f"{IMAGE_SHAPE[0]}, 3 cutouts, 20+20 history per object)")
        for size, key in zip(sizes, ("small", "large"), strict=True):
            print(f"  detector of {size:>3} alerts: {costs[key] * 1e3:7.1f} ms wall, "
                  f"{costs[key + '_cpu'] * 1e3:7.1f} ms CPU")
        print(f"  => CPU: fixed {costs['per_detector'] * 1e3:.1f} ms per detector + "
              f"{costs['per_alert'] * 1e3:.2f} ms per alert; inputs (simulate loader) "
              f"{costs['load'] * 1e3:.1f} ms per detector")
        speed = measure_speedups(root, args.detectors, args.alerts)
    n_alerts = args.detectors * args.alerts
    print(f"\nvisit of {args.detectors} detectors x {args.alerts} alerts, warm workers")
    print("(cores used = CPU seconds of the jobs / wall seconds: what the machine gave)")
    print(SPEED_TABLE.header())
    for engine in ("pool", "dask"):
        for workers in (1, 2):
            seconds, cpu = speed[f"{engine} {workers}"]
            print(SPEED_TABLE.row([engine, workers, seconds, n_alerts / seconds,
                                   speed[f"{engine} 1"][0] / seconds, cpu, cpu / seconds]))
    # CPU per alert on 2 workers vs 1 (caches, memory bandwidth shared): unlike the wall-time
    # speed-up, it does not depend on how many cores other users leave us
    efficiency = min(1.0, *(speed[f"{engine} 1"][1] / speed[f"{engine} 2"][1]
                            for engine in ("pool", "dask")))
    night = workers_for_a_night(costs, efficiency)
    print(f"\nRubin night (10,000 alerts per visit every 30 s, bursts of 40,000, 60 s budget), "
          f"2-worker CPU efficiency {efficiency:.2f} (worst engine)")
    print(f"  CPU-seconds per visit {night['work_visit']:.0f}, per burst "
          f"{night['work_burst']:.0f}")
    print(f"  keep up: {night['steady']:.1f} workers; burst in budget: {night['burst']:.1f}; "
          f"=> {night['needed']:.0f} workers")


if __name__ == "__main__":
    main()
