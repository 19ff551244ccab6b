"""Look at alerts (``alertpack inspect``) and check them (``alertpack validate``).

``inspect`` prints one line per alert with the numbers a broker shows first:
ids, band, time, position, S/N, history length, cutout and packet sizes.

``validate`` checks each alert the way a downstream consumer depends on it,
and tells **errors** (the alert is broken: a consumer cannot rely on it) from
**warnings** (it departs from a packaging convention that alertpack follows
but the schema does not demand; lsst-alert-packet's own sample alerts do):

- *schema* (errors): the record conforms to the official schema of its
  version (the file's writer schema, or ``--schema``), every value fits its
  Avro type (ints in range, finite floats within float32 for ``float``),
  and a file's writer schema named after a Rubin version is that version's
  shipped definition;
- *ids*: errors when two ids contradict each other (diaSource and diaObject
  name different objects, a history row belongs to another object, the
  current source is repeated in its own history, a history id repeats);
  warnings for conventions: the top-level id differs from the diaSource's id
  (the official samples do so), or a link is null where the alert has an id;
- *history* (warnings): previous sources and forced sources are oldest first
  and earlier than the current source;
- *cutouts* (errors): each stamp, of any packing (plain, gzipped or
  tile-compressed FITS), decodes, passes ``fitsverify``, the reference
  FITS-standard checker, when it is installed (a gzipped stamp on the FITS
  file it holds, a tile-compressed one as it is), and is a 2-D image astropy
  opens (`alertpack.tools.cutout_checks`); ``fitsverify`` checks many stamps
  per run, in the background beside the decoding (`validate_alerts`).

Both take alerts from files (`iter_alert_summaries`, `validate_paths`) or
from Kafka (`kafka_alerts`, `validate_kafka`), and a
`~alertpack.tools.selection.Selection` of them.
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
from fastavro.schema import to_parsing_canonical_form

from alertpack.errors import InputError
from alertpack.kafka.settings import ConsumerSettings
from alertpack.packets.avro_types import FLOAT32_MAX, INT_RANGES
from alertpack.schema import AlertSchema, collect_named_types, load_schema
from alertpack.terminal import printable
from alertpack.tools.consume import ConsumedAlert, iter_kafka_alerts
from alertpack.tools.cutout_checks import (
    ERROR,
    WARNING,
    CutoutChecks,
    Problem,
    check_cutouts,
    use_fitsverify,
)
from alertpack.tools.reading import (
    CUTOUT_FIELDS,
    AlertFile,
    LoadedAlert,
    ReadReport,
    alert_id,
    alert_object_id,
    field_value,
    iter_alert_files,
    iter_alerts,
    signal_to_noise,
)
from alertpack.tools.selection import Selection

__all__ = [
    "AlertReport",
    "Problem",
    "check_cutouts",
    "check_history",
    "check_ids",
    "check_schema",
    "iter_alert_summaries",
    "kafka_alerts",
    "summarize_alert",
    "validate_alert",
    "validate_alerts",
    "validate_kafka",
    "validate_paths",
]

# Schema problems are listed up to this many per alert: a record of another
# version fails on nearly every field, and one screen says enough.
MAX_SCHEMA_PROBLEMS = 10

# --------------------------------------------------------------------------- inspect


def _cutout_size(record: dict[str, Any], name: str) -> int | None:
    data = record.get(name)
    return None if data is None else len(data)


def _cutout_variant(record: dict[str, Any]) -> str | None:
    """The packing of the alert's cutouts (``none``, ``gzip``, ...; ``mixed``), read from bytes."""
    # the stamp code (numpy) only for alerts with cutouts: inspect otherwise reads Avro alone
    from alertpack.packets.stamp_compression import stamp_variant

    variants = {stamp_variant(record[name]) for name in CUTOUT_FIELDS if record.get(name)}
    if not variants:
        return None
    return variants.pop() if len(variants) == 1 else "mixed"


def _list_length(record: dict[str, Any], name: str) -> int | None:
    items = record.get(name)
    return None if items is None else len(items)


