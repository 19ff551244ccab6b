"""Hostile inputs built small inside the tests, and commands run with their memory measured.

Decompression bombs are made in milliseconds: a deflate stream of zeros with
a full flush after each MiB repeats the same bytes, so the stream for N MiB
is those bytes N times (with the right checksum), about 1/1000 of what it
inflates to: the 1.6 MB that inflate to 1.5 GiB of the issue. None of this
shares code with the readers it attacks (zlib, struct, astropy and fastavro
only).

`run_measured` runs a command in a child process under an address-space
limit (RLIMIT_AS, so that a regression fails instead of taking the machine
down) and returns its peak resident memory, measured by the kernel
(``ru_maxrss`` of that one child).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Measured",
    "MiB",
    "deflate_bomb",
    "run_measured",
    "tile_bomb",
]

MiB = 1 << 20

_GZIP, _ZLIB, _RAW = 31, 15, -15


def deflate_bomb(n_mib: int, *, wbits: int = _GZIP) -> bytes:
    """One deflate stream inflating to ``n_mib`` MiB of zeros (gzip, zlib or raw by ``wbits``)."""
    chunk = bytes(MiB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    head = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    body = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush()
    trailer = {_GZIP: 8, _ZLIB: 4, _RAW: 0}[wbits]
    final = tail[: len(tail) - trailer]
    if wbits == _GZIP:
        crc = 0
        for _ in range(n_mib):
            crc = zlib.crc32(chunk, crc)
        end = struct.pack("<II", crc, (n_mib * MiB) & 0xFFFFFFFF)
    elif wbits == _ZLIB:
        adler = 1
        for _ in range(n_mib):
            adler = zlib.adler32(chunk, adler)
        end = struct.pack(">I", adler)
    else:
        end = b""
    return head + body * (n_mib - 1) + final + end


def tile_bomb(source: Path, out: Path, extension: str, n_mib: int, *, quantized: bool) -> Path:
    """``source`` with HDU ``extension`` GZIP_1 tile-compressed as one tile that inflates to GiBs.

    ``quantized=False``: lossless float tiles (the simple case alertpack
    decodes itself); ``True``: astropy's default quantization, which
    alertpack leaves to astropy's section.
    """
    from astropy.io import fits

    staged = out.with_suffix(".staged.fits")
    with fits.open(source) as hdus:
        rebuilt = []
        for hdu in hdus:
            if hdu.name == extension:
                options = {} if quantized else {"quantize_level": 0}
                hdu = fits.CompImageHDU(
                    hdu.data, hdu.header, name=hdu.name, compression_type="GZIP_1",
                    tile_shape=hdu.data.shape, **options,
                )
            rebuilt.append(hdu)
        fits.HDUList(rebuilt).writeto(staged, overwrite=True)
    with fits.open(staged, disable_image_compression=True) as tables:
        table = tables[extension]
        for name in table.columns.names:  # astropy writes back only the columns it has read
            table.data[name]
        table.data["COMPRESSED_DATA"][0] = np.frombuffer(deflate_bomb(n_mib), np.uint8)
        tables.writeto(out, overwrite=True)
    staged.unlink()
    return out


@dataclass(frozen=True)
class Measured:
    """A finished command: exit status, output, and its peak resident memory (MB)."""

    returncode: int
    stdout: str
    stderr: str
    peak_mb: float

    @property
    def error_lines(self) -> list[str]:
        """The lines of stderr that report an error."""
        return [line for line in self.stderr.splitlines() if ": error: " in line]


_WRAPPER = r"""
import json, resource, subprocess, sys
limit, report = int(sys.argv[1]), sys.argv[2]
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
child = subprocess.run(sys.argv[3:], preexec_fn=cap)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(report, "w") as stream:
    json.dump({"returncode": child.returncode, "peak_kb": peak}, stream)
"""


def run_measured(
    argv: list[str],
    *,
    address_space: int = 6 << 30,
    timeout: float = 300.0,
    env: dict[str, str] | None = None,
) -> Measured:
    """``alertpack ARGV`` in a child process limited to ``address_space`` bytes; its peak RSS."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "rusage.json"
        command = [sys.executable, "-c", _WRAPPER, str(address_space), str(report),
                   sys.executable, "-m", "alertpack.cli", *argv]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        usage = json.loads(report.read_text())
    return Measured(usage["returncode"], done.stdout, done.stderr, usage["peak_kb"] / 1024)
