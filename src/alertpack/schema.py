"""Alert schema versions and the Confluent wire format.

The official Rubin alert schemas are the ones shipped by ``lsst-alert-packet``;
this module finds them, loads a chosen ``major.minor`` version once, and gives
the rest of alertpack a small, typed view of it: the alert record, the nested
record types (``diaSource``, ``diaObject``, ...), the schema id used on the
wire, and the 5-byte Confluent header.
"""

from __future__ import annotations

import functools
import io
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import fastavro
from fastavro.types import Schema as ParsedSchema

from alertpack.errors import AlertDecodeError, UnknownSchemaError, WireFormatError

__all__ = [
    "WIRE_HEADER_SIZE",
    "AlertSchema",
    "SchemaVersion",
    "available_versions",
    "collect_named_types",
    "current_field_name",
    "decode_record",
    "latest_version",
    "load_schema",
    "pack_wire",
    "schema_for_id",
    "unpack_wire",
]

WIRE_MAGIC = 0
WIRE_HEADER_SIZE = 5
_WIRE_HEADER = struct.Struct(">bI")




@dataclass(frozen=True, order=True)
class SchemaVersion:
    """A ``major.minor`` alert schema version."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str | SchemaVersion) -> SchemaVersion:
        """Parse ``"11.1"`` (also ``"v11_1"`` or ``"11"`` meaning ``11.0``)."""
        if isinstance(text, SchemaVersion):
            return text
        match = re.fullmatch(r"v?(\d+)(?:[._](\d+))?", str(text).strip())
        if match is None:
            raise UnknownSchemaError(
                f"schema version {text!r} is not of the form MAJOR.MINOR (e.g. '11.1'); "
                f"shipped versions: {', '.join(map(str, available_versions()))}"
            )
        return cls(int(match.group(1)), int(match.group(2) or 0))

    @classmethod
    def from_schema_id(cls, schema_id: int) -> SchemaVersion:
        """Invert the Rubin schema id convention ``major * 100 + minor``."""
        return cls(schema_id // 100, schema_id % 100)

    @property
    def schema_id(self) -> int:
        """Schema id as Rubin registers it: ``major * 100 + minor``."""
        return self.major * 100 + self.minor

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


def _schema_root() -> Path:
    # lsst.alert.packet (~0.2 s, with lsst.resources): only to load a shipped schema
    from lsst.alert.packet.schema import get_schema_root

    return Path(get_schema_root())


@functools.cache
def available_versions() -> tuple[SchemaVersion, ...]:
    """All schema versions shipped by the installed lsst-alert-packet, oldest first."""
    versions = []
    for major_dir in _schema_root().iterdir():
        if not major_dir.name.isdigit():
            continue
        for minor_dir in major_dir.iterdir():
            if minor_dir.name.isdigit() and any(minor_dir.glob("*.alert.avsc")):
                versions.append(SchemaVersion(int(major_dir.name), int(minor_dir.name)))
    return tuple(sorted(versions))


def latest_version() -> SchemaVersion:
    """The newest schema version shipped by lsst-alert-packet (its ``latest.txt``)."""
    text = (_schema_root() / "latest.txt").read_text().strip()
    return SchemaVersion.parse(text)


class AlertSchema:
    """One official alert schema version.

    Parameters
    ----------
    version : `SchemaVersion`
        The version to load; it must be shipped by lsst-alert-packet.

    Notes
    -----
    The definition is the one `lsst.alert.packet.Schema` loads (nested named
    types inline at first use, referenced by full name after), so records
    written with it read back through ``lsst.alert.packet`` unchanged.
    """

    def __init__(self, version: SchemaVersion) -> None:
        # lsst.alert.packet (~0.2 s): the wire format and field names go without it
        from lsst.alert.packet import Schema

        if version not in available_versions():
            raise UnknownSchemaError(
                f"alert schema {version} is not shipped by the installed lsst-alert-packet; "
                f"choose one of {', '.join(map(str, available_versions()))}"
            )
        path = _schema_root() / str(version.major) / str(version.minor)
        avsc = path / f"lsst.v{version.major}_{version.minor}.alert.avsc"
        self.version = version
        self.path = avsc
        self.packet_schema = Schema.from_file(str(avsc))
        self.definition: dict[str, Any] = self.packet_schema.definition
        self.named_types = collect_named_types(self.definition)

    @functools.cached_property
    def parsed(self) -> ParsedSchema:
        """The definition parsed by fastavro once, for fast schemaless reads and writes."""
        return fastavro.parse_schema(self.definition)

    def decode(self, payload: bytes, what: str = "payload") -> dict[str, Any]:
        """Decode one schemaless Avro alert written with this schema, exactly (`decode_record`).

        Raises
        ------
        AlertDecodeError
            When the payload does not decode, or holds more than one alert record.
        """
        # the alert schema is a record: fastavro reads it as a dict
        return cast(
            dict[str, Any],
            decode_record(payload, self.parsed, what=what, schema=f"alert schema {self.version}"),
        )

    @property
    def schema_id(self) -> int:
        """Schema id for the Confluent wire header."""
        return self.version.schema_id

    @property
    def namespace(self) -> str:
        """Avro namespace, e.g. ``lsst.v11_1``."""
        return self.definition["name"].rsplit(".", 1)[0]

    @property
    def field_names(self) -> list[str]:
        """Top-level alert field names, in schema order."""
        return [field["name"] for field in self.definition["fields"]]

    def field(self, name: str) -> dict[str, Any]:
        """The top-level alert field definition called ``name``."""
        for field in self.definition["fields"]:
            if field["name"] == name:
                return field
        raise KeyError(f"alert schema {self.version} has no field {name!r}")

    def record(self, field_name: str) -> dict[str, Any] | None:
        """Record definition carried by an alert field, through unions and arrays.

        Returns `None` when the field does not carry a record (e.g. bytes) or
        does not exist in this version.
        """
        if field_name not in self.field_names:
            return None
        return self._find_record(self.field(field_name)["type"])

    def _find_record(self, avro_type: Any) -> dict[str, Any] | None:
        if isinstance(avro_type, str):
            return self.named_types.get(avro_type)
        if isinstance(avro_type, list):
            for branch in avro_type:
                found = self._find_record(branch)
                if found is not None:
                    return found
            return None
        if avro_type.get("type") == "record":
            return avro_type
        if avro_type.get("type") == "array":
            return self._find_record(avro_type["items"])
        return None

    def __repr__(self) -> str:
        return f"AlertSchema({self.version})"


def collect_named_types(
    definition: Any, found: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Map every named type (record, enum, fixed) in a definition to its first definition.

    Names are registered as written and, when a ``namespace`` qualifies a
    short name, also in full (``lsst.v11_1.diaSource``).
    """
    found = {} if found is None else found
    if isinstance(definition, list):
        for branch in definition:
            collect_named_types(branch, found)
    elif isinstance(definition, dict):
        kind = definition.get("type")
        if kind in ("record", "enum", "fixed"):
            name = definition["name"]
            found.setdefault(name, definition)
            if "." not in name and definition.get("namespace"):
                found.setdefault(f"{definition['namespace']}.{name}", definition)
        if kind == "record":
            for avro_field in definition["fields"]:
                collect_named_types(avro_field["type"], found)
        elif kind == "array":
            collect_named_types(definition["items"], found)
        elif kind == "map":
            collect_named_types(definition["values"], found)
    return found


