"""The alerts of one run: encoded payloads, decoded on demand."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from alertpack.schema import AlertSchema

__all__ = ["AlertBatch", "OutgoingAlert", "unix_seconds_of_mjd_tai"]

_MJD_ZERO_JD = 2400000.5  # Julian date of MJD 0
_UNIX_EPOCH_JD = 2440587.5  # Julian date of 1970-01-01T00:00 UTC


@functools.cache
def _use_astropy_leap_seconds() -> None:
    """Give ERFA astropy's leap-second table, once per process, as a first `Time` would."""
    # astropy.time (~0.3 s): only for Kafka timestamps; replay and readers go without
    from astropy.time import update_leap_seconds

    update_leap_seconds()


def unix_seconds_of_mjd_tai(mjd_tai: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Unix time (s since 1970-01-01 UTC, leap seconds applied) of TAI dates given as MJD.

    ERFA's TAI->UTC (leap seconds included), the ufunc under astropy's
    ``Time(..., scale="tai").unix`` (which is ``.tai.unix`` too), called
    directly: the same values without the ~2 ms a `~astropy.time.Time` costs
    on every run.
    """
    return _unix_days(mjd_tai) * 86_400.0


def _unix_days(mjd_tai: npt.ArrayLike) -> npt.NDArray[np.float64]:
    import erfa  # erfa (~0.1 s): only for Kafka timestamps and timing metadata

    _use_astropy_leap_seconds()
    mjd = np.asarray(mjd_tai, dtype=np.float64)
    with warnings.catch_warnings():
        # "dubious year": a date past the leap-second table's horizon, as for astropy
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        utc_day, utc_fraction = erfa.taiutc(np.full(mjd.shape, _MJD_ZERO_JD), mjd)
    unix_days: npt.NDArray[np.float64] = (utc_day - _UNIX_EPOCH_JD) + utc_fraction
    return unix_days


@dataclass(slots=True)
class OutgoingAlert:
    """One alert ready for Kafka.

    Attributes
    ----------
    payload : `bytes`
        The schemaless Avro alert record (no wire header).
    schema_id : `int`
        Rubin schema id of the payload's schema (``major*100+minor``).
    key : `int` or `None`
        ``diaObjectId``; sent as ASCII decimal digits.
    timestamp_ms : `int` or `None`
        Kafka message timestamp (ms since the Unix epoch, UTC); `None` means
        the time the alert is queued.
    alert_id : `int`
        ``diaSourceId``, to name the alert in failure reports.
    """

    payload: bytes
    schema_id: int
    key: int | None
    timestamp_ms: int | None
    alert_id: int


@dataclass
class AlertBatch(Sequence[dict[str, Any]]):
    """Encoded alerts with the keys needed to route them.

    Indexing or iterating decodes an alert to the plain dict that
    ``lsst.alert.packet.Schema.deserialize`` gives; ``payloads`` are the
    schemaless Avro bytes as sent to Kafka and written to files.

    Attributes
    ----------
    schema : `AlertSchema`
        Schema the payloads are encoded with.
    payloads : `list` [`bytes`]
        One schemaless Avro record per alert.
    alert_ids, object_ids, ccd_visit_ids : `numpy.ndarray`
        diaSourceId, diaObjectId (-1 when none) and ccdVisitId (-1 when
        unknown) per alert.
    times_mjd_tai : `numpy.ndarray`
        Exposure midpoint of each alert's DiaSource (MJD, TAI).
    visits, detectors : `numpy.ndarray` or `None`
        Visit and detector per alert, when files are named by them.
    file_naming : `str`
        ``"ccdVisitId"``: one file per ccdVisit, ``{ccdVisitId}.avro`` (the
        seed's Task); ``"visit_detector"``: one per visit and detector,
        ``{visit}_{detector}.avro`` (today's Rubin pipeline).
    """

    schema: AlertSchema
    payloads: list[bytes]
    alert_ids: npt.NDArray[np.int64]
    object_ids: npt.NDArray[np.int64]
    ccd_visit_ids: npt.NDArray[np.int64]
    times_mjd_tai: npt.NDArray[np.float64]
    visits: npt.NDArray[np.int64] | None = None
    detectors: npt.NDArray[np.int64] | None = None
    file_naming: str = "ccdVisitId"

    def __len__(self) -> int:
        return len(self.payloads)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.schema.decode(self.payloads[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for payload in self.payloads:
            yield self.schema.decode(payload)

    def timestamps_ms(self) -> npt.NDArray[np.int64]:
        """Unix time in ms (UTC) of each alert's exposure midpoint (TAI in the catalogs)."""
        return np.round(_unix_days(self.times_mjd_tai) * 86_400_000.0).astype(np.int64)

    def outgoing(self, *, observation_time: bool = True) -> Iterator[OutgoingAlert]:
        """The alerts as Kafka messages: key diaObjectId, timestamp per ``observation_time``.

        With ``observation_time`` False the timestamp is left to the producer
        (the time each alert is queued).
        """
        n_alerts = len(self.payloads)
        stamps = self.timestamps_ms().tolist() if observation_time else [None] * n_alerts
        schema_id = self.schema.schema_id
        # Python ints once per batch: indexing numpy arrays per alert costs more
        object_ids, alert_ids = self.object_ids.tolist(), self.alert_ids.tolist()
        for i, payload in enumerate(self.payloads):
            object_id = object_ids[i]
            yield OutgoingAlert(
                payload=payload,
                schema_id=schema_id,
                key=object_id if object_id > 0 else None,
                timestamp_ms=stamps[i],
                alert_id=alert_ids[i],
            )

    @property
    def nbytes(self) -> int:
        """Total size of the encoded alerts in bytes."""
        return sum(map(len, self.payloads))

    def by_ccd_visit(self) -> Iterator[tuple[int, npt.NDArray[np.intp]]]:
        """``(ccdVisitId, alert positions)`` for each ccdVisit, in id order."""
        order = np.argsort(self.ccd_visit_ids, kind="stable")
        ids, starts = np.unique(self.ccd_visit_ids[order], return_index=True)
        for ccd_visit_id, rows in zip(ids, np.split(order, starts[1:]), strict=True):
            yield int(ccd_visit_id), rows

    def by_file(self) -> Iterator[tuple[str, npt.NDArray[np.intp]]]:
        """``(file stem, alert positions)`` for each alert file, in key order.

        The stem is ``"{ccdVisitId}"`` or ``"{visit}_{detector}"`` (`file_naming`).
        """
        if self.file_naming == "ccdVisitId":
            for ccd_visit_id, rows in self.by_ccd_visit():
                yield str(ccd_visit_id), rows
            return
        if self.file_naming != "visit_detector" or self.visits is None or self.detectors is None:
            raise ValueError(
                f"file_naming={self.file_naming!r} needs visits and detectors (or 'ccdVisitId')"
            )
        order = np.lexsort((self.detectors, self.visits))
        keys = np.stack([self.visits[order], self.detectors[order]], axis=1)
        unique, starts = np.unique(keys, axis=0, return_index=True)
        for (visit, detector), rows in zip(unique, np.split(order, starts[1:]), strict=True):
            yield visit_detector_stem(int(visit), int(detector)), rows


def visit_detector_stem(visit: int, detector: int) -> str:
    """The name (without ``.avro``) of today's Rubin pipeline's alert file of one detector."""
    return f"{visit}_{detector}"
