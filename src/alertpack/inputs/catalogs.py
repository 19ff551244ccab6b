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
CSV                ``.csv``, ``.csv.gz``               `astropy.table.Table` (ascii.csv)
FITS binary table  ``.fits``, ``.fit``, ``.fits.gz``   `astropy.table.Table`
VOTable            ``.vot``, ``.votable``, ``.xml``    `astropy.table.Table`
=================  ==================================  =============================

Every file is bounded before it is materialised, by the ``catalog_rows`` and
``catalog_bytes`` limits of `alertpack.limits` (a real detector's catalogs
are far below them): a Parquet file by the row count and uncompressed size
its footer declares; a FITS table by the ``NAXISn``/``PCOUNT`` its headers
declare (read header by header, a ``.gz`` decompressed as it goes and never
kept beyond the declared size); a CSV file by its bytes and lines (a
``.csv.gz`` counted while it inflates); a VOTable by its bytes and declared
``nrows``. A VOTable whose data is a ``<STREAM href=...>`` (a remote URL or
a local file that astropy would fetch) is refused: catalog data must be in
the file given.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np

from alertpack.errors import CatalogFileError, InputError, LimitExceededError
from alertpack.limits import ReadLimits, check_limit, read_limits

__all__ = ["CATALOG_FORMATS", "CatalogFileError", "catalog_format", "name_catalog_files",
           "read_catalog"]

#: file name ending -> catalog format
CATALOG_FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".fits": "fits",
    ".fit": "fits",
    ".fits.gz": "fits",
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
}

# astropy format names of the formats read through astropy Table
_ASTROPY_FORMATS = {"csv": "ascii.csv", "fits": "fits", "votable": "votable"}

_FITS_BLOCK = 2880
_FITS_CARD = 80
# a FITS header longer than this many blocks (36 cards each) is no catalog's
_MAX_HEADER_BLOCKS = 1000
# bytes read at a time when counting or skipping
_CHUNK = 1 << 20
# <STREAM ...> of a VOTable (any namespace prefix), and its attributes
_VOTABLE_STREAM = re.compile(rb"<\s*(?:[\w.-]+:)?STREAM\b([^>]*)>", re.IGNORECASE)
_VOTABLE_TABLE = re.compile(rb"<\s*(?:[\w.-]+:)?TABLE\b([^>]*)>", re.IGNORECASE)
_XML_ATTRIBUTE = re.compile(rb"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")



def catalog_format(path: str | os.PathLike[str]) -> str | None:
    """The catalog format of a file by its name (see `CATALOG_FORMATS`), or `None`."""
    name = Path(path).name.lower()
    for ending in sorted(CATALOG_FORMATS, key=len, reverse=True):
        if name.endswith(ending):
            return CATALOG_FORMATS[ending]
    return None


def read_catalog(
    path: str | os.PathLike[str], role: str, *, limits: ReadLimits | None = None
) -> Any:
    """Read one catalog file into a `pyarrow.Table` (Parquet) or `pandas.DataFrame`.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        A Parquet, CSV, FITS binary table or VOTable file (by extension).
    role : `str`
        What the catalog is (``"diaSourceCat"``, ...); for messages.
    limits : `~alertpack.limits.ReadLimits`, optional
        ``catalog_rows`` and ``catalog_bytes`` bound the file before it is
        read (see the module docstring); default: the environment.

    Returns
    -------
    frame : `pyarrow.Table` or `pandas.DataFrame`
        One column per table column. In a DataFrame, null values of integer
        and boolean columns become pandas' nullable dtypes (``Int64``,
        ``boolean``), of float columns NaN; an Arrow table keeps Arrow nulls.

    Raises
    ------
    CatalogFileError
        Unknown extension, unreadable file, a column that is not a plain
        scalar column (e.g. a FITS vector column), or a VOTable whose data
        are a ``STREAM`` reference.
    LimitExceededError
        A file declaring or holding more rows or bytes than the limits.
    """
    path = Path(path)
    limits = read_limits(limits)
    fmt = catalog_format(path)
    if fmt is None:
        endings = ", ".join(CATALOG_FORMATS)
        raise CatalogFileError(
            f"{role} file {path}: unknown catalog format; name the file with one of the "
            f"extensions {endings}"
        )
    if not path.is_file():
        raise CatalogFileError(f"{role} file {path} does not exist")
    what = f"{role} file {path}"
    if fmt != "parquet" and not _gzipped(path):
        check_limit(path.stat().st_size, "catalog_bytes", limits, what, "bytes")
    if fmt == "parquet":
        return _read_parquet(path, role, limits)
    if fmt == "votable":
        _check_votable(path, what, limits)
    return _read_with_astropy(path, role, fmt, limits)


