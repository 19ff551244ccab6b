"""The columnar Avro encoder against fastavro, byte for byte, on the official schemas."""

from __future__ import annotations

import copy
import datetime
import io
import math
import struct
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from lsst.alert.packet.io import retrieve_alerts

from alertpack.errors import InputError, UnsupportedSchemaError
from alertpack.packets.avro import (
    AlertEncoder,
    EncodedRows,
    RecordEncoder,
    read_container_payloads,
    write_container,
)
from alertpack.packets.avro_types import avro_field_type
from alertpack.packets.conform import conform_columns
from alertpack.packets.tables import AlertParts, ColumnTable, RecordList, RecordRef, ScalarColumn
from alertpack.schema import load_schema

VERSIONS = ["3.0", "7.4", "9.0", "10.0", "11.1"]
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
DTYPES = {
    "int": np.int32,
    "long": np.int64,
    "float": np.float32,
    "double": np.float64,
    "boolean": np.bool_,
    "string": object,
    "bytes": object,
}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
TEXT_POOL = ["", "g", "r", "é", "漢字", "🔭 alert", "a\x00b", "x" * 300, "ÿ" * 70]

PROPERTY = settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- helpers ------------------------------------------------------------------------------


def record_types(version: str) -> list[str]:
    """Full names of the flat record types an alert of ``version`` carries."""
    schema = load_schema(version)
    names = {
        definition["name"]
        for definition in schema.named_types.values()
        if definition.get("type") == "record" and definition is not schema.definition
    }
    return sorted(names)


RECORD_CASES = [(version, name) for version in VERSIONS for name in record_types(version)]


def field_kind(field: dict[str, Any]) -> tuple[str, bool]:
    """(primitive type name, nullable) of a flat record field."""
    primitive, nullable, _ = avro_field_type(field["type"])
    return primitive, nullable


def without_logical_types(definition: Any) -> Any:
    """The schema with logical types dropped, so extreme longs decode as ints."""
    if isinstance(definition, list):
        return [without_logical_types(branch) for branch in definition]
    if isinstance(definition, dict):
        if "logicalType" in definition:
            return definition["type"]
        out = dict(definition)
        if "fields" in out:
            out["fields"] = [
                {**field, "type": without_logical_types(field["type"])} for field in out["fields"]
            ]
        if "items" in out:
            out["items"] = without_logical_types(out["items"])
        return out
    return definition


def fastavro_bytes(parsed_schema: Any, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed_schema, record)
    return buffer.getvalue()


