"""Tests of ``alertpack to-parquet`` (alertpack.tools.parquet), checked against the Avro input."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alertpack.cli import main
from alertpack.errors import InputError
from alertpack.schema import load_schema
from alertpack.tools.parquet import ParquetLayout, alerts_to_parquet, arrow_type
from test_reading import OFFICIAL_SAMPLES, build_alert, consistent_alert_file, write_alert_file


def _records(path):
    with open(path, "rb") as stream:
        return list(fastavro.reader(stream))


def _writer_schema(path):
    with open(path, "rb") as stream:
        return fastavro.reader(stream).writer_schema


def _named(definition, found):
    if isinstance(definition, list):
        for branch in definition:
            _named(branch, found)
    elif isinstance(definition, dict):
        if definition.get("type") == "record":
            found[definition["name"]] = definition
        for avro_field in definition.get("fields", []):
            _named(avro_field["type"], found)
        if "items" in definition:
            _named(definition["items"], found)
    return found


def _kind(avro_type, named):
    """("record", def) / ("array", item record) / ("value", None) of a field type."""
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    for branch in branches:
        branch = named.get(branch, branch) if isinstance(branch, str) else branch
        if isinstance(branch, dict) and branch.get("type") == "record":
            return "record", branch
        if isinstance(branch, dict) and branch.get("type") == "array":
            items = branch["items"]
            return "array", named.get(items, items) if isinstance(items, str) else items
    return "value", None


def _expected_columns(writer_schema):
    """The tables and columns the documented layout gives, from the Avro schema alone."""
    named = _named(writer_schema, {})
    fields = {f["name"]: f["type"] for f in writer_schema["fields"]}
    source_fields = [f["name"] for f in _kind(fields["diaSource"], named)[1]["fields"]]
    alerts = list(source_fields)
    lists = {}
    for name, avro_type in fields.items():
        kind, record = _kind(avro_type, named)
        if name == "diaSource":
            continue
        if kind == "array":
            lists[name] = ["alert_diaSourceId", *(f["name"] for f in record["fields"])]
        elif kind == "record":
            alerts += [f"{name}_{f['name']}" for f in record["fields"]]
        else:
            alerts.append(f"alert_{name}" if name in source_fields else name)
    return alerts, lists


def _assert_equal(parquet_value, avro_value, arrow_field):
    if avro_value is None:
        assert parquet_value is None, arrow_field.name
    elif pa.types.is_float32(arrow_field.type):
        assert parquet_value == np.float32(avro_value), arrow_field.name
    else:
        assert parquet_value == avro_value, arrow_field.name


def _check_against_avro(output, records, writer_schema):
    """Every table and column the Avro schema gives is there, and every cell equals its value."""
    alert_columns, list_columns = _expected_columns(writer_schema)
    assert sorted(p.stem for p in output.glob("*.parquet")) == sorted(["alerts", *list_columns])
    alerts = pq.read_table(output / "alerts.parquet").to_pylist()
    schema = pq.read_schema(output / "alerts.parquet")
    assert sorted(schema.names) == sorted(alert_columns)
    assert len(alerts) == len(records)
    for row, record in zip(alerts, records, strict=True):
        for name in alert_columns:
            arrow_field = schema.field(name)
            if name in record["diaSource"]:
                expected = record["diaSource"][name]
            elif name.startswith("alert_"):
                expected = record[name.removeprefix("alert_")]
            elif name in record:
                expected = record[name]
            else:
                (parent,) = [key for key in record if name.startswith(f"{key}_")]
                child = name.removeprefix(f"{parent}_")
                expected = None if record[parent] is None else record[parent][child]
            _assert_equal(row[name], expected, arrow_field)
    for list_name, columns in list_columns.items():
        table = pq.read_table(output / f"{list_name}.parquet")
        assert table.schema.names == columns
        rows = table.to_pylist()
        expected_rows = [
            (record["diaSource"]["diaSourceId"], item)
            for record in records
            for item in record[list_name] or []
        ]
        assert len(rows) == len(expected_rows)
        for row, (parent, item) in zip(rows, expected_rows, strict=True):
            assert row["alert_diaSourceId"] == parent
            for arrow_field in table.schema:
                if arrow_field.name != "alert_diaSourceId":
                    _assert_equal(row[arrow_field.name], item[arrow_field.name], arrow_field)


@pytest.mark.parametrize("version", ["3.0", "7.4", "9.0", "11.1"])
def test_official_samples_flatten_cell_by_cell(tmp_path, capsys, version):
    (sample,) = [p for p in OFFICIAL_SAMPLES if p.parts[-4:-2] == tuple(version.split("."))]
    assert main(["to-parquet", str(sample), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "alerts.parquet: 1 alerts" in out and "prvDiaSources.parquet: 2 rows" in out
    _check_against_avro(tmp_path / "out", _records(sample), _writer_schema(sample))
    if version in ("3.0", "7.4"):
        assert (tmp_path / "out" / "prvDiaNondetectionLimits.parquet").exists()


def test_batches_cutouts_and_null_records(tmp_path):
    schema = load_schema("11.1")
    records = [build_alert(schema, number, n_previous=number % 4, n_forced=number % 3,
                           cutouts=number % 2 == 0) for number in range(7)]
    records[3]["diaObject"] = None
    records[5]["prvDiaForcedSources"] = None
    path = write_alert_file(tmp_path / "alerts.avro", schema, records)
    written = alerts_to_parquet(path, tmp_path / "out", batch_size=3)
    assert {name: rows for name, (_, rows) in written.items()} == {
        "alerts": 7, "prvDiaSources": sum(n % 4 for n in range(7)),
        "prvDiaForcedSources": sum(n % 3 for n in range(7) if n != 5),
    }
    _check_against_avro(tmp_path / "out", _records(path), _writer_schema(path))
    metadata = pq.ParquetFile(tmp_path / "out" / "alerts.parquet").metadata
    assert metadata.num_row_groups == 3  # streamed in batches of 3 alerts
    alerts = pq.read_table(tmp_path / "out" / "alerts.parquet")
    assert alerts.column("cutoutScience")[0].as_py() == records[0]["cutoutScience"]
    assert alerts.column("cutoutScience")[1].as_py() is None
    assert alerts.column("diaObject_diaObjectId")[3].as_py() is None
    assert alerts.column("alert_diaSourceId").to_pylist() == alerts.column(
        "diaSourceId").to_pylist()
    types = {f.name: f for f in alerts.schema}
    assert types["psfFlux"].type == pa.float32() and types["psfFlux"].nullable
    assert types["ra"].type == pa.float64() and not types["ra"].nullable
    assert types["detector"].type == pa.int32() and types["cutoutScience"].type == pa.binary()
    assert types["diaObject_ra"].nullable  # the diaObject record itself can be null
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left


def test_layout_follows_the_avro_schema():
    layout = ParquetLayout.from_avro(load_schema("7.4").definition)
    assert list(layout.list_schemas) == [
        "prvDiaSources", "prvDiaForcedSources", "prvDiaNondetectionLimits"]
    names = layout.alerts_schema.names
    assert names[0] == "diaSourceId" and "alertId" in names and "ssObject_ssObjectId" in names
    assert layout.list_schemas["prvDiaSources"].names[:2] == ["alert_diaSourceId", "diaSourceId"]
    timestamp = {"type": "long", "logicalType": "timestamp-micros"}
    assert arrow_type(timestamp, {}) == (pa.timestamp("us", tz="UTC"), False)
    assert arrow_type(["null", "float"], {}) == (pa.float32(), True)
    with pytest.raises(InputError, match="union of"):
        arrow_type(["null", "int", "string"], {}, "diaSource.odd")


def test_mixed_versions_are_refused_without_partial_output(tmp_path, capsys):
    first = consistent_alert_file(tmp_path, version="11.1", n_alerts=1)
    second = consistent_alert_file(tmp_path, version="7.4", n_alerts=1)
    output = tmp_path / "out"
    assert main(["to-parquet", str(first), str(second), "-o", str(output)]) == 2
    error = capsys.readouterr().err
    assert "lsst.v7_4.alert" in error and "own output directory" in error
    assert not list(output.iterdir())


def test_memory_is_bounded_by_the_batch_not_the_input(tmp_path):
    schema = load_schema("11.1")
    template = [build_alert(schema, number, cutouts=False) for number in range(10)]
    parsed = fastavro.parse_schema(schema.definition)
    peaks = {}
    alerts_to_parquet(write_alert_file(tmp_path / "warm.avro", schema, template[:2]),
                      tmp_path / "warm")
    for n_alerts in (300, 1200):
        path = tmp_path / f"{n_alerts}.avro"
        with path.open("wb") as stream:
            fastavro.writer(stream, parsed, (template[i % 10] for i in range(n_alerts)))
        tracemalloc.start()
        written = alerts_to_parquet(path, tmp_path / f"out{n_alerts}", batch_size=100)
        peaks[n_alerts] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert written["alerts"][1] == n_alerts
    assert peaks[1200] < 1.5 * peaks[300], peaks


def test_to_parquet_in_a_subprocess(tmp_path):
    consistent_alert_file(tmp_path, n_alerts=2)
    completed = subprocess.run(
        [sys.executable, "-m", "alertpack.cli", "to-parquet", str(tmp_path),
         "-o", str(tmp_path / "tables")],
        capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert pq.read_table(tmp_path / "tables" / "prvDiaForcedSources.parquet").num_rows == 8
