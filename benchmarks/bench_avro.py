"""Columnar alert encoding vs fastavro, measured side by side in one run.

Builds a visit's worth of alerts (by default 2,000 alerts, each with 20
previous DiaSources, 20 previous forced sources, a DiaObject and three
~12 KB cutouts), then times, on the same content:

- ``dicts``: building the plain-Python alert dicts (``AlertParts.alert_dict``),
  the input fastavro needs;
- ``fastavro``: ``fastavro.schemaless_writer`` on those dicts (dicts prebuilt);
- ``columnar``: `alertpack.packets.avro.AlertEncoder.encode` on the columns.

It asserts that both encoders produce identical bytes and prints µs per
alert and the speed-up. Run::

    .venv/bin/python benchmarks/bench_avro.py [--alerts 2000] [--schema 11.1]
"""

from __future__ import annotations

import argparse
import io
from typing import Any

import numpy as np

from _common import MET_MISSED, Column, Table, Target, best_time, exit_status
from alertpack.packets.avro import AlertEncoder, RecordEncoder
from alertpack.packets.avro_types import avro_field_type
from alertpack.packets.tables import AlertParts, ColumnTable, RecordList, RecordRef, ScalarColumn
from alertpack.schema import AlertSchema, load_schema

BANDS = np.array(list("ugrizy"), dtype=object)
NULL_FRACTION = 0.05
TARGET_SPEEDUP = 10.0