def summarize_alert(alert: LoadedAlert) -> dict[str, Any]:
    """The inspection row of one alert, as JSON-ready values (`None` when absent).

    Keys: ``source``, ``index``, ``location`` (``file#index``, or
    ``topic[partition]@offset`` on Kafka), ``schema``, ``alertId``,
    ``diaSourceId``, ``diaObjectId``, ``band``, ``mjd`` (the source's
    midpoint, MJD TAI), ``ra``, ``dec`` (deg), ``snr`` (signed:
    `~alertpack.tools.reading.signal_to_noise`), ``psfFlux``, ``psfFluxErr``
    (nJy), ``nPrvDiaSources``, ``nPrvDiaForcedSources``, ``cutoutScience``,
    ``cutoutTemplate``, ``cutoutDifference`` (sizes in bytes as carried),
    ``stampBytes`` (their sum), ``cutoutCompression`` (``none``, ``gzip``,
    ``lossless``, ``lossy16``, ``mixed`` or ``unknown``: how they are packed), ``packetSize``
    (bytes, see `alertpack.tools.reading.LoadedAlert`).
    """
    record = alert.alert
    source = record.get("diaSource")
    row: dict[str, Any] = {
        "source": alert.source,
        "index": alert.index,
        "location": alert.label,
        "schema": str(alert.schema.version) if alert.schema else alert.schema_name,
        "alertId": alert_id(record),
        "diaSourceId": field_value(source, "diaSourceId"),
        "diaObjectId": alert_object_id(record),
        "band": field_value(source, "band"),
        "mjd": field_value(source, "mjd"),
        "ra": field_value(source, "ra"),
        "dec": field_value(source, "dec"),
        "snr": signal_to_noise(source),
        "psfFlux": field_value(source, "flux"),
        "psfFluxErr": field_value(source, "flux_err"),
        "nPrvDiaSources": _list_length(record, "prvDiaSources"),
        "nPrvDiaForcedSources": _list_length(record, "prvDiaForcedSources"),
    }
    for name in CUTOUT_FIELDS:
        row[name] = _cutout_size(record, name)
    sizes = [row[name] for name in CUTOUT_FIELDS if row[name] is not None]
    row["stampBytes"] = sum(sizes) if sizes else None
    row["cutoutCompression"] = _cutout_variant(record)
    row["packetSize"] = alert.packet_size
    # NaN is not JSON; an absent measurement is null either way
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in row.items()
    }


def kafka_alerts(
    settings: ConsumerSettings,
    *,
    from_beginning: bool = False,
    max_alerts: int | None = None,
    timeout: float = 10.0,
    group: str | None = None,
    selection: Selection | None = None,
) -> Iterator[LoadedAlert]:
    """The alerts of a Kafka topic as `LoadedAlert` s, the shape `summarize_alert` takes.

    Parameters are those of `alertpack.tools.consume.iter_kafka_alerts`; a
    message that is not an alert raises `~alertpack.errors.AlertDecodeError`.
    ``index`` counts the alerts read, ``label`` is ``topic[partition]@offset``.
    """
    messages = iter_kafka_alerts(
        settings, from_beginning=from_beginning, max_alerts=max_alerts, timeout=timeout,
        group=group, selection=selection,
    )
    for index, message in enumerate(messages):
        yield LoadedAlert(
            source=message.source,
            index=index,
            schema=message.schema,
            schema_name=message.schema_name,
            alert=message.alert,
            packet_size=len(message.payload),
            position=message.label,
        )


def iter_alert_summaries(
    paths: Iterable[str | os.PathLike],
    max_alerts: int | None = None,
    *,
    report: ReadReport | None = None,
    selection: Selection | None = None,
) -> Iterator[dict[str, Any]]:
    """`summarize_alert` rows of the alerts in ``paths`` (those ``selection`` selects).

    At most ``max_alerts``. With a ``report``, unreadable and skipped files are
    recorded there and the other files still read (see
    `alertpack.tools.reading.iter_alert_files`).
    """
    alerts = iter_alerts(list(paths), report=report, shipped_schema=True)
    if selection is not None:
        alerts = selection.select(alerts)
    for count, alert in enumerate(alerts):
        if max_alerts is not None and count >= max_alerts:
            return
        yield summarize_alert(alert)


