"""inspect, validate, show and to-parquet on alerts alertpack itself packaged from its sample."""

from __future__ import annotations

import json

import fastavro
import numpy as np
import pyarrow.parquet as pq
import pytest
from matplotlib.image import imread

from alertpack import PackageAlertsConfig, PackageAlertsTask
from alertpack.cli import main
from alertpack.sample import make_visit


@pytest.fixture(scope="module")
def alert_file(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sample-alerts")
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(directory)
    task = PackageAlertsTask(config=config)
    result = task.run(**make_visit(n_sources=10, image_shape=(800, 820), seed=11).run_kwargs())
    return result.path


def read_alerts(path):
    with open(path, "rb") as stream:
        return list(fastavro.reader(stream))


def test_our_alerts_validate_clean(alert_file, capsys):
    assert main(["validate", str(alert_file.parent)]) == 0, capsys.readouterr().out


def test_inspect_json_lists_every_alert(alert_file, capsys):
    assert main(["inspect", "--json", str(alert_file)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    alerts = read_alerts(alert_file)
    assert len(rows) == len(alerts) == 10
    assert [r["diaSourceId"] for r in rows] == [a["diaSourceId"] for a in alerts]
    assert [r["nPrvDiaSources"] for r in rows] == [
        None if a["prvDiaSources"] is None else len(a["prvDiaSources"]) for a in alerts
    ]
    assert all(r["packetSize"] > r["cutoutDifference"] > 0 for r in rows)


def test_show_renders_a_real_alert(alert_file, tmp_path):
    alerts = read_alerts(alert_file)
    alert = max(alerts, key=lambda a: len(a["prvDiaSources"] or []))
    output = tmp_path / "alert.png"
    argv = ["show", str(alert_file), "--id", str(alert["diaSourceId"]), "-o", str(output)]
    assert main(argv) == 0
    image = imread(output)
    height = image.shape[0]
    stamps = image[int(0.12 * height) : int(0.48 * height)]
    assert stamps[..., :3].std() > 0.1
    light_curve = image[int(0.55 * height) :, :, :3]
    colours = np.unique(np.round(light_curve.reshape(-1, 3), 1), axis=0)
    assert len(colours) > 10


def test_to_parquet_row_counts_and_values(alert_file, tmp_path, capsys):
    assert main(["to-parquet", str(alert_file), "-o", str(tmp_path / "pq")]) == 0
    alerts = read_alerts(alert_file)
    table = pq.read_table(tmp_path / "pq" / "alerts.parquet")
    assert table.num_rows == len(alerts)
    expected_ids = [a["diaSource"]["diaSourceId"] for a in alerts]
    assert table.column("diaSourceId").to_pylist() == expected_ids
    assert table.column("psfFlux").to_pylist() == pytest.approx(
        [a["diaSource"]["psfFlux"] for a in alerts]
    )
    previous = pq.read_table(tmp_path / "pq" / "prvDiaSources.parquet")
    assert previous.num_rows == sum(len(a["prvDiaSources"] or []) for a in alerts)
    forced = pq.read_table(tmp_path / "pq" / "prvDiaForcedSources.parquet")
    assert forced.num_rows == sum(len(a["prvDiaForcedSources"] or []) for a in alerts)
    cutouts = table.column("cutoutDifference").to_pylist()
    assert cutouts == [a["cutoutDifference"] for a in alerts]
