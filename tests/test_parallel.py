"""Scale-out over detectors: same alerts as one process, files per ccdVisit, bounded memory."""

from __future__ import annotations

import fastavro

from alertpack import PackageAlertsConfig
from alertpack.scaleout.pool import package_detectors, sample_detector_loader


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
