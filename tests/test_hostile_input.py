"""Deliberately hostile input: every reader bounded, one line, no corrupt output.

Decompression bombs (FITS tiles, Avro blocks, catalogs, cutouts) are built
small here (`bombs`), and the commands run in a child process under an
address-space limit with their peak memory measured: each case ends in one
line naming the input and the limit, in a few hundred MB at most, where the
unbounded readers took gigabytes. Also: declared sizes and WCS orders, the
catalog checks (VOTable STREAM references, ccdVisitId), text from input
escaped on the terminal, and the directory tools' outcome with bad files.
"""

from __future__ import annotations

import gzip
import http.server
import io
import json
import math
import shutil
import threading
import time
import zlib
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from alertpack.cli import main as cli_main
from alertpack.errors import ConfigError, InputError, LimitExceededError
from alertpack.limits import GZIP_WBITS, RAW_DEFLATE_WBITS, ReadLimits, inflate, read_limits
from alertpack.sample import make_visit, write_visit
from alertpack.sinks.failed import FAILED_ALERT_SCHEMA
from alertpack.terminal import printable
from alertpack.tools.browse.stamps import render_stamps
from bombs import MiB, deflate_bomb, run_measured, tile_bomb
from hostile import zigzag_varint

#: the most a bounded command may take here (baselines: inspect 45 MB, package 136 MB; a
#: block refused at the 128 MiB avro_block_bytes limit peaks near 300 MB, 350 MB in to-parquet)
BOUNDED_MB = 450


@pytest.fixture(scope="module")
def visit_dir(tmp_path_factory) -> Path:
    """A detector's files: the sample visit, 10 sources on 400x400 images."""
    directory = tmp_path_factory.mktemp("visit") / "detector"
    write_visit(make_visit(10, (400, 400)), directory)
    return directory


@pytest.fixture(scope="module")
def alert_file(visit_dir, tmp_path_factory) -> Path:
    """A real alert file: that visit packaged (real FITS cutouts)."""
    out = tmp_path_factory.mktemp("alerts")
    assert cli_main(["package", "--visit-dir", str(visit_dir), "-o", str(out)]) == 0
    (path,) = out.glob("*.avro")
    return path


