"""Tests of alertpack.tools.reading, and the alert builders the inspection tests share.

The builders make alerts that are consistent the way a real pipeline's are
(ids linked, history ordered, cutouts with a TAN WCS), for any shipped schema
version, starting from the ``sample_data/alert.json`` of that version.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pytest

from alertpack.errors import InputError
from alertpack.schema import AlertSchema, load_schema, pack_wire
from alertpack.tools.reading import (
    AlertFile,
    alert_id,
    alert_object_id,
    field_value,
    find_alert,
    iter_alert_files,
    iter_alerts,
    rubin_schema_for_name,
)

SCHEMA_ROOT = Path(load_schema().path).parents[2]
OFFICIAL_SAMPLES = sorted(SCHEMA_ROOT.glob("*/*/sample_data/fakeAlert.avro"))

BANDS = ("g", "r", "i")
SOURCE_ID_BASE = 9_000_000_000_000
OBJECT_ID_BASE = 5_000_000_000_000
FIRST_MJD = 60_850.0


def _rename(schema_record: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Map quantity names (``mjd``, ``band``, ...) to this version's field names."""
    names = {field["name"] for field in schema_record["fields"]}
    aliases = {
        "mjd": ("midpointMjdTai", "midPointTai"),
        "band": ("band", "filterName"),
        "dec": ("dec", "decl"),
        "flux": ("psfFlux", "psFlux"),
        "flux_err": ("psfFluxErr", "psFluxErr"),
    }
    renamed = {}
    for key, value in values.items():
        for candidate in aliases.get(key, (key,)):
            if candidate in names:
                renamed[candidate] = value
                break
    return renamed


def _zero_of(avro_type: Any) -> Any:
    if isinstance(avro_type, dict):
        avro_type = avro_type["type"]
    return {"string": "", "bytes": b"", "boolean": False, "float": 0.0, "double": 0.0}.get(
        avro_type, 0
    )


