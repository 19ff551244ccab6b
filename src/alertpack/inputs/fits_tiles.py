"""Windows of a tile-compressed FITS image, decompressing only the tiles under them, bounded.

astropy's `~astropy.io.fits.CompImageHDU.section` decompresses only the tiles
a slice needs, but spends about 0.7 ms of Python per tile around a 0.1 ms
``zlib`` call; an LSST exposure compressed row by row has 4000 tiles per
plane. For the common lossless case (``GZIP_1`` or ``GZIP_2`` tiles, integer
or float pixels without quantization, scaling or blank values) `GzipTiles`
reads the tile descriptors once and each needed tile with one positioned read
and one bounded ``zlib`` call, keeping recently used tiles (neighbouring
stamps share rows). Anything else returns `None` from `gzip_tile_reader`, and
the caller uses astropy's section, after `TileTable.check_gzip_tiles` has
made sure that the gzip tiles under the window inflate within their declared
size (astropy's own gzip decoding has no bound).

No tile is ever inflated beyond the bytes its declared shape holds, and the
declared image and tile sizes are checked against
`alertpack.limits.ReadLimits` (``image_pixels``, ``tile_bytes``) first
(`check_compressed_image`): a two-megabyte file cannot make a reader allocate
gigabytes.
"""

from __future__ import annotations

import math
import os
import re
from collections import OrderedDict
from typing import Any

import numpy as np

from alertpack.errors import ImageInputError
from alertpack.limits import GZIP_WBITS, ReadLimits, check_limit, inflate

__all__ = ["GzipTiles", "TileTable", "check_compressed_image", "gzip_tile_reader"]

# Binary-table TFORM codes -> bytes per element (P/Q: array descriptors).
_TFORM_BYTES = {"L": 1, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4, "D": 8, "C": 8, "M": 16}
_TFORM_BYTES |= {"P": 8, "Q": 16}
_TFORM = re.compile(r"\s*(\d*)([LXBIJKAEDCMPQ])")
_PIXEL_DTYPES = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
# Bytes of decompressed tiles kept per plane: the rows of a few neighbouring stamps
# (a 4072-pixel float row is 16 kB), not the plane.
_TILE_CACHE_BYTES = 2 << 20
_GZIP_TYPES = ("GZIP_1", "GZIP_2")


def _declared_shapes(header: Any) -> tuple[list[int], list[int]]:
    """Image and tile shape (FITS axis order) a compressed HDU's table header declares."""
    n_axes = int(header.get("ZNAXIS", 0))
    shape = [int(header.get(f"ZNAXIS{axis}", 0)) for axis in range(1, n_axes + 1)]
    # a missing ZTILE1 means whole rows, a missing ZTILEn (n > 1) one pixel: row-by-row tiles
    tile = [
        int(header.get(f"ZTILE{axis}", shape[0] if axis == 1 else 1))
        for axis in range(1, n_axes + 1)
    ]
    return shape, tile


