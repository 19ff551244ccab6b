"""Read alerts back from disk: Avro container files, wire-format messages, directories.

Alerts reach the inspection tools from alertpack's own file sink, from
``lsst.alert.packet`` (e.g. the ``fakeAlert.avro`` samples it ships) or from
any broker that stored them. This module turns paths into a stream of
`LoadedAlert`: the decoded record plus where it came from, its writer schema
and its packet size. Nothing is read into memory beyond one Avro block.

Alerts read from files (`iter_alerts`: `LoadedAlert`) and from Kafka
(`alertpack.tools.consume.iter_kafka_alerts`: ``ConsumedAlert``) have one
shape for the attributes they share: ``alert`` (the decoded dict),
``alert_id``, ``object_id``, ``schema`` (the shipped `AlertSchema`, or `None`
for a foreign writer schema), ``schema_name``, ``source`` (the file path, or
``kafka://SERVER/TOPIC``), ``packet_size`` (bytes of the schemaless Avro
record) and ``label`` (points at one alert in messages). Each adds where it
was: ``index`` in its file; ``topic``, ``partition``, ``offset``, ``key``,
``timestamp_ms`` and the ``payload`` bytes on Kafka.

It also holds the small accessors that hide the field renames between
schema versions (``alertId``/``diaSourceId``, ``decl``/``dec``,
``filterName``/``band``, ``midPointTai``/``midpointMjdTai``,
``psFlux``/``psfFlux``), so that callers never branch on the version, and
the one signed S/N every read tool prints (`signal_to_noise`).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import fastavro
from fastavro.schema import to_parsing_canonical_form
from fastavro.types import AvroMessage, Schema

from alertpack.errors import InputError, LimitExceededError, UnknownSchemaError
from alertpack.limits import ReadLimits, check_limit, read_limits
from alertpack.packets.container import (
    iter_container_blocks,
    read_container_header,
    read_container_payloads,
)
from alertpack.schema import (
    WIRE_HEADER_SIZE,
    AlertSchema,
    SchemaVersion,
    available_versions,
    decode_record,
    load_schema,
    schema_for_id,
    unpack_wire,
)
from alertpack.tools.rejected import REJECTED_SCHEMA_NAME

__all__ = [
    "CUTOUT_FIELDS",
    "AlertFile",
    "LoadedAlert",
    "ReadReport",
    "alert_id",
    "alert_object_id",
    "cutout_fits",
    "field_value",
    "find_alert",
    "is_negative",
    "iter_alert_files",
    "iter_alerts",
    "rubin_schema_for_name",
    "signal_to_noise",
]

AVRO_CONTAINER_MAGIC = b"Obj\x01"
_AVRO_SYNC_SIZE = 16
ALERT_FILE_SUFFIX = ".avro"

# Cutout fields in the order brokers show them (science, template, difference).
CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")

# Quantity -> field names across schema versions, newest first.
_FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "alert_id": ("diaSourceId", "alertId"),
    "mjd": ("midpointMjdTai", "midPointTai", "midpointTai"),
    "band": ("band", "filterName"),
    "ra": ("ra",),
    "dec": ("dec", "decl"),
    "flux": ("psfFlux", "psFlux"),
    "flux_err": ("psfFluxErr", "psFluxErr"),
    "snr": ("snr",),
}

_RUBIN_SCHEMA_NAME = re.compile(r"lsst\.v(\d+)_(\d+)\.alert")


def field_value(record: dict[str, Any] | None, quantity: str, default: Any = None) -> Any:
    """The value of ``quantity`` in a record, whatever the schema version calls it.

    Parameters
    ----------
    record : `dict` or `None`
        An alert, diaSource, diaForcedSource or diaObject record.
    quantity : `str`
        One of ``alert_id``, ``mjd``, ``band``, ``ra``, ``dec``, ``flux``,
        ``flux_err``, ``snr``, or a plain field name.
    default
        Returned when the record is `None` or has none of the field names.
    """
    if record is None:
        return default
    for name in _FIELD_ALIASES.get(quantity, (quantity,)):
        if name in record:
            value = record[name]
            return default if value is None else value
    return default


def cutout_fits(
    alert: dict[str, Any], name: str, *, max_bytes: int | None = None
) -> bytes | None:
    """A cutout of the alert as a plain FITS file, whatever variant it was packed in.

    Parameters
    ----------
    alert : `dict`
        A decoded alert.
    name : `str`
        ``cutoutScience``, ``cutoutTemplate`` or ``cutoutDifference``.
    max_bytes : `int`, optional
        Largest decoded size (default: the read limit ``stamp_bytes``,
        `alertpack.limits`; meaning: `alertpack.packets.stamp_compression.decode_stamp`).

    Returns
    -------
    fits : `bytes` or `None`
        `None` when the alert has no such cutout.

    Raises
    ------
    alertpack.errors.CutoutDecodeError
        Bytes that are not a stamp, or decode past ``max_bytes``.
    """
    data = alert.get(name)
    if data is None:
        return None
    # numpy and the stamp code only where a cutout is opened: reading alerts needs neither
    from alertpack.packets.stamp_compression import decode_stamp

    return decode_stamp(data, max_bytes=max_bytes)


def is_negative(source: dict[str, Any] | None) -> bool:
    """Whether a diaSource is a negative difference: ``isNegative``, else ``psfFlux < 0``."""
    flag = field_value(source, "isNegative")
    if flag is not None:
        return bool(flag)
    flux = field_value(source, "flux")
    return flux is not None and flux < 0


def signal_to_noise(source: dict[str, Any] | None) -> float | None:
    """The signed signal-to-noise of a diaSource: negative for a negative difference.

    The size is the pipeline's detection S/N (``snr``; ``psfFlux/psfFluxErr``
    where the schema or the alert has none); the sign is that of the
    difference (`is_negative`), since Rubin's ``snr`` is unsigned. Every read
    tool (inspect, consume, show, browse, ``--where snr``) prints this one.

    Returns
    -------
    snr : `float` or `None`
        `None` when neither ``snr`` nor a flux with a non-zero error is given;
        NaN stays NaN.
    """
    snr = field_value(source, "snr")
    if snr is None:
        flux, error = field_value(source, "flux"), field_value(source, "flux_err")
        if flux is None or not error:
            return None
        snr = float(flux) / float(error)
    size = abs(float(snr))
    return -size if is_negative(source) else size


def alert_id(alert: dict[str, Any]) -> int | None:
    """The alert's own id: top-level ``diaSourceId`` (v8+) or ``alertId`` (v3-v7)."""
    return field_value(alert, "alert_id")


