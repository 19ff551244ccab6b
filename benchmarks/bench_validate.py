"""``alertpack validate``: seconds per alert, against the validate of before issue 20, side by side.

Run::

    .venv/bin/python benchmarks/bench_validate.py [--quick] [--alerts 1000] [--repeats 3]
                                                  [--json results.json]

A directory of ``--alerts`` sample alerts (one visit, as the packaging task
writes it, three cutouts of four HDUs each) is validated by whole processes,
``python -m alertpack validate DIR``, the way a user runs it:

- **ours**: this tree, fitsverify over batches of stamps beside the decoding;
- **baseline**: alertpack as it was before the fast validate (commit
  `BASELINE_COMMIT`, taken out with ``git archive`` into a temporary
  directory and put first on ``PYTHONPATH``): fitsverify started once per
  cutout, every cutout opened whole, the schema interpreted per field;
- ours with ``--no-fitsverify`` and ours without fitsverify on the ``PATH``
  (a pip user), for information.

Each runs on the same files, in rounds (every variant once a round, so that
a change in the shared machine's load falls on all of them), ``--repeats``
rounds (the baseline in ``--baseline-repeats`` of them: a full run of it
takes about a minute); the best run of each counts.
Per alert is the whole run divided by the alerts, start-up included; the
marginal cost per alert (the run minus one on a 5-alert directory) is shown
too. Both must print the same verdict. Target (issue 20): ours >= 10x faster
per alert than the baseline.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Column, Table, Target, exit_status, machine_line, print_targets, write_json

#: the commit this work started from: validate as it was
BASELINE_COMMIT = "c0b7313871e20322def252afbe4c55a2fdde6955"
TARGET_SPEEDUP = 10.0
REPO = Path(__file__).resolve().parent.parent


def make_alerts(directory: Path, n_alerts: int) -> Path:
    """``n_alerts`` sample alerts of one visit, packaged by the task, in ``directory``."""
    from alertpack import PackageAlertsConfig, PackageAlertsTask, make_visit

    config = PackageAlertsConfig()
    config.alertWriteLocation = str(directory)
    side = max(800, int(63 * n_alerts**0.5))  # room for the sources without crowding
    visit = make_visit(n_sources=n_alerts, image_shape=(side, side), seed=1)
    PackageAlertsTask(config=config).run(**visit.run_kwargs())
    return directory


def baseline_tree(into: Path) -> Path:
    """The src of `BASELINE_COMMIT`, extracted into ``into``; its path.

    Raises
    ------
    RuntimeError
        When this is not a git checkout holding that commit.
    """
    archive = subprocess.run(["git", "-C", str(REPO), "archive", BASELINE_COMMIT, "src"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise RuntimeError(f"commit {BASELINE_COMMIT[:7]} cannot be read from {REPO} (the "
                           f"baseline needs a git checkout): {archive.stderr.decode()[-300:]}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def run_validate(directory: Path, source: Path, *extra: str, path_env: str | None = None
                 ) -> tuple[float, str]:
    """One ``alertpack validate`` process with ``source`` first on the path; (seconds, verdict)."""
    environment = {**os.environ, "PYTHONPATH": str(source)}
    if path_env is not None:
        environment["PATH"] = path_env
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "alertpack", "validate", str(directory), *extra],
        capture_output=True, text=True, env=environment, check=False,
    )
    seconds = time.perf_counter() - started
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"validate with {source} failed ({completed.returncode}): "
                           f"{completed.stdout[-500:]} {completed.stderr[-500:]}")
    return seconds, lines[-1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 alerts, one run each")
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours (best counts)")
    parser.add_argument("--baseline-repeats", type=int, default=1)
    parser.add_argument("--json", default=None, metavar="PATH", help="save the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.alerts, args.repeats, args.baseline_repeats = 40, 1, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_line("bench_validate", args.quick))
    ours = REPO / "src"
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as scratch:
        scratch_path = Path(scratch)
        big = make_alerts(scratch_path / "alerts", args.alerts)
        small = make_alerts(scratch_path / "small", 5)
        baseline = baseline_tree(scratch_path)
        no_fitsverify_path = str(scratch_path / "empty-path")
        os.mkdir(no_fitsverify_path)
        variants = {
            "ours": (ours, (), None),
            "baseline": (baseline, (), None),
            "ours --no-fitsverify": (ours, ("--no-fitsverify",), None),
            "ours, no fitsverify on PATH": (ours, (), no_fitsverify_path),
        }
        # rounds: each variant once per round, so that a change of the machine's load
        # (it is shared) falls on all of them; the baseline in the first rounds only
        runs: dict[str, list[tuple[float, float, str]]] = {name: [] for name in variants}
        for round_number in range(max(args.repeats, args.baseline_repeats)):
            for name, (source, extra, path_env) in variants.items():
                wanted = args.baseline_repeats if name == "baseline" else args.repeats
                if round_number >= wanted:
                    continue
                seconds, verdict = run_validate(big, source, *extra, path_env=path_env)
                small_seconds, _ = run_validate(small, source, *extra, path_env=path_env)
                runs[name].append((seconds, small_seconds, verdict))
        measured = {}
        for name, done in runs.items():
            seconds = min(run[0] for run in done)
            start_seconds = min(run[1] for run in done)
            measured[name] = {
                "seconds": seconds,
                "verdict": done[-1][2],
                "per_alert_ms": 1e3 * seconds / args.alerts,
                "marginal_ms": 1e3 * max(seconds - start_seconds, 0.0) / (args.alerts - 5),
                "five_alert_seconds": start_seconds,
                "runs": len(done),
            }
    print("load average at the end: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
    table = Table([Column("run", 28, align="<"), Column("seconds", 8, ".2f"),
                   Column("ms/alert", 9, ".2f"), Column("marginal", 9, ".2f"),
                   Column("5 alerts s", 10, ".2f"), Column("verdict", 40, align="<")])
    print(f"\nvalidate {args.alerts} sample alerts, whole processes (marginal = minus a "
          "5-alert run, per extra alert)")
    print(table.header())
    print(table.rule())
    for name, result in measured.items():
        print(table.row({"run": name, "seconds": result["seconds"],
                         "ms/alert": result["per_alert_ms"], "marginal": result["marginal_ms"],
                         "5 alerts s": result["five_alert_seconds"],
                         "verdict": result["verdict"]}))
    ours_result, base = measured["ours"], measured["baseline"]
    speedup = base["per_alert_ms"] / ours_result["per_alert_ms"]
    marginal = base["marginal_ms"] / max(ours_result["marginal_ms"], 1e-9)
    same = ours_result["verdict"] == base["verdict"]
    judged = None if args.quick else speedup >= TARGET_SPEEDUP
    targets = [
        Target(f">= {TARGET_SPEEDUP:g}x faster per alert than before (whole process)",
               f"{speedup:.1f}x ({base['per_alert_ms']:.1f} -> "
               f"{ours_result['per_alert_ms']:.2f} ms)", judged),
        Target("marginal cost per alert, for information", f"{marginal:.1f}x", None),
        Target("the same verdict as before", "yes" if same else "no", same),
    ]
    print()
    print_targets(targets)
    if args.json:
        write_json(args.json, {"quick": args.quick, "alerts": args.alerts, "runs": measured,
                               "speedup": speedup, "marginal_speedup": marginal,
                               "baseline_commit": BASELINE_COMMIT[:7]})
    return exit_status(targets)


if __name__ == "__main__":
    sys.exit(main())