def check_compressed_image(header: Any, limits: ReadLimits, label: str) -> None:
    """The declared image and tile sizes of a tile-compressed HDU, within the limits.

    Parameters
    ----------
    header : `~astropy.io.fits.Header`
        The HDU's header as the binary table it is on disk (``ZNAXISn``, ``ZTILEn``,
        ``ZBITPIX``).
    limits : `~alertpack.limits.ReadLimits`
        ``image_pixels`` bounds the image, ``tile_bytes`` one decompressed tile.
    label : `str`
        The image and HDU, for the message.

    Raises
    ------
    LimitExceededError
        When the image or one tile declares more than its limit.
    """
    shape, tile = _declared_shapes(header)
    check_limit(math.prod(shape), "image_pixels", limits, label, "pixels declared (ZNAXISn)")
    tile = [min(size, extent) for size, extent in zip(tile, shape, strict=True)]
    itemsize = max(abs(int(header.get("ZBITPIX", 32))) // 8, 1)
    check_limit(
        math.prod(tile) * itemsize, "tile_bytes", limits, f"{label}: one tile (ZTILEn)", "bytes"
    )


class TileTable:
    """Where the compressed bytes of each tile of one tile-compressed HDU are in the file.

    Parameters
    ----------
    path : `str`
        The FITS file.
    table_header : `~astropy.io.fits.Header`
        Header of the HDU as the binary table it is on disk.
    data_offset : `int`
        Byte offset of the table's data in the file.
    label : `str`
        The image and HDU, for messages.

    Raises
    ------
    ValueError
        When the table does not describe 2-D tiles of its image (``ZNAXIS`` is
        not 2, a count or descriptor out of place).
    """

    def __init__(self, path: str, table_header: Any, data_offset: int, label: str = "") -> None:
        header = table_header
        self.label = label or path
        self.shape = (int(header["ZNAXIS2"]), int(header["ZNAXIS1"]))
        self.tile_shape = (int(header.get("ZTILE2", 1)), int(header.get("ZTILE1", self.shape[1])))
        if int(header.get("ZNAXIS", 0)) != 2:
            raise ValueError(f"ZNAXIS = {header.get('ZNAXIS')}, not a 2-D image")
        if min(*self.shape, *self.tile_shape) < 1:
            raise ValueError(f"image {self.shape} or tiles {self.tile_shape} without pixels")
        self.n_tiles_x = -(-self.shape[1] // self.tile_shape[1])
        n_tiles = self.n_tiles_x * -(-self.shape[0] // self.tile_shape[0])
        #: bytes a decompressed tile holds at most (its pixels at the declared ZBITPIX)
        self.tile_bytes = (
            min(self.tile_shape[0], self.shape[0]) * min(self.tile_shape[1], self.shape[1])
            * max(abs(int(header.get("ZBITPIX", 32))) // 8, 1)
        )
        row_bytes, n_rows = int(header["NAXIS1"]), int(header["NAXIS2"])
        if n_rows != n_tiles:
            raise ValueError(f"{n_rows} table rows for {n_tiles} tiles")
        self._heap_start = data_offset + int(header.get("THEAP", row_bytes * n_rows))
        # the file stays open as long as the plane that reads it
        self._stream = open(path, "rb")
        table = os.pread(self._stream.fileno(), row_bytes * n_rows, data_offset)
        rows = np.frombuffer(table, dtype=np.uint8).reshape(n_rows, row_bytes)
        heap_size = int(header.get("PCOUNT", 0))
        # column name -> (sizes, offsets) of each tile's bytes in the heap
        self._columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, (column_offset, descriptor) in _descriptor_columns(header).items():
            pairs = rows[:, column_offset : column_offset + 2 * descriptor.itemsize]
            pairs = np.ascontiguousarray(pairs).view(descriptor).reshape(n_rows, 2)
            sizes, offsets = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
            if np.any((sizes < 0) | (offsets < 0) | (offsets + sizes > heap_size)):
                self._stream.close()
                raise ValueError(f"{name} tile descriptors point outside the heap")
            self._columns[name] = (sizes, offsets)
        # the columns whose tiles are gzip streams: the data of GZIP_1/GZIP_2, and the
        # lossless fallback of tiles that could not be quantized, whatever the compression
        self._gzip_columns = ["GZIP_COMPRESSED_DATA"]
        if str(header.get("ZCMPTYPE", "")).strip() in _GZIP_TYPES:
            self._gzip_columns.append("COMPRESSED_DATA")
        self._checked: set[tuple[str, int]] = set()

    @property
    def columns(self) -> list[str]:
        """The variable-length array columns of the table."""
        return list(self._columns)

    def close(self) -> None:
        """Close the file."""
        self._stream.close()

    def __del__(self) -> None:
        stream = getattr(self, "_stream", None)
        if stream is not None:
            stream.close()

    def tile_index(self, tile_y: int, tile_x: int) -> int:
        """The table row of tile ``(tile_y, tile_x)``."""
        return tile_y * self.n_tiles_x + tile_x

    def tiles_under(self, y0: int, y1: int, x0: int, x1: int) -> list[tuple[int, int]]:
        """``(tile_y, tile_x)`` of every tile the window ``[y0:y1, x0:x1]`` touches."""
        tile_h, tile_w = self.tile_shape
        return [
            (tile_y, tile_x)
            for tile_y in range(y0 // tile_h, (y1 - 1) // tile_h + 1)
            for tile_x in range(x0 // tile_w, (x1 - 1) // tile_w + 1)
        ]

    def compressed(self, column: str, index: int) -> bytes:
        """The compressed bytes of tile ``index`` in ``column`` (one positioned read)."""
        sizes, offsets = self._columns[column]
        position = self._heap_start + int(offsets[index])
        return os.pread(self._stream.fileno(), int(sizes[index]), position)

    def inflated(self, column: str, index: int) -> bytes:
        """Tile ``index`` of gzip ``column``, never inflated beyond its declared size.

        Raises
        ------
        LimitExceededError
            When it inflates to more than the tile's pixels hold.
        InputError
            When it does not decompress.
        """
        return inflate(
            self.compressed(column, index), max_bytes=self.tile_bytes, wbits=GZIP_WBITS,
            what=f"{self.label}: tile {index} ({column})",
        )

    def check_gzip_tiles(self, y0: int, y1: int, x0: int, x1: int) -> None:
        """Make sure the gzip tiles under a window inflate within their declared size.

        Run before astropy decodes the window: its gzip decoding is unbounded.
        Each tile is checked once (a window's neighbours share tiles).

        Raises
        ------
        LimitExceededError
            At the first tile that inflates to more than its pixels hold.
        """
        for column in self._gzip_columns:
            if column not in self._columns:
                continue
            sizes, _ = self._columns[column]
            for tile_y, tile_x in self.tiles_under(y0, y1, x0, x1):
                index = self.tile_index(tile_y, tile_x)
                if (column, index) in self._checked or sizes[index] == 0:
                    continue
                self.inflated(column, index)
                self._checked.add((column, index))


class GzipTiles:
    """Windows of one GZIP_1/GZIP_2 compressed image HDU, read tile by tile.

    Parameters
    ----------
    table : `TileTable`
        Where its tiles are.
    table_header : `~astropy.io.fits.Header`
        Header of the HDU as the binary table it is on disk.
    """

    def __init__(self, table: TileTable, table_header: Any) -> None:
        header = table_header
        self.table = table
        self.shape = table.shape
        self.tile_shape = table.tile_shape
        self.dtype = np.dtype(_PIXEL_DTYPES[int(header["ZBITPIX"])])
        self.shuffled = str(header["ZCMPTYPE"]).strip() == "GZIP_2"
        tile_bytes = self.tile_shape[0] * self.tile_shape[1] * self.dtype.itemsize
        self._cache_size = max(4, _TILE_CACHE_BYTES // max(tile_bytes, 1))
        # least recently used tiles first; a plain dict keeps no reference cycle to self,
        # so the file closes as soon as the plane is dropped
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def close(self) -> None:
        """Close the file."""
        self.table.close()

    def _tile(self, tile_y: int, tile_x: int) -> np.ndarray:
        key = (tile_y, tile_x)
        tile = self._cache.get(key)
        if tile is not None:
            self._cache.move_to_end(key)
            return tile
        tile = self._read_tile(tile_y, tile_x)
        self._cache[key] = tile
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return tile

    def _read_tile(self, tile_y: int, tile_x: int) -> np.ndarray:
        index = self.table.tile_index(tile_y, tile_x)
        height = min(self.tile_shape[0], self.shape[0] - tile_y * self.tile_shape[0])
        width = min(self.tile_shape[1], self.shape[1] - tile_x * self.tile_shape[1])
        raw = np.frombuffer(self.table.inflated("COMPRESSED_DATA", index), np.uint8)
        itemsize = self.dtype.itemsize
        # (byte, row, column): GZIP_2 stores the most significant byte of every value
        # first, then the next; unshuffled only for the pixels a window takes
        if self.shuffled:
            return raw[: itemsize * height * width].reshape(itemsize, height, width)
        return raw[: itemsize * height * width].reshape(height, width, itemsize).transpose(2, 0, 1)

    def _pixels(self, tile: np.ndarray, rows: slice, columns: slice) -> np.ndarray:
        part = np.ascontiguousarray(tile[:, rows, columns].transpose(1, 2, 0))
        return part.view(self.dtype)[..., 0]

    def read_window(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Raw pixels ``[y0:y1, x0:x1]`` (file byte order)."""
        out = np.empty((y1 - y0, x1 - x0), dtype=self.dtype)
        tile_h, tile_w = self.tile_shape
        for tile_y, tile_x in self.table.tiles_under(y0, y1, x0, x1):
            row0, col0 = tile_y * tile_h, tile_x * tile_w
            tile = self._tile(tile_y, tile_x)
            ty0, tx0 = max(y0, row0), max(x0, col0)
            ty1, tx1 = min(y1, row0 + tile.shape[1]), min(x1, col0 + tile.shape[2])
            out[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0] = self._pixels(
                tile, slice(ty0 - row0, ty1 - row0), slice(tx0 - col0, tx1 - col0)
            )
        return out


def _descriptor_columns(header: Any) -> dict[str, tuple[int, np.dtype]]:
    """Byte offset within a row and dtype of the descriptors of each P/Q column, by name."""
    found: dict[str, tuple[int, np.dtype]] = {}
    offset = 0
    for number in range(1, int(header["TFIELDS"]) + 1):
        match = _TFORM.match(str(header[f"TFORM{number}"]))
        if match is None:
            raise ValueError(f"TFORM{number} = {header[f'TFORM{number}']!r}")
        repeat = int(match.group(1) or 1)
        code = match.group(2)
        if code in "PQ":
            name = str(header.get(f"TTYPE{number}", "")).strip().upper()
            found[name] = (offset, np.dtype(">i4" if code == "P" else ">i8"))
        offset += -(-repeat // 8) if code == "X" else repeat * _TFORM_BYTES[code]
    if "COMPRESSED_DATA" not in found:
        raise ValueError("no COMPRESSED_DATA column")
    return found


def tile_table(path: str, table_header: Any, data_offset: int, label: str) -> TileTable | None:
    """The `TileTable` of a compressed HDU, or `None` when it is not 2-D tiles astropy reads.

    Raises
    ------
    ImageInputError
        When the table's descriptors are damaged (astropy would fail on them too).
    """
    if int(table_header.get("ZNAXIS", 0)) != 2:
        return None
    try:
        return TileTable(path, table_header, data_offset, label)
    except (KeyError, ValueError, OSError) as error:
        raise ImageInputError(f"{label}: the tile table cannot be read ({error})") from None


def gzip_tile_reader(
    table: TileTable, table_header: Any, image_header: Any
) -> GzipTiles | None:
    """`GzipTiles` of a compressed HDU, or `None` when it is not the simple lossless case.

    Parameters
    ----------
    table : `TileTable`
        Where the HDU's tiles are.
    table_header : `~astropy.io.fits.Header`
        The HDU's header as a binary table (``fits.open(...,
        disable_image_compression=True)``).
    image_header : `~astropy.io.fits.Header`
        The HDU's image header (``BSCALE``/``BZERO``/``BLANK``).
    """
    header = table_header
    simple = (
        str(header.get("ZCMPTYPE", "")).strip() in _GZIP_TYPES
        and table.columns == ["COMPRESSED_DATA"]
        and int(header.get("TFIELDS", 0)) == 1
        and int(header.get("ZBITPIX", 0)) in _PIXEL_DTYPES
        and "ZBLANK" not in header
        and "BLANK" not in image_header
        and float(image_header.get("BSCALE", 1.0)) == 1.0
        and float(image_header.get("BZERO", 0.0)) == 0.0
    )
    return GzipTiles(table, table_header) if simple else None
