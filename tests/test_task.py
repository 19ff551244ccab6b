"""PackageAlertsTask: the seed's whole API on the real lsst.pipe.base.Task."""

from __future__ import annotations

import io
import math
import os

import fastavro
import lsst.pex.config as pexConfig
import lsst.pipe.base as pipeBase
import numpy as np
import pandas as pd
import pytest
from astropy.nddata import CCDData
from lsst.alert.packet import Schema
from lsst.alert.packet.io import retrieve_alerts

from alertpack import PackageAlertsConfig, PackageAlertsTask
from alertpack.errors import InputError
from alertpack.inputs.images import as_survey_image
from alertpack.reference.alerts import package_alerts_reference, packet_schema
from alertpack.sample import make_visit
from alertpack.schema import load_schema
from alertpack.task import SchemaCatalogTask, all_schema_catalogs


@pytest.fixture(scope="module")
def visit():
    return make_visit(n_sources=24, image_shape=(1024, 1100), seed=3)


def make_task(tmp_path, **overrides) -> PackageAlertsTask:
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(tmp_path / "alerts")
    for name, value in overrides.items():
        setattr(config, name, value)
    return PackageAlertsTask(config=config)


def official(version: str) -> Schema:
    return load_schema(version).packet_schema


@pytest.fixture(scope="module")
def packaged(visit, tmp_path_factory):
    task = make_task(tmp_path_factory.mktemp("run"))
    return task, task.run(**visit.run_kwargs())


def test_task_is_a_real_pipe_base_task_with_a_pex_config():
    assert issubclass(PackageAlertsTask, pipeBase.Task)
    assert issubclass(PackageAlertsConfig, pexConfig.Config)
    task = PackageAlertsTask()
    assert task.getName() == "packageAlerts"
    assert task.getFullName() == "packageAlerts"


def test_run_one_alert_per_source_valid_against_official_schema(packaged, visit):
    _, result = packaged
    n_sources = len(visit.diaSourceCat)
    assert result.nAlerts == n_sources == len(result.alerts)
    schema = official("11.1")
    ids = set()
    for alert in result.alerts:
        assert schema.validate(alert)
        assert alert["diaSourceId"] == alert["diaSource"]["diaSourceId"]
        ids.add(alert["diaSourceId"])
    assert ids == set(visit.diaSourceCat["diaSourceId"])


def test_alert_contents_match_the_catalogs(packaged, visit):
    _, result = packaged
    sources = visit.diaSourceCat.reset_index(drop=True).set_index("diaSourceId", drop=False)
    history = visit.diaSrcHistory.reset_index(drop=True)
    n_with_history = n_without_history = 0
    for alert in result.alerts:
        source = alert["diaSource"]
        row = sources.loc[source["diaSourceId"]]
        assert source["ra"] == row["ra"]
        assert source["psfFlux"] == pytest.approx(row["psfFlux"], rel=1e-6, nan_ok=True) or (
            source["psfFlux"] is None and pd.isna(row["psfFlux"])
        )
        if alert["diaObject"] is None:
            assert alert["prvDiaSources"] is None  # an asteroid: no DiaObject, no history
            continue
        assert alert["diaObject"]["diaObjectId"] == source["diaObjectId"]
        previous = alert["prvDiaSources"]
        if previous is None:  # a new DiaObject: null, as in LSST's packageAlerts
            n_without_history += 1
            previous = []
        else:
            assert previous, "an empty history is null, never []"
        times = [p["midpointMjdTai"] for p in previous]
        assert times == sorted(times)
        assert all(source["midpointMjdTai"] - 365 <= t < source["midpointMjdTai"] for t in times)
        assert all(p["diaObjectId"] == source["diaObjectId"] for p in previous)
        assert source["diaSourceId"] not in {p["diaSourceId"] for p in previous}
        expected = history[
            (history["diaObjectId"] == source["diaObjectId"])
            & (history["midpointMjdTai"] >= source["midpointMjdTai"] - 365)
            & (history["midpointMjdTai"] < source["midpointMjdTai"])
        ]
        assert len(previous) == len(expected)
        n_with_history += bool(previous)
        forced = alert["prvDiaForcedSources"]
        assert all(f["diaObjectId"] == source["diaObjectId"] for f in forced)
    assert n_with_history > 0 and n_without_history > 0


