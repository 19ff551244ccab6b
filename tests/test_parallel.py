"""Scale-out over detectors: same alerts as one process, files per ccdVisit, bounded memory."""

from __future__ import annotations

import os
from dataclasses import dataclass

import fastavro

from alertpack import PackageAlertsConfig
from alertpack.errors import InputError
from alertpack.scaleout.pool import DetectorJob, package_detectors, sample_detector_loader


def config_for(tmp_path):
    config = PackageAlertsConfig()
    config.alertWriteLocation = str(tmp_path)
    return config


def test_pool_packages_every_detector_like_a_single_process(tmp_path):
    loaders = [sample_detector_loader(d, 5, (300, 320)) for d in range(4)]
    serial = package_detectors(loaders, config_for(tmp_path / "serial"), workers=1)
    pooled = package_detectors(loaders, config_for(tmp_path / "pool"), workers=2)
    assert serial.n_alerts == pooled.n_alerts == 20
    assert pooled.workers == 2 and pooled.n_failed == 0
    serial_files = sorted(p.name for d in serial.detectors for p in d.paths)
    pooled_files = sorted(p.name for d in pooled.detectors for p in d.paths)
    assert serial_files == pooled_files and len(set(serial_files)) == 4
    for name in serial_files:
        with open(tmp_path / "serial" / name, "rb") as a, open(tmp_path / "pool" / name, "rb") as b:
            assert list(fastavro.reader(a)) == list(fastavro.reader(b))
    assert all(d.peak_rss_mb > 0 for d in pooled.detectors)


@dataclass(frozen=True)
class DieOnce:
    """A loader whose first call kills its worker process (as the OOM killer would)."""

    marker: str
    detector: int

    def __call__(self):
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(9)
        return sample_detector_loader(self.detector, 5, (300, 320))()


def always_raises():
    raise RuntimeError("disk on fire\nsecond line")


def bad_input():
    raise InputError("diaSourceCat file x.parquet: column ra missing")


def test_pool_redoes_the_detectors_of_a_dead_worker(tmp_path):
    jobs = [DetectorJob(f"d{d}", sample_detector_loader(d, 5, (300, 320))) for d in range(3)]
    jobs.append(DetectorJob("dies", DieOnce(str(tmp_path / "died"), 7)))
    summary = package_detectors(jobs, config_for(tmp_path / "out"), workers=2)
    assert summary.failures == []
    assert sorted(d.name for d in summary.detectors) == ["d0", "d1", "d2", "dies"]
    assert summary.n_alerts == 20 and (tmp_path / "died").exists()
    assert len(list((tmp_path / "out").glob("*.avro"))) == 4
    assert "dies" in {d.name for d in summary.redone}


def test_failed_detectors_are_reported_not_raised(tmp_path):
    jobs = [DetectorJob("raises", always_raises), DetectorJob("bad", bad_input),
            DetectorJob("good", sample_detector_loader(1, 5, (300, 320)))]
    summary = package_detectors(jobs, config_for(tmp_path), workers=1)
    assert [d.name for d in summary.detectors] == ["good"] and summary.n_alerts == 5
    failures = {f.name: f for f in summary.failures}
    assert failures["raises"].error == "RuntimeError: disk on fire"
    assert failures["raises"].attempts == 2  # retried once
    assert failures["bad"].error == "diaSourceCat file x.parquet: column ra missing"
    assert failures["bad"].attempts == 1  # bad input: not retried


def test_worker_memory_stays_at_one_detector(tmp_path):
    """Six detectors through two workers: each worker's peak is one detector's images above
    its baseline, not the three it handled (memory does not pile up across detectors)."""
    shape = (1200, 1200)
    tiny = package_detectors(
        [sample_detector_loader(d, 5, (300, 320)) for d in range(2)],
        config_for(tmp_path / "tiny"), workers=2,
    )
    baseline_mb = max(d.peak_rss_mb for d in tiny.detectors)
    # image, variance (float32) and mask (int32) of difference, science and template
    detector_mb = 3 * shape[0] * shape[1] * (4 + 4 + 4) / 2**20
    big = package_detectors(
        [sample_detector_loader(d, 5, shape) for d in range(6)],
        config_for(tmp_path / "big"), workers=2,
    )
    assert big.n_alerts == 30 and big.n_failed == 0
    above = big.peak_rss_mb - baseline_mb
    assert above > 0.5 * detector_mb, "the measure must see one detector's images"
    assert above < 2.0 * detector_mb, (
        f"worker peak {big.peak_rss_mb:.0f} MB is {above:.0f} MB above the baseline "
        f"{baseline_mb:.0f} MB: more than one detector ({detector_mb:.0f} MB) held at once"
    )