def alert_object_id(alert: dict[str, Any]) -> int | None:
    """The diaObjectId of the alert: from ``diaObject``, else from its ``diaSource``."""
    object_id = field_value(alert.get("diaObject"), "diaObjectId")
    if object_id is None:
        object_id = field_value(alert.get("diaSource"), "diaObjectId")
    return object_id


def rubin_schema_for_name(name: str | None) -> AlertSchema | None:
    """The shipped `AlertSchema` for a writer schema name such as ``lsst.v11_1.alert``.

    Returns `None` when the name is not that of a Rubin alert schema version
    shipped by the installed lsst-alert-packet.
    """
    match = _RUBIN_SCHEMA_NAME.fullmatch(name or "")
    if match is None:
        return None
    version = SchemaVersion(int(match.group(1)), int(match.group(2)))
    if version not in available_versions():
        return None
    return load_schema(version)


class _NotAnAlert(InputError):
    """A readable record that is not an alert record (not a damaged file)."""


@dataclass(eq=False)
class LoadedAlert:
    """One decoded alert and where it came from.

    Attributes
    ----------
    source : `str`
        File path, or ``kafka://SERVER/TOPIC`` for alerts read from Kafka.
    index : `int`
        Position of the alert in its file (or topic read), from 0.
    schema : `AlertSchema` or `None`
        The shipped Rubin schema the alert was written with, when the writer
        schema's name is one (e.g. ``lsst.v11_1.alert``); otherwise `None`.
    schema_name : `str`
        Full name of the writer schema.
    alert : `dict`
        The alert as fastavro decodes it.
    packet_size : `int`
        Size in bytes of the alert's Avro binary encoding without any file or
        wire framing: exactly the payload of a Kafka message after its 5-byte
        Confluent header. For container files it is measured while decoding
        the (decompressed) block, not estimated from the compressed block.
    position : `str`
        Where it was when not ``source#index``: ``topic[partition]@offset``
        for an alert read from Kafka; ``''`` for files.
    """

    source: str
    index: int
    schema: AlertSchema | None
    schema_name: str
    alert: dict[str, Any]
    packet_size: int
    position: str = ""

    @property
    def record(self) -> dict[str, Any]:
        """The decoded alert: the same dict as `alert` (the name of earlier releases)."""
        return self.alert

    @property
    def alert_id(self) -> int | None:
        """Top-level ``diaSourceId`` (v8+) or ``alertId`` (v3-v7)."""
        return alert_id(self.alert)

    @property
    def object_id(self) -> int | None:
        """The alert's diaObjectId (`alert_object_id`)."""
        return alert_object_id(self.alert)

    @property
    def label(self) -> str:
        """``source#index`` (``topic[partition]@offset`` from Kafka) to point at one alert."""
        return self.position or f"{self.source}#{self.index}"

    def cutout(self, name: str, *, max_bytes: int | None = None) -> bytes | None:
        """The cutout ``name`` as a plain FITS file, any variant decoded (`cutout_fits`)."""
        return cutout_fits(self.alert, name, max_bytes=max_bytes)