# (header, width, formatter) of the table columns; formatters get the row
_TABLE_COLUMNS: list[tuple[str, int, Callable[[dict[str, Any]], str]]] = [
    ("alertId", 19, lambda row: _text(row["alertId"])),
    ("diaObjectId", 19, lambda row: _text(row["diaObjectId"])),
    ("band", 4, lambda row: _text(row["band"])),
    ("MJD(TAI)", 12, lambda row: _number(row["mjd"], "{:.5f}")),
    ("ra[deg]", 11, lambda row: _number(row["ra"], "{:.6f}")),
    ("dec[deg]", 10, lambda row: _number(row["dec"], "{:+.6f}")),
    ("S/N", 7, lambda row: _number(row["snr"], "{:.1f}")),
    ("nPrv", 4, lambda row: _text(row["nPrvDiaSources"])),
    ("nFrc", 4, lambda row: _text(row["nPrvDiaForcedSources"])),
    ("sci[B]", 7, lambda row: _text(row["cutoutScience"])),
    ("tpl[B]", 7, lambda row: _text(row["cutoutTemplate"])),
    ("diff[B]", 7, lambda row: _text(row["cutoutDifference"])),
    ("stamps[B]", 9, lambda row: _text(row["stampBytes"])),
    ("packing", 8, lambda row: _text(row["cutoutCompression"])),
    ("size[B]", 8, lambda row: _text(row["packetSize"])),
    ("schema", 6, lambda row: _text(row["schema"])),
]


def _text(value: Any) -> str:
    # a band, a schema name, a file name: from input, escaped (alertpack.terminal)
    return "-" if value is None else printable(value)


def _number(value: Any, template: str) -> str:
    return "-" if value is None else template.format(value)


def _table_line(cells: list[str]) -> str:
    widths = [width for _, width, _ in _TABLE_COLUMNS]
    return "  ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True))


def write_table(rows: Iterable[dict[str, Any]], stream: TextIO) -> int:
    """Print rows as an aligned text table as they come; returns the row count."""
    count = 0
    rows = iter(rows)
    first = next(rows, None)  # a bad path fails here, before the header is printed
    print(_table_line([header for header, _, _ in _TABLE_COLUMNS]) + "  where", file=stream)
    for row in itertools.chain([] if first is None else [first], rows):
        cells = [format_cell(row) for _, _, format_cell in _TABLE_COLUMNS]
        print(_table_line(cells) + "  " + printable(_short_location(row)), file=stream)
        count += 1
    return count


def _short_location(row: dict[str, Any]) -> str:
    """``file#index`` with the file's name only; a Kafka position as it is."""
    if row["source"].startswith("kafka://"):
        return str(row["location"])
    return f"{os.path.basename(row['source'])}#{row['index']}"


def write_json_lines(rows: Iterable[dict[str, Any]], stream: TextIO) -> int:
    """Print rows as JSON Lines (one object per alert); returns the row count."""
    count = 0
    for row in rows:
        print(json.dumps(row), file=stream)
        count += 1
    return count


# -------------------------------------------------------------------------- validate


@dataclass
class AlertReport:
    """The problems found in one alert (none when it is valid).

    ``alert`` is the alert as read: a `LoadedAlert` from a file, a
    `~alertpack.tools.consume.ConsumedAlert` from Kafka (one shape: ``alert``,
    ``alert_id``, ``label``...).
    """

    alert: LoadedAlert | ConsumedAlert
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        """The problems that make the alert invalid."""
        return [problem for problem in self.problems if problem.is_error]

    @property
    def warnings(self) -> list[Problem]:
        """The departures from conventions."""
        return [problem for problem in self.problems if not problem.is_error]

    @property
    def valid(self) -> bool:
        """True when no check found an error (warnings allowed)."""
        return not self.errors


