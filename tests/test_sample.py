"""Tests of the built-in sample visit (`alertpack.sample`)."""

from __future__ import annotations

import subprocess
import sys

import fastavro
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.nddata import CCDData

from alertpack.errors import InputError
from alertpack.sample import (
    CCD_EXPOSURE_ID_BITS,
    MASK_PLANES,
    SampleVisit,
    ccd_visit_id,
    ccd_visit_id_of,
    make_visit,
    make_visits,
    read_visit,
    visit_midpoint_mjd,
    write_visit,
)
from alertpack.schema import load_schema
from alertpack.tools.fitsverify import run_fitsverify

SMALL = (1024, 1100)
OLD_VERSIONS = ["3.0", "4.0", "7.4", "9.0"]

# Catalog attribute -> alert field whose record it follows, per version.
CATALOG_FIELDS = {
    "diaSourceCat": ("diaSource",),
    "diaSrcHistory": ("diaSource",),
    "diaObjectCat": ("diaObject",),
    "diaForcedSources": ("prvDiaForcedSources",),
    "ssSource": ("ssSource",),
    "mpc_orbits": ("mpc_orbits", "MPCORB", "ssObject"),
}


@pytest.fixture(scope="module")
def small() -> SampleVisit:
    return make_visit(40, SMALL, n_asteroids=2, seed=3)


@pytest.fixture(scope="module")
def full() -> SampleVisit:
    """The default visit: one full LSSTCam detector."""
    return make_visit()


def _record(schema, attribute):
    for field_name in CATALOG_FIELDS[attribute]:
        record = schema.record(field_name)
        if record is not None:
            return record
    return None


def _avro_type(avro):
    nullable = isinstance(avro, list) and "null" in avro
    if isinstance(avro, list):
        avro = next(branch for branch in avro if branch != "null")
    if isinstance(avro, dict):
        return avro["type"], nullable, avro.get("logicalType")
    return avro, nullable, None


def _dtype_fits(series: pd.Series, avro_type: str, nullable: bool) -> bool:
    dtype = series.dtype
    if avro_type == "string":
        return pd.api.types.is_string_dtype(dtype)
    expected = {"long": "int64", "int": "int32", "float": "float32", "double": "float64",
                "boolean": "bool"}[avro_type]
    masked = {"long": "Int64", "int": "Int32"}.get(avro_type)
    if str(dtype) == expected:
        return True
    # Masked integers only where a nullable field actually has nulls.
    return nullable and str(dtype) == masked and bool(series.isna().any())


@pytest.mark.parametrize("version", ["11.1", *OLD_VERSIONS])
def test_every_schema_field_is_a_column_of_the_right_dtype(version):
    schema = load_schema(version)
    visit = make_visit(25, (300, 320), schema_version=version, n_history=4, n_forced=3)
    assert visit.schema_version == version
    for attribute in CATALOG_FIELDS:
        record = _record(schema, attribute)
        frame = getattr(visit, attribute)
        if record is None:
            # Versions before 8.0 have no ssSource record: the link only.
            assert list(frame.columns) == ["diaSourceId", "ssObjectId"]
            continue
        assert list(frame.columns) == [f["name"] for f in record["fields"]], attribute
        for avro_field in record["fields"]:
            base, nullable, _ = _avro_type(avro_field["type"])
            column = frame[avro_field["name"]]
            where = (attribute, avro_field["name"], column.dtype)
            assert _dtype_fits(column, base, nullable), where
            if not nullable:
                assert not column.isna().any(), (attribute, avro_field["name"])


def _plain_rows(frame: pd.DataFrame) -> list[dict]:
    """Rows as the plain Python values an Avro writer takes (missing -> None)."""
    flat = frame.reset_index(drop=True)
    rows = []
    for record in flat.astype(object).to_dict("records"):
        rows.append({
            key: None if value is None or value is pd.NA or (
                isinstance(value, float) and np.isnan(value)) else value
            for key, value in record.items()
        })
    return rows


