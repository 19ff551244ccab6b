"""A visit's input files: catalogs and images of one detector, as `VisitInputs`.

A visit directory holds the files named in `VISIT_FILES` (the layout
``alertpack package --visit-dir`` reads and `alertpack.sample.write_visit`
writes); a catalog may be in any format of `alertpack.inputs.catalogs` (e.g.
``diaSourceCat.csv`` instead of ``diaSourceCat.parquet``), and ``visit.json``
may give ``ccdExposureIdBits`` and ``calibration`` (image name -> nJy per
pixel value, for images whose files say no unit: ``{"template": 1}``). A
PSF file beside an image (`VISIT_PSF_FILES`: ``template_psf.fits`` ...,
``psf.fits`` for the difference and science images, the visit's exposure)
gives its stamps their PSF, in place of the image file's own. Files
named explicitly override the directory's; visit-wide values
(`VisitDefaults`: the id bits and calibrations of a whole visit) are
overridden by a directory's ``visit.json``.
`load_visit_files` returns a `~alertpack.visit_inputs.VisitInputs`:
catalogs as Arrow tables (Parquet) or DataFrames, with the file of each in
``files`` (so that validation messages name it), images opened lazily and
checked (`alertpack.inputs.fits_files`), so that a bad file fails here,
before any work or output.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alertpack.errors import InputError
from alertpack.inputs.catalogs import CATALOG_FORMATS, read_catalog
from alertpack.inputs.images import as_survey_image
from alertpack.visit_inputs import IMAGES, VisitInputs

__all__ = [
    "VISIT_FILES",
    "VISIT_INFO_FILE",
    "VISIT_PSF_FILES",
    "VisitDefaults",
    "check_calibrations",
    "load_visit_files",
    "visit_id_bits",
    "visit_paths",
]

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
#: PSF files of a visit directory, by image name, in order of preference: the image's own,
#: then ``psf.fits``, the PSF of the visit's exposure (the difference image is matched to it)
VISIT_PSF_FILES = {
    "difference": ("difference_psf.fits", "psf.fits"),
    "science": ("science_psf.fits", "psf.fits"),
    "template": ("template_psf.fits",),
}

# VisitInputs field of an image -> the image's name in messages and cutout headers
_IMAGE_NAMES = {field: name for name, field in IMAGES.items()}
# a run cannot do without these
_REQUIRED = ("diaSourceCat", "diffIm")

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class VisitDefaults:
    """Values that hold for every detector of a visit, unless its ``visit.json`` says otherwise.

    The id packing is the instrument's and a template's unit is the coadd's:
    the same for every detector of a visit (the command line's ``--id-bits``
    and ``--calibration`` over several ``--visit-dir`` directories).

    Attributes
    ----------
    id_bits : `int` or `None`
        ``ccdExposureIdBits``.
    calibration : `dict` [`str`, `float`]
        Image name (``"difference"``, ``"science"``, ``"template"``) -> nJy
        per pixel value.
    """

    id_bits: int | None = None
    calibration: Mapping[str, float] = field(default_factory=dict)


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
        Unreadable, not UTF-8 JSON, not an object, a ``ccdExposureIdBits``
        that is not an integer, or a ``calibration`` that is not an object of
        image names and positive numbers.
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
    calibration = info.get("calibration", {})
    if not isinstance(calibration, dict):
        raise InputError(
            f"{path}: calibration = {calibration!r} is not an object such as "
            '{"template": 1, "difference": 0.57}'
        )
    check_calibrations(calibration, str(path))
    return info


def check_calibrations(calibration: Mapping[str, Any], where: str) -> dict[str, float]:
    """Image name -> nJy per pixel value, each name an image and each value positive.

    Raises
    ------
    InputError
        An unknown image name or a value that is not a positive finite number;
        the message begins with ``where``.
    """
    checked: dict[str, float] = {}
    for name, value in calibration.items():
        if name not in VISIT_PSF_FILES:
            raise InputError(
                f"{where}: calibration of {name!r}: not an image; choose among "
                f"{', '.join(VISIT_PSF_FILES)}"
            )
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or number <= 0:
            raise InputError(
                f"{where}: calibration of {name} = {value!r} is not a positive number (nJy per "
                "pixel value)"
            )
        checked[name] = float(number)
    return checked


def _visit_info(directory: PathLike | None) -> dict[str, Any]:
    """The directory's visit.json, or `{}` when there is none."""
    if directory is None:
        return {}
    info = Path(directory) / VISIT_INFO_FILE
    return _read_visit_info(info) if info.is_file() else {}


