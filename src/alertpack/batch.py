"""The alerts of one run: encoded payloads, decoded on demand."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from alertpack.schema import AlertSchema

__all__ = ["AlertBatch"]


@dataclass
class AlertBatch(Sequence):
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
        diaSourceId, diaObjectId (-1 when none) and ccdVisitId per alert.
    times_mjd_tai : `numpy.ndarray`
        Exposure midpoint of each alert's DiaSource (MJD, TAI).
    """

    schema: AlertSchema
    payloads: list[bytes]
    alert_ids: np.ndarray
    object_ids: np.ndarray
    ccd_visit_ids: np.ndarray
    times_mjd_tai: np.ndarray

    def __len__(self) -> int:
        return len(self.payloads)

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.schema.decode(self.payloads[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for payload in self.payloads:
            yield self.schema.decode(payload)

    @property
    def nbytes(self) -> int:
        """Total size of the encoded alerts in bytes."""
        return sum(map(len, self.payloads))

    def by_ccd_visit(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(ccdVisitId, alert positions)`` for each ccdVisit, in id order."""
        order = np.argsort(self.ccd_visit_ids, kind="stable")
        ids, starts = np.unique(self.ccd_visit_ids[order], return_index=True)
        for ccd_visit_id, rows in zip(ids, np.split(order, starts[1:]), strict=True):
            yield int(ccd_visit_id), rows
