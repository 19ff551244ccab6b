"""A visit's input files: catalogs and images of one detector, as `VisitInputs`.

A visit directory holds the files named in `VISIT_FILES` (the layout
``alertpack package --visit-dir`` reads and `alertpack.sample.write_visit`
writes); a catalog may be in any format of `alertpack.inputs.catalogs` (e.g.
``diaSourceCat.csv`` instead of ``diaSourceCat.parquet``), and ``visit.json``
may give ``ccdExposureIdBits``. Files named explicitly override the
directory's. `load_visit_files` returns a `~alertpack.visit_inputs.VisitInputs`:
catalogs as Arrow tables (Parquet) or DataFrames, with the file of each in
``files`` (so that validation messages name it), images opened lazily and
checked (`alertpack.inputs.fits_files`), so that a bad file fails here,
before any work or output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alertpack.errors import InputError
from alertpack.inputs.catalogs import CATALOG_FORMATS, read_catalog
from alertpack.inputs.images import as_survey_image
from alertpack.visit_inputs import IMAGES, VisitInputs

__all__ = ["VISIT_FILES", "VISIT_INFO_FILE", "load_visit_files", "visit_paths"]

#: file names of a visit directory, by VisitInputs field
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

# VisitInputs field of an image -> the image's name in messages and cutout headers
_IMAGE_NAMES = {field: name for name, field in IMAGES.items()}
# a run cannot do without these
_REQUIRED = ("diaSourceCat", "diffIm")

PathLike = str | os.PathLike[str]


def visit_paths(
    directory: PathLike | None = None, files: Mapping[str, PathLike | None] | None = None
) -> dict[str, Path]:
    """The input file of each `VisitInputs` field: a directory's, overridden by ``files``.

    Parameters
    ----------
    directory : `str` or path, optional
        A visit directory (see `VISIT_FILES`); the files present are used.
    files : `~collections.abc.Mapping` [`str`, path], optional
        Field (``"diaSourceCat"``, ``"diffIm"``, ... : the keys of
        `VISIT_FILES`) -> file; `None` values are ignored.

    Raises
    ------
    InputError
        ``directory`` is not a directory, holds two formats of one
        catalog, or ``files`` names a field that is not a file input.
    """
    paths: dict[str, Path] = {}
    if directory is not None:
        directory = Path(directory)
        if not directory.is_dir():
            raise InputError(f"visit directory {directory} is not a directory")
        for name, filename in VISIT_FILES.items():
            found = _visit_file(directory, name, filename)
            if found is not None:
                paths[name] = found
    for name, value in (files or {}).items():
        if name not in VISIT_FILES:
            raise InputError(
                f"{name!r} is not an input read from a file; choose among {', '.join(VISIT_FILES)}"
            )
        if value is not None:
            paths[name] = Path(value)
    return paths


def _visit_file(directory: Path, name: str, filename: str) -> Path | None:
    """The file of field ``name`` in a visit directory: a catalog in any format."""
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


def _missing_message(name: str, directory: PathLike | None) -> str:
    """Why a required input is missing, naming what was looked for."""
    if name in _IMAGE_NAMES:
        what, expected = _IMAGE_NAMES[name], VISIT_FILES[name]
    else:
        what, expected = name, ", ".join(f"{name}{ending}" for ending in CATALOG_FORMATS)
    if directory is None:
        return f"no {what} file given: a visit needs a diaSourceCat catalog and a difference image"
    return f"visit directory {directory} has no {what} file ({expected})"


def _read_visit_info(path: PathLike) -> dict[str, Any]:
    """``visit.json`` as a dict, with a clear error when it is not a JSON object.

    Raises
    ------
    InputError
        Unreadable, not UTF-8 JSON, not an object, or a ``ccdExposureIdBits``
        that is not an integer.
    """
    path = Path(path)
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


def _id_bits(directory: PathLike | None, id_bits: int | None) -> int | None:
    """``id_bits`` when given, else ``ccdExposureIdBits`` of the directory's visit.json."""
    if id_bits is not None or directory is None:
        return id_bits
    info = Path(directory) / VISIT_INFO_FILE
    if not info.is_file():
        return None
    return _read_visit_info(info).get("ccdExposureIdBits")


def load_visit_files(
    directory: PathLike | None = None,
    *,
    files: Mapping[str, PathLike | None] | None = None,
    id_bits: int | None = None,
) -> VisitInputs:
    """Read a visit directory and/or explicit files into `VisitInputs`.

    Parameters
    ----------
    directory : `str` or path, optional
        A visit directory (see `VISIT_FILES`, `VISIT_INFO_FILE`).
    files : `~collections.abc.Mapping` [`str`, path], optional
        `VisitInputs` field -> file, overriding the directory's file of that
        field (`None` values are ignored).
    id_bits : `int`, optional
        ``ccdExposureIdBits``; default that of the directory's ``visit.json``.

    Returns
    -------
    inputs : `~alertpack.visit_inputs.VisitInputs`
        Images opened lazily, catalogs read, ``files`` the catalogs' files.

    Raises
    ------
    InputError
        No DiaSource catalog or difference image, a file that does not exist
        or cannot be read (`~alertpack.errors.CatalogFileError`,
        `~alertpack.errors.ImageInputError`), or a bad ``visit.json``.
    """
    paths = visit_paths(directory, files)
    for name in _REQUIRED:
        if name not in paths:
            raise InputError(_missing_message(name, directory))
    bits = _id_bits(directory, id_bits)
    for name, path in paths.items():
        if not path.is_file():
            raise InputError(f"{name} file {path} does not exist")
    # images first: their headers are quick to check, and a bad one fails before the catalogs
    values: dict[str, Any] = {}
    for name, path in paths.items():
        if name in _IMAGE_NAMES:
            values[name] = as_survey_image(path, name=_IMAGE_NAMES[name])
    catalog_files = {name: path for name, path in paths.items() if name not in _IMAGE_NAMES}
    for name, path in catalog_files.items():
        values[name] = read_catalog(path, name)
    return VisitInputs(**values, ccdExposureIdBits=bits, files=catalog_files)