@functools.cache
def load_schema(version: str | SchemaVersion | None = None) -> AlertSchema:
    """Load (once per process) the alert schema ``version``; `None` is the latest."""
    if version is None:
        return AlertSchema(latest_version())
    return AlertSchema(SchemaVersion.parse(version))


def schema_for_id(schema_id: int) -> AlertSchema:
    """The shipped schema for a wire-format schema id (``major * 100 + minor``)."""
    version = SchemaVersion.from_schema_id(schema_id)
    if version not in available_versions():
        raise UnknownSchemaError(
            f"schema id {schema_id} (version {version}) is not shipped by the installed "
            f"lsst-alert-packet; known ids: "
            f"{', '.join(str(v.schema_id) for v in available_versions())}"
        )
    return load_schema(version)


def decode_record(
    payload: bytes, parsed: ParsedSchema, *, what: str = "payload", schema: str = "its schema"
) -> Any:
    """Decode one schemaless Avro record that takes exactly the whole ``payload``.

    The one decoder of schemaless records (Kafka messages, wire-format files,
    records kept apart): a record followed by other bytes is not one record,
    and keeping such a payload would corrupt every file it is written to.

    Parameters
    ----------
    payload : `bytes`
        The record's bytes (without any wire header).
    parsed : fastavro parsed schema
        The writer schema.
    what : `str`
        Where the payload is (``topic[partition]@offset``, a file), for errors.
    schema : `str`
        What the schema is (``alert schema 11.1``), for errors.

    Raises
    ------
    AlertDecodeError
        When the payload does not decode with the schema, or the record ends
        before the payload does.
    """
    stream = io.BytesIO(payload)
    try:
        record = fastavro.schemaless_reader(stream, parsed, None)
    except Exception as error:  # fastavro raises many types (and MemoryError) for bad data
        detail = (
            "a length in it is far larger than memory"
            if isinstance(error, MemoryError) else f"{type(error).__name__}: {error}"
        )
        raise AlertDecodeError(
            f"{what}: payload of {len(payload)} bytes does not decode with {schema} "
            f"({detail}); was it written with another schema?"
        ) from None
    extra = len(payload) - stream.tell()
    if extra:
        raise AlertDecodeError(
            f"{what}: payload of {len(payload)} bytes holds {extra} bytes after the record "
            f"{schema} describes: not one record (other data appended, or another schema)"
        )
    return record


