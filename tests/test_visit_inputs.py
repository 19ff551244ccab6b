"""`VisitInputs`, as each producer builds it: the Task's seed call, a visit directory, the
sample and the simulator (the APDB's: tests/test_apdb.py), and what the core does with it."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from alertpack.config import PackageAlertsConfig
from alertpack.core import AlertPackager
from alertpack.errors import InputError
from alertpack.inputs.visit_files import VISIT_FILES, load_visit_files
from alertpack.packets.survey_image import SurveyImage
from alertpack.sample import make_visit, write_visit
from alertpack.scaleout.simulate import stream_detector_loader
from alertpack.task import PackageAlertsTask
from alertpack.visit_inputs import CATALOGS, IMAGES, VisitInputs, is_run_argument

SRC = Path(__file__).resolve().parents[1] / "src" / "alertpack"


@pytest.fixture(scope="module")
def visit():
    return make_visit(n_sources=6, image_shape=(240, 260), seed=4)


@pytest.fixture(scope="module")
def visit_dir(visit, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("visit")
    write_visit(visit, directory)
    return directory


def _config(directory: Path) -> PackageAlertsConfig:
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(directory)
    return config


class _Spy:
    """Stands in for a packager's ``run``: records the inputs, then runs them."""

    def __init__(self, packager: AlertPackager) -> None:
        self.packager_run = packager.run
        self.inputs: list[VisitInputs] = []

    def __call__(self, inputs, **options):
        self.inputs.append(inputs)
        return self.packager_run(inputs, **options)


def test_the_fields_are_the_arguments_of_the_seed_call():
    parameters = set(inspect.signature(PackageAlertsTask.run).parameters) - {"self"}
    fields = {item.name for item in dataclasses.fields(VisitInputs)}
    assert {name for name in fields if is_run_argument(name)} == parameters
    assert fields - parameters == {"files"} and not is_run_argument("files")
    assert set(CATALOGS) | set(IMAGES.values()) <= parameters
    with pytest.raises(KeyError):
        is_run_argument("calexp")
    with pytest.raises(TypeError):  # keywords only: a new field never shifts a position
        VisitInputs(pd.DataFrame())


def test_the_task_builds_them_from_the_seed_call(visit, tmp_path):
    task = PackageAlertsTask(config=_config(tmp_path / "task"))
    spy = _Spy(task.packager)
    task.packager.run = spy
    # positional, as the 2020 seed documents it, plus alertpack's keywords
    result = task.run(visit.diaSourceCat, visit.diaObjectCat, visit.diaSrcHistory,
                      visit.difference, visit.template, visit.ccdExposureIdBits,
                      science=visit.science, diaForcedSources=visit.diaForcedSources,
                      ssSource=visit.ssSource, mpc_orbits=visit.mpc_orbits,
                      observation_reason="survey", target_name="field 7")
    (inputs,) = spy.inputs
    expected = {**visit.run_kwargs(), "observation_reason": "survey", "target_name": "field 7"}
    got = inputs.run_kwargs()
    assert got.keys() == expected.keys()
    assert all(got[name] is expected[name] for name in expected)  # the objects, not copies
    assert inputs.files == {}
    direct = AlertPackager(_config(tmp_path / "core")).run(inputs)
    assert direct.alerts.payloads == result.alerts.payloads and result.nAlerts == 6
    assert {alert["diaSource"]["diaSourceId"] for alert in result.alerts} == set(
        visit.diaSourceCat["diaSourceId"])


def test_a_visit_directory_gives_typed_inputs_with_their_files(visit, visit_dir):
    inputs = load_visit_files(visit_dir)
    for name in CATALOGS:
        assert isinstance(getattr(inputs, name), pa.Table)  # Parquet: Arrow, no pandas
        assert inputs.files[name] == visit_dir / VISIT_FILES[name]
    assert set(inputs.files) == set(CATALOGS)  # images name their own files
    for name, image in inputs.images().items():
        assert isinstance(image, SurveyImage) and image.name == name
    assert inputs.ccdExposureIdBits == visit.ccdExposureIdBits  # from visit.json
    sources = inputs.diaSourceCat.to_pandas()
    np.testing.assert_array_equal(sources["diaSourceId"], visit.diaSourceCat["diaSourceId"])
    assert "rows" in repr(inputs) and "0.0" not in repr(inputs)  # sizes, not values


