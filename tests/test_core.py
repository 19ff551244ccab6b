"""AlertPackager, the core without lsst.pipe.base, and the Task over it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from alertpack import PackageAlertsConfig, PackageAlertsTask
from alertpack.core import AlertPackager
from alertpack.sample import make_visit


@pytest.fixture(scope="module")
def visit():
    return make_visit(n_sources=16, image_shape=(700, 760), seed=11)


def _config(directory) -> PackageAlertsConfig:
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(directory)
    return config


def test_task_and_core_write_the_same_bytes(visit, tmp_path):
    task_result = PackageAlertsTask(config=_config(tmp_path / "task")).run(**visit.run_kwargs())
    core_result = AlertPackager(_config(tmp_path / "core")).run(visit.inputs())

    assert task_result.alerts.payloads == core_result.alerts.payloads
    assert [p.name for p in task_result.paths] == [p.name for p in core_result.paths]
    for task_path, core_path in zip(task_result.paths, core_result.paths, strict=True):
        assert task_path.read_bytes()[16:] != b""
        # container files differ only in their random 16-byte sync marker
        assert _without_sync(task_path.read_bytes()) == _without_sync(core_path.read_bytes())
    assert task_result.cutoutStatus == core_result.cutout_status
    assert task_result.nAlerts == core_result.n_alerts == len(visit.run_kwargs()["diaSourceCat"])


def _without_sync(data: bytes) -> bytes:
    import io

    import fastavro

    reader = fastavro.reader(io.BytesIO(data))
    marker = reader._header["sync"]
    return data.replace(marker, b"")


def test_core_stage_times_reach_the_task_metadata(visit, tmp_path):
    task = PackageAlertsTask(config=_config(tmp_path))
    task.run(**visit.run_kwargs())
    metadata = task.getFullMetadata()
    for stage in ("prepareCatalogs", "makeCutouts", "encodeAlerts", "writeAlerts"):
        assert metadata[f"packageAlerts.{stage}StartCpuTime"] <= metadata[
            f"packageAlerts.{stage}EndCpuTime"]
    result = AlertPackager(_config(tmp_path / "core")).run(visit.inputs())
    assert set(result.stage_seconds) == {
        "prepareCatalogs", "makeCutouts", "encodeAlerts", "writeAlerts"}
    assert all(seconds > 0 for seconds in result.stage_seconds.values())


def test_one_packager_serves_many_runs(tmp_path):
    packager = AlertPackager(_config(tmp_path))
    first = packager.run(make_visit(n_sources=8, image_shape=(400, 420), seed=1,
                                    detector=1).inputs())
    second = packager.run(make_visit(n_sources=9, image_shape=(400, 420), seed=2,
                                     detector=2).inputs())
    assert (first.n_alerts, second.n_alerts) == (8, 9)
    assert set(first.paths).isdisjoint(second.paths)


def test_core_and_package_command_never_import_pipe_base(tmp_path):
    code = (
        "import sys\n"
        "from alertpack.cli import main\n"
        f"assert main(['package', '--sample', '--n-sources', '6', '--image-size', '300x300',"
        f" '-o', {str(tmp_path)!r}]) == 0\n"
        "loaded = [m for m in ('lsst.pipe.base', 'lsst.daf.butler') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
