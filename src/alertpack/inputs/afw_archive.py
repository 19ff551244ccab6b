"""The archive afw writes after an exposure's planes: what it holds, and the little alertpack reads.

afw persists an Exposure's components (its SkyWcs, Psf, PhotoCalib,
ApCorrMap, FilterLabel, Detector, ...) after the IMAGE, MASK and VARIANCE
HDUs as an *archive* of binary tables:

- the primary header says where the archive starts (``AR_HDU``, the 1-based
  HDU number of its index) and which archive id each component has
  (``ARCHIVE_ID_<KEY>``; files before 2020 wrote only ``<KEY>_ID``, newer ones
  write both), e.g. ``ARCHIVE_ID_PHOTOCALIB = 2``;
- the index table (``EXTTYPE = 'ARCHIVE_INDEX'``) has one row per catalog of
  each persisted object: ``id``, ``cat.archive`` (which data table, counted
  from the index as 0), ``cat.persistable`` (the object's own catalog
  number), ``row0`` and ``nrows`` (its rows there), ``name`` (the class,
  e.g. ``PhotoCalib``, ``PiffPsf``) and ``module``;
- one data table (``EXTTYPE = 'ARCHIVE_DATA'``, ``AR_CATN`` its number) per
  distinct table schema, shared by the objects of that schema; since 2021
  ``EXTNAME`` names the last class stored in it.

`AfwArchive` reads the index, and then only the rows of the components
alertpack uses: a ``PhotoCalib``'s ``calibrationMean`` (nJy per pixel unit;
the mean of a spatially varying calibration, as for afw Exposures given in
memory) and the parameters of afw's ``GaussianPsf``, the one PSF class that
can be evaluated from its table alone. Every table is checked against
`MAX_ARCHIVE_TABLE_BYTES` from its header before its rows are read.

What cannot be evaluated here, and why (`UNEVALUATED_PSFS`): ``PiffPsf``
and the other PSF classes written from Python store a pickled object in a
``bytes`` column (never unpickled: a pickle runs code, and it needs the
classes of the LSST stack); ``CoaddPsf`` (templates) is a weighted sum of
the input visits' PSFs, each warped by its WCS; ``WarpedPsf``, ``KernelPsf``,
``PcaPsf`` and ``ImagePsf`` wrap afw kernels or other PSFs. An image whose
only PSF is one of these gets no PSF in its stamps, and says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from alertpack.errors import ImageInputError
from alertpack.inputs.survey_image import error_text

__all__ = [
    "MAX_ARCHIVE_TABLE_BYTES",
    "UNEVALUATED_PSFS",
    "AfwArchive",
    "ArchiveEntry",
    "gaussian_psf_image",
]

#: an archive table whose header declares more data than this is refused (bytes): the tables
#: alertpack reads (index, PhotoCalib, GaussianPsf) hold a few hundred bytes in real files
MAX_ARCHIVE_TABLE_BYTES = 64 * 1024 * 1024

#: a GaussianPsf realized on more pixels than this is a damaged table, not a PSF
MAX_GAUSSIAN_PSF_PIXELS = 1024 * 1024

#: PSF classes found in Rubin files that need the LSST stack, and why
UNEVALUATED_PSFS = {
    "PiffPsf": "a pickled Piff model (needs piff, galsim and the LSST stack; alertpack never "
    "unpickles archive data)",
    "CoaddPsf": "a sum of the input visits' PSFs, each warped by its WCS (needs the LSST stack)",
    "WarpedPsf": "another PSF warped by a transform (needs the LSST stack)",
    "KernelPsf": "an afw convolution kernel (needs the LSST stack)",
    "PcaPsf": "a PCA of afw kernels (needs the LSST stack)",
    "ImagePsf": "an image PSF defined in Python (needs the LSST stack)",
}

# afw's ArchiveIndexSchema column names
_INDEX_COLUMNS = ("id", "cat.archive", "cat.persistable", "row0", "nrows", "name")


@dataclass(frozen=True)
class ArchiveEntry:
    """One row of an archive index: where one catalog of one persisted object is.

    Attributes
    ----------
    id : `int`
        The object's archive id (the primary header's ``ARCHIVE_ID_<KEY>``).
    catalog : `int`
        Which data table (``AR_CATN``; the index is 0).
    persistable_catalog : `int`
        The object's own catalog number (0 for its first).
    row0, nrows : `int`
        The object's rows in that table.
    class_name : `str`
        The persisted class, e.g. ``"PhotoCalib"``.
    """

    id: int
    catalog: int
    persistable_catalog: int
    row0: int
    nrows: int
    class_name: str


class AfwArchive:
    """The archive of an afw-written exposure: its index, and the components read from it.

    Build it with `from_hdulist`. Nothing but the index is read until a
    component is asked for.

    Parameters
    ----------
    hdul : `~astropy.io.fits.HDUList`
        The exposure.
    index_hdu : `int`
        Position of the ``ARCHIVE_INDEX`` HDU in ``hdul``.
    components : `dict` [`str`, `int`]
        Component key (``"PHOTOCALIB"``, ``"PSF"``, ...) -> archive id, from
        the primary header.
    label : `str`
        Names the exposure in messages.
    """

    def __init__(
        self, hdul: Any, index_hdu: int, components: Mapping[str, int], label: str
    ) -> None:
        self._hdul = hdul
        self._index_hdu = index_hdu
        self.components = dict(components)
        self.label = label
        self.entries = self._read_index()

    @classmethod
    def from_hdulist(cls, hdul: Any, label: str) -> AfwArchive | None:
        """The archive of ``hdul``, or `None` when it has none (not written by afw).

        The index is the HDU that ``AR_HDU`` names when it is an
        ``ARCHIVE_INDEX`` table, else the first table of that type.

        Raises
        ------
        ImageInputError
            ``AR_HDU`` or a component id that is not a whole number, or an
            index table that is damaged or beyond `MAX_ARCHIVE_TABLE_BYTES`.
        """
        primary = hdul[0].header
        components = _component_ids(primary, label)
        index_hdu = _index_position(hdul, primary, label)
        if index_hdu is None:
            return None
        return cls(hdul, index_hdu, components, label)

    # --- what the archive holds ---------------------------------------------------------------

    def class_of(self, key: str) -> str | None:
        """The class persisted for component ``key`` (``"PSF"`` -> ``"PiffPsf"``), if any."""
        entry = self._entry(key)
        return None if entry is None else entry.class_name

    def photo_calib_mean(self) -> float | None:
        """nJy per pixel unit of the exposure's PhotoCalib (its ``calibrationMean``), if any.

        Raises
        ------
        ImageInputError
            A PhotoCalib of afw's version 0 (in maggies, which afw itself no
            longer reads), or a mean that is not a positive finite number.
        """
        entry = self._entry("PHOTOCALIB")
        if entry is None:
            return None
        if entry.class_name != "PhotoCalib":
            raise ImageInputError(
                f"{self._where(entry)}: the PHOTOCALIB component is a {entry.class_name}, not "
                "a PhotoCalib; give the calibration explicitly"
            )
        row = self._row(entry)
        version = int(row["version"]) if "version" in row else 0
        if version < 1:
            raise ImageInputError(
                f"{self._where(entry)}: PhotoCalib version {version} (in maggies) is not "
                "supported (afw reads version 1 and later); give the calibration explicitly"
            )
        mean = _finite(row, "calibrationMean", self._where(entry))
        if mean <= 0:
            raise ImageInputError(
                f"{self._where(entry)}: calibrationMean {mean} is not a positive calibration; "
                "give the calibration explicitly"
            )
        return mean

    def psf(self) -> tuple[np.ndarray | None, str | None]:
        """The PSF image the archive can give, or `None` and why not.

        Returns
        -------
        psf : `numpy.ndarray` or `None`
            A ``GaussianPsf`` realized as afw realizes it (`gaussian_psf_image`).
        reason : `str` or `None`
            Why there is no PSF: no PSF component, or a class that needs the
            LSST stack (`UNEVALUATED_PSFS`).
        """
        entry = self._entry("PSF")
        if entry is None:
            return None, "no PSF image HDU and no PSF in the file's archive"
        if entry.class_name == "GaussianPsf":
            row = self._row(entry)
            where = self._where(entry)
            width, height = (int(_finite(row, f"dimensions_{axis}", where)) for axis in "xy")
            return gaussian_psf_image(width, height, _finite(row, "sigma", where), where), None
        why = UNEVALUATED_PSFS.get(
            entry.class_name, "a class alertpack cannot evaluate without the LSST stack"
        )
        return None, f"the file's archive holds a {entry.class_name}: {why}"

    # --- reading -------------------------------------------------------------------------------

    def _entry(self, key: str) -> ArchiveEntry | None:
        component_id = self.components.get(key)
        if component_id is None or component_id == 0:
            return None
        for entry in self.entries:
            if entry.id == component_id and entry.persistable_catalog == 0:
                return entry
        raise ImageInputError(
            f"{self.label}: the primary header gives {key} archive id {component_id}, which "
            f"the archive index (HDU {self._index_hdu}) does not list; the file is damaged"
        )

    def _where(self, entry: ArchiveEntry) -> str:
        return f"{self.label}, archive table {entry.catalog} ({entry.class_name})"

    def _read_index(self) -> list[ArchiveEntry]:
        where = f"{self.label}, HDU {self._index_hdu} (ARCHIVE_INDEX)"
        data = _table_rows(self._hdul[self._index_hdu], where)
        missing = [name for name in _INDEX_COLUMNS if name not in data.columns.names]
        if missing:
            raise ImageInputError(
                f"{where}: the archive index lacks column(s) {', '.join(missing)}; it is not "
                "an afw archive index"
            )
        columns = {name: data[name] for name in _INDEX_COLUMNS}
        return [
            ArchiveEntry(
                id=int(columns["id"][row]),
                catalog=int(columns["cat.archive"][row]),
                persistable_catalog=int(columns["cat.persistable"][row]),
                row0=int(columns["row0"][row]),
                nrows=int(columns["nrows"][row]),
                class_name=str(columns["name"][row]).strip(),
            )
            for row in range(len(data))
        ]

    def _row(self, entry: ArchiveEntry) -> dict[str, Any]:
        """The first row of ``entry``'s catalog, as column name -> value."""
        where = self._where(entry)
        position = self._index_hdu + entry.catalog
        hdu = self._hdul[position] if 0 < entry.catalog and position < len(self._hdul) else None
        header = None if hdu is None else hdu.header
        if (
            header is None
            or str(header.get("EXTTYPE", "")).strip() != "ARCHIVE_DATA"
            or header.get("AR_CATN") != entry.catalog
        ):
            raise ImageInputError(
                f"{where}: HDU {position} is not archive table {entry.catalog} (ARCHIVE_DATA "
                "with that AR_CATN); the archive is damaged or truncated"
            )
        data = _table_rows(hdu, f"{where}, HDU {position}")
        if entry.nrows < 1 or not 0 <= entry.row0 < len(data):
            raise ImageInputError(
                f"{where}: the index points at row {entry.row0} of {len(data)}; the archive is "
                "damaged"
            )
        record = data[entry.row0]
        return {name: record[name] for name in data.columns.names}


