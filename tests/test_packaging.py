"""``alertpack package``: the main job on the sample, on a visit's files, and its errors."""

from __future__ import annotations

import io
import math
import subprocess
import sys

import fastavro
import numpy as np
import pytest
from astropy.io import fits

from alertpack import PackageAlertsConfig, PackageAlertsTask
from alertpack.cli import main
from alertpack.sample import make_visit, write_visit


def read_count(path) -> int:
    with open(path, "rb") as stream:
        return sum(1 for _ in fastavro.reader(stream))


def test_package_sample_prints_a_summary_and_writes_alerts(tmp_path, capsys):
    code = main([
        "package", "--sample", "--n-sources", "8", "--image-size", "512x600", "--seed", "2",
        "-o", str(tmp_path / "out"),
    ])
    assert code == 0
    output = capsys.readouterr().out
    assert "packaged 8 alerts from the sample visit (schema 11.1)" in output
    files = list((tmp_path / "out").glob("*.avro"))
    assert len(files) == 1 and str(files[0]) in output
    assert read_count(files[0]) == 8


def test_package_from_a_visit_directory_matches_the_in_memory_run(tmp_path, capsys):
    visit = make_visit(n_sources=6, image_shape=(500, 520), seed=4)
    write_visit(visit, tmp_path / "visit")
    code = main(["package", "--visit-dir", str(tmp_path / "visit"), "-o", str(tmp_path / "a")])
    assert code == 0, capsys.readouterr()
    files = list((tmp_path / "a").glob("*.avro"))
    assert [f.name for f in files] == [f"{visit.ccdVisitId}.avro"]
    with open(files[0], "rb") as stream:
        alerts = list(fastavro.reader(stream))
    assert len(alerts) == 6
    # the same visit packaged in memory, from its DataFrames and CCDData images
    config = PackageAlertsConfig()
    config.doWriteAlerts = False
    in_memory = PackageAlertsTask(config=config).run(**visit.run_kwargs())
    expected = {alert["diaSourceId"]: alert for alert in in_memory.alerts}
    assert sorted(expected) == sorted(alert["diaSourceId"] for alert in alerts)
    n_cutouts = 0
    for alert in alerts:
        reference = expected[alert["diaSourceId"]]
        for key in alert:
            if key.startswith("cutout") and alert[key] is not None:
                n_cutouts += 1
                assert_same_pixels(alert[key], reference[key])
            else:
                assert same_values(alert[key], reference[key]), key
    assert n_cutouts >= 6


def same_values(got, expected) -> bool:
    """Equal, NaN equal to NaN, through lists and records."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and got.keys() == expected.keys() and all(
            same_values(got[k], expected[k]) for k in expected
        )
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(
            same_values(g, e) for g, e in zip(got, expected, strict=True)
        )
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(got, float) and math.isnan(got)
    return got == expected


def assert_same_pixels(got: bytes, expected: bytes) -> None:
    with fits.open(io.BytesIO(got)) as mine, fits.open(io.BytesIO(expected)) as theirs:
        assert [hdu.name for hdu in mine] == [hdu.name for hdu in theirs]
        for mine_hdu, their_hdu in zip(mine, theirs, strict=True):
            np.testing.assert_array_equal(mine_hdu.data, their_hdu.data)
        for key in ("CTYPE1", "CRPIX1", "CRPIX2", "LTV1", "LTV2"):
            assert mine[0].header[key] == theirs[0].header[key], key
        # the visit's FITS files carry the WCS as astropy writes it (14 digits)
        for key in ("CRVAL1", "CRVAL2", "CD1_1", "CD1_2", "CD2_1", "CD2_2"):
            assert mine[0].header[key] == pytest.approx(theirs[0].header[key], rel=1e-12), key


def test_old_schema_and_config_overrides_from_the_command_line(tmp_path, capsys):
    code = main([
        "package", "--sample", "--n-sources", "4", "--image-size", "400x400", "--schema", "9.0",
        "-c", "cutouts=difference", "-c", "cutoutSize=16", "-c", "useBboxSize=false",
        "-o", str(tmp_path),
    ])
    assert code == 0, capsys.readouterr()
    (path,) = tmp_path.glob("*.avro")
    with open(path, "rb") as stream:
        reader = fastavro.reader(stream)
        alerts = list(reader)
    assert reader.writer_schema["name"] == "lsst.v9_0.alert"
    assert all(a["cutoutTemplate"] is None and a["cutoutScience"] is None for a in alerts)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["package"], "give --sample"),
        (["package", "--sample", "-c", "nonsense=1"], "NAME=VALUE with NAME among"),
        (["package", "--sample", "-c", "cutoutSize=big"], "not a valid int"),
        (["package", "--sample", "-c", "minCutoutSize=500"], "larger than maxCutoutSize"),
        (["package", "--sample", "--schema", "12.0"], "12.0 is not shipped"),
        (["package", "--sources", "nope.parquet", "--difference", "d.fits"], "does not exist"),
        (["package", "--sample", "--image-size", "big"], "NXxNY"),
    ],
)
def test_bad_invocations_fail_with_one_clear_line(argv, message, capsys, tmp_path):
    assert main([*argv, "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_console_script_runs_in_a_subprocess(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "alertpack.cli", "package", "--sample", "--n-sources", "5",
         "--image-size", "300x300", "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "packaged 5 alerts" in completed.stdout


def test_package_sample_focal_plane_through_the_pool(tmp_path, capsys):
    code = main([
        "package", "--sample", "--sample-detectors", "3", "--workers", "2", "--n-sources", "5",
        "--image-size", "300x320", "-o", str(tmp_path),
    ])
    assert code == 0
    assert "packaged 15 alerts from 3 sample detectors" in capsys.readouterr().out
    files = sorted(tmp_path.glob("*.avro"))
    assert len(files) == 3 and sum(read_count(f) for f in files) == 15
