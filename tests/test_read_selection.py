"""--where/--object on the read tools, one signed S/N and one way of printing Kafka positions."""

from __future__ import annotations

import json
import re

import fastavro
import pyarrow.parquet as pq
import pytest
from lsst.alert.packet import retrieve_alerts

from alertpack.cli import main
from alertpack.schema import load_schema, pack_wire
from alertpack.tools.browse.index import AlertIndex
from alertpack.tools.consume import ConsumedAlert
from alertpack.tools.inspection import summarize_alert
from alertpack.tools.plotting import plot_alert
from alertpack.tools.reading import LoadedAlert
from alertpack.tools.selection import quantity_values
from test_reading import build_alert, write_alert_file

SCHEMA = load_schema("11.1")
POSITION = re.compile(r"^(?P<topic>[\w.-]+)\[(?P<partition>\d+)\]@(?P<offset>\d+)$")


@pytest.fixture(scope="module")
def records():
    """Six alerts of six objects; ra = 150 + 0.01 * number."""
    return [build_alert(SCHEMA, number) for number in range(6)]


@pytest.fixture
def alert_file(tmp_path, records):
    return write_alert_file(tmp_path / "six.avro", SCHEMA, records)


def _ids(records, numbers):
    return [records[n]["diaSourceId"] for n in numbers]


