"""Hostile files through the console scripts: one clear line, non-zero exit, no traceback.

Also: failed-alert files inside an alert directory are recognised (by writer
schema) and skipped by inspect/validate/to-parquet and found by replay; a
directory with several bad files reports each and still reads the good ones.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import fastavro
import pyarrow.parquet as pq
import pytest

from alertpack.cli import main as cli_main
from alertpack.packets.batch import OutgoingAlert
from alertpack.sinks.failed import FailedAlert, write_failed_alerts
from hostile import HOSTILE_KINDS, make_hostile

READERS = ["inspect", "validate", "show", "to-parquet"]


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> Path:
    """A real alert file: the sample visit, 4 alerts with real cutouts."""
    out = tmp_path_factory.mktemp("good")
    argv = ["package", "--sample", "--n-sources", "4", "--image-size", "400x400", "-o", str(out)]
    assert cli_main(argv) == 0
    (path,) = out.glob("*.avro")
    return path


def reader_argv(command: str, path: Path, tmp_path: Path) -> list[str]:
    if command == "show":
        return ["show", str(path), "-o", str(tmp_path / "plot.png")]
    if command == "to-parquet":
        return ["to-parquet", str(path), "-o", str(tmp_path / "parquet")]
    return [command, str(path)]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    status = cli_main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def failed_file(alert_dir: Path, good_file: Path) -> Path:
    """A failed-alerts file under ``alert_dir/failed/``, as a run whose Kafka was down writes."""
    with good_file.open("rb") as stream:
        reader = fastavro.reader(stream)
        records = list(reader)
        schema = reader.writer_schema
    import io

    payload = io.BytesIO()
    fastavro.schemaless_writer(payload, fastavro.parse_schema(schema), records[0])
    alert = OutgoingAlert(
        payload=payload.getvalue(), schema_id=1101, key=records[0]["diaObject"]["diaObjectId"],
        timestamp_ms=None, alert_id=records[0]["diaSourceId"],
    )
    failure = FailedAlert(alert=alert, topic="alerts", reason="broker down", failed_at_ms=0)
    return write_failed_alerts([failure], alert_dir / "failed")


@pytest.mark.parametrize("kind", sorted(HOSTILE_KINDS))
@pytest.mark.parametrize("command", READERS)
def test_hostile_file_is_one_clear_line(good_file, tmp_path, capsys, command, kind):
    bad = make_hostile(kind, good_file, tmp_path)
    status, out, err = run_cli(reader_argv(command, bad, tmp_path), capsys)
    assert "Traceback" not in err + out
    if command == "validate" and kind == "renamed-field":
        # validate reads it and says what is wrong with each alert
        assert status == 1 and "differs from the definition" in out
        return
    assert status == 2, (out, err)
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert errors and str(bad) in errors[0], err
    assert not (tmp_path / "plot.png").exists()
    assert not (tmp_path / "parquet").exists() or not any((tmp_path / "parquet").iterdir())


def test_directory_with_several_bad_files_reports_each_and_reads_the_rest(
    good_file, tmp_path, capsys
):
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    shutil.copy(good_file, alerts / "1.avro")
    bad = [make_hostile(kind, good_file, alerts) for kind in ("garbage", "truncated")]
    skipped = failed_file(alerts, good_file)

    # a directory tool does the good files, names every bad one, and exits 1
    status, out, err = run_cli(["inspect", "--json", str(alerts)], capsys)
    assert status == 1 and len(out.splitlines()) == 4  # the good file's alerts all listed
    assert all(str(path) in err for path in bad)
    assert f"skipped {skipped}" in err and "failed-alerts file" in err

    status, out, err = run_cli(["validate", str(alerts)], capsys)
    assert status == 1 and all(str(path) in err for path in bad)
    assert f"skipped {skipped}" in err
    assert "all 4 alerts valid (readable files); 2 file problem(s)" in out

    output = tmp_path / "parquet"
    status, out, err = run_cli(["to-parquet", str(alerts), "-o", str(output)], capsys)
    assert status == 1 and all(str(path) in err for path in bad)
    assert "4 alerts" in out  # the good file, whole; nothing of the truncated one
    assert pq.read_table(output / "alerts.parquet").num_rows == 4
    assert not [p for p in output.iterdir() if p.name.startswith(".")]  # no temporary file

    for path in bad:
        path.unlink()
    status, out, err = run_cli(["to-parquet", str(alerts), "-o", str(output)], capsys)
    assert status == 0 and "4 alerts" in out and f"skipped {skipped}" in err


def test_failed_alerts_dir_is_skipped_not_validated(good_file, tmp_path, capsys):
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    shutil.copy(good_file, alerts / "1.avro")
    failed = failed_file(alerts, good_file)
    # recognised by its writer schema, not its name or place
    renamed = failed.rename(alerts / "looks-like-alerts.avro")
    status, out, err = run_cli(["validate", str(alerts)], capsys)
    assert status == 0 and "all 4 alerts valid" in out
    assert f"skipped {renamed}" in err


def test_replay_finds_failed_dir_and_says_when_nothing(good_file, tmp_path, capsys):
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    shutil.copy(good_file, alerts / "1.avro")
    # no failed-alert file: nothing to replay, said, exit 0 (a clean night)
    status, _out, err = run_cli(["replay", str(alerts), "--server", "127.0.0.1:9"], capsys)
    assert status == 0 and "nothing to replay" in err
    # an alert file given by name is not a failed-alerts file: one line, exit 2
    status, _out, err = run_cli(["replay", str(alerts / "1.avro")], capsys)
    assert status == 2 and "not alertpack.failedAlert" in err and "Traceback" not in err


@pytest.mark.kafka
def test_replay_of_alert_dir_sends_its_failed_subdir(kafka_broker, good_file, tmp_path, capsys):
    from broker import read_topic

    alerts = tmp_path / "alerts"
    alerts.mkdir()
    shutil.copy(good_file, alerts / "1.avro")
    failed = failed_file(alerts, good_file)
    garbage = make_hostile("garbage", good_file, alerts / "failed")
    argv = ["replay", str(alerts), "--server", kafka_broker.bootstrap, "--topic", "replayed-dir"]
    status, out, err = run_cli(argv, capsys)
    assert "replayed 1 alert(s)" in out and not failed.exists()
    # the garbage file in failed/ may be a damaged failed-alerts file: named, not touched,
    # and the exit status says that something needs a look
    assert status == 1 and garbage.exists()
    assert str(garbage) in err and "not a readable Avro file" in err
    assert len(read_topic(kafka_broker.bootstrap, "replayed-dir", expected=1)) == 1


@pytest.mark.parametrize("kind", ["truncated", "huge-block", "garbage"])
def test_replay_of_damaged_failed_file_is_one_line(good_file, tmp_path, capsys, kind):
    failed = failed_file(tmp_path, good_file)
    damaged = make_hostile(kind, failed, tmp_path)
    status, _out, err = run_cli(["replay", str(damaged), "--server", "127.0.0.1:9"], capsys)
    assert status == 2 and str(damaged) in err and "Traceback" not in err


def test_show_with_unreadable_cutout_is_not_success(good_file, tmp_path, capsys):
    with good_file.open("rb") as stream:
        reader = fastavro.reader(stream)
        records, schema = list(reader), reader.writer_schema
    records[0]["cutoutScience"] = b"SIMPLE  = T this is not FITS"
    damaged = tmp_path / "bad-cutout.avro"
    with damaged.open("wb") as stream:
        fastavro.writer(stream, schema, records[:1])
    plot = tmp_path / "plot.png"
    status, _out, err = run_cli(["show", str(damaged), "-o", str(plot)], capsys)
    assert status == 1 and "cutoutScience unreadable" in err and plot.exists()


@pytest.mark.parametrize("command", ["show", "to-parquet", "package", "consume"])
def test_output_path_under_a_file_is_refused_before_the_work(good_file, tmp_path, capsys, command):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    target = blocker / ("plot.png" if command == "show" else "out")
    argv = {
        "show": ["show", str(good_file), "-o", str(target)],
        "to-parquet": ["to-parquet", str(good_file), "-o", str(target)],
        "package": ["package", "--sample", "-o", str(target)],
        # an unreachable broker: the output is checked first
        "consume": ["consume", "--server", "127.0.0.1:9", "--topic", "t", "--out", str(target)],
    }[command]
    status, _out, err = run_cli(argv, capsys)
    assert status == 2 and str(blocker) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