class _SchemaChecker:
    """Finds where a record departs from an Avro schema, field by field.

    The schema is compiled once into one test function per type (a record's
    test calls its fields' tests), so that a valid alert, the common case, is
    confirmed in one pass without interpreting the schema again. Only for a
    record that fails does the walk look for the exact field and value, which
    fastavro's validator does not name (for a nested union it blames the
    whole sub-record). The tests are stricter than fastavro's: a ``float``
    must fit float32 (fastavro would write a larger finite value as
    infinity), booleans are not integers, map keys are text.
    """

    def __init__(self, definition: dict[str, Any]) -> None:
        self.definition = definition
        self.named: dict[str, Any] = {}
        collect_named_types(definition, self.named)
        # type (a name, or the id of a schema dict/list held by `definition`) -> its test
        self._tests: dict[Any, Callable[[Any], bool]] = {}
        self._test_record = self._test(definition)

    def problems(self, record: dict[str, Any]) -> list[str]:
        if self._test_record(record):
            return []
        found: list[str] = []
        self._walk(record, self.definition, "", found)
        return found or ["the record does not conform to the schema"]

    def _walk(self, datum: Any, avro_type: Any, path: str, found: list[str]) -> None:
        if len(found) > MAX_SCHEMA_PROBLEMS:
            return
        if isinstance(avro_type, str) and avro_type in self.named:
            avro_type = self.named[avro_type]
        if isinstance(avro_type, list):
            self._walk_union(datum, avro_type, path, found)
        elif isinstance(avro_type, dict) and avro_type.get("type") == "record":
            if not isinstance(datum, dict):
                found.append(f"{path or 'alert'}: {_short(datum)} is not a record")
                return
            for avro_field in avro_type["fields"]:
                name = avro_field["name"]
                self._walk(datum.get(name), avro_field["type"], _join(path, name), found)
        elif isinstance(avro_type, dict) and avro_type.get("type") == "array":
            if not isinstance(datum, list | tuple):
                found.append(f"{path}: {_short(datum)} is not an array")
                return
            for position, item in enumerate(datum):
                self._walk(item, avro_type["items"], f"{path}[{position}]", found)
        elif not self._matches(datum, avro_type):
            found.append(f"{path}: {_short(datum)} is not a valid {_type_name(avro_type)}")

    def _walk_union(self, datum: Any, branches: list, path: str, found: list[str]) -> None:
        resolved = [self.named.get(b, b) if isinstance(b, str) else b for b in branches]
        if any(self._matches(datum, branch) for branch in resolved):
            return
        # blame the inner field of the branch the datum was meant for
        for branch in resolved:
            kind = branch.get("type") if isinstance(branch, dict) else None
            if (kind == "record" and isinstance(datum, dict)) or (
                kind == "array" and isinstance(datum, list | tuple)
            ):
                self._walk(datum, branch, path, found)
                return
        names = " or ".join(_type_name(branch) for branch in resolved)
        found.append(f"{path}: {_short(datum)} is not a valid {names}")

    def _matches(self, datum: Any, avro_type: Any) -> bool:
        """Whether ``datum`` fits ``avro_type`` entirely (records checked in depth)."""
        return self._test(avro_type)(datum)

    def _test(self, avro_type: Any) -> Callable[[Any], bool]:
        """The compiled test of ``avro_type`` (a part of `definition`, or a type name)."""
        key = avro_type if isinstance(avro_type, str) else id(avro_type)
        test = self._tests.get(key)
        if test is None:
            if isinstance(avro_type, str) and avro_type in self.named:
                # a named type may refer to itself: its test is looked up when it runs
                self._tests[key] = lambda datum: self._tests[key](datum)
                test = self._compile(self.named[avro_type])
            else:
                test = self._compile(avro_type)
            self._tests[key] = test
        return test

    def _compile(self, avro_type: Any) -> Callable[[Any], bool]:
        if isinstance(avro_type, list):
            branches = [self._test(branch) for branch in avro_type]
            if len(avro_type) == 2 and avro_type[0] == "null":
                other = branches[1]
                return lambda datum: datum is None or other(datum)
            return lambda datum: any(branch(datum) for branch in branches)
        if isinstance(avro_type, str):
            return _primitive_test(avro_type)
        kind = avro_type["type"]
        if kind == "record":
            fields = [(f["name"], self._test(f["type"])) for f in avro_type["fields"]]

            def record(datum: Any) -> bool:
                if not isinstance(datum, dict):
                    return False
                get = datum.get
                for name, test in fields:
                    if not test(get(name)):
                        return False
                return True

            return record
        if kind == "array":
            item = self._test(avro_type["items"])
            return lambda datum: isinstance(datum, list | tuple) and all(map(item, datum))
        if kind == "map":
            value = self._test(avro_type["values"])
            return lambda datum: isinstance(datum, dict) and all(
                isinstance(key, str) and value(item) for key, item in datum.items()
            )
        if kind == "enum":
            symbols = frozenset(avro_type["symbols"])
            return lambda datum: isinstance(datum, str) and datum in symbols
        if kind == "fixed":
            size = avro_type["size"]
            return lambda datum: isinstance(datum, bytes) and len(datum) == size
        base = self._test(kind)
        if avro_type.get("logicalType", "").startswith("timestamp"):
            return lambda datum: isinstance(datum, datetime.datetime) or base(datum)
        return base


