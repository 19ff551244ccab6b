"""Kafka settings and credentials, and the one rule that keeps secrets out of every text.

`KafkaSettings` (the producer's) and `ConsumerSettings` share
`ClientSettings`: where a client connects (``servers``, ``topic``) and how it
authenticates (``username``, ``password``, ``security_protocol``,
``sasl_mechanism``, ``extra`` librdkafka properties). Each comes from explicit
values (the constructor), from explicit values falling back to Rubin's
``AP_KAFKA_*`` environment variables (`~ClientSettings.resolve`), or from a
`~alertpack.config.PackageAlertsConfig` (`~ClientSettings.from_config`).

Secrets
-------
A credential is held in a `Secret`, which never prints its value (nor
pickles, nor shows in ``dataclasses.asdict``: a server string or registry URL
with user-info is kept as a `Secret` too). Every text that leaves the Kafka
package (a log line of ours or of librdkafka, an error, a failure reason, a
``repr``) goes through `redact`, the one rule of `alertpack.redaction`
(re-exported here): the known secret values (passwords, SASL secrets, any
librdkafka property whose name looks secret, `looks_secret`, the registry's
basic-authentication pair and its base64) and, known or not, the password or
token of any user-info, secret URL parameters and ``Authorization``
credentials are masked as ``********``.

The schema registry's credentials come from the registry URL's user-info,
from ``registry_username``/``registry_password``, or from
``AP_SCHEMA_REGISTRY_URL``, ``AP_SCHEMA_REGISTRY_USERNAME`` and
``AP_SCHEMA_REGISTRY_PASSWORD``.

librdkafka's own log lines go to `client_log`, the ``logger`` every client
alertpack creates is given (`new_client`): it knows the secrets of every
client alive now, producers and consumers alike, each registered when its
client is created and forgotten when it is closed, and passes the masked
lines to the ``alertpack.kafka.librdkafka`` logger at DEBUG level.
Importing this module configures no logger.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from alertpack.errors import AlertPackError, BrokerUnavailableError, ConfigError, StreamError
from alertpack.redaction import (
    REDACTED,
    Secret,
    basic_credentials,
    looks_secret,
    redact,
    url_secrets,
)

__all__ = [
    "CLIENT_LOGGER_NAME",
    "COMPRESSION_TYPES",
    "ENV_CONSUMER_PASSWORD",
    "ENV_CONSUMER_USERNAME",
    "ENV_PASSWORD",
    "ENV_REGISTRY_PASSWORD",
    "ENV_REGISTRY_URL",
    "ENV_REGISTRY_USERNAME",
    "ENV_SERVER",
    "ENV_TOPIC",
    "ENV_USERNAME",
    "REDACTED",
    "SECURITY_PROTOCOLS",
    "ClientLog",
    "ClientSettings",
    "ConsumerSettings",
    "KafkaSettings",
    "Secret",
    "client_log",
    "connection_failure",
    "error_text",
    "looks_secret",
    "new_client",
    "redact",
]

ENV_SERVER = "AP_KAFKA_SERVER"
ENV_TOPIC = "AP_KAFKA_TOPIC"
ENV_USERNAME = "AP_KAFKA_PRODUCER_USERNAME"
ENV_PASSWORD = "AP_KAFKA_PRODUCER_PASSWORD"
ENV_CONSUMER_USERNAME = "AP_KAFKA_CONSUMER_USERNAME"
ENV_CONSUMER_PASSWORD = "AP_KAFKA_CONSUMER_PASSWORD"
ENV_REGISTRY_URL = "AP_SCHEMA_REGISTRY_URL"
ENV_REGISTRY_USERNAME = "AP_SCHEMA_REGISTRY_USERNAME"
ENV_REGISTRY_PASSWORD = "AP_SCHEMA_REGISTRY_PASSWORD"

COMPRESSION_TYPES = ("none", "gzip", "snappy", "lz4", "zstd")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")

#: the logger librdkafka's own lines go to, masked and at DEBUG level
CLIENT_LOGGER_NAME = "alertpack.kafka.librdkafka"


def error_text(error: BaseException) -> str:
    """``NAME: description`` of a confluent-kafka exception (not yet redacted)."""
    inner = error.args[0] if error.args else error
    if hasattr(inner, "str") and hasattr(inner, "name"):
        return f"{inner.name()}: {inner.str()}"
    return str(inner)


# --- settings ----------------------------------------------------------------------------


def _unset(value: Any) -> bool:
    """None, a blank string or an empty `Secret` count as not given."""
    if isinstance(value, Secret):
        value = value.reveal()
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass(kw_only=True, repr=False)
class ClientSettings:
    """Where a Kafka client connects and how it authenticates: what producer and consumer share.

    Attributes
    ----------
    servers : `str` or `Secret`
        Bootstrap server(s), ``host:port[,host:port]``; one with user-info
        (``user:password@host:port``) is kept as a `Secret`.
    topic : `str`
        The topic written or read.
    username : `str` or `None`
        SASL username; `None` means no authentication.
    password : `Secret` or `None`
        SASL password (a plain `str` is wrapped); hidden in every printout.
    security_protocol : `str` or `None`
        ``SASL_SSL`` (default when a username is set), ``SASL_PLAINTEXT``,
        ``SSL`` or ``PLAINTEXT`` (default without a username; a SASL protocol
        without a username also falls back to ``PLAINTEXT``).
    sasl_mechanism : `str`
        SASL mechanism, ``SCRAM-SHA-512`` as Rubin's brokers use.
    extra : `dict`
        More librdkafka properties, applied last; the values of those whose
        name looks secret (`looks_secret`) are kept as `Secret`.
    """

    servers: str | Secret = ""
    topic: str = ""
    username: str | None = None
    password: Secret | None = None
    security_protocol: str | None = None
    sasl_mechanism: str = "SCRAM-SHA-512"
    extra: dict[str, Any] = field(default_factory=dict)

    #: settings field -> the environment variable `resolve` falls back to
    ENVIRONMENT: ClassVar[Mapping[str, str]] = {"servers": ENV_SERVER, "topic": ENV_TOPIC}
    #: settings field -> the `~alertpack.config.PackageAlertsConfig` field `from_config` reads
    CONFIG_FIELDS: ClassVar[Mapping[str, str]] = {
        "servers": "kafkaServer",
        "topic": "kafkaTopic",
        "security_protocol": "kafkaSecurityProtocol",
        "sasl_mechanism": "kafkaSaslMechanism",
    }

    def __post_init__(self) -> None:
        password: Any = self.password
        if isinstance(password, str):
            self.password = Secret(password) if password else None
        if isinstance(self.servers, str) and url_secrets(self.servers):
            # a credential in the server string: hidden from repr, asdict and pickling too
            self.servers = Secret(self.servers)
        self.extra = {
            key: Secret(value) if looks_secret(key) and isinstance(value, str) else value
            for key, value in self.extra.items()
        }
        self._validate()

    def _source(self, name: str) -> str:
        """Where field ``name`` is set: ``$VARIABLE or config field``."""
        sources = []
        if name in self.ENVIRONMENT:
            sources.append(f"${self.ENVIRONMENT[name]}")
        if name in self.CONFIG_FIELDS:
            sources.append(f"config {self.CONFIG_FIELDS[name]}")
        return " or ".join(sources) or name

    def _validate(self) -> None:
        if _unset(self.servers):
            raise ConfigError(
                f"no Kafka server given: set {self._source('servers')} to host:port[,host:port]"
            )
        if _unset(self.topic):
            raise ConfigError(f"no Kafka topic given: set {self._source('topic')}")
        if self.security_protocol is not None and (
            self.security_protocol not in SECURITY_PROTOCOLS
        ):
            raise ConfigError(
                f"Kafka security protocol {self.security_protocol!r} is not one of "
                f"{', '.join(SECURITY_PROTOCOLS)}"
            )
        if self.username and self.password is None:
            raise ConfigError(
                f"Kafka username {self.username!r} is set but no password: set "
                f"{self._source('password')}"
            )

    @classmethod
    def resolve(cls, **values: Any) -> Self:
        """Settings from explicit values, falling back to Rubin's environment variables.

        Parameters
        ----------
        **values
            Any settings field. `None` or a blank string counts as unset:
            the fields in `ENVIRONMENT` then come from their environment
            variable (``AP_KAFKA_SERVER``, ``AP_KAFKA_TOPIC`` and the
            producer's or the consumer's username and password); other
            fields keep their defaults.

        Raises
        ------
        ConfigError
            For an unknown name, a missing server or topic, or a bad value.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown Kafka setting(s) {unknown}; known: {', '.join(sorted(known))}"
            )
        given = {name: value for name, value in values.items() if not _unset(value)}
        for name, variable in cls.ENVIRONMENT.items():
            from_environment = os.environ.get(variable, "").strip()
            if name not in given and from_environment:
                given[name] = from_environment
        return cls(**given)

    @classmethod
    def from_config(cls, config: object, **overrides: Any) -> Self:
        """Settings from a `~alertpack.config.PackageAlertsConfig` (its ``kafka*`` fields).

        Parameters
        ----------
        config : `~alertpack.config.PackageAlertsConfig`
            The fields named in `CONFIG_FIELDS` are used when present; unset
            ones fall back to the environment as in `resolve`.
        **overrides
            Settings fields that win over the config.
        """
        values = {
            ours: getattr(config, theirs)
            for ours, theirs in cls.CONFIG_FIELDS.items()
            if hasattr(config, theirs)
        }
        values.update(overrides)
        return cls.resolve(**values)

    @property
    def effective_security_protocol(self) -> str:
        """The protocol actually used: SASL needs a username, else PLAINTEXT."""
        if self.username:
            return self.security_protocol or "SASL_SSL"
        if self.security_protocol in (None, "SASL_SSL", "SASL_PLAINTEXT"):
            return "PLAINTEXT"
        return self.security_protocol

    def _client_config(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        """``properties`` with the servers, security protocol, SASL credentials and `extra`.

        The result holds secrets in clear: hand it to the Kafka client only.
        """
        protocol = self.effective_security_protocol
        config = {
            "bootstrap.servers": _revealed(self.servers), **properties,
            "security.protocol": protocol,
        }
        if protocol.startswith("SASL") and self.password is not None:
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.username
            config["sasl.password"] = self.password.reveal()
        config.update(
            {k: v.reveal() if isinstance(v, Secret) else v for k, v in self.extra.items()}
        )
        return config

    def _addresses(self) -> list[str]:
        """Texts that may hold ``user:password@`` user-info (in clear)."""
        return [_revealed(self.servers)]

    def _held_secrets(self) -> list[str]:
        """The secret values held in fields (in clear)."""
        held = [self.password, *self.extra.values()]
        return [value.reveal() for value in held if isinstance(value, Secret)]

    def secrets(self) -> list[str]:
        """Every secret value of these settings, in clear: what `redact` masks."""
        found = self._held_secrets()
        for address in self._addresses():
            found += url_secrets(address)
        return [secret for secret in found if secret]

    def redact(self, text: object) -> str:
        """``text`` with these settings' secrets and any ``user:password@`` masked."""
        return redact(text, self.secrets())

    @property
    def shown_servers(self) -> str:
        """``servers`` as it may be shown: without the password of any user-info."""
        return self.redact(_revealed(self.servers))

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Secret) and url_secrets(value.reveal()):
                value = value.reveal()  # a URL: shown with its password masked
            if isinstance(value, str):
                value = self.redact(value)  # before repr() escapes what it would match
            shown.append(f"{f.name}={value!r}")
        return self.redact(f"{type(self).__name__}({', '.join(shown)})")

    __str__ = __repr__


