"""Configuration of the `~alertpack.task.PackageAlertsTask`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lsst.pex.config as pexConfig

from alertpack.errors import ConfigError
from alertpack.redaction import REDACTED, redact, url_secrets
from alertpack.schema import SchemaVersion, available_versions, latest_version

__all__ = [
    "CUTOUT_FIELDS",
    "PackageAlertsConfig",
    "apply_config_overrides",
    "config_text",
    "load_config_file",
]

#: cutout name in config -> alert schema field carrying its FITS bytes
CUTOUT_FIELDS = {
    "difference": "cutoutDifference",
    "science": "cutoutScience",
    "template": "cutoutTemplate",
}


def _schema_choices() -> dict[str, str]:
    return {str(version): f"Rubin alert schema v{version}" for version in available_versions()}


class PackageAlertsConfig(pexConfig.Config):
    """Configuration for `~alertpack.task.PackageAlertsTask`."""

    # Each field is annotated with the type its value has on an instance (a RangeField,
    # not generic itself, as the Field of its dtype).

    schemaVersion: pexConfig.ChoiceField[str] = pexConfig.ChoiceField(
        dtype=str,
        doc="Alert schema version (MAJOR.MINOR) from lsst-alert-packet; default: the latest.",
        allowed=_schema_choices(),
        default=str(latest_version()),
    )
    alertWriteLocation: pexConfig.Field[str] = pexConfig.Field(
        dtype=str,
        doc="Directory where one Avro file per ccdVisit ({ccdVisitId}.avro) is written.",
        default="alerts",
    )
    doWriteAlerts: pexConfig.Field[bool] = pexConfig.Field(
        dtype=bool, doc="Write alerts to Avro files under alertWriteLocation.", default=True
    )
    fileCodec: pexConfig.ChoiceField[str] = pexConfig.ChoiceField(
        dtype=str,
        doc="Avro container-file block codec.",
        allowed={"null": "no compression", "deflate": "zlib deflate"},
        default="null",
    )
    cutoutSize: pexConfig.Field[int] = pexConfig.RangeField(
        dtype=int,
        doc="Edge length of the square cutouts in pixels, used when a source has no bboxSize "
        "or useBboxSize is False.",
        default=30,
        min=1,
        max=2000,
    )
    useBboxSize: pexConfig.Field[bool] = pexConfig.Field(
        dtype=bool,
        doc="Size each cutout from the source's bboxSize column, clipped to "
        "[minCutoutSize, maxCutoutSize], when the catalog has that column.",
        default=True,
    )
    minCutoutSize: pexConfig.Field[int] = pexConfig.RangeField(
        dtype=int, doc="Smallest cutout edge (pixels) for bboxSize sizing.", default=30, min=1
    )
    maxCutoutSize: pexConfig.Field[int] = pexConfig.RangeField(
        dtype=int, doc="Largest cutout edge (pixels) for bboxSize sizing.", default=200, min=1
    )
    cutouts: pexConfig.ListField[str] = pexConfig.ListField(
        dtype=str,
        doc=f"Cutouts to include in each alert, among {sorted(CUTOUT_FIELDS)}; the science "
        "cutout needs the science image passed to run().",
        default=["difference", "science", "template"],
    )
    historyWindowDays: pexConfig.Field[float] = pexConfig.RangeField(
        dtype=float,
        doc="Previous sources and forced sources older than this many days before the "
        "triggering source are left out of the alert.",
        default=365.0,
        min=0.0,
        inclusiveMin=False,
    )

    # Delivery to Kafka. Unset values fall back to the AP_KAFKA_* environment
    # variables Rubin's alert production uses.
    doProduceAlerts: pexConfig.Field[bool] = pexConfig.Field(
        dtype=bool, doc="Send alerts to Kafka (Confluent wire format).", default=False
    )
    doWriteFailedAlerts: pexConfig.Field[bool] = pexConfig.Field(
        dtype=bool,
        doc="Write alerts that could not be delivered to a replayable Avro file "
        "under failedAlertsLocation.",
        default=True,
    )
    failedAlertsLocation: pexConfig.Field[str] = pexConfig.Field(
        dtype=str,
        doc="Directory for failed-alert files; empty means '<alertWriteLocation>/failed'.",
        default="",
    )
    kafkaServer: pexConfig.Field[str] = pexConfig.Field(
        dtype=str, doc="Bootstrap server(s) host:port[,...]; default $AP_KAFKA_SERVER.", default=""
    )
    kafkaTopic: pexConfig.Field[str] = pexConfig.Field(
        dtype=str, doc="Topic to produce to; default $AP_KAFKA_TOPIC.", default=""
    )
    kafkaUsername: pexConfig.Field[str] = pexConfig.Field(
        dtype=str,
        doc="SASL username; default $AP_KAFKA_PRODUCER_USERNAME. Empty: no authentication.",
        default="",
    )
    kafkaPassword: pexConfig.Field[str] = pexConfig.Field(
        dtype=str,
        doc="SASL password; prefer $AP_KAFKA_PRODUCER_PASSWORD, which never lands in a saved "
        "config.",
        default="",
    )
    kafkaSecurityProtocol: pexConfig.ChoiceField[str] = pexConfig.ChoiceField(
        dtype=str,
        doc="Security protocol when a username is set (without one: PLAINTEXT).",
        allowed={"SASL_SSL": "SASL over TLS", "SASL_PLAINTEXT": "SASL without TLS"},
        default="SASL_SSL",
    )
    kafkaSaslMechanism: pexConfig.Field[str] = pexConfig.Field(
        dtype=str, doc="SASL mechanism.", default="SCRAM-SHA-512"
    )
    kafkaCompression: pexConfig.ChoiceField[str] = pexConfig.ChoiceField(
        dtype=str,
        doc="Producer compression codec.",
        allowed={"none": "", "gzip": "", "snappy": "", "lz4": "", "zstd": ""},
        default="lz4",
    )
    kafkaLingerMs: pexConfig.Field[float] = pexConfig.RangeField(
        dtype=float, doc="How long the producer waits to fill a batch (ms).", default=5.0, min=0.0
    )
    kafkaBatchSize: pexConfig.Field[int] = pexConfig.RangeField(
        dtype=int, doc="Maximum batch size in bytes.", default=1_000_000, min=1
    )
    kafkaQueueMaxMessages: pexConfig.Field[int] = pexConfig.RangeField(
        dtype=int, doc="Producer local queue size (messages).", default=100_000, min=1
    )
    kafkaMessageMaxBytes: pexConfig.Field[int] = pexConfig.RangeField(
        dtype=int, doc="Largest message the producer sends (bytes).", default=10_000_000, min=1000
    )
    kafkaFlushTimeout: pexConfig.Field[float] = pexConfig.RangeField(
        dtype=float,
        doc="Seconds the end-of-run flush may take before undelivered alerts go to the "
        "failed file.",
        default=30.0,
        min=0.0,
    )
    kafkaDeliveryTimeout: pexConfig.Field[float] = pexConfig.RangeField(
        dtype=float,
        doc="Seconds librdkafka retries one message before it counts as failed.",
        default=30.0,
        min=0.0,
    )
    kafkaTimestamp: pexConfig.ChoiceField[str] = pexConfig.ChoiceField(
        dtype=str,
        doc="Kafka message timestamp.",
        allowed={
            "observation": "the source's exposure midpoint (midpointMjdTai, TAI as UTC)",
            "production": "the time the alert is produced",
        },
        default="observation",
    )
    schemaRegistryUrl: pexConfig.Field[str] = pexConfig.Field(
        dtype=str,
        doc="Confluent schema registry to register the alert schema with; empty: use Rubin's "
        "schema id convention (major*100+minor).",
        default="",
    )

    def validate(self) -> None:
        super().validate()
        unknown = sorted(set(self.cutouts) - set(CUTOUT_FIELDS))
        if unknown:
            raise pexConfig.FieldValidationError(
                type(self).cutouts,
                self,
                f"unknown cutout name(s) {unknown}; choose among {sorted(CUTOUT_FIELDS)}",
            )
        if len(set(self.cutouts)) != len(self.cutouts):
            raise pexConfig.FieldValidationError(
                type(self).cutouts, self, f"cutouts {list(self.cutouts)} name one twice"
            )
        if self.minCutoutSize > self.maxCutoutSize:
            raise pexConfig.FieldValidationError(
                type(self).minCutoutSize,
                self,
                f"minCutoutSize={self.minCutoutSize} is larger than "
                f"maxCutoutSize={self.maxCutoutSize}",
            )
        if self.doWriteAlerts and not self.alertWriteLocation.strip():
            raise pexConfig.FieldValidationError(
                type(self).alertWriteLocation,
                self,
                "is empty while doWriteAlerts is True; give a directory or set doWriteAlerts=False",
            )

    @property
    def schema_version(self) -> SchemaVersion:
        """The configured schema version, parsed."""
        return SchemaVersion.parse(self.schemaVersion)


def apply_config_overrides(config: Any, overrides: list[str]) -> None:
    """Set ``NAME=VALUE`` pairs on a pex_config Config, converting to each field's type.

    Raises
    ------
    ConfigError
        A pair that is not ``NAME=VALUE`` with a field's name, or a value the
        field refuses; the message starts with the pair or the field's name
        (the command line puts ``--config`` before it).
    """
    for item in overrides:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or name not in config._fields:
            known = ", ".join(sorted(config._fields))
            raise ConfigError(f"{item!r}: expected NAME=VALUE with NAME among {known}")
        field = config._fields[name]
        value: Any
        if field.dtype is bool:
            if text.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"{name}: {text!r} is not a boolean (true/false)")
            value = text.strip().lower() in ("true", "1", "yes")
        elif hasattr(field, "itemtype"):
            value = [field.itemtype(part.strip()) for part in text.split(",") if part.strip()]
        else:
            try:
                value = field.dtype(text)
            except ValueError:
                raise ConfigError(
                    f"{name}: {text!r} is not a valid {field.dtype.__name__}"
                ) from None
        allowed = getattr(field, "allowed", None)
        if allowed is not None and value not in allowed:
            # pex_config's own message names our source file and lists None
            choices = ", ".join(str(choice) for choice in allowed if choice is not None)
            raise ConfigError(f"{name}={text}: not one of {choices}")
        try:
            setattr(config, name, value)
        except Exception as error:  # pex_config raises several types; show its message
            raise ConfigError(f"{name}={text}: {error}") from None


def load_config_file(config: PackageAlertsConfig, path: str | Path) -> None:
    """Apply a pex_config override file (``config.cutoutSize = 40``), as pipetask users write them.

    Raises
    ------
    ConfigError
        When the file does not exist, is not valid Python, or sets a field
        wrongly; the message starts with the file's name.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        config.load(str(path))
    except SyntaxError as error:
        raise ConfigError(
            f"{path}: line {error.lineno}: {error.msg} "
            "(expected Python lines such as `config.cutoutSize = 40`)"
        ) from None
    except Exception as error:  # pex_config raises several types for a bad assignment
        raise ConfigError(f"{path}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    """An error's own message, without pex_config's pointers into source files."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


#: fields whose values never leave the process in clear text
SECRET_FIELDS = ("kafkaPassword",)

#: fields that may carry credentials as user-info (``user:password@``, ``TOKEN@``)
ADDRESS_FIELDS = ("kafkaServer", "schemaRegistryUrl")


def config_text(config: PackageAlertsConfig) -> str:
    """The config as a pex_config override file, secrets masked by the one rule.

    The secret fields (`SECRET_FIELDS`) show as ``'********'``; everything
    else goes through `alertpack.redaction.redact` with the credentials of
    the addresses (`ADDRESS_FIELDS`): a user-info password or token, secret
    URL parameters and the base64 of a basic-authentication pair are masked
    wherever they appear. The text loads back with `load_config_file` (a
    masked secret loads as the mask, so pass secrets through the environment
    instead).
    """
    shown = type(config)()
    shown.loadFromString(config.saveToString())
    for name in SECRET_FIELDS:
        if getattr(shown, name):
            setattr(shown, name, REDACTED)
    secrets = [secret for name in ADDRESS_FIELDS for secret in url_secrets(getattr(config, name))]
    return redact(shown.saveToString(), secrets)