def _alerts(visit: SampleVisit, schema) -> list[dict]:
    """Alert dicts assembled the straightforward way from the sample's catalogs."""
    sources = _plain_rows(visit.diaSourceCat)
    history = _plain_rows(visit.diaSrcHistory)
    forced = _plain_rows(visit.diaForcedSources)
    objects = {row["diaObjectId"]: row for row in _plain_rows(visit.diaObjectCat)}
    ss = {row["diaSourceId"]: row for row in _plain_rows(visit.ssSource)}
    orbits = _plain_rows(visit.mpc_orbits)
    alerts = []
    for source in sources:
        object_id = source["diaObjectId"]
        prv = [row for row in history if object_id is not None and row["diaObjectId"] == object_id]
        ss_row = ss.get(source["diaSourceId"])
        values = {
            "alertId": source["diaSourceId"],
            "diaSourceId": source["diaSourceId"],
            "diaSource": source,
            "prvDiaSources": prv,
            "prvDiaForcedSources": [r for r in forced if r["diaObjectId"] == object_id],
            "diaObject": objects.get(object_id),
            "ssSource": ss_row if schema.record("ssSource") is not None else None,
            "mpc_orbits": orbits[0] if ss_row else None,
            "MPCORB": orbits[0] if ss_row else None,
            "ssObject": orbits[0] if ss_row else None,
        }
        alerts.append({name: values.get(name) for name in schema.field_names})
    return alerts


@pytest.mark.parametrize("version", ["11.1", "10.0", *OLD_VERSIONS])
def test_catalog_rows_make_alerts_the_official_schema_accepts(version):
    schema = load_schema(version)
    visit = make_visit(12, (300, 320), schema_version=version, n_history=3, n_forced=3,
                       n_edge=2, n_asteroids=1)
    parsed = fastavro.parse_schema(schema.packet_schema.definition)
    alerts = _alerts(visit, schema)
    for alert in alerts:
        fastavro.validation.validate(alert, parsed, raise_errors=True)
    # And they round-trip through lsst.alert.packet's own serializer.
    payload = schema.packet_schema.serialize(alerts[-1])
    assert schema.packet_schema.deserialize(payload)["diaSource"]["ra"] == pytest.approx(
        alerts[-1]["diaSource"]["ra"]
    )


def test_ids_pack_the_ccd_visit_and_are_unique(small):
    sources = small.diaSourceCat.reset_index(drop=True)
    history = small.diaSrcHistory.reset_index(drop=True)
    forced = small.diaForcedSources.reset_index(drop=True)
    assert small.ccdExposureIdBits == CCD_EXPOSURE_ID_BITS == 50
    assert small.ccdVisitId == small.visit * 256 + small.detector
    ids = sources["diaSourceId"].to_numpy()
    assert (ids > 0).all()
    assert (ids >> (64 - small.ccdExposureIdBits) == small.ccdVisitId).all()
    # Previous sources pack the ccdVisit they were measured on.
    for frame, id_column in [(history, "diaSourceId"), (forced, "diaForcedSourceId")]:
        expected = ccd_visit_id(frame["visit"].to_numpy(), frame["detector"].to_numpy())
        assert np.array_equal(ccd_visit_id_of(frame[id_column].to_numpy()), expected)
    all_source_ids = np.concatenate([ids, history["diaSourceId"], forced["diaForcedSourceId"]])
    assert len(np.unique(all_source_ids)) == len(all_source_ids)
    assert small.diaObjectCat["diaObjectId"].is_unique