def _revealed(value: str | Secret | None) -> str:
    """A field that may be a `Secret`, in clear (for the client only), '' for None."""
    if isinstance(value, Secret):
        return value.reveal()
    return value or ""


@dataclass(kw_only=True, repr=False)
class KafkaSettings(ClientSettings):
    """Where and how alerts are produced: the `ClientSettings`, and the producer's own.

    Attributes
    ----------
    compression_type : `str`
        ``none``, ``gzip``, ``snappy``, ``lz4`` or ``zstd``.
    linger_ms : `float`
        How long the producer waits to fill a batch, in milliseconds.
    batch_size : `int`
        Largest batch in bytes.
    queue_buffering_max_messages : `int`
        Local queue size; a full queue makes `AlertProducer.send` wait, not fail.
    message_max_bytes : `int`
        Largest message (wire header + alert) the producer sends; a larger
        alert fails alone with a clear reason.
    flush_timeout : `float`
        Seconds the end-of-run flush may take; what is still undelivered then
        goes to the failed-alerts file.
    delivery_timeout : `float`
        Seconds librdkafka keeps retrying one message (``message.timeout.ms``).
    registry_url : `str`, `Secret` or `None`
        Confluent schema registry (``https://user:password@host:port`` for
        basic authentication; such a URL is kept as a `Secret`); when set,
        the alert schema is registered under ``{topic}-value`` and the id it
        returns goes on the wire instead of Rubin's ``major*100+minor``.
    registry_username : `str` or `None`
        Registry basic-authentication user (instead of user-info in the URL).
    registry_password : `Secret` or `None`
        Its password (a plain `str` is wrapped).

    Notes
    -----
    `resolve` falls back to ``AP_KAFKA_SERVER``, ``AP_KAFKA_TOPIC``,
    ``AP_KAFKA_PRODUCER_USERNAME``, ``AP_KAFKA_PRODUCER_PASSWORD``,
    ``AP_SCHEMA_REGISTRY_URL``, ``AP_SCHEMA_REGISTRY_USERNAME`` and
    ``AP_SCHEMA_REGISTRY_PASSWORD``.
    """

    compression_type: str = "lz4"
    linger_ms: float = 5.0
    batch_size: int = 1_000_000
    queue_buffering_max_messages: int = 100_000
    message_max_bytes: int = 10_000_000
    flush_timeout: float = 30.0
    delivery_timeout: float = 30.0
    registry_url: str | Secret | None = None
    registry_username: str | None = None
    registry_password: Secret | None = None

    ENVIRONMENT: ClassVar[Mapping[str, str]] = {
        **ClientSettings.ENVIRONMENT,
        "username": ENV_USERNAME,
        "password": ENV_PASSWORD,
        "registry_url": ENV_REGISTRY_URL,
        "registry_username": ENV_REGISTRY_USERNAME,
        "registry_password": ENV_REGISTRY_PASSWORD,
    }
    CONFIG_FIELDS: ClassVar[Mapping[str, str]] = {
        **ClientSettings.CONFIG_FIELDS,
        "username": "kafkaUsername",
        "password": "kafkaPassword",
        "compression_type": "kafkaCompression",
        "linger_ms": "kafkaLingerMs",
        "batch_size": "kafkaBatchSize",
        "queue_buffering_max_messages": "kafkaQueueMaxMessages",
        "message_max_bytes": "kafkaMessageMaxBytes",
        "flush_timeout": "kafkaFlushTimeout",
        "delivery_timeout": "kafkaDeliveryTimeout",
        "registry_url": "schemaRegistryUrl",
    }

    def __post_init__(self) -> None:
        if isinstance(self.registry_url, str) and url_secrets(self.registry_url):
            self.registry_url = Secret(self.registry_url)
        password: Any = self.registry_password
        if isinstance(password, str):
            self.registry_password = Secret(password) if password else None
        super().__post_init__()

    def _validate(self) -> None:
        super()._validate()
        if self.compression_type not in COMPRESSION_TYPES:
            raise ConfigError(
                f"Kafka compression {self.compression_type!r} is not one of "
                f"{', '.join(COMPRESSION_TYPES)}"
            )
        for name in ("linger_ms", "flush_timeout", "delivery_timeout"):
            if not float(getattr(self, name)) >= 0:
                raise ConfigError(f"Kafka setting {name}={getattr(self, name)!r} must be >= 0")
        for name in ("batch_size", "queue_buffering_max_messages", "message_max_bytes"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"Kafka setting {name}={getattr(self, name)!r} must be >= 1")
        if self.registry_username and self.registry_password is None:
            raise ConfigError(
                f"schema registry username {self.registry_username!r} is set but no password: "
                f"set ${ENV_REGISTRY_PASSWORD}"
            )

    def _addresses(self) -> list[str]:
        return [*super()._addresses(), _revealed(self.registry_url)]

    def _held_secrets(self) -> list[str]:
        held = super()._held_secrets()
        if self.registry_password is not None:
            password = self.registry_password.reveal()
            held += [password, basic_credentials(self.registry_username or "", password)]
        return held

    @property
    def registry_credentials(self) -> tuple[str, Secret] | None:
        """The registry's basic-authentication pair, when given apart from the URL."""
        if self.registry_password is None:
            return None
        return self.registry_username or "", self.registry_password

    def client_config(self) -> dict[str, Any]:
        """librdkafka properties of an idempotent producer with these settings.

        The result holds the password in clear: hand it to the Kafka client
        only, never log or store it.
        """
        return self._client_config(
            {
                "client.id": "alertpack",
                "enable.idempotence": True,
                "acks": "all",
                "compression.type": self.compression_type,
                "linger.ms": float(self.linger_ms),
                "batch.size": int(self.batch_size),
                "queue.buffering.max.messages": int(self.queue_buffering_max_messages),
                "message.max.bytes": int(self.message_max_bytes),
                "message.timeout.ms": max(1, round(self.delivery_timeout * 1000)),
            }
        )