def gaussian_psf_image(width: int, height: int, sigma: float, where: str) -> np.ndarray:
    """afw's ``GaussianPsf`` kernel image: a circular Gaussian on the pixel grid, sum 1.

    Centred on the middle pixel of a ``height x width`` image (both odd), as
    ``GaussianPsf.computeKernelImage`` realizes it at any position.

    Raises
    ------
    ImageInputError
        Dimensions that are not odd and positive or too large, or a
        ``sigma`` that is not positive.
    """
    if (
        width < 1 or height < 1 or width % 2 == 0 or height % 2 == 0
        or width * height > MAX_GAUSSIAN_PSF_PIXELS
    ):
        raise ImageInputError(
            f"{where}: GaussianPsf dimensions {width}x{height} are not odd sizes of at most "
            f"{MAX_GAUSSIAN_PSF_PIXELS} pixels"
        )
    if not sigma > 0:
        raise ImageInputError(f"{where}: GaussianPsf sigma {sigma} is not positive")
    x = np.arange(width) - width // 2
    y = np.arange(height) - height // 2
    kernel = np.exp(-0.5 * (x[None, :] ** 2 + y[:, None] ** 2) / (sigma * sigma))
    return (kernel / kernel.sum()).astype(np.float32)


def _component_ids(primary: Any, label: str) -> dict[str, int]:
    """Component key -> archive id from ``ARCHIVE_ID_<KEY>``, else the older ``<KEY>_ID``."""
    ids: dict[str, int] = {}
    for key, value in primary.items():
        key = str(key).upper()
        if key.startswith("ARCHIVE_ID_"):
            name = key[len("ARCHIVE_ID_"):]
        elif key.endswith("_ID") and key not in ("AR_ID",):
            name = key[: -len("_ID")]
            if name in ids:
                continue  # the newer key wins
        else:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            if key.startswith("ARCHIVE_ID_"):
                raise ImageInputError(
                    f"{label}, HDU 0: {key} = {value!r} is not a whole archive id"
                )
            continue  # some other *_ID key (e.g. a string id of the butler)
        ids[name] = int(value)
    return ids


