"""Files of a visit: Parquet catalogs, LSST-Exposure-style FITS images, ``visit.json``."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from alertpack.errors import InputError
from alertpack.inputs.images import as_survey_image
from alertpack.inputs.visit_files import VISIT_FILES, VISIT_INFO_FILE
from alertpack.sample.images import _bitmask_ccddata_class
from alertpack.sample.records import index_columns
from alertpack.sample.visit import SampleVisit
from alertpack.sinks.files import atomic_output

if TYPE_CHECKING:
    from astropy.nddata import CCDData

# The visit-directory layout is the one `alertpack package --visit-dir` reads.
_IMAGE_ATTRIBUTES = {"diffIm": "difference", "science": "science", "template": "template"}
_CATALOG_FILES = {name: f for name, f in VISIT_FILES.items() if name not in _IMAGE_ATTRIBUTES}
_IMAGE_FILES = {_IMAGE_ATTRIBUTES[name]: VISIT_FILES[name] for name in _IMAGE_ATTRIBUTES}
_VISIT_FILE = VISIT_INFO_FILE


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through ``write(fileobj)``; the file appears at ``path`` only when complete."""
    with atomic_output(path) as stream:
        write(stream)


def exposure_hdulist(image: CCDData, **primary_keys: Any) -> Any:
    """An LSST-Exposure-style `~astropy.io.fits.HDUList` of a CCDData.

    Empty primary HDU, then ``IMAGE`` (BUNIT, WCS, LTV1/LTV2), ``MASK`` (int32,
    ``MP_<PLANE>`` keys), ``VARIANCE`` (BUNIT nJy**2) and, when the image has
    one, ``PSF`` extensions.
    """
    # astropy on first use: importing alertpack.sample stays light (numpy only)
    import astropy.units as u
    from astropy.io import fits

    primary = fits.PrimaryHDU()
    for key, value in primary_keys.items():
        primary.header[key] = value
    wcs_header = image.wcs.to_header(relax=True)
    ltv = {"LTV1": image.meta.get("LTV1", 0), "LTV2": image.meta.get("LTV2", 0)}
    hdus = [primary]
    extensions = [
        ("IMAGE", np.asarray(image.data, np.float32), image.unit.to_string("fits")),
        ("MASK", np.asarray(image.mask, np.int32), None),
        ("VARIANCE", np.asarray(image.uncertainty.array, np.float32),
         (u.nJy**2).to_string("fits")),
    ]
    for name, data, unit in extensions:
        hdu = fits.ImageHDU(data, name=name)
        hdu.header["EXTTYPE"] = name
        hdu.header.update(wcs_header)
        hdu.header.update(ltv)
        if unit is not None:
            hdu.header["BUNIT"] = unit
        if name == "MASK":
            for key, value in image.meta.items():
                if key.startswith("MP_"):
                    # Long plane names need HIERARCH cards, as LSST writes them.
                    hdu.header[f"HIERARCH {key}" if len(key) > 8 else key] = value
        hdus.append(hdu)
    if image.psf is not None:
        psf = fits.ImageHDU(np.asarray(image.psf, np.float32), name="PSF")
        psf.header["EXTTYPE"] = "PSF"
        hdus.append(psf)
    return fits.HDUList(hdus)