def copy_visit(visit_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "detector"
    shutil.copytree(visit_dir, target)
    return target


def records_and_schema(path: Path) -> tuple[list[dict], dict]:
    with path.open("rb") as stream:
        reader = fastavro.reader(stream)
        return list(reader), reader.writer_schema


def write_alerts(path: Path, schema: dict, records: list[dict]) -> Path:
    with path.open("wb") as stream:
        fastavro.writer(stream, schema, records)
    return path


def assert_bounded_one_line(result, *names: str, status: int = 2) -> str:
    """The outcome every bomb must have: the status, one error line naming it, bounded memory."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, (result.returncode, result.stderr)
    assert result.peak_mb < BOUNDED_MB, f"{result.peak_mb:.0f} MB"
    if status == 2:
        (line,) = result.error_lines
        for name in names:
            assert name in line, line
        return line
    return result.stderr


# --- the limits and the bounded decompression ---------------------------------------------------


def test_limits_come_from_the_environment_and_bad_values_are_one_line():
    limits = ReadLimits.from_environment({"ALERTPACK_MAX_CATALOG_ROWS": "1_000"})
    assert limits.catalog_rows == 1000 and limits.stamp_pixels == ReadLimits().stamp_pixels
    with pytest.raises(ConfigError, match="ALERTPACK_MAX_WCS_ORDER='many' is not a whole"):
        ReadLimits.from_environment({"ALERTPACK_MAX_WCS_ORDER": "many"})
    with pytest.raises(ConfigError, match="must be an integer >= 1"):
        ReadLimits.from_environment({"ALERTPACK_MAX_TILE_BYTES": "0"})
    assert read_limits(limits) is limits


def test_inflate_stops_at_its_bound_whatever_the_stream_holds():
    bomb = deflate_bomb(64)
    with pytest.raises(LimitExceededError, match="inflates to more than the 1,000 bytes"):
        inflate(bomb, max_bytes=1000, wbits=GZIP_WBITS, what="tile")
    with pytest.raises(LimitExceededError, match=r"limit tile_bytes=1,048,576 bytes"):
        inflate([bomb[:10], bomb[10:]], max_bytes=MiB, wbits=GZIP_WBITS, what="t",
                limit="tile_bytes")
    # several gzip members are one file, and count together
    two = gzip.compress(b"a" * 600) + gzip.compress(b"b" * 600)
    assert inflate(two, max_bytes=1200, wbits=GZIP_WBITS, what="t") == b"a" * 600 + b"b" * 600
    with pytest.raises(LimitExceededError):
        inflate(two, max_bytes=1000, wbits=GZIP_WBITS, what="t")
    with pytest.raises(InputError, match="end early"):
        inflate(two[:-30], max_bytes=10**6, wbits=GZIP_WBITS, what="t")
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = raw.compress(b"x" * 5000) + raw.flush()
    assert inflate(data, max_bytes=5000, wbits=RAW_DEFLATE_WBITS, what="t") == b"x" * 5000


# --- exposures: tile-compressed bombs, declared sizes, WCS orders -------------------------------


@pytest.mark.parametrize("quantized", [False, True], ids=["own-gzip-path", "astropy-section"])
def test_gzip_tile_bomb_in_an_exposure_is_refused_in_bounded_memory(visit_dir, tmp_path, quantized):
    # 2.9 MB on disk, one tile declared 400x400 float32 (640 kB) inflating to 1.5 GiB:
    # the unbounded readers took 3.2 GB and exited 0 (own path) or failed after it (astropy)
    visit = copy_visit(visit_dir, tmp_path)
    tile_bomb(visit_dir / "difference.fits", visit / "difference.fits", "IMAGE", 1536,
              quantized=quantized)
    result = run_measured(["package", "--visit-dir", str(visit), "-o", str(tmp_path / "out")])
    line = assert_bounded_one_line(result, "difference.fits", "HDU 1 (IMAGE)", "tile 0")
    assert "inflates to more than the 640,000 bytes it declares" in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_declared_image_size_beyond_the_limit_is_one_line(visit_dir, tmp_path, monkeypatch,
                                                          capsys):
    monkeypatch.setenv("ALERTPACK_MAX_IMAGE_PIXELS", "100000")
    status = cli_main(["package", "--visit-dir", str(visit_dir), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "160,000 pixels declared (NAXISn), over the limit image_pixels=100,000" in err
    assert "$ALERTPACK_MAX_IMAGE_PIXELS" in err


@pytest.mark.parametrize("order", [400, 2500])
def test_sip_order_of_an_exposure_is_refused_before_astropy_reads_it(visit_dir, tmp_path, order,
                                                                     capsys):
    visit = copy_visit(visit_dir, tmp_path)
    with fits.open(visit / "difference.fits", mode="update") as hdus:
        hdus["IMAGE"].header["A_ORDER"] = order
    started = time.monotonic()
    status = cli_main(["package", "--visit-dir", str(visit), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and time.monotonic() - started < 30
    assert f"SIP A_ORDER: {order:,}, over the limit wcs_order=9" in err


# --- Avro container files: deflate blocks -------------------------------------------------------


def deflate_block_file(path: Path, schema: dict, n_mib: int) -> Path:
    """A container file (deflate codec) whose one block inflates to ``n_mib`` MiB."""
    header = io.BytesIO()
    fastavro.writer(header, fastavro.parse_schema(schema), [], codec="deflate")
    data = header.getvalue()
    sync = data[-16:]
    bomb = deflate_bomb(n_mib, wbits=-15)
    path.write_bytes(data + zigzag_varint(1) + zigzag_varint(len(bomb)) + bomb + sync)
    return path


@pytest.mark.parametrize("command", ["inspect", "validate", "to-parquet"])
def test_deflate_block_bomb_is_refused_by_the_read_tools(alert_file, tmp_path, command):
    # 1.6 MB inflating to 1.5 GiB: 3.1 GB in inspect, validate ("all 1 alerts valid"), to-parquet
    _, schema = records_and_schema(alert_file)
    bomb = deflate_block_file(tmp_path / "bomb.avro", schema, 1536)
    argv = [command, str(bomb)] + (["-o", str(tmp_path / "tables")] if command == "to-parquet"
                                   else [])
    line = assert_bounded_one_line(run_measured(argv), str(bomb))
    assert "over the limit avro_block_bytes" in line or "limit avro_block_bytes" in line


def test_deflate_block_bomb_is_refused_by_replay(tmp_path):
    bomb = deflate_block_file(tmp_path / "failed-1.avro", FAILED_ALERT_SCHEMA, 1536)
    result = run_measured(["replay", str(bomb), "--server", "127.0.0.1:9"])
    line = assert_bounded_one_line(result, str(bomb))
    assert "avro_block_bytes" in line


# --- catalogs -----------------------------------------------------------------------------------


def only_catalog(visit: Path, name: str) -> None:
    """Remove every file of catalog ``name`` from a visit directory."""
    for path in visit.glob(f"{name}.*"):
        path.unlink()


def test_parquet_declaring_200m_rows_is_refused_from_its_footer(visit_dir, tmp_path):
    # 200,000,000 rows in under 1 MB: 2.1 GB were materialised before the missing-column error
    visit = copy_visit(visit_dir, tmp_path)
    only_catalog(visit, "diaSourceCat")
    chunk = pa.table({"diaSourceId": pa.array(np.zeros(10_000_000, dtype=np.int8))})
    with pq.ParquetWriter(visit / "diaSourceCat.parquet", chunk.schema) as writer:
        for _ in range(20):
            writer.write_table(chunk)
    assert (visit / "diaSourceCat.parquet").stat().st_size < 2 * MiB
    result = run_measured(["package", "--visit-dir", str(visit), "-o", str(tmp_path / "out")])
    line = assert_bounded_one_line(result, "diaSourceCat", "diaSourceCat.parquet")
    assert "200,000,000 rows (Parquet footer), over the limit catalog_rows" in line


def fits_table_bomb(path: Path, n_mib: int) -> Path:
    """A .fits.gz table of one 8-byte column declaring ``n_mib`` MiB of rows, all zeros."""
    primary = fits.PrimaryHDU().header.tostring().encode()
    header = fits.BinTableHDU.from_columns(
        [fits.Column(name="diaSourceId", format="K", array=np.zeros(1, dtype=np.int64))]
    ).header
    header["NAXIS2"] = n_mib * MiB // 8
    with path.open("wb") as stream:
        stream.write(gzip.compress(primary + header.tostring().encode()))
        stream.write(deflate_bomb(n_mib))  # the rows: another gzip member
    return path


def test_fits_gz_catalog_bomb_is_refused_from_its_header(visit_dir, tmp_path):
    # 1 MB inflating to 1 GiB of rows: astropy and pandas took 3.6 GB for such a file
    visit = copy_visit(visit_dir, tmp_path)
    only_catalog(visit, "diaSourceCat")
    fits_table_bomb(visit / "diaSourceCat.fits.gz", 1024)
    result = run_measured(["package", "--visit-dir", str(visit), "-o", str(tmp_path / "out")])
    line = assert_bounded_one_line(result, "diaSourceCat.fits.gz")
    assert "over the limit catalog_bytes" in line or "over the limit catalog_rows" in line


def test_csv_gz_catalog_bomb_is_refused_as_it_inflates(visit_dir, tmp_path):
    visit = copy_visit(visit_dir, tmp_path)
    only_catalog(visit, "diaSourceCat")
    (visit / "diaSourceCat.csv.gz").write_bytes(gzip.compress(b"diaSourceId\n")
                                                 + deflate_bomb(1536))
    result = run_measured(["package", "--visit-dir", str(visit), "-o", str(tmp_path / "out")])
    line = assert_bounded_one_line(result, "diaSourceCat.csv.gz")
    assert "over the limit catalog_bytes=1,073,741,824" in line


def test_catalog_rows_beyond_the_limit_are_one_line(visit_dir, tmp_path, monkeypatch, capsys):
    visit = copy_visit(visit_dir, tmp_path)
    frame = pq.read_table(visit / "diaSourceCat.parquet").to_pandas()
    only_catalog(visit, "diaSourceCat")
    frame.to_csv(visit / "diaSourceCat.csv", index=False)
    monkeypatch.setenv("ALERTPACK_MAX_CATALOG_ROWS", "5")
    assert cli_main(["package", "--visit-dir", str(visit), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "diaSourceCat.csv: 10 rows or more, over the limit catalog_rows=5" in err


def test_text_ccdvisitid_is_one_line_naming_the_column(visit_dir, tmp_path, capsys):
    # was a ValueError traceback (and, on Dask, a crash retried)
    visit = copy_visit(visit_dir, tmp_path)
    frame = pq.read_table(visit / "diaSourceCat.parquet").to_pandas()
    only_catalog(visit, "diaSourceCat")
    frame["ccdVisitId"] = [f"visit-{i}" for i in range(len(frame))]
    frame.to_csv(visit / "diaSourceCat.csv", index=False)
    assert cli_main(["package", "--visit-dir", str(visit), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "ccdVisitId" in err and "diaSourceCat" in err and err.count("\n") == 1


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):
        type(self).requests.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"1\n2\n")

    def log_message(self, *args):
        pass


VOTABLE = """<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
 <RESOURCE><TABLE>
  <FIELD name="diaSourceId" datatype="long"/>
  <DATA><BINARY><STREAM href="{href}"/></BINARY></DATA>
 </TABLE></RESOURCE>
</VOTABLE>
"""


@pytest.mark.parametrize("scheme", ["http", "file"])
def test_votable_stream_reference_is_refused_and_never_fetched(visit_dir, tmp_path, scheme,
                                                               capsys):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        href = (f"http://127.0.0.1:{server.server_port}/data" if scheme == "http"
                else "file:///etc/hostname")
        visit = copy_visit(visit_dir, tmp_path)
        only_catalog(visit, "diaSourceCat")
        (visit / "diaSourceCat.vot").write_text(VOTABLE.format(href=href))
        status = cli_main(["package", "--visit-dir", str(visit), "-o", str(tmp_path / "out")])
    finally:
        server.shutdown()
    err = capsys.readouterr().err
    assert status == 2 and "STREAM refers to" in err and href in err
    assert _Recorder.requests == []


# --- cutouts inside alerts ----------------------------------------------------------------------


def compressed_stamp(shape: tuple[int, int], tile: bytes, n_tiles: int, tile_shape) -> bytes:
    """FITS bytes of a GZIP_1 tile-compressed float32 image whose every tile is ``tile``."""
    column = fits.Column(
        name="COMPRESSED_DATA", format="1PB()",
        array=np.array([np.frombuffer(tile, np.uint8)] * n_tiles, dtype=object),
    )
    table = fits.BinTableHDU.from_columns([column])
    for key, value in [("ZIMAGE", True), ("ZBITPIX", -32), ("ZNAXIS", 2),
                       ("ZNAXIS1", shape[1]), ("ZNAXIS2", shape[0]), ("ZTILE1", tile_shape[1]),
                       ("ZTILE2", tile_shape[0]), ("ZCMPTYPE", "GZIP_1")]:
        table.header[key] = value
    stream = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(stream)
    return stream.getvalue()


def huge_stamp() -> bytes:
    """1.5 MB of FITS declaring 15000 x 15000 pixels (0.9 GB of float32), row tiles."""
    row = gzip.compress(bytes(15000 * 4), 9)
    return compressed_stamp((15000, 15000), row, 15000, (1, 15000))


def inflating_stamp() -> bytes:
    """A 30 x 30 stamp whose one tile inflates to 256 MiB instead of its 3,600 bytes."""
    return compressed_stamp((30, 30), deflate_bomb(256), 1, (30, 30))


def file_with_cutout(alert_file: Path, path: Path, cutout: bytes) -> Path:
    records, schema = records_and_schema(alert_file)
    records[0]["cutoutScience"] = cutout
    return write_alerts(path, schema, records[:1])


@pytest.mark.parametrize("make", [huge_stamp, inflating_stamp], ids=["15000x15000", "tile-bomb"])
def test_cutout_bomb_is_not_valid_and_validate_stays_bounded(alert_file, tmp_path, make):
    # validate took 1.8 GB and called a 15000x15000 cutout valid
    path = file_with_cutout(alert_file, tmp_path / "bomb.avro", make())
    result = run_measured(["validate", str(path)])
    assert_bounded_one_line(result, status=1)
    (line,) = [line for line in result.stdout.splitlines() if "cutoutScience" in line]
    assert "error" in line
    assert ("over the limit stamp_pixels" in line or "inflates to more than the 3,600" in line)
    assert "all 1 alerts valid" not in result.stdout


@pytest.mark.parametrize("make", [huge_stamp, inflating_stamp], ids=["15000x15000", "tile-bomb"])
def test_cutout_bomb_in_show_is_an_unreadable_panel_in_bounded_memory(alert_file, tmp_path, make):
    # show passed 5.7 GB and ended in a traceback
    path = file_with_cutout(alert_file, tmp_path / "bomb.avro", make())
    plot = tmp_path / "plot.png"
    result = run_measured(["show", str(path), "-o", str(plot)])
    assert_bounded_one_line(result, status=1)
    assert "cutoutScience unreadable" in result.stderr and plot.exists()


def test_cutout_bomb_in_browse_is_a_panel_error():
    alert = {"cutoutScience": huge_stamp(), "cutoutTemplate": None, "cutoutDifference": None}
    panels = render_stamps(alert)
    assert "over the limit stamp_pixels" in panels["science"].error


@pytest.mark.parametrize("order", [400, 2500])
def test_cutout_sip_order_is_refused_fast(alert_file, tmp_path, order, capsys):
    # A_ORDER = 400 made show take 31 s (2,500: still running after 14 min)
    records, _schema = records_and_schema(alert_file)
    with fits.open(io.BytesIO(records[0]["cutoutScience"])) as hdus:
        for hdu in hdus:
            if hdu.is_image and hdu.data is not None:
                hdu.header["A_ORDER"] = order
        stream = io.BytesIO()
        hdus.writeto(stream)
    path = file_with_cutout(alert_file, tmp_path / "sip.avro", stream.getvalue())
    started = time.monotonic()
    status = cli_main(["show", str(path), "-o", str(tmp_path / "plot.png")])
    err = capsys.readouterr().err
    assert status == 1 and time.monotonic() - started < 30
    assert f"A_ORDER: {order:,}, over the limit wcs_order=9" in err


def test_show_with_a_truncated_cutout_is_not_success(alert_file, tmp_path, capsys):
    records, _schema = records_and_schema(alert_file)
    stamp = records[0]["cutoutScience"]
    path = file_with_cutout(alert_file, tmp_path / "truncated.avro", stamp[: len(stamp) // 2])
    status = cli_main(["show", str(path), "-o", str(tmp_path / "plot.png")])
    err = capsys.readouterr().err
    assert status == 1 and "cutoutScience unreadable" in err and "truncated" in err


# --- the terminal -------------------------------------------------------------------------------


def test_printable_escapes_controls_and_keeps_letters():
    assert printable("r\x1b[2K\nforged") == "r\\x1b[2K\\nforged"
    assert printable("évènement ∆ 星") == "évènement ∆ 星"
    assert printable("a\u202eb\tc\x7f") == "a\\u202eb\\tc\\x7f"
    assert printable(42) == "42"


def test_names_and_bands_from_input_are_printed_escaped(alert_file, tmp_path, capsys):
    records, schema = records_and_schema(alert_file)
    for record in records:
        record["diaSource"]["band"] = "r\x1b[2K\rFAKE"
    directory = tmp_path / "in\nforged line"
    directory.mkdir()
    write_alerts(directory / "x\x1b[31m.avro", schema, records)
    write_alerts(directory / "bad\n.avro", schema, [])
    (directory / "bad\n.avro").write_bytes(b"Obj\x01garbage")
    assert cli_main(["inspect", str(directory)]) == 1
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):
        assert "\x1b" not in text and "\r" not in text
    assert "r\\x1b[2K\\rFAKE" in captured.out and "x\\x1b[31m.avro" in captured.out
    assert len(captured.out.splitlines()) == 1 + len(records)
    assert all(line.startswith("alertpack inspect: ") for line in captured.err.splitlines())
    assert "in\\nforged line" in captured.err


# --- directory tools: good files done, bad ones named, exit 1 ------------------------------------


def test_replay_names_look_alike_files_and_directories(alert_file, tmp_path, capsys):
    directory = tmp_path / "failed"
    directory.mkdir()
    # an alert file named like a failed-alerts file, and a directory named like one
    shutil.copy(alert_file, directory / "failed-20260101T000000.000000Z-1.avro")
    (tmp_path / "failed-2.avro").mkdir()
    status = cli_main(["replay", str(directory), str(tmp_path / "failed-2.avro"),
                       "--server", "127.0.0.1:9"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "named like a failed-alerts file but holds lsst.v" in err
    assert "failed-2.avro is a directory named like an alert file" in err
    assert "2 file problem(s)" in err and "Traceback" not in err


def test_limits_module_bounds_match_the_documented_defaults():
    limits = ReadLimits()
    assert limits.stamp_pixels == 4096 * 4096 and limits.image_pixels == 16384 ** 2
    assert limits.avro_block_bytes == 128 * MiB and limits.catalog_bytes == 1024 * MiB
    assert math.isclose(limits.tile_bytes / MiB, 256)
    assert json.dumps(limits.__dict__)  # plain integers