def visit_id_bits(
    directory: PathLike | None, id_bits: int | None = None, defaults: VisitDefaults | None = None
) -> int | None:
    """``ccdExposureIdBits`` of a detector: ``id_bits``, else its visit.json's, else the visit's.

    Raises
    ------
    InputError
        A bad ``visit.json``.
    """
    if id_bits is not None:
        return id_bits
    bits = _visit_info(directory).get("ccdExposureIdBits")
    if bits is not None:
        return int(bits)
    return None if defaults is None else defaults.id_bits


def _psf_paths(directory: PathLike | None, psfs: Mapping[str, PathLike | None]) -> dict[str, Path]:
    """Image name -> its PSF file: the one given, else the directory's (`VISIT_PSF_FILES`)."""
    found: dict[str, Path] = {}
    for name, candidates in VISIT_PSF_FILES.items():
        given = psfs.get(name)
        if given is not None:
            found[name] = Path(given)
            continue
        if directory is not None:
            present = [Path(directory, f) for f in candidates if Path(directory, f).is_file()]
            if present:
                found[name] = present[0]
    unknown = sorted(set(psfs) - set(VISIT_PSF_FILES))
    if unknown:
        raise InputError(
            f"PSF of {unknown[0]!r}: not an image; choose among {', '.join(VISIT_PSF_FILES)}"
        )
    return found


def load_visit_files(
    directory: PathLike | None = None,
    *,
    files: Mapping[str, PathLike | None] | None = None,
    id_bits: int | None = None,
    calibration: Mapping[str, float] | None = None,
    psfs: Mapping[str, PathLike | None] | None = None,
    defaults: VisitDefaults | None = None,
) -> VisitInputs:
    """Read a visit directory and/or explicit files into `VisitInputs`.

    Parameters
    ----------
    directory : `str` or path, optional
        A visit directory (see `VISIT_FILES`, `VISIT_INFO_FILE`,
        `VISIT_PSF_FILES`).
    files : `~collections.abc.Mapping` [`str`, path], optional
        `VisitInputs` field -> file, overriding the directory's file of that
        field (`None` values are ignored).
    id_bits : `int`, optional
        ``ccdExposureIdBits``, overriding the directory's ``visit.json``.
    calibration : `~collections.abc.Mapping` [`str`, `float`], optional
        Image name -> nJy per pixel value, overriding ``visit.json``'s (for
        images whose files say no unit: see
        `alertpack.inputs.exposure_layout`).
    psfs : `~collections.abc.Mapping` [`str`, path], optional
        Image name -> PSF file, overriding the directory's.
    defaults : `VisitDefaults`, optional
        Visit-wide id bits and calibrations, for what neither the arguments
        above nor ``visit.json`` give.

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
    defaults = defaults if defaults is not None else VisitDefaults()
    info = _visit_info(directory)
    bits = visit_id_bits(directory, id_bits, defaults)
    calibrations = {
        **check_calibrations(defaults.calibration, "visit-wide calibration"),
        **info.get("calibration", {}),
        **check_calibrations(calibration or {}, "calibration"),
    }
    psf_files = _psf_paths(directory, psfs or {})
    for name, path in [*paths.items(), *psf_files.items()]:
        if not path.is_file():
            what = f"{name} file" if name in VISIT_FILES else f"{name} PSF file"
            raise InputError(f"{what} {path} does not exist")
    # images first: their headers are quick to check, and a bad one fails before the catalogs
    values: dict[str, Any] = {}
    for name, path in paths.items():
        if name in _IMAGE_NAMES:
            image = _IMAGE_NAMES[name]
            values[name] = as_survey_image(
                path, name=image, calibration=calibrations.get(image), psf=psf_files.get(image)
            )
    catalog_files = {name: path for name, path in paths.items() if name not in _IMAGE_NAMES}
    for name, path in catalog_files.items():
        values[name] = read_catalog(path, name)
    return VisitInputs(**values, ccdExposureIdBits=bits, files=catalog_files)
