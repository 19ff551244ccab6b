"""Photometry points of alerts, for light curves: one set of rules for every plot.

`photometry` gathers the points of one alert (its diaSource, the previous
diaSources and the forced photometry it carries); `merge_photometry` those
of several alerts of one diaObject, each measurement once (by its
diaSourceId / diaForcedSourceId). `placement` puts a point on a flux (nJy)
or AB magnitude axis: in magnitudes, a point below `DETECTION_LIMIT_SIGMA`
is its `UPPER_LIMIT_SIGMA` upper limit. `BAND_COLOURS` tells the bands
apart (none of them near black). ``alertpack show`` (matplotlib) and
``alertpack browse`` (SVG) both draw from here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from alertpack.tools.reading import field_value
from alertpack.tools.selection import ab_magnitude

__all__ = [
    "BAND_COLOURS",
    "DETECTION_LIMIT_SIGMA",
    "UPPER_LIMIT_SIGMA",
    "Point",
    "band_colour",
    "band_order",
    "merge_photometry",
    "photometry",
    "placement",
]

#: one colour per band, each told apart from the others and readable on white
BAND_COLOURS = {
    "u": "#6a3d9a",
    "g": "#2ca02c",
    "r": "#d62728",
    "i": "#ff7f0e",
    "z": "#8c564b",
    "y": "#1f77b4",
}
_OTHER_COLOUR = "#7f7f7f"
#: below this S/N a point is drawn as an upper limit in magnitudes
DETECTION_LIMIT_SIGMA = 3.0
#: the upper limit drawn: this many times the flux error, as AB magnitude
UPPER_LIMIT_SIGMA = 5.0


@dataclass(frozen=True)
class Point:
    """One photometric measurement.

    Attributes
    ----------
    kind : `str`
        ``alert`` (the alert's own diaSource), ``detection`` or ``forced``.
    ident : `int` or `None`
        diaSourceId or diaForcedSourceId.
    mjd : `float`
        Midpoint of the exposure, MJD TAI.
    flux, flux_err : `float`
        Difference-image PSF flux and error, nJy (NaN when missing).
    band : `str`
    """

    kind: str
    ident: int | None
    mjd: float
    flux: float
    flux_err: float
    band: str

    @property
    def snr(self) -> float:
        if not (math.isfinite(self.flux) and math.isfinite(self.flux_err)) or self.flux_err <= 0:
            return math.nan
        return self.flux / self.flux_err


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _points(records: Iterable[dict[str, Any]] | None, kind: str, id_field: str) -> list[Point]:
    points = []
    for record in records or ():
        mjd = _number(field_value(record, "mjd"))
        if not math.isfinite(mjd):
            continue
        points.append(
            Point(
                kind=kind,
                ident=field_value(record, id_field),
                mjd=mjd,
                flux=_number(field_value(record, "flux")),
                flux_err=_number(field_value(record, "flux_err")),
                band=str(field_value(record, "band", "?")),
            )
        )
    return points


def photometry(alert: dict[str, Any]) -> list[Point]:
    """The points of one alert: its diaSource, previous diaSources, forced photometry."""
    source = alert.get("diaSource")
    return (
        _points([source] if source else [], "alert", "diaSourceId")
        + _points(alert.get("prvDiaSources"), "detection", "diaSourceId")
        + _points(alert.get("prvDiaForcedSources"), "forced", "diaForcedSourceId")
    )


def merge_photometry(alerts: Sequence[dict[str, Any]]) -> list[Point]:
    """The points of several alerts of one object, each measurement once, by time.

    The diaSource of each given alert stays an ``alert`` point (a star), also
    where a later alert lists it among its previous diaSources.
    """
    merged: dict[tuple[str, Any], Point] = {}
    for alert in alerts:
        for point in photometry(alert):
            family = "forced" if point.kind == "forced" else "source"
            key = (family, point.ident if point.ident is not None else (point.mjd, point.band))
            if point.kind == "alert" or key not in merged:
                merged[key] = point
    return sorted(merged.values(), key=lambda p: p.mjd)


def band_order(bands: Iterable[str]) -> list[str]:
    """Bands in wavelength order (ugrizy), others after them alphabetically."""
    present = set(bands)
    known = [band for band in BAND_COLOURS if band in present]
    return known + sorted(present - set(known))


def band_colour(band: str) -> str:
    """The colour of ``band`` (grey for a band that is not one of ugrizy)."""
    return BAND_COLOURS.get(band, _OTHER_COLOUR)


def placement(point: Point, magnitudes: bool) -> tuple[float, float, float, bool]:
    """``(y, y_low, y_high, upper_limit)`` of a point on a flux or AB magnitude axis.

    In flux, the point and its error bar. In magnitudes, the magnitude and its
    error bar for a point at or above `DETECTION_LIMIT_SIGMA`, else its
    `UPPER_LIMIT_SIGMA` upper limit (``upper_limit`` true; all three equal);
    NaN where the point cannot be placed.
    """
    if not magnitudes:
        width = point.flux_err if math.isfinite(point.flux_err) else 0.0
        return point.flux, point.flux - width, point.flux + width, False
    if not (point.snr >= DETECTION_LIMIT_SIGMA):
        if not (math.isfinite(point.flux_err) and point.flux_err > 0):
            return math.nan, math.nan, math.nan, True
        limit = ab_magnitude(UPPER_LIMIT_SIGMA * point.flux_err)[0]
        shown = math.nan if limit is None else limit
        return shown, shown, shown, True
    magnitude, error = ab_magnitude(point.flux, point.flux_err)
    if magnitude is None:
        return math.nan, math.nan, math.nan, False
    spread = error or 0.0
    return magnitude, magnitude - spread, magnitude + spread, False