def _primitive_test(avro_type: str) -> Callable[[Any], bool]:
    if avro_type == "null":
        return lambda datum: datum is None
    if avro_type == "boolean":
        return lambda datum: isinstance(datum, bool | np.bool_)
    if avro_type in INT_RANGES:
        low, high = INT_RANGES[avro_type]

        def integer(datum: Any) -> bool:
            if type(datum) is not int and (
                not isinstance(datum, int | np.integer) or isinstance(datum, bool)
            ):
                return False
            return bool(low <= datum <= high)

        return integer
    if avro_type in ("float", "double"):
        # a finite value beyond float32 would be written as infinity
        limit = FLOAT32_MAX if avro_type == "float" else math.inf

        def real(datum: Any) -> bool:
            if type(datum) is not float and (
                not isinstance(datum, int | float | np.number) or isinstance(datum, bool)
            ):
                return False
            return not (limit < abs(float(datum)) < math.inf)

        return real
    if avro_type == "string":
        return lambda datum: isinstance(datum, str)
    if avro_type == "bytes":
        return lambda datum: isinstance(datum, bytes | bytearray)
    return lambda datum: False


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _short(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return "a record"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(avro_type: Any) -> str:
    if isinstance(avro_type, dict):
        return str(avro_type.get("name") or avro_type.get("type"))
    return str(avro_type)


def check_schema(record: dict[str, Any], checker: _SchemaChecker, label: str) -> list[Problem]:
    """Problems of ``record`` against a schema (``label`` names it in messages)."""
    messages = checker.problems(record)
    problems = [
        Problem("schema", f"{message} (schema {label})")
        for message in messages[:MAX_SCHEMA_PROBLEMS]
    ]
    if len(messages) > MAX_SCHEMA_PROBLEMS:
        problems.append(Problem("schema", f"... and more fields that do not match {label}"))
    return problems


def check_ids(record: dict[str, Any]) -> list[Problem]:
    """Id links: alert -> diaSource -> diaObject, history and forced sources -> diaObject.

    Two ids that name different things are errors; a top-level id other than
    the diaSource's, or a null link where the alert has an id, are warnings
    (lsst-alert-packet's sample alerts have both).
    """
    problems: list[Problem] = []
    source = record.get("diaSource")
    if source is None:
        return [Problem("ids", "the alert has no diaSource")]
    source_id = source.get("diaSourceId")
    top_name = "diaSourceId" if "diaSourceId" in record else "alertId"
    top_id = record.get(top_name)
    if top_id != source_id:
        problems.append(
            Problem(
                "ids",
                f"{top_name} {top_id} differs from diaSource.diaSourceId {source_id}",
                WARNING,
            )
        )
    diaobject = record.get("diaObject")
    object_id = None if diaobject is None else diaobject.get("diaObjectId")
    source_object_id = source.get("diaObjectId")
    if diaobject is not None and source_object_id != object_id:
        problems.append(
            Problem(
                "ids",
                f"diaSource.diaObjectId {source_object_id} differs from "
                f"diaObject.diaObjectId {object_id}",
                WARNING if source_object_id is None or object_id is None else ERROR,
            )
        )
    if diaobject is None and source_object_id not in (None, 0):
        problems.append(
            Problem(
                "ids",
                f"diaSource belongs to diaObject {source_object_id} "
                "but the alert carries no diaObject",
                WARNING,
            )
        )
    reference = object_id if object_id is not None else source_object_id
    for list_name, id_name in (
        ("prvDiaSources", "diaSourceId"),
        ("prvDiaForcedSources", "diaForcedSourceId"),
    ):
        problems.extend(_foreign_members(record.get(list_name), list_name, id_name, reference))
    previous_ids = [item.get("diaSourceId") for item in record.get("prvDiaSources") or []]
    if source_id is not None and source_id in previous_ids:
        problems.append(
            Problem("ids", f"the current diaSource {source_id} is repeated in prvDiaSources")
        )
    duplicates = sorted({i for i in previous_ids if previous_ids.count(i) > 1} - {None})
    if duplicates:
        problems.append(Problem("ids", f"prvDiaSources repeat diaSourceId(s) {duplicates}"))
    return problems


def _foreign_members(
    items: list[dict[str, Any]] | None, list_name: str, id_name: str, object_id: int | None
) -> list[Problem]:
    """History rows of another diaObject (errors) or with a null diaObjectId (warnings)."""
    if not items:
        return []
    if object_id is None:
        return [Problem("ids", f"{list_name} present but the alert has no diaObjectId", WARNING)]
    problems = []
    for position, item in enumerate(items):
        other = item.get("diaObjectId")
        if other == object_id:
            continue
        problems.append(
            Problem(
                "ids",
                f"{list_name}[{position}] ({id_name} {item.get(id_name)}) belongs to "
                f"diaObject {other}, not to the alert's diaObject {object_id}",
                WARNING if other is None else ERROR,
            )
        )
    return problems


def check_history(record: dict[str, Any]) -> list[Problem]:
    """Previous and forced sources oldest first and before the current source (warnings).

    These are alertpack's (and LSST's) packaging conventions, not the
    schema's: lsst-alert-packet's samples list history newest first, or at
    the current source's time.
    """
    problems: list[Problem] = []
    current_mjd = field_value(record.get("diaSource"), "mjd")
    for list_name, same_visit_allowed in (("prvDiaSources", False), ("prvDiaForcedSources", True)):
        items = record.get(list_name) or []
        if not items:
            continue
        mjds = np.array([field_value(item, "mjd", np.nan) for item in items], dtype=float)
        backwards = np.flatnonzero(np.diff(mjds) < 0)
        if backwards.size:
            first = int(backwards[0])
            problems.append(
                Problem(
                    "history",
                    f"{list_name} are not in time order: [{first}] at MJD {mjds[first]:.6f} "
                    f"comes before [{first + 1}] at MJD {mjds[first + 1]:.6f} "
                    f"({backwards.size} inversion(s)); alertpack orders them oldest first",
                    WARNING,
                )
            )
        if current_mjd is None:
            continue
        late = mjds > current_mjd if same_visit_allowed else mjds >= current_mjd
        if np.any(late):
            position = int(np.flatnonzero(late)[0])
            relation = "after" if same_visit_allowed else "at or after"
            problems.append(
                Problem(
                    "history",
                    f"{list_name}[{position}] at MJD {mjds[position]:.6f} is {relation} the "
                    f"current diaSource (MJD {current_mjd:.6f}); "
                    f"{int(late.sum())} such source(s)",
                    WARNING,
                )
            )
    return problems


def _writer_schema_problems(alert_file: AlertFile) -> list[Problem]:
    """A writer schema that claims a Rubin version but is not its shipped definition."""
    if alert_file.schema is None:
        return []
    written = to_parsing_canonical_form(alert_file.writer_schema)
    shipped = to_parsing_canonical_form(alert_file.schema.definition)
    if written == shipped:
        return []
    return [
        Problem(
            "schema",
            f"the file's writer schema is named {alert_file.schema_name} but differs from the "
            f"definition lsst-alert-packet ships for version {alert_file.schema.version}",
        )
    ]


def validate_alert(
    alert: LoadedAlert | ConsumedAlert,
    schema: AlertSchema | None = None,
    *,
    cutouts: bool = True,
    fitsverify: bool | None = None,
) -> list[Problem]:
    """All problems of one alert.

    Parameters
    ----------
    alert : `LoadedAlert` or `~alertpack.tools.consume.ConsumedAlert`
        The alert, read from a file or from Kafka.
    schema : `AlertSchema`, optional
        Schema to check against; default: the shipped schema of the alert's
        writer schema (a problem if it has none).
    cutouts : `bool`
        Run the cutout checks.
    fitsverify : `bool` or `None`
        As for `check_cutouts`.
    """
    target = schema or alert.schema
    problems = _record_problems(alert, target, _checker_for(target))
    if cutouts:
        problems.extend(check_cutouts(alert.alert, fitsverify=fitsverify))
    return problems


def _checker_for(schema: AlertSchema | None) -> _SchemaChecker | None:
    return None if schema is None else _SchemaChecker(schema.definition)


def _record_problems(
    alert: LoadedAlert | ConsumedAlert,
    schema: AlertSchema | None,
    checker: _SchemaChecker | None,
) -> list[Problem]:
    """The schema, id and history problems of one alert (not its cutouts)."""
    problems: list[Problem] = []
    if checker is None or schema is None:
        problems.append(
            Problem(
                "schema",
                f"writer schema {alert.schema_name!r} is not a Rubin alert schema shipped by "
                "lsst-alert-packet; pass --schema MAJOR.MINOR to check against one",
            )
        )
    else:
        problems.extend(check_schema(alert.alert, checker, str(schema.version)))
    problems.extend(check_ids(alert.alert))
    problems.extend(check_history(alert.alert))
    return problems


def validate_alerts(
    alerts: Iterable[tuple[LoadedAlert | ConsumedAlert, AlertSchema | None, list[Problem]]],
    *,
    cutouts: bool = True,
    fitsverify: bool | None = None,
    runs: int | None = None,
) -> Iterator[AlertReport]:
    """Validate a stream of alerts; the reports come in input order.

    Parameters
    ----------
    alerts : iterable of ``(alert, schema, problems)``
        Each alert (from a file or Kafka), the schema to check it against
        (`None`: a problem, no Rubin schema) and problems already known (of
        its file's writer schema).
    cutouts : `bool`
        Run the cutout checks.
    fitsverify : `bool` or `None`
        As for `check_cutouts` (checked once, before the first alert).
    runs : `int`, optional
        fitsverify runs at a time, each a process of its own beside this one
        (default: the cores, at most 4).
    """
    verifying = cutouts and use_fitsverify(fitsverify)
    in_flight = runs if runs is not None else min(4, os.cpu_count() or 1)
    checks: CutoutChecks[AlertReport] = CutoutChecks(verifying, in_flight)
    checkers: dict[Any, _SchemaChecker | None] = {}
    try:
        for alert, schema, known in alerts:
            key = None if schema is None else schema.version
            if key not in checkers:
                checkers[key] = _checker_for(schema)
            report = AlertReport(alert, [*known, *_record_problems(alert, schema, checkers[key])])
            if cutouts:
                yield from checks.add(report)
            else:
                yield report
        yield from checks.finish()
    finally:
        checks.close()


def validate_paths(
    paths: Iterable[str | os.PathLike],
    schema: str | AlertSchema | None = None,
    *,
    report: ReadReport | None = None,
    selection: Selection | None = None,
    cutouts: bool = True,
    fitsverify: bool | None = None,
    runs: int | None = None,
) -> Iterator[AlertReport]:
    """Validate every alert in ``paths`` (files or directories).

    Parameters
    ----------
    paths : iterable of path-like
        Alert files or directories.
    schema : `str` or `AlertSchema`, optional
        Version (e.g. ``"11.1"``) to check every alert against, instead of
        each file's own writer schema.
    report : `ReadReport`, optional
        Collects failed-alert files skipped and files that cannot be read (or
        are corrupt part way), and the other files are still validated.
    selection : `~alertpack.tools.selection.Selection`, optional
        Validate only the alerts it selects.
    cutouts, fitsverify, runs
        As for `validate_alerts`.

    Yields
    ------
    report : `AlertReport`
        One per alert, in file order. A file whose writer schema misuses a
        Rubin name reports that on each of its alerts.
    """
    forced = load_schema(schema) if isinstance(schema, str) else schema

    def alerts() -> Iterator[tuple[LoadedAlert, AlertSchema | None, list[Problem]]]:
        for alert_file in iter_alert_files(list(paths), report=report):
            file_problems = [] if forced else _writer_schema_problems(alert_file)
            read = iter(alert_file)
            chosen = read if selection is None else selection.select(read)
            try:
                for alert in chosen:
                    yield alert, forced or alert_file.schema, file_problems
            except InputError as error:
                if report is None:
                    raise
                report.errors.append(str(error))

    return validate_alerts(alerts(), cutouts=cutouts, fitsverify=fitsverify, runs=runs)


def validate_kafka(
    alerts: Iterable[ConsumedAlert],
    schema: str | AlertSchema | None = None,
    *,
    cutouts: bool = True,
    fitsverify: bool | None = None,
    runs: int | None = None,
) -> Iterator[AlertReport]:
    """Validate alerts read from Kafka (`~alertpack.tools.consume.iter_kafka_alerts`).

    ``schema`` as for `validate_paths` (by default each message's schema id
    names it); ``cutouts``, ``fitsverify``, ``runs`` as for `validate_alerts`.
    """
    forced = load_schema(schema) if isinstance(schema, str) else schema
    return validate_alerts(
        ((alert, forced or alert.schema, []) for alert in alerts),
        cutouts=cutouts, fitsverify=fitsverify, runs=runs,
    )
