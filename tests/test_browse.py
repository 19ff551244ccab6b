"""``alertpack browse`` without a browser: the index, the stores, the pages and downloads over HTTP.

The pages in a real Chromium are in test_browse_chromium.py.
"""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
import urllib.error
import urllib.request

import fastavro
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from alertpack import PackageAlertsConfig, PackageAlertsTask, make_visit
from alertpack.errors import SelectionError
from alertpack.tools.browse import AlertIndex, IndexingStatus, bind, create_app, index_paths
from alertpack.tools.browse.filters import TableQuery
from alertpack.tools.browse.lightcurve import light_curve_svg, merge_photometry, photometry
from alertpack.tools.browse.stamps import render_stamps
from alertpack.tools.reading import iter_alerts
from alertpack.tools.selection import Selection


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("browse-sample")
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(directory)
    visit = make_visit(n_sources=24, image_shape=(800, 820), seed=7)
    PackageAlertsTask(config=config).run(**visit.run_kwargs())
    return directory


@pytest.fixture(scope="module")
def loaded(sample_dir):
    return list(iter_alerts(sample_dir))


def indexed(*paths) -> tuple[AlertIndex, IndexingStatus, list[str]]:
    index, status, lines = AlertIndex(), IndexingStatus(), []
    index_paths(index, paths, status, on_problem=lines.append)
    return index, status, lines


def test_index_holds_every_alert_and_finds_its_record_again(sample_dir, loaded):
    index, status, lines = indexed(sample_dir)
    assert len(index) == len(loaded) == 24 and lines == [] and not status.running
    for row, expected in enumerate(loaded):
        again = index.alert(row)
        assert again.alert == expected.alert  # decoded from the record's own bytes only
        assert again.packet_size == expected.packet_size
        assert again.label == expected.label
        summary = index.summary(row)
        assert summary["id"] == expected.alert_id and summary["object"] == expected.object_id


def test_compressed_and_wire_format_files(tmp_path, loaded):
    records = [item.alert for item in loaded[:7]]
    schema = loaded[0].schema
    compressed = tmp_path / "deflate.avro"
    with compressed.open("wb") as stream:
        # several small blocks: records are found inside decompressed blocks
        fastavro.writer(stream, schema.parsed, records, codec="deflate", sync_interval=100_000)
    wire = tmp_path / "one.bin"
    header = b"\x00" + schema.schema_id.to_bytes(4, "big")
    wire.write_bytes(header + _schemaless(schema, records[3]))
    index, _, lines = indexed(compressed, wire)
    assert lines == [] and len(index) == 8
    assert [index.alert(row).alert for row in range(8)] == [*records, records[3]]


def _schemaless(schema, record) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema.parsed, record)
    return buffer.getvalue()


def test_bad_files_are_one_line_each_and_the_rest_is_indexed(tmp_path, sample_dir, loaded):
    good = next(sample_dir.glob("*.avro"))
    shutil.copy(good, tmp_path / "good.avro")
    records = [item.alert for item in loaded[:10]]
    damaged = tmp_path / "damaged.avro"
    with damaged.open("wb") as stream:
        fastavro.writer(stream, loaded[0].schema.parsed, records, sync_interval=1)
    data = damaged.read_bytes()
    damaged.write_bytes(data[: int(len(data) * 0.75)])  # cut in the middle of a block
    (tmp_path / "notes.avro").write_bytes(b"these are not alerts")
    with (tmp_path / "points.avro").open("wb") as stream:
        fastavro.writer(stream, {"type": "record", "name": "p", "fields": [
            {"name": "x", "type": "int"}]}, [{"x": 1}])
    index, status, lines = indexed(tmp_path)
    assert len(lines) == 3, lines
    assert any("damaged.avro" in line and "corrupt or truncated" in line for line in lines)
    assert any("notes.avro" in line for line in lines)
    assert any("points.avro" in line and "not alerts" in line for line in lines)
    kept = len(index) - len(loaded)
    assert 0 < kept < 10  # the alerts before the damage
    assert status.problems == lines and status.files_done == status.files_total == 2