def _index_position(hdul: Any, primary: Any, label: str) -> int | None:
    """Position of the archive index in ``hdul``: ``AR_HDU - 1`` if it is one, else found."""
    declared = primary.get("AR_HDU")
    if declared is not None:
        if isinstance(declared, bool) or not isinstance(declared, int):
            raise ImageInputError(f"{label}, HDU 0: AR_HDU = {declared!r} is not an HDU number")
        position = declared - 1
        if 0 < position < len(hdul) and _is_index(hdul[position]):
            return position
    for position in range(1, len(hdul)):
        if _is_index(hdul[position]):
            return position
    return None


def _is_index(hdu: Any) -> bool:
    header = hdu.header
    return "ARCHIVE_INDEX" in (
        str(header.get("EXTTYPE", "")).strip().upper(),
        str(header.get("EXTNAME", "")).strip().upper(),
    )


def _table_rows(hdu: Any, where: str) -> Any:
    """The rows of a binary table HDU, after checking its declared size."""
    header = hdu.header
    if str(header.get("XTENSION", "")).strip().upper() != "BINTABLE":
        raise ImageInputError(f"{where}: is not a binary table")
    try:
        declared = int(header.get("NAXIS1", 0)) * int(header.get("NAXIS2", 0)) + int(
            header.get("PCOUNT", 0)
        )
    except (TypeError, ValueError):
        raise ImageInputError(f"{where}: NAXIS1/NAXIS2/PCOUNT are not numbers") from None
    if declared > MAX_ARCHIVE_TABLE_BYTES:
        raise ImageInputError(
            f"{where}: the table declares {declared} bytes, more than the "
            f"{MAX_ARCHIVE_TABLE_BYTES} an archive table alertpack reads may hold"
        )
    try:
        data = hdu.data
    except Exception as error:  # OSError, ValueError, ... from a damaged file
        raise ImageInputError(
            f"{where}: the table cannot be read ({error_text(error)})"
        ) from None
    if data is None:
        raise ImageInputError(f"{where}: the table has no rows")
    return data


def _finite(row: Mapping[str, Any], column: str, where: str) -> float:
    if column not in row:
        raise ImageInputError(f"{where}: the table has no {column} column")
    try:
        value = float(row[column])
    except (TypeError, ValueError):
        raise ImageInputError(f"{where}: {column} = {row[column]!r} is not a number") from None
    if not np.isfinite(value):
        raise ImageInputError(f"{where}: {column} = {value} is not finite")
    return value
