"""``alertpack browse`` end to end: the command's server driven by a real headless Chromium.

Debian's chromium (``make system-deps``) is launched by Playwright through its
executable path; no browser is downloaded. The server is the command itself,
``alertpack browse``, started on a free port and stopped with SIGTERM.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import fastavro
import numpy as np
import pytest
from astropy.io import fits

from alertpack import PackageAlertsConfig, PackageAlertsTask, make_visit
from broker import make_alerts

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
N_ALERTS = 40
START_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    """40 sample alerts, plus a damaged alert file and a file that is not alerts."""
    directory = tmp_path_factory.mktemp("browse-e2e")
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(directory)
    visit = make_visit(n_sources=N_ALERTS, image_shape=(900, 940), seed=3)
    result = PackageAlertsTask(config=config).run(**visit.run_kwargs())
    broken = directory / "broken"
    broken.mkdir()
    data = Path(result.path).read_bytes()
    (broken / "truncated.avro").write_bytes(data[: len(data) // 3])
    (broken / "readme.avro").write_bytes(b"not an alert file")
    return directory


class BrowseProcess:
    """``alertpack browse ARGS --port 0`` in a subprocess; its URL and what it printed."""

    def __init__(self, *args: str):
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "alertpack", "browse", *args, "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
        )
        self.stderr: list[str] = []
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.url = self._wait_for_url()

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line.rstrip("\n"))

    def _wait_for_url(self) -> str:
        found: list[str] = []

        def read() -> None:
            line = self.process.stdout.readline()
            found.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        match = re.search(r"http://127\.0\.0\.1:\d+/", found[0] if found else "")
        if match is None:
            self.stop()
            raise RuntimeError(f"alertpack browse did not print its URL: {found} {self.stderr}")
        return match.group(0)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(scope="module")
def browse(sample_dir):
    server = BrowseProcess(str(sample_dir))
    yield server
    assert server.stop() == 128 + signal.SIGTERM


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make system-deps)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []  # no script error on any page


def assert_not_blank(path: Path) -> None:
    from matplotlib.image import imread

    pixels = imread(path)[..., :3]
    background = np.median(pixels.reshape(-1, 3), axis=0)
    differs = np.abs(pixels - background).sum(axis=2) > 0.1
    assert differs.mean() > 0.05, f"{path} is nearly blank"
    assert pixels.std() > 0.05


def column(page, header: str) -> list[float]:
    headers = [text.strip(" ▲▼") for text in page.locator("table.alerts th").all_inner_texts()]
    index = headers.index(header)
    cells = page.locator(f"table.alerts tbody tr td:nth-child({index + 1})").all_inner_texts()
    return [float(text.split()[0]) for text in cells if text.strip() not in ("–", "")]


def test_table_loads_filters_and_sorts(page, browse, tmp_path):
    page.goto(browse.url)
    # the files may still be indexing: the table fills without a reload
    page.wait_for_function("document.getElementById('status').textContent"
                           ".includes('2 file problem(s)')")
    page.wait_for_function(f"document.getElementById('total').textContent == '{N_ALERTS}'")
    assert page.locator("table.alerts tbody tr").count() == N_ALERTS
    assert f"{N_ALERTS} alert(s)" in page.inner_text("#status")
    page.screenshot(path=tmp_path / "table.png", full_page=True)
    assert_not_blank(tmp_path / "table.png")

    page.fill("input[name=where]", "snr > 20")
    page.click("button[type=submit]")
    page.wait_for_url("**where=snr*")
    shown = column(page, "S/N")
    assert shown and all(value > 20 for value in shown)
    assert int(page.inner_text("#matched")) == len(shown) < N_ALERTS
    assert "snr > 20" in page.inner_text(".expression")

    page.click("table.alerts th a:text-is('S/N')")
    page.wait_for_url("**sort=snr*")
    ascending = column(page, "S/N")
    assert ascending == sorted(ascending) and len(ascending) == len(shown)
    page.click("table.alerts th a:has-text('S/N')")
    page.wait_for_url("**order=desc*")
    assert column(page, "S/N") == sorted(ascending, reverse=True)


def test_alert_page_images_light_curve_fields_and_downloads(page, browse, tmp_path):
    from lsst.alert.packet import Schema

    from alertpack.tools.reading import rubin_schema_for_name

    page.goto(browse.url + "?sort=snr&order=desc")
    page.click("table.alerts tbody tr:first-child td.id a")
    page.wait_for_selector("img.stamp-img")
    loaded = "Array.from(document.querySelectorAll('img.stamp-img'))" \
             ".every(i => i.complete && i.naturalWidth > 0)"
    page.wait_for_function(loaded)
    assert page.locator("img.stamp-img").count() == 3
    assert page.locator(".overlay .compass.north").count() == 3
    assert page.locator(".overlay .scalebar").count() == 3
    assert page.locator(".curve-flux svg g.point").count() > 10
    assert page.locator("table.fields td.name:text-is('psfFlux')").count() == 1
    page.screenshot(path=tmp_path / "alert.png")
    assert_not_blank(tmp_path / "alert.png")

    page.click("button[data-curve=mag]")
    assert page.locator(".curve-mag").is_visible() and not page.locator(".curve-flux").is_visible()
    width = page.locator(".stamp").first.bounding_box()["width"]
    page.click("button[data-zoom='1']")
    assert page.locator(".stamp").first.bounding_box()["width"] > width
    page.click("label:has(input[value=zscale])")
    page.wait_for_url("**stretch=zscale*")
    page.wait_for_function(loaded)
    page.locator(".stamp").first.hover()
    assert re.match(r"x \d+, y \d+", page.inner_text(".readout >> nth=0"))

    with page.expect_download() as download:
        page.click("text=packet (Avro)")
    packet = tmp_path / "packet.avro"
    download.value.save_as(packet)
    with packet.open("rb") as stream:
        reader = fastavro.reader(stream)
        (record,) = reader
        shipped = rubin_schema_for_name(reader.writer_schema["name"])
    assert Schema.from_file(str(shipped.path)).validate(record)
    alert_id = record["diaSourceId"]
    assert str(alert_id) in page.inner_text("h1")
    with page.expect_download() as download:
        page.click("text=science (FITS)")
    stamp = tmp_path / download.value.suggested_filename
    download.value.save_as(stamp)
    assert stamp.name == f"{alert_id}-science.fits"
    with fits.open(stamp) as hdus:
        assert hdus[0].data.ndim == 2 and hdus[0].header["BUNIT"] == "nJy"
        with fits.open(io.BytesIO(record["cutoutScience"])) as sent:
            assert hdus[0].data.tobytes() == sent[0].data.tobytes()


def test_object_page(page, browse):
    page.goto(browse.url)
    link = page.locator("table.alerts tbody tr td:nth-child(2) a[href^='/object/']").first
    object_id = link.inner_text()
    link.click()
    page.wait_for_url(f"**/object/{object_id}")
    assert object_id in page.inner_text("h1") and "diaObject" in page.inner_text("h1")
    assert page.locator(".curve-flux svg g.point.alert").count() >= 1
    assert page.locator(".curve-flux svg g.point.detection").count() >= 1
    assert page.locator("table.alerts tbody tr").count() >= 1
    assert page.locator("details.fields summary:has-text('diaObject')").count() == 1


def test_bad_files_are_reported_once_and_the_rest_served(browse):
    deadline = time.monotonic() + 10
    while len(browse.stderr) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [line for line in browse.stderr if line.startswith("alertpack browse:")]
    assert any("truncated.avro" in line for line in lines), browse.stderr
    assert any("readme.avro" in line for line in lines), browse.stderr
    assert all("Traceback" not in line for line in browse.stderr)


@pytest.mark.kafka
def test_live_alerts_appear_without_a_reload(page, kafka_broker, tmp_path):
    from alertpack import AlertProducer, KafkaSettings

    topic = "browse-live"
    settings = KafkaSettings.resolve(servers=kafka_broker.bootstrap, topic=topic,
                                     flush_timeout=10.0)
    with AlertProducer(settings, failed_dir=tmp_path) as producer:
        assert producer.send(make_alerts(1, first_id=70_000)).delivered == 1  # the topic exists
        server = BrowseProcess("--server", kafka_broker.bootstrap, "--topic", topic)
        try:
            page.goto(server.url)
            page.wait_for_function("document.getElementById('status').textContent"
                                   ".includes('browse-live')")
            assert page.locator("table.alerts tbody tr").count() == 0  # only new alerts
            page.evaluate("window.notReloaded = true")
            # a message that is not an alert goes between them: one line, and reading goes on
            _produce_raw(kafka_broker.bootstrap, topic, b"\x00\x00\x00\x04\x4dnot avro")
            fresh = make_alerts(3, first_id=71_000)
            assert producer.send(fresh).delivered == 3
            for alert in fresh:
                page.wait_for_selector(f"table.alerts td.id a:text-is('{alert.alert_id}')",
                                       timeout=20_000)
            assert page.evaluate("window.notReloaded") is True
            assert page.locator("table.alerts tr.fresh").count() >= 1
            assert page.inner_text("#total") == "3"
            # the newest first; its page opens although its cutouts are not FITS
            page.click("table.alerts tbody tr:first-child td.id a")
            page.wait_for_selector(".stamp.missing")
            assert "cannot be read" in page.inner_text(".stamps")
        finally:
            code = server.stop()
        assert code == 128 + signal.SIGTERM
        assert any("skipped" in line for line in server.stderr), server.stderr


def _produce_raw(server: str, topic: str, value: bytes) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": server})
    producer.produce(topic, value)
    assert producer.flush(10) == 0


def test_screenshots_are_kept_for_people(browse, browser, tmp_path_factory):
    """One table and one alert page, full size, where a person can look at them."""
    keep = Path(os.environ.get("ALERTPACK_BROWSE_SCREENSHOTS", tmp_path_factory.mktemp("shots")))
    keep.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    shot = context.new_page()
    shot.goto(browse.url + "alert/0")
    shot.wait_for_function("Array.from(document.querySelectorAll('img.stamp-img'))"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    shot.screenshot(path=keep / "alert.png")
    shot.goto(browse.url + "?sort=snr&order=desc")
    shot.screenshot(path=keep / "table.png")
    context.close()
    for name in ("alert.png", "table.png"):
        assert_not_blank(keep / name)