def pack_wire(schema_id: int, payload: bytes) -> bytes:
    """Prefix a schemaless Avro payload with the Confluent wire header."""
    return _WIRE_HEADER.pack(WIRE_MAGIC, schema_id) + payload


def unpack_wire(message: bytes) -> tuple[int, bytes]:
    """Split a Confluent wire-format message into ``(schema_id, payload)``.

    Raises
    ------
    WireFormatError
        If the message is shorter than the header or its magic byte is not 0.
    """
    if message is None or len(message) < WIRE_HEADER_SIZE:
        size = 0 if message is None else len(message)
        raise WireFormatError(
            f"message of {size} bytes is too short for the 5-byte Confluent wire header "
            "(magic byte 0 + 4-byte schema id); was it produced by a Confluent serializer?"
        )
    magic, schema_id = _WIRE_HEADER.unpack_from(message)
    if magic != WIRE_MAGIC:
        raise WireFormatError(
            f"message starts with byte {magic & 0xFF:#04x}, not the Confluent magic byte 0x00; "
            "it is not in the Confluent wire format (plain Avro container files start with 'Obj')"
        )
    return schema_id, bytes(message[WIRE_HEADER_SIZE:])


# Old schema names -> current names (only where the name itself changed).
_FIELD_RENAMES = {
    "midPointTai": "midpointMjdTai",
    "filterName": "band",
    "totFlux": "scienceFlux",
    "totFluxErr": "scienceFluxErr",
    "diffFlux": "psfFlux",
    "diffFluxErr": "psfFluxErr",
    "is_negative": "isNegative",
    "time_processed": "timeProcessedMjdTai",
    "radecTai": "midpointMjdTai",
    "radecMjdTai": "midpointMjdTai",
    "eclipticLambda": "eclLambda",
    "eclipticBeta": "eclBeta",
    "galacticL": "galLon",
    "galacticB": "galLat",
    "heliocentricDist": "helioRange",
    "topocentricDist": "topoRange",
    "predictedVMagnitude": "ephVmag",
    "residualRa": "ephOffsetRa",
    "residualDec": "ephOffsetDec",
    "mpcDesignation": "designation",
    "mpcH": "h",
    "epoch": "epoch_mjd",
    "M": "mean_anomaly",
    "peri": "argperi",
    "incl": "i",
    "t_p": "peri_time",
    "lan": "node",
    "aop": "argperi",
}
_FIELD_RENAME_PATTERNS = [
    (re.compile(r"decl"), "dec"),
    (re.compile(r"Decl"), "Dec"),
    (re.compile(r"^ps(?=[A-Z])"), "psf"),
    (re.compile(r"_ps(?=[A-Z])"), "_psf"),
    (re.compile(r"^dip(?=[A-Z])"), "dipole"),
    (re.compile(r"_dip(?=[A-Z])"), "_dipole"),
    (re.compile(r"^([ugrizy])PSFlux"), r"\1_psfFlux"),
    (re.compile(r"^([ugrizy])FPFlux"), r"\1_fpFlux"),
    (re.compile(r"^heliocentric(V?)([XYZ])$"), r"helio_\1\2"),
    (re.compile(r"^topocentric(V?)([XYZ])$"), r"topo_\1\2"),
]


def current_field_name(name: str) -> str:
    """The current-schema name of a field of an older alert schema (itself when unchanged).

    ``decl`` -> ``dec``, ``psFlux`` -> ``psfFlux``, ``midPointTai`` -> ``midpointMjdTai``, ...
    """
    if name in _FIELD_RENAMES:
        return _FIELD_RENAMES[name]
    for pattern, replacement in _FIELD_RENAME_PATTERNS:
        name = pattern.sub(replacement, name)
    if name.startswith(("helio_", "topo_")):
        name = name.lower()
    return name