@dataclass(kw_only=True, repr=False)
class ConsumerSettings(ClientSettings):
    """Where and how alerts are read: the `ClientSettings` of a consumer.

    Notes
    -----
    `resolve` falls back to ``AP_KAFKA_SERVER``, ``AP_KAFKA_TOPIC``,
    ``AP_KAFKA_CONSUMER_USERNAME`` and ``AP_KAFKA_CONSUMER_PASSWORD``.
    `from_config` takes the server, topic, security protocol and SASL
    mechanism of a `~alertpack.config.PackageAlertsConfig`, not its
    credentials, which are the producer's.
    """

    ENVIRONMENT: ClassVar[Mapping[str, str]] = {
        **ClientSettings.ENVIRONMENT,
        "username": ENV_CONSUMER_USERNAME,
        "password": ENV_CONSUMER_PASSWORD,
    }

    def client_config(
        self, *, group: str | None, from_beginning: bool, auto_commit: bool
    ) -> dict[str, Any]:
        """librdkafka properties of a consumer with these settings.

        Parameters
        ----------
        group : `str` or `None`
            Consumer group to join; `None` for a private one that commits nothing.
        from_beginning : `bool`
            Start where the group has no offset at the earliest one, else at the end.
        auto_commit : `bool`
            Commit stored offsets in the background (with a group only).

        The result holds the password in clear: hand it to the Kafka client only.
        """
        config = self._client_config(
            {
                # assign() still needs a group id; a private one commits nothing anywhere
                "group.id": group or f"alertpack-consume-{os.getpid()}-{time.monotonic_ns()}",
                # an offset is stored only once its alert was handed out
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest" if from_beginning else "latest",
                "enable.partition.eof": False,
                # Tansu and small brokers make group joins slow; keep sessions short
                "session.timeout.ms": 6000,
                "client.id": "alertpack-consume",
            }
        )
        # what is committed decides what the group reads again: `extra` cannot change it
        config["enable.auto.commit"] = auto_commit and group is not None
        return config


