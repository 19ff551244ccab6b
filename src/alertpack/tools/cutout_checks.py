"""The cutout checks of ``alertpack validate``: astropy and fitsverify, many stamps at a time.

Each cutout must pass ``fitsverify``, the reference FITS-standard checker
(CFITSIO's), when it is installed, and be a 2-D image that astropy opens
(`check_cutouts`). Starting fitsverify costs far more than checking a stamp,
so a stream of alerts is checked in batches of `FITSVERIFY_BATCH` stamps, one
fitsverify run each, in the background beside the decoding and the other
checks of the caller (`CutoutChecks`); the reports come back in input order.
A stamp fitsverify passes, with the standard's NAXIS = 2 in its primary
header, needs nothing more; any other (and every stamp when fitsverify is
not there) is opened whole with astropy, which names what it finds.

`Problem` is the one thing-wrong type of every validate check.
"""

from __future__ import annotations

import collections
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from alertpack.errors import InputError, LimitExceededError
from alertpack.tools.fitsverify import FitsverifyBatch, fitsverify_available, fitsverify_executable
from alertpack.tools.reading import CUTOUT_FIELDS
from alertpack.tools.stamp_reader import gunzipped, open_stamp

__all__ = [
    "ERROR",
    "FITSVERIFY_BATCH",
    "FITSVERIFY_WAIT",
    "WARNING",
    "CutoutChecks",
    "Problem",
    "check_cutouts",
    "check_stamp_batch",
    "use_fitsverify",
]

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an alert.

    Attributes
    ----------
    check : `str`
        ``schema``, ``ids``, ``history`` or ``cutouts``.
    message : `str`
        What is wrong, naming the field and value.
    severity : `str`
        ``"error"`` (the alert is broken) or ``"warning"`` (it departs from a
        packaging convention the schema does not demand).
    """

    check: str
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        return f"{self.severity}: {self.check}: {self.message}"

    @property
    def is_error(self) -> bool:
        """True for an error, False for a warning."""
        return self.severity == ERROR


class _Checked(Protocol):
    """What `CutoutChecks` takes: a report of an alert read, its problems still growing."""

    @property
    def alert(self) -> Any: ...

    @property
    def problems(self) -> list[Problem]: ...


#: what `check_stamp_batch` gives for one stamp: astropy's problems, fitsverify's messages
type StampResult = tuple[list[Problem], list[str]]


def stamps_to_check(record: dict[str, Any]) -> tuple[list[tuple[str, bytes]], list[Problem]]:
    """The FITS bytes to check of each cutout of ``record``, and the cutouts refused before.

    A gzipped stamp is checked as the FITS file it holds (inflated within the
    read limit ``stamp_bytes``: `~alertpack.tools.stamp_reader.gunzipped`); a
    tile-compressed one as it is, its compressed HDUs being standard FITS; a
    plain one as it is. A cutout over the read limits (bytes, declared
    pixels, SIP orders, gzip tiles that inflate past their size: checked on
    its headers by `~alertpack.tools.stamp_reader.open_stamp`) is refused
    here, and not given to fitsverify, which would decode it all.
    """
    stamps: list[tuple[str, bytes]] = []
    refused: list[Problem] = []
    for name in CUTOUT_FIELDS:
        data = record.get(name)
        if data is None:
            continue
        try:
            data = gunzipped(data, name=name)
            open_stamp(data, name=name).close()  # headers only: no pixel is decoded
        except LimitExceededError as error:
            refused.append(Problem("cutouts", str(error)))
            continue
        except InputError as error:  # damaged: fitsverify says more about it
            refused.append(Problem("cutouts", str(error)))
        stamps.append((name, data))
    return stamps, refused


def check_cutouts(record: dict[str, Any], *, fitsverify: bool | None = None) -> list[Problem]:
    """Every cutout decodes, passes ``fitsverify`` and is a 2-D image astropy opens.

    Parameters
    ----------
    record : `dict`
        A decoded alert.
    fitsverify : `bool` or `None`
        Run ``fitsverify`` over the cutouts: `True` always (an `InputError`
        when it is not installed), `False` never, `None` when it is installed.
    """
    verifying = use_fitsverify(fitsverify)
    stamps, problems = stamps_to_check(record)
    for (name, _), checked in zip(stamps, check_stamp_batch(stamps, verifying), strict=True):
        problems.extend(_stamp_problems(name, checked))
    return problems


def use_fitsverify(wanted: bool | None) -> bool:
    """Whether to run fitsverify; `True` when it is missing raises its install hint."""
    if wanted is None:
        return fitsverify_available()
    if wanted:
        fitsverify_executable()
    return wanted


#: stamps checked by one fitsverify run: its start costs more than checking a stamp
FITSVERIFY_BATCH = 96

#: a batch smaller than that is sent anyway once its first stamp waited this long (seconds)
FITSVERIFY_WAIT = 1.0


def check_stamp_batch(stamps: list[tuple[str, bytes]], fitsverify: bool) -> list[StampResult]:
    """The cutout checks of many stamps: per stamp, astropy's problems and fitsverify's messages.

    ``fitsverify`` runs over all of them at once
    (`~alertpack.tools.fitsverify.FitsverifyBatch`); without it, astropy opens
    each stamp whole.
    """
    if not fitsverify:
        return [(problems, []) for problems in _open_stamps(stamps)]
    verified = FitsverifyBatch([data for _, data in stamps]).results()
    return _after_fitsverify(stamps, verified)


def _after_fitsverify(
    stamps: list[tuple[str, bytes]], verified: list[list[str]]
) -> list[StampResult]:
    """Stamps with their fitsverify messages, and astropy's problems where they are needed.

    A stamp fitsverify passes whose primary HDU is a 2-D image is done: its
    structure is certified, and its third card (the FITS standard's fixed
    place for NAXIS) says 2. Any other is opened whole with astropy, which
    says what it finds (a stamp in an extension, a 3-D image, damage).
    """
    unclear = [index for index, ((_, data), messages) in enumerate(zip(
        stamps, verified, strict=True)) if messages or _primary_axes(data) != 2]
    opened: list[list[Problem]] = [[] for _ in stamps]
    for index, problems in zip(unclear, _open_stamps([stamps[i] for i in unclear]), strict=True):
        opened[index] = problems
    return list(zip(opened, verified, strict=True))


def _primary_axes(data: bytes) -> int | None:
    """NAXIS of the primary HDU from its third card, or `None` when that card is not NAXIS."""
    card = data[160:240]
    if not card.startswith(b"NAXIS   = "):
        return None
    try:
        return int(card[10:30])
    except ValueError:
        return None


def _open_stamps(stamps: list[tuple[str, bytes]]) -> list[list[Problem]]:
    """`_astropy_problems` of each stamp, astropy's warnings silenced once for them all."""
    if not stamps:
        return []
    # astropy.io.fits (~0.2 s) only for checking cutouts: inspect never opens them
    from astropy.utils.exceptions import AstropyWarning

    with warnings.catch_warnings():
        # what astropy warns about (a truncated file) it fails on too: one problem, no noise
        warnings.simplefilter("ignore", AstropyWarning)
        return [_astropy_problems(name, data) for name, data in stamps]


