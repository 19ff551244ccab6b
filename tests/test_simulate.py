"""``alertpack simulate``: short survey-cadence streams to files and to a real broker."""

from __future__ import annotations

import re
import subprocess
import sys

import fastavro
import numpy as np
import pytest

from alertpack.scaleout.simulate import plan_stream

# small visits: 3 visits of 4 detectors, ~12 alerts each, every other visit a burst
STREAM = ["--visits", "3", "--detectors", "4", "--alerts", "12", "--burst-alerts", "30",
          "--burst-fraction", "0.5", "--templates", "2", "--image-size", "200x200",
          "--seed", "3", "--workers", "1"]
COUNTER_BITS = 64 - 50  # sample ids: ccdVisitId in the top 50 bits of diaSourceId


def _simulate(*extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alertpack.cli", "simulate", *STREAM, *extra],
        capture_output=True, text=True, timeout=300,
    )


def _table(stdout: str) -> dict[str, str]:
    rows = [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines()[2:]]
    return {name: value for name, value in rows}


def test_plan_draws_bursts_and_spreads_alerts_over_detectors():
    plan = plan_stream(400, 189, mean_alerts=10_000, burst_alerts=40_000, burst_fraction=0.05,
                       seed=1)
    totals = plan.counts.sum(axis=1)
    normal = totals[~plan.bursts]
    assert 9_000 < np.median(normal) < 11_000 and normal.max() < 15_000
    assert 5 < plan.bursts.sum() < 40 and totals.max() <= 40_000
    assert plan.counts.shape == (400, 189) and (plan.counts >= 0).all()
    assert np.array_equal(plan.visits, np.arange(400) + plan.visits[0])


def test_simulate_to_files_exact_counts_unique_ids(tmp_path):
    run = _simulate("--cadence", "0", "-o", str(tmp_path))
    assert run.returncode == 0, run.stderr
    table = _table(run.stdout)
    assert table["visits"] == "3" and table["failed detectors"] == "0"
    assert sum("] visit " in line for line in run.stderr.splitlines()) == 3
    ids, per_visit = [], {}
    for path in sorted(tmp_path.glob("*.avro")):
        ccd_visit = int(path.stem)
        with open(path, "rb") as stream:
            alerts = list(fastavro.reader(stream))
        for alert in alerts:
            source = alert["diaSource"]
            assert source["diaSourceId"] >> COUNTER_BITS == ccd_visit
            assert source["visit"] * 256 + source["detector"] == ccd_visit
            assert alert["cutoutDifference"] is not None
        ids += [a["diaSource"]["diaSourceId"] for a in alerts]
        per_visit[ccd_visit // 256] = per_visit.get(ccd_visit // 256, 0) + len(alerts)
    assert len(ids) == len(set(ids)) == int(table["alerts"])
    assert len(per_visit) == 3
    expected = [int(line.split(": ")[1].split()[0]) for line in run.stderr.splitlines()
                if "] visit " in line]
    assert [per_visit[v] for v in sorted(per_visit)] == expected


@pytest.mark.kafka
def test_simulate_to_the_broker_at_cadence(kafka_broker, tmp_path):
    from alertpack.schema import unpack_wire
    from broker import create_topic, read_topic

    topic = "simulate-stream"
    create_topic(kafka_broker.bootstrap, topic)  # the packagers check it exists
    run = _simulate("--cadence", "1", "--produce", "-c", f"kafkaServer={kafka_broker.bootstrap}",
                    "-c", f"kafkaTopic={topic}", "-c", "kafkaFlushTimeout=10")
    assert run.returncode == 0, run.stderr
    table = _table(run.stdout)
    n_alerts = int(table["alerts"])
    assert table["kafka delivered"] == str(n_alerts) and table["kafka failed"] == "0"
    assert table["cadence"] == "1 s"
    messages = read_topic(kafka_broker.bootstrap, topic, expected=n_alerts)
    assert len(messages) == n_alerts
    schema_ids = {unpack_wire(m.value())[0] for m in messages}
    assert len(schema_ids) == 1
    assert len({m.value() for m in messages}) == n_alerts
