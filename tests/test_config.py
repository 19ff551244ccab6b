"""PackageAlertsConfig: defaults and validation messages."""

from __future__ import annotations

import lsst.pex.config as pexConfig
import pytest

from alertpack.config import PackageAlertsConfig
from alertpack.schema import latest_version


def test_defaults_validate_and_follow_latest_schema():
    config = PackageAlertsConfig()
    config.validate()
    assert config.schemaVersion == str(latest_version())
    assert config.historyWindowDays == 365.0
    assert config.cutoutSize == 30
    assert list(config.cutouts) == ["difference", "science", "template"]


def test_any_shipped_schema_selectable_and_others_refused():
    config = PackageAlertsConfig()
    config.schemaVersion = "7.4"
    config.validate()
    with pytest.raises(pexConfig.FieldValidationError, match="not allowed"):
        config.schemaVersion = "12.0"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("cutouts", ["difference", "residual"], "unknown cutout"),
        ("cutouts", ["template", "template"], "twice"),
        ("minCutoutSize", 300, "larger than maxCutoutSize"),
        ("alertWriteLocation", " ", "doWriteAlerts"),
    ],
)
def test_bad_values_fail_validate_with_a_clear_message(field, value, message):
    config = PackageAlertsConfig()
    setattr(config, field, value)
    with pytest.raises(pexConfig.FieldValidationError, match=message):
        config.validate()


def test_range_fields_refuse_nonsense():
    config = PackageAlertsConfig()
    with pytest.raises(pexConfig.FieldValidationError):
        config.cutoutSize = 0
        config.validate()
    config = PackageAlertsConfig()
    with pytest.raises(pexConfig.FieldValidationError):
        config.historyWindowDays = 0.0
        config.validate()