def _astropy_problems(name: str, data: bytes) -> list[Problem]:
    """The cutout opens with astropy and its first image (header, pixels) is 2-D.

    Opened through `~alertpack.tools.stamp_reader.open_stamp`: within the read limits.
    """
    try:
        with open_stamp(data, name=name) as hdus:
            # the first HDU with pixels is the stamp (the planes after it are read too)
            for hdu in hdus:
                if hdu.is_image and hdu.header.get("NAXIS", 0) and hdu.data is not None:
                    if hdu.data.ndim == 2:
                        return []
                    return [Problem("cutouts", f"{name} image is {hdu.data.ndim}-D "
                                    f"(shape {hdu.data.shape}), not 2-D")]
    except Exception as error:  # astropy raises many types for unreadable FITS
        return [Problem("cutouts", f"{name} does not open with astropy.io.fits: {error}")]
    return [Problem("cutouts", f"{name} holds no image data")]


def _stamp_problems(name: str, checked: StampResult) -> list[Problem]:
    """A stamp's problems: astropy's, then fitsverify's messages (`check_stamp_batch`)."""
    opened, messages = checked
    # fitsverify's own warnings (e.g. a deprecated keyword) are advice, not a broken file
    return [*opened, *(
        Problem(
            "cutouts",
            f"{name}: fitsverify: {line}",
            WARNING if line.startswith("*** Warning") else ERROR,
        )
        for line in messages
    )]


