"""Nothing an input holds is lost without a word: columns under other names, inputs left out,
two detectors naming one file, an existing alert file, visit-wide options over many detectors.

Each case runs as a new user would, through the console script, and was silent before: exit 0
with nulls, a file replaced, or a refused option.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from lsst.alert.packet import Schema, retrieve_alerts

from alertpack.config import PackageAlertsConfig
from alertpack.core import AlertPackager
from alertpack.errors import OutputError
from alertpack.sample import make_visit, write_visit


def _package(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alertpack.cli", "package", *arguments],
        capture_output=True, text=True, timeout=300,
    )


def _alerts(out: Path) -> list[dict]:
    alerts = []
    official = Schema.from_file()
    for path in sorted(out.glob("*.avro")):
        with open(path, "rb") as stream:
            _, records = retrieve_alerts(stream)
            alerts.extend(records)
    assert alerts and all(official.validate(alert) for alert in alerts)
    return alerts


@pytest.fixture(scope="module")
def visit():
    return make_visit(6, (200, 220), seed=2)


@pytest.fixture
def visit_dir(visit, tmp_path) -> Path:
    write_visit(visit, tmp_path / "det")
    return tmp_path / "det"


def _rewrite_sources(directory: Path, change) -> None:
    path = directory / "diaSourceCat.parquet"
    frame = change(pd.read_parquet(path))
    path.unlink()
    frame.to_parquet(directory / "diaSourceCat.parquet", index=False)


def test_a_filter_column_is_read_as_band_and_said(visit, visit_dir, tmp_path):
    _rewrite_sources(visit_dir, lambda frame: frame.rename(columns={"band": "filter"}))
    run = _package("--visit-dir", str(visit_dir), "-o", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert "note: diaSourceCat column 'filter' read as band" in run.stdout
    bands = {alert["diaSource"]["band"] for alert in _alerts(tmp_path / "out")}
    assert bands == {visit.band}


def test_case_and_underscores_are_read_as_the_field(visit_dir, tmp_path):
    _rewrite_sources(visit_dir, lambda frame: frame.rename(
        columns={"psfFlux": "PSF_FLUX", "reliability": "Reliability"}))
    run = _package("--visit-dir", str(visit_dir), "-o", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert "column 'PSF_FLUX' read as psfFlux" in run.stdout
    alerts = _alerts(tmp_path / "out")
    assert all(alert["diaSource"]["psfFlux"] is not None for alert in alerts)
    assert all(alert["diaSource"]["reliability"] is not None for alert in alerts)


def _typo(frame):
    return frame.rename(columns={"psfFlux": "psfFlx"})


def _two_bands(frame):
    frame = frame.rename(columns={"band": "filter"})
    frame["FILTER"] = frame["filter"]
    return frame


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_typo, "has no column 'psfFlux' but has 'psfFlx': did you mean 'psfFlux'?"),
        (_two_bands, "has columns 'filter' and 'FILTER', which could all be band"),
    ],
)
def test_typos_and_ambiguous_columns_are_refused(visit_dir, tmp_path, change, message):
    _rewrite_sources(visit_dir, change)
    run = _package("--visit-dir", str(visit_dir), "-o", str(tmp_path / "out"))
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()


def test_the_summary_says_what_was_left_out(visit, visit_dir, tmp_path):
    assert int((visit.diaSourceCat["ssObjectId"].fillna(0) != 0).sum()) > 0
    run = _package("--sources", str(visit_dir / "diaSourceCat.parquet"),
                   "--difference", str(visit_dir / "difference.fits"), "--id-bits", "50",
                   "-o", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    warnings = run.stderr
    n_ss = int((visit.diaSourceCat["ssObjectId"].fillna(0) != 0).sum())
    assert f"no ssSource catalog for {n_ss} source(s) with an ssObjectId" in warnings
    assert "no diaObjectCat: the diaObject of" in warnings
    assert "no diaSrcHistory" in warnings and "no diaForcedSources" in warnings
    assert "no mpc_orbits" in warnings
    assert "no template image: cutoutTemplate is null" in warnings
    assert "no science image" in warnings
    assert "absent: diaObjectCat, diaSrcHistory" in run.stdout
    assert all(alert["diaObject"] is None for alert in _alerts(tmp_path / "out"))


def test_the_result_holds_it_too(visit, tmp_path):
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(tmp_path)
    inputs = visit.inputs()
    with AlertPackager(config) as packager:
        result = packager.run(dataclasses.replace(inputs, template=None, ssSource=None))
    assert set(result.absent) == {"template", "ssSource"}


def _two_detectors(tmp_path: Path, same_visit: bool = True) -> Path:
    visit = tmp_path / "visit"
    write_visit(make_visit(5, (200, 220), detector=3, seed=1), visit / "det3")
    other = make_visit(4, (200, 220), detector=3 if same_visit else 4, seed=2)
    write_visit(other, visit / "det4")  # a copied directory: the same ccdVisit
    return visit


def test_two_detectors_naming_one_file_stop_before_anything_is_written(tmp_path):
    visit = _two_detectors(tmp_path)
    run = _package("--visit-dir", str(visit), "--workers", "2", "-o", str(tmp_path / "out"))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "would both write" in run.stderr and "det3" in run.stderr and "det4" in run.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_wrong_id_bits_for_the_visit_are_caught_the_same_way(tmp_path):
    visit = _two_detectors(tmp_path, same_visit=False)
    for directory in visit.iterdir():  # the pipelines write no visit.json: bits for the visit
        (directory / "visit.json").unlink()
    run = _package("--visit-dir", str(visit), "--id-bits", "20", "-o", str(tmp_path / "out"))
    assert run.returncode == 2 and "would both write" in run.stderr, run.stderr
    run = _package("--visit-dir", str(visit), "--id-bits", "50", "-o", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert len(list((tmp_path / "out").glob("*.avro"))) == 2


def test_visit_wide_id_bits_and_a_visit_json_that_overrides_them(tmp_path):
    visit = _two_detectors(tmp_path, same_visit=False)
    (visit / "det3" / "visit.json").unlink()
    info = json.loads((visit / "det4" / "visit.json").read_text())
    info["ccdExposureIdBits"] = 50
    (visit / "det4" / "visit.json").write_text(json.dumps(info))
    run = _package("--visit-dir", str(visit / "det3"), str(visit / "det4"), "--id-bits", "50",
                   "-o", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert len(_alerts(tmp_path / "out")) == 9


def test_an_existing_alert_file_is_not_replaced_unless_asked(visit, visit_dir, tmp_path):
    out = tmp_path / "out"
    assert _package("--visit-dir", str(visit_dir), "-o", str(out)).returncode == 0
    (path,) = out.glob("*.avro")
    before, stat = path.read_bytes(), path.stat()
    # the same alerts again (a re-run, a retried job): the file is kept as it is
    run = _package("--visit-dir", str(visit_dir), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert path.read_bytes() == before and path.stat().st_ino == stat.st_ino
    # other alerts: refused before anything is written, saying how to allow it
    run = _package("--visit-dir", str(visit_dir), "-o", str(out), "-c", "cutoutSize=40",
                   "-c", "useBboxSize=false")
    assert run.returncode == 2 and f"alert file {path} exists and holds other alerts" in run.stderr
    assert "--overwrite" in run.stderr and "overwriteAlertFiles" in run.stderr
    assert path.read_bytes() == before
    run = _package("--visit-dir", str(visit_dir), "-o", str(out), "-c", "cutoutSize=40",
                   "-c", "useBboxSize=false", "--overwrite")
    assert run.returncode == 0, run.stderr
    assert path.read_bytes() != before and len(_alerts(out)) == len(visit.diaSourceCat)


def test_a_damaged_file_in_the_way_is_refused_too(visit_dir, tmp_path):
    out = tmp_path / "out"
    assert _package("--visit-dir", str(visit_dir), "-o", str(out)).returncode == 0
    (path,) = out.glob("*.avro")
    path.write_bytes(b"not avro")
    run = _package("--visit-dir", str(visit_dir), "-o", str(out))
    assert run.returncode == 2 and "exists and holds other alerts" in run.stderr
    assert path.read_bytes() == b"not avro"


def test_the_core_refuses_before_writing_any_file_of_the_run(visit, tmp_path):
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(tmp_path)
    with AlertPackager(config) as packager:
        (path,) = packager.run(visit.inputs()).paths
        os.utime(path, (0, 0))
        config_changed = PackageAlertsConfig()
        config_changed.alertWriteLocation = str(tmp_path)
        config_changed.cutoutSize, config_changed.useBboxSize = 50, False
    with AlertPackager(config_changed) as packager, pytest.raises(OutputError):
        packager.run(visit.inputs())
    assert path.stat().st_mtime == 0


def test_detectors_of_a_run_that_report_one_file_are_listed(tmp_path):
    from alertpack.scaleout.pool import DetectorJob, package_detectors, sample_detector_loader

    def jobs():  # one detector twice, as wrong id bits in an APDB run would make it
        return [DetectorJob(name, sample_detector_loader(3, 4, (200, 220), seed=seed))
                for name, seed in (("first", 0), ("second", 1))]

    config = PackageAlertsConfig()
    config.alertWriteLocation = str(tmp_path / "refused")
    summary = package_detectors(jobs(), config, workers=1)
    # whichever finishes last finds the other's file
    assert len(summary.failures) == 1 and len(summary.detectors) == 1
    assert "exists and holds other alerts" in str(summary.failures[0].error)
    config.alertWriteLocation = str(tmp_path / "replaced")
    config.overwriteAlertFiles = True
    summary = package_detectors(jobs(), config, workers=1)
    assert not summary.failures
    assert [sorted(pair) for _, *pair in summary.shared_files] == [["first", "second"]]
