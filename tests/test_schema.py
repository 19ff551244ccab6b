"""Schema versions and the Confluent wire format."""

from __future__ import annotations

import pytest
from lsst.alert.packet import Schema

from alertpack.errors import UnknownSchemaError, WireFormatError
from alertpack.schema import (
    SchemaVersion,
    available_versions,
    latest_version,
    load_schema,
    pack_wire,
    schema_for_id,
    unpack_wire,
)


def test_every_shipped_version_is_available_and_latest_is_packet_default():
    versions = available_versions()
    assert SchemaVersion(3, 0) in versions and SchemaVersion(11, 1) in versions
    assert latest_version() == max(versions)
    assert load_schema().definition == Schema.from_file().definition


@pytest.mark.parametrize("text, expected", [("11.1", (11, 1)), ("v7_4", (7, 4)), ("9", (9, 0))])
def test_version_parsing(text, expected):
    assert SchemaVersion.parse(text) == SchemaVersion(*expected)


def test_bad_version_text_names_the_choices():
    with pytest.raises(UnknownSchemaError, match=r"11\.1"):
        SchemaVersion.parse("eleven")
    with pytest.raises(UnknownSchemaError, match="not shipped"):
        load_schema("12.0")


def test_schema_id_matches_lsst_alert_packet_convention():
    for version in available_versions():
        schema = load_schema(version)
        assert schema.schema_id == schema.packet_schema.get_schema_id()
        assert schema_for_id(schema.schema_id) is schema


def test_records_found_through_unions_and_arrays():
    schema = load_schema("11.1")
    assert schema.record("diaSource")["name"] == "lsst.v11_1.diaSource"
    assert schema.record("prvDiaSources")["name"] == "lsst.v11_1.diaSource"
    assert schema.record("prvDiaForcedSources")["name"] == "lsst.v11_1.diaForcedSource"
    assert schema.record("cutoutDifference") is None
    assert schema.record("ssObject") is None
    assert load_schema("7.4").record("ssObject")["name"] == "lsst.v7_4.ssObject"


def test_wire_round_trip_and_errors():
    message = pack_wire(1101, b"payload")
    assert message[:5] == b"\x00\x00\x00\x04\x4d"
    assert unpack_wire(message) == (1101, b"payload")
    with pytest.raises(WireFormatError, match="too short"):
        unpack_wire(b"\x00\x00")
    with pytest.raises(WireFormatError, match="magic"):
        unpack_wire(b"Obj\x01\x00\x00")
    with pytest.raises(UnknownSchemaError, match="known ids"):
        schema_for_id(4242)