# --- the connection check ------------------------------------------------------------------

# client errors after which waiting longer cannot help: the broker refused what this client
# offers (SASL mechanism or credentials, a TLS handshake), or librdkafka itself suspects the
# security protocol ("might be caused by incorrect security.protocol configuration")
_REFUSED_CODES = ("_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED", "_SSL")
_REFUSED_WORDS = (
    "security.protocol", "SSL handshake", "SASL authentication", "mechanism handshake failed",
)


def connection_failure(
    settings: ClientSettings,
    errors_seen: Iterable[tuple[str, str]],
    last_error: str,
    timeout: float,
    *,
    timed_out: bool,
) -> AlertPackError | None:
    """The error a connection check without an answer yet should raise, or `None` to wait on.

    Parameters
    ----------
    settings : `ClientSettings`
        The client's settings (the protocol, servers and credentials named).
    errors_seen : iterable of ``(code name, text)``
        What the client's error callback reported so far (texts masked).
    last_error : `str`
        The last metadata request's failure (not yet masked).
    timeout : `float`
        The check's bound, seconds (config ``maxTimeout``).
    timed_out : `bool`
        Whether the bound is reached.

    Returns
    -------
    error : `StreamError`, `BrokerUnavailableError` or `None`
        `StreamError` at once when the broker refused the handshake (no wait
        makes that work); `BrokerUnavailableError` once ``timed_out`` (a
        broker down may come back: the executor retries it); `None` otherwise.
        Each message names the servers and the security protocol in use.
    """
    protocol = settings.effective_security_protocol
    servers = settings.shown_servers
    seen = list(errors_seen)
    for code, text in seen:
        if code in _REFUSED_CODES or any(word in text for word in _REFUSED_WORDS):
            return StreamError(
                f"Kafka at {servers} refused the connection of this {protocol} client: {text}; "
                + _protocol_hint(settings)
            )
    if not timed_out:
        return None
    heard = seen[-1][1] if seen else settings.redact(last_error)
    if not seen and protocol in ("SSL", "SASL_SSL"):
        hint = (
            f"the connection was accepted but no TLS handshake answered: a broker listening in "
            f"PLAINTEXT stays silent to a {protocol} client. " + _protocol_hint(settings)
        )
    else:
        hint = "check the address, that the broker is up, and " + _protocol_hint(settings)
    return BrokerUnavailableError(
        f"no answer from Kafka at {servers} within {timeout:g} s (config maxTimeout) with "
        f"security protocol {protocol} ({heard}); {hint}"
    )


