"""Light curves for the page: photometry points of alerts, drawn as inline SVG.

The points (`photometry`, `merge_photometry`), their placement in flux or
magnitude and the band colours are `alertpack.tools.photometry`'s, shared
with ``alertpack show``. `light_curve_svg` draws them against MJD,
as difference-image PSF flux in nJy or as AB magnitude, a colour per band
(named in a legend), filled circles for detections, open squares for forced
photometry, a star for the alert's own detection, error bars, and a tooltip
on every point. In magnitudes, a point below 3 sigma is drawn as its 5-sigma
upper limit (a triangle pointing down).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from alertpack.tools.photometry import (
    BAND_COLOURS,
    DETECTION_LIMIT_SIGMA,
    UPPER_LIMIT_SIGMA,
    Point,
    band_colour,
    band_order,
    merge_photometry,
    photometry,
    placement,
)
from alertpack.tools.selection import ab_magnitude

__all__ = ["BAND_COLOURS", "Point", "light_curve_svg", "merge_photometry", "photometry"]

_WIDTH, _HEIGHT = 920, 340
_LEFT, _RIGHT, _TOP, _BOTTOM = 72, 150, 16, 46


def _nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _format_tick(value: float) -> str:
    return f"{value:.10g}" if abs(value) < 1e6 else f"{value:.4g}"


def _tooltip(point: Point, magnitudes: bool) -> str:
    what = {"alert": "this alert", "detection": "detection", "forced": "forced photometry"}
    ident = "diaForcedSourceId" if point.kind == "forced" else "diaSourceId"
    parts = [f"{what[point.kind]}, {point.band} band", f"MJD {point.mjd:.5f}"]
    if math.isfinite(point.flux):
        parts.append(f"{point.flux:.1f} ± {point.flux_err:.1f} nJy (S/N {point.snr:.1f})")
    magnitude, error = ab_magnitude(point.flux, point.flux_err)
    if magnitude is not None and point.snr >= DETECTION_LIMIT_SIGMA:
        parts.append(f"{magnitude:.2f} ± {error or 0:.2f} AB mag")
    elif magnitudes and math.isfinite(point.flux_err) and point.flux_err > 0:
        limit, _ = ab_magnitude(UPPER_LIMIT_SIGMA * point.flux_err)
        parts.append(f"5σ upper limit {limit:.2f} AB mag")
    if point.ident is not None:
        parts.append(f"{ident} {point.ident}")
    return "\n".join(parts)


def _marker(kind: str, x: float, y: float, colour: str, upper_limit: bool) -> str:
    if upper_limit:
        size = 6.5
        return (
            f'<path d="M{x - size:.1f},{y - size * 0.6:.1f} L{x + size:.1f},{y - size * 0.6:.1f} '
            f'L{x:.1f},{y + size:.1f} Z" fill="none" stroke="{colour}" stroke-width="1.6"/>'
        )
    if kind == "alert":
        spikes = []
        for i in range(10):
            radius = 11.0 if i % 2 == 0 else 4.6
            angle = math.pi / 2 + i * math.pi / 5
            spikes.append(f"{x + radius * math.cos(angle):.1f},{y - radius * math.sin(angle):.1f}")
        return (f'<polygon points="{" ".join(spikes)}" fill="{colour}" stroke="#111" '
                'stroke-width="1.2"/>')
    if kind == "forced":
        return (f'<rect x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" fill="white" '
                f'fill-opacity="0.6" stroke="{colour}" stroke-width="1.6"/>')
    return (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}" stroke="white" '
            'stroke-width="0.8"/>')


def light_curve_svg(points: Sequence[Point], *, magnitudes: bool = False) -> str:
    """An SVG element drawing ``points`` against MJD (see the module docstring)."""
    plot_width = _WIDTH - _LEFT - _RIGHT
    plot_height = _HEIGHT - _TOP - _BOTTOM
    unit = "AB magnitude" if magnitudes else "difference flux [nJy]"
    placed = [(p, *placement(p, magnitudes)) for p in points]
    placed = [item for item in placed if math.isfinite(item[1])]
    parts = [
        f'<svg class="lightcurve" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="light curve in {unit}" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_width}" height="{plot_height}" '
        'fill="#fcfcfc" stroke="#888"/>',
    ]
    if not placed:
        parts.append(
            f'<text x="{_LEFT + plot_width / 2}" y="{_TOP + plot_height / 2}" '
            'text-anchor="middle" fill="#666">no photometry to draw</text></svg>'
        )
        return "".join(parts)
    mjds = [p.mjd for p, *_ in placed]
    lows = [min(y, low, high) for _, y, low, high, _ in placed]
    highs = [max(y, low, high) for _, y, low, high, _ in placed]
    x_low, x_high = min(mjds), max(mjds)
    span = x_high - x_low
    pad = max(0.04 * span, 1.0 if span < 1 else 0.0)
    x_low, x_high = x_low - pad, x_high + pad
    y_low, y_high = min(lows), max(highs)
    if not magnitudes:
        y_low, y_high = min(y_low, 0.0), max(y_high, 0.0)
    y_pad = 0.06 * (y_high - y_low) or 1.0
    y_low, y_high = y_low - y_pad, y_high + y_pad

    def sx(mjd: float) -> float:
        return _LEFT + (mjd - x_low) / (x_high - x_low) * plot_width

    def sy(value: float) -> float:
        fraction = (value - y_low) / (y_high - y_low)
        # magnitudes grow downwards: brighter is up
        return _TOP + (fraction if magnitudes else 1.0 - fraction) * plot_height

    for tick in _nice_ticks(x_low, x_high):
        x = sx(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + plot_height}" '
                     'stroke="#e4e4e4"/>')
        parts.append(f'<text x="{x:.1f}" y="{_TOP + plot_height + 16}" text-anchor="middle" '
                     f'class="tick">{_format_tick(tick)}</text>')
    for tick in _nice_ticks(y_low, y_high):
        y = sy(tick)
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_width}" y2="{y:.1f}" '
                     'stroke="#e4e4e4"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'class="tick">{_format_tick(tick)}</text>')
    if not magnitudes:
        y = sy(0.0)
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_width}" y2="{y:.1f}" '
                     'stroke="#999" stroke-dasharray="5,4"/>')
    parts.append(f'<text x="{_LEFT + plot_width / 2}" y="{_HEIGHT - 8}" text-anchor="middle" '
                 'class="axis">MJD (TAI)</text>')
    parts.append(f'<text transform="translate(16,{_TOP + plot_height / 2}) rotate(-90)" '
                 f'text-anchor="middle" class="axis">{unit}</text>')
    # alert points last, so that they are drawn on top
    order = {"forced": 0, "detection": 1, "alert": 2}
    for point, y, low, high, upper in sorted(placed, key=lambda item: order[item[0].kind]):
        colour = band_colour(point.band)
        x = sx(point.mjd)
        parts.append(f'<g class="point {point.kind} band-{html.escape(point.band)}">'
                     f"<title>{html.escape(_tooltip(point, magnitudes))}</title>")
        if not upper and high > low:
            parts.append(f'<line x1="{x:.1f}" y1="{sy(low):.1f}" x2="{x:.1f}" y2="{sy(high):.1f}" '
                         f'stroke="{colour}" stroke-width="1.3"/>')
        parts.append(_marker(point.kind, x, sy(y), colour, upper) + "</g>")
    parts.append(_legend(band_order(p.band for p, *_ in placed), magnitudes,
                         _LEFT + plot_width + 14))
    parts.append("</svg>")
    return "".join(parts)


def _legend(bands: list[str], magnitudes: bool, x: float) -> str:
    rows = []
    y = _TOP + 12
    for band in bands:
        colour = band_colour(band)
        rows.append(f'<circle cx="{x + 6}" cy="{y - 4}" r="5" fill="{colour}"/>'
                    f'<text x="{x + 18}" y="{y}" class="legend">{html.escape(band)}</text>')
        y += 18
    y += 6
    for kind, label in (("detection", "detection"), ("forced", "forced phot."),
                        ("alert", "this alert")):
        rows.append(_marker(kind, x + 6, y - 4, "#777", False)
                    + f'<text x="{x + 22}" y="{y}" class="legend">{label}</text>')
        y += 24
    if magnitudes:
        rows.append(_marker("forced", x + 6, y - 4, "#777", True)
                    + f'<text x="{x + 22}" y="{y}" class="legend">5σ limit</text>')
    return '<g class="legend">' + "".join(rows) + "</g>"
