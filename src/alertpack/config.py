"""Configuration of the `~alertpack.task.PackageAlertsTask`.

`PackageAlertsConfig` holds alertpack's fields and today's
``lsst.ap.association`` ones (``schemaFile``, ``maxTimeout``,
``deliveryTimeout``, ``useAveragePsf``, ...), so that override files written
for either load. Where the two name the same setting, one is a field and the
other a `ConfigAlias` of it (another name, perhaps another unit): one value,
two names. `ALIASES` lists them; `apply_config_overrides` and override files
take either name, and `config_text` prints both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lsst.pex.config as pexConfig

from alertpack.errors import ConfigError
from alertpack.redaction import REDACTED, redact, url_secrets
from alertpack.schema import SchemaVersion, available_versions, latest_version, load_schema

__all__ = [
    "ALIASES",
    "CUTOUT_FIELDS",
    "ConfigAlias",
    "PackageAlertsConfig",
    "apply_config_overrides",
    "config_text",
    "load_config_file",
    "schema_file_uri",
    "schema_version_of_file",
]

#: cutout name in config -> alert schema field carrying its FITS bytes
CUTOUT_FIELDS = {
    "difference": "cutoutDifference",
    "science": "cutoutScience",
    "template": "cutoutTemplate",
}


def _schema_choices() -> dict[str, str]:
    return {str(version): f"Rubin alert schema v{version}" for version in available_versions()}


# lsst-alert-packet names every schema it ships lsst.vMAJOR_MINOR.alert.avsc
_SCHEMA_FILE_NAME = re.compile(r"lsst\.v(\d+)_(\d+)\.alert\.avsc")
_PACKAGE_SCHEMA_URI = "resource://lsst.alert.packet/schema/"


def schema_file_uri(version: str) -> str:
    """The URI of a shipped schema, as ``lsst.alert.packet.get_uri_to_latest_schema`` spells it.

    ``"11.1"`` -> ``resource://lsst.alert.packet/schema/11/1/lsst.v11_1.alert.avsc``.
    """
    parsed = SchemaVersion.parse(version)
    return (
        f"{_PACKAGE_SCHEMA_URI}{parsed.major}/{parsed.minor}/"
        f"lsst.v{parsed.major}_{parsed.minor}.alert.avsc"
    )


def schema_version_of_file(uri: str) -> str:
    """The schema version a ``schemaFile`` value names, e.g. ``"11.1"``.

    Parameters
    ----------
    uri : `str`
        ``resource://lsst.alert.packet/schema/...`` (upstream's default), a
        ``file://`` URI or a path. The version follows from the file name,
        ``lsst.vMAJOR_MINOR.alert.avsc``, as lsst-alert-packet names every
        schema it ships.

    Raises
    ------
    ConfigError
        A name not of that form, a version lsst-alert-packet does not ship, a
        local file that does not exist or whose content is not the shipped
        schema of its version (alertpack encodes the shipped schemas only), or
        a URI scheme alertpack does not read.
    """
    text = str(uri).strip()
    name = text.rstrip("/").rsplit("/", 1)[-1]
    match = _SCHEMA_FILE_NAME.fullmatch(name)
    if match is None:
        raise ConfigError(
            f"schemaFile {text!r}: the schema version follows from the file name "
            f"lsst.vMAJOR_MINOR.alert.avsc, as lsst-alert-packet names its schemas (e.g. "
            f"{schema_file_uri(str(latest_version()))}); or set schemaVersion instead"
        )
    version = SchemaVersion(int(match[1]), int(match[2]))
    if version not in available_versions():
        raise ConfigError(
            f"schemaFile {text!r}: schema {version} is not shipped by the installed "
            f"lsst-alert-packet; choose one of {', '.join(map(str, available_versions()))}"
        )
    if text.startswith(_PACKAGE_SCHEMA_URI):
        if text != schema_file_uri(str(version)):
            raise ConfigError(
                f"schemaFile {text!r}: not where lsst-alert-packet keeps schema {version} "
                f"({schema_file_uri(str(version))})"
            )
        return str(version)
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if scheme is not None and scheme[1].lower() != "file":
        raise ConfigError(
            f"schemaFile {text!r}: alertpack reads {_PACKAGE_SCHEMA_URI}... URIs, file:// URIs "
            f"and paths, not {scheme[1]}://; the schemas are those lsst-alert-packet ships"
        )
    path = Path(text[len("file://"):] if scheme is not None else text)
    if not path.is_file():
        raise ConfigError(f"schemaFile {text!r}: no such file")
    shipped = load_schema(version).path
    if path.resolve() != shipped.resolve() and path.read_bytes() != shipped.read_bytes():
        raise ConfigError(
            f"schemaFile {text!r}: not the schema {version} lsst-alert-packet ships "
            f"({shipped}); alertpack encodes the shipped schemas only"
        )
    return str(version)


class ConfigAlias:
    """Another name of a config field: reading and setting it reads and sets that field.

    The value lives in the field alone (one source of truth); the alias
    converts on the way when its unit or form differs (``deliveryTimeout``
    in ms is ``kafkaDeliveryTimeout`` in s).

    Parameters
    ----------
    field : `str`
        The field that holds the value.
    dtype : `type`
        The alias's own value type (for ``NAME=VALUE`` text and the docs).
    doc : `str`
        What the alias means, in upstream's words.
    to_field, from_field : callable, optional
        Alias value -> field value, and back; identity by default.
    """

    def __init__(
        self,
        field: str,
        dtype: type,
        doc: str,
        *,
        to_field: Callable[[Any], Any] | None = None,
        from_field: Callable[[Any], Any] | None = None,
    ) -> None:
        self.field = field
        self.dtype = dtype
        self.doc = doc
        self.name = ""
        self._to_field = to_field or (lambda value: value)
        self._from_field = from_field or (lambda value: value)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return self._from_field(getattr(instance, self.field))

    def __set__(self, instance: Any, value: Any) -> None:
        setattr(instance, self.field, self._to_field(value))


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
        doc="Directory where the alert files are written (names: alertFileNaming); a relative "
        "path is taken from the working directory when writing (upstream: cwd/alerts).",
        default="alerts",
    )
    doWriteAlerts: pexConfig.Field[bool] = pexConfig.Field(
        dtype=bool,
        doc="Write alerts to Avro files under alertWriteLocation (upstream's default: False).",
        default=True,
    )
    alertFileNaming: pexConfig.ChoiceField[str] = pexConfig.ChoiceField(
        dtype=str,
        doc="How alert files are named.",
        allowed={
            "auto": "as the call asks: today's lsst.ap.association call {visit}_{detector}.avro, "
            "the seed's call (and the command line) {ccdVisitId}.avro",
            "visit_detector": "{visit}_{detector}.avro from the sources' visit and detector "
            "columns, as today's lsst.ap.association (no id bits needed)",
            "ccdVisitId": "{ccdVisitId}.avro from a ccdVisitId column or ccdExposureIdBits, as "
            "the seed's Task",
        },
        default="auto",
    )
    overwriteAlertFiles: pexConfig.Field[bool] = pexConfig.Field(
        dtype=bool,
        doc="Replace an existing alert file that holds other alerts (otherwise the run stops "
        "before writing; a file holding the same alerts, as a re-run writes, is kept as it is).",
        default=False,
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
        dtype=int,
        doc="Largest cutout edge (pixels) for bboxSize sizing. The default, upstream's, is the "
        "longest trail (10 deg/day over 30 s, 62.5 pixels of 0.2 arcsec) plus a 40-pixel PSF; "
        "three 102x102 planes keep an alert under Kafka's usual 1 MB message limit.",
        default=102,
        min=1,
    )
    cutouts: pexConfig.ListField[str] = pexConfig.ListField(
        dtype=str,
        doc=f"Cutouts to include in each alert, among {sorted(CUTOUT_FIELDS)}; the science "
        "cutout needs the science image passed to run().",
        default=["difference", "science", "template"],
    )
    cutoutCompression: pexConfig.ChoiceField[str] = pexConfig.ChoiceField(
        dtype=str,
        doc="How each cutout's FITS file is packed (alertpack.packets.stamp_compression).",
        allowed={
            "none": "plain FITS, Rubin's format",
            "gzip": "the FITS file gzipped, ZTF's convention (consumers gunzip it); pixels exact",
            "lossless": "FITS tile compression GZIP_2 (fits.open opens it); pixels exact",
            "lossy16": "FITS tile compression RICE_1, 16 levels per sigma, mask lossless "
            "(Rubin's lossy recipe); error at most sigma/32 per pixel",
        },
        default="none",
    )
    cutoutOrientation: pexConfig.ChoiceField[str] = pexConfig.ChoiceField(
        dtype=str,
        doc="Pixel frame of the cutouts (alertpack.packets.stamp_orientation).",
        allowed={
            "native": "the image's own pixel frame, as Rubin's cutouts",
            "north-up": "north up, east left: an exact flip where one suffices, else "
            "resampled with reproject (alertpack[northup])",
        },
        default="native",
    )
    historyWindowDays: pexConfig.Field[float] = pexConfig.RangeField(
        dtype=float,
        doc="Previous sources and forced sources older than this many days before the "
        "triggering source are left out of the alert.",
        default=365.0,
        min=0.0,
        inclusiveMin=False,
    )
    useAveragePsf: pexConfig.Field[bool] = pexConfig.Field(
        dtype=bool,
        doc="Give every cutout the image's average PSF instead of the PSF at its source. "
        "Images with a PSF model (an afw Exposure) give a PSF per source unless this is set; "
        "FITS files and CCDData carry one PSF image, which every cutout gets either way.",
        default=False,
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
        doc="Seconds librdkafka retries one message before it counts as failed "
        "(delivery.timeout.ms; alias deliveryTimeout, in ms, default upstream's 1200 ms).",
        default=1.2,
        min=0.0,
    )
    maxTimeout: pexConfig.Field[float] = pexConfig.RangeField(
        dtype=float,
        doc="Seconds to wait for the Kafka broker to answer the connection and topic check "
        "made before producing (as upstream's; kafkaCheck says what is checked).",
        default=15.0,
        min=0.0,
        inclusiveMin=False,
    )
    kafkaCheck: pexConfig.ChoiceField[str] = pexConfig.ChoiceField(
        dtype=str,
        doc="What is checked, within maxTimeout, when the producer is created (before any work).",
        allowed={
            "topic": "the broker answers and has kafkaTopic (as upstream's)",
            "connection": "the broker answers (for a broker that creates topics on first use)",
            "none": "nothing: a broker down at the start fails each alert into the "
            "failed-alert file, for alertpack replay",
        },
        default="topic",
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

    # today's lsst.ap.association names of the fields above (one value, two names)
    schemaFile = ConfigAlias(
        "schemaVersion", str,
        "Schema definition file URI for the avro alerts (upstream's; the version follows "
        "from the file name lsst.vMAJOR_MINOR.alert.avsc; alertpack encodes shipped schemas)",
        to_field=schema_version_of_file,
        from_field=schema_file_uri,
    )
    deliveryTimeout = ConfigAlias(
        "kafkaDeliveryTimeout", float,
        "Time the producer waits to deliver an alert, in milliseconds (upstream's)",
        to_field=lambda milliseconds: float(milliseconds) / 1000.0,
        from_field=lambda seconds: round(float(seconds) * 1000.0, 6),
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


#: alias name -> the `ConfigAlias` (its ``field`` holds the value)
ALIASES: dict[str, ConfigAlias] = {
    name: value for name, value in vars(PackageAlertsConfig).items()
    if isinstance(value, ConfigAlias)
}


def _aliases_of(config: Any) -> dict[str, ConfigAlias]:
    return {
        name: value for name, value in vars(type(config)).items()
        if isinstance(value, ConfigAlias)
    }


def apply_config_overrides(config: Any, overrides: list[str]) -> None:
    """Set ``NAME=VALUE`` pairs on a pex_config Config, converting to each field's type.

    ``NAME`` is a field or an alias of one (`ALIASES`, e.g. ``deliveryTimeout``).

    Raises
    ------
    ConfigError
        A pair that is not ``NAME=VALUE`` with a field's name, or a value the
        field refuses; the message starts with the pair or the field's name
        (the command line puts ``--config`` before it).
    """
    aliases = _aliases_of(config)
    for item in overrides:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or (name not in config._fields and name not in aliases):
            known = ", ".join(sorted([*config._fields, *aliases]))
            raise ConfigError(f"{item!r}: expected NAME=VALUE with NAME among {known}")
        if name in aliases:
            _apply_alias(config, aliases[name], text)
            continue
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


def _apply_alias(config: Any, alias: ConfigAlias, text: str) -> None:
    """Set an alias from its ``NAME=VALUE`` text (its own type and unit)."""
    try:
        value = alias.dtype(text.strip())
    except ValueError:
        raise ConfigError(
            f"{alias.name}: {text!r} is not a valid {alias.dtype.__name__}"
        ) from None
    try:
        setattr(config, alias.name, value)
    except ConfigError:
        raise  # its message names the alias and the value already
    except Exception as error:  # pex_config raises several types; show its message
        raise ConfigError(f"{alias.name}={text}: {_first_line(error)}") from None


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
    """The config as a pex_config override file: secrets masked by the one rule, aliases shown.

    The secret fields (`SECRET_FIELDS`) show as ``'********'``; everything
    else goes through `alertpack.redaction.redact` with the credentials of
    the addresses (`ADDRESS_FIELDS`): a user-info password or token, secret
    URL parameters and the base64 of a basic-authentication pair are masked
    wherever they appear. The text loads back with `load_config_file` (a
    masked secret loads as the mask, so pass secrets through the environment
    instead). Each alias follows as a comment with its value
    (``# config.deliveryTimeout=1200.0``), so that both names are shown and
    the value is loaded once.
    """
    shown = type(config)()
    shown.loadFromString(config.saveToString())
    for name in SECRET_FIELDS:
        if getattr(shown, name):
            setattr(shown, name, REDACTED)
    text = shown.saveToString()
    lines = ["", "# today's lsst.ap.association names of fields above (aliases: one value)"]
    for name, alias in _aliases_of(config).items():
        lines.append(f"# {alias.doc}; the same as {alias.field}")
        lines.append(f"# config.{name}={getattr(shown, name)!r}")
    secrets = [secret for name in ADDRESS_FIELDS for secret in url_secrets(getattr(config, name))]
    return redact(text.rstrip("\n") + "\n" + "\n".join(lines) + "\n", secrets)
