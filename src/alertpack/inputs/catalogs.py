"""Catalog files by extension: Parquet, CSV, FITS binary tables, VOTable -> tables.

Parquet files become `pyarrow.Table` objects (no pandas import: it is a
fifth of ``alertpack package``'s start-up), the other formats DataFrames. Both
are validated later exactly as DataFrames given in memory are
(`alertpack.packets.conform`); `name_catalog_files` puts the file names into
the messages of that validation, which know only the catalog's role.

=================  ==================================  =============================
format             extensions                          read with
=================  ==================================  =============================
Parquet            ``.parquet``, ``.pq``               `pyarrow.parquet.ParquetFile`
CSV                ``.csv``                            `astropy.table.Table` (ascii.csv)
FITS binary table  ``.fits``, ``.fit``, ``.fits.gz``   `astropy.table.Table`
VOTable            ``.vot``, ``.votable``, ``.xml``    `astropy.table.Table`
=================  ==================================  =============================
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from alertpack.errors import CatalogFileError, InputError

__all__ = ["CATALOG_FORMATS", "CatalogFileError", "catalog_format", "name_catalog_files",
           "read_catalog"]

#: file name ending -> catalog format
CATALOG_FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".fits": "fits",
    ".fit": "fits",
    ".fits.gz": "fits",
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
}

# astropy format names of the formats read through astropy Table
_ASTROPY_FORMATS = {"csv": "ascii.csv", "fits": "fits", "votable": "votable"}



def catalog_format(path: str | os.PathLike[str]) -> str | None:
    """The catalog format of a file by its name (see `CATALOG_FORMATS`), or `None`."""
    name = Path(path).name.lower()
    for ending in sorted(CATALOG_FORMATS, key=len, reverse=True):
        if name.endswith(ending):
            return CATALOG_FORMATS[ending]
    return None


def read_catalog(path: str | os.PathLike[str], role: str) -> Any:
    """Read one catalog file into a `pyarrow.Table` (Parquet) or `pandas.DataFrame`.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        A Parquet, CSV, FITS binary table or VOTable file (by extension).
    role : `str`
        What the catalog is (``"diaSourceCat"``, ...); for messages.

    Returns
    -------
    frame : `pyarrow.Table` or `pandas.DataFrame`
        One column per table column. In a DataFrame, null values of integer
        and boolean columns become pandas' nullable dtypes (``Int64``,
        ``boolean``), of float columns NaN; an Arrow table keeps Arrow nulls.

    Raises
    ------
    CatalogFileError
        Unknown extension, unreadable file, or a column that is not a plain
        scalar column (e.g. a FITS vector column).
    """
    path = Path(path)
    fmt = catalog_format(path)
    if fmt is None:
        endings = ", ".join(CATALOG_FORMATS)
        raise CatalogFileError(
            f"{role} file {path}: unknown catalog format; name the file with one of the "
            f"extensions {endings}"
        )
    if not path.is_file():
        raise CatalogFileError(f"{role} file {path} does not exist")
    if fmt == "parquet":
        return _read_parquet(path, role)
    return _read_with_astropy(path, role, fmt)


def _read_parquet(path: Path, role: str) -> Any:
    # An Arrow table: the packager validates its columns as it does a DataFrame's,
    # and `alertpack package` never imports pandas (~0.5 s of start-up).
    # ParquetFile.read, not read_table: that goes through pyarrow.dataset, which imports pandas.
    # pyarrow here, not at the top: alertpack.sample imports this module and stays light.
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).read()
    except Exception as error:  # pyarrow raises many types for a non-Parquet file
        raise CatalogFileError(
            f"{role} file {path} is not a readable Parquet file: {error}"
        ) from None


def _read_with_astropy(path: Path, role: str, fmt: str) -> Any:
    # astropy.table: only CSV, FITS and VOTable catalogs; alertpack.sample imports this module
    from astropy.table import Table

    options: dict[str, Any] = {"format": _ASTROPY_FORMATS[fmt]}
    if fmt == "csv":
        options["converters"] = _csv_converters()
    try:
        with warnings.catch_warnings():
            # VOTable/FITS readers warn about unit strings and vendor keywords
            warnings.simplefilter("ignore")
            table = Table.read(path, **options)
    except Exception as error:  # astropy raises many types for a damaged file
        kind = {"csv": "CSV", "fits": "FITS binary table", "votable": "VOTable"}[fmt]
        raise CatalogFileError(
            f"{role} file {path} is not a readable {kind} ({type(error).__name__}: {error})"
        ) from None
    for column in table.itercols():
        if column.ndim > 1:
            raise CatalogFileError(
                f"{role} file {path}: column {column.name!r} holds arrays of shape "
                f"{column.shape[1:]} per row; catalog columns must be scalars"
            )
    # FITS tables store text as bytes; the schema's strings are str
    table.convert_bytestring_to_unicode()
    return table.to_pandas()


def _csv_converters() -> dict[str, list]:
    """Integers, then floats, then booleans (True/False), then text, for every column."""
    from astropy.io.ascii import convert_numpy  # astropy: only CSV catalogs, as above

    return {
        "*": [
            convert_numpy(np.int64),
            convert_numpy(np.float64),
            convert_numpy(bool),
            convert_numpy(str),
        ]
    }


def name_catalog_files(error: InputError, paths: Mapping[str, Path]) -> InputError:
    """The same error with each catalog role it mentions followed by its file.

    Validation messages name catalogs by role (``"diaSourceCat lacks column
    ..."``); for catalogs read from files the user needs the file:
    ``"diaSourceCat (file visit/diaSourceCat.csv) lacks column ..."``.

    Parameters
    ----------
    error : `~alertpack.errors.InputError`
        The validation error.
    paths : `~collections.abc.Mapping` [`str`, `pathlib.Path`]
        Role -> file it was read from.

    Returns
    -------
    error : `~alertpack.errors.InputError`
        A new error of the same class when a role was named, else ``error``.
    """
    message = str(error)
    named = message
    for role, path in paths.items():
        named = re.sub(rf"\b{re.escape(role)}\b(?! \(file )", f"{role} (file {path})", named,
                       count=1)
    if named == message:
        return error
    try:
        return type(error)(named)
    except TypeError:  # an error class with another constructor
        return InputError(named)
