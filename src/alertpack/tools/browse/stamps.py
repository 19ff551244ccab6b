"""The three cutouts of an alert as images for the page: pixels, stretch, sky overlays.

`render_stamps` decodes the difference, science and template cutouts of one
alert and turns each into a PNG (written here with numpy and zlib: an 8-bit
RGB image, one byte per channel, no other dependency) plus what the page
draws over it as vectors: north and east arrows from the stamp's WCS, a scale
bar in arcseconds, and ticks around the source position. How a stamp is
decoded, stretched (``asinh``, ``linear``, ``zscale``), oriented and scaled
is `alertpack.tools.stamp_display`'s, shared with ``alertpack show``. Pixels
without data (NaN: the part of a padded stamp outside the detector) are drawn
in a colour of their own and counted.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from alertpack.errors import InputError
from alertpack.tools.reading import field_value
from alertpack.tools.stamp_display import (
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
)

__all__ = [
    "STAMP_KINDS",
    "STRETCHES",
    "RenderedStamp",
    "overlay_svg",
    "png_bytes",
    "render_stamps",
]

#: URL name -> alert field, in the order the page shows them
STAMP_KINDS = {
    "difference": "cutoutDifference",
    "science": "cutoutScience",
    "template": "cutoutTemplate",
}

#: largest stamp drawn (pixels a side); larger ones are offered as FITS only
MAX_STAMP_SIDE = 1024


@dataclass
class RenderedStamp:
    """One cutout ready for the page.

    Geometry is in display pixels of the unzoomed image: x to the right, y
    down, (0, 0) the top-left corner of the top-left pixel (the image is shown
    with FITS row 1 at the bottom, as DS9 shows it).

    Attributes
    ----------
    kind : `str`
        ``difference``, ``science`` or ``template``.
    field : `str`
        The alert field, e.g. ``cutoutDifference``.
    error : `str` or `None`
        Why there is no image (absent from the alert, unreadable).
    png : `bytes`
        The image, when there is one.
    width, height : `int`
        Stamp size in pixels.
    unit : `str`
        Pixel unit (``BUNIT``).
    limits : `tuple` [`float`, `float`]
        Pixel values shown as black and white.
    no_data : `int`
        Pixels without data (NaN), e.g. outside the detector in a padded stamp.
    north, east : `tuple` [`float`, `float`] or `None`
        Unit vectors on the display towards north and east, from the WCS.
    scale_pixels : `float` or `None`
        Length of the scale bar in display pixels, and ``scale_label`` its text.
    pixel_scale : `float` or `None`
        Arcseconds per pixel.
    source : `tuple` [`float`, `float`] or `None`
        Display position of the diaSource.
    values : `numpy.ndarray` or `None`
        The pixels in display order (row 0 at the top), for read-outs.
    """

    kind: str
    field: str
    error: str | None = None
    png: bytes = b""
    width: int = 0
    height: int = 0
    unit: str = ""
    limits: tuple[float, float] = (0.0, 1.0)
    no_data: int = 0
    north: tuple[float, float] | None = None
    east: tuple[float, float] | None = None
    scale_pixels: float | None = None
    scale_label: str = ""
    pixel_scale: float | None = None
    source: tuple[float, float] | None = None
    values: np.ndarray | None = None

    @property
    def no_data_fraction(self) -> float:
        return self.no_data / max(1, self.width * self.height)


def png_bytes(rgb: np.ndarray) -> bytes:
    """A PNG file of an ``(height, width, 3)`` uint8 image (8-bit RGB, no interlace)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("png_bytes takes an (height, width, 3) uint8 array")
    height, width, _ = rgb.shape
    # each scanline starts with its filter type, 0 (none)
    scanlines = np.concatenate(
        [np.zeros((height, 1), dtype=np.uint8), rgb.reshape(height, width * 3)], axis=1
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def _to_rgb(levels: np.ndarray) -> np.ndarray:
    grey = np.nan_to_num(levels * 255.0 + 0.5, nan=0.0).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    rgb[~np.isfinite(levels)] = NO_DATA_RGB
    return rgb[::-1]  # FITS row 1 at the bottom


def _sky_overlays(panel: RenderedStamp, stamp: Stamp, ra: Any, dec: Any) -> None:
    """North/east arrows, scale bar and source position, from the stamp's WCS."""
    ny, nx = stamp.pixels.shape
    if stamp.wcs is None:
        panel.source = (nx / 2, ny / 2)
        return
    try:
        north, east = north_east_vectors(stamp.wcs, stamp.pixels.shape)
        if np.all(np.isfinite(north)) and np.all(np.isfinite(east)):
            panel.north = (float(north[0]), -float(north[1]))
            panel.east = (float(east[0]), -float(east[1]))
        panel.pixel_scale = pixel_scale(stamp.wcs)
        bar = scale_bar(panel.pixel_scale, nx)
        if bar is not None:
            panel.scale_pixels, panel.scale_label = bar
        if ra is not None and dec is not None:
            x, y = stamp.wcs.world_to_pixel_values(ra, dec)
            if np.isfinite(x) and np.isfinite(y):
                panel.source = (float(x) + 0.5, ny - (float(y) + 0.5))
    except Exception:  # a WCS astropy cannot invert here: the image is still worth showing
        panel.north = panel.east = None


def render_stamps(alert: dict[str, Any], stretch: str = "asinh") -> dict[str, RenderedStamp]:
    """The alert's three cutouts as `RenderedStamp`, by kind (difference, science, template).

    Raises
    ------
    InputError
        For an unknown ``stretch``. A cutout that is missing or cannot be read
        is not an error: its panel carries the reason.
    """
    check_stretch(stretch)
    panels: dict[str, RenderedStamp] = {}
    stamps: dict[str, Stamp] = {}
    for kind, name in STAMP_KINDS.items():
        panel = RenderedStamp(kind=kind, field=name)
        panels[kind] = panel
        data = alert.get(name)
        if data is None:
            panel.error = f"no {kind} cutout in this alert"
            continue
        try:
            stamp = read_stamp(data)
        except InputError as error:
            panel.error = f"{name} cannot be read: {error}"
            continue
        ny, nx = stamp.pixels.shape
        if max(nx, ny) > MAX_STAMP_SIDE:
            panel.error = f"{nx}x{ny} pixels: too large to draw here; download the FITS file"
            continue
        stamps[kind] = stamp
    limits = display_limits({STAMP_KINDS[kind]: stamp for kind, stamp in stamps.items()},
                            stretch)
    source = alert.get("diaSource")
    ra, dec = field_value(source, "ra"), field_value(source, "dec")
    twin: str | None = None
    for kind, stamp in stamps.items():
        panel = panels[kind]
        pixels = stamp.pixels
        panel.height, panel.width = pixels.shape
        panel.unit = stamp.unit
        panel.no_data = stamp.no_data
        panel.limits = limits[STAMP_KINDS[kind]]
        levels = display_levels(pixels, panel.limits, stretch, symmetric=kind == "difference")
        panel.png = png_bytes(_to_rgb(levels))
        panel.values = pixels[::-1]
        if twin is not None and _same_frame(stamps[twin], stamp):
            # the three stamps of an alert are usually cut with one frame: compute it once
            for name in ("north", "east", "pixel_scale", "scale_pixels", "scale_label", "source"):
                setattr(panel, name, getattr(panels[twin], name))
        else:
            _sky_overlays(panel, stamp, ra, dec)
            twin = kind
    return panels


def _same_frame(first: Stamp, second: Stamp) -> bool:
    if first.pixels.shape != second.pixels.shape:
        return False
    if first.wcs is None or second.wcs is None:
        return first.wcs is None and second.wcs is None
    try:
        return bool(first.wcs.wcs.compare(second.wcs.wcs)) and (
            (first.wcs.sip is None) == (second.wcs.sip is None)
        ) and (first.wcs.sip is None or (
            np.array_equal(first.wcs.sip.a, second.wcs.sip.a)
            and np.array_equal(first.wcs.sip.b, second.wcs.sip.b)
        ))
    except Exception:  # a WCS that cannot be compared is computed on its own
        return False


def overlay_svg(panel: RenderedStamp) -> str:
    """Vector overlays for a stamp, in its pixel frame: compass, scale bar, source ticks.

    The SVG is laid over the image at any zoom (its ``viewBox`` is the stamp's
    pixels); lines keep their width on screen.
    """
    width, height = panel.width, panel.height
    side = min(width, height)
    parts = [
        f'<svg class="overlay" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        'xmlns="http://www.w3.org/2000/svg" aria-hidden="true">'
    ]
    line = 'vector-effect="non-scaling-stroke"'
    font = f'font-size="{0.085 * side:.2f}"'
    # the compass goes in the corner its arrows point away from; the scale bar along the
    # bottom edge on the other side when the compass is at the bottom
    compass_left, compass_bottom = True, True
    if panel.north is not None and panel.east is not None:
        north, east = np.array(panel.north), np.array(panel.east)
        direction = north + east
        compass_left, compass_bottom = direction[0] >= 0, direction[1] < 0
        anchor = np.array([
            (0.18 if compass_left else 0.82) * width,
            (0.82 if compass_bottom else 0.18) * height,
        ])
        length = 0.2 * side
        for vector, label, css in ((north, "N", "north"), (east, "E", "east")):
            tip = anchor + length * vector
            head = 0.06 * side
            across = 0.5 * head * np.array([-vector[1], vector[0]])
            left, right = tip - head * vector + across, tip - head * vector - across
            text_at = anchor + (length + 0.09 * side) * vector
            parts.append(
                f'<g class="compass {css}"><line x1="{anchor[0]:.2f}" y1="{anchor[1]:.2f}" '
                f'x2="{tip[0]:.2f}" y2="{tip[1]:.2f}" {line}/>'
                f'<polygon points="{tip[0]:.2f},{tip[1]:.2f} {left[0]:.2f},{left[1]:.2f} '
                f'{right[0]:.2f},{right[1]:.2f}" {line}/>'
                f'<text x="{text_at[0]:.2f}" y="{text_at[1]:.2f}" {font} text-anchor="middle" '
                f'dominant-baseline="central">{label}</text></g>'
            )
    if panel.scale_pixels is not None:
        on_right = compass_bottom and compass_left
        x0 = (0.94 * width - panel.scale_pixels) if on_right else 0.06 * width
        y0 = 0.93 * height
        parts.append(
            f'<g class="scalebar"><line x1="{x0:.2f}" y1="{y0:.2f}" '
            f'x2="{x0 + panel.scale_pixels:.2f}" y2="{y0:.2f}" {line}/>'
            f'<text x="{x0 + panel.scale_pixels / 2:.2f}" y="{y0 - 0.04 * side:.2f}" {font} '
            f'text-anchor="middle">{panel.scale_label}</text></g>'
        )
    if panel.source is not None:
        x, y = panel.source
        inner, outer = 0.1 * side, 0.22 * side
        ticks = "".join(
            f'<line x1="{x + dx * inner:.2f}" y1="{y + dy * inner:.2f}" '
            f'x2="{x + dx * outer:.2f}" y2="{y + dy * outer:.2f}" {line}/>'
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
        )
        parts.append(f'<g class="source">{ticks}</g>')
    parts.append("</svg>")
    return "".join(parts)