@dataclass
class ReadReport:
    """What reading a set of paths skipped and could not read, for the command to say.

    Given to `iter_alert_files`, `iter_alerts` or `find_alert`, it makes them go
    on past a bad file (each problem is one line naming the file) instead of
    stopping at the first.

    Attributes
    ----------
    skipped : `list` [`str`]
        Files left out on purpose (failed-alert files), one line each.
    errors : `list` [`str`]
        Files (or parts of files) that could not be read, one line each.
    """

    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class AlertFile:
    """An alert file on disk: an Avro container file or one wire-format message.

    Iterating it decodes its alerts one at a time.

    Attributes
    ----------
    path : `pathlib.Path`
        The file.
    writer_schema : `dict`, `list` or `str`
        The schema the file was written with (for a wire-format message, the
        shipped schema of its schema id); a `dict` for a file of records.
    schema : `AlertSchema` or `None`
        The shipped Rubin schema of that name, if any.
    container : `bool`
        True for an Avro object container file, False for a Confluent
        wire-format message (5-byte header + schemaless Avro).
    """

    path: Path
    writer_schema: Schema
    schema: AlertSchema | None
    container: bool
    _parsed: Schema | None = field(default=None, repr=False)
    _limits: ReadLimits | None = field(default=None, repr=False)

    @property
    def schema_name(self) -> str:
        """Full name of the writer schema, e.g. ``lsst.v11_1.alert``."""
        return _schema_name(self.writer_schema)

    @property
    def is_failed_alerts(self) -> bool:
        """True for a failed-alerts file (``alertpack.failedAlert`` records), which replay sends."""
        # not at the top: sinks.failed imports numpy, which iter_kafka_alerts never needs
        from alertpack.sinks.failed import FAILED_ALERT_SCHEMA_NAME

        return self.schema_name == FAILED_ALERT_SCHEMA_NAME

    @property
    def is_rejected_messages(self) -> bool:
        """True for a file of messages ``consume --out`` rejected (`alertpack.tools.rejected`)."""
        return self.schema_name == REJECTED_SCHEMA_NAME

    def check_is_alert_file(self, *, shipped_schema: bool = False) -> None:
        """Raise `InputError` unless the file holds alert records.

        Alert records are records with a ``diaSource`` field (every Rubin
        version has one) or an alert id (``diaSourceId``, ``alertId``), as
        other brokers' alert-like records have. With ``shipped_schema``, a writer schema named after
        a Rubin version must also be exactly that version's shipped definition
        (a renamed field would otherwise be read silently under its new name).
        """
        names = _field_names(self.writer_schema)
        if not names & {"diaSource", *_FIELD_ALIASES["alert_id"]}:
            kind = "records" if names else "data"
            raise InputError(
                f"{self.path} holds {self.schema_name} {kind}, not alerts (no diaSource, "
                "diaSourceId or alertId field); give files of Rubin alert records"
            )
        if shipped_schema and self.schema is not None and not self.has_shipped_schema:
            raise InputError(
                f"{self.path}: its writer schema is named {self.schema_name} but differs from "
                f"the definition lsst-alert-packet ships for version {self.schema.version} "
                "(a field renamed or changed); the file was altered or written by another tool"
            )

    @property
    def has_shipped_schema(self) -> bool:
        """True when the writer schema is the shipped definition of its Rubin version."""
        if self.schema is None:
            return False
        return to_parsing_canonical_form(self.writer_schema) == to_parsing_canonical_form(
            self.schema.definition
        )

    @classmethod
    def open(cls, path: str | os.PathLike, *, limits: ReadLimits | None = None) -> AlertFile:
        """Read the header of an alert file.

        Parameters
        ----------
        path : path-like
            The file.
        limits : `~alertpack.limits.ReadLimits`, optional
            Bounds on header entries, blocks and messages; default: the
            environment (`~alertpack.limits.read_limits`).

        Raises
        ------
        InputError
            If the file cannot be read or is neither an Avro container file
            nor a Confluent wire-format message with a known schema id.
        """
        path = Path(path)
        limits = read_limits(limits)
        try:
            with path.open("rb") as stream:
                head = stream.read(len(AVRO_CONTAINER_MAGIC))
                if head == AVRO_CONTAINER_MAGIC:
                    stream.seek(0)
                    writer_schema = _container_schema(stream, path, limits)
                    schema = rubin_schema_for_name(_schema_name(writer_schema))
                    return cls(
                        path, writer_schema, schema, container=True,
                        _parsed=_parsed_schema(writer_schema, path), _limits=limits,
                    )
        except OSError as error:
            raise InputError(f"cannot read alert file {path}: {error.strerror or error}") from None
        if len(head) >= 1 and head[:1] == b"\x00":
            schema = _wire_schema(path)
            return cls(path, schema.definition, schema, container=False, _limits=limits)
        raise InputError(
            f"{path} is not an alert file: it starts with {head!r}, neither the Avro container "
            "magic 'Obj\\x01' nor a Confluent wire-format header (byte 0x00 + schema id)"
        )

    def count_alerts(self) -> int | None:
        """The alerts the file says it holds, read from its block headers (none decoded).

        For progress bars: `None` when the headers cannot be read (iterating
        the file then says why).
        """
        if not self.container:
            return 1
        count = 0
        try:
            with self.path.open("rb") as stream:
                fastavro.reader(stream)  # the header: the stream is then at the first block
                while (records := _read_long(stream)) is not None:
                    size = _read_long(stream)
                    if size is None or records < 0 or size < 0:
                        return None
                    count += records
                    stream.seek(size + _AVRO_SYNC_SIZE, os.SEEK_CUR)
        except Exception:  # fastavro raises many types for a bad header; counting is advisory
            return None
        return count

    def check_readable(self) -> None:
        """Read the whole file without decoding it: raise `InputError` where it is damaged.

        Each record is only skipped over (about twice as fast as decoding), so
        that a tool can take whole files only, never the part before a damage.
        """
        try:
            with self.path.open("rb") as stream:
                if self.container:
                    limits = read_limits(self._limits)
                    for _ in read_container_payloads(stream, limits=limits)[1]:
                        pass
                else:
                    parsed = self._parsed or fastavro.parse_schema(self.writer_schema)
                    self._read_wire(stream, parsed)
        except LimitExceededError:
            raise
        except OSError as error:
            raise InputError(f"cannot read alert file {self.path}: {error}") from None
        except InputError as error:
            detail = str(error).removeprefix(f"{self.path}: ")
            raise InputError(f"{self.path}: {detail}") from None

    def __iter__(self) -> Iterator[LoadedAlert]:
        parsed = self._parsed
        if parsed is None:
            parsed = self._parsed = fastavro.parse_schema(self.writer_schema)
        try:
            with self.path.open("rb") as stream:
                if self.container:
                    yield from self._iter_container(stream, parsed)
                else:
                    yield self._read_wire(stream, parsed)
        except OSError as error:
            raise InputError(f"cannot read alert file {self.path}: {error}") from None

    def _iter_container(self, stream: BinaryIO, parsed: Schema) -> Iterator[LoadedAlert]:
        limits = read_limits(self._limits)
        name = str(self.path)
        header = read_container_header(stream, name, limits=limits)
        index = 0
        try:
            for block in iter_container_blocks(stream, header, name, limits=limits):
                # Records in a block are contiguous, so the decoder's position
                # delta is each record's exact encoded size.
                data = io.BytesIO(block.data)
                for _ in range(block.count):
                    start = data.tell()
                    record = fastavro.schemaless_reader(data, parsed, None)
                    yield self._loaded(index, record, data.tell() - start)
                    index += 1
                if data.tell() != len(block.data):
                    raise ValueError(
                        f"a block holds {len(block.data) - data.tell()} bytes after its "
                        f"{block.count} records"
                    )
        except LimitExceededError:  # names the file and the limit already
            raise
        except InputError as error:
            if isinstance(error, _NotAnAlert):  # the file is readable, its records are not alerts
                raise
            raise self._corrupt(index, str(error).removeprefix(f"{name}: ")) from None
        except Exception as error:  # fastavro raises many types (and MemoryError) for bad data
            raise self._corrupt(index, _describe(error)) from None

    def _corrupt(self, index: int, detail: str) -> InputError:
        return InputError(
            f"{self.path}: Avro data is corrupt or truncated at alert #{index} "
            f"({detail}); the file may have been copied while it was being written"
        )

    def _read_wire(self, stream: BinaryIO, parsed: Schema) -> LoadedAlert:
        limits = read_limits(self._limits)
        message = stream.read(WIRE_HEADER_SIZE + limits.avro_block_bytes + 1)
        check_limit(
            len(message) - WIRE_HEADER_SIZE, "avro_block_bytes", limits,
            f"{self.path}: wire-format message", "bytes or more",
        )
        try:
            _, payload = unpack_wire(message)
            # exactly one record: the payload must end where the record does
            record = decode_record(
                payload, parsed, what=str(self.path), schema=f"schema {self.schema_name}"
            )
        except InputError as error:
            raise InputError(f"wire-format message: {error}") from None
        return self._loaded(0, record, len(payload))

    def _loaded(self, index: int, record: AvroMessage, size: int) -> LoadedAlert:
        if not isinstance(record, dict):  # a file whose schema is not a record's
            raise _NotAnAlert(
                f"{self.path}: alert #{index} decodes to a {type(record).__name__}, not an alert "
                "record; give files of Rubin alert records"
            )
        return LoadedAlert(
            source=str(self.path),
            index=index,
            schema=self.schema,
            schema_name=self.schema_name,
            alert=record,
            packet_size=size,
        )


