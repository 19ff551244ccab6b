"""``alertpack package``: run the Task on the built-in sample or on a visit's files."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from alertpack.errors import CommandError, InputError

__all__ = ["apply_config_overrides", "load_visit_files", "run_package_command"]


def apply_config_overrides(config: Any, overrides: list[str]) -> None:
    """Set ``NAME=VALUE`` pairs on a pex_config Config, converting to each field's type."""
    for item in overrides:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or name not in config._fields:
            known = ", ".join(sorted(config._fields))
            raise CommandError(f"--config {item!r}: expected NAME=VALUE with NAME among {known}")
        field = config._fields[name]
        value: Any
        if field.dtype is bool:
            if text.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise CommandError(f"--config {name}: {text!r} is not a boolean (true/false)")
            value = text.strip().lower() in ("true", "1", "yes")
        elif hasattr(field, "itemtype"):
            value = [field.itemtype(part.strip()) for part in text.split(",") if part.strip()]
        else:
            try:
                value = field.dtype(text)
            except ValueError:
                raise CommandError(
                    f"--config {name}: {text!r} is not a valid {field.dtype.__name__}"
                ) from None
        try:
            setattr(config, name, value)
        except Exception as error:  # pex_config raises several types; show its message
            raise CommandError(f"--config {name}={text}: {error}") from None


def _read_parquet(path: Path, what: str) -> Any:
    """A catalog from an existing Parquet file, with a clear error if it is not one."""
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception as error:  # pyarrow raises many types for a non-Parquet file
        raise InputError(f"{what} file {path} is not a readable Parquet file: {error}") from None


#: file names of a visit directory (``--visit-dir``), by run() argument
VISIT_FILES = {
    "diaSourceCat": "diaSourceCat.parquet",
    "diaObjectCat": "diaObjectCat.parquet",
    "diaSrcHistory": "diaSrcHistory.parquet",
    "diaForcedSources": "diaForcedSources.parquet",
    "ssSource": "ssSource.parquet",
    "mpc_orbits": "mpc_orbits.parquet",
    "diffIm": "difference.fits",
    "science": "science.fits",
    "template": "template.fits",
}
VISIT_INFO_FILE = "visit.json"

# run() argument -> command-line option naming a single file
_FILE_OPTIONS = {
    "diaSourceCat": "sources",
    "diaObjectCat": "objects",
    "diaSrcHistory": "history",
    "diaForcedSources": "forced",
    "ssSource": "ss_source",
    "mpc_orbits": "mpc_orbits",
    "diffIm": "difference",
    "science": "science",
    "template": "template",
}


def _visit_paths(args: argparse.Namespace) -> dict[str, Path]:
    """Input file per run() argument: ``--visit-dir`` files, overridden by single options."""
    paths: dict[str, Path] = {}
    if args.visit_dir is not None:
        directory = Path(args.visit_dir)
        if not directory.is_dir():
            raise InputError(f"--visit-dir {directory} is not a directory")
        for name, filename in VISIT_FILES.items():
            if (directory / filename).is_file():
                paths[name] = directory / filename
    for name, option in _FILE_OPTIONS.items():
        value = getattr(args, option)
        if value is not None:
            paths[name] = Path(value)
    return paths


def _id_bits(args: argparse.Namespace) -> int | None:
    if args.id_bits is not None or args.visit_dir is None:
        return args.id_bits
    info = Path(args.visit_dir) / VISIT_INFO_FILE
    if not info.is_file():
        return None
    import json

    return json.loads(info.read_text()).get("ccdExposureIdBits")


