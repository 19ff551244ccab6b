"""A visit's input files: catalogs and images of one detector, by run() argument.

A visit directory (``--visit-dir``) holds the files named in `VISIT_FILES`;
a catalog may be in any format of `alertpack.inputs.catalogs` (e.g.
``diaSourceCat.csv`` instead of ``diaSourceCat.parquet``). Single-file options
override them. The result is the keyword arguments of
`alertpack.core.AlertPackager.run` (and `PackageAlertsTask.run`): catalogs as
Arrow tables (Parquet) or DataFrames, each marked with its file (DataFrame
``attrs`` or Arrow schema metadata ``alertpack_file``, see `catalog_files`),
images opened lazily and checked (`alertpack.inputs.fits_files`), so that a
bad file fails here, before any work or output.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alertpack.errors import CommandError, InputError

__all__ = ["VISIT_FILES", "VISIT_INFO_FILE", "catalog_files", "load_visit_files"]

# DataFrame.attrs key of the file a catalog was read from
_FILE_ATTR = "alertpack_file"

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

# run() argument of an image -> the image's name in messages and cutout headers
_IMAGE_NAMES = {"diffIm": "difference", "science": "science", "template": "template"}

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
            found = _visit_file(directory, name, filename)
            if found is not None:
                paths[name] = found
    for name, option in _FILE_OPTIONS.items():
        value = getattr(args, option)
        if value is not None:
            paths[name] = Path(value)
    return paths


def _visit_file(directory: Path, name: str, filename: str) -> Path | None:
    """The file of run() argument ``name`` in a visit directory: a catalog in any format."""
    from alertpack.inputs.catalogs import CATALOG_FORMATS

    if name in _IMAGE_NAMES:
        return directory / filename if (directory / filename).is_file() else None
    found = [directory / f"{name}{ending}" for ending in CATALOG_FORMATS]
    found = [path for path in found if path.is_file()]
    if len(found) > 1:
        raise InputError(
            f"visit directory {directory} has {len(found)} {name} catalogs "
            f"({', '.join(path.name for path in found)}); keep one"
        )
    return found[0] if found else None


def _id_bits(args: argparse.Namespace) -> int | None:
    if args.id_bits is not None or args.visit_dir is None:
        return args.id_bits
    info = Path(args.visit_dir) / VISIT_INFO_FILE
    if not info.is_file():
        return None
    return _read_visit_info(info).get("ccdExposureIdBits")


def _read_visit_info(path: Path) -> dict[str, Any]:
    """``visit.json`` as a dict, with a clear error when it is not a JSON object."""
    import json

    try:
        info = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(
            f"{path} is not a readable visit.json ({type(error).__name__}: {error}); it must be "
            "a UTF-8 JSON object such as {\"ccdExposureIdBits\": 44}"
        ) from None
    if not isinstance(info, dict):
        raise InputError(f"{path} holds a JSON {type(info).__name__}, not an object")
    bits = info.get("ccdExposureIdBits")
    if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int)):
        raise InputError(
            f"{path}: ccdExposureIdBits = {bits!r} is not an integer number of bits"
        )
    return info


def catalog_files(run_kwargs: dict[str, Any]) -> dict[str, Path]:
    """run() argument -> file, for the catalogs of ``run_kwargs`` read from files."""
    return {
        name: Path(_file_of(value))
        for name, value in run_kwargs.items()
        if _file_of(value) is not None
    }


def _file_of(catalog: Any) -> str | None:
    """The file a catalog was read from: DataFrame attrs or Arrow schema metadata."""
    attrs = getattr(catalog, "attrs", None)
    if isinstance(attrs, dict):
        return attrs.get(_FILE_ATTR)
    schema = getattr(catalog, "schema", None)
    metadata = getattr(schema, "metadata", None) or {}
    value = metadata.get(_FILE_ATTR.encode())
    return None if value is None else value.decode()


def _with_file(catalog: Any, path: Path) -> Any:
    """``catalog`` marked with the file it was read from."""
    if isinstance(getattr(catalog, "attrs", None), dict):
        catalog.attrs[_FILE_ATTR] = str(path)
        return catalog
    metadata = dict(catalog.schema.metadata or {})
    metadata[_FILE_ATTR.encode()] = str(path).encode()
    return catalog.replace_schema_metadata(metadata)


def load_visit_files(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for `PackageAlertsTask.run` from ``--visit-dir``/``--sources``... files."""
    paths = _visit_paths(args)
    if "diaSourceCat" not in paths or "diffIm" not in paths:
        raise CommandError(
            "give --sample, --visit-dir DIR, or at least --sources CATALOG and "
            "--difference IMAGE.fits (plus --objects, --history, --forced, --template, --science)"
        )
    kwargs: dict[str, Any] = {"ccdExposureIdBits": _id_bits(args)}
    for name, path in paths.items():
        if not path.is_file():
            raise InputError(f"{name} file {path} does not exist")
    # images first: their headers are quick to check, and a bad one fails before the catalogs
    from alertpack.inputs.images import as_survey_image

    for name, path in paths.items():
        if name in _IMAGE_NAMES:
            kwargs[name] = as_survey_image(path, name=_IMAGE_NAMES[name])
    from alertpack.inputs.catalogs import read_catalog

    for name, path in paths.items():
        if name not in _IMAGE_NAMES:
            kwargs[name] = _with_file(read_catalog(path, name), path)
    kwargs.setdefault("diaObjectCat", None)
    kwargs.setdefault("diaSrcHistory", None)
    kwargs.setdefault("template", None)
    return kwargs