def test_objects_are_consistent_with_their_sources(small):
    sources = small.diaSourceCat.reset_index(drop=True)
    history = small.diaSrcHistory.reset_index(drop=True)
    objects = small.diaObjectCat.reset_index(drop=True).set_index("diaObjectId")
    with_object = sources.dropna(subset=["diaObjectId"])
    assert len(objects) == len(with_object) == len(sources) - 2
    assert set(objects.index) == set(with_object["diaObjectId"].astype(np.int64))
    n_previous = history.groupby("diaObjectId").size()
    expected = 1 + n_previous.reindex(objects.index, fill_value=0)
    assert (objects["nDiaSources"] == expected).all()
    assert (objects["nDiaSources"] == 1).any() and (objects["nDiaSources"] > 20).any()
    # A DiaObject's id is the id of its first DiaSource.
    first = history.sort_values("midpointMjdTai").groupby("diaObjectId")["diaSourceId"].first()
    assert (first.index == first.to_numpy()).all()
    # The object sits where its sources are.
    merged = with_object.astype({"diaObjectId": np.int64}).merge(
        objects, left_on="diaObjectId", right_index=True, suffixes=("", "_obj")
    )
    separation = np.hypot((merged["ra"] - merged["ra_obj"]) * np.cos(np.deg2rad(merged["dec"])),
                          merged["dec"] - merged["dec_obj"]) * 3600
    assert separation.max() < 1.0
    band = small.band
    mean = objects[f"{band}_psfFluxMean"]
    assert (objects[f"{band}_psfFluxNdata"] >= 1).all()
    assert np.isfinite(mean).all()


def test_fluxes_errors_and_snr_agree(small):
    sources = small.diaSourceCat.reset_index(drop=True)
    snr = np.abs(sources["psfFlux"]) / sources["psfFluxErr"]
    np.testing.assert_allclose(sources["snr"], snr, rtol=1e-5)
    assert (sources["psfFluxErr"] > 0).all()
    assert (sources["snr"] >= 5).all() and sources["snr"].max() > 20
    assert (sources["isNegative"] == (sources["psfFlux"] < 0)).all()
    assert sources["isNegative"].any() and sources["isDipole"].any()
    assert (sources["band"] == small.band).all() and small.band in "ugrizy"
    assert sources["bboxSize"].between(15, 81).all()
    assert (sources["timeProcessedMjdTai"] > sources["midpointMjdTai"]).all()
    flags = [c for c in sources.columns if "flag" in c.lower() and sources[c].dtype == bool]
    assert sources[flags].to_numpy().mean() < 0.1


def test_history_lies_before_the_visit_with_some_rows_older_than_a_year(small):
    midpoint = visit_midpoint_mjd(small.visit)
    assert small.midpointMjdTai == midpoint
    assert 61369 < midpoint < 61371  # 2026-11-25 night, UTC
    sources = small.diaSourceCat
    assert (sources["midpointMjdTai"] == midpoint).all()
    history_age = midpoint - small.diaSrcHistory["midpointMjdTai"].to_numpy()
    assert (history_age > 0).all()
    old = history_age > 365
    assert 0 < old.sum() < 0.2 * len(history_age)
    assert (history_age < 730).all()
    forced = small.diaForcedSources.reset_index(drop=True)
    forced_age = midpoint - forced["midpointMjdTai"]
    assert (forced_age >= 0).all() and (forced_age > 365).any()
    # Every DiaObject was measured at this visit too.
    current = forced[forced_age == 0]
    assert set(current["diaObjectId"]) == set(small.diaObjectCat["diaObjectId"])
    assert (current["band"] == small.band).all()
    in_window = forced[(forced_age > 0) & (forced_age <= 365)].groupby("diaObjectId").size()
    assert in_window.max() == 20


def test_multi_index_layout_and_plain_columns_layout(small):
    assert small.diaSourceCat.index.names == ["diaObjectId", "band", "diaSourceId"]
    assert small.diaSrcHistory.index.names == ["diaObjectId", "band", "diaSourceId"]
    assert small.diaForcedSources.index.names == ["diaObjectId", "diaForcedSourceId"]
    assert small.diaObjectCat.index.names == ["diaObjectId"]
    object_id = small.diaObjectCat.index[0]
    assert len(small.diaSrcHistory.loc[object_id]) >= 0
    plain = make_visit(40, SMALL, n_asteroids=2, seed=3, index_layout="columns")
    assert isinstance(plain.diaSourceCat.index, pd.RangeIndex)
    pd.testing.assert_frame_equal(plain.diaSourceCat, small.diaSourceCat.reset_index(drop=True))
    pd.testing.assert_frame_equal(plain.diaObjectCat, small.diaObjectCat.reset_index(drop=True))