def _read_long(stream: BinaryIO) -> int | None:
    """An Avro ``long`` (zig-zag varint) from ``stream``; `None` at the end of the file."""
    shift = value = 0
    while True:
        byte = stream.read(1)
        if not byte:
            return None
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return (value >> 1) ^ -(value & 1)
        shift += 7
        if shift > 63:
            return None


def _describe(error: BaseException) -> str:
    if isinstance(error, MemoryError):
        return "a length in the file is far larger than memory: corrupt data"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _schema_name(writer_schema: Any) -> str:
    if isinstance(writer_schema, dict):
        return str(writer_schema.get("name") or f"<{writer_schema.get('type', 'unnamed')}>")
    if isinstance(writer_schema, str):
        return writer_schema
    return f"<{type(writer_schema).__name__} schema>"


def _field_names(writer_schema: Any) -> set[object]:
    if not isinstance(writer_schema, dict) or writer_schema.get("type") != "record":
        return set()
    fields = writer_schema.get("fields")
    if not isinstance(fields, list):
        return set()
    return {f.get("name") for f in fields if isinstance(f, dict)}


def _parsed_schema(writer_schema: Any, path: Path) -> Schema:
    try:
        return fastavro.parse_schema(writer_schema)
    except Exception as error:  # fastavro raises many types for a bad schema
        raise InputError(
            f"{path}: the writer schema in the file is not a valid Avro schema "
            f"({_describe(error)})"
        ) from None