def test_asteroid_alert_carries_ss_source_and_orbit(packaged):
    _, result = packaged
    asteroids = [a for a in result.alerts if a["ssSource"] is not None]
    assert asteroids, "the sample has an asteroid"
    for alert in asteroids:
        assert alert["ssSource"]["diaSourceId"] == alert["diaSourceId"]
        assert alert["mpc_orbits"] is not None


def test_file_per_ccd_visit_readable_by_packet_and_fastavro(packaged, visit):
    _, result = packaged
    assert result.path is not None and result.paths == [result.path]
    assert result.path.name == f"{visit.ccdVisitId}.avro"
    with open(result.path, "rb") as stream:
        writer_schema, records = retrieve_alerts(stream)
        packet_records = list(records)
    with open(result.path, "rb") as stream:
        fastavro_records = list(fastavro.reader(stream))
    assert len(packet_records) == len(fastavro_records) == result.nAlerts
    assert writer_schema.definition["name"] == "lsst.v11_1.alert"
    assert [r["diaSourceId"] for r in fastavro_records] == list(result.alerts.alert_ids)
    assert not [p for p in result.path.parent.iterdir() if p.name.startswith(".")]


def test_cutouts_are_fits_from_each_image(packaged, visit):
    _, result = packaged
    alert = next(a for a in result.alerts if a["diaObject"] is not None)
    for field in ("cutoutDifference", "cutoutScience", "cutoutTemplate"):
        stamp = CCDData.read(io.BytesIO(alert[field]))
        assert stamp.unit == "nJy"
        assert stamp.data.ndim == 2
    statuses = result.cutoutStatus
    assert statuses["difference:OK"] + statuses.get("difference:PADDED", 0) == result.nAlerts


def test_fast_path_equals_the_straightforward_reference(visit):
    """Every field at its Avro precision and every cutout plane and WCS, against the oracle.

    The oracle (alertpack.reference) shares no code with the fast path: it
    builds each alert with pandas and astropy and is encoded here by fastavro,
    so float fields are float32 exactly where the schema says float.
    """
    task = make_task_no_files()
    result = task.run(**visit.run_kwargs())
    images = {
        "cutoutDifference": visit.difference,
        "cutoutScience": visit.science,
        "cutoutTemplate": visit.template,
    }
    reference = package_alerts_reference(
        "11.1", visit.diaSourceCat, visit.diaObjectCat, visit.diaSrcHistory, images,
        diaForcedSources=visit.diaForcedSources, ssSource=visit.ssSource,
        mpc_orbits=visit.mpc_orbits,
    )
    schema = packet_schema("11.1")
    ours = {a["diaSourceId"]: a for a in result.alerts}
    assert len(ours) == len(reference) == len(visit.diaSourceCat)
    kinds = ("ssSource", "mpc_orbits", "prvDiaSources", "prvDiaForcedSources", "diaObject",
             "cutoutDifference", "cutoutScience", "cutoutTemplate")
    seen = dict.fromkeys(kinds, 0)
    for built in reference:
        expected = schema.deserialize(schema.serialize(built))  # at Avro precision
        got = ours[expected["diaSourceId"]]
        assert list(got) == list(expected)
        for key in expected:
            if key.startswith("cutout"):
                assert_same_cutout(got[key], expected[key], key)
            else:
                assert_same(got[key], expected[key], key)
            seen[key] = seen.get(key, 0) + (expected[key] is not None)
    # each kind of content was compared at least once (the sample has no scheduler fields)
    assert all(seen[kind] for kind in kinds), seen


