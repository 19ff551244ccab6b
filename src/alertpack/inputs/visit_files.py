"""A visit's input files: catalogs and images of one detector, by run() argument.

A visit directory (``--visit-dir``) holds the files named in `VISIT_FILES`;
single-file options override them. The result is the keyword arguments of
`alertpack.core.AlertPackager.run` (and `PackageAlertsTask.run`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alertpack.errors import CommandError, InputError

__all__ = ["VISIT_FILES", "VISIT_INFO_FILE", "load_visit_files"]


def _read_parquet(path: Path, what: str) -> Any:
    """A catalog from an existing Parquet file, with a clear error if it is not one.

    Returned as a `pyarrow.Table`: the packager validates Arrow columns as it does
    DataFrames, and the command then never imports pandas (~0.5 s of start-up).
    ``ParquetFile.read`` rather than ``read_table``, which goes through
    ``pyarrow.dataset`` and that imports pandas.
    """
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).read()
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