def test_old_schemas_use_their_own_names():
    visit = make_visit(10, (256, 256), schema_version="4.0", n_history=2, n_forced=2)
    sources = visit.diaSourceCat
    assert sources.index.names == ["diaObjectId", "filterName", "diaSourceId"]
    assert (sources["midPointTai"] == visit.midpointMjdTai).all()
    np.testing.assert_allclose(sources["psFlux"] / sources["psFluxErr"], np.abs(sources["snr"]),
                               rtol=1e-5)
    assert (sources["ccdVisitId"] == visit.ccdVisitId).all()
    x, y = visit.difference.wcs.all_world2pix(sources["ra"], sources["decl"], 0)
    assert np.max(np.hypot(x - sources["x"], y - sources["y"])) < 0.01
    assert (visit.diaObjectCat[f"{visit.band}PSFluxNdata"] >= 1).all()


def test_same_arguments_same_visit_other_seed_other_visit():
    first = make_visit(15, (256, 300), seed=11, n_history=5, n_forced=5)
    second = make_visit(15, (256, 300), seed=11, n_history=5, n_forced=5)
    for name in ("diaSourceCat", "diaObjectCat", "diaSrcHistory", "diaForcedSources",
                 "ssSource", "mpc_orbits"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    for name in ("difference", "template", "science"):
        a, b = getattr(first, name), getattr(second, name)
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.uncertainty.array, b.uncertainty.array)
        np.testing.assert_array_equal(a.mask, b.mask)
        assert a.wcs.to_header(relax=True) == b.wcs.to_header(relax=True)
    other = make_visit(15, (256, 300), seed=12, n_history=5, n_forced=5)
    assert not np.array_equal(other.difference.data, first.difference.data)
    assert not np.array_equal(other.diaSourceCat["ra"], first.diaSourceCat["ra"])


def test_make_visits_gives_distinct_detectors_and_ids():
    visits = list(make_visits(3, 8, image_shape=(200, 220), n_history=4, n_forced=4))
    assert [v.detector for v in visits] == [0, 1, 2]
    ids = {"source": [], "forced": [], "object": []}
    for visit in visits:
        ids["source"] += list(visit.diaSourceCat["diaSourceId"])
        ids["source"] += list(visit.diaSrcHistory["diaSourceId"])
        ids["forced"] += list(visit.diaForcedSources["diaForcedSourceId"])
        ids["object"] += list(visit.diaObjectCat["diaObjectId"])
    for kind, values in ids.items():
        assert len(set(values)) == len(values), kind
    # Neighbouring detectors look at neighbouring sky.
    centers = [v.difference.wcs.pixel_to_world_values(110, 100) for v in visits]
    assert len({(round(float(ra), 4), round(float(dec), 4)) for ra, dec in centers}) == 3
    with pytest.raises(InputError, match="science detectors"):
        next(make_visits(2, 5, first_detector=188))


