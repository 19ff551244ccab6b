"""The browse index: a few summary columns per alert and where its record is.

Indexing reads every alert once (`index_paths`, in a background thread, or
`AlertIndex.add_alert` for alerts from Kafka) and keeps, per alert, the
quantities of `alertpack.tools.selection.QUANTITIES` in numpy columns and a
locator of its record (`alertpack.tools.browse.stores`). The table is then
filtered, sorted and paged on the columns alone; an alert is decoded again
only when its page is opened (`AlertIndex.alert`). 100,000 alerts take a few
tens of MB.

The index only grows. Rows are numbered from 0 in the order they were
indexed; a reader takes a snapshot of the columns and of the row count, so
filtering never waits for the indexer and never sees half a row.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alertpack.errors import InputError, SelectionError
from alertpack.tools.browse.stores import AlertStore, Spool, SpoolStore, scan_file
from alertpack.tools.reading import ReadReport, iter_alert_files
from alertpack.tools.selection import MISSING_INT, QUANTITIES, Kind, Selection

__all__ = ["AlertIndex", "IndexedAlert", "IndexingStatus", "index_paths"]

#: columns of the index other than the quantities: sorting by arrival
ROW = "row"
_SEARCHED = ("id", "source", "object", "ssobject", "designation")
_DTYPES = {Kind.NUMBER: np.float64, Kind.INTEGER: np.int64, Kind.FLAG: bool, Kind.TEXT: object}
_MISSING = {Kind.NUMBER: np.nan, Kind.INTEGER: MISSING_INT, Kind.FLAG: False, Kind.TEXT: ""}
_FIRST_CAPACITY = 1024
_QUERIES_KEPT = 16
_ALERTS_KEPT = 16
_ROWS_PER_APPEND = 64


@dataclass
class IndexedAlert:
    """One alert decoded again from its store.

    Attributes
    ----------
    row : `int`
        Its row in the index.
    alert : `dict`
        The decoded record.
    payload : `bytes`
        Its schemaless Avro bytes (the Kafka payload without the wire header).
    store : `AlertStore`
        Where it is, with its writer schema.
    label : `str`
        ``file#index`` or ``topic[partition]@offset``.
    """

    row: int
    alert: dict[str, Any]
    payload: bytes
    store: AlertStore
    label: str

    @property
    def packet_size(self) -> int:
        return len(self.payload)


@dataclass
class IndexingStatus:
    """Progress of indexing files, and the problems met (one line each)."""

    files_total: int = 0
    files_done: int = 0
    running: bool = False
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class _Columns:
    """Growable numpy columns; rows are written once, under the index lock."""

    def __init__(self) -> None:
        self.capacity = _FIRST_CAPACITY
        self.arrays: dict[str, np.ndarray] = {
            name: self._empty(q.kind, self.capacity) for name, q in QUANTITIES.items()
        }
        self.locators = np.zeros((self.capacity, 4), dtype=np.int64)

    @staticmethod
    def _empty(kind: Kind, size: int) -> np.ndarray:
        return np.full(size, _MISSING[kind], dtype=_DTYPES[kind])

    def grow(self, needed: int) -> None:
        if needed <= self.capacity:
            return
        capacity = max(needed, 2 * self.capacity)
        grown = {}
        for name, values in self.arrays.items():
            array = self._empty(QUANTITIES[name].kind, capacity)
            array[: self.capacity] = values
            grown[name] = array
        locators = np.zeros((capacity, 4), dtype=np.int64)
        locators[: self.capacity] = self.locators
        # readers holding the old arrays keep valid data up to their row count
        self.arrays, self.locators, self.capacity = grown, locators, capacity


def _stored(kind: Kind, value: Any) -> Any:
    if value is None:
        return _MISSING[kind]
    if kind is Kind.INTEGER and not (MISSING_INT < value <= np.iinfo(np.int64).max):
        return _MISSING[kind]  # an id beyond int64 cannot be held: shown as missing
    if kind is Kind.NUMBER:
        return float(value)
    if kind is Kind.TEXT:
        return str(value)
    return value


class AlertIndex:
    """Summary columns and record locators of every alert indexed so far (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._columns = _Columns()
        self._count = 0
        self._stores: list[AlertStore] = []
        self._labels: list[str] = []
        self._search: list[str] = []
        self._queries: collections.OrderedDict[tuple, np.ndarray] = collections.OrderedDict()
        self._alerts: collections.OrderedDict[int, IndexedAlert] = collections.OrderedDict()
        self._spool: Spool | None = None
        self._spool_stores: dict[tuple[str, int], tuple[SpoolStore, int]] = {}

    def __len__(self) -> int:
        return self._count

    # --- growing ---

    def add_store(self, store: AlertStore) -> int:
        """Register a store; its number for `add_rows`."""
        with self._lock:
            self._stores.append(store)
            return len(self._stores) - 1

    def add_rows(
        self, store_number: int, rows: Sequence[tuple[int, int, int, dict[str, Any], str]]
    ) -> None:
        """Index records of one store: ``(block, offset, size, decoded record, label)`` each."""
        prepared = []
        for block, offset, size, record, label in rows:
            values = {name: q.get(record) for name, q in QUANTITIES.items()}
            searched = " ".join(str(values[n]) for n in _SEARCHED if values[n] is not None)
            prepared.append((block, offset, size, values, label, f"{searched} {label}".lower()))
        with self._lock:
            start = self._count
            self._columns.grow(start + len(prepared))
            arrays, locators = self._columns.arrays, self._columns.locators
            for row, (block, offset, size, values, label, searched) in enumerate(
                prepared, start
            ):
                for name, value in values.items():
                    arrays[name][row] = _stored(QUANTITIES[name].kind, value)
                locators[row] = (store_number, block, offset, size)
                self._labels.append(label)
                self._search.append(searched)
            self._count = start + len(prepared)
            self._queries.clear()

    def add_alert(self, alert: dict[str, Any], payload: bytes, schema, source: str,
                  label: str) -> None:
        """Index an alert read from Kafka; its payload is kept in a temporary file."""
        key = (source, schema.schema_id)
        with self._lock:
            if self._spool is None:
                self._spool = Spool()
            spool = self._spool
            known = self._spool_stores.get(key)
        if known is None:
            store = SpoolStore(spool, schema, source)
            known = (store, self.add_store(store))
            with self._lock:
                self._spool_stores[key] = known
        store, number = known
        block, offset, size = store.add(payload)
        self.add_rows(number, [(block, offset, size, alert, label)])

    def close(self) -> None:
        """Remove the temporary file of Kafka payloads."""
        if self._spool is not None:
            self._spool.close()

    # --- reading ---

    def _snapshot(self) -> tuple[int, dict[str, np.ndarray], np.ndarray]:
        with self._lock:
            count = self._count
            arrays = {name: values[:count] for name, values in self._columns.arrays.items()}
            return count, arrays, self._columns.locators[:count]

    def columns(self) -> dict[str, np.ndarray]:
        """The summary columns of every row so far (read-only views)."""
        return self._snapshot()[1]

    def select(
        self,
        selection: Selection | None = None,
        text: str = "",
        sort: str = ROW,
        descending: bool = False,
    ) -> np.ndarray:
        """Rows matching ``selection`` and every word of ``text``, sorted; missing values last.

        ``text`` is matched, case-insensitively, within the alert's ids (alert,
        diaSource, diaObject, ssObject), the asteroid designation and the label.

        Raises
        ------
        SelectionError
            When ``sort`` is not a column or the selection reads a field the
            index does not hold (dotted schema fields).
        """
        selection = selection or Selection.parse("")
        words = tuple(text.lower().split())
        if sort != ROW and sort not in QUANTITIES:
            raise SelectionError(f"cannot sort by {sort!r}; sort by {ROW} or a quantity")
        count, arrays, _ = self._snapshot()
        key = (count, selection.text, words, sort, descending)
        with self._lock:
            if key in self._queries:
                self._queries.move_to_end(key)
                return self._queries[key]
        outside = selection.names - set(arrays)
        if outside:
            raise SelectionError(
                f"the browse index holds the named quantities, not {', '.join(sorted(outside))}; "
                f"select on {', '.join(QUANTITIES)}"
            )
        mask = selection.mask(arrays, size=count)
        if words:
            search = self._search[:count]
            mask &= np.fromiter(
                (all(w in s for w in words) for s in search), dtype=bool, count=count
            )
        rows = np.flatnonzero(mask)
        rows = self._sorted(rows, arrays, sort, descending)
        with self._lock:
            self._queries[key] = rows
            while len(self._queries) > _QUERIES_KEPT:
                self._queries.popitem(last=False)
        return rows

    @staticmethod
    def _sorted(rows: np.ndarray, arrays: dict[str, np.ndarray], sort: str,
                descending: bool) -> np.ndarray:
        if sort == ROW:
            return rows[::-1].copy() if descending else rows
        values = arrays[sort][rows]
        kind = QUANTITIES[sort].kind
        if kind is Kind.NUMBER:
            present = ~np.isnan(values)
        elif kind is Kind.INTEGER:
            present = values != MISSING_INT
        elif kind is Kind.TEXT:
            present = values != ""
        else:
            present = np.ones(len(rows), dtype=bool)
        kept, kept_values = rows[present], values[present]
        # descending sorts a reversed key, so that ties keep their row order
        key = _descending_key(kept_values) if descending else kept_values
        order = np.argsort(key, kind="stable")
        return np.concatenate([kept[order], rows[~present]])

    def summary(self, row: int) -> dict[str, Any]:
        """The indexed quantities of one row (`None` for missing), its label and row number."""
        count, arrays, locators = self._snapshot()
        if not 0 <= row < count:
            raise InputError(f"no alert at row {row}: the index holds {count}")
        values: dict[str, Any] = {}
        for name, column in arrays.items():
            value = column[row]
            kind = QUANTITIES[name].kind
            if kind is Kind.NUMBER:
                values[name] = None if np.isnan(value) else float(value)
            elif kind is Kind.INTEGER:
                values[name] = None if value == MISSING_INT else int(value)
            elif kind is Kind.TEXT:
                values[name] = value or None
            else:
                values[name] = bool(value)
        values[ROW] = row
        values["label"] = self._labels[row]
        values["source_name"] = self._stores[int(locators[row][0])].source
        values["packet_size"] = int(locators[row][3])
        return values

    def store_of(self, row: int) -> AlertStore:
        """The store holding the alert of ``row``."""
        return self._stores[int(self._snapshot()[2][row][0])]

    def forget_queries(self) -> None:
        """Drop the remembered answers of `select` (they are also dropped on every new row)."""
        with self._lock:
            self._queries.clear()

    def rows_where(self, name: str, value: int) -> np.ndarray:
        """Rows whose integer quantity ``name`` equals ``value``, in index order."""
        arrays = self._snapshot()[1]
        return np.flatnonzero(arrays[name] == value)

    def alert(self, row: int) -> IndexedAlert:
        """Decode the alert of ``row`` again from its store (the last few are kept).

        Raises
        ------
        InputError
            When its file cannot be read, changed since indexing, or is damaged.
        """
        with self._lock:
            if row in self._alerts:
                self._alerts.move_to_end(row)
                return self._alerts[row]
        count, _, locators = self._snapshot()
        if not 0 <= row < count:
            raise InputError(f"no alert at row {row}: the index holds {count}")
        store_number, block, offset, size = (int(v) for v in locators[row])
        store = self._stores[store_number]
        payload = store.payload(block, offset, size)
        indexed = IndexedAlert(row, store.decode(payload), payload, store, self._labels[row])
        with self._lock:
            self._alerts[row] = indexed
            while len(self._alerts) > _ALERTS_KEPT:
                self._alerts.popitem(last=False)
        return indexed


def _descending_key(values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        # text: rank ascending, then negate the ranks
        _, ranks = np.unique(values.astype(str), return_inverse=True)
        return -ranks
    if values.dtype == bool:
        return ~values
    return -values  # for ids: the MISSING_INT rows were taken out, so no overflow


def index_paths(
    index: AlertIndex,
    paths: Iterable[str | os.PathLike],
    status: IndexingStatus,
    *,
    stop: threading.Event | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> None:
    """Index every alert file named by ``paths`` (files or directories).

    A file that cannot be read, a failed-alerts file, a damaged block: one
    line in ``status`` (and to ``on_problem``), and indexing goes on; the
    alerts before damage in a file are kept.
    """
    report = ReadReport()

    def problem(line: str) -> None:
        status.problems.append(line)
        if on_problem is not None:
            on_problem(line)

    status.running = True
    try:
        files = list(iter_alert_files(paths, report=report))
        status.skipped.extend(report.skipped)
        for line in report.errors:
            problem(line)
        status.files_total = len(files)
        for alert_file in files:
            if stop is not None and stop.is_set():
                return
            _index_file(index, alert_file, stop, problem)
            status.files_done += 1
    finally:
        status.running = False


def _index_file(index: AlertIndex, alert_file, stop, problem) -> None:
    try:
        store, records = scan_file(alert_file)
    except (InputError, OSError) as error:
        problem(str(error))
        return
    number = index.add_store(store)
    pending: list = []
    at = 0
    try:
        for block, offset, size, record in records:
            pending.append((block, offset, size, record, f"{store.source}#{at}"))
            at += 1
            if len(pending) >= _ROWS_PER_APPEND:
                index.add_rows(number, pending)
                pending = []
                if stop is not None and stop.is_set():
                    return
    except InputError as error:
        problem(str(error))
    finally:
        if pending:
            index.add_rows(number, pending)
