"""Draw an alert the way brokers show it: stamp triplet over the light curve.

The top row holds the science, template and difference cutouts on WCS axes,
science and template on one common zscale (so that a brightening reads as
one), the difference on its own symmetric zscale, each with north/east
arrows computed from the cutout's WCS and the source marked. Below is the
light curve of the alert's history: difference-image PSF flux of the
previous detections and of the forced photometry, per band, with errors, the
triggering detection marked. A header gives the numbers a broker lists
first. Matplotlib runs on the Agg canvas: no display is ever needed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alertpack.errors import InputError, OutputError
from alertpack.sinks.files import atomic_output, check_output_directory
from alertpack.tools.reading import (
    LoadedAlert,
    alert_id,
    alert_object_id,
    field_value,
)
from alertpack.tools.stamp_reader import open_stamp

if TYPE_CHECKING:
    from astropy.wcs import WCS
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "BAND_COLORS",
    "Stamp",
    "north_east_vectors",
    "plot_alert",
    "read_stamp",
    "save_alert_plot",
    "symmetric_zscale_limits",
    "zscale_limits",
]

# Rubin's band colours for white backgrounds (lsst.utils.plotting), copied
# here so that the light curve looks the same whichever lsst-utils is installed.
BAND_COLORS = {
    "u": "#1600EA",
    "g": "#31DE1F",
    "r": "#B52626",
    "i": "#370201",
    "z": "#BA52FF",
    "y": "#61A2B3",
}
_OTHER_BAND_COLOR = "#7f7f7f"
_STAMP_TITLES = {
    "cutoutScience": "Science",
    "cutoutTemplate": "Template",
    "cutoutDifference": "Difference",
}
_ARROW_COLOR = "#ffd400"
_MARKER_COLOR = "#00e5ff"
_SAVE_FORMATS = ("png", "pdf", "svg")


@dataclass
class Stamp:
    """A decoded cutout: pixels (2-D float), its WCS (or `None`) and flux unit."""

    pixels: np.ndarray
    wcs: WCS | None
    unit: str


def read_stamp(data: bytes) -> Stamp:
    """Decode cutout FITS bytes: the first 2-D image HDU and its celestial WCS.

    Raises
    ------
    InputError
        If astropy cannot open the bytes (or they are truncated) or they hold
        no 2-D image; `~alertpack.errors.LimitExceededError` beyond the read
        limits (`~alertpack.tools.stamp_reader.open_stamp`).
    """
    # astropy on first use: browse imports this module and serves pages before any stamp
    from astropy.utils.exceptions import AstropyWarning
    from astropy.wcs import WCS, FITSFixedWarning

    # headers checked against the read limits (pixels, SIP orders, gzip tiles) and the
    # declared data against the bytes, before any pixel is decoded
    hdus = open_stamp(data, name="the cutout")
    try:
        with warnings.catch_warnings(), hdus:
            # a damaged header is reported as one InputError below, not as warnings
            warnings.simplefilter("ignore", AstropyWarning)
            for hdu in hdus:
                if hdu.is_image and hdu.data is not None and hdu.data.ndim == 2:
                    pixels = np.asarray(hdu.data, dtype=float)
                    header = hdu.header
                    break
            else:
                raise InputError("the cutout holds no 2-D image")
    except InputError:
        raise
    except Exception as error:  # astropy raises many types for bad FITS
        raise InputError(f"the cutout does not open as FITS ({error})") from None
    with warnings.catch_warnings():
        # headers of other pipelines carry non-standard keys; the WCS still reads
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header).celestial
        except Exception:  # an unreadable WCS leaves pixel axes, still a useful plot
            wcs = None
    if wcs is not None and not wcs.has_celestial:
        wcs = None
    return Stamp(pixels, wcs, str(header.get("BUNIT", "")).strip())


def zscale_limits(*images: np.ndarray) -> tuple[float, float]:
    """Zscale display limits over the finite pixels of all ``images`` together."""
    from astropy.visualization import ZScaleInterval  # on first use, as in read_stamp

    values = np.concatenate([image[np.isfinite(image)].ravel() for image in images])
    if values.size == 0:
        return 0.0, 1.0
    low, high = ZScaleInterval().get_limits(values)
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


def symmetric_zscale_limits(image: np.ndarray) -> tuple[float, float]:
    """Zscale made symmetric about zero: a difference is read against zero."""
    low, high = zscale_limits(image)
    half = max(abs(low), abs(high))
    return -half, half


def north_east_vectors(wcs: WCS, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Unit pixel vectors towards north and east at the stamp centre."""
    import astropy.units as u  # on first use, as in read_stamp

    ny, nx = shape
    centre = wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    step = 2 * u.arcsec
    origin = np.array([(nx - 1) / 2, (ny - 1) / 2])
    vectors = []
    for position_angle in (0 * u.deg, 90 * u.deg):  # north, then east (PA east of north)
        pixel = np.array(wcs.world_to_pixel(centre.directional_offset_by(position_angle, step)))
        vector = pixel - origin
        vectors.append(vector / np.hypot(*vector))
    return vectors[0], vectors[1]


