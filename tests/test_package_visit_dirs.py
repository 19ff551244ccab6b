"""``alertpack package --visit-dir`` over many detector directories, with bad ones."""

from __future__ import annotations

import subprocess
import sys

import fastavro

from alertpack.sample import make_visit, write_visit


def _table(stdout: str) -> dict[str, str]:
    rows = [line.rsplit(None, 1) for line in stdout.splitlines()[2:] if "  " in line]
    return {name.strip(): value for name, value in rows}


def test_visit_of_detector_dirs_with_two_bad_ones(tmp_path):
    visit = tmp_path / "visit"
    for detector in range(3):
        write_visit(make_visit(5, (200, 220), detector=detector, seed=detector),
                    visit / f"det{detector}")
    bad_catalog = visit / "det7"
    write_visit(make_visit(5, (200, 220), detector=7), bad_catalog)
    (bad_catalog / "diaSourceCat.parquet").write_bytes(b"not parquet")
    no_image = visit / "det8"
    write_visit(make_visit(5, (200, 220), detector=8), no_image)
    (no_image / "difference.fits").unlink()
    extra = tmp_path / "det9"
    write_visit(make_visit(4, (200, 220), detector=9), extra)

    run = subprocess.run(
        [sys.executable, "-m", "alertpack.cli", "package", "--visit-dir", str(visit), str(extra),
         "--workers", "2", "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 1
    table = _table(run.stdout)
    assert table["detectors"] == "6" and table["packaged"] == "4" and table["failed"] == "2"
    assert table["alerts"] == str(3 * 5 + 4)
    failed = [line for line in run.stderr.splitlines() if line.startswith("alertpack package:")]
    assert len(failed) == 2
    assert f"detector {bad_catalog} failed" in failed[0] + failed[1]
    assert "diaSourceCat.parquet" in "".join(failed) and "no difference file" in "".join(failed)
    # not a TTY: one progress line per detector
    assert sum("] detector " in line for line in run.stderr.splitlines()) == 6
    files = sorted((tmp_path / "out").glob("*.avro"))
    counts = []
    for path in files:
        with open(path, "rb") as stream:
            counts.append(sum(1 for _ in fastavro.reader(stream)))
    assert sorted(counts) == [4, 5, 5, 5]


def test_single_file_options_refused_for_several_detectors(tmp_path):
    for detector in range(2):
        write_visit(make_visit(4, (200, 220), detector=detector), tmp_path / f"d{detector}")
    run = subprocess.run(
        [sys.executable, "-m", "alertpack.cli", "package", "--visit-dir", str(tmp_path / "d0"),
         str(tmp_path / "d1"), "--sources", str(tmp_path / "d0" / "diaSourceCat.parquet")],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 2 and "--sources" in run.stderr and "Traceback" not in run.stderr
