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
    assert all(0 < d.peak_rss_mb < 4000 for d in pooled.detectors)