def _draw_compass(ax: Axes, wcs: WCS, shape: tuple[int, int]) -> None:
    north, east = north_east_vectors(wcs, shape)
    ny, nx = shape
    length = 0.22 * min(nx, ny)
    # put the compass in the corner the arrows point away from, so it stays inside
    direction = north + east
    anchor = np.array(
        [
            (0.85 if direction[0] < 0 else 0.15) * (nx - 1),
            (0.85 if direction[1] < 0 else 0.15) * (ny - 1),
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


def _draw_stamps(figure: Figure, grid: Any, record: dict[str, Any]) -> None:
    stamps, missing = _stamps(record)
    source = record.get("diaSource")
    ra, dec = field_value(source, "ra"), field_value(source, "dec")
    direct = [stamps[n].pixels for n in ("cutoutScience", "cutoutTemplate") if n in stamps]
    # science and template share limits so that a change in brightness shows as one
    direct_limits = zscale_limits(*direct) if direct else (0.0, 1.0)
    for column, (name, title) in enumerate(_STAMP_TITLES.items()):
        if name not in stamps:
            _empty_panel(figure.add_subplot(grid[0, column]), title, missing[name])
            continue
        stamp = stamps[name]
        ax = figure.add_subplot(grid[0, column], projection=stamp.wcs)
        if name == "cutoutDifference":
            low, high = symmetric_zscale_limits(stamp.pixels)
        else:
            low, high = direct_limits
        ax.imshow(stamp.pixels, origin="lower", cmap="gray", vmin=low, vmax=high,
                  interpolation="nearest")
        unit = f" {stamp.unit}" if stamp.unit else ""
        ax.set_title(f"{title}\nzscale [{low:.3g}, {high:.3g}]{unit}", fontsize=10)
        if stamp.wcs is not None:
            _style_sky_axes(ax, first=column == 0)
            _draw_compass(ax, stamp.wcs, stamp.pixels.shape)
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


@dataclass
class _Photometry:
    """Flux points of one kind (detections or forced), as arrays."""

    mjd: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    band: np.ndarray

    @classmethod
    def from_records(cls, records: Sequence[dict[str, Any]] | None) -> _Photometry:
        records = records or []

        def column(quantity: str, default: Any) -> list[Any]:
            return [field_value(item, quantity, default) for item in records]

        return cls(
            mjd=np.array(column("mjd", np.nan), dtype=float),
            flux=np.array(column("flux", np.nan), dtype=float),
            error=np.array(column("flux_err", np.nan), dtype=float),
            band=np.array(column("band", "?"), dtype=object),
        )

    def __len__(self) -> int:
        return len(self.mjd)


def _band_order(*bands: np.ndarray) -> list[str]:
    present = set().union(*(set(b.tolist()) for b in bands))
    known = [band for band in BAND_COLORS if band in present]
    return known + sorted(present - set(known))


def _draw_light_curve(ax: Axes, record: dict[str, Any]) -> None:
    # matplotlib is the optional `plot` extra, and browse imports this module without it
    from matplotlib.lines import Line2D

    detections = _Photometry.from_records(record.get("prvDiaSources"))
    forced = _Photometry.from_records(record.get("prvDiaForcedSources"))
    current = _Photometry.from_records(
        [record["diaSource"]] if record.get("diaSource") else []
    )
    ax.axhline(0.0, color="#999999", lw=0.8, ls="--", zorder=0)
    ax.set_xlabel("MJD (TAI)")
    ax.set_ylabel("difference flux [nJy]")
    ax.grid(alpha=0.25)
    handles = []
    for band in _band_order(detections.band, forced.band, current.band):
        color = BAND_COLORS.get(band, _OTHER_BAND_COLOR)
        for points, marker, filled in ((forced, "s", False), (detections, "o", True)):
            chosen = points.band == band
            if not chosen.any():
                continue
            ax.errorbar(
                points.mjd[chosen], points.flux[chosen], yerr=points.error[chosen],
                fmt=marker, color=color, ms=6, capsize=2, lw=1,
                mfc=color if filled else "none", mew=1.3, alpha=1.0 if filled else 0.8,
            )
        handles.append(Line2D([], [], color=color, marker="o", ls="", label=band))
    # marker-kind entries in grey: black would read as the (near-black) i band
    handles.append(Line2D([], [], color="#8c8c8c", marker="o", ls="", label="detection"))
    handles.append(
        Line2D([], [], color="#8c8c8c", marker="s", mfc="none", ls="", label="forced")
    )
    if len(current) and np.isfinite(current.flux[0]):
        color = BAND_COLORS.get(current.band[0], _OTHER_BAND_COLOR)
        ax.errorbar(current.mjd, current.flux, yerr=current.error, fmt="none",
                    ecolor=color, capsize=3, lw=1.5, zorder=4)
        ax.plot(current.mjd, current.flux, marker="*", ms=18, color=color, mec="black",
                mew=1.2, ls="", zorder=5)
        handles.append(Line2D([], [], color="w", marker="*", ms=14, mfc="#bbbbbb",
                              mec="black", ls="", label="this alert"))
    if len(detections) + len(forced) == 0:
        ax.text(0.5, 0.2, "no previous sources or forced photometry in this alert",
                ha="center", va="center", transform=ax.transAxes, color="#555555")
    _pad_time_axis(ax, detections.mjd, forced.mjd, current.mjd)
    ax.legend(handles=handles, loc="upper left", fontsize=8, ncols=2, framealpha=0.8)


def _pad_time_axis(ax: Axes, *mjds: np.ndarray) -> None:
    """Show at least a month: a lone point would otherwise get an arbitrary span."""
    times = np.concatenate(mjds)
    times = times[np.isfinite(times)]
    if times.size == 0:
        return
    span = float(times.max() - times.min())
    pad = max(0.05 * span, 15.0 if span < 1.0 else 1.0)
    ax.set_xlim(times.min() - pad, times.max() + pad)
    # MJDs read best whole: no "+6.0857e4" offset label
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.margins(y=0.12)


def _format(value: Any, template: str, missing: str = "-") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return missing
    return template.format(value)


def _header(record: dict[str, Any], schema_label: str) -> str:
    source = record.get("diaSource")
    ra, dec = field_value(source, "ra"), field_value(source, "dec")
    flux, error = field_value(source, "flux"), field_value(source, "flux_err")
    snr = field_value(source, "snr")
    if snr is None and flux is not None and error:
        snr = flux / error
    position = ""
    if ra is not None and dec is not None:
        from astropy.coordinates import Angle  # on first use, as in read_stamp

        position = (
            f"  ({Angle(ra, 'deg').to_string('hourangle', sep=':', precision=2)} "
            f"{Angle(dec, 'deg').to_string(sep=':', precision=1, alwayssign=True)})"
        )
    n_previous = len(record.get("prvDiaSources") or [])
    n_forced = len(record.get("prvDiaForcedSources") or [])
    first = (
        f"alert {_format(alert_id(record), '{}')}   "
        f"diaSource {_format(field_value(source, 'diaSourceId'), '{}')}   "
        f"diaObject {_format(alert_object_id(record), '{}')}   "
        f"band {_format(field_value(source, 'band'), '{}')}   "
        f"MJD {_format(field_value(source, 'mjd'), '{:.5f}')}"
    )
    second = (
        f"RA {_format(ra, '{:.6f}')}  Dec {_format(dec, '{:+.6f}')}{position}   "
        f"S/N {_format(snr, '{:.1f}')}   psfFlux {_format(flux, '{:.1f}')} ± "
        f"{_format(error, '{:.1f}')} nJy   {n_previous} previous, {n_forced} forced"
    )
    if schema_label:
        second += f"   schema {schema_label}"
    return f"{first}\n{second}"


def plot_alert(alert: LoadedAlert | dict[str, Any], *, figsize=(13.0, 9.0)) -> Figure:
    """The stamp triplet, light curve and header of one alert.

    Parameters
    ----------
    alert : `LoadedAlert` or `dict`
        The alert (a decoded record of any schema version, v3 onwards).
    figsize : `tuple` [`float`, `float`]
        Figure size in inches.

    Returns
    -------
    figure : `matplotlib.figure.Figure`
        On an Agg canvas, independent of pyplot's global state; save it with
        ``figure.savefig`` or `save_alert_plot`.
    """
    # matplotlib is the optional `plot` extra, and browse imports this module without it
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(alert, LoadedAlert):
        record = alert.alert
        schema_label = str(alert.schema.version) if alert.schema else alert.schema_name
    else:
        record, schema_label = alert, ""
    if not isinstance(record, dict) or record.get("diaSource") is None:
        raise InputError("the alert has no diaSource to show")
    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, 3, height_ratios=[1.0, 0.9])
    _draw_stamps(figure, grid, record)
    _draw_light_curve(figure.add_subplot(grid[1, :]), record)
    figure.suptitle(_header(record, schema_label), fontsize=11, family="monospace")
    return figure


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


def save_alert_plot(
    alert: LoadedAlert | dict[str, Any], path: str | os.PathLike, *, dpi: int = 100
) -> Path:
    """Draw ``alert`` with `plot_alert` and write it atomically to ``path`` (png/pdf/svg)."""
    path = check_plot_path(path)
    image_format = path.suffix.lower().lstrip(".")
    figure = plot_alert(alert)
    with atomic_output(path) as stream:
        figure.savefig(stream, format=image_format, dpi=dpi)
    return path