def test_select_filters_sorts_and_searches(sample_dir, loaded):
    index, _, _ = indexed(sample_dir)
    snr = np.array([index.summary(r)["snr"] for r in range(len(index))])
    rows = index.select(Selection.parse("snr > 10"), sort="snr", descending=True)
    assert list(rows) == sorted(np.flatnonzero(snr > 10), key=lambda r: -snr[r])
    ascending = index.select(sort="mag")
    mags = [index.summary(int(r))["mag"] for r in ascending]
    present = [m for m in mags if m is not None]
    assert present == sorted(present) and mags[len(present):] == [None] * (len(mags) - len(present))
    target = loaded[5]
    assert list(index.select(text=str(target.alert_id)[-6:])) == [5]
    assert list(index.select(text=f"{target.object_id} #5")) == [5]
    with pytest.raises(SelectionError, match="browse index holds the named quantities"):
        index.select(Selection.parse("diaSource.psfChi2 > 1"))


def test_filter_form_is_one_expression():
    params = {"where": "snr > 5 or ss", "mjd_min": "61000", "mag_max": "22.5", "new": "no",
              "cutouts": "missing", "sort": "snr", "order": "desc", "page": "3", "per": "100"}
    query = TableQuery.from_params(params, ["g", "r"])
    assert query.expression() == (
        "band in ('g', 'r') and mjd >= 61000 and mag <= 22.5 and not new and cutouts < 3 "
        "and (snr > 5 or ss)"
    )
    assert query.sort == "snr" and query.descending and query.page == 3 and query.per_page == 100
    again = TableQuery.from_params(dict(_pairs(query.params())), ["g", "r"])
    assert again.expression() == query.expression() and again.page == 3
    with pytest.raises(SelectionError, match="snr min: 'abc' is not a number"):
        TableQuery.from_params({"snr_min": "abc"}, []).selection()


def _pairs(text: str):
    from urllib.parse import parse_qsl

    return [(k, v) for k, v in parse_qsl(text) if k != "band"]


def test_stamps_follow_the_wcs_and_show_padding(loaded):
    from matplotlib.image import imread

    padded = 0
    for item in loaded:
        panels = render_stamps(item.alert, "asinh")
        for panel in panels.values():
            assert panel.error is None, panel.error
            picture = imread(io.BytesIO(panel.png), format="png")
            assert picture.shape[:2] == (panel.height, panel.width)
            padded += panel.no_data > 0
        header = fits.getheader(io.BytesIO(item.alert["cutoutScience"]), 0)
        wcs = WCS(header).celestial
        north_pixel = _direction(wcs, header, 0.0)
        # the page draws y downwards
        assert panels["science"].north == pytest.approx((north_pixel[0], -north_pixel[1]),
                                                        abs=1e-6)
        assert panels["science"].pixel_scale == pytest.approx(0.2, rel=0.05)
    assert padded  # the sample has sources at the detector edge


def _direction(wcs, header, position_angle):
    import astropy.units as u

    ny, nx = header["NAXIS2"], header["NAXIS1"]
    centre = wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    moved = centre.directional_offset_by(position_angle * u.deg, 1 * u.arcsec)
    x, y = wcs.world_to_pixel(moved)
    vector = np.array([x - (nx - 1) / 2, y - (ny - 1) / 2])
    return vector / np.hypot(*vector)


def test_light_curves_merge_each_measurement_once(loaded):
    alerts = [item.alert for item in loaded[:6]]
    merged = merge_photometry(alerts + alerts)
    each = [p for alert in alerts for p in photometry(alert)]
    assert len(merged) == len({(p.kind == "forced", p.ident) for p in each})
    assert sum(p.kind == "alert" for p in merged) == 6
    svg = light_curve_svg(merged, magnitudes=True)
    assert svg.count('class="point ') == len([p for p in merged if np.isfinite(p.flux_err)])