def _realistic_column(name: str, primitive: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Values of the size and spread real catalogs have (ids, MJDs, fluxes, flags)."""
    lowered = name.lower()
    if primitive == "long":
        if lowered.endswith("id"):
            return rng.integers(10**17, 10**18, n, dtype=np.int64)
        if "visit" in lowered:
            return rng.integers(2025010100000, 2025123199999, n, dtype=np.int64)
        if lowered.endswith(("time", "micros")) or "timestamp" in lowered:
            return rng.integers(1_700_000_000_000_000, 1_800_000_000_000_000, n, dtype=np.int64)
        return rng.integers(0, 10**6, n, dtype=np.int64)
    if primitive == "int":
        return rng.integers(0, 200, n, dtype=np.int32)
    if primitive == "float":
        return (rng.standard_normal(n) * 1000.0).astype(np.float32)
    if primitive == "double":
        if "mjd" in lowered:
            return 60_000.0 + rng.random(n) * 1000.0
        if lowered in ("ra", "dec") or lowered.startswith(("ra", "dec")):
            return rng.random(n) * 360.0 - 90.0
        return rng.standard_normal(n) * 1e3
    if primitive == "boolean":
        return rng.random(n) < 0.1
    if primitive == "string":
        return BANDS[rng.integers(0, len(BANDS), n)]
    if primitive == "bytes":
        values = np.empty(n, dtype=object)
        values[:] = [rng.bytes(16) for _ in range(n)]
        return values
    raise ValueError(f"{name}: no generator for Avro type {primitive!r}")


def realistic_table(record: dict[str, Any], n: int, rng: np.random.Generator) -> ColumnTable:
    """``n`` rows of ``record`` with realistic values and ~5% nulls in nullable fields."""
    columns, nulls = {}, {}
    for field in record["fields"]:
        primitive, nullable, _ = avro_field_type(field["type"])
        columns[field["name"]] = _realistic_column(field["name"], primitive, n, rng)
        if nullable:
            nulls[field["name"]] = rng.random(n) < NULL_FRACTION
    return ColumnTable(record, columns, nulls, n)


def build_parts(
    schema: AlertSchema,
    n_alerts: int,
    n_history: int,
    n_forced: int,
    cutout_bytes: int,
    rng: np.random.Generator,
    *,
    shuffle_history: bool = False,
) -> AlertParts:
    """A visit's alerts: every alert with its history, object and cutouts."""
    fields: dict[str, Any] = {}
    for field in schema.definition["fields"]:
        name = field["name"]
        record = schema.record(name)
        avro_type = field["type"]
        is_list = isinstance(avro_type, list) and any(
            isinstance(branch, dict) and branch.get("type") == "array" for branch in avro_type
        )
        if record is None:
            primitive, nullable, _ = avro_field_type(avro_type)
            if primitive == "bytes":
                fields[name] = [rng.bytes(cutout_bytes) for _ in range(n_alerts)]
            else:
                values = _realistic_column(name, primitive, n_alerts, rng)
                fields[name] = ScalarColumn(values, np.zeros(n_alerts, bool) if nullable else None)
        elif is_list:
            per_alert = n_history if "Forced" not in name else n_forced
            table = realistic_table(record, n_alerts * per_alert, rng)
            offsets = np.arange(n_alerts + 1) * per_alert
            # a catalog in input order: an alert's history rows are scattered over the table
            index = rng.permutation(table.n_rows) if shuffle_history else np.arange(table.n_rows)
            fields[name] = RecordList(table, offsets, index)
        elif name in ("diaSource", "diaObject"):
            table = realistic_table(record, n_alerts, rng)
            fields[name] = RecordRef(table, np.arange(n_alerts))
        else:  # solar-system records: most alerts have none
            table = realistic_table(record, max(1, n_alerts // 20), rng)
            index = np.full(n_alerts, -1)
            index[::20] = np.arange(len(index[::20])) % table.n_rows
            fields[name] = RecordRef(table, index)
    return AlertParts(n_alerts, fields)


def fastavro_payloads(parsed_schema: Any, alerts: list[dict[str, Any]]) -> list[bytes]:
    import fastavro

    payloads = []
    for alert in alerts:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed_schema, alert)
        payloads.append(buffer.getvalue())
    return payloads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--history", type=int, default=20, help="previous DiaSources per alert")
    parser.add_argument("--forced", type=int, default=20, help="previous forced sources per alert")
    parser.add_argument("--cutout-bytes", type=int, default=12_000)
    parser.add_argument("--schema", default=None, help="alert schema version (default latest)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--shuffle-history",
        action="store_true",
        help="scatter each alert's history rows over the tables (catalog order) "
        "instead of storing them alert by alert",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke run (100 alerts, one repeat); byte identity checked, target not enforced",
    )
    args = parser.parse_args()
    if args.quick:
        args.alerts, args.repeat = 100, 1

    import fastavro

    schema = load_schema(args.schema)
    rng = np.random.default_rng(args.seed)
    parts = build_parts(
        schema, args.alerts, args.history, args.forced, args.cutout_bytes, rng,
        shuffle_history=args.shuffle_history,
    )
    encoder = AlertEncoder(schema)
    parsed = fastavro.parse_schema(schema.definition)
    names = schema.field_names

    dict_time, alerts = best_time(
        lambda: [parts.alert_dict(i, names) for i in range(args.alerts)], args.repeat
    )
    fastavro_time, expected = best_time(lambda: fastavro_payloads(parsed, alerts), args.repeat)
    columnar_time, payloads = best_time(lambda: encoder.encode(parts), args.repeat)
    if payloads != expected:
        first = next(i for i, (a, b) in enumerate(zip(payloads, expected, strict=True)) if a != b)
        raise AssertionError(f"alert {first}: columnar bytes differ from fastavro's")

    history = parts.fields["prvDiaSources"].table
    history_time, _ = best_time(lambda: RecordEncoder(history.schema).encode(history), args.repeat)

    per_alert = 1e6 / args.alerts
    sizes = np.array([len(p) for p in payloads])
    print(
        f"schema {schema.version}: {args.alerts} alerts, {args.history} prvDiaSources + "
        f"{args.forced} prvDiaForcedSources each"
        f"{' (rows scattered)' if args.shuffle_history else ''}, "
        f"3 cutouts of {args.cutout_bytes} B; "
        f"mean packet {sizes.mean() / 1024:.1f} KiB; best of {args.repeat}"
    )
    rows = [
        ("build dicts (alert_dict)", dict_time),
        ("fastavro.schemaless_writer", fastavro_time),
        ("dicts + fastavro", dict_time + fastavro_time),
        ("alertpack AlertEncoder", columnar_time),
    ]
    table = Table([Column("step", 30, align="<"), Column("us/alert", 12, ".1f"),
                   Column("vs columnar", 14, ".1f", suffix="x")], separator="")
    print(table.header())
    for label, seconds in rows:
        print(table.row([label, seconds * per_alert, seconds / columnar_time]))
    print(table.row(["  of which prvDiaSources table", history_time * per_alert, ""])
          + f"  ({history_time * 1e9 / history.n_rows:.0f} ns/row)")
    speedup = fastavro_time / columnar_time
    target = Target(f">= {TARGET_SPEEDUP:.0f}x", f"{speedup:.1f}x", speedup >= TARGET_SPEEDUP)
    print(f"byte-identical: yes; speed-up vs fastavro alone: {target.measured} "
          f"(target {target.name}: {target.verdict(MET_MISSED)})")
    return exit_status([target], enforce=not args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