def _protocol_hint(settings: ClientSettings) -> str:
    """What to change when the security protocol may be the wrong one."""
    protocol = settings.effective_security_protocol
    if protocol.startswith("SASL"):
        return (
            f"the security protocol: this client uses {protocol} with SASL "
            f"{settings.sasl_mechanism} as user {settings.username!r}; a broker without "
            f"authentication needs PLAINTEXT (unset the username: "
            f"{settings._source('username')}), one without TLS SASL_PLAINTEXT "
            "(kafkaSecurityProtocol), and check the credentials and kafkaSaslMechanism"
        )
    return (
        f"the security protocol: this client uses {protocol}; a broker with TLS needs SSL or "
        "SASL_SSL, one with authentication a username and password "
        f"({settings._source('username')})"
    )


# --- librdkafka's log, and creating clients ----------------------------------------------


class ClientLog:
    """The ``logger`` of every Kafka client: it masks the secrets of every client alive.

    librdkafka's lines are demoted to DEBUG: it repeats a connection failure
    at every retry, and each distinct client error is reported once as a
    warning by the producer, or raised by the consumer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens = itertools.count()
        self._secrets: dict[int, tuple[str, ...]] = {}

    def register(self, settings: ClientSettings) -> int:
        """Mask ``settings``' secrets from now on; returns the token to `forget` them with."""
        with self._lock:
            token = next(self._tokens)
            self._secrets[token] = tuple(settings.secrets())
        return token

    def forget(self, token: int) -> None:
        """Stop masking the secrets registered as ``token`` (its client is closed)."""
        with self._lock:
            self._secrets.pop(token, None)

    def redact(self, text: object) -> str:
        """``text`` with the secrets of every live client masked (and any user-info)."""
        with self._lock:
            secrets = [secret for held in self._secrets.values() for secret in held]
        return redact(text, secrets)

    def log(self, level: int, msg: str, *args: Any) -> None:
        """What confluent-kafka calls for each librdkafka line (the `logging.Logger` method)."""
        text = msg % args if args else msg
        logging.getLogger(CLIENT_LOGGER_NAME).debug("%s", self.redact(text))