def test_wcs_maps_source_pixels_to_their_coordinates(full):
    wcs = full.difference.wcs
    assert full.difference.data.shape == (4000, 4072)
    assert wcs.wcs.ctype[0] == "RA---TAN-SIP" and wcs.sip is not None
    sources = full.diaSourceCat
    x, y = wcs.all_world2pix(sources["ra"], sources["dec"], 0, tolerance=1e-6)
    assert np.max(np.hypot(x - sources["x"], y - sources["y"])) < 0.01
    # 0.2 arcsec pixels; the SIP terms move the corners by a few pixels.
    scales = np.sqrt(np.abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600
    assert scales == pytest.approx(0.2, rel=1e-6)
    corners = np.array([[0, 0], [4071, 0], [0, 3999], [4071, 3999]], dtype=float)
    with_sip = wcs.all_pix2world(corners, 0)
    without = wcs.wcs_pix2world(corners, 0)
    shift_px = np.hypot((with_sip[:, 0] - without[:, 0]) * np.cos(np.deg2rad(2.0)),
                        with_sip[:, 1] - without[:, 1]) * 3600 / 0.2
    assert 1.0 < shift_px.max() < 15.0
    center = wcs.all_pix2world([[2035.5, 1999.5]], 0)[0]
    assert abs(center[1] - 2.0) < 3.5 and abs((center[0] - 150.0) * np.cos(0.035)) < 3.5


def test_difference_image_has_the_catalog_flux_at_the_sources(full):
    sources = full.diaSourceCat.reset_index(drop=True)
    difference = full.difference.data
    ny, nx = difference.shape
    radius = 10
    inside = (
        (sources["x"] > radius + 1) & (sources["x"] < nx - radius - 2)
        & (sources["y"] > radius + 1) & (sources["y"] < ny - radius - 2)
        & ~sources["isDipole"]
    )
    offsets = np.arange(-radius, radius + 1)
    disk = offsets[None, :] ** 2 + offsets[:, None] ** 2 <= radius**2
    aperture_sums, noise = [], []
    variance = full.difference.uncertainty.array
    for x, y in zip(sources["x"][inside], sources["y"][inside], strict=True):
        cx, cy = round(x), round(y)
        box = np.s_[cy - radius : cy + radius + 1, cx - radius : cx + radius + 1]
        aperture_sums.append(np.nansum(difference[box][disk]))
        noise.append(np.sqrt(np.sum(variance[box][disk])))
    aperture_sums, noise = np.array(aperture_sums), np.array(noise)
    psf_flux = sources["psfFlux"][inside].to_numpy()
    psf_err = sources["psfFluxErr"][inside].to_numpy()
    pull = (aperture_sums - 0.97 * psf_flux) / np.hypot(noise, psf_err)
    assert np.mean(np.abs(pull) < 4) > 0.9
    assert np.corrcoef(aperture_sums, psf_flux)[0, 1] > 0.9
    negative = psf_flux < 0
    assert negative.any() and (aperture_sums[negative] < 0).mean() > 0.8


def test_image_noise_matches_the_variance_plane(full):
    for image in (full.difference, full.science, full.template):
        mask = image.mask
        clean = (mask & ((1 << MASK_PLANES["DETECTED"]) | (1 << MASK_PLANES["NO_DATA"])
                         | (1 << MASK_PLANES["BAD"]))) == 0
        block = np.s_[1000:1800, 1000:1800]
        pulls = image.data[block][clean[block]] / np.sqrt(image.uncertainty.array[block][
            clean[block]])
        # Faint undetected sources add a little; the science sky is subtracted.
        assert 0.9 < np.std(pulls) < 1.25
        assert abs(np.median(pulls)) < 0.1


def test_images_carry_units_variance_mask_planes_wcs_and_psf(full):
    for name in ("difference", "template", "science"):
        image = getattr(full, name)
        assert isinstance(image, CCDData)
        assert image.unit == "nJy" and image.data.dtype == np.float32
        assert image.uncertainty.uncertainty_type == "var"
        assert image.uncertainty.unit == "nJy2" and image.uncertainty.array.dtype == np.float32
        assert image.mask.dtype == np.int32
        assert {k: v for k, v in image.meta.items() if k.startswith("MP_")} == {
            f"MP_{plane}": bit for plane, bit in MASK_PLANES.items()
        }
        assert image.meta["LTV1"] == 0 and image.meta["LTV2"] == 0
        psf = image.psf
        assert psf.shape == (25, 25) and psf.sum() == pytest.approx(1.0, rel=1e-5)
        assert np.unravel_index(np.argmax(psf), psf.shape) == (12, 12)
        # FWHM from the peak: pixels above half maximum ~ pi/4 FWHM**2.
        fwhm_arcsec = 0.2 * np.sqrt(4 / np.pi * np.sum(psf > psf.max() / 2))
        assert 0.5 < fwhm_arcsec < 1.0

    def has(image, plane):
        return bool(np.any(image.mask & (1 << MASK_PLANES[plane])))

    for plane in ("BAD", "SAT", "INTRP", "CR", "DETECTED", "SUSPECT"):
        assert has(full.science, plane), plane
    for plane in ("EDGE", "DETECTED", "DETECTED_NEGATIVE", "NO_DATA", "BAD"):
        assert has(full.difference, plane), plane
    assert not has(full.template, "CR") and has(full.template, "NO_DATA")
    no_data = (full.template.mask & (1 << MASK_PLANES["NO_DATA"])) != 0
    assert np.isnan(full.template.data[no_data]).all()
    assert np.isfinite(full.science.data).all()
    # The template is deeper than the science image.
    assert np.median(full.template.uncertainty.array) < np.median(full.science.uncertainty.array)


def test_edge_sources_exist_and_are_flagged(small):
    sources = small.diaSourceCat.reset_index(drop=True)
    ny, nx = small.difference.data.shape
    distance = np.minimum.reduce([sources["x"], sources["y"], nx - 1 - sources["x"],
                                  ny - 1 - sources["y"]])
    edge = distance < 10
    assert edge.sum() >= 3
    assert ((sources["x"] < 10) & (sources["y"] < 10)).any()  # a corner
    assert sources.loc[edge, "pixelFlags_edge"].all()
    assert sources.loc[edge, "psfFlux_flag_edge"].all()
    assert (distance >= 0).all()


def test_asteroids_have_ss_source_and_orbit_rows(small):
    sources = small.diaSourceCat.reset_index(drop=True)
    asteroid = sources["ssObjectId"].notna()
    assert asteroid.sum() == 2
    assert sources.loc[asteroid, "diaObjectId"].isna().all()
    assert sources.loc[~asteroid, "diaObjectId"].notna().all()
    ss = small.ssSource
    assert sorted(ss["diaSourceId"]) == sorted(sources.loc[asteroid, "diaSourceId"])
    assert sorted(ss["ssObjectId"]) == sorted(sources.loc[asteroid, "ssObjectId"].astype(np.int64))
    orbits = small.mpc_orbits
    assert list(orbits["designation"]) == list(ss["designation"])
    for packed, ss_id in zip(orbits["packed_primary_provisional_designation"], ss["ssObjectId"],
                             strict=True):
        assert int.from_bytes(packed.encode().ljust(8, b"\0"), "big") >> 8 == ss_id
    # Geometry: distances are the lengths of the position vectors.
    helio = np.hypot.reduce([ss["helio_x"], ss["helio_y"], ss["helio_z"]])
    topo = np.hypot.reduce([ss["topo_x"], ss["topo_y"], ss["topo_z"]])
    np.testing.assert_allclose(ss["helioRange"], helio, rtol=1e-5)
    np.testing.assert_allclose(ss["topoRange"], topo, rtol=1e-5)
    assert ((orbits["a"] > 2) & (orbits["a"] < 3.5) & (orbits["e"] < 0.3)).all()
    np.testing.assert_allclose(orbits["q"], orbits["a"] * (1 - orbits["e"]))
    assert (ss["phaseAngle"] < 40).all() and (ss["elongation"] > 0).all()
    assert (orbits["created_at"] > 1_600_000_000_000_000).all()
    # The predicted V magnitude matches the detected flux (V - r of an S type).
    by_id = sources.set_index("diaSourceId").loc[ss["diaSourceId"]]
    observed_mag = -2.5 * np.log10(np.abs(by_id["psfFlux"].to_numpy()) / 3631e9)
    colour = {"u": -1.4, "g": -0.35, "r": 0.2, "i": 0.35, "z": 0.4, "y": 0.45}[small.band]
    np.testing.assert_allclose(ss["ephVmag"], observed_mag + colour, atol=0.5)
    trail_arcsec = ss["ephRate"].to_numpy() * 3600 * 30 / 86400
    np.testing.assert_allclose(by_id["trailLength"], trail_arcsec, rtol=1e-5)


def test_write_visit_round_trip(tmp_path, small):
    paths = write_visit(small, tmp_path / "visit")
    assert set(paths) == {"diaSourceCat", "diaObjectCat", "diaSrcHistory", "diaForcedSources",
                          "ssSource", "mpc_orbits", "difference", "science", "template", "visit"}
    assert not list((tmp_path / "visit").glob(".*tmp"))
    for name in ("diaSourceCat", "diaSrcHistory", "diaForcedSources", "diaObjectCat",
                 "ssSource", "mpc_orbits"):
        expected = getattr(small, name).reset_index(drop=True)
        pd.testing.assert_frame_equal(pd.read_parquet(paths[name]), expected)
    with fits.open(paths["difference"]) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "IMAGE", "MASK", "VARIANCE", "PSF"]
        assert hdul[0].data is None and hdul[0].header["VISIT"] == small.visit
        image = hdul["IMAGE"].header
        assert image["BUNIT"] == "nJy" and image["LTV1"] == 0 and image["LTV2"] == 0
        assert image["CTYPE1"] == "RA---TAN-SIP" and "A_3_0" in image
        assert hdul["VARIANCE"].header["BUNIT"] == "nJy2"
        assert hdul["MASK"].header["MP_NO_DATA"] == 8
        np.testing.assert_array_equal(hdul["MASK"].data, small.difference.mask)
        np.testing.assert_array_equal(hdul["IMAGE"].data, small.difference.data)
    assert run_fitsverify(paths["template"].read_bytes()) == []
    ccd = CCDData.read(paths["science"], hdu="IMAGE", hdu_mask=None, hdu_uncertainty=None)
    np.testing.assert_array_equal(ccd.data, small.science.data)
    x, y = ccd.wcs.all_world2pix(small.diaSourceCat["ra"], small.diaSourceCat["dec"], 0)
    assert np.max(np.hypot(x - small.diaSourceCat["x"], y - small.diaSourceCat["y"])) < 0.01
    back = read_visit(tmp_path / "visit")
    pd.testing.assert_frame_equal(back.diaSourceCat, small.diaSourceCat)
    pd.testing.assert_frame_equal(back.diaForcedSources, small.diaForcedSources)
    assert back.ccdVisitId == small.ccdVisitId and back.schema_version == "11.1"
    np.testing.assert_array_equal(back.template.mask, small.template.mask)
    np.testing.assert_array_equal(back.template.uncertainty.array,
                                  small.template.uncertainty.array)