def fill_record(schema_record: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A complete record: ``values`` renamed for the version, null or zero elsewhere."""
    given = _rename(schema_record, values)
    record = {}
    for field in schema_record["fields"]:
        name, avro_type = field["name"], field["type"]
        if name in given:
            record[name] = given[name]
        elif isinstance(avro_type, list) and "null" in avro_type:
            record[name] = None
        else:
            record[name] = _zero_of(avro_type)
    return record


def make_cutout(
    ra: float, dec: float, *, size: int = 31, peak: float = 2000.0, seed: int = 0
) -> bytes:
    """FITS bytes of a stamp centred on (ra, dec): Gaussian star on noise, TAN WCS, north up."""
    from astropy.nddata import CCDData
    from astropy.wcs import WCS

    rng = np.random.default_rng(seed)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(size + 1) / 2, (size + 1) / 2]
    wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]  # 0.2 arcsec pixels, east to the left
    y, x = np.mgrid[:size, :size]
    centre = (size - 1) / 2
    star = peak * np.exp(-((x - centre) ** 2 + (y - centre) ** 2) / (2 * 2.0**2))
    data = (star + rng.normal(0.0, 50.0, (size, size))).astype(np.float32)
    stamp = CCDData(data, unit="nJy", wcs=wcs)
    buffer = io.BytesIO()
    stamp.to_hdu().writeto(buffer)
    return buffer.getvalue()


def build_alert(
    schema: AlertSchema,
    number: int = 0,
    *,
    n_previous: int = 3,
    n_forced: int = 4,
    cutouts: bool = True,
) -> dict[str, Any]:
    """A self-consistent alert of ``schema``'s version, alert number ``number``."""
    source_schema = schema.record("diaSource")
    object_schema = schema.record("diaObject")
    forced_schema = schema.record("prvDiaForcedSources")
    source_id = SOURCE_ID_BASE + 100 * number
    object_id = OBJECT_ID_BASE + number
    ra, dec = 150.0 + 0.01 * number, 2.2 - 0.01 * number
    n_epochs = n_previous + 1
    mjds = FIRST_MJD + 3.0 * np.arange(n_epochs) + 0.1 * number

    def source(epoch: int, identifier: int) -> dict[str, Any]:
        flux = 1000.0 + 400.0 * epoch
        return fill_record(
            source_schema,
            {
                "diaSourceId": identifier,
                "diaObjectId": object_id,
                "visit": 1000 + epoch,
                "detector": 42,
                "ra": ra,
                "dec": dec,
                "mjd": float(mjds[epoch]),
                "band": BANDS[epoch % len(BANDS)],
                "flux": flux,
                "flux_err": 40.0,
                "snr": flux / 40.0,
                "x": 100.5,
                "y": 200.5,
            },
        )

    current = source(n_previous, source_id)
    previous = [source(epoch, source_id - n_previous + epoch) for epoch in range(n_previous)]
    forced = [
        fill_record(
            forced_schema,
            {
                "diaForcedSourceId": source_id + 50 + epoch,
                "diaObjectId": object_id,
                "ra": ra,
                "dec": dec,
                "visit": 2000 + epoch,
                "mjd": FIRST_MJD - 1.5 + 2.0 * epoch,
                "band": BANDS[(epoch + 1) % len(BANDS)],
                "flux": 300.0 + 100.0 * epoch,
                "flux_err": 60.0,
            },
        )
        for epoch in range(n_forced)
    ]
    diaobject = fill_record(object_schema, {"diaObjectId": object_id, "ra": ra, "dec": dec})
    values: dict[str, Any] = {
        "diaSourceId": source_id,
        "alertId": source_id,
        "diaSource": current,
        "prvDiaSources": previous,
        "prvDiaForcedSources": forced,
        "diaObject": diaobject,
    }
    if cutouts:
        for seed, name in enumerate(("cutoutScience", "cutoutTemplate", "cutoutDifference")):
            peak = {"cutoutScience": 3000.0, "cutoutTemplate": 1200.0}.get(name, 1800.0)
            values[name] = make_cutout(ra, dec, peak=peak, seed=seed + 10 * number)
    return {name: values.get(name) for name in schema.field_names}


def write_alert_file(path: Path, schema: AlertSchema, alerts: list[dict[str, Any]]) -> Path:
    """Write ``alerts`` to an Avro container file with the shipped schema."""
    with path.open("wb") as stream:
        fastavro.writer(stream, fastavro.parse_schema(schema.definition), alerts)
    return path


def consistent_alert_file(tmp_path: Path, version: str = "11.1", n_alerts: int = 3) -> Path:
    """A file of ``n_alerts`` self-consistent alerts with cutouts and history."""
    schema = load_schema(version)
    alerts = [build_alert(schema, number) for number in range(n_alerts)]
    return write_alert_file(tmp_path / f"alerts_v{version}.avro", schema, alerts)


def test_official_samples_read_with_their_shipped_schema():
    assert len(OFFICIAL_SAMPLES) >= 10
    for path in OFFICIAL_SAMPLES:
        (alert,) = list(iter_alerts(path))
        major, minor = path.parts[-4], path.parts[-3]
        assert alert.schema is not None
        assert str(alert.schema.version) == f"{major}.{minor}"
        assert alert.schema_name == f"lsst.v{major}_{minor}.alert"
        # the sample alert.json files all use this id, under either name
        assert alert.alert_id == 1231321321
        assert alert.index == 0 and alert.source == str(path)


def test_packet_size_is_the_schemaless_encoding_size(tmp_path):
    path = consistent_alert_file(tmp_path, n_alerts=4)
    schema = load_schema("11.1")
    parsed = fastavro.parse_schema(schema.definition)
    loaded = list(iter_alerts(path))
    assert [alert.index for alert in loaded] == [0, 1, 2, 3]
    for alert in loaded:
        encoded = io.BytesIO()
        fastavro.schemaless_writer(encoded, parsed, alert.alert)
        assert alert.packet_size == len(encoded.getvalue())
        # cutouts dominate the packet size
        assert alert.packet_size > sum(len(alert.alert[name]) for name in (
            "cutoutScience", "cutoutTemplate", "cutoutDifference"))


def test_compressed_multi_block_file_reads_every_alert_in_order(tmp_path):
    schema = load_schema("11.1")
    alerts = [build_alert(schema, number, cutouts=False) for number in range(40)]
    path = tmp_path / "deflated.avro"
    with path.open("wb") as stream:
        fastavro.writer(
            stream, fastavro.parse_schema(schema.definition), alerts, codec="deflate",
            sync_interval=2000,  # several blocks
        )
    loaded = list(iter_alerts(path))
    assert [alert.alert["diaSourceId"] for alert in loaded] == [
        alert["diaSourceId"] for alert in alerts
    ]
    assert len({alert.packet_size for alert in loaded}) >= 1
    assert all(alert.packet_size > 500 for alert in loaded)


def test_wire_format_message_file_made_by_lsst_alert_packet(tmp_path):
    schema = load_schema("11.1")
    record = build_alert(schema, 7)
    payload = schema.packet_schema.serialize(record)
    path = tmp_path / "message.avro"
    path.write_bytes(pack_wire(schema.schema_id, payload))
    alert_file = AlertFile.open(path)
    assert not alert_file.container and alert_file.schema.version == schema.version
    (alert,) = list(alert_file)
    assert alert.packet_size == len(payload)
    assert alert.alert["diaSource"]["diaSourceId"] == record["diaSourceId"]
    assert alert.alert["cutoutDifference"] == record["cutoutDifference"]


def test_directories_are_searched_recursively_and_hidden_files_skipped(tmp_path):
    schema = load_schema("11.1")
    (tmp_path / "night" / "visit2").mkdir(parents=True)
    write_alert_file(tmp_path / "night" / "a.avro", schema, [build_alert(schema, 0)])
    write_alert_file(tmp_path / "night" / "visit2" / "b.avro", schema, [build_alert(schema, 1)])
    (tmp_path / "night" / ".b.avro.1234.tmp.avro").write_bytes(b"partial")
    (tmp_path / "night" / "notes.txt").write_text("not an alert")
    files = list(iter_alert_files(tmp_path / "night"))
    assert [file.path.name for file in files] == ["a.avro", "b.avro"]
    ids = [alert.alert_id for alert in iter_alerts([tmp_path / "night"])]
    assert ids == [SOURCE_ID_BASE, SOURCE_ID_BASE + 100]


def test_unknown_writer_schema_is_read_without_a_rubin_schema(tmp_path):
    schema = {
        "type": "record",
        "name": "broker.alert",
        "fields": [{"name": "alertId", "type": "long"}, {"name": "note", "type": "string"}],
    }
    path = tmp_path / "other.avro"
    with path.open("wb") as stream:
        fastavro.writer(stream, schema, [{"alertId": 5, "note": "x"}])
    (alert,) = list(iter_alerts(path))
    assert alert.schema is None and alert.schema_name == "broker.alert"
    assert alert.alert_id == 5
    assert rubin_schema_for_name("lsst.v99_0.alert") is None
    assert rubin_schema_for_name("lsst.v7_4.alert").version == load_schema("7.4").version


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"SIMPLE  =                    T", "neither the Avro container magic"),
        (b"Obj\x01\x02garbage", "container header cannot be read"),
        (b"\x00\x00\x00\x03\xe7rest", "schema id 999"),
    ],
)
def test_bad_files_raise_input_errors_that_name_the_file(tmp_path, content, expected):
    path = tmp_path / "bad.avro"
    path.write_bytes(content)
    with pytest.raises(InputError, match=expected) as caught:
        list(iter_alerts(path))
    assert str(path) in str(caught.value)