@dataclass
class _Waiting[Report: _Checked]:
    """An alert whose report waits for its cutouts' checks."""

    report: Report
    names: list[str]
    checked: dict[str, StampResult] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return len(self.checked) == len(self.names)

    def finish(self) -> Report:
        for name in self.names:
            self.report.problems.extend(_stamp_problems(name, self.checked[name]))
        return self.report


class CutoutChecks[Report: _Checked]:
    """The cutout checks of a stream of alerts, reports handed back in input order.

    Stamps are gathered into batches of `FITSVERIFY_BATCH`. For each, one
    fitsverify run starts in the background (`FitsverifyBatch`: a process of
    its own, no thread) while the alerts that follow are decoded and checked;
    its results complete the reports (`_after_fitsverify`). At most ``runs``
    fitsverify runs are in flight, which bounds the alerts held.
    """

    def __init__(self, fitsverify: bool, runs: int) -> None:
        self.fitsverify = fitsverify
        self.runs = max(1, runs)
        self._waiting: collections.deque[_Waiting[Report]] = collections.deque()
        self._batch: list[tuple[_Waiting[Report], str, bytes]] = []
        self._batch_started = 0.0
        self._in_flight: collections.deque[
            tuple[FitsverifyBatch, list[tuple[_Waiting[Report], str, bytes]]]
        ] = collections.deque()

    def add(self, report: Report) -> Iterator[Report]:
        """Check the cutouts of ``report``'s alert; the reports complete so far, in order."""
        stamps, undecodable = stamps_to_check(report.alert.alert)
        report.problems.extend(undecodable)
        waiting = _Waiting(report, [name for name, _ in stamps])
        if not self.fitsverify:
            waiting.checked = dict(zip(waiting.names, check_stamp_batch(stamps, False),
                                       strict=True))
        else:
            if not self._batch:
                self._batch_started = time.monotonic()
            self._batch.extend((waiting, name, data) for name, data in stamps)
        self._waiting.append(waiting)
        if self._batch and (
            len(self._batch) >= FITSVERIFY_BATCH
            or time.monotonic() - self._batch_started >= FITSVERIFY_WAIT
        ):
            self._send()
        self._collect(block=len(self._in_flight) >= self.runs)
        return self._complete()

    def finish(self) -> Iterator[Report]:
        """The reports still waiting, once every batch is checked."""
        if self._batch:
            self._send()
        self._collect(block=True, every=True)
        return self._complete()

    def close(self) -> None:
        """Stop the fitsverify runs still going (the reader stopped early); remove their files."""
        while self._in_flight:
            batch, _ = self._in_flight.popleft()
            batch.close()

    def _send(self) -> None:
        stamps, self._batch = self._batch, []
        batch = FitsverifyBatch([data for _, _, data in stamps])
        self._in_flight.append((batch, stamps))

    def _collect(self, *, block: bool, every: bool = False) -> None:
        while self._in_flight and (block or self._in_flight[0][0].done()):
            batch, stamps = self._in_flight.popleft()
            results = _after_fitsverify([(name, data) for _, name, data in stamps],
                                        batch.results())
            for (waiting, name, _), checked in zip(stamps, results, strict=True):
                waiting.checked[name] = checked
            block = every

    def _complete(self) -> Iterator[Report]:
        done = []
        while self._waiting and self._waiting[0].complete:
            done.append(self._waiting.popleft().finish())
        return iter(done)