class _ClientLogger:
    """The ``logger`` one client is given: `client_log`, and that client's own listener.

    The listener sees the client's lines unmasked, in this process only
    (the consumer looks in them for librdkafka's "increase
    receive.message.max.bytes", which comes as a log line, not an error).
    """

    def __init__(self, log: ClientLog, on_line: Callable[[str], None]) -> None:
        self._log = log
        self._on_line = on_line

    def log(self, level: int, msg: str, *args: Any) -> None:
        self._log.log(level, msg, *args)
        self._on_line(msg % args if args else msg)


#: the one librdkafka logger, given to every client alertpack creates
client_log = ClientLog()


def new_client[Client](
    factory: Callable[[dict[str, Any]], Client],
    settings: ClientSettings,
    config: dict[str, Any],
    *,
    kind: str,
    on_line: Callable[[str], None] | None = None,
) -> tuple[Client, int]:
    """A confluent-kafka client ``factory(config)`` logging to `client_log`.

    Parameters
    ----------
    factory : callable
        ``confluent_kafka.Producer`` or ``confluent_kafka.Consumer``.
    settings : `ClientSettings`
        The settings ``config`` was made from: their secrets are masked in
        every librdkafka line until the client is forgotten.
    config : `dict`
        librdkafka properties (``logger`` is set here).
    kind : `str`
        ``producer`` or ``consumer``, for the error message.
    on_line : callable, optional
        Also called with each of this client's librdkafka lines.

    Returns
    -------
    client, token
        The client, and the token to pass to ``client_log.forget`` once it is closed.

    Raises
    ------
    ConfigError
        When librdkafka refuses the properties.
    """
    # confluent_kafka (~0.06 s): every command's parser imports these settings
    # (alertpack.cli._kafka); only a client needs it
    from confluent_kafka import KafkaException

    token = client_log.register(settings)
    try:
        # librdkafka's own lines go to the masked logger, not raw to stderr
        logger = client_log if on_line is None else _ClientLogger(client_log, on_line)
        return factory({**config, "logger": logger}), token
    except (KafkaException, ValueError, TypeError) as error:
        client_log.forget(token)
        raise ConfigError(
            f"cannot create a Kafka {kind} with these settings: "
            f"{settings.redact(error_text(error))}"
        ) from None
