"""Draw alerts the way brokers show them: stamp triplet over the light curve.

`plot_alert` draws one alert, `plot_object` all the alerts of one diaObject
(the stamps of its latest alert over their merged light curve). The top row
holds the science, template and difference cutouts on WCS axes, stretched as
asked (``zscale`` by default, ``asinh`` or ``linear``; science and template on
one common scale so that a brightening reads as one, the difference
symmetric about zero), each with north/east arrows and a scale bar in
arcseconds from the cutout's WCS, the source marked, and the pixels of a
padded stamp that lie outside the detector in blue, counted in the title
(`alertpack.tools.stamp_display`). Below is the light curve: difference-image
PSF flux of the previous detections and of the forced photometry, a colour
per band (none near black), with errors and an AB magnitude axis on the
right, or AB magnitudes with 5-sigma upper limits; the alert's own detection
is a star (`alertpack.tools.photometry`). A header gives the numbers a broker
lists first, with the signed S/N and, for a solar-system source, the
asteroid's designation. Matplotlib runs on the Agg canvas: no display is
ever needed.

`plot_targets` decides the files of a set of figures (one file each, or the
pages of one PDF) and `save_figures` writes them, each atomically.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.errors import InputError, OutputError
from alertpack.sinks.files import atomic_output, check_output_directory
from alertpack.tools.photometry import (
    BAND_COLOURS,
    Point,
    band_colour,
    band_order,
    merge_photometry,
    photometry,
    placement,
)
from alertpack.tools.reading import (
    LoadedAlert,
    alert_id,
    alert_object_id,
    field_value,
    signal_to_noise,
)
from alertpack.tools.selection import ab_flux, ab_magnitude, quantity_values
from alertpack.tools.stamp_display import (
    DIFFERENCE_FIELD,
    NO_DATA_RGB,
    STRETCHES,
    Stamp,
    check_stretch,
    display_levels,
    display_limits,
    north_east_vectors,
    pixel_scale,
    read_stamp,
    scale_bar,
    symmetric_zscale_limits,
    zscale_limits,
)

if TYPE_CHECKING:
    from astropy.wcs import WCS
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "BAND_COLORS",
    "DEFAULT_STRETCH",
    "STRETCHES",
    "PlotTargets",
    "Stamp",
    "check_plot_path",
    "north_east_vectors",
    "plot_alert",
    "plot_object",
    "plot_targets",
    "read_stamp",
    "save_alert_plot",
    "save_figures",
    "symmetric_zscale_limits",
    "unreadable_cutouts",
    "zscale_limits",
]

#: the band colours of the light curve (`alertpack.tools.photometry.BAND_COLOURS`)
BAND_COLORS = BAND_COLOURS

#: the stretch of ``alertpack show`` unless told otherwise
DEFAULT_STRETCH = "zscale"

_STAMP_TITLES = {
    "cutoutScience": "Science",
    "cutoutTemplate": "Template",
    "cutoutDifference": "Difference",
}
_ARROW_COLOR = "#ffd400"
_MARKER_COLOR = "#00e5ff"
_KIND_GREY = "#8c8c8c"
_SAVE_FORMATS = ("png", "pdf", "svg")
_DEFAULT_FORMAT = "png"
#: at most this many magnitude ticks on the right of a flux light curve
_MAGNITUDE_TICKS = 6


# --------------------------------------------------------------------------- stamps


@functools.cache
def _stretch_norm_class() -> type:
    """A matplotlib `Normalize` applying `display_levels`; its limits stay pixel values."""
    # matplotlib is the optional `plot` extra, and browse imports this module without it
    from matplotlib.colors import Normalize

    class StretchNorm(Normalize):
        def __init__(self, vmin: float, vmax: float, stretch: str, symmetric: bool) -> None:
            super().__init__(vmin=vmin, vmax=vmax, clip=True)
            self.stretch = stretch
            self.symmetric = symmetric

        def __call__(self, value: Any, clip: bool | None = None) -> Any:
            pixels = np.ma.getdata(value).astype(float)
            assert self.vmin is not None and self.vmax is not None  # set when constructed
            limits = (float(self.vmin), float(self.vmax))
            levels = display_levels(pixels, limits, self.stretch, symmetric=self.symmetric)
            return np.ma.masked_invalid(levels)

    return StretchNorm


def _grey_with_no_data() -> Any:
    from matplotlib import colormaps  # as in _stretch_norm_class

    red, green, blue = (channel / 255 for channel in NO_DATA_RGB)
    return colormaps["gray"].with_extremes(bad=(red, green, blue))


def _draw_compass(ax: Axes, wcs: WCS, shape: tuple[int, int]) -> bool:
    """North and east arrows in the corner they point away from; True when it is at the top."""
    north, east = north_east_vectors(wcs, shape)
    ny, nx = shape
    length = 0.22 * min(nx, ny)
    direction = north + east
    at_top = direction[1] < 0
    anchor = np.array(
        [
            (0.85 if direction[0] < 0 else 0.15) * (nx - 1),
            (0.85 if at_top else 0.15) * (ny - 1),
        ]
    )
    for vector, label in ((north, "N"), (east, "E")):
        tip = anchor + length * vector
        ax.annotate(
            "",
            xy=(float(tip[0]), float(tip[1])),
            xytext=(float(anchor[0]), float(anchor[1])),
            xycoords="data",
            arrowprops={"arrowstyle": "-|>", "color": _ARROW_COLOR, "lw": 1.5},
        )
        label_at = anchor + 1.35 * length * vector
        ax.text(
            float(label_at[0]), float(label_at[1]), label, color=_ARROW_COLOR, fontsize=9,
            fontweight="bold", ha="center", va="center",
        )
    return bool(at_top)


def _draw_scale_bar(ax: Axes, wcs: WCS, shape: tuple[int, int], *, left: bool) -> None:
    ny, nx = shape
    try:
        bar = scale_bar(pixel_scale(wcs), nx)
    except Exception:  # a WCS without a pixel scale: no bar, the stamp is still shown
        return
    if bar is None:
        return
    length, label = bar
    x0 = 0.06 * (nx - 1) if left else 0.94 * (nx - 1) - length
    y0 = 0.06 * (ny - 1)
    ax.plot([x0, x0 + length], [y0, y0], color=_ARROW_COLOR, lw=2.0, solid_capstyle="butt")
    ax.text(x0 + length / 2, y0 + 0.03 * ny, label, color=_ARROW_COLOR, fontsize=8,
            ha="center", va="bottom")


def _mark_source(ax: Axes, stamp: Stamp, ra: float | None, dec: float | None) -> None:
    """Four ticks around the source that leave its pixels visible."""
    ny, nx = stamp.pixels.shape
    if stamp.wcs is not None and ra is not None and dec is not None:
        x, y = stamp.wcs.world_to_pixel_values(ra, dec)
    else:
        x, y = (nx - 1) / 2, (ny - 1) / 2
    inner, outer = 0.10 * min(nx, ny), 0.22 * min(nx, ny)
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        ax.plot(
            [x + dx * inner, x + dx * outer], [y + dy * inner, y + dy * outer],
            color=_MARKER_COLOR, lw=1.5,
        )


def _empty_panel(ax: Axes, title: str, message: str) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_facecolor("#f2f2f2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
            fontsize=10, color="#555555", wrap=True)


def _stamps(record: dict[str, Any]) -> tuple[dict[str, Stamp], dict[str, str]]:
    """Decoded stamps by field name, and a reason for each one that is missing."""
    stamps: dict[str, Stamp] = {}
    missing: dict[str, str] = {}
    for name in _STAMP_TITLES:
        data = record.get(name)
        if data is None:
            missing[name] = f"no {name}\nin this alert"
            continue
        try:
            stamps[name] = read_stamp(data)
        except InputError as error:
            missing[name] = f"{name} unreadable:\n{error}"
    return stamps, missing


def unreadable_cutouts(record: dict[str, Any]) -> dict[str, str]:
    """Cutouts the alert holds that cannot be decoded: field name -> reason."""
    _, missing = _stamps(record)
    return {
        name: missing[name].split(":\n", 1)[-1]
        for name in missing
        if record.get(name) is not None
    }


def _stamp_title(title: str, stretch: str, limits: tuple[float, float], stamp: Stamp) -> str:
    unit = f" {stamp.unit}" if stamp.unit else ""
    text = f"{title}\n{stretch} [{limits[0]:.3g}, {limits[1]:.3g}]{unit}"
    if stamp.no_data:
        # a stamp over the detector's edge is padded with NaN (NO_DATA): drawn in blue
        text += f"\npadded: {stamp.no_data} px without data (blue)"
    return text


def _draw_stamps(figure: Figure, grid: Any, record: dict[str, Any], stretch: str) -> None:
    stamps, missing = _stamps(record)
    source = record.get("diaSource")
    ra, dec = field_value(source, "ra"), field_value(source, "dec")
    limits = display_limits(stamps, stretch)
    norm_class = _stretch_norm_class()
    cmap = _grey_with_no_data()
    for column, (name, title) in enumerate(_STAMP_TITLES.items()):
        if name not in stamps:
            _empty_panel(figure.add_subplot(grid[0, column]), title, missing[name])
            continue
        stamp = stamps[name]
        ax = figure.add_subplot(grid[0, column], projection=stamp.wcs)
        low, high = limits[name]
        norm = norm_class(low, high, stretch, name == DIFFERENCE_FIELD)
        ax.imshow(stamp.pixels, origin="lower", cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_title(_stamp_title(title, stretch, (low, high), stamp), fontsize=10)
        if stamp.wcs is not None:
            _style_sky_axes(ax, first=column == 0)
            compass_on_top = _draw_compass(ax, stamp.wcs, stamp.pixels.shape)
            # the bar along the bottom, beside the compass when that is at the bottom
            _draw_scale_bar(ax, stamp.wcs, stamp.pixels.shape, left=compass_on_top)
        else:
            ax.set_xlabel("x [pix]  (no WCS in cutout)", fontsize=8)
        _mark_source(ax, stamp, ra, dec)
        ny, nx = stamp.pixels.shape
        ax.set_xlim(-0.5, nx - 0.5)
        ax.set_ylim(-0.5, ny - 0.5)


def _style_sky_axes(ax: Any, *, first: bool) -> None:
    ra_axis, dec_axis = ax.coords[0], ax.coords[1]
    ra_axis.set_ticks(number=3)
    dec_axis.set_ticks(number=3)
    ra_axis.set_ticklabel(size=7, exclude_overlapping=True)
    dec_axis.set_ticklabel(size=7, exclude_overlapping=True)
    ra_axis.set_axislabel("RA", fontsize=8)
    dec_axis.set_axislabel("Dec" if first else "", fontsize=8)


# ---------------------------------------------------------------------- light curve


_MARKERS = {"forced": "s", "detection": "o", "alert": "*"}


def _draw_light_curve(ax: Axes, points: Sequence[Point], *, magnitudes: bool) -> None:
    # matplotlib is the optional `plot` extra, and browse imports this module without it
    from matplotlib.lines import Line2D

    placed = [(point, *placement(point, magnitudes)) for point in points]
    placed = [item for item in placed if math.isfinite(item[1])]
    ax.set_xlabel("MJD (TAI)")
    ax.grid(alpha=0.25)
    if magnitudes:
        ax.set_ylabel("AB magnitude")
        ax.invert_yaxis()
    else:
        ax.axhline(0.0, color="#999999", lw=0.8, ls="--", zorder=0)
        ax.set_ylabel("difference flux [nJy]")
    handles = []
    any_limit = False
    for band in band_order(point.band for point, *_ in placed):
        color = band_colour(band)
        for kind in ("forced", "detection", "alert"):
            chosen = [item for item in placed if item[0].band == band and item[0].kind == kind]
            if not chosen:
                continue
            limits = [item for item in chosen if item[4]]
            measured = [item for item in chosen if not item[4]]
            any_limit |= bool(limits)
            if measured:
                _draw_points(ax, measured, kind, color)
            if limits:
                ax.plot(np.array([item[0].mjd for item in limits]),
                        np.array([item[1] for item in limits]),
                        marker="v", ls="", ms=7, mfc="none", mec=color, mew=1.3,
                        zorder=5 if kind == "alert" else 3)
        handles.append(Line2D([], [], color=color, marker="o", ls="", label=band))
    # marker-kind entries in grey, so that no band colour is taken for a kind
    handles.append(Line2D([], [], color=_KIND_GREY, marker="o", ls="", label="detection"))
    handles.append(
        Line2D([], [], color=_KIND_GREY, marker="s", mfc="none", ls="", label="forced")
    )
    if any(point.kind == "alert" for point, *_ in placed):
        handles.append(Line2D([], [], color="w", marker="*", ms=14, mfc="#bbbbbb",
                              mec="black", ls="", label="alert"))
    if any_limit:
        handles.append(Line2D([], [], color=_KIND_GREY, marker="v", mfc="none", ls="",
                              label="5σ upper limit"))
    if not any(point.kind != "alert" for point, *_ in placed):
        ax.text(0.5, 0.2, "no previous sources or forced photometry in this alert",
                ha="center", va="center", transform=ax.transAxes, color="#555555")
    _pad_time_axis(ax, np.array([point.mjd for point, *_ in placed], dtype=float))
    ax.legend(handles=handles, loc="upper left", fontsize=8, ncols=2, framealpha=0.8)
    if not magnitudes:
        _magnitude_axis(ax)


def _draw_points(ax: Axes, items: list[tuple[Any, ...]], kind: str, color: str) -> None:
    mjd = np.array([item[0].mjd for item in items], dtype=float)
    y = np.array([item[1] for item in items])
    low = np.array([item[2] for item in items])
    high = np.array([item[3] for item in items])
    error = np.vstack([y - low, high - y])
    if kind == "alert":
        ax.errorbar(mjd, y, yerr=error, fmt="none", ecolor=color, capsize=3, lw=1.5, zorder=4)
        ax.plot(mjd, y, marker="*", ms=18, color=color, mec="black", mew=1.2, ls="", zorder=5)
        return
    filled = kind == "detection"
    ax.errorbar(
        mjd, y, yerr=error, fmt=_MARKERS[kind], color=color, ms=6, capsize=2, lw=1,
        mfc=color if filled else "none", mew=1.3, alpha=1.0 if filled else 0.8,
    )


def _magnitude_axis(ax: Axes) -> None:
    """AB magnitudes on the right of a flux axis, at round values over its positive part."""
    low, high = ax.get_ylim()
    twin = ax.twinx()
    twin.set_ylim(low, high)
    twin.set_ylabel("AB magnitude")
    if high <= 0:
        twin.set_yticks([])
        return
    # on a linear flux axis magnitudes crowd towards zero flux: down to 1/12 of the top
    faintest_flux = max(low, high / 12.0)
    bright = ab_magnitude(high)[0]
    faint = ab_magnitude(faintest_flux)[0] if faintest_flux > 0 else None
    if bright is None or faint is None:
        twin.set_yticks([])
        return
    step = next(s for s in (0.25, 0.5, 1.0, 2.0, 5.0) if (faint - bright) / s <= _MAGNITUDE_TICKS)
    ticks: list[tuple[float, float]] = []
    for magnitude in np.arange(math.ceil(bright / step) * step, faint + 1e-9, step):
        flux = ab_flux(float(magnitude))
        # from the bright end down: a tick too close to the one above it is left out
        if not ticks or ticks[-1][1] - flux >= (high - low) / 15.0:
            ticks.append((float(magnitude), flux))
    twin.set_yticks([flux for _, flux in ticks], [f"{m:g}" for m, _ in ticks])
    twin.tick_params(axis="y", labelsize=8)


def _pad_time_axis(ax: Axes, times: np.ndarray) -> None:
    """Show at least a month: a lone point would otherwise get an arbitrary span."""
    times = times[np.isfinite(times)]
    if times.size == 0:
        return
    span = float(times.max() - times.min())
    pad = max(0.05 * span, 15.0 if span < 1.0 else 1.0)
    ax.set_xlim(times.min() - pad, times.max() + pad)
    # MJDs read best whole: no "+6.0857e4" offset label
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.margins(y=0.12)


# --------------------------------------------------------------------------- header


def _format(value: Any, template: str, missing: str = "-") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return missing
    return template.format(value)


def _flux_text(source: dict[str, Any] | None) -> str:
    flux, error = field_value(source, "flux"), field_value(source, "flux_err")
    text = f"psfFlux {_format(flux, '{:.1f}')} ± {_format(error, '{:.1f}')} nJy"
    magnitude, magnitude_err = ab_magnitude(flux, error)
    if magnitude is not None:
        text += f" ({magnitude:.2f} ± {_format(magnitude_err, '{:.2f}')} AB)"
    return text


def _position_text(source: dict[str, Any] | None) -> str:
    ra, dec = field_value(source, "ra"), field_value(source, "dec")
    text = f"RA {_format(ra, '{:.6f}')}  Dec {_format(dec, '{:+.6f}')}"
    if ra is not None and dec is not None:
        from astropy.coordinates import Angle  # on first use, as in read_stamp

        text += (
            f"  ({Angle(ra, 'deg').to_string('hourangle', sep=':', precision=2)} "
            f"{Angle(dec, 'deg').to_string(sep=':', precision=1, alwayssign=True)})"
        )
    return text


def _asteroid_text(record: dict[str, Any]) -> str:
    values = quantity_values(record, ("designation", "ssobject"))
    if values["ssobject"] is None and values["designation"] is None:
        return ""
    name = values["designation"] or "solar-system object"
    number = f" (ssObject {values['ssobject']})" if values["ssobject"] is not None else ""
    return f"   asteroid {name}{number}"


def _header(record: dict[str, Any], schema_label: str) -> str:
    source = record.get("diaSource")
    n_previous = len(record.get("prvDiaSources") or [])
    n_forced = len(record.get("prvDiaForcedSources") or [])
    first = (
        f"alert {_format(alert_id(record), '{}')}   "
        f"diaSource {_format(field_value(source, 'diaSourceId'), '{}')}   "
        f"diaObject {_format(alert_object_id(record), '{}')}   "
        f"band {_format(field_value(source, 'band'), '{}')}   "
        f"MJD {_format(field_value(source, 'mjd'), '{:.5f}')}"
    )
    second = _position_text(source) + _asteroid_text(record)
    if schema_label:
        second += f"   schema {schema_label}"
    third = (
        f"S/N {_format(signal_to_noise(source), '{:.1f}')}   {_flux_text(source)}   "
        f"{n_previous} previous, {n_forced} forced"
    )
    return f"{first}\n{second}\n{third}"


def _object_header(records: Sequence[dict[str, Any]], latest: dict[str, Any]) -> str:
    sources = [record.get("diaSource") for record in records]
    bands = band_order(str(field_value(s, "band", "?")) for s in sources)
    mjds = [field_value(s, "mjd") for s in sources]
    mjds = [m for m in mjds if m is not None]
    span = f"MJD {min(mjds):.5f} - {max(mjds):.5f}" if mjds else "MJD -"
    first = (
        f"diaObject {_format(alert_object_id(latest), '{}')}   {len(records)} alert(s) in the "
        f"input   bands {', '.join(bands)}   {span}"
    )
    source = latest.get("diaSource")
    second = (
        f"latest alert {_format(alert_id(latest), '{}')} (its stamps below)   "
        f"band {_format(field_value(source, 'band'), '{}')}   "
        f"MJD {_format(field_value(source, 'mjd'), '{:.5f}')}{_asteroid_text(latest)}"
    )
    third = f"S/N {_format(signal_to_noise(source), '{:.1f}')}   {_flux_text(source)}"
    return f"{first}\n{second}\n{third}"


# ---------------------------------------------------------------------------- plots


def _record_of(alert: LoadedAlert | dict[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(alert, LoadedAlert):
        label = str(alert.schema.version) if alert.schema else alert.schema_name
        record = alert.alert
    else:
        record, label = alert, ""
    if not isinstance(record, dict) or record.get("diaSource") is None:
        raise InputError("the alert has no diaSource to show")
    return record, label


def _figure(
    record: dict[str, Any],
    points: Sequence[Point],
    title: str,
    *,
    figsize: tuple[float, float],
    stretch: str,
    magnitudes: bool,
) -> Figure:
    # matplotlib is the optional `plot` extra, and browse imports this module without it
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    check_stretch(stretch)
    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, 3, height_ratios=[1.0, 0.9])
    _draw_stamps(figure, grid, record, stretch)
    _draw_light_curve(figure.add_subplot(grid[1, :]), points, magnitudes=magnitudes)
    figure.suptitle(title, fontsize=11, family="monospace")
    return figure


def plot_alert(
    alert: LoadedAlert | dict[str, Any],
    *,
    figsize: tuple[float, float] = (13.0, 9.6),
    stretch: str = DEFAULT_STRETCH,
    magnitudes: bool = False,
) -> Figure:
    """The stamp triplet, light curve and header of one alert.

    Parameters
    ----------
    alert : `LoadedAlert` or `dict`
        The alert (a decoded record of any schema version, v3 onwards).
    figsize : `tuple` [`float`, `float`]
        Figure size in inches.
    stretch : `str`
        One of `STRETCHES` (``zscale``, ``asinh``, ``linear``).
    magnitudes : `bool`
        Light curve in AB magnitudes (5-sigma upper limits below 3 sigma)
        instead of difference flux in nJy with a magnitude axis.

    Returns
    -------
    figure : `matplotlib.figure.Figure`
        On an Agg canvas, independent of pyplot's global state; save it with
        ``figure.savefig`` or `save_figures`.

    Raises
    ------
    InputError
        For an alert without a diaSource, or an unknown stretch.
    """
    record, schema_label = _record_of(alert)
    return _figure(record, photometry(record), _header(record, schema_label),
                   figsize=figsize, stretch=stretch, magnitudes=magnitudes)


def plot_object(
    alerts: Sequence[LoadedAlert | dict[str, Any]],
    *,
    figsize: tuple[float, float] = (13.0, 9.6),
    stretch: str = DEFAULT_STRETCH,
    magnitudes: bool = False,
) -> Figure:
    """The alerts of one diaObject: the stamps of the latest over their merged light curve.

    Each measurement is drawn once (an alert's previous sources are the
    earlier alerts' sources); every given alert's own detection is a star.
    Parameters as for `plot_alert`.

    Raises
    ------
    InputError
        For no alerts, alerts without a diaSource or an unknown stretch.
    """
    if not alerts:
        raise InputError("no alerts of the object to show")
    records = [_record_of(alert)[0] for alert in alerts]
    latest = max(records, key=lambda r: field_value(r.get("diaSource"), "mjd", -math.inf))
    return _figure(latest, merge_photometry(records), _object_header(records, latest),
                   figsize=figsize, stretch=stretch, magnitudes=magnitudes)


# --------------------------------------------------------------------------- output


def check_plot_path(path: str | os.PathLike) -> Path:
    """Check, before any work, that a plot can be written to ``path``.

    Raises
    ------
    OutputError
        For a name without a known image suffix, a directory, or a
        directory that cannot be created or written.
    """
    path = Path(path)
    if path.suffix.lower().lstrip(".") not in _SAVE_FORMATS:
        raise OutputError(
            f"cannot write {path}: the name must end in one of "
            f"{', '.join('.' + f for f in _SAVE_FORMATS)}"
        )
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory; give an image file name")
    check_output_directory(path.parent)
    return path


@dataclass
class PlotTargets:
    """Where a set of figures goes: one file each (`paths`), or the pages of one PDF.

    Attributes
    ----------
    paths : `list` [`pathlib.Path`]
        One file per figure, in order (empty when ``pdf`` is set).
    pdf : `pathlib.Path` or `None`
        One PDF holding every figure, a page each.
    """

    paths: list[Path]
    pdf: Path | None = None


def plot_targets(output: str | os.PathLike | None, names: Sequence[str]) -> PlotTargets:
    """The files of figures named ``names`` (e.g. ``alert-123``), checked before any work.

    Parameters
    ----------
    output : path-like or `None`
        `None`: ``NAME.png`` in the working directory; a directory (existing,
        or written with a trailing ``/``): ``NAME.png`` in it; a ``.pdf`` for
        several figures: their pages; a file name for one figure: that file;
        for several, ``STEM-NAME.SUFFIX`` beside it.
    names : sequence of `str`
        One per figure.

    Raises
    ------
    OutputError
        For a name without a known image suffix, or a directory that cannot
        be created or written.
    """
    text = None if output is None else os.fspath(output)
    if text is None or text.endswith(("/", os.sep)) or Path(text).is_dir():
        directory = check_output_directory(Path(text or "."))
        return PlotTargets([directory / f"{name}.{_DEFAULT_FORMAT}" for name in names])
    path = check_plot_path(text)
    if len(names) == 1:
        return PlotTargets([path])
    if path.suffix.lower() == ".pdf":
        return PlotTargets([], pdf=path)
    return PlotTargets([path.with_name(f"{path.stem}-{name}{path.suffix}") for name in names])


def save_figures(
    figures: Iterable[Figure], targets: PlotTargets, *, dpi: int = 100
) -> Iterator[Path]:
    """Write ``figures`` (made one at a time) where ``targets`` say; each file atomically.

    Yields
    ------
    path : `pathlib.Path`
        Each file once it is complete (the PDF once, after its last page).
    """
    if targets.pdf is not None:
        # matplotlib's PDF backend, the `plot` extra
        from matplotlib.backends.backend_pdf import PdfPages

        with atomic_output(targets.pdf) as stream, PdfPages(stream) as pages:
            for figure in figures:
                pages.savefig(figure, dpi=dpi)
        yield targets.pdf
        return
    for figure, path in zip(figures, targets.paths, strict=True):
        with atomic_output(path) as stream:
            figure.savefig(stream, format=path.suffix.lower().lstrip("."), dpi=dpi)
        yield path


def save_alert_plot(
    alert: LoadedAlert | dict[str, Any],
    path: str | os.PathLike,
    *,
    dpi: int = 100,
    stretch: str = DEFAULT_STRETCH,
    magnitudes: bool = False,
) -> Path:
    """Draw ``alert`` with `plot_alert` and write it atomically to ``path`` (png/pdf/svg)."""
    target = PlotTargets([check_plot_path(path)])
    figure = plot_alert(alert, stretch=stretch, magnitudes=magnitudes)
    (written,) = save_figures([figure], target, dpi=dpi)
    return written
