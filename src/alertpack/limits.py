"""Limits on what any reader takes from its input, and the bounded decompression they all use.

Hostile input is normal input: a file or message may declare, or inflate to,
far more than it holds. Every reader of alertpack is bounded twice: by what
the input itself declares (a tile never inflates beyond its declared tile
size, a record ends where its payload ends) and by the limits below, which a
real Rubin alert, exposure or catalog never reaches. Each refusal is a
`~alertpack.errors.LimitExceededError`: one line naming the input, the
value, the limit and the environment variable that raises it.

=====================  ========================================  ==================================
limit                  bounds                                    default (a real input)
=====================  ========================================  ==================================
``image_pixels``       pixels of one image HDU of an exposure    2**28 = 16384 x 16384 (an LSST
                                                                 detector: 4072 x 4000)
``tile_bytes``         decompressed bytes of one tile of a       256 MiB (an LSST detector as one
                       tile-compressed image                     float32 tile: 65 MB)
``avro_block_bytes``   bytes of one Avro container block (after  128 MiB (100 Rubin alerts: ~10 MB)
                       decompression) or one wire-format file
``catalog_rows``       rows of one catalog file                  10,000,000 (a detector's forced-
                                                                 source history: ~10**5)
``catalog_bytes``      bytes of one catalog (Parquet: declared   1 GiB
                       uncompressed size; ``.gz``: inflated)
``stamp_pixels``       pixels of one image in a cutout           2**24 = 4096 x 4096 (Rubin: 30 to
                                                                 ~200 px square)
``stamp_bytes``        bytes of one cutout after decompression   128 MiB
``wcs_order``          SIP polynomial order (``A_ORDER`` ...)    9 (LSST's TAN-SIP: 3 to 5)
=====================  ========================================  ==================================

Set ``ALERTPACK_MAX_<LIMIT>`` (e.g. ``ALERTPACK_MAX_CATALOG_ROWS=50000000``)
to change a limit for every reader of a process (workers of a pool or a
Dask cluster read their own environment), or pass a `ReadLimits` to a
reader's ``limits`` argument.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alertpack.errors import ConfigError, InputError, LimitExceededError

__all__ = [
    "ENV_PREFIX",
    "GZIP_WBITS",
    "RAW_DEFLATE_WBITS",
    "ReadLimits",
    "check_limit",
    "check_wcs_orders",
    "inflate",
    "read_limits",
]

#: ``ALERTPACK_MAX_<FIELD>`` overrides the limit ``<field>``
ENV_PREFIX = "ALERTPACK_MAX_"

#: window bits of a gzip (or zlib) stream, for `inflate`
GZIP_WBITS = 32 + zlib.MAX_WBITS
#: window bits of raw RFC 1951 data, as Avro's deflate codec writes it
RAW_DEFLATE_WBITS = -zlib.MAX_WBITS

_GZIP_MAGIC = b"\x1f\x8b"
# the keywords of the SIP distortion orders (Shupe et al. 2005)
_SIP_ORDER_KEYS = ("A_ORDER", "B_ORDER", "AP_ORDER", "BP_ORDER")
# the TPV polynomial has at most 40 terms, PVi_0 .. PVi_39 (order 7): wcslib's own bound
_TPV_MAX_INDEX = 39


@dataclass(frozen=True)
class ReadLimits:
    """The limits every reader applies (see the module docstring for each one's meaning).

    Attributes
    ----------
    image_pixels, tile_bytes, avro_block_bytes, catalog_rows, catalog_bytes,
    stamp_pixels, stamp_bytes, wcs_order : `int`
        Each at least 1.
    """

    image_pixels: int = 1 << 28
    tile_bytes: int = 256 << 20
    avro_block_bytes: int = 128 << 20
    catalog_rows: int = 10_000_000
    catalog_bytes: int = 1 << 30
    stamp_pixels: int = 1 << 24
    stamp_bytes: int = 128 << 20
    wcs_order: int = 9

    def __post_init__(self) -> None:
        for limit in dataclasses.fields(self):
            value = getattr(self, limit.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"read limit {limit.name}={value!r} must be an integer >= 1")

    @staticmethod
    def variable(name: str) -> str:
        """The environment variable of limit ``name``: ``ALERTPACK_MAX_<NAME>``."""
        return ENV_PREFIX + name.upper()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ReadLimits:
        """The defaults, with each ``ALERTPACK_MAX_<LIMIT>`` that is set.

        Raises
        ------
        ConfigError
            When a variable is not a positive integer.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for limit in dataclasses.fields(cls):
            text = environ.get(cls.variable(limit.name), "").strip()
            if not text:
                continue
            try:
                values[limit.name] = int(text)
            except ValueError:
                raise ConfigError(
                    f"${cls.variable(limit.name)}={text!r} is not a whole number "
                    f"(the limit {limit.name}, default {limit.default:_})"
                ) from None
        try:
            return cls(**values)
        except ConfigError as error:
            raise ConfigError(f"{error} (from the environment)") from None


def read_limits(limits: ReadLimits | None = None) -> ReadLimits:
    """``limits``, or the defaults with this process's ``ALERTPACK_MAX_*`` variables."""
    return limits if limits is not None else ReadLimits.from_environment()


def check_limit(value: int, limit: str, limits: ReadLimits, what: str, unit: str) -> None:
    """Raise `LimitExceededError` when ``value`` exceeds limit ``limit``.

    Parameters
    ----------
    value : `int`
        What the input declares or holds.
    limit : `str`
        The `ReadLimits` field it is bounded by.
    limits : `ReadLimits`
    what : `str`
        The input (file, HDU, cutout), for the message.
    unit : `str`
        What ``value`` counts (``"rows"``, ``"pixels"``, ``"bytes"``; empty for an order).

    Examples
    --------
    ``diaSourceCat file x.parquet: 200,000,000 rows, over the limit
    catalog_rows=10,000,000 (set $ALERTPACK_MAX_CATALOG_ROWS to raise it if the
    input is genuine)``
    """
    bound = getattr(limits, limit)
    if value > bound:
        amount = f"{value:,} {unit}" if unit else f"{value:,}"
        raise LimitExceededError(
            f"{what}: {amount}, over the limit {limit}={bound:,} (set "
            f"${ReadLimits.variable(limit)} to raise it if the input is genuine)"
        )


def inflate(
    data: bytes | Iterable[bytes],
    *,
    max_bytes: int,
    wbits: int,
    what: str,
    limit: str | None = None,
) -> bytes:
    """Decompress zlib, gzip or raw deflate data, never producing more than ``max_bytes``.

    Parameters
    ----------
    data : `bytes` or iterable of `bytes`
        The compressed bytes, whole or in chunks (a file read piece by piece).
        Several gzip members one after the other are inflated in turn.
    max_bytes : `int`
        The most the output may hold: what the input declares (a tile's size)
        or a limit.
    wbits : `int`
        `GZIP_WBITS` (gzip or zlib header) or `RAW_DEFLATE_WBITS`.
    what : `str`
        The input, for the message.
    limit : `str`, optional
        The `ReadLimits` field ``max_bytes`` comes from, named in the message;
        without it ``max_bytes`` is the size the input itself declares.

    Raises
    ------
    LimitExceededError
        When the data inflate to more than ``max_bytes``.
    InputError
        When they do not decompress (as `LimitExceededError`'s base; the
        message says why).
    """
    decompressor = zlib.decompressobj(wbits)
    if isinstance(data, bytes | bytearray | memoryview):
        # one piece (a tile, a block): one call, as zlib.decompress, but bounded
        try:
            whole = decompressor.decompress(data, max_bytes + 1)
        except zlib.error as error:
            raise InputError(f"{what}: the compressed data are damaged ({error})") from None
        if len(whole) > max_bytes:
            _too_much(what, max_bytes, limit)
        if decompressor.eof and not decompressor.unused_data.startswith(_GZIP_MAGIC):
            return whole
        # more gzip members, or a stream that ends early: the general path says which
        chunks: Iterable[bytes] = [bytes(data)]
        decompressor = zlib.decompressobj(wbits)
    else:
        chunks = data
    out = bytearray()
    try:
        for chunk in chunks:
            pending = bytes(chunk)
            while pending:
                room = max_bytes - len(out)
                out += decompressor.decompress(pending, room + 1)
                if len(out) > max_bytes:
                    _too_much(what, max_bytes, limit)
                pending = decompressor.unconsumed_tail
                if decompressor.eof:
                    pending = decompressor.unused_data + pending
                    if not pending.startswith(_GZIP_MAGIC):
                        # what follows the stream is not data (padding, a checksum
                        # some writers leave): ignored, as zlib.decompress does
                        pending = b""
                        break
                    # the next gzip member (gzip allows several back to back)
                    decompressor = zlib.decompressobj(wbits)
    except zlib.error as error:
        raise InputError(f"{what}: the compressed data are damaged ({error})") from None
    if not decompressor.eof:
        raise InputError(f"{what}: the compressed data end early (truncated)")
    return bytes(out)


def _too_much(what: str, max_bytes: int, limit: str | None) -> None:
    if limit is None:
        raise LimitExceededError(
            f"{what}: inflates to more than the {max_bytes:,} bytes it declares "
            "(a decompression bomb or a damaged file)"
        )
    raise LimitExceededError(
        f"{what}: inflates to more than the limit {limit}={max_bytes:,} bytes (a "
        f"decompression bomb? set ${ReadLimits.variable(limit)} to raise it if genuine)"
    )


def check_wcs_orders(header: Mapping[str, object], limits: ReadLimits, what: str) -> None:
    """Refuse a WCS whose distortion polynomials would take astropy minutes to read.

    Checked before any WCS is built from ``header``: the SIP orders
    (``A_ORDER``, ``B_ORDER``, ``AP_ORDER``, ``BP_ORDER``) against
    ``wcs_order``, and for a ``-TPV`` projection the ``PVi_m`` indices
    against the 39 that TPV defines.

    Parameters
    ----------
    header : mapping
        A FITS header (`astropy.io.fits.Header` or a dict).
    limits : `ReadLimits`
    what : `str`
        The image or cutout, for the message.

    Raises
    ------
    LimitExceededError
        When an order exceeds the limit, or is not an integer.
    """
    for key in _SIP_ORDER_KEYS:
        if key not in header:
            continue
        value = header[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise LimitExceededError(f"{what}: {key} = {value!r} is not an integer SIP order")
        check_limit(value, "wcs_order", limits, f"{what}: SIP {key}", "")
    ctypes = [str(header.get(f"CTYPE{axis}", "")) for axis in (1, 2)]
    if any(ctype.endswith("-TPV") for ctype in ctypes):
        for key in header:
            name, _, index = str(key).partition("_")
            if name.startswith("PV") and index.isdigit() and int(index) > _TPV_MAX_INDEX:
                raise LimitExceededError(
                    f"{what}: {key} is beyond the {_TPV_MAX_INDEX} coefficients a TPV "
                    "polynomial has (order 7)"
                )