def _container_schema(stream: BinaryIO, path: Path, limits: ReadLimits) -> Schema:
    try:
        return read_container_header(stream, str(path), limits=limits).schema
    except LimitExceededError:
        raise
    except InputError as error:
        raise InputError(
            f"{path}: the Avro container header cannot be read "
            f"({str(error).removeprefix(f'{path}: ')}); the file is truncated or not an Avro file"
        ) from None


def _wire_schema(path: Path) -> AlertSchema:
    with path.open("rb") as stream:
        header = stream.read(WIRE_HEADER_SIZE)
    try:
        schema_id, _ = unpack_wire(header)
        return schema_for_id(schema_id)
    except (UnknownSchemaError, ValueError) as error:
        raise InputError(f"{path}: {error}") from None


def _alert_paths(path: Path) -> list[Path]:
    """The alert files named by ``path``: itself, or the ``*.avro`` files under it."""
    if path.is_dir():
        found = sorted(
            candidate
            for candidate in path.rglob(f"*{ALERT_FILE_SUFFIX}")
            # hidden names are temporary files of writers still at work
            if candidate.is_file() and not candidate.name.startswith(".")
        )
        if not found:
            raise InputError(
                f"no alert files (*{ALERT_FILE_SUFFIX}) under directory {path}; "
                "give Avro files or a directory that holds them"
            )
        return found
    if not path.exists():
        raise InputError(f"alert file or directory {path} does not exist")
    return [path]