def test_explicit_files_and_id_bits_override_the_directory(visit_dir, tmp_path):
    other = tmp_path / "sources.csv"
    frame = pd.read_parquet(visit_dir / "diaSourceCat.parquet").iloc[:3]
    frame.to_csv(other, index=False)
    inputs = load_visit_files(visit_dir, files={"diaSourceCat": other, "template": None},
                              id_bits=44)
    assert inputs.files["diaSourceCat"] == other and len(inputs.diaSourceCat) == 3
    assert inputs.template is not None  # None: the directory's file stays
    assert inputs.ccdExposureIdBits == 44
    only = load_visit_files(files={"diaSourceCat": other,
                                   "diffIm": visit_dir / "difference.fits"})
    assert only.diaObjectCat is None and only.template is None
    assert only.ccdExposureIdBits is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"files": {"diaSourceCat": "x.csv"}}, "no difference file given"),
        ({"files": {"calexp": "x.fits"}}, "'calexp' is not an input read from a file"),
        ({"directory": "nowhere"}, "visit directory nowhere is not a directory"),
    ],
)
def test_visit_file_errors_name_files_not_flags(arguments, message):
    with pytest.raises(InputError, match=message) as error:
        load_visit_files(**arguments)
    assert "--" not in str(error.value)


def test_a_visit_directory_without_its_difference_image(visit_dir, tmp_path):
    directory = tmp_path / "visit"
    directory.mkdir()
    (directory / "diaSourceCat.parquet").write_bytes((visit_dir / "diaSourceCat.parquet")
                                                     .read_bytes())
    with pytest.raises(InputError, match=r"has no difference file \(difference.fits\)"):
        load_visit_files(directory)


def test_the_core_names_the_file_of_a_bad_catalog(visit_dir, tmp_path):
    bad = tmp_path / "diaSourceCat.csv"
    pd.read_parquet(visit_dir / "diaSourceCat.parquet").drop(columns=["ra"]).to_csv(
        bad, index=False)
    inputs = load_visit_files(visit_dir, files={"diaSourceCat": bad})
    with pytest.raises(InputError, match=rf"diaSourceCat \(file {bad}\) lacks column\(s\) ra"):
        AlertPackager(_config(tmp_path / "out")).run(inputs)
    unnamed = dataclasses.replace(inputs, files={})
    with pytest.raises(InputError, match=r"^diaSourceCat lacks column\(s\) ra"):
        AlertPackager(_config(tmp_path / "out")).run(unnamed)


def test_the_sample_gives_its_catalogs_and_images_themselves(visit):
    inputs = visit.inputs()
    assert inputs.diaSourceCat is visit.diaSourceCat and inputs.diffIm is visit.difference
    assert inputs.science is visit.science and inputs.mpc_orbits is visit.mpc_orbits
    assert inputs.ccdExposureIdBits == visit.ccdExposureIdBits
    assert inputs.observation_reason is None and inputs.files == {}
    kwargs = visit.run_kwargs()
    assert kwargs.keys() == inputs.run_kwargs().keys()
    assert all(kwargs[name] is value for name, value in inputs.run_kwargs().items())


def test_the_simulator_gives_a_retargeted_detector(tmp_path):
    loader = stream_detector_loader(2026112500007, 5, 4, 8, n_templates=2,
                                    image_shape=(200, 200))
    inputs = loader()
    assert isinstance(inputs, VisitInputs)
    sources = inputs.diaSourceCat
    assert len(sources) == 4
    assert set(sources["visit"]) == {2026112500007} and set(sources["detector"]) == {5}
    # the images of template detector 5 % 2 = 1, whatever the visit
    template = stream_detector_loader(2026112500001, 1, 4, 8, n_templates=2,
                                      image_shape=(200, 200))()
    assert inputs.diffIm is template.diffIm and inputs.science is template.science
    assert set(inputs.diaObjectCat["diaObjectId"]) >= set(sources["diaObjectId"].dropna())
    assert not set(sources["diaSourceId"]) & set(template.diaSourceCat["diaSourceId"])
    result = AlertPackager(_config(tmp_path)).run(inputs)
    assert result.n_alerts == 4 and len(result.paths) == 1


def test_no_argparse_below_the_command_line():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if "cli" in path.relative_to(SRC).parts:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(name.split(".")[0] == "argparse" for name in names):
                offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


def test_visit_inputs_is_ground_level():
    tree = ast.parse((SRC / "visit_inputs.py").read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names]
    assert not [name for name in imported if name and name.startswith("alertpack")]
