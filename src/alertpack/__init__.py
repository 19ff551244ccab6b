"""alertpack: package survey detections into Rubin-schema Avro alerts and deliver them.

The public API is importable from here; heavy modules (the LSST Task
framework, astropy, Kafka) load on first use so that ``import alertpack``
stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "PackageAlertsTask": "alertpack.task",
    "PackageAlertsConfig": "alertpack.config",
    "AlertBatch": "alertpack.packets.batch",
    "AlertSchema": "alertpack.schema",
    "SchemaVersion": "alertpack.schema",
    "load_schema": "alertpack.schema",
    "available_versions": "alertpack.schema",
    "latest_version": "alertpack.schema",
    "pack_wire": "alertpack.schema",
    "unpack_wire": "alertpack.schema",
    "AlertPackError": "alertpack.errors",
    "InputError": "alertpack.errors",
    "SurveyImage": "alertpack.inputs.images",
    "as_survey_image": "alertpack.inputs.images",
    "apdb_run_kwargs": "alertpack.inputs.apdb",
    "apdb_visit_inputs": "alertpack.inputs.apdb",
    "VisitInputs": "alertpack.visit_inputs",
    "make_cutout_bytes": "alertpack.packets.cutouts",
    "stamp_fits_bytes": "alertpack.packets.stamp_fits",
    "CutoutStatus": "alertpack.packets.stamp",
    "AlertEncoder": "alertpack.packets.avro",
    "make_visit": "alertpack.sample",
    "iter_alerts": "alertpack.tools.reading",
    "iter_kafka_alerts": "alertpack.tools.consume",
    "AlertProducer": "alertpack.kafka.producer",
    "KafkaSettings": "alertpack.kafka.settings",
    "ConsumerSettings": "alertpack.kafka.settings",
    "plot_alert": "alertpack.tools.plotting",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'alertpack' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
