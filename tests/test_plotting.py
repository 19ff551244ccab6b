"""Tests of ``alertpack show`` (alertpack.tools.plotting): the PNG is checked by its pixels."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from alertpack.cli import main
from alertpack.errors import InputError
from alertpack.schema import load_schema
from alertpack.tools.plotting import BAND_COLORS, plot_alert, read_stamp, save_alert_plot
from alertpack.tools.reading import find_alert
from test_reading import OFFICIAL_SAMPLES, build_alert, consistent_alert_file, write_alert_file


def _stamp_panels(image: np.ndarray) -> list[np.ndarray]:
    """The three stamp areas of a rendered alert (top half, thirds, margins cut)."""
    height, width = image.shape[:2]
    top = image[int(0.12 * height) : int(0.48 * height)]
    return [top[:, int((k + 0.2) * width / 3) : int((k + 0.8) * width / 3)] for k in range(3)]


def _colour_present(image: np.ndarray, colour: str, tolerance: float = 0.06) -> int:
    """Number of pixels within ``tolerance`` of ``colour`` (RGB in 0-1)."""
    distance = np.abs(image[..., :3] - np.array(to_rgb(colour))).max(axis=-1)
    return int((distance < tolerance).sum())


def test_show_draws_stamps_compass_and_coloured_light_curve(tmp_path):
    path = consistent_alert_file(tmp_path, n_alerts=2)
    output = tmp_path / "alert.png"
    assert main(["show", str(path), "--id", "9000000000100", "-o", str(output)]) == 0
    image = imread(output)
    assert image.shape[0] >= 800 and image.shape[1] >= 1200
    for panel in _stamp_panels(image):
        grey = panel[..., :3].mean(axis=-1)
        # a noisy stamp with a star, not an empty or flat panel
        assert grey.std() > 0.15
        assert len(np.unique(np.round(grey, 2))) > 50
        # north/east arrows and source ticks are drawn on every stamp
        assert _colour_present(panel, "#ffd400", 0.1) > 100
        assert _colour_present(panel, "#00e5ff", 0.1) > 50
    light_curve = image[int(0.55 * image.shape[0]) :]
    for band in ("g", "r", "i"):  # the builder's bands
        assert _colour_present(light_curve, BAND_COLORS[band], 0.08) > 30, band


def test_figure_content(tmp_path):
    schema = load_schema("11.1")
    record = build_alert(schema, 1, n_previous=5, n_forced=6)
    figure = plot_alert(record)
    stamp_axes, light_curve = figure.axes[:3], figure.axes[3]
    assert [ax.get_title().split("\n")[0] for ax in stamp_axes] == [
        "Science", "Template", "Difference"]
    science, template, difference = (ax.images[0] for ax in stamp_axes)
    # science and template share one zscale; the difference is symmetric about 0
    assert science.get_clim() == template.get_clim()
    low, high = difference.get_clim()
    assert low == pytest.approx(-high)
    assert all(ax.coords[0].coord_type == "longitude" for ax in stamp_axes)
    header = figure.get_suptitle()
    assert "diaSource 9000000000100" in header and "band i" in header
    assert "5 previous, 6 forced" in header and "S/N 75.0" in header
    # 5 previous detections + 6 forced + 1 current point, with x = MJD
    plotted = np.concatenate([line.get_xdata() for line in light_curve.lines
                              if line.get_marker() in ("o", "s", "*")])
    expected = [s["midpointMjdTai"] for s in record["prvDiaSources"]]
    expected += [s["midpointMjdTai"] for s in record["prvDiaForcedSources"]]
    expected += [record["diaSource"]["midpointMjdTai"]]
    assert np.sort(plotted[np.isfinite(plotted)]) == pytest.approx(
        np.sort(np.array(expected)))


def test_compass_follows_the_wcs(tmp_path):
    schema = load_schema("11.1")
    record = build_alert(schema, 0)
    stamp = read_stamp(record["cutoutScience"])
    assert stamp.pixels.shape == (31, 31) and stamp.unit == "nJy"
    figure = plot_alert(record)
    arrows = [t for t in figure.axes[0].texts if t.get_text() in ("N", "E")]
    positions = {t.get_text(): np.array(t.get_position()) for t in arrows}
    # the builder's WCS has north up and east to the left
    assert positions["N"][1] > positions["E"][1]
    assert positions["E"][0] < positions["N"][0]


def test_alert_without_cutouts_or_history_still_plots(tmp_path):
    schema = load_schema("11.1")
    record = build_alert(schema, 0, n_previous=0, n_forced=0, cutouts=False)
    record["prvDiaSources"] = None
    output = save_alert_plot(record, tmp_path / "bare.png")
    figure = plot_alert(record)
    panel_texts = [t.get_text() for ax in figure.axes[:3] for t in ax.texts]
    assert panel_texts == [f"no {n}\nin this alert"
                           for n in ("cutoutScience", "cutoutTemplate", "cutoutDifference")]
    assert any("no previous sources" in t.get_text() for t in figure.axes[3].texts)
    image = imread(output)
    assert _colour_present(image, BAND_COLORS["g"], 0.08) > 20  # the current point


def test_unreadable_cutout_is_said_in_its_panel():
    schema = load_schema("11.1")
    record = build_alert(schema, 0)
    record["cutoutTemplate"] = b"\x00" * 2880
    figure = plot_alert(record)
    (message,) = [t.get_text() for t in figure.axes[1].texts]
    assert message.startswith("cutoutTemplate unreadable:")


@pytest.mark.parametrize("version", ["3.0", "7.4", "11.1"])
def test_official_samples_plot(tmp_path, version):
    (sample,) = [p for p in OFFICIAL_SAMPLES if p.parts[-4:-2] == tuple(version.split("."))]
    output = tmp_path / f"sample{version}.png"
    assert main(["show", str(sample), "-o", str(output)]) == 0
    image = imread(output)
    assert _colour_present(image, BAND_COLORS["r"], 0.08) > 20


def test_show_errors_are_one_line(tmp_path, capsys):
    path = write_alert_file(tmp_path / "a.avro", load_schema("11.1"),
                            [build_alert(load_schema("11.1"), 0, cutouts=False)])
    assert main(["show", str(path), "--id", "5", "-o", str(tmp_path / "x.png")]) == 2
    assert "no alert with diaSourceId/alertId 5" in capsys.readouterr().err
    assert main(["show", str(path), "-o", str(tmp_path / "x.jpeg")]) == 2
    assert ".png" in capsys.readouterr().err
    assert not list(tmp_path.glob("x.*"))
    with pytest.raises(InputError, match="no diaSource"):
        plot_alert({"diaSource": None})
    assert find_alert(path).alert_id == 9000000000000


def test_show_in_a_subprocess_writes_a_pdf(tmp_path):
    path = consistent_alert_file(tmp_path, n_alerts=1)
    output = tmp_path / "alert.pdf"
    completed = subprocess.run(
        [sys.executable, "-m", "alertpack.cli", "show", str(path), "-o", str(output)],
        capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert output.read_bytes().startswith(b"%PDF") and output.stat().st_size > 10_000


def _object_file(tmp_path, n_alerts=4):
    """``n_alerts`` alerts of one diaObject at later and later times, and one of another.

    Alert k is the object's source k+2, its history the sources and forced
    photometry before it, as a pipeline would send them.
    """
    schema = load_schema("11.1")
    full = build_alert(schema, 0, n_previous=n_alerts + 1, n_forced=6)
    sources = [*full["prvDiaSources"], full["diaSource"]]
    records = []
    for k in range(2, n_alerts + 2):
        record = dict(full)
        record["diaSource"] = sources[k]
        record["diaSourceId"] = sources[k]["diaSourceId"]
        record["prvDiaSources"] = sources[:k]
        record["prvDiaForcedSources"] = [
            f for f in full["prvDiaForcedSources"]
            if f["midpointMjdTai"] < sources[k]["midpointMjdTai"]
        ]
        records.append(record)
    records.append(build_alert(schema, 3))
    return write_alert_file(tmp_path / "object.avro", schema, records), records


def test_show_a_whole_object_and_several_alerts(tmp_path, monkeypatch, capsys):
    from alertpack.tools.plotting import plot_object

    path, records = _object_file(tmp_path)
    object_id = records[0]["diaObject"]["diaObjectId"]
    monkeypatch.chdir(tmp_path)
    # the object: one figure, named after it when -o is absent
    assert main(["show", str(path), "--object", str(object_id)]) == 0
    assert f"wrote object-{object_id}.png (object {object_id}, 4 alert(s))" in \
        capsys.readouterr().out
    assert imread(tmp_path / f"object-{object_id}.png").shape[0] >= 800
    figure = plot_object(records[:4])
    assert f"diaObject {object_id}   4 alert(s)" in figure.get_suptitle()
    assert f"latest alert {records[3]['diaSourceId']}" in figure.get_suptitle()
    stars = [line for line in figure.axes[3].lines if line.get_marker() == "*"]
    assert sum(len(line.get_xdata()) for line in stars) == 4  # each alert's own detection
    plotted = np.concatenate([line.get_xdata() for line in figure.axes[3].lines
                              if line.get_marker() in ("o", "s", "*")])
    measured = {(s["diaSourceId"], s["midpointMjdTai"]) for r in records[:4]
                for s in [r["diaSource"], *r["prvDiaSources"]]}
    forced = {(s["diaForcedSourceId"], s["midpointMjdTai"]) for r in records[:4]
              for s in r["prvDiaForcedSources"]}
    assert len(plotted) == len(measured) + len(forced)  # each measurement once

    # its alerts one by one: default names, a directory, the pages of a PDF, STEM-NAME files
    where = ["--where", f"object == {object_id}"]
    ids = [r["diaSourceId"] for r in records[:4]]
    assert main(["show", str(path), *where, "--max", "2"]) == 1
    assert sorted(p.name for p in tmp_path.glob("alert-*.png")) == [
        f"alert-{i}.png" for i in ids[:2]]
    assert "drew 2 of the 4 alerts selected; --max N for more" in capsys.readouterr().err
    two = ["--id", str(ids[2]), "--id", str(ids[3])]
    assert main(["show", str(path), *two, "-o", "figures/"]) == 0
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        f"alert-{i}.png" for i in ids[2:]]
    assert main(["show", str(path), *two, "-o", "pages.pdf"]) == 0
    assert "wrote pages.pdf: 2 page(s)" in capsys.readouterr().out
    pdf = (tmp_path / "pages.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) == 2
    assert main(["show", str(path), *two, "-o", "x.png"]) == 0
    assert sorted(p.name for p in tmp_path.glob("x-*.png")) == [
        f"x-alert-{i}.png" for i in ids[2:]]
    assert main(["show", str(path), "--object", "12345"]) == 2
    assert "no alert of diaObject 12345 among the 5 alerts" in capsys.readouterr().err


def test_show_stretches_scale_bar_magnitudes_padding_and_designation(tmp_path):
    import io

    from astropy.io import fits

    from test_reading import fill_record

    schema = load_schema("11.1")
    record = build_alert(schema, 1, n_previous=5, n_forced=6)
    zscale = plot_alert(record)
    asinh = plot_alert(record, stretch="asinh")
    for figure, name in ((zscale, "zscale"), (asinh, "asinh")):
        titles = [ax.get_title() for ax in figure.axes[:3]]
        assert all(title.split("\n")[1].startswith(name) for title in titles)
    science, template, difference = (ax.images[0] for ax in asinh.axes[:3])
    assert science.get_clim() == template.get_clim()
    assert difference.get_clim()[0] == pytest.approx(-difference.get_clim()[1])
    # between the same limits as linear, asinh lifts the faint pixels
    linear = plot_alert(record, stretch="linear")
    assert linear.axes[0].images[0].get_clim() == science.get_clim()

    def median_level(figure):
        image = figure.axes[0].images[0]
        return float(np.ma.median(image.norm(image.get_array()).compressed()))

    assert median_level(asinh) > median_level(linear) + 0.1
    # a scale bar of round arcseconds, at most 30% of the stamp (0.2"/pixel, 31 pixels: 1")
    labels = [t.get_text() for ax in zscale.axes[:3] for t in ax.texts]
    assert labels.count("1″") == 3
    # flux with an AB magnitude axis on the right; or magnitudes with upper limits
    magnitude_axis = zscale.axes[4]
    assert magnitude_axis.get_ylabel() == "AB magnitude"
    assert [float(t.get_text()) for t in magnitude_axis.get_yticklabels()]
    record["prvDiaForcedSources"][0]["psfFlux"] = 30.0  # S/N 0.5: an upper limit
    in_magnitudes = plot_alert(record, magnitudes=True).axes[3]
    assert in_magnitudes.get_ylabel() == "AB magnitude" and in_magnitudes.yaxis_inverted()
    limits = [line for line in in_magnitudes.lines if line.get_marker() == "v"]
    assert len(limits) == 1 and limits[0].get_ydata()[0] == pytest.approx(
        31.4 - 2.5 * np.log10(5 * 60.0))
    # a padded stamp: NaN pixels drawn in a colour of their own and counted in the title
    with fits.open(io.BytesIO(record["cutoutScience"])) as hdus:
        hdus[0].data[:, :8] = np.nan
        buffer = io.BytesIO()
        hdus.writeto(buffer)
    record["cutoutScience"] = buffer.getvalue()
    # an asteroid: its designation in the header
    record["ssSource"] = fill_record(schema.record("ssSource"),
                                     {"designation": "2023 JJ180", "ssObjectId": 77})
    output = save_alert_plot(record, tmp_path / "padded.png")
    figure = plot_alert(record)
    assert "padded: 248 px without data" in figure.axes[0].get_title()
    assert "padded" not in figure.axes[1].get_title()
    assert "asteroid 2023 JJ180 (ssObject 77)" in figure.get_suptitle()
    science_panel = _stamp_panels(imread(output))[0]
    assert _colour_present(science_panel, "#26547c", 0.03) > 500
    with pytest.raises(InputError, match="unknown stretch 'log'"):
        plot_alert(record, stretch="log")


def test_i_band_is_not_drawn_nearly_black():
    from matplotlib.colors import to_rgb

    for band, colour in BAND_COLORS.items():
        assert max(to_rgb(colour)) > 0.4, band
