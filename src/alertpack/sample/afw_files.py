"""Exposures written as the Rubin pipelines write them: afw's FITS layout, era by era.

`write_afw_exposure` writes an image of the sample (a ``CCDData`` in nJy with
a variance, an LSST bit mask and a TAN-SIP WCS) as ``lsst.afw.image.Exposure``
writes it through the butler, from the facts of afw's ``MaskedImage.cc``,
``ExposureInfo.cc``, ``VisitInfo.cc``, ``table/io/OutputArchive.cc`` and
``fits.cc``, obs_base's ``formatters/fitsExposure.py`` and daf_butler's
``configs/datastores/writeRecipes.yaml``:

- HDU 0: no data; the visit keys (``EXPTIME``, ``DATE-AVG`` in TAI with
  ``TIMESYS = 'TAI'``, ``MJD-AVG-UT1``, ``BORE-*``, ``ROTTYPE``, ``IDNUM``,
  ``REASON``, ``OBJECT`` ...; never ``MJD-OBS``/``DATE-OBS``, which afw strips),
  ``DETNAME``, ``EXPID``, ``EXPINFO_V = 2``, ``AR_HDU`` (the 1-based HDU of
  the archive index) and each component's archive id, as
  ``ARCHIVE_ID_<KEY>`` and the older ``<KEY>_ID``;
- HDUs 1-3: ``IMAGE`` (float32), ``MASK`` (int32, ``MP_<PLANE>`` keys) and
  ``VARIANCE`` (float32), each with ``EXTTYPE`` (and ``EXTNAME`` since May
  2021), ``INHERIT = T``, the WCS as its TAN-SIP FITS approximation (CD
  matrix), ``LTV1/2 = -xy0`` and the ``A`` WCS (``LINEAR``, ``CRVAL1A/2A =
  xy0``) giving parent pixel coordinates;
- then the archive: ``ARCHIVE_INDEX`` and one ``ARCHIVE_DATA`` table per
  table schema (``AR_CATN``, ``AR_NAME``, and ``EXTNAME`` since 2021), for a
  ``SkyWcs``, the PSF (``PiffPsf`` for calexps and difference images,
  ``CoaddPsf`` for templates, or an afw ``GaussianPsf``), the ``PhotoCalib``
  (``calibrationMean``, with its ``ChebyshevBoundedField``), an ``ApCorrMap``
  and a ``FilterLabel``.

Eras of units (`LAYOUTS`):

=============  ===============================================================
``"2025"``     since afw 02a4677b8 (June 2025): ``BUNIT = 'nJy'`` on IMAGE,
               ``'nJy**2'`` on VARIANCE (MASK: ``BUNIT`` without a value)
``"2024"``     2024 to June 2025: ``BUNIT = 'nJy'`` in the primary header only
``"counts"``   older calexps and difference images: pixels in counts, no
               ``BUNIT``, the calibration only in the archive's PhotoCalib
``"pre2021"``  before May 2021: counts and PhotoCalib, ``EXTTYPE`` without
               ``EXTNAME`` on every HDU
=============  ===============================================================

Templates carry no ``BUNIT`` in any era (GetTemplateTask builds a fresh
exposure whose PhotoCalib is the coadd's, 1.0: the pixels are nJy).

Compressions (`COMPRESSIONS`): ``None`` (plain); ``"lossless"``, the butler's
default recipe, GZIP_2 on every plane in 1-row tiles; ``"lossy16"``, RICE_1
with SUBTRACTIVE_DITHER_2 on image and variance, one quantization step per
plane (``ZSCALE`` = the standard deviation of the pixels not masked
``NO_DATA`` or ``INTRP``, from their quartiles, / 16, also written as
``UZSCALE``), NaN as ``ZBLANK``, and the mask GZIP_2.

The archive's tables have afw's column names and types; the bytes of the
``SkyWcs`` (an AST dump in afw's files) and of the ``PiffPsf`` (a pickle) are
stand-ins: nothing reads them (alertpack never unpickles archive data).
`write_afw_visit` writes a whole detector directory with such images.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.errors import InputError
from alertpack.sample.files import write_visit_catalogs
from alertpack.sample.scene import DEFAULT_BORESIGHT_DEG, EXPOSURE_TIME_S, PIXEL_SCALE_ARCSEC
from alertpack.sample.visit import SampleVisit
from alertpack.sinks.files import atomic_output

if TYPE_CHECKING:
    from astropy.io import fits
    from astropy.nddata import CCDData

__all__ = ["COMPRESSIONS", "LAYOUTS", "AfwVisitInfo", "write_afw_exposure", "write_afw_visit"]

#: the eras of afw's unit keys (see the module docstring)
LAYOUTS = ("2025", "2024", "counts", "pre2021")
#: the butler's write recipes (None: no compression)
COMPRESSIONS = (None, "lossless", "lossy16")
#: PSF classes the archive can hold here
PSF_CLASSES = ("PiffPsf", "CoaddPsf", "GaussianPsf")

# the mask planes afw's STDEV_MASKED scaling leaves out (the lossy16 recipe's mask_planes)
_QUANTIZE_MASK_PLANES = ("NO_DATA", "INTRP")
_QUANTIZE_LEVEL = 16.0
_PLANES = ("IMAGE", "MASK", "VARIANCE")


@dataclass(frozen=True)
class AfwVisitInfo:
    """What an exposure's primary header says about its visit (afw's ``VisitInfo`` keys).

    Attributes
    ----------
    visit_id : `int`
        ``IDNUM``.
    exposure_id : `int`
        ``EXPID``.
    midpoint_mjd_tai : `float`
        Middle of the exposure (``DATE-AVG``, TAI).
    exposure_time_s : `float`
        ``EXPTIME``.
    boresight_deg : `tuple` [`float`, `float`]
        ``BORE-RA``, ``BORE-DEC``.
    rotation_deg : `float`
        ``BORE-ROTANG`` (``ROTTYPE = 'SKY'``).
    reason, target : `str`
        ``REASON``, ``OBJECT``.
    detector_name : `str`
        ``DETNAME``.
    band : `str`
        The FilterLabel's band.
    """

    visit_id: int
    exposure_id: int
    midpoint_mjd_tai: float
    exposure_time_s: float = EXPOSURE_TIME_S
    boresight_deg: tuple[float, float] = DEFAULT_BORESIGHT_DEG
    rotation_deg: float = 0.0
    reason: str = "survey"
    target: str = "lsst_wfd"
    detector_name: str = "R22_S11"
    band: str = "r"


def visit_info_of(visit: SampleVisit) -> AfwVisitInfo:
    """The `AfwVisitInfo` of a sample visit (its ids, time, band)."""
    return AfwVisitInfo(
        visit_id=visit.visit, exposure_id=visit.visit * 1000 + visit.detector,
        midpoint_mjd_tai=visit.midpointMjdTai, band=visit.band,
        detector_name=f"R22_S{visit.detector % 100:02d}",
    )


def write_afw_exposure(
    image: CCDData,
    path: str | os.PathLike[str],
    *,
    visit_info: AfwVisitInfo,
    template: bool = False,
    layout: str = "2025",
    compression: str | None = None,
    calibration: float = 0.57,
    psf_class: str | None = None,
    xy0: tuple[int, int] = (0, 0),
) -> Path:
    """Write ``image`` as afw writes an Exposure (see the module docstring), atomically.

    Parameters
    ----------
    image : `~astropy.nddata.CCDData`
        Pixels in nJy, a `~astropy.nddata.VarianceUncertainty` in nJy², an
        integer bit mask with ``MP_<PLANE>`` keys in ``meta``, a celestial WCS
        of the array, optionally ``psf``.
    path : path-like
        The file to write.
    visit_info : `AfwVisitInfo`
        The primary header's visit keys.
    template : `bool`
        A template (GetTemplateTask's): no ``BUNIT`` in any era, PhotoCalib
        1.0, a ``CoaddPsf`` unless ``psf_class`` says otherwise.
    layout : `str`
        The era of the unit keys, one of `LAYOUTS`.
    compression : `str` or `None`
        One of `COMPRESSIONS`.
    calibration : `float`
        nJy per count of the ``"counts"`` and ``"pre2021"`` layouts: the
        file's pixels are ``image / calibration`` and its PhotoCalib's
        ``calibrationMean`` is ``calibration``.
    psf_class : `str`, optional
        The archive's PSF, one of `PSF_CLASSES` (``GaussianPsf``: the Gaussian
        of the image's seeing, ``meta['SEEING']``); default ``CoaddPsf`` for a
        template, ``PiffPsf`` otherwise.
    xy0 : `tuple` [`int`, `int`]
        Origin of the array in the detector (``LTV1/2 = -xy0``).

    Returns
    -------
    path : `pathlib.Path`
    """
    if layout not in LAYOUTS:
        raise InputError(f"layout {layout!r}: choose among {', '.join(LAYOUTS)}")
    if compression not in COMPRESSIONS:
        raise InputError(f"compression {compression!r}: choose among {COMPRESSIONS}")
    psf_class = psf_class or ("CoaddPsf" if template else "PiffPsf")
    if psf_class not in PSF_CLASSES:
        raise InputError(f"psf_class {psf_class!r}: choose among {', '.join(PSF_CLASSES)}")
    in_counts = layout in ("counts", "pre2021") and not template
    scale = calibration if in_counts else 1.0
    pixels = np.asarray(image.data, np.float32)
    variance = np.asarray(image.uncertainty.array, np.float32)
    if in_counts:  # what the file holds: counts, calibrated by the PhotoCalib
        pixels = (pixels / np.float32(scale)).astype(np.float32)
        variance = (variance / np.float32(scale * scale)).astype(np.float32)
    mask = np.asarray(image.mask, np.int32)
    planes = {str(k)[3:]: int(v) for k, v in image.meta.items() if str(k).startswith("MP_")}
    archive = _Archive(named=layout != "pre2021")
    ids = _components(archive, image, visit_info, template, scale, psf_class)
    primary = _primary(visit_info, ids, layout, template)
    hdus = [primary]
    seed = 1 + int.from_bytes(hashlib.sha256(str(path).encode()).digest()[:4], "big") % 9999
    for name, data in zip(_PLANES, (pixels, mask, variance), strict=True):
        header = _plane_header(name, image, planes, layout, template, xy0)
        hdus.append(_plane_hdu(name, data, header, compression, mask, planes, seed))
    hdus.extend(archive.tables())
    # astropy when used: importing alertpack.sample stays light (numpy only)
    from astropy.io import fits

    hdul = fits.HDUList(hdus)
    path = Path(path)
    with atomic_output(path) as stream:
        hdul.writeto(stream)
    return path


def write_afw_visit(
    visit: SampleVisit,
    directory: str | os.PathLike[str],
    *,
    layout: str = "2025",
    compression: str | None = "lossless",
    psf_class: str | None = None,
    calibration: float = 0.57,
    id_bits_in_visit_json: bool = False,
) -> dict[str, Path]:
    """A detector directory of a visit as the Rubin pipelines leave it: afw images, catalogs.

    The catalogs (Parquet, the APDB's column names, no ``ccdVisitId``) as
    `~alertpack.sample.write_visit` writes them; the difference, science
    and template images in afw's layout (`write_afw_exposure`); a
    ``visit.json`` with the ids (``ccdExposureIdBits`` only when
    ``id_bits_in_visit_json``: the pipelines record no such file, the id
    packing is the instrument's, given as ``--id-bits``).

    Returns
    -------
    paths : `dict` [`str`, `pathlib.Path`]
        Catalog names, ``difference``, ``science``, ``template`` and ``visit``.
    """
    directory = Path(directory)
    paths = write_visit_catalogs(visit, directory)
    info = visit_info_of(visit)
    for name in ("difference", "science", "template"):
        paths[name] = write_afw_exposure(
            getattr(visit, name), directory / f"{name}.fits", visit_info=info,
            template=name == "template", layout=layout, compression=compression,
            calibration=calibration, psf_class=None if name == "template" else psf_class,
        )
    paths["visit"] = _write_visit_json(visit, directory, id_bits_in_visit_json)
    return paths


def _write_visit_json(visit: SampleVisit, directory: Path, with_id_bits: bool) -> Path:
    import json

    info: dict[str, Any] = {"visit": visit.visit, "detector": visit.detector,
                            "band": visit.band, "schema_version": visit.schema_version}
    if with_id_bits:
        info["ccdExposureIdBits"] = visit.ccdExposureIdBits
    path = directory / "visit.json"
    with atomic_output(path) as stream:
        stream.write(json.dumps(info, indent=2).encode())
    return path


# --- headers ---------------------------------------------------------------------------------


def _primary(
    info: AfwVisitInfo, ids: dict[str, int], layout: str, template: bool
) -> fits.PrimaryHDU:
    # astropy when used: importing alertpack.sample stays light (numpy only)
    import astropy.time
    from astropy.io import fits

    header = fits.Header()
    header["HIERARCH EXPINFO_V"] = 2
    header["AR_HDU"] = (5, "HDU (1-indexed) containing the archive")
    for key, component_id in ids.items():
        # afw writes both: the old key for old readers, the new one as safer to parse
        header[f"HIERARCH {key}_ID"] = component_id
        header[f"HIERARCH ARCHIVE_ID_{key}"] = component_id
    header["DETNAME"] = info.detector_name
    header["DETSER"] = "ITL-3800C-000"
    header["EXPID"] = info.exposure_id
    date = astropy.time.Time(info.midpoint_mjd_tai, format="mjd", scale="tai", precision=9)
    cards: list[tuple[str, Any, str]] = [
        ("EXPTIME", info.exposure_time_s, "Exposure time (sec)"),
        ("DARKTIME", info.exposure_time_s + 1.0, "flush to readout (sec)"),
        ("DATE-AVG", date.isot, "TAI at middle of exposure"),
        ("TIMESYS", "TAI", ""),
        # UT1 is within a second of UTC, 37 s behind TAI (no IERS table for future dates)
        ("MJD-AVG-UT1", info.midpoint_mjd_tai - 37.0 / 86400.0, "UT1 MJD date at ctr of obs"),
        ("BORE-RA", info.boresight_deg[0], "ICRS RA (deg) at boresight"),
        ("BORE-DEC", info.boresight_deg[1], "ICRS Dec (deg) at boresight"),
        ("BORE-AIRMASS", 1.2, "Airmass at boresight"),
        ("BORE-ROTANG", info.rotation_deg, "Rotation angle (deg) at boresight"),
        ("ROTTYPE", "SKY", "Type of rotation angle"),
        ("OBS-LONG", -70.7494, "Telescope longitude (+E, deg)"),
        ("OBS-LAT", -30.2444, "Telescope latitude (deg)"),
        ("OBS-ELEV", 2663.0, "Telescope elevation (m)"),
        ("INSTRUMENT", "LSSTCam", "instrument"),
        ("IDNUM", info.visit_id, "full focal plane exposure id"),
        ("OBSTYPE", "science", "Type of this observation"),
        ("PROGRAM", "BLOCK-365", "observing program"),
        ("REASON", info.reason, "why it was taken"),
        ("OBJECT", info.target, "object or field name"),
        ("HAS-SIMULATED-CONTENT", False, "Data contains simulated content"),
    ]
    for key, value, comment in cards:
        if len(key) > 8:  # a HIERARCH card: its comment would not fit
            header[f"HIERARCH {key}"] = value
        else:
            header[key] = (value, comment)
    if layout == "2024" and not template:
        header["BUNIT"] = "nJy"  # 2024 to June 2025: the unit stayed in the primary header
    return fits.PrimaryHDU(header=header)


def _wcs_cards(image: CCDData) -> list[tuple[str, Any]]:
    """The WCS as afw writes its TAN-SIP approximation: CD matrix, SIP terms, RADESYS."""
    header = image.wcs.to_header(relax=True)
    cd = image.wcs.wcs.cd if image.wcs.wcs.has_cd() else (
        image.wcs.wcs.get_pc() * image.wcs.wcs.cdelt[:, None]
    )
    cards: list[tuple[str, Any]] = [("WCSAXES", 2)]
    cards += [(f"CRPIX{i + 1}", float(image.wcs.wcs.crpix[i])) for i in range(2)]
    cards += [(f"CRVAL{i + 1}", float(image.wcs.wcs.crval[i])) for i in range(2)]
    cards += [(f"CTYPE{i + 1}", str(image.wcs.wcs.ctype[i])) for i in range(2)]
    cards += [(f"CD{i + 1}_{j + 1}", float(cd[i][j])) for i in range(2) for j in range(2)]
    cards.append(("RADESYS", "ICRS"))
    for key in header:
        if str(key).split("_")[0] in ("A", "B", "AP", "BP") and "_" in str(key):
            cards.append((str(key), header[key]))
    return cards


def _plane_header(
    name: str, image: CCDData, planes: dict[str, int], layout: str, template: bool,
    xy0: tuple[int, int],
) -> fits.Header:
    # astropy when used: importing alertpack.sample stays light (numpy only)
    from astropy.io import fits

    header = fits.Header()
    for key, value in _wcs_cards(image):
        header[key] = value
    header["LTV1"] = float(-xy0[0])
    header["LTV2"] = float(-xy0[1])
    header["INHERIT"] = True
    header["EXTTYPE"] = name
    if layout != "pre2021":
        header["EXTNAME"] = name
    if layout == "2025" and not template:
        if name == "IMAGE":
            header["BUNIT"] = ("nJy", "Image Data units")
        elif name == "VARIANCE":
            header["BUNIT"] = ("nJy**2", "Variance Data units")
        else:
            header["BUNIT"] = (fits.card.UNDEFINED, "Mask Data units")
    if name == "MASK":
        for plane, bit in sorted(planes.items()):
            key = f"MP_{plane}"
            header[f"HIERARCH {key}" if len(key) > 8 else key] = bit
    for axis, origin in ((1, xy0[0]), (2, xy0[1])):
        header[f"CTYPE{axis}A"] = ("LINEAR", "Type of projection")
        header[f"CRPIX{axis}A"] = (1.0, "Pixel Coordinate of Reference")
        header[f"CRVAL{axis}A"] = (float(origin), "pixel of Reference Pixel")
        header[f"CUNIT{axis}A"] = ("PIXEL", "unit")
    return header


def _plane_hdu(
    name: str, data: np.ndarray, header: fits.Header, compression: str | None,
    mask: np.ndarray, planes: dict[str, int], seed: int,
) -> Any:
    # astropy when used: importing alertpack.sample stays light (numpy only)
    from astropy.io import fits

    extname = header.get("EXTNAME")
    if compression is None:
        return fits.ImageHDU(data, header=header, name=extname)
    tiles = (1, data.shape[1])  # CompressionOptions: full-width, 1-row tiles
    if compression == "lossy16" and name != "MASK":
        step = _quantization_step(data, mask, planes)
        if step > 0:
            header["UZSCALE"] = step  # afw: the one ZSCALE of every tile, for readers
            return fits.CompImageHDU(
                data, header=header, name=extname, compression_type="RICE_1",
                quantize_method=2, quantize_level=-step, dither_seed=seed, tile_shape=tiles,
            )
        # a constant plane: afw falls back to lossless compression
    # quantize_level 0: floats compressed as they are (astropy quantizes floats by default)
    return fits.CompImageHDU(
        data, header=header, name=extname, compression_type="GZIP_2", tile_shape=tiles,
        quantize_level=0.0,
    )


def _quantization_step(data: np.ndarray, mask: np.ndarray, planes: dict[str, int]) -> float:
    """afw's STDEV_MASKED scaling: 0.741 x the interquartile range of the usable pixels, / 16."""
    bits = sum(1 << planes[p] for p in _QUANTIZE_MASK_PLANES if p in planes)
    usable = data[((mask & bits) == 0) & np.isfinite(data)]
    if usable.size == 0:
        return 0.0
    quarter, half = usable.size // 4, usable.size // 2
    ordered = np.sort(usable)
    stdev = 0.741 * (float(ordered[quarter + half]) - float(ordered[quarter]))
    return stdev / _QUANTIZE_LEVEL


# --- the archive -----------------------------------------------------------------------------


#: a table's columns, as (name, FITS TFORM) pairs
type _Columns = list[tuple[str, str]]
#: one catalog of a persisted object: its columns and its rows
type _Catalog = tuple[_Columns, list[dict[str, Any]]]


class _Archive:
    """afw's OutputArchive: objects by id, one data table per table schema, and the index."""

    def __init__(self, *, named: bool) -> None:
        self.named = named
        self._next_id = 1
        self._index: list[tuple[int, int, int, int, int, str, str]] = []
        # per data table: its columns, the classes stored in it, its rows
        self._catalogs: list[tuple[tuple[tuple[str, str], ...], list[str], list[dict[str, Any]]]]
        self._catalogs = []

    def put(self, class_name: str, module: str, catalogs: list[_Catalog]) -> int:
        """Persist one object: its catalogs (column definitions, rows); its archive id."""
        object_id = self._next_id
        self._next_id += 1
        for persistable, (columns, rows) in enumerate(catalogs):
            key = tuple(columns)
            number = next((i for i, c in enumerate(self._catalogs) if c[0] == key), None)
            if number is None:
                self._catalogs.append((key, [], []))
                number = len(self._catalogs) - 1
            _, names, stored = self._catalogs[number]
            if class_name not in names:
                names.append(class_name)
            self._index.append(
                (object_id, number + 1, persistable, len(stored), len(rows), class_name, module)
            )
            stored.extend(rows)
        return object_id

    def tables(self) -> list[fits.BinTableHDU]:
        """The index, then the data tables in their ``AR_CATN`` order."""
        # astropy when used: importing alertpack.sample stays light (numpy only)
        from astropy.io import fits

        index_columns = [
            fits.Column(name=name, format=fmt, array=np.array([row[i] for row in self._index]))
            for i, (name, fmt) in enumerate((
                ("id", "1J"), ("cat.archive", "1J"), ("cat.persistable", "1J"), ("row0", "1J"),
                ("nrows", "1J"), ("name", "64A"), ("module", "64A"),
            ))
        ]
        index = fits.BinTableHDU.from_columns(index_columns)
        index.header["EXTTYPE"] = "ARCHIVE_INDEX"
        if self.named:
            index.header["EXTNAME"] = "ARCHIVE_INDEX"
        index.header["AR_CATN"] = (0, "# of this catalog in the archive")
        index.header["AR_NCAT"] = (len(self._catalogs) + 1, "# of catalogs, the index included")
        index.header["HIERARCH AFW_TABLE_VERSION"] = 3
        hdus = [index]
        for number, (columns, names, rows) in enumerate(self._catalogs, start=1):
            table = fits.BinTableHDU.from_columns([
                fits.Column(name=name, format=fmt, array=_column(fmt, [row[name] for row in rows]))
                for name, fmt in columns
            ])
            table.header["EXTTYPE"] = "ARCHIVE_DATA"
            table.header["AR_CATN"] = (number, "# of this catalog in the archive")
            for class_name in names:
                table.header.append(("AR_NAME", class_name, "Class name for objects stored here"))
            if self.named:
                table.header["EXTNAME"] = names[-1]  # afw: the most recent class stored
            table.header["HIERARCH AFW_TABLE_VERSION"] = 3
            hdus.append(table)
        return hdus


def _column(fmt: str, values: list[Any]) -> Any:
    if fmt.endswith("X"):  # afw's Flag fields: one bit each
        return np.array(values, dtype=bool).reshape(len(values), -1)
    if fmt.startswith("1Q"):  # variable-length arrays (afw's Array fields, bytes)
        return np.array([np.asarray(v) for v in values], dtype=object)
    return np.array(values)


_CHEBYSHEV = [("order_x", "1J"), ("bbox_min_x", "1J"), ("bbox_min_y", "1J"),
              ("bbox_max_x", "1J"), ("bbox_max_y", "1J"), ("coefficients", "1D")]


def _components(
    archive: _Archive, image: CCDData, info: AfwVisitInfo, template: bool, calibration: float,
    psf_class: str,
) -> dict[str, int]:
    """Persist the exposure's components; component key -> archive id."""
    ny, nx = np.shape(image.data)
    bbox = {"bbox_min_x": 0, "bbox_min_y": 0, "bbox_max_x": nx - 1, "bbox_max_y": ny - 1}
    ids: dict[str, int] = {}
    stand_in = np.frombuffer(
        b"stand-in for the AST FrameSet afw writes; the planes' headers hold its TAN-SIP "
        b"approximation", dtype=np.uint8,
    )
    ids["SKYWCS"] = archive.put(
        "SkyWcs", "lsst.afw.geom", [([("wcs", "1QB")], [{"wcs": stand_in}])]
    )
    ids["PSF"] = _put_psf(archive, image, psf_class, nx, ny)
    field_id = archive.put("ChebyshevBoundedField", "lsst.afw.math", [
        (_CHEBYSHEV, [{"order_x": 0, **bbox, "coefficients": 1.0 if template else calibration}])
    ])
    ids["PHOTOCALIB"] = archive.put("PhotoCalib", "", [(
        [("flags", "1X"), ("calibrationMean", "1D"), ("calibrationErr", "1D"), ("field", "1J"),
         ("version", "1J")],
        [{"flags": [True], "calibrationMean": 1.0 if template else calibration,
          "calibrationErr": 0.0, "field": field_id, "version": 1}],
    )])
    if not template:
        ap_field = archive.put("ChebyshevBoundedField", "lsst.afw.math", [
            (_CHEBYSHEV, [{"order_x": 0, **bbox, "coefficients": 0.98}])
        ])
        ids["AP_CORR_MAP"] = archive.put("ApCorrMap", "lsst.afw.image", [(
            [("name", "64A"), ("field", "1J")],
            [{"name": "base_PsfFlux_instFlux", "field": ap_field}],
        )])
    ids["FILTER"] = archive.put("FilterLabel", "lsst.afw.image", [(
        [("flags", "2X"), ("band", "32A"), ("physical", "32A")],
        [{"flags": [True, True], "band": info.band, "physical": f"{info.band}_57"}],
    )])
    return ids


def _put_psf(archive: _Archive, image: CCDData, psf_class: str, nx: int, ny: int) -> int:
    seeing = float(image.meta.get("SEEING", 0.8))
    sigma = seeing / PIXEL_SCALE_ARCSEC / 2.3548
    if psf_class == "GaussianPsf":
        return archive.put("GaussianPsf", "lsst.afw.detection", [(
            [("dimensions_x", "1J"), ("dimensions_y", "1J"), ("sigma", "1D")],
            [{"dimensions_x": 25, "dimensions_y": 25, "sigma": sigma}],
        )])
    if psf_class == "CoaddPsf":
        return archive.put("CoaddPsf", "lsst.meas.algorithms", [(
            [("coaddwcs", "1J"), ("cachesize", "1J"), ("avgpos_x", "1D"), ("avgpos_y", "1D"),
             ("warpingkernelname", "16A")],
            [{"coaddwcs": 1, "cachesize": 100, "avgpos_x": nx / 2.0, "avgpos_y": ny / 2.0,
              "warpingkernelname": "lanczos3"}],
        )])
    pickled = np.frombuffer(b"stand-in for the pickled Piff model of a PiffPsf", dtype=np.uint8)
    return archive.put("PiffPsf", "lsst.meas.extensions.piff.piffPsf", [
        ([("bytes", "1QB")], [{"bytes": pickled}])
    ])