def load_visit_files(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for `PackageAlertsTask.run` from ``--visit-dir``/``--sources``... files."""
    paths = _visit_paths(args)
    if "diaSourceCat" not in paths or "diffIm" not in paths:
        raise CommandError(
            "give --sample, --visit-dir DIR, or at least --sources CATALOG.parquet and "
            "--difference IMAGE.fits (plus --objects, --history, --forced, --template, --science)"
        )
    kwargs: dict[str, Any] = {"ccdExposureIdBits": _id_bits(args)}
    for name, path in paths.items():
        if not path.is_file():
            raise InputError(f"{name} file {path} does not exist")
        if path.suffix == ".parquet":
            kwargs[name] = _read_parquet(path, name)
        else:
            kwargs[name] = str(path)
    kwargs.setdefault("diaObjectCat", None)
    kwargs.setdefault("diaSrcHistory", None)
    kwargs.setdefault("template", None)
    return kwargs


def _parse_image_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        nx, ny = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise CommandError(f"--image-size {text!r}: expected NXxNY, e.g. 2048x2048") from None
    return ny, nx


def _sample_kwargs(args: argparse.Namespace, schema_version: str) -> dict[str, Any]:
    from alertpack.sample import make_visit

    options: dict[str, Any] = {"schema_version": schema_version}
    if args.n_sources is not None:
        options["n_sources"] = args.n_sources
    shape = _parse_image_size(args.image_size)
    if shape is not None:
        options["image_shape"] = shape
    if args.seed is not None:
        options["seed"] = args.seed
    return make_visit(**options).run_kwargs()


def _package_sample_visit(args: argparse.Namespace, config: Any) -> int:
    """``--detectors N``: a whole focal plane of sample detectors through the process pool."""
    from alertpack.parallel import package_detectors, sample_detector_loader

    if not args.sample:
        raise CommandError("--detectors is for the built-in sample (--sample)")
    shape = _parse_image_size(args.image_size) or (4000, 4072)
    n_sources = args.n_sources if args.n_sources is not None else 53
    loaders = (
        sample_detector_loader(detector, n_sources, shape, seed=args.seed or 0)
        for detector in range(args.detectors)
    )
    summary = package_detectors(loaders, config, workers=args.workers)
    n_files = sum(len(d.paths) for d in summary.detectors)
    print(
        f"alertpack: packaged {summary.n_alerts} alerts from {args.detectors} sample detectors "
        f"(schema {config.schemaVersion}) in {summary.seconds:.1f} s on {summary.workers} "
        f"worker(s), inputs simulated inside the workers"
    )
    print(f"  size: {summary.n_bytes / 1e6:.1f} MB in {n_files} file(s) under "
          f"{config.alertWriteLocation}; peak memory per worker {summary.peak_rss_mb:.0f} MB")
    if config.doProduceAlerts:
        print(f"  kafka: {summary.n_alerts - summary.n_failed} delivered, "
              f"{summary.n_failed} failed")
    return 0 if summary.n_failed == 0 else 1


def run_package_command(args: argparse.Namespace) -> int:
    """Package a visit and print a short summary (alerts, bytes, time, path)."""
    from alertpack.task import PackageAlertsConfig, PackageAlertsTask

    config = PackageAlertsConfig()
    if args.output is not None:
        config.alertWriteLocation = args.output
    if args.schema is not None:
        apply_config_overrides(config, [f"schemaVersion={args.schema}"])
    if args.produce:
        config.doProduceAlerts = True
    apply_config_overrides(config, args.config)
    try:
        config.validate()
    except Exception as error:
        raise CommandError(f"invalid configuration: {error}") from None

    if args.detectors != 1:
        if args.detectors < 1:
            raise CommandError(f"--detectors {args.detectors}: give at least 1")
        return _package_sample_visit(args, config)
    start = time.perf_counter()
    if args.sample:
        run_kwargs = _sample_kwargs(args, config.schemaVersion)
        what = "sample visit"
    else:
        run_kwargs = load_visit_files(args)
        what = "visit"
    prepared = time.perf_counter()
    task = PackageAlertsTask(config=config)
    result = task.run(**run_kwargs)
    elapsed = time.perf_counter() - prepared

    print(
        f"alertpack: packaged {result.nAlerts} alerts from the {what} "
        f"(schema {config.schemaVersion}) in {elapsed:.2f} s "
        f"[inputs {prepared - start:.2f} s]"
    )
    print(f"  size: {result.alerts.nbytes / 1e6:.2f} MB, "
          f"{result.alerts.nbytes / max(result.nAlerts, 1) / 1e3:.1f} kB per alert")
    for path in result.paths:
        print(f"  wrote {path}")
    if not result.paths:
        print("  no alert file written" + ("" if result.nAlerts else " (no DiaSources)"))
    unusual = {key: count for key, count in result.cutoutStatus.items() if not key.endswith(":OK")}
    if unusual:
        print("  cutouts: " + ", ".join(f"{count} {key}" for key, count in sorted(unusual.items())))
    if config.doProduceAlerts:
        print(f"  kafka: {result.nDelivered} delivered, {result.nFailed} failed"
              + (f" (saved to {result.failedPath})" if result.failedPath else ""))
    return 0 if result.nFailed == 0 else 1
