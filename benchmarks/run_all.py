"""Run every alertpack benchmark in sequence, each in its own interpreter, and print their tables.

Run::

    .venv/bin/python benchmarks/run_all.py [--quick] [--only package,files,validate,...]

``--quick`` is passed through to the benchmarks that have a quick mode; for
those that do not (their ``--help`` lists no ``--quick``), the equivalent
small sizes below are passed instead, so a quick run stays short.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS = {
    "package": "bench_package.py",
    "files": "bench_files.py",
    "avro": "bench_avro.py",
    "cutouts": "bench_cutouts.py",
    "packets": "bench_packets.py",
    "kafka": "bench_kafka.py",
    "apdb": "bench_apdb.py",
    "scaling": "bench_scaling.py",
    "browse": "bench_browse.py",
    "validate": "bench_validate.py",
}

# Small sizes for benchmarks without a --quick option of their own.
QUICK_FALLBACK = {
    "bench_avro.py": ["--alerts", "200", "--repeat", "1"],
    "bench_cutouts.py": ["--n", "200", "--reference-n", "20", "--repeats", "1"],
    "bench_kafka.py": ["--alerts", "100", "--repeats", "1"],
}


def has_quick_option(script: Path) -> bool:
    """Whether the benchmark's own ``--help`` offers ``--quick``."""
    completed = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, check=False
    )
    return completed.returncode == 0 and "--quick" in completed.stdout


def quick_arguments(script: Path) -> list[str]:
    """What makes ``script`` run small: its --quick, else the fallback sizes."""
    if has_quick_option(script):
        return ["--quick"]
    return list(QUICK_FALLBACK.get(script.name, []))


def run_benchmark(script: Path, arguments: list[str]) -> tuple[int, float]:
    """Run one benchmark with its output going straight to ours; (exit code, seconds)."""
    command = [sys.executable, str(script), *arguments]
    print(f"\n=== {script.name} {' '.join(arguments)}".rstrip(), flush=True)
    start = time.perf_counter()
    returncode = subprocess.run(command, check=False).returncode
    return returncode, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere")
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated subset of {','.join(BENCHMARKS)} (default all)",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose among {','.join(BENCHMARKS)}")

    outcomes = []
    for name in chosen:
        script = HERE / BENCHMARKS[name]
        arguments = quick_arguments(script) if args.quick else []
        returncode, seconds = run_benchmark(script, arguments)
        outcomes.append((script.name, returncode, seconds))

    print("\n=== summary")
    for script_name, returncode, seconds in outcomes:
        verdict = "ok" if returncode == 0 else f"exit {returncode} (target missed or error)"
        print(f"  {script_name:<18} {seconds:7.1f} s  {verdict}")
    return 0 if all(returncode == 0 for _, returncode, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