def _gzipped(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _read_parquet(path: Path, role: str, limits: ReadLimits) -> Any:
    # An Arrow table: the packager validates its columns as it does a DataFrame's,
    # and `alertpack package` never imports pandas (~0.5 s of start-up).
    # ParquetFile.read, not read_table: that goes through pyarrow.dataset, which imports pandas.
    # pyarrow here, not at the top: alertpack.sample imports this module and stays light.
    import pyarrow.parquet as pq

    what = f"{role} file {path}"
    try:
        parquet = pq.ParquetFile(path)
        metadata = parquet.metadata
        declared = sum(
            metadata.row_group(group).total_byte_size for group in range(metadata.num_row_groups)
        )
    except Exception as error:  # pyarrow raises many types for a non-Parquet file
        raise CatalogFileError(f"{what} is not a readable Parquet file: {error}") from None
    # what the footer declares, before any column is materialised
    check_limit(metadata.num_rows, "catalog_rows", limits, what, "rows (Parquet footer)")
    check_limit(declared, "catalog_bytes", limits, what, "bytes uncompressed (Parquet footer)")
    try:
        return parquet.read()
    except Exception as error:  # pyarrow raises many types for damaged data
        raise CatalogFileError(f"{what} is not a readable Parquet file: {error}") from None


def _read_with_astropy(path: Path, role: str, fmt: str, limits: ReadLimits) -> Any:
    # astropy.table: only CSV, FITS and VOTable catalogs; alertpack.sample imports this module
    from astropy.table import Table

    what = f"{role} file {path}"
    options: dict[str, Any] = {"format": _ASTROPY_FORMATS[fmt]}
    source: str | Path | BinaryIO = path
    if fmt == "csv":
        options["converters"] = _csv_converters()
        n_bytes = _check_csv(path, what, limits)
        if _gzipped(path):
            source = io.BytesIO(_read_gzip(path, n_bytes))
    elif fmt == "fits":
        n_bytes = _check_fits_tables(path, what, limits)
        if _gzipped(path):
            # only the HDUs the headers declare, within the limits; never the rest
            source = io.BytesIO(_read_gzip(path, n_bytes))
    try:
        with warnings.catch_warnings():
            # VOTable/FITS readers warn about unit strings and vendor keywords
            warnings.simplefilter("ignore")
            table = Table.read(source, **options)
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
    check_limit(len(table), "catalog_rows", limits, what, "rows")
    # FITS tables store text as bytes; the schema's strings are str
    table.convert_bytestring_to_unicode()
    return table.to_pandas()


# --- bounds before reading -----------------------------------------------------------------------


def _open_raw(path: Path) -> BinaryIO:
    """The file's bytes as a stream: inflated as read for a ``.gz`` (bounded by the reads)."""
    if _gzipped(path):
        return cast(BinaryIO, gzip.open(path, "rb"))
    return open(path, "rb")


def _chunks(stream: BinaryIO, limit: int) -> Iterator[bytes]:
    """The stream's bytes in chunks, at most ``limit + 1`` of them in all."""
    left = limit + 1
    while left > 0:
        chunk = stream.read(min(_CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def _unreadable(what: str, error: Exception) -> CatalogFileError:
    return CatalogFileError(f"{what} cannot be read ({type(error).__name__}: {error})")


def _read_gzip(path: Path, n_bytes: int) -> bytes:
    """The first ``n_bytes`` of a gzip file, inflated (they were counted already)."""
    with gzip.open(path, "rb") as stream:
        return stream.read(n_bytes)


def _check_csv(path: Path, what: str, limits: ReadLimits) -> int:
    """Lines and bytes of a CSV file (inflated as counted, never kept), within the limits."""
    n_bytes = n_lines = 0
    try:
        with _open_raw(path) as stream:
            for chunk in _chunks(stream, limits.catalog_bytes):
                n_bytes += len(chunk)
                n_lines += chunk.count(b"\n")
                check_limit(n_bytes, "catalog_bytes", limits, what, "bytes or more")
                # the first line names the columns
                check_limit(n_lines - 1, "catalog_rows", limits, what, "rows or more")
    except (OSError, EOFError) as error:
        raise _unreadable(what, error) from None
    return n_bytes


def _check_fits_tables(path: Path, what: str, limits: ReadLimits) -> int:
    """Bytes of every HDU a FITS file declares, header by header, within the limits.

    A ``.gz`` file is inflated as it is read, and the data of each HDU are
    skipped, never kept; reading stops at the end of the last complete HDU.

    Returns
    -------
    n_bytes : `int`
        The bytes of the complete HDUs (what the table reader may be given).
    """
    # astropy.io.fits: only FITS catalogs, as astropy.table above
    from astropy.io import fits

    position = declared = 0
    try:
        with _open_raw(path) as stream:
            while True:
                header_bytes = _read_fits_header(stream, what)
                if header_bytes is None:
                    return position
                header = fits.Header.fromstring(header_bytes.decode("ascii", "replace"))
                data_bytes = _declared_data_bytes(header)
                declared += data_bytes
                hdu = f"{what}, HDU {str(header.get('EXTNAME', '')).strip() or 'unnamed'}"
                check_limit(declared, "catalog_bytes", limits, hdu, "bytes declared (NAXISn)")
                if str(header.get("XTENSION", "")).strip() in ("BINTABLE", "TABLE"):
                    rows = int(header.get("NAXIS2", 0))
                    check_limit(rows, "catalog_rows", limits, hdu, "rows declared (NAXIS2)")
                padded = -(-data_bytes // _FITS_BLOCK) * _FITS_BLOCK
                skipped = _skip(stream, padded)
                position += len(header_bytes) + skipped
                if skipped < padded:
                    return position  # a truncated last HDU: astropy says what is wrong
    except LimitExceededError:
        raise
    except (OSError, EOFError, ValueError, KeyError) as error:
        raise _unreadable(what, error) from None


def _skip(stream: BinaryIO, n_bytes: int) -> int:
    """Move ``n_bytes`` on (inflating and dropping them in a ``.gz``); how many there were."""
    if isinstance(stream, gzip.GzipFile):
        return sum(len(chunk) for chunk in _chunks(stream, n_bytes - 1))
    start = stream.tell()
    end = stream.seek(0, os.SEEK_END)
    stream.seek(min(start + n_bytes, end))
    return min(n_bytes, end - start)


def _read_fits_header(stream: BinaryIO, what: str) -> bytes | None:
    """The next FITS header (whole 2880-byte blocks up to ``END``), or `None` at the end."""
    blocks = bytearray()
    for _ in range(_MAX_HEADER_BLOCKS):
        block = stream.read(_FITS_BLOCK)
        if len(block) < _FITS_BLOCK or (not blocks and not block.strip(b"\0 ")):
            return None  # end of file, padding, or a partial block: no further HDU
        blocks += block
        cards = (block[i : i + 8] for i in range(0, _FITS_BLOCK, _FITS_CARD))
        if any(card == b"END     " for card in cards):
            return bytes(blocks)
    raise LimitExceededError(
        f"{what}: a FITS header of more than {_MAX_HEADER_BLOCKS} blocks (no END card); "
        "not a catalog file"
    )


def _declared_data_bytes(header: Any) -> int:
    """``|BITPIX|/8 * GCOUNT * (NAXIS1 * ... * NAXISn + PCOUNT)`` of one HDU's header."""
    n_axes = int(header.get("NAXIS", 0))
    if n_axes == 0:
        return 0
    values = math.prod(int(header.get(f"NAXIS{axis}", 0)) for axis in range(1, n_axes + 1))
    values += int(header.get("PCOUNT", 0))
    return abs(int(header.get("BITPIX", 8))) // 8 * int(header.get("GCOUNT", 1)) * values


def _check_votable(path: Path, what: str, limits: ReadLimits) -> None:
    """Refuse data by reference (``<STREAM href>``) and declared row counts beyond the limit."""
    text = path.read_bytes()  # within catalog_bytes: checked by the caller
    for match in _VOTABLE_STREAM.finditer(text):
        attributes = _attributes(match.group(1))
        if "href" in attributes:
            raise CatalogFileError(
                f"{what}: a VOTable STREAM refers to {attributes['href']!r} for its data; "
                "remote or local data by reference are not read (astropy would fetch them): "
                "give the table with its data inline (TABLEDATA or BINARY)"
            )
        encoding = attributes.get("encoding", "none").lower()
        if encoding not in ("none", "base64"):
            raise CatalogFileError(
                f"{what}: a VOTable STREAM with encoding={encoding!r} is not read (only "
                "inline base64 data)"
            )
    for match in _VOTABLE_TABLE.finditer(text):
        declared = _attributes(match.group(1)).get("nrows", "").strip()
        if declared.isdigit():
            check_limit(int(declared), "catalog_rows", limits, what, "rows declared (nrows)")


def _attributes(text: bytes) -> dict[str, str]:
    """An XML start tag's attributes (names without namespace prefix, lower case)."""
    found = {}
    for name, double, single in _XML_ATTRIBUTE.findall(text):
        key = name.decode("ascii", "replace").rsplit(":", 1)[-1].lower()
        found[key] = (double or single).decode("utf-8", "replace")
    return found


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