def test_truncated_container_names_the_alert(tmp_path):
    path = consistent_alert_file(tmp_path, n_alerts=2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3000])
    with pytest.raises(InputError, match="corrupt or truncated"):
        list(iter_alerts(path))


def test_a_file_of_other_records_is_refused_when_listed_and_when_read(tmp_path):
    path = tmp_path / "strings.avro"
    with path.open("wb") as stream:
        fastavro.writer(stream, "string", ["not", "alerts"])
    with pytest.raises(InputError, match="not alerts"):
        list(iter_alerts(path))
    # opened directly, without the check of iter_alert_files: each record still is refused
    alert_file = AlertFile.open(path)
    assert alert_file.writer_schema == "string"
    with pytest.raises(InputError, match=r"alert #0 decodes to a str, not an alert record"):
        list(alert_file)


def test_missing_path_and_empty_directory(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list(iter_alerts(tmp_path / "nope.avro"))
    with pytest.raises(InputError, match="no alert files"):
        list(iter_alerts(tmp_path))


def test_accessors_hide_the_field_renames_between_versions():
    old = next(iter(iter_alerts(SCHEMA_ROOT / "3" / "0" / "sample_data" / "fakeAlert.avro")))
    new = next(iter(iter_alerts(SCHEMA_ROOT / "11" / "1" / "sample_data" / "fakeAlert.avro")))
    sample = json.loads((SCHEMA_ROOT / "11" / "1" / "sample_data" / "alert.json").read_text())
    for alert in (old.alert, new.alert):
        source = alert["diaSource"]
        assert field_value(source, "band") == "r"
        assert field_value(source, "dec") == pytest.approx(0.126243049656)
        assert field_value(source, "flux") == pytest.approx(1241.0)
        assert field_value(source, "flux_err") == pytest.approx(12.0)
        assert alert_id(alert) == 1231321321
        assert alert_object_id(alert) == sample["diaObject"]["diaObjectId"]
    assert field_value(new.alert["diaSource"], "mjd") == pytest.approx(60902.993305483615)
    assert field_value(None, "mjd", default=-1) == -1


def test_find_alert_by_alert_id_or_source_id(tmp_path):
    path = consistent_alert_file(tmp_path, version="7.4", n_alerts=3)
    assert find_alert(path).index == 0
    assert find_alert(path, SOURCE_ID_BASE + 200).index == 2
    with pytest.raises(InputError, match="no alert with diaSourceId/alertId 17"):
        find_alert(path, 17)
