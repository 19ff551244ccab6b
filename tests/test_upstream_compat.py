"""Drop-in for today's Rubin pipeline: its call, its config, its outputs, beside the seed's call.

The Task runs exactly as lsst/ap_association's ``diaPipe.py`` calls it, configured
by an override file written for upstream's ``PackageAlertsConfig``, on catalogs
shaped as diaPipe passes them and on FITS files laid out as afw writes
exposures (`upstream`). Its outputs are compared field by field with what
upstream's ``packageAlerts.py`` builds from the same catalogs (the oracle in
`upstream`, written from its code): file name, history and forced rows, orbits,
scheduler fields, metadata. Where alertpack differs on purpose (README, "Coming
from lsst.ap.association") the oracle applies the documented rule: NaN in a
nullable field is null. Every alert is validated with lsst.alert.packet's
official schema; every cutout read back with astropy.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import Table
from astropy.time import Time
from lsst.alert.packet.io import retrieve_alerts

from alertpack import PackageAlertsConfig, PackageAlertsTask
from alertpack.config import load_config_file
from alertpack.errors import InputError
from alertpack.packets.survey_image import VisitInfo
from alertpack.sample import make_visit
from alertpack.schema import load_schema
from test_task import assert_same
from upstream import afw_visit_keys, diapipe_inputs, upstream_alerts, write_afw_exposure

VERSION = "11.1"
CUTOUT_FIELDS = ("cutoutDifference", "cutoutScience", "cutoutTemplate")
REASON, TARGET = "", "lowdust"  # an empty reason goes out null, as upstream's
CALEXP_ROTATION, DIFFERENCE_ROTATION = 123.25, 123.25


def override_file(path, alerts_dir, **extra) -> str:
    """An override file as written for upstream's PackageAlertsConfig (its fields only)."""
    lines = [
        "import lsst.alert.packet as alertPack",
        "config.schemaFile = str(alertPack.get_uri_to_latest_schema())",
        "config.minCutoutSize = 30",
        "config.maxCutoutSize = 102",
        f"config.alertWriteLocation = {str(alerts_dir)!r}",
        "config.doProduceAlerts = False",
        "config.doWriteAlerts = True",
        "config.doWriteFailedAlerts = False",
        "config.maxTimeout = 5.0",
        "config.deliveryTimeout = 5000.0",
        "config.useAveragePsf = False",
        *(f"config.{name} = {value!r}" for name, value in extra.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def upstream_task(tmp_path, **extra) -> PackageAlertsTask:
    config = PackageAlertsConfig()
    load_config_file(config, override_file(tmp_path / "upstream_config.py",
                                           tmp_path / "alerts", **extra))
    return PackageAlertsTask(config=config)


@pytest.fixture(scope="module")
def visit():
    return make_visit(n_sources=16, image_shape=(400, 420), seed=5)


@pytest.fixture(scope="module")
def shaped(visit):
    return diapipe_inputs(visit)


@pytest.fixture(scope="module")
def exposures(visit, shaped, tmp_path_factory):
    """diffIm, calexp and template as afw writes them (the template, a coadd: no visit keys)."""
    directory = tmp_path_factory.mktemp("exposures")
    keys = dict(midpoint_mjd_tai=shaped.midpoint_mjd_tai, reason=REASON, target=TARGET)
    return {
        "diffIm": write_afw_exposure(directory / "diffIm.fits", visit.difference, afw_visit_keys(
            shaped.visit, rotation_deg=DIFFERENCE_ROTATION, **keys)),
        "calexp": write_afw_exposure(directory / "calexp.fits", visit.science, afw_visit_keys(
            shaped.visit, rotation_deg=CALEXP_ROTATION, **keys)),
        "template": write_afw_exposure(directory / "template.fits", visit.template, {}),
    }


THRESHOLD = 10  # between the young objects' nDiaSources (6) and the others' (~20)


@pytest.fixture(scope="module")
def diapipe_run(shaped, exposures, tmp_path_factory):
    """The Task run as diaPipe.py calls it (positional, then its keywords)."""
    tmp_path = tmp_path_factory.mktemp("diapipe")
    task = upstream_task(tmp_path)
    result = task.run(shaped.diaSourceCat,
                      shaped.diaObjectCat,
                      shaped.diaSrcHistory,
                      shaped.diaForcedSources,
                      exposures["diffIm"],
                      exposures["calexp"],
                      exposures["template"],
                      ssSrc=shaped.ssSrc,
                      doRunForcedMeasurement=True,
                      forcedSourceHistoryThreshold=THRESHOLD,
                      )
    return task, result, tmp_path


def test_upstream_override_file_loads_with_upstream_meaning(tmp_path):
    task = upstream_task(tmp_path)
    config = task.config
    assert config.schemaVersion == "11.1" and task.alertSchema.version.schema_id == 1101
    assert config.schemaFile == "resource://lsst.alert.packet/schema/11/1/lsst.v11_1.alert.avsc"
    assert config.kafkaDeliveryTimeout == 5.0 and config.deliveryTimeout == 5000.0  # ms -> s
    assert (config.maxTimeout, config.useAveragePsf, config.maxCutoutSize) == (5.0, False, 102)
    defaults = PackageAlertsConfig()
    assert (defaults.maxCutoutSize, defaults.deliveryTimeout, defaults.maxTimeout) == (
        102, 1200.0, 15.0)
    assert defaults.useAveragePsf is False


def test_a_schema_file_names_its_version_and_a_foreign_one_is_refused(tmp_path):
    from alertpack.errors import ConfigError

    config = PackageAlertsConfig()
    shipped = load_schema("9.0").path
    config.schemaFile = str(shipped)
    assert config.schemaVersion == "9.0"
    config.schemaFile = f"file://{shipped}"
    assert config.schemaVersion == "9.0"
    copy = tmp_path / "lsst.v9_0.alert.avsc"
    copy.write_text(shipped.read_text().replace('"doc"', '"description"', 1))
    with pytest.raises(ConfigError, match=r"not the schema 9\.0 lsst-alert-packet ships"):
        config.schemaFile = str(copy)
    with pytest.raises(ConfigError, match=r"lsst\.vMAJOR_MINOR\.alert\.avsc"):
        config.schemaFile = str(tmp_path / "alerts.avsc")
    assert config.schemaVersion == "9.0"  # a refused value changes nothing


def test_alertpack_config_prints_both_names_and_takes_either(tmp_path):
    command = [sys.executable, "-m", "alertpack", "config", "-c", "deliveryTimeout=2500",
               "-c", "schemaFile=resource://lsst.alert.packet/schema/10/0/lsst.v10_0.alert.avsc"]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "config.kafkaDeliveryTimeout=2.5" in printed
    assert "# config.deliveryTimeout=2500.0" in printed
    assert "config.schemaVersion='10.0'" in printed
    assert "# config.schemaFile='resource://lsst.alert.packet/schema/10/0/" in printed
    saved = tmp_path / "saved.py"
    saved.write_text(printed)
    reloaded = PackageAlertsConfig()
    reloaded.load(str(saved))  # the aliases are comments: each value is loaded once
    assert (reloaded.kafkaDeliveryTimeout, reloaded.schemaVersion) == (2.5, "10.0")


def test_diapipe_call_writes_upstreams_file_name_with_valid_alerts(diapipe_run, shaped):
    _, result, _ = diapipe_run
    assert result.nAlerts == len(shaped.diaSourceCat)
    assert [path.name for path in result.paths] == [f"{shaped.visit}_{shaped.detector}.avro"]
    with open(result.path, "rb") as stream:
        writer, records = retrieve_alerts(stream)
        records = list(records)
    assert writer.definition["name"] == "lsst.v11_1.alert"
    assert len(records) == result.nAlerts
    official = load_schema(VERSION).packet_schema
    assert all(official.validate(record) for record in records)


def test_diapipe_call_alerts_equal_upstreams_field_by_field(diapipe_run, shaped):
    _, result, _ = diapipe_run
    expected = upstream_alerts(
        VERSION, shaped, observation_reason=REASON, target_name=TARGET,
        doRunForcedMeasurement=True, forcedSourceHistoryThreshold=THRESHOLD,
    )
    ours = {alert["diaSourceId"]: alert for alert in result.alerts}
    assert ours.keys() == expected.keys()
    seen = {"new": 0, "below threshold": 0, "forced": 0, "asteroid": 0}
    for alert_id, theirs in expected.items():
        mine = ours[alert_id]
        assert list(mine) == list(theirs)
        for key in theirs:
            if key in CUTOUT_FIELDS:
                continue
            assert_same(mine[key], theirs[key], f"{alert_id}.{key}")
        assert mine["observation_reason"] is None and mine["target_name"] == TARGET
        if theirs["diaObject"] is None:
            seen["asteroid"] += 1
            assert mine["mpc_orbits"]["id"] == 0 and mine["prvDiaForcedSources"] is None
            continue
        n_sources = theirs["diaObject"]["nDiaSources"]
        seen["new"] += n_sources == 1 and mine["prvDiaSources"] is None
        seen["below threshold"] += n_sources < THRESHOLD and mine["prvDiaForcedSources"] == []
        if mine["prvDiaForcedSources"]:
            seen["forced"] += 1
            # this visit's forced measurement is the last row, as diaPipe merges them
            last = mine["prvDiaForcedSources"][-1]
            assert last["midpointMjdTai"] == mine["diaSource"]["midpointMjdTai"]
    assert all(seen.values()), seen


def test_diapipe_call_cutouts_read_back_with_astropy(diapipe_run):
    _, result, _ = diapipe_run
    for alert in result.alerts:
        for field in CUTOUT_FIELDS:
            stamp = CCDData.read(io.BytesIO(alert[field]))
            assert stamp.unit == "nJy" and stamp.data.shape[0] == stamp.data.shape[1]
            assert 30 <= stamp.data.shape[0] <= 102


def test_every_stamp_has_upstreams_rotpa(diapipe_run):
    _, result, _ = diapipe_run
    expected = {"cutoutDifference": DIFFERENCE_ROTATION, "cutoutScience": CALEXP_ROTATION,
                "cutoutTemplate": CALEXP_ROTATION}  # upstream: the calexp's for the template
    for alert in result.alerts:
        for field, rotation in expected.items():
            with fits.open(io.BytesIO(alert[field])) as hdus:
                assert hdus[0].header["ROTPA"] == pytest.approx(rotation), field


def test_template_stamp_gets_the_science_images_boresight_rotation(visit, exposures):
    from alertpack.core import _with_boresight_of
    from alertpack.inputs.images import as_survey_image

    def with_rotation(image, name, degrees):
        survey = as_survey_image(image, name=name)
        return dataclasses.replace(survey, visit_info=VisitInfo(
            boresight_rotation_deg=degrees, rotation_type="SKY"))

    template = as_survey_image(visit.template, name="template")
    assert template.visit_info.boresight_rotation_deg is None  # a coadd says none
    difference = with_rotation(visit.difference, "difference", 20.0)
    science = with_rotation(visit.science, "science", 10.0)
    got = _with_boresight_of(template, science, difference).visit_info
    assert (got.boresight_rotation_deg, got.rotation_type) == (10.0, "SKY")
    assert _with_boresight_of(template, None, difference).visit_info.boresight_rotation_deg == 20
    # from the afw-layout calexp file, as diaPipe's run gives it
    got = _with_boresight_of(template, exposures["calexp"], exposures["diffIm"]).visit_info
    assert got.boresight_rotation_deg == CALEXP_ROTATION


def test_diapipe_call_metadata_as_upstream_when_not_producing(diapipe_run, shaped):
    task, _, _ = diapipe_run
    metadata = task.getFullMetadata().to_dict()["packageAlerts"]
    midpoint = Time(shaped.midpoint_mjd_tai, format="mjd", scale="tai").tai.unix
    assert metadata["visit_midpoint"] == pytest.approx(midpoint, abs=1e-3)
    for key in ("produce_start_timestamp", "produce_end_timestamp",
                "alert_timing_since_shutter_close", "total_alerts"):
        assert metadata[key] == -1, key


def test_forced_measurement_not_run_gives_empty_forced_histories(shaped, exposures, tmp_path):
    empty_forced = shaped.diaForcedSources.iloc[:0]  # diaPipe: makeEmptyForcedSourceTable
    result = upstream_task(tmp_path).run(
        shaped.diaSourceCat, shaped.diaObjectCat, shaped.diaSrcHistory, empty_forced,
        exposures["diffIm"], exposures["calexp"], exposures["template"], ssSrc=shaped.ssSrc,
        doRunForcedMeasurement=False, forcedSourceHistoryThreshold=0,
    )
    expected = upstream_alerts(
        VERSION, dataclasses.replace(shaped, diaForcedSources=empty_forced),
        observation_reason=REASON, target_name=TARGET, doRunForcedMeasurement=False,
    )
    for alert in result.alerts:
        theirs = expected[alert["diaSourceId"]]["prvDiaForcedSources"]
        assert alert["prvDiaForcedSources"] == theirs
        assert theirs == ([] if alert["diaObject"] is not None else None)
    # the forced rows given but forced measurement said not run: still []
    result = upstream_task(tmp_path).run(
        shaped.diaSourceCat, shaped.diaObjectCat, shaped.diaSrcHistory, shaped.diaForcedSources,
        exposures["diffIm"], exposures["calexp"], exposures["template"], ssSrc=shaped.ssSrc,
        doRunForcedMeasurement=False,
    )
    assert all(a["prvDiaForcedSources"] in ([], None) for a in result.alerts)


def test_ss_src_as_an_astropy_table_gives_the_same_alerts(diapipe_run, shaped, exposures,
                                                           tmp_path):
    _, first, _ = diapipe_run
    result = upstream_task(tmp_path).run(
        diaSourceCat=shaped.diaSourceCat, diaObjectCat=shaped.diaObjectCat,
        diaSrcHistory=shaped.diaSrcHistory, diaForcedSources=shaped.diaForcedSources,
        diffIm=exposures["diffIm"], calexp=exposures["calexp"], template=exposures["template"],
        ssSrc=Table.from_pandas(shaped.ssSrc), forcedSourceHistoryThreshold=THRESHOLD,
    )
    assert result.alerts.payloads == first.alerts.payloads  # keywords, and a Table: the same


def test_the_seed_call_on_the_same_task_still_names_files_by_ccd_visit(visit, tmp_path):
    task = upstream_task(tmp_path)
    result = task.run(visit.diaSourceCat, visit.diaObjectCat, visit.diaSrcHistory,
                      visit.difference, visit.template, visit.ccdExposureIdBits,
                      science=visit.science, diaForcedSources=visit.diaForcedSources)
    assert [path.name for path in result.paths] == [f"{visit.ccdVisitId}.avro"]
    assert result.nAlerts == len(visit.diaSourceCat)


def test_file_naming_can_be_chosen_for_either_call(visit, shaped, exposures, tmp_path):
    task = upstream_task(tmp_path, alertFileNaming="visit_detector")
    result = task.run(**visit.run_kwargs())
    assert [path.name for path in result.paths] == [f"{shaped.visit}_{shaped.detector}.avro"]
    task = upstream_task(tmp_path, alertFileNaming="ccdVisitId")
    with pytest.raises(InputError, match="ccdExposureIdBits"):
        task.run(shaped.diaSourceCat, shaped.diaObjectCat, shaped.diaSrcHistory,
                 shaped.diaForcedSources, exposures["diffIm"], exposures["calexp"],
                 exposures["template"], ssSrc=shaped.ssSrc)
    # schemas before 7.0 have no visit and detector: files named by them need the columns
    old = make_visit(n_sources=4, image_shape=(200, 200), seed=2, schema_version="6.1")
    assert "visit" not in old.diaSourceCat.columns
    task = upstream_task(tmp_path, alertFileNaming="visit_detector",
                         schemaFile="resource://lsst.alert.packet/schema/6/1/lsst.v6_1.alert.avsc")
    with pytest.raises(InputError, match=r"diaSourceCat has no visit column.*alertFileNaming"):
        task.run(**old.run_kwargs())


@pytest.mark.parametrize("call", [
    lambda task, v: task.run(v.diaSourceCat, v.diaObjectCat),
    lambda task, v: task.run(v.diaSourceCat, v.diaObjectCat, v.diaSrcHistory,
                             v.diaForcedSources, v.difference, v.science, v.template,
                             science=v.science),
    lambda task, v: task.run(v.diaSourceCat, v.diaObjectCat, v.diaSrcHistory, v.difference,
                             v.template, calexp=v.science),
    lambda task, v: task.run(v.diaSourceCat, v.diaObjectCat, v.diaSrcHistory, v.difference,
                             v.template, 50, v.science),
], ids=["too few", "upstream call with a seed keyword", "seed call with calexp",
        "seed call with 7 positional"])
def test_a_call_matching_neither_names_both_signatures(call, visit):
    task = PackageAlertsTask()
    with pytest.raises(TypeError) as caught:
        call(task, visit)
    message = str(caught.value)
    assert "run(diaSourceCat, diaObjectCat, diaSrcHistory, diffIm, template" in message
    assert ("run(diaSourceCat, diaObjectCat, diaSrcHistory, diaForcedSources, diffIm, calexp, "
            "template, ssSrc=...") in message


def test_mpcorb_orbit_designations_from_the_packed_ss_object_id(visit, shaped):
    from alertpack.packets.mpcorb import packed_designations

    orbit = visit.mpc_orbits.iloc[0]
    ids = shaped.ssSrc["ssObjectId"].to_numpy()
    assert list(packed_designations(ids)) == [orbit["packed_primary_provisional_designation"]]
    assert list(packed_designations(np.array([0x004B3139513132 << 8 | 0x42]))) == ["K19Q12B"]


def test_psf_per_source_from_a_psf_model_unless_use_average_psf(visit):
    from alertpack.inputs.images import as_survey_image
    from alertpack.packets.cutouts import extract_stamps

    image = as_survey_image(visit.difference, name="difference")
    calls = []

    def model(x, y):
        calls.append((x, y))
        return np.full((5, 5), x + 1000 * y, dtype=np.float32)

    image = dataclasses.replace(image, psf_model=model)
    sources = visit.diaSourceCat.reset_index(drop=True)
    ra, dec = sources["ra"].to_numpy(), sources["dec"].to_numpy()
    stamps, _ = extract_stamps(image, ra, dec, 30, psf_per_source=True)
    placed = [s for s in stamps if s is not None]
    assert len(calls) == len(placed) > 0
    for stamp, (x, y) in zip(placed, calls, strict=True):
        assert stamp.psf[0, 0] == np.float32(x + 1000 * y)
        assert abs(x - (stamp.origin[0] + stamp.center_pixel[0])) < 1e-6
    average, _ = extract_stamps(image, ra, dec, 30, psf_per_source=False)
    assert all(s.psf is image.psf for s in average if s is not None)


def test_empty_scheduler_fields_are_null_from_arguments_and_columns(visit):
    config = PackageAlertsConfig()
    config.doWriteAlerts = False
    task = PackageAlertsTask(config=config)
    result = task.run(**{**visit.run_kwargs(), "observation_reason": ""})
    assert all(alert["observation_reason"] is None for alert in result.alerts)
    sources = visit.diaSourceCat.assign(target_name="", observation_reason="wfd")
    result = task.run(**{**visit.run_kwargs(), "diaSourceCat": sources})
    assert all(alert["target_name"] is None for alert in result.alerts)
    assert all(alert["observation_reason"] == "wfd" for alert in result.alerts)


def test_as_diapipes_alert_packager_subtask(shaped, exposures, tmp_path):
    """diaPipe's ``alertPackager`` subtask retargeted to alertpack's Task in diaPipe's own
    override file, which configures it as upstream's (``config.alertPackager.<field>``)."""
    import lsst.pex.config as pexConfig
    import lsst.pipe.base as pipeBase

    class UpstreamPackagerConfig(pexConfig.Config):
        maxCutoutSize = pexConfig.Field(dtype=int, default=102, doc="stands in for upstream's")

    class UpstreamPackager(pipeBase.Task):
        ConfigClass = UpstreamPackagerConfig
        _DefaultName = "packageAlerts"

    class DiaPipeConfig(pexConfig.Config):
        alertPackager = pexConfig.ConfigurableField(target=UpstreamPackager, doc="alerts")
        doPackageAlerts = pexConfig.Field(dtype=bool, default=False, doc="package alerts")

    class DiaPipe(pipeBase.Task):
        ConfigClass = DiaPipeConfig
        _DefaultName = "diaPipe"

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            if self.config.doPackageAlerts:
                self.makeSubtask("alertPackager")

        def run(self, inputs, diff_im, calexp, template):
            self.alertPackager.run(inputs.diaSourceCat, inputs.diaObjectCat, inputs.diaSrcHistory,
                                   inputs.diaForcedSources, diff_im, calexp, template,
                                   ssSrc=inputs.ssSrc, doRunForcedMeasurement=True,
                                   forcedSourceHistoryThreshold=THRESHOLD)

    overrides = tmp_path / "diaPipe_config.py"
    overrides.write_text(
        "from alertpack import PackageAlertsTask\n"
        "config.alertPackager.retarget(PackageAlertsTask)\n"
        "config.doPackageAlerts = True\n"
        f"config.alertPackager.alertWriteLocation = {str(tmp_path / 'alerts')!r}\n"
        "config.alertPackager.deliveryTimeout = 2000.0\n"
        "config.alertPackager.maxCutoutSize = 64\n"
    )
    config = DiaPipeConfig()
    config.load(str(overrides))
    task = DiaPipe(config=config)
    assert task.alertPackager.config.kafkaDeliveryTimeout == 2.0
    task.run(shaped, exposures["diffIm"], exposures["calexp"], exposures["template"])
    assert (tmp_path / "alerts" / f"{shaped.visit}_{shaped.detector}.avro").is_file()
    metadata = task.getFullMetadata().to_dict()
    assert metadata["diaPipe:alertPackager"]["total_alerts"] == -1
    assert metadata["diaPipe:alertPackager"]["nAlerts"] == len(shaped.diaSourceCat)
