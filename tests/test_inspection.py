"""Tests of ``alertpack inspect`` and ``alertpack validate`` (alertpack.tools.inspection)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import fastavro
import numpy as np
import pytest

from alertpack.cli import main
from alertpack.schema import load_schema
from alertpack.tools.inspection import (
    check_history,
    check_ids,
    summarize_alert,
    validate_alert,
    validate_paths,
)
from alertpack.tools.reading import LoadedAlert, iter_alerts
from test_reading import (
    OFFICIAL_SAMPLES,
    SCHEMA_ROOT,
    SOURCE_ID_BASE,
    build_alert,
    consistent_alert_file,
    make_cutout,
    write_alert_file,
)


def _loaded(record, version="11.1"):
    return LoadedAlert("memory", 0, load_schema(version), f"lsst.v{version}.alert", record, 0)


def test_inspect_table_lists_every_official_sample(capsys):
    assert main(["inspect", *map(str, OFFICIAL_SAMPLES)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["alertId", "diaObjectId", "band"]
    assert len(lines) == 1 + len(OFFICIAL_SAMPLES)
    for line in lines[1:]:
        cells = line.split()
        assert cells[0] == "1231321321" and cells[1] == "281323062375219201"
        assert cells[2] == "r" and cells[-1] == "fakeAlert.avro#0"
    versions = {line.split()[-2] for line in lines[1:]}
    assert {"3.0", "7.4", "11.1"} <= versions


def test_inspect_json_matches_the_avro_content(tmp_path, capsys):
    path = consistent_alert_file(tmp_path, version="11.1", n_alerts=3)
    assert main(["inspect", "--json", str(tmp_path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    with path.open("rb") as stream:
        records = list(fastavro.reader(stream))
    assert len(rows) == len(records) == 3
    for row, record, loaded in zip(rows, records, iter_alerts(path), strict=True):
        source = record["diaSource"]
        assert row["alertId"] == record["diaSourceId"] == source["diaSourceId"]
        assert row["diaObjectId"] == record["diaObject"]["diaObjectId"]
        assert row["band"] == source["band"]
        assert row["mjd"] == source["midpointMjdTai"]
        assert (row["ra"], row["dec"]) == (source["ra"], source["dec"])
        assert row["snr"] == pytest.approx(source["snr"])
        assert row["nPrvDiaSources"] == len(record["prvDiaSources"])
        assert row["nPrvDiaForcedSources"] == len(record["prvDiaForcedSources"])
        for name in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
            assert row[name] == len(record[name])
        assert row["packetSize"] == loaded.packet_size
        assert row["schema"] == "11.1" and row["source"] == str(path)


def test_inspect_max_stops_early(tmp_path, capsys):
    consistent_alert_file(tmp_path, n_alerts=3)
    assert main(["inspect", "--json", "--max", "2", str(tmp_path)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_summary_of_an_alert_without_history_or_cutouts():
    schema = load_schema("11.1")
    record = build_alert(schema, n_previous=0, n_forced=0, cutouts=False)
    record["prvDiaSources"] = None
    record["diaSource"]["snr"] = float("nan")
    row = summarize_alert(_loaded(record))
    assert row["nPrvDiaSources"] is None and row["nPrvDiaForcedSources"] == 0
    assert row["cutoutScience"] is None
    assert row["snr"] is None  # NaN is not JSON
    json.dumps(row)


def test_inspect_without_source_is_a_one_line_error(capsys, monkeypatch):
    monkeypatch.delenv("AP_KAFKA_SERVER", raising=False)
    monkeypatch.delenv("AP_KAFKA_TOPIC", raising=False)
    assert main(["inspect"]) == 2
    error = capsys.readouterr().err
    assert "--server and --topic" in error and error.count("\n") == 1


def test_inspect_bad_file_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "x.avro"
    bad.write_text("hello")
    assert main(["inspect", str(bad)]) == 2
    error = capsys.readouterr().err
    assert str(bad) in error and "not an alert file" in error


@pytest.mark.parametrize("version", ["11.1", "7.4", "3.0"])
def test_consistent_alerts_validate(tmp_path, capsys, version):
    consistent_alert_file(tmp_path, version=version, n_alerts=2)
    assert main(["validate", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "all 2 alerts valid"


@pytest.mark.parametrize("version", ["3/0", "7/0", "11/1"])
def test_official_samples_pass_with_convention_warnings(capsys, version):
    sample = SCHEMA_ROOT / version / "sample_data" / "fakeAlert.avro"
    assert main(["validate", str(sample)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "all 1 alerts valid; 5 warnings in 1 alerts"
    problems = lines[:-1]
    assert all(line.startswith(f"{sample}#0 id=1231321321: warning: ") for line in problems)
    text = "\n".join(problems)
    top = "alertId" if version != "11/1" else "diaSourceId"
    assert f"ids: {top} 1231321321 differs from diaSource.diaSourceId 281323062375219200" in text
    assert "ids: diaSource.diaObjectId None differs from diaObject.diaObjectId" in text
    history = "not in time order" if version == "11/1" else "is at or after the current"
    assert "warning: history: prvDiaSources" in text and history in text
    assert main(["validate", "--strict", str(sample)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "all 1 alerts valid; 5 warnings in 1 alerts"


def test_every_official_sample_conforms_to_its_schema():
    for report in validate_paths(OFFICIAL_SAMPLES):
        assert report.valid and not report.errors, report.alert.source
        assert any(p.check == "ids" for p in report.warnings)


def test_contradicting_ids_and_values_outside_their_type_are_errors(tmp_path, capsys):
    schema = load_schema("11.1")
    record = build_alert(schema, cutouts=False)
    record["diaSource"]["diaObjectId"] = record["diaObject"]["diaObjectId"] + 1
    record["prvDiaSources"][0]["diaObjectId"] = 77
    write_alert_file(tmp_path / "bad.avro", schema, [record])
    assert main(["validate", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "1 of 1 alerts invalid (2 errors)"
    text = "\n".join(lines)
    assert "error: ids: diaSource.diaObjectId" in text
    assert "error: ids: prvDiaSources[0]" in text and "belongs to diaObject 77" in text


def test_schema_option_checks_against_another_version(tmp_path, capsys):
    path = consistent_alert_file(tmp_path, version="7.4", n_alerts=1)
    assert main(["validate", "--schema", "11.1", str(path)]) == 1
    out = capsys.readouterr().out
    assert "error: schema: diaSourceId: None is not a valid long (schema 11.1)" in out
    assert "error: schema: ... and more fields that do not match 11.1" in out
    assert main(["validate", "--schema", "99.0", str(path)]) == 2
    assert "not shipped" in capsys.readouterr().err


def test_schema_walk_names_the_bad_field():
    schema = load_schema("11.1")
    record = build_alert(schema, cutouts=False)
    record["diaSource"]["ra"] = "150.0"
    record["prvDiaSources"][1]["visit"] = 2**70
    messages = [str(p) for p in validate_alert(_loaded(record), cutouts=False)]
    assert messages == [
        "error: schema: diaSource.ra: '150.0' is not a valid double (schema 11.1)",
        f"error: schema: prvDiaSources[1].visit: {2**70} is not a valid long (schema 11.1)",
    ]


def test_a_float_field_beyond_float32_is_an_error():
    # an Avro writer turns it into infinity: only a record in memory can carry it
    record = build_alert(load_schema("11.1"), cutouts=False)
    record["diaSource"]["psfFlux"] = 1e39
    record["diaSource"]["ra"] = 1e39  # a double: fine
    assert [str(p) for p in validate_alert(_loaded(record), cutouts=False)] == [
        "error: schema: diaSource.psfFlux: 1e+39 is not a valid null or float (schema 11.1)"
    ]


def test_writer_schema_that_misuses_a_rubin_name_is_reported(tmp_path):
    schema = load_schema("11.1")
    altered = json.loads(json.dumps(schema.definition))
    altered["fields"][1]["doc"] = "docs do not matter"
    altered["fields"] = [f for f in altered["fields"] if f["name"] != "target_name"]
    record = build_alert(schema)
    del record["target_name"]
    path = tmp_path / "altered.avro"
    with path.open("wb") as stream:
        fastavro.writer(stream, altered, [record])
    (report,) = list(validate_paths([path]))
    assert [p.check for p in report.problems] == ["schema"]
    assert "differs from the definition lsst-alert-packet ships" in report.problems[0].message


def test_id_checks():
    schema = load_schema("11.1")
    record = build_alert(schema, cutouts=False)
    assert check_ids(record) == []
    record["prvDiaForcedSources"][2]["diaObjectId"] = 77
    record["prvDiaSources"].append(dict(record["diaSource"]))
    messages = [p.message for p in check_ids(record)]
    assert messages == [
        f"prvDiaForcedSources[2] (diaForcedSourceId {SOURCE_ID_BASE + 52}) belongs to "
        f"diaObject 77, not to the alert's diaObject {record['diaObject']['diaObjectId']}",
        f"the current diaSource {SOURCE_ID_BASE} is repeated in prvDiaSources",
    ]
    record["diaObject"] = None
    record["prvDiaSources"] = record["prvDiaForcedSources"] = None
    (missing,) = check_ids(record)
    assert "carries no diaObject" in missing.message and missing.severity == "warning"


def test_history_checks():
    schema = load_schema("7.4")
    record = build_alert(schema, n_previous=4, cutouts=False)
    assert check_history(record) == []
    previous = record["prvDiaSources"]
    previous[1], previous[2] = previous[2], previous[1]
    record["prvDiaForcedSources"][-1]["midpointMjdTai"] = (
        record["diaSource"]["midpointMjdTai"] + 1.0
    )
    messages = [p.message for p in check_history(record)]
    assert {p.severity for p in check_history(record)} == {"warning"}
    assert len(messages) == 2
    assert messages[0].startswith("prvDiaSources are not in time order: [1] at MJD 60856")
    assert messages[1].startswith("prvDiaForcedSources[3] at MJD 60863.000000 is after")
    record["prvDiaForcedSources"].reverse()
    assert "prvDiaForcedSources are not in time order" in check_history(record)[1].message


def _three_d_cutout() -> bytes:
    from astropy.io import fits

    buffer = io.BytesIO()
    fits.PrimaryHDU(np.zeros((2, 5, 5), dtype=np.float32)).writeto(buffer)
    return buffer.getvalue()


def test_cutout_checks_use_astropy_and_fitsverify(tmp_path, capsys):
    schema = load_schema("11.1")
    record = build_alert(schema)
    good = record["cutoutScience"]
    record["cutoutScience"] = good.replace(b"WCSAXES ", b"wcsaxes ")
    record["cutoutTemplate"] = _three_d_cutout()
    record["cutoutDifference"] = b"not a FITS file at all" * 200
    write_alert_file(tmp_path / "bad.avro", schema, [record])
    assert main(["validate", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    text = "\n".join(lines)
    assert 'error: cutouts: cutoutScience: fitsverify: *** Error:   Keyword #7: Name "wcsaxes"' \
        in text
    assert "cutouts: cutoutTemplate image is 3-D (shape (2, 5, 5)), not 2-D" in text
    assert "cutouts: cutoutDifference does not open with astropy.io.fits" in text
    assert "cutouts: cutoutDifference: fitsverify:" in text
    assert make_cutout(1.0, 2.0) != good  # cutouts differ per position


def test_validate_command_in_a_subprocess_without_fitsverify(tmp_path):
    path = consistent_alert_file(tmp_path, n_alerts=3)
    command = [sys.executable, "-m", "alertpack.cli", "validate", str(tmp_path)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "all 3 alerts valid"
    assert completed.stderr == ""
    # without fitsverify on the PATH (a pip user): one notice, the checks skipped, no errors
    environment = {**os.environ, "PATH": str(tmp_path)}
    completed = subprocess.run(command, capture_output=True, text=True, env=environment,
                               check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "all 3 alerts valid (cutouts not checked with fitsverify)"
    (notice,) = completed.stderr.splitlines()
    assert "fitsverify is not installed" in notice and "apt-get install fitsverify" in notice
    # astropy still opens every cutout: a broken one is an error without fitsverify too
    schema = load_schema("11.1")
    record = build_alert(schema, 7)
    record["cutoutDifference"] = record["cutoutDifference"][:3000]
    write_alert_file(path, schema, [record])
    completed = subprocess.run(command, capture_output=True, text=True, env=environment,
                               check=False)
    assert completed.returncode == 1
    assert "error: cutouts: cutoutDifference does not open with astropy.io.fits" \
        in completed.stdout
    # --no-fitsverify: no notice
    completed = subprocess.run([*command, "--no-fitsverify"], capture_output=True, text=True,
                               env=environment, check=False)
    assert completed.returncode == 1 and completed.stderr == ""


def test_validate_batches_fitsverify_and_keeps_each_alerts_problems(tmp_path, capsys,
                                                                   monkeypatch):
    import alertpack.tools.cutout_checks as cutout_checks

    monkeypatch.setattr(cutout_checks, "FITSVERIFY_BATCH", 7)  # several runs, stamps split
    schema = load_schema("11.1")
    records = [build_alert(schema, number) for number in range(12)]
    bad = {3: "cutoutScience", 8: "cutoutTemplate", 11: "cutoutDifference"}
    for number, name in bad.items():
        records[number][name] = records[number][name].replace(b"WCSAXES ", b"wcsaxes ")
    # standard FITS with the pixels in an extension (as afw writes stamps): valid, astropy opens it
    from astropy.io import fits

    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((9, 9), np.float32))]).writeto(buffer)
    records[5]["cutoutScience"] = buffer.getvalue()
    path = write_alert_file(tmp_path / "a.avro", schema, records)
    reports = list(validate_paths([path], runs=2))
    assert [r.alert.alert_id for r in reports] == [r["diaSourceId"] for r in records]
    for number, report in enumerate(reports):
        messages = [str(p) for p in report.problems]
        if number in bad:
            assert messages and all(f"{bad[number]}: fitsverify: *** Error" in m
                                    for m in messages), messages
        else:
            assert messages == []
    # the same, one alert at a time
    for number in bad:
        single = [str(p) for p in validate_alert(reports[number].alert)]
        assert single == [str(p) for p in reports[number].problems]
    # --where/--object: only the selected alerts are checked
    assert main(["validate", str(path), "--where", f"id == {records[3]['diaSourceId']}"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "1 of 1 alerts invalid (1 errors)"
    assert main(["validate", str(path), "--object", str(records[0]["diaObject"]["diaObjectId"]),
                 "--object", str(records[1]["diaObject"]["diaObjectId"])]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "all 2 alerts valid"
    assert main(["validate", str(path), "--where", "band == r"]) == 2
    error = capsys.readouterr().err
    assert "--where: selection 'band == r'" in error and "quoted: 'r'" in error
    assert main(["validate", str(path), "--where", "band == 'nope'"]) == 1
    assert "no alerts selected" in capsys.readouterr().err


@pytest.mark.kafka
def test_inspect_reads_a_kafka_topic(kafka_broker, capsys):
    from confluent_kafka import Producer

    from alertpack.schema import pack_wire

    schema = load_schema("11.1")
    records = [build_alert(schema, number) for number in range(3)]
    payloads = {r["diaSourceId"]: schema.packet_schema.serialize(r) for r in records}
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for payload in payloads.values():
        producer.produce("inspect-topic", pack_wire(schema.schema_id, payload))
    assert producer.flush(10) == 0
    arguments = ["inspect", "--json", "--server", kafka_broker.bootstrap,
                 "--topic", "inspect-topic", "--from-beginning", "--timeout", "3"]
    assert main(arguments) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(row["alertId"] for row in rows) == sorted(payloads)
    for row in rows:
        assert row["packetSize"] == len(payloads[row["alertId"]])
        assert row["schema"] == "11.1" and row["nPrvDiaSources"] == 3
        assert row["source"] == f"kafka://{kafka_broker.bootstrap}/inspect-topic"
    assert main([*arguments, "--max", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["inspect", "x.avro", "--topic", "t"]) == 2
    assert "not both" in capsys.readouterr().err


def test_validate_shows_a_progress_bar_on_a_terminal_only(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    consistent_alert_file(tmp_path, n_alerts=3)
    command = [sys.executable, "-m", "alertpack.cli", "validate", str(tmp_path)]
    # stderr a terminal: a bar (tqdm) that counts the alerts of the files
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=follower, check=False,
                               timeout=120)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed once everything was read
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert completed.returncode == 0
    assert completed.stdout.decode().strip() == "all 3 alerts valid"
    assert b"3/3" in shown and b"alert" in shown
    # not a terminal (a log): no bar, no line per alert
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 0 and completed.stderr == ""