def assert_same_cutout(got: bytes | None, expected: bytes | None, where: str) -> None:
    """Image, variance, mask bits and WCS of two cutouts are the same."""
    from astropy.io import fits
    from astropy.wcs import WCS

    if expected is None:
        assert got is None, where
        return
    with fits.open(io.BytesIO(got)) as mine, fits.open(io.BytesIO(expected)) as theirs:
        np.testing.assert_array_equal(mine[0].data, theirs[0].data, err_msg=where)
        np.testing.assert_array_equal(mine["UNCERT"].data, theirs["UNCERT"].data, err_msg=where)
        np.testing.assert_array_equal(mine["MASK"].data, theirs["FLAGS"].data, err_msg=where)
        my_wcs, their_wcs = WCS(mine[0].header), WCS(theirs[0].header)
    assert my_wcs.wcs.ctype[0] == their_wcs.wcs.ctype[0] == "RA---TAN-SIP", where
    np.testing.assert_array_equal(my_wcs.wcs.crpix, their_wcs.wcs.crpix, err_msg=where)
    ny, nx = mine_shape = np.shape(CCDData.read(io.BytesIO(got)).data)
    assert mine_shape == (ny, nx)
    jj, ii = np.mgrid[0:ny, 0:nx]
    separation = my_wcs.pixel_to_world(ii.ravel(), jj.ravel()).separation(
        their_wcs.pixel_to_world(ii.ravel(), jj.ravel())
    )
    assert separation.arcsec.max() < 1e-6, where


def make_task_no_files() -> PackageAlertsTask:
    config = PackageAlertsConfig()
    config.doWriteAlerts = False
    return PackageAlertsTask(config=config)


def assert_same(got, expected, where):
    """Exactly equal, NaN equal to NaN (values decoded from Avro on both sides)."""
    if isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for g, e in zip(got, expected, strict=True):
            assert_same(g, e, where)
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected), where
        for key in expected:
            assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, float) and math.isnan(expected):
        assert isinstance(got, float) and math.isnan(got), where
    else:
        assert type(got) is type(expected) and got == expected, (where, got, expected)


@pytest.mark.parametrize("version", ["7.4", "9.0", "10.0"])
def test_older_schema_versions(version, tmp_path):
    visit = make_visit(n_sources=6, image_shape=(600, 600), seed=1, schema_version=version)
    task = make_task(tmp_path, schemaVersion=version)
    result = task.run(**visit.run_kwargs())
    schema = official(version)
    assert result.nAlerts == 6
    for alert in result.alerts:
        assert schema.validate(alert)
    with open(result.path, "rb") as stream:
        writer, records = retrieve_alerts(stream)
        assert len(list(records)) == 6
    assert writer.definition["name"] == f"lsst.v{version.replace('.', '_')}.alert"


def test_empty_catalog_gives_no_file_and_zero_count(visit, tmp_path):
    task = make_task(tmp_path)
    kwargs = visit.run_kwargs()
    kwargs["diaSourceCat"] = visit.diaSourceCat.iloc[:0]
    result = task.run(**kwargs)
    assert result.nAlerts == 0 and result.path is None and result.paths == []
    assert not (tmp_path / "alerts").exists() or not list((tmp_path / "alerts").iterdir())


def test_run_records_timing_and_counts_in_metadata(packaged):
    task, result = packaged
    metadata = task.getFullMetadata()
    flat = metadata.to_dict()["packageAlerts"]
    assert flat["nAlerts"] == result.nAlerts
    for stage in ("prepareCatalogs", "makeCutouts", "encodeAlerts", "writeAlerts"):
        assert f"{stage}StartCpuTime" in flat and f"{stage}EndCpuTime" in flat
    assert "runStartCpuTime" in flat and "runEndUtc" in flat
    task.emptyMetadata()
    assert "nAlerts" not in task.getFullMetadata().to_dict()["packageAlerts"]


def test_ccd_exposure_id_bits_name_the_file(visit, tmp_path):
    task = make_task(tmp_path)
    kwargs = visit.run_kwargs()
    bits = kwargs["ccdExposureIdBits"]
    expected = int(visit.diaSourceCat["diaSourceId"].iloc[0]) >> (64 - bits)
    result = task.run(**kwargs)
    assert result.path.name == f"{expected}.avro"


def test_no_ccd_visit_id_and_no_id_bits_is_an_error_naming_both(visit, tmp_path):
    kwargs = visit.run_kwargs()
    kwargs["ccdExposureIdBits"] = None
    assert "visit" in visit.diaSourceCat.columns and "detector" in visit.diaSourceCat.columns
    with pytest.raises(InputError) as caught:
        make_task(tmp_path).run(**kwargs)
    message = str(caught.value)
    assert "ccdExposureIdBits" in message and "--id-bits" in message
    assert "ccdVisitId column" in message
    assert not (tmp_path / "alerts").exists()