def same_value(decoded: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(decoded, float):
        if math.isnan(expected):
            return math.isnan(decoded)
        return decoded == expected and math.copysign(1, decoded) == math.copysign(1, expected)
    return decoded == expected


def object_array(values: list[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def assert_rows_match_fastavro(record: dict[str, Any], table: ColumnTable) -> None:
    """Every row: our bytes == fastavro's, and fastavro decodes ours to the row's values."""
    encoded = RecordEncoder(record).encode(table)
    assert len(encoded) == table.n_rows
    assert encoded.offsets[0] == 0 and encoded.offsets[-1] == len(encoded.data)
    writer = fastavro.parse_schema(copy.deepcopy(record))
    reader = fastavro.parse_schema(without_logical_types(record))
    single_precision = {f["name"] for f in record["fields"] if field_kind(f)[0] == "float"}
    for row in range(table.n_rows):
        expected = table.row_dict(row)
        ours = encoded.row(row)
        assert ours == fastavro_bytes(writer, expected), f"row {row} differs from fastavro"
        decoded = fastavro.schemaless_reader(io.BytesIO(ours), reader)
        for name, value in expected.items():
            if name in single_precision and value is not None:
                value = float(np.float32(value))  # what a 4-byte float holds
            assert same_value(decoded[name], value), (name, decoded[name], value)
    assert encoded.rows(np.arange(table.n_rows)) == encoded.data.tobytes()


# --- random tables --------------------------------------------------------------------------


def _hypothesis_column(primitive: str, n: int) -> st.SearchStrategy:
    if primitive == "int":
        return hnp.arrays(np.int32, n)
    if primitive == "long":
        return hnp.arrays(np.int64, n)
    if primitive == "float":
        return hnp.arrays(np.float32, n, elements=st.floats(width=32))
    if primitive == "double":
        return hnp.arrays(np.float64, n, elements=st.floats())
    if primitive == "boolean":
        return hnp.arrays(np.bool_, n)
    if primitive == "string":
        return st.lists(st.text(max_size=12), min_size=n, max_size=n).map(object_array)
    if primitive == "bytes":
        return st.lists(st.binary(max_size=12), min_size=n, max_size=n).map(object_array)
    if primitive == "null":
        return st.just(object_array([None] * n))
    raise AssertionError(primitive)


@st.composite
def small_tables(draw: st.DrawFn, record: dict[str, Any], max_rows: int = 3) -> ColumnTable:
    """Tables whose every value hypothesis chooses (edge floats, ints, unicode)."""
    n = draw(st.integers(0, max_rows))
    columns, nulls = {}, {}
    for field in record["fields"]:
        primitive, nullable = field_kind(field)
        columns[field["name"]] = draw(_hypothesis_column(primitive, n))
        if nullable:
            nulls[field["name"]] = draw(st.none() | hnp.arrays(np.bool_, n))
    return ColumnTable(record, columns, nulls, n)


def _special_floats(dtype: type) -> np.ndarray:
    if dtype is np.float32:
        bits = np.array([0x7F800001, 0xFFC00123, 0x7FC00000, 0x00000001, 0x80000000], "<u4")
    else:
        bits = np.array(
            [0x7FF0000000000001, 0xFFF8000000000123, 0x7FF8000000000000, 1, 1 << 63], "<u8"
        )
    finfo = np.finfo(dtype)
    extremes = np.array([np.inf, -np.inf, finfo.max, finfo.min, finfo.tiny, 0.0], dtype=dtype)
    return np.concatenate([bits.view(dtype), extremes])


def random_column(primitive: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Values with a good share of the awkward ones: extremes, NaN payloads, -0.0, unicode."""
    special = rng.random(n) < 0.3
    if primitive in ("int", "long"):
        low, high = INT32 if primitive == "int" else INT64
        dtype = DTYPES[primitive]
        values = rng.integers(low, high, n, dtype=dtype, endpoint=True)
        small = rng.integers(-200, 200, n).astype(dtype)
        extremes = np.array([low, high, 0, -1, 63, 64, -65], dtype=dtype)
        values = np.where(rng.random(n) < 0.4, small, values)
        return np.where(special, extremes[rng.integers(0, len(extremes), n)], values)
    if primitive in ("float", "double"):
        dtype = DTYPES[primitive]
        values = (rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)).astype(dtype)
        specials = _special_floats(dtype)
        return np.where(special, specials[rng.integers(0, len(specials), n)], values)
    if primitive == "boolean":
        return rng.random(n) < 0.5
    if primitive == "string":
        return object_array([TEXT_POOL[k] for k in rng.integers(0, len(TEXT_POOL), n)])
    if primitive == "bytes":
        return object_array([rng.bytes(int(k)) for k in rng.integers(0, 200, n)])
    if primitive == "null":
        return object_array([None] * n)
    raise AssertionError(primitive)


def random_table(record: dict[str, Any], n: int, rng: np.random.Generator) -> ColumnTable:
    null_fraction = rng.choice([0.0, 0.1, 0.9])
    columns, nulls = {}, {}
    for field in record["fields"]:
        primitive, nullable = field_kind(field)
        columns[field["name"]] = random_column(primitive, n, rng)
        if nullable:
            nulls[field["name"]] = rng.random(n) < null_fraction
    return ColumnTable(record, columns, nulls, n)


# --- records --------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "record_name"), RECORD_CASES)
@PROPERTY
@given(data=st.data())
def test_small_tables_match_fastavro(version: str, record_name: str, data: st.DataObject) -> None:
    record = load_schema(version).named_types[record_name]
    assert_rows_match_fastavro(record, data.draw(small_tables(record)))


@pytest.mark.parametrize(("version", "record_name"), RECORD_CASES)
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_rows=st.sampled_from([0, 1, 200]))
def test_long_tables_match_fastavro(version: str, record_name: str, seed: int, n_rows: int) -> None:
    record = load_schema(version).named_types[record_name]
    assert_rows_match_fastavro(record, random_table(record, n_rows, np.random.default_rng(seed)))


def test_chunked_layout_matches_unchunked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables bigger than one layout chunk are cut and rejoined seamlessly."""
    import alertpack.packets.avro

    record = load_schema("11.1").named_types["lsst.v11_1.diaSource"]
    table = random_table(record, 300, np.random.default_rng(5))
    whole = RecordEncoder(record).encode(table)
    monkeypatch.setattr(alertpack.packets.avro, "_CHUNK_BYTES", 1000)
    chunked = RecordEncoder(record).encode(table)
    assert np.array_equal(whole.data, chunked.data)
    assert np.array_equal(whole.offsets, chunked.offsets)


CUSTOM_RECORD = {
    "type": "record",
    "name": "test.custom",
    "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "maybe_flag", "type": ["boolean", "null"]},
        {"name": "count", "type": ["int", "null"]},
        {"name": "when", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {
            "name": "maybe_when",
            "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}],
        },
        {"name": "label", "type": "string"},
        {"name": "maybe_label", "type": ["string", "null"]},
        {"name": "blob", "type": "bytes"},
        {"name": "maybe_blob", "type": ["null", "bytes"]},
        {"name": "nothing", "type": "null"},
        {"name": "x", "type": ["float", "null"]},
        {"name": "y", "type": ["double", "null"]},
    ],
}


@PROPERTY
@given(data=st.data())
def test_custom_record_null_last_unions_logical_types_bytes(data: st.DataObject) -> None:
    assert_rows_match_fastavro(CUSTOM_RECORD, data.draw(small_tables(CUSTOM_RECORD, 5)))


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_custom_record_long_tables(seed: int) -> None:
    table = random_table(CUSTOM_RECORD, 200, np.random.default_rng(seed))
    assert_rows_match_fastavro(CUSTOM_RECORD, table)


def one_field_table(avro_type: Any, values: Any, nulls: Any = None) -> tuple[dict, ColumnTable]:
    record = {"type": "record", "name": "test.one", "fields": [{"name": "v", "type": avro_type}]}
    values = np.asarray(values) if not isinstance(values, np.ndarray) else values
    nulls_map = {} if nulls is None else {"v": np.asarray(nulls, dtype=bool)}
    return record, ColumnTable(record, {"v": values}, nulls_map, len(values))


@pytest.mark.parametrize(
    ("avro_type", "values"),
    [
        ("long", np.array([0, 1, INT64[1]], dtype=np.uint64)),
        ("long", np.array([-128, 127], dtype=np.int8)),
        ("int", np.array([INT32[0], INT32[1], 0], dtype=np.int64)),
        ("int", np.array([0, 65535], dtype=np.uint16)),
        ("float", np.array([0.1, 1e-40, 3.4028235e38, -0.0, np.nan], dtype=np.float64)),
        ("float", np.array([1.5, -2.0], dtype=np.float16)),
        ("float", np.array([-3, 7], dtype=np.int16)),
        ("double", np.array([0.1, np.nan, -0.0], dtype=np.float32)),
        ("double", np.array([INT32[0], INT32[1]], dtype=np.int32)),
        ("double", np.array([-(2**53), 2**53], dtype=np.int64)),
        ("float", np.array([-(2**24), 2**24], dtype=np.int64)),
        ("double", np.array([1.0, 2.0], dtype=">f8")),
        ("string", np.array(["abc", "", "ünï"], dtype=str)),
        ("bytes", np.array([b"ab", b"", b"\xff"], dtype="S3")),
        ("bytes", object_array([bytearray(b"xy"), b"z"])),
    ],
)
def test_safe_casts_match_fastavro(avro_type: str, values: np.ndarray) -> None:
    record, table = one_field_table(avro_type, values)
    assert_rows_match_fastavro(record, table)


def test_signalling_nan_float32_is_quieted_like_fastavro() -> None:
    signalling = np.array([0x7F800001, 0xFF800002, 0x7FA00000], dtype="<u4").view("<f4")
    record, table = one_field_table("float", signalling)
    encoded = RecordEncoder(record).encode(table)
    for row in range(3):
        expected = fastavro_bytes(fastavro.parse_schema(record), table.row_dict(row))
        assert encoded.row(row) == expected
        assert struct.unpack("<I", expected)[0] & 0x0040_0000  # quiet bit set


def test_placeholders_under_nulls_are_never_read() -> None:
    record, table = one_field_table(
        ["null", "int"], np.array([2**40, 5], dtype=np.int64), nulls=[True, False]
    )
    assert RecordEncoder(record).encode(table).data.tobytes() == b"\x00\x02\x0a"
    strings = object_array([None, "a"])
    record, table = one_field_table(["null", "string"], strings, nulls=[True, False])
    assert RecordEncoder(record).encode(table).data.tobytes() == b"\x00\x02\x02a"


# --- EncodedRows ------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 9), min_size=1, max_size=12),
    picks=st.lists(st.integers(0, 11), max_size=15),
)
def test_encoded_rows_rows_concatenates_in_order(lengths: list[int], picks: list[int]) -> None:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    data = np.random.default_rng(0).integers(0, 256, int(offsets[-1]), dtype=np.uint8)
    rows = EncodedRows(data, offsets)
    picks = [p % len(lengths) for p in picks]
    assert rows.rows(picks) == b"".join(rows.row(p) for p in picks)
    assert rows.row(-1) == data[offsets[-2] :].tobytes()
    assert list(rows.lengths) == lengths


# --- alerts -----------------------------------------------------------------------------------


def _alert_fields(version: str) -> list[tuple[str, str, dict | None, bool]]:
    """(name, kind, record, nullable) per alert field; kind scalar/bytes/record/array."""
    schema = load_schema(version)
    out = []
    for field in schema.definition["fields"]:
        avro_type = field["type"]
        nullable = isinstance(avro_type, list)
        record = schema.record(field["name"])
        if record is None:
            primitive, _ = field_kind(field)
            kind = "bytes" if primitive == "bytes" else "scalar"
            out.append((field["name"], kind, None, nullable))
        else:
            branches = avro_type if nullable else [avro_type]
            is_array = any(isinstance(b, dict) and b.get("type") == "array" for b in branches)
            out.append((field["name"], "array" if is_array else "record", record, nullable))
    return out


@st.composite
def alert_parts(draw: st.DrawFn, version: str) -> AlertParts:
    """Random alerts: null refs, null vs empty lists, shared and reordered rows, cutouts."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_alerts = draw(st.integers(0, 5))
    schema = load_schema(version)
    fields: dict[str, Any] = {}
    tables: dict[str, ColumnTable] = {}
    for name, kind, record, nullable in _alert_fields(version):
        if nullable and draw(st.booleans()) and draw(st.booleans()):
            continue  # absent from the parts: null in every alert
        if kind == "scalar":
            primitive, _ = field_kind(schema.field(name))
            nulls = rng.random(n_alerts) < 0.5 if nullable else None
            fields[name] = ScalarColumn(random_column(primitive, n_alerts, rng), nulls)
        elif kind == "bytes":
            fields[name] = [
                None if draw(st.booleans()) else draw(st.binary(max_size=300))
                for _ in range(n_alerts)
            ]
        else:
            # tables of one record type are shared between fields (diaSource, prvDiaSources)
            if record["name"] not in tables:
                tables[record["name"]] = random_table(record, int(rng.integers(0, 8)), rng)
            table = tables[record["name"]]
            if kind == "record":
                low = -1 if nullable else 0
                if table.n_rows == 0:
                    table = tables[record["name"]] = random_table(record, 1, rng)
                fields[name] = RecordRef(table, rng.integers(low, table.n_rows, n_alerts))
            else:
                counts = rng.integers(0, 4, n_alerts) if table.n_rows else np.zeros(n_alerts, int)
                offsets = np.concatenate([[0], np.cumsum(counts)])
                if draw(st.booleans()):
                    index = rng.integers(0, max(table.n_rows, 1), int(offsets[-1]))
                else:
                    index = np.arange(int(offsets[-1])) % max(table.n_rows, 1)
                present = rng.random(n_alerts) < 0.7 if draw(st.booleans()) else None
                fields[name] = RecordList(table, offsets, index, present)
    return AlertParts(n_alerts, fields)


def assert_alerts_match_fastavro(version: str, parts: AlertParts) -> list[bytes]:
    schema = load_schema(version)
    payloads = AlertEncoder(schema).encode(parts)
    assert len(payloads) == parts.n_alerts
    parsed = fastavro.parse_schema(copy.deepcopy(schema.definition))
    for alert, payload in enumerate(payloads):
        expected = fastavro_bytes(parsed, parts.alert_dict(alert, schema.field_names))
        assert payload == expected, f"alert {alert} differs from fastavro"
    return payloads


@pytest.mark.parametrize("version", VERSIONS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_alerts_match_fastavro(version: str, data: st.DataObject) -> None:
    assert_alerts_match_fastavro(version, data.draw(alert_parts(version)))


def test_null_and_empty_lists_are_distinct() -> None:
    version = "11.1"
    schema = load_schema(version)
    source = random_table(schema.record("diaSource"), 2, np.random.default_rng(1))
    parts = AlertParts(
        3,
        {
            "diaSourceId": ScalarColumn(np.array([1, 2, 3], dtype=np.int64)),
            "diaSource": RecordRef(source, np.array([0, 1, 0])),
            "prvDiaSources": RecordList(
                source, np.array([0, 0, 0, 2]), np.array([1, 0]), np.array([False, True, True])
            ),
        },
    )
    payloads = assert_alerts_match_fastavro(version, parts)
    reader = fastavro.parse_schema(without_logical_types(schema.definition))
    decoded = [fastavro.schemaless_reader(io.BytesIO(p), reader) for p in payloads]
    assert decoded[0]["prvDiaSources"] is None
    assert decoded[1]["prvDiaSources"] == []
    assert [row["diaSourceId"] for row in decoded[2]["prvDiaSources"]] == [
        source.row_dict(1)["diaSourceId"],
        source.row_dict(0)["diaSourceId"],
    ]


def _table_from_rows(record: dict[str, Any], rows: list[dict[str, Any]]) -> ColumnTable:
    columns, nulls = {}, {}
    for field in record["fields"]:
        primitive, nullable = field_kind(field)
        values = [row[field["name"]] for row in rows]
        values = [
            (v - EPOCH) // datetime.timedelta(microseconds=1)
            if isinstance(v, datetime.datetime)
            else v
            for v in values
        ]
        filler = {"string": "", "bytes": b""}.get(primitive, 0)
        filled = [filler if v is None else v for v in values]
        dtype = DTYPES[primitive]
        columns[field["name"]] = (
            object_array(filled) if dtype is object else np.array(filled, dtype=dtype)
        )
        if nullable:
            nulls[field["name"]] = np.array([v is None for v in values], dtype=bool)
    return ColumnTable(record, columns, nulls, len(rows))


def parts_from_alerts(version: str, alerts: list[dict[str, Any]]) -> AlertParts:
    """Columns for decoded alert dicts (slow; the test's independent route to AlertParts)."""
    schema = load_schema(version)
    n = len(alerts)
    fields: dict[str, Any] = {}
    for name, kind, record, _ in _alert_fields(version):
        values = [alert.get(name) for alert in alerts]
        if kind == "bytes":
            fields[name] = values
        elif kind == "scalar":
            primitive, _ = field_kind(schema.field(name))
            nulls = np.array([v is None for v in values])
            filler = "" if primitive == "string" else 0
            filled = [filler if v is None else v for v in values]
            array = object_array(filled) if DTYPES[primitive] is object else np.array(
                filled, dtype=DTYPES[primitive]
            )
            fields[name] = ScalarColumn(array, nulls)
        elif kind == "record":
            rows = [v for v in values if v is not None]
            index = np.cumsum([v is not None for v in values]) - 1
            index[[v is None for v in values]] = -1
            fields[name] = RecordRef(_table_from_rows(record, rows), index)
        else:
            lists = [v or [] for v in values]
            rows = [row for rows in lists for row in rows]
            offsets = np.concatenate([[0], np.cumsum([len(rows) for rows in lists])])
            present = np.array([v is not None for v in values])
            table = _table_from_rows(record, rows)
            fields[name] = RecordList(table, offsets, np.arange(len(rows)), present)
    return AlertParts(n, fields)


def sample_alert_path(version: str) -> Path:
    return load_schema(version).path.parent / "sample_data" / "fakeAlert.avro"


@pytest.mark.parametrize("version", VERSIONS)
def test_official_sample_alerts_reencode_identically(version: str) -> None:
    with open(sample_alert_path(version), "rb") as stream:
        writer_schema, payloads = read_container_payloads(stream)
        payloads = list(payloads)
    with open(sample_alert_path(version), "rb") as stream:
        alerts = list(fastavro.reader(stream))
    assert writer_schema["name"] == load_schema(version).definition["name"]
    parts = parts_from_alerts(version, alerts)
    assert AlertEncoder(load_schema(version)).encode(parts) == payloads


# --- container files ---------------------------------------------------------------------------


def _some_alerts(version: str, n: int, seed: int = 3) -> tuple[AlertParts, list[bytes]]:
    schema = load_schema(version)
    rng = np.random.default_rng(seed)
    source = random_table(schema.record("diaSource"), n + 4, rng)
    forced = random_table(schema.record("prvDiaForcedSources"), 3 * n, rng)
    obj = random_table(schema.record("diaObject"), n, rng)
    id_field = schema.field_names[0]
    fields: dict[str, Any] = {
        id_field: ScalarColumn(np.arange(n, dtype=np.int64)),
        "diaSource": RecordRef(source, np.arange(n)),
        "prvDiaSources": RecordList(source, np.arange(n + 1) % (n + 1), np.arange(n)),
        "prvDiaForcedSources": RecordList(forced, np.arange(n + 1) * 3, np.arange(3 * n)),
        "diaObject": RecordRef(obj, np.where(np.arange(n) % 2 == 0, np.arange(n), -1)),
        "cutoutDifference": [rng.bytes(500) if i % 3 else None for i in range(n)],
    }
    parts = AlertParts(n, fields)
    return parts, AlertEncoder(schema).encode(parts)


@pytest.mark.parametrize("codec", ["null", "deflate"])
@pytest.mark.parametrize("version", ["7.4", "11.1"])
def test_container_reads_with_fastavro_and_lsst_alert_packet(codec: str, version: str) -> None:
    schema = load_schema(version)
    _, payloads = _some_alerts(version, 7)
    buffer = io.BytesIO()
    written = write_container(buffer, schema.definition, payloads, codec=codec, records_per_block=3)
    assert written == 7

    buffer.seek(0)
    reader = fastavro.reader(buffer)
    assert reader.codec == codec
    records = list(reader)
    parsed = fastavro.parse_schema(copy.deepcopy(schema.definition))
    assert [fastavro_bytes(parsed, record) for record in records] == payloads

    buffer.seek(0)
    packet_schema, alerts = retrieve_alerts(buffer)
    alerts = list(alerts)
    assert packet_schema.definition["name"] == schema.definition["name"]
    assert [alert["diaSource"]["diaSourceId"] for alert in alerts] == [
        record["diaSource"]["diaSourceId"] for record in records
    ]

    buffer.seek(0)
    writer_schema, raw = read_container_payloads(buffer)
    assert list(raw) == payloads
    assert writer_schema == schema.definition


def test_container_from_fastavro_writer_splits_into_payloads() -> None:
    schema = load_schema("11.1")
    parts, payloads = _some_alerts("11.1", 5)
    parsed = fastavro.parse_schema(copy.deepcopy(schema.definition))
    records = [parts.alert_dict(i, schema.field_names) for i in range(5)]
    buffer = io.BytesIO()
    fastavro.writer(buffer, parsed, records, codec="deflate", sync_interval=1)
    buffer.seek(0)
    _, raw = read_container_payloads(buffer)
    assert list(raw) == payloads


def test_empty_container_and_fixed_sync_marker() -> None:
    schema = load_schema("11.1")
    buffers = []
    for _ in range(2):
        buffer = io.BytesIO()
        assert write_container(buffer, schema.definition, [], sync_marker=b"s" * 16) == 0
        buffers.append(buffer.getvalue())
    assert buffers[0] == buffers[1]
    assert list(fastavro.reader(io.BytesIO(buffers[0]))) == []
    _, alerts = retrieve_alerts(io.BytesIO(buffers[0]))
    assert list(alerts) == []
    assert list(read_container_payloads(io.BytesIO(buffers[0]))[1]) == []


def test_container_input_errors() -> None:
    with pytest.raises(InputError, match="Avro container magic"):
        read_container_payloads(io.BytesIO(b"\x00\x00\x00\x04\x4bnot avro"))
    schema = load_schema("11.1")
    _, payloads = _some_alerts("11.1", 2)
    buffer = io.BytesIO()
    write_container(buffer, schema.definition, payloads)
    truncated = io.BytesIO(buffer.getvalue()[:-40])
    with pytest.raises(InputError, match="truncated"):
        list(read_container_payloads(truncated)[1])
    for broken in ([payloads[0][:-30]], [payloads[0] + b"\x00\x00"]):
        buffer = io.BytesIO()
        write_container(buffer, schema.definition, broken)
        buffer.seek(0)
        with pytest.raises(InputError, match="corrupt"):
            list(read_container_payloads(buffer)[1])
    with pytest.raises(InputError, match="codec 'snappy'"):
        write_container(io.BytesIO(), schema.definition, payloads, codec="snappy")
    with pytest.raises(InputError, match="16 bytes"):
        write_container(io.BytesIO(), schema.definition, payloads, sync_marker=b"short")


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("avro_type", "values", "nulls", "message"),
    [
        ("int", np.array([1, 2**31], dtype=np.int64), None, r"'v'.*row 1 holds 2147483648.*'int'"),
        ("long", np.array([2**63], dtype=np.uint64), None, r"row 0 holds 9223372036854775808"),
        ("long", np.array([1.0]), None, r"dtype float64 cannot be cast safely to Avro 'long'"),
        ("double", np.array([1, 2**60]), None, r"row 1 holds the integer 1152921504606846976"),
        ("float", np.array([2**24 + 1]), None, r"'float' cannot hold exactly \(beyond 2\*\*24\)"),
        ("double", np.array(["1.0"]), None, r"dtype <U3 cannot be cast safely to Avro 'double'"),
        ("float", object_array([1.0]), None, r"dtype object cannot be cast safely"),
        ("boolean", np.array([0, 1]), None, r"cannot be cast safely to Avro 'boolean'"),
        ("float", np.array([1e39]), None, r"row 0 holds 1e\+39, beyond the largest Avro 'float'"),
        ("long", np.array([1, 2]), [False, True], r"row 1 is null but the schema does not allow"),
        ("string", object_array(["a", 3]), None, r"row 1 holds int 3, not str"),
        ("string", object_array(["\ud800"]), None, r"not valid in UTF-8"),
        ("bytes", object_array([b"a", "b"]), None, r"row 1 holds str, not bytes"),
        (["null", "int"], np.array([1]), [1], r"null mask has dtype int64"),
    ],
)
def test_bad_columns_raise_input_error(
    avro_type: Any, values: np.ndarray, nulls: Any, message: str
) -> None:
    record = {"type": "record", "name": "test.one", "fields": [{"name": "v", "type": avro_type}]}
    null_map = {} if nulls is None else {"v": np.asarray(nulls)}
    table = ColumnTable(record, {"v": values}, null_map, len(values))
    with pytest.raises(InputError, match=message):
        RecordEncoder(record).encode(table)


def test_conformed_tables_are_trusted_and_changed_ones_checked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import alertpack.packets.conform as conform

    record = load_schema("11.1").named_types["lsst.v11_1.diaForcedSource"]
    raw = random_table(record, 50, np.random.default_rng(2))
    expected = RecordEncoder(record).encode(raw)
    table = conform_columns(raw)
    assert raw.conformance is None and table.conformance is not None
    assert not any(values.flags.writeable for values in table.columns.values())

    def checked_again(*args: Any) -> None:
        raise AssertionError("the encoder checked a conformed table again")

    with monkeypatch.context() as patch:
        patch.setattr(conform, "_conform_columns", checked_again)
        assert np.array_equal(RecordEncoder(record).encode(table).data, expected.data)
    table.columns["diaForcedSourceId"] = np.full(50, 2**63, dtype=np.uint64)
    with pytest.raises(InputError, match=r"'diaForcedSourceId'.*row 0 holds 9223372036854775808"):
        RecordEncoder(record).encode(table)


def test_out_of_range_values_under_nulls_are_fine() -> None:
    record, table = one_field_table(["null", "float"], np.array([1e300, 1.0]), [True, False])
    assert RecordEncoder(record).encode(table).row(0) == b"\x00"


def test_missing_and_misshapen_columns() -> None:
    record = load_schema("11.1").named_types["lsst.v11_1.diaForcedSource"]
    table = random_table(record, 3, np.random.default_rng(0))
    del table.columns["band"]
    with pytest.raises(InputError, match=r"'band' of record lsst.v11_1.diaForcedSource.*no column"):
        RecordEncoder(record).encode(table)
    table = random_table(record, 3, np.random.default_rng(0))
    table.columns["ra"] = table.columns["ra"][:2]
    with pytest.raises(InputError, match=r"'ra'.*shape \(2,\) but the table has 3 rows"):
        RecordEncoder(record).encode(table)


def test_nested_records_are_not_flat() -> None:
    with pytest.raises(UnsupportedSchemaError, match=r"lsst\.v11_1\.alert\.diaSource"):
        RecordEncoder(load_schema("11.1").definition)


def _valid_parts(version: str = "11.1") -> tuple[AlertParts, ColumnTable]:
    parts, _ = _some_alerts(version, 3)
    return parts, parts.fields["diaSource"].table


def test_alert_errors_name_the_field() -> None:
    encoder = AlertEncoder(load_schema("11.1"))
    parts, source = _valid_parts()

    bad = AlertParts(3, {**parts.fields, "ssObject": RecordRef(source, np.zeros(3, int))})
    with pytest.raises(InputError, match=r"ssObject that alert schema 11\.1 does not define"):
        encoder.encode(bad)

    fields = dict(parts.fields)
    del fields["diaSource"]
    with pytest.raises(InputError, match=r"'diaSource': is missing.*does not allow null"):
        encoder.encode(AlertParts(3, fields))

    bad = AlertParts(3, {**parts.fields, "diaSource": RecordRef(source, np.array([0, -1, 1]))})
    with pytest.raises(InputError, match="'diaSource': alert 1 has no value"):
        encoder.encode(bad)

    bad = AlertParts(3, {**parts.fields, "diaSource": RecordRef(source, np.array([0, 99, 1]))})
    with pytest.raises(InputError, match="row index 99 at position 1 is outside"):
        encoder.encode(bad)

    old = random_table(load_schema("7.4").record("diaObject"), 3, np.random.default_rng(0))
    bad = AlertParts(3, {**parts.fields, "diaObject": RecordRef(old, np.arange(3))})
    with pytest.raises(InputError, match=r"carries lsst\.v11_1\.diaObject records.*lsst\.v7_4"):
        encoder.encode(bad)

    bad = AlertParts(3, {**parts.fields, "cutoutScience": ["not bytes", None, None]})
    with pytest.raises(InputError, match="'cutoutScience': alert 0 holds a str"):
        encoder.encode(bad)

    bad = AlertParts(3, {**parts.fields, "diaSourceId": [1, 2, 3]})
    with pytest.raises(InputError, match="'diaSourceId': got a list; give a ScalarColumn"):
        encoder.encode(bad)

    bad = AlertParts(3, {**parts.fields, "diaSourceId": ScalarColumn(np.arange(2))})
    with pytest.raises(InputError, match=r"'diaSourceId': values has shape \(2,\)"):
        encoder.encode(bad)

    lists = RecordList(source, np.array([0, 2, 1, 3]), np.arange(3))
    with pytest.raises(InputError, match="'prvDiaSources': offsets are not non-decreasing"):
        encoder.encode(AlertParts(3, {**parts.fields, "prvDiaSources": lists}))


def test_empty_batch() -> None:
    schema = load_schema("11.1")
    source = random_table(schema.record("diaSource"), 0, np.random.default_rng(0))
    parts = AlertParts(
        0,
        {
            "diaSourceId": ScalarColumn(np.zeros(0, dtype=np.int64)),
            "diaSource": RecordRef(source, np.zeros(0, dtype=int)),
        },
    )
    assert AlertEncoder(schema).encode(parts) == []