def test_inspect_and_to_parquet_select_with_where_and_object(alert_file, records, tmp_path,
                                                             capsys):
    assert main(["inspect", "--json", str(alert_file), "--where", "ra > 150.025"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["alertId"] for row in rows] == _ids(records, [3, 4, 5])
    assert rows[0]["location"] == f"{alert_file}#3"
    objects = [records[n]["diaObject"]["diaObjectId"] for n in (1, 4)]
    argv = ["inspect", "--json", str(alert_file), "--object", str(objects[0]),
            "--object", str(objects[1])]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["alertId"] for row in rows] == _ids(records, [1, 4])
    # both together must hold; --max counts the selected alerts
    assert main([*argv, "--where", "ra > 150.025"]) == 0
    assert [json.loads(line)["alertId"] for line in capsys.readouterr().out.splitlines()] == \
        _ids(records, [4])
    assert main(["inspect", "--json", str(alert_file), "--where", "ra > 150.005",
                 "--max", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["inspect", str(alert_file), "--where", "ra > 999"]) == 0
    assert "no alerts selected" in capsys.readouterr().err

    out = tmp_path / "pq"
    assert main(["to-parquet", str(alert_file), "-o", str(out), "--where", "ra > 150.025"]) == 0
    table = pq.read_table(out / "alerts.parquet")
    assert table.column("diaSourceId").to_pylist() == _ids(records, [3, 4, 5])
    history = pq.read_table(out / "prvDiaSources.parquet")
    assert set(history.column("alert_diaSourceId").to_pylist()) == set(_ids(records, [3, 4, 5]))
    assert history.num_rows == sum(len(records[n]["prvDiaSources"]) for n in (3, 4, 5))

    assert main(["to-parquet", str(alert_file), "-o", str(out), "--where", "ra > 999"]) == 0
    assert "no alerts selected" in capsys.readouterr().err
    assert pq.read_table(out / "alerts.parquet").num_rows == 0
    assert main(["to-parquet", str(alert_file), "-o", str(out), "--where", "mag >"]) == 2
    assert "--where: selection 'mag >'" in capsys.readouterr().err


def test_signal_to_noise_is_signed_the_same_everywhere(tmp_path):
    record = build_alert(SCHEMA, 2)
    # Rubin's snr is unsigned; a negative difference has a negative flux and isNegative
    record["diaSource"].update(psfFlux=-600.0, psfFluxErr=80.0, snr=7.5, isNegative=True)
    loaded = LoadedAlert("memory", 0, SCHEMA, SCHEMA.definition["name"], record, 0)
    assert summarize_alert(loaded)["snr"] == pytest.approx(-7.5)
    assert quantity_values(record, ["snr"])["snr"] == pytest.approx(-7.5)
    consumed = ConsumedAlert(alert=record, schema=SCHEMA, schema_id=SCHEMA.schema_id,
                             payload=b"", key=None, topic="t", partition=2, offset=17,
                             timestamp_ms=None)
    assert "snr=-7.5" in consumed.summary().split()
    assert "S/N -7.5" in plot_alert(record).get_suptitle()
    index = AlertIndex()
    index.add_alert(record, SCHEMA.packet_schema.serialize(record), SCHEMA, "kafka://x/t",
                    consumed.label)
    assert index.summary(0)["snr"] == pytest.approx(-7.5)
    # a positive one keeps its sign, and without snr the ratio psfFlux/psfFluxErr is used
    record["diaSource"].update(psfFlux=600.0, isNegative=False, snr=None)
    assert summarize_alert(loaded)["snr"] == pytest.approx(7.5)
    assert "S/N 7.5" in plot_alert(record).get_suptitle()


def _produce(server, topic, records):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": server})
    for record in records:
        producer.produce(topic, pack_wire(SCHEMA.schema_id,
                                          SCHEMA.packet_schema.serialize(record)))
    assert producer.flush(10) == 0


@pytest.mark.kafka
def test_kafka_read_tools_select_and_print_positions(kafka_broker, records, tmp_path, capsys):
    server, topic = kafka_broker.bootstrap, "read-selection"
    broken = [dict(record) for record in records]
    broken[5]["cutoutDifference"] = broken[5]["cutoutDifference"].replace(b"WCSAXES ",
                                                                          b"wcsaxes ")
    _produce(server, topic, broken)
    source = ["--server", server, "--topic", topic, "--from-beginning", "--timeout", "1.5"]
    selected = ["--where", "ra > 150.025"]
    # --max counts selected alerts: the reads end at the third, without waiting for --timeout
    assert main(["inspect", *source, *selected, "--max", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert len(lines) == 3
    for line in lines:
        assert POSITION.match(line.split()[-1]), line
    assert main(["inspect", "--json", *source, *selected, "--max", "3"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(row["alertId"] for row in rows) == _ids(records, [3, 4, 5])
    assert all(POSITION.match(row["location"]) for row in rows)

    assert main(["consume", *source, *selected, "--max", "3"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 3 and all(POSITION.match(line.split()[0]) for line in lines)
    assert "read 3 selected alert(s)" in captured.err

    # validate reads a topic too; a problem names the message where it is
    assert main(["validate", *source, "--max", "6"]) == 1
    captured = capsys.readouterr()
    (problem,) = [line for line in captured.out.splitlines() if "error:" in line]
    where, rest = problem.split(" ", 1)
    assert POSITION.match(where) and rest.startswith(f"id={records[5]['diaSourceId']}: ")
    assert "cutoutDifference: fitsverify: *** Error" in rest
    assert captured.out.splitlines()[-1] == "1 of 6 alerts invalid (1 errors)"
    assert main(["validate", *source, "--where", "ra < 150.045"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "all 5 alerts valid"

    # --out writes the selected alerts only; a group commits the others' offsets too
    out = tmp_path / "out"
    argv = ["consume", *source, *selected, "--out", str(out), "--group", "selecting"]
    assert main(argv) == 0
    assert "left out 3 not selected" in capsys.readouterr().err
    written = []
    for path in out.glob("*.avro"):
        with path.open("rb") as stream:
            written += [r["diaSourceId"] for r in retrieve_alerts(stream)[1]]
            stream.seek(0)
            fastavro.reader(stream)
    assert sorted(written) == _ids(records, [3, 4, 5])
    assert main(["consume", *source, "--group", "selecting"]) == 0
    assert capsys.readouterr().out == ""  # nothing left for the group