def iter_alert_files(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    report: ReadReport | None = None,
    shipped_schema: bool = False,
) -> Iterator[AlertFile]:
    """Alert files named by ``paths``, in order; directories are searched recursively.

    Failed-alert files (``alertpack.failedAlert`` records, e.g. under
    ``<alertWriteLocation>/failed/``) are recognised by their writer schema
    and skipped: ``alertpack replay`` is for them.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        Avro container files, Confluent wire-format message files, or
        directories holding ``*.avro`` files (hidden files are skipped).
    report : `ReadReport`, optional
        Collects skipped and unreadable files, and reading goes on; without
        it, the first unreadable file raises.
    shipped_schema : `bool`
        Also refuse files whose writer schema claims a Rubin version but is
        not its shipped definition (see `AlertFile.check_is_alert_file`).

    Raises
    ------
    InputError
        Without ``report``: for a missing path, a directory without alert
        files, or a file that is not an alert file.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    for path in paths:
        try:
            file_paths = _alert_paths(Path(path))
        except InputError as error:
            _note(report, error)
            continue
        for file_path in file_paths:
            try:
                alert_file = AlertFile.open(file_path)
                if alert_file.is_failed_alerts:
                    if report is not None:
                        report.skipped.append(
                            f"{file_path}: a failed-alerts file (alertpack.failedAlert), "
                            "not alerts; send it again with `alertpack replay`"
                        )
                    continue
                if alert_file.is_rejected_messages:
                    if report is not None:
                        report.skipped.append(
                            f"{file_path}: messages `alertpack consume` rejected "
                            f"({REJECTED_SCHEMA_NAME}), not alerts"
                        )
                    continue
                alert_file.check_is_alert_file(shipped_schema=shipped_schema)
            except InputError as error:
                _note(report, error)
                continue
            yield alert_file


def _note(report: ReadReport | None, error: InputError) -> None:
    """Record ``error`` in ``report``, or raise it when there is none."""
    if report is None:
        raise error
    report.errors.append(str(error))


def iter_alerts(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    report: ReadReport | None = None,
    shipped_schema: bool = False,
) -> Iterator[LoadedAlert]:
    """Every alert in ``paths`` (see `iter_alert_files`), decoded one at a time.

    With a ``report``, a file corrupt in the middle yields the alerts before
    the damage, and the damage is recorded.
    """
    for alert_file in iter_alert_files(paths, report=report, shipped_schema=shipped_schema):
        try:
            yield from alert_file
        except InputError as error:
            _note(report, error)


def find_alert(
    path: str | os.PathLike, wanted_id: int | None = None, *, report: ReadReport | None = None
) -> LoadedAlert:
    """The alert with top-level id ``wanted_id`` in ``path`` (the first when `None`).

    Alerts whose top-level id does not match are also matched on their
    ``diaSource.diaSourceId``, since older files carry a separate ``alertId``.

    Raises
    ------
    InputError
        If the path holds no alert, or none with that id.
    """
    seen = 0
    for alert in iter_alerts(path, report=report, shipped_schema=True):
        seen += 1
        if wanted_id is None:
            return alert
        source_id = field_value(alert.alert.get("diaSource"), "diaSourceId")
        if wanted_id in (alert.alert_id, source_id):
            return alert
    if seen == 0:
        problems = "" if report is None or not report.errors else " that can be read"
        raise InputError(f"{path} holds no alerts{problems}")
    raise InputError(
        f"no alert with diaSourceId/alertId {wanted_id} among the {seen} alerts in {path}; "
        "list the ids with `alertpack inspect`"
    )
