"""``--config-file`` / ``-c`` and ``alertpack config``: what a pipetask user expects."""

from __future__ import annotations

import subprocess
import sys

import pytest

from alertpack.cli import main
from alertpack.config import PackageAlertsConfig


def test_config_prints_files_then_overrides_and_loads_back(tmp_path, capsys):
    overrides = tmp_path / "overrides.py"
    overrides.write_text("config.cutoutSize = 40\nconfig.useBboxSize = False\n")
    assert main(["config", "-C", str(overrides), "-c", "cutoutSize=44", "--schema", "9.0"]) == 0
    printed = capsys.readouterr().out
    saved = tmp_path / "saved.py"
    saved.write_text(printed)

    reloaded = PackageAlertsConfig()
    reloaded.load(str(saved))  # pex_config itself reads what we print
    assert (reloaded.cutoutSize, reloaded.useBboxSize, reloaded.schemaVersion) == (44, False, "9.0")


def test_config_never_prints_the_kafka_password(capsys):
    assert main(["config", "-c", "kafkaPassword=hunter2-secret"]) == 0
    printed = capsys.readouterr().out
    assert "hunter2-secret" not in printed
    assert "config.kafkaPassword='********'" in printed


@pytest.mark.parametrize(
    "text, words",
    [
        ("config.cutoutSize = 'big'\n", ["cutoutSize", "incorrect type str"]),
        ("config.cutoutSize = (\n", ["line 1", "config.cutoutSize = 40"]),
        ("config.noSuchField = 3\n", ["noSuchField"]),
    ],
)
def test_bad_config_file_is_one_line_naming_the_file(tmp_path, capsys, text, words):
    path = tmp_path / "bad.py"
    path.write_text(text)
    assert main(["config", "-C", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert str(path) in error
    for word in words:
        assert word in error
    assert "File /" not in error  # no pex_config pointers into source files


def test_missing_config_file(tmp_path, capsys):
    assert main(["config", "-C", str(tmp_path / "nope.py")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_package_uses_the_config_file(tmp_path):
    overrides = tmp_path / "overrides.py"
    overrides.write_text("config.cutouts = ['difference']\nconfig.useBboxSize = False\n"
                         "config.cutoutSize = 24\n")
    out = tmp_path / "alerts"
    completed = subprocess.run(
        [sys.executable, "-m", "alertpack", "package", "--sample", "--n-sources", "6",
         "--image-size", "300x300", "-C", str(overrides), "-o", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    import io

    from astropy.nddata import CCDData

    from alertpack.tools.reading import iter_alerts

    alerts = [item.record for item in iter_alerts([out])]
    assert len(alerts) == 6
    for alert in alerts:
        assert alert["cutoutTemplate"] is None and alert["cutoutScience"] is None
        assert CCDData.read(io.BytesIO(alert["cutoutDifference"])).shape == (24, 24)