def test_orbit_that_matches_nothing_is_counted_and_warned(visit, tmp_path, caplog):
    task = make_task(tmp_path, overwriteAlertFiles=True)  # the second run changes the file
    kwargs = visit.run_kwargs()
    result = task.run(**kwargs)
    assert result.nOrbitsUnmatched == 0
    assert task.getFullMetadata().to_dict()["packageAlerts"]["nOrbitsUnmatched"] == 0
    kwargs["mpc_orbits"] = kwargs["mpc_orbits"].assign(designation="1999 AA1")
    with caplog.at_level("WARNING"):
        result = task.run(**kwargs)
    n_asteroids = len(visit.ssSource)
    assert n_asteroids > 0
    assert result.nOrbitsUnmatched == n_asteroids
    assert task.getFullMetadata().to_dict()["packageAlerts"]["nOrbitsUnmatched"] == n_asteroids
    assert f"{n_asteroids} solar-system source(s) match no mpc_orbits row" in caplog.text
    assert all(alert["mpc_orbits"] is None for alert in result.alerts)


def test_file_written_atomically_and_replaced_on_rerun(visit, tmp_path, monkeypatch):
    task = make_task(tmp_path, overwriteAlertFiles=True)  # a re-run that rewrites the file
    first = task.run(**visit.run_kwargs())
    before = first.path.read_bytes()
    import alertpack.packets.avro as avro

    def broken_writer(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(avro, "write_container", broken_writer)
    with pytest.raises(OSError, match="disk full"):
        task.run(**visit.run_kwargs())
    assert first.path.read_bytes() == before
    assert sorted(os.listdir(first.path.parent)) == [first.path.name]


def test_make_alert_dict_from_rows_validates(visit):
    task = PackageAlertsTask()
    sources = visit.diaSourceCat
    objects = visit.diaObjectCat
    index = next(i for i, key in enumerate(sources.index) if key[0] in objects.index)
    key = sources.index[index]
    source_row = sources.iloc[index]
    object_row = objects.loc[key[0]]
    history = visit.diaSrcHistory.reset_index(drop=True)
    history = history[history["diaObjectId"] == key[0]]
    image = as_survey_image(visit.difference, name="difference")
    from alertpack.packets.cutouts import extract_stamps

    stamps, _ = extract_stamps(image, [source_row["ra"]], [source_row["dec"]], np.array([30]))
    alert = task.makeAlertDict(
        int(source_row["diaSourceId"]), source_row, object_row, history, stamps[0], None
    )
    assert official("11.1").validate(alert)
    assert alert["diaObject"]["diaObjectId"] == key[0]
    assert alert["cutoutTemplate"] is None
    assert CCDData.read(io.BytesIO(alert["cutoutDifference"])).shape == (30, 30)
    time = source_row["midpointMjdTai"]
    expected = history[
        (history["midpointMjdTai"] < time) & (history["midpointMjdTai"] >= time - 365)
    ].sort_values("midpointMjdTai")
    assert len(expected) > 0, "the chosen source has history"
    assert [p["diaSourceId"] for p in alert["prvDiaSources"]] == list(expected["diaSourceId"])
    # every key of the schema is set, as LSST's makeAlertDict does
    assert list(alert) == load_schema("11.1").field_names
    for key in ("prvDiaForcedSources", "ssSource", "mpc_orbits", "observation_reason",
                "target_name"):
        assert alert[key] is None
    lone = task.makeAlertDict(int(source_row["diaSourceId"]), source_row, None, None, None, None)
    assert lone["diaObject"] is None and lone["prvDiaSources"] is None
    assert list(lone) == load_schema("11.1").field_names


def test_make_cutout_bytes_accepts_stamps_ccddata_and_bytes(visit):
    task = PackageAlertsTask()
    small = CCDData(visit.difference.data[:20, :20], unit="nJy", wcs=visit.difference.wcs)
    data = task.makeCutoutBytes(small)
    assert CCDData.read(io.BytesIO(data)).shape == (20, 20)
    assert task.makeCutoutBytes(data) == data


def test_schema_catalogs_follow_the_configured_version_and_hierarchy():
    class ParentConfig(pexConfig.Config):
        packager = PackageAlertsTask.makeField("alert packaging")

    class ParentTask(SchemaCatalogTask):
        ConfigClass = ParentConfig
        _DefaultName = "parent"

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.makeSubtask("packager")

    parent = ParentTask()
    child = parent.packager
    assert child.getFullName() == "parent.packager"
    assert set(parent.getTaskDict()) == {"parent", "parent.packager"}
    catalogs = child.getSchemaCatalogs()
    assert set(catalogs) == {"diaSource", "diaObject", "diaForcedSource", "ssSource", "mpc_orbits"}
    assert list(catalogs["diaSource"].columns) == [
        f["name"] for f in load_schema("11.1").record("diaSource")["fields"]
    ]
    assert len(catalogs["diaSource"]) == 0
    assert parent.getAllSchemaCatalogs().keys() == child.getAllSchemaCatalogs().keys()
    assert parent.getAllSchemaCatalogs().keys() == catalogs.keys()
    assert parent.getSchemaCatalogs() == {}

    class PlainParentTask(pipeBase.Task):
        ConfigClass = ParentConfig
        _DefaultName = "plain"

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.makeSubtask("packager")

    plain = PlainParentTask()
    assert all_schema_catalogs(plain).keys() == catalogs.keys()
    assert plain.packager.getAllSchemaCatalogs().keys() == catalogs.keys()
    old = PackageAlertsConfig()
    old.schemaVersion = "7.4"
    assert "ssSource" not in PackageAlertsTask(config=old).getSchemaCatalogs()


def test_timer_records_start_and_end():
    task = PackageAlertsTask()
    with task.timer("custom"):
        pass
    flat = task.metadata.to_dict()
    assert "customStartCpuTime" in flat and "customEndCpuTime" in flat


def test_bad_input_errors_name_what_is_wrong(visit, tmp_path):
    task = make_task(tmp_path)
    kwargs = visit.run_kwargs()
    kwargs["diaSourceCat"] = visit.diaSourceCat.drop(columns=["ra"])
    with pytest.raises(InputError, match="diaSourceCat lacks column"):
        task.run(**kwargs)
    kwargs = visit.run_kwargs()
    kwargs["diffIm"] = None
    with pytest.raises(InputError, match="diffIm is None"):
        task.run(**kwargs)
    kwargs = visit.run_kwargs()
    kwargs["diffIm"] = str(tmp_path / "missing.fits")
    with pytest.raises(InputError, match=r"missing\.fits"):
        task.run(**kwargs)


def test_bad_and_off_image_positions_are_per_source_outcomes(visit, tmp_path):
    task = make_task(tmp_path)
    kwargs = visit.run_kwargs()
    sources = visit.diaSourceCat.copy()
    sources.iloc[0, sources.columns.get_loc("ra")] = np.nan
    sources.iloc[1, sources.columns.get_loc("dec")] = sources["dec"].iloc[1] + 5.0  # 5 deg away
    kwargs["diaSourceCat"] = sources
    result = task.run(**kwargs)
    assert result.nAlerts == len(sources)
    assert result.cutoutStatus["difference:BAD_POSITION"] == 1
    assert result.cutoutStatus["difference:OFF_IMAGE"] == 1
    by_id = {a["diaSourceId"]: a for a in result.alerts}
    for row in (0, 1):
        alert = by_id[int(sources["diaSourceId"].iloc[row])]
        assert alert["cutoutDifference"] is None and alert["cutoutTemplate"] is None
        assert official("11.1").validate(alert)
    metadata = task.getFullMetadata().to_dict()["packageAlerts"]
    assert metadata["cutouts_difference_BAD_POSITION"] == 1


def test_deflate_files_read_back_through_lsst_alert_packet(visit, tmp_path):
    task = make_task(tmp_path, fileCodec="deflate")
    result = task.run(**visit.run_kwargs())
    with open(result.path, "rb") as stream:
        reader = fastavro.reader(stream)
        assert reader.metadata["avro.codec"] == "deflate"
        assert [a["diaSourceId"] for a in reader] == list(result.alerts.alert_ids)
    with open(result.path, "rb") as stream:
        _, records = retrieve_alerts(stream)
        assert len(list(records)) == result.nAlerts