def test_write_visit_replaces_files_atomically(tmp_path, small):
    first = write_visit(small, tmp_path)
    before = first["diaSourceCat"].stat().st_ino
    second = write_visit(small, tmp_path)
    assert second["diaSourceCat"].stat().st_ino != before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in second.values())


def test_run_kwargs_match_the_task_signature(small):
    import inspect

    from alertpack.task import PackageAlertsTask

    parameters = inspect.signature(PackageAlertsTask.run).parameters
    kwargs = small.run_kwargs()
    assert set(kwargs) <= set(parameters)
    assert kwargs["diffIm"] is small.difference and kwargs["science"] is small.science
    assert kwargs["ccdExposureIdBits"] == CCD_EXPOSURE_ID_BITS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"visit": 123}, "YYYYMMDDnnnnn"),
        ({"visit": 2026133100001}, "valid date"),
        ({"detector": 200}, "science detector"),
        ({"image_shape": (32, 32)}, "too small"),
        ({"image_shape": "big"}, "two integers"),
        ({"n_sources": 3, "n_edge": 3, "n_asteroids": 1}, "n_edge"),
        ({"n_history": -1}, "n_history"),
        ({"index_layout": "flat"}, "index_layout"),
        ({"n_sources": 9000}, "too many"),
    ],
)
def test_bad_arguments_get_clear_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        make_visit(**{"image_shape": (128, 128), **kwargs})


def test_read_visit_of_a_directory_without_a_visit(tmp_path):
    with pytest.raises(InputError, match=r"visit\.json"):
        read_visit(tmp_path)


def test_importing_the_module_stays_light():
    code = (
        "import sys, alertpack.sample; "
        "heavy = [m for m in ('pandas', 'astropy', 'pyarrow', 'lsst.alert.packet') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