@pytest.fixture(scope="module")
def served(sample_dir):
    """The application over the sample, in uvicorn on a thread, like the command serves it."""
    import uvicorn

    index, status, problems = AlertIndex(), IndexingStatus(), []
    index_paths(index, [sample_dir], status)
    app = create_app(index, indexing=status, title=str(sample_dir), on_problem=problems.append)
    listener = bind(0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", index, problems
    server.should_exit = True
    thread.join(10)
    listener.close()


def get(url: str, **headers) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_pages_and_downloads(served, loaded):
    from lsst.alert.packet import Schema

    url, _, problems = served
    status, _, body = get(f"{url}/?where=snr+%3E+10&sort=snr&order=desc")
    assert status == 200 and b"snr &gt; 10" in body
    status, _, body = get(f"{url}/alert/3")
    assert status == 200 and str(loaded[3].alert_id).encode() in body
    for kind in ("difference", "science", "template"):
        status, headers, png = get(f"{url}/alert/3/{kind}.png?stretch=zscale")
        assert status == 200 and headers["content-type"] == "image/png"
        assert png.startswith(b"\x89PNG")
        status, headers, data = get(f"{url}/alert/3/{kind}.fits")
        assert status == 200 and "attachment" in headers["content-disposition"]
        with fits.open(io.BytesIO(data)) as hdus:
            assert hdus[0].data.shape == render_stamps(loaded[3].alert)[kind].values.shape
    status, headers, packet = get(f"{url}/alert/3/packet.avro")
    (record,) = fastavro.reader(io.BytesIO(packet))
    assert record == loaded[3].alert
    schema = Schema.from_file(str(loaded[3].schema.path))
    assert schema.validate(record)
    status, _, values = get(f"{url}/alert/3/science.json")
    assert json.loads(values)["width"] == render_stamps(loaded[3].alert)["science"].width
    status, _, body = get(f"{url}/object/{loaded[3].object_id}")
    assert status == 200 and str(loaded[3].object_id).encode() in body
    status, _, body = get(f"{url}/id/{loaded[3].alert_id}")
    assert status == 200 and b"alert <span class=\"id\">" in body
    assert problems == []


def test_bad_requests_get_a_page_not_a_crash(served):
    url, _, _ = served
    assert get(f"{url}/alert/99999")[0] == 404
    assert get(f"{url}/alert/1/sideways.png")[0] == 404
    assert get(f"{url}/object/12345")[0] == 404
    status, _, body = get(f"{url}/?where=band+%3D%3D+r")
    assert status == 200 and b"text values are quoted" in body
    assert get(f"{url}/", Host="evil.example")[0] == 400  # no DNS rebinding onto this server
    assert get(f"{url}/api/status")[0] == 200


def test_a_file_changed_after_indexing_is_reported(tmp_path, sample_dir):
    copy = tmp_path / "alerts.avro"
    shutil.copy(next(sample_dir.glob("*.avro")), copy)
    index, _, _ = indexed(copy)
    copy.write_bytes(copy.read_bytes()[:1000])
    with pytest.raises(Exception, match="changed since it was indexed"):
        index.alert(2)


def test_command_errors_are_one_line(capsys, monkeypatch):
    from alertpack.cli import main

    monkeypatch.delenv("AP_KAFKA_SERVER", raising=False)
    monkeypatch.delenv("AP_KAFKA_TOPIC", raising=False)
    assert main(["browse"]) == 2
    assert "nothing to show: give alert files or directories" in capsys.readouterr().err
    taken = bind(0)
    try:
        port = taken.getsockname()[1]
        assert main(["browse", ".", "--port", str(port)]) == 2
        assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err
    finally:
        taken.close()


def test_unreachable_broker_fails_in_seconds():
    from alertpack.errors import StreamError
    from alertpack.kafka.settings import ConsumerSettings
    from alertpack.tools.browse.live import LiveFeed

    closed = bind(0)
    port = closed.getsockname()[1]
    closed.close()
    start = time.monotonic()
    with pytest.raises(StreamError, match=rf"cannot reach Kafka at 127.0.0.1:{port} within 1 s"):
        LiveFeed(
            AlertIndex(), ConsumerSettings(servers=f"127.0.0.1:{port}", topic="alerts")
        ).check(timeout=1.0)
    assert time.monotonic() - start < 5