def write_visit(visit: SampleVisit, directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Write a visit's catalogs (Parquet) and images (LSST-layout FITS), atomically.

    Parquet files hold the columns layout (no index); `read_visit` restores
    the index. A ``visit.json`` records the ids and the schema version.

    Returns
    -------
    paths : `dict` [`str`, `pathlib.Path`]
        ``diaSourceCat``, ``diaObjectCat``, ``diaSrcHistory``,
        ``diaForcedSources``, ``ssSource``, ``mpc_orbits``, ``difference``,
        ``science``, ``template`` and ``visit``.
    """
    directory = Path(directory)
    paths = write_visit_catalogs(visit, directory)
    primary = {"VISIT": visit.visit, "DETECTOR": visit.detector, "CCDVISIT": visit.ccdVisitId,
               "BAND": visit.band, "MJD-OBS": visit.midpointMjdTai, "TIMESYS": "TAI"}
    for name, filename in _IMAGE_FILES.items():
        hdul = exposure_hdulist(getattr(visit, name), **primary)
        path = directory / filename
        _atomic_write(path, hdul.writeto)
        paths[name] = path
    info = {
        "visit": visit.visit,
        "detector": visit.detector,
        "ccdVisitId": visit.ccdVisitId,
        "ccdExposureIdBits": visit.ccdExposureIdBits,
        "band": visit.band,
        "midpointMjdTai": visit.midpointMjdTai,
        "schema_version": visit.schema_version,
        "files": {name: path.name for name, path in paths.items()},
    }
    path = directory / _VISIT_FILE
    _atomic_write(path, lambda stream: stream.write(json.dumps(info, indent=2).encode()))
    paths["visit"] = path
    return paths


def write_visit_catalogs(visit: SampleVisit, directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Write a visit's catalogs as Parquet files (columns, no index) into ``directory``.

    Returns
    -------
    paths : `dict` [`str`, `pathlib.Path`]
        ``diaSourceCat``, ``diaObjectCat``, ``diaSrcHistory``,
        ``diaForcedSources``, ``ssSource``, ``mpc_orbits``.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the visit directory {directory}: {error}") from None
    paths: dict[str, Path] = {}
    for name, filename in _CATALOG_FILES.items():
        frame = getattr(visit, name).reset_index(drop=True)
        path = directory / filename
        _atomic_write(path, functools.partial(frame.to_parquet, index=False))
        paths[name] = path
    return paths


def read_exposure(path: str | os.PathLike[str]) -> CCDData:
    """Read an image file (e.g. one written by `write_visit`) into a bit-mask CCDData."""
    # astropy on first use: importing alertpack.sample stays light (numpy only)
    import astropy.units as u
    from astropy.nddata import VarianceUncertainty

    image = as_survey_image(str(path), name=Path(path).name)
    meta = {f"MP_{name}": bit for name, bit in image.mask_planes.items()}
    meta.update({"LTV1": -image.origin[0], "LTV2": -image.origin[1]})
    # the file's planes are read lazily; a CCDData holds them in memory
    variance = None
    if image.variance is not None:
        variance = VarianceUncertainty(np.asarray(image.variance), unit=u.nJy**2)
    mask = None if image.mask is None else np.asarray(image.mask)
    return _bitmask_ccddata_class()(
        np.asarray(image.image), unit=u.nJy, uncertainty=variance, mask=mask, wcs=image.wcs,
        meta=meta, psf=image.psf,
    )


def read_visit(directory: str | os.PathLike[str], *, index_layout: str = "multi") -> SampleVisit:
    """Read a visit written by `write_visit`."""
    import pandas as pd  # on first use: importing alertpack.sample stays light (numpy only)

    directory = Path(directory)
    info_path = directory / _VISIT_FILE
    if not info_path.is_file():
        raise InputError(
            f"{directory} has no {_VISIT_FILE}: it is not a visit written by write_visit"
        )
    info = json.loads(info_path.read_text())
    frames: dict[str, pd.DataFrame] = {}
    for name, filename in _CATALOG_FILES.items():
        path = directory / filename
        if not path.is_file():
            raise InputError(f"visit directory {directory} lacks {filename}")
        frames[name] = pd.read_parquet(path)
    if index_layout == "multi":
        for name, columns in index_columns(info["schema_version"]).items():
            frames[name] = frames[name].set_index(columns, drop=False)
    images = {name: read_exposure(directory / filename) for name, filename in _IMAGE_FILES.items()}
    return SampleVisit(
        diaSourceCat=frames["diaSourceCat"],
        diaObjectCat=frames["diaObjectCat"],
        diaSrcHistory=frames["diaSrcHistory"],
        diaForcedSources=frames["diaForcedSources"],
        ssSource=frames["ssSource"],
        mpc_orbits=frames["mpc_orbits"],
        difference=images["difference"],
        template=images["template"],
        science=images["science"],
        ccdExposureIdBits=info["ccdExposureIdBits"],
        ccdVisitId=info["ccdVisitId"],
        visit=info["visit"],
        detector=info["detector"],
        band=info["band"],
        midpointMjdTai=info["midpointMjdTai"],
        schema_version=info["schema_version"],
        index_layout=index_layout,
    )
