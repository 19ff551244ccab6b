"""Every exception alertpack raises on purpose: one tree under `AlertPackError`.

Each message names what is wrong (file, HDU, column, value, setting) and how
to fix it; the command line prints it as one line.

The tree has two branches, which the detector executor treats differently:

- `TransientError`: a service that is unreachable now (a database, a Kafka
  broker) and may answer later. The executor retries the job with backoff.
- `PermanentError`: the input, the configuration or the output location is
  wrong; the same job fails the same way again, so it is not retried.

::

    AlertPackError
    ├── PermanentError
    │   ├── InputError (ValueError)        bad input data
    │   │   ├── CatalogFileError           a catalog file that cannot be read
    │   │   ├── ImageInputError            an image that cannot be cut
    │   │   ├── LimitExceededError         input beyond a documented limit (alertpack.limits)
    │   │   ├── AlertDecodeError           bytes that are not an alert
    │   │   ├── CutoutDecodeError          cutout bytes that are no stamp, or too large decoded
    │   │   ├── FailedAlertFileError       not a readable failed-alerts file
    │   │   ├── UnknownSchemaError         a schema version or id not shipped
    │   │   ├── WireFormatError            not the Confluent wire format
    │   │   └── UnsupportedSchemaError     a schema the encoder cannot handle
    │   ├── ConfigError (ValueError)       a setting that cannot be used
    │   │   └── SelectionError             a selection expression that cannot be used
    │   ├── CommandError                   a command line that cannot run as given
    │   ├── OutputError (OSError)          an output location that cannot be written
    │   ├── StreamError                    Kafka or the registry refuses the settings
    │   ├── SchedulerError                 no Dask scheduler to run on
    │   └── LocalBrokerError               the local test broker cannot start
    ├── TransientError
    │   ├── BrokerUnavailableError         no Kafka broker answers
    │   └── ApdbConnectionError            the APDB's database does not answer
    └── ApdbError                          (with InputError or TransientError)
        ├── ApdbConfigError, ApdbSchemaError, ApdbCredentialsError (permanent)
        └── ApdbConnectionError (transient)

`Terminated` is not an error: it is SIGTERM on the orderly path of Ctrl-C.
"""

from __future__ import annotations

__all__ = [
    "AlertDecodeError",
    "AlertPackError",
    "ApdbConfigError",
    "ApdbConnectionError",
    "ApdbCredentialsError",
    "ApdbError",
    "ApdbSchemaError",
    "BrokerUnavailableError",
    "CatalogFileError",
    "CommandError",
    "ConfigError",
    "CutoutDecodeError",
    "FailedAlertFileError",
    "ImageInputError",
    "InputError",
    "LimitExceededError",
    "LocalBrokerError",
    "OutputError",
    "PermanentError",
    "SchedulerError",
    "SelectionError",
    "StreamError",
    "Terminated",
    "TransientError",
    "UnknownSchemaError",
    "UnsupportedSchemaError",
    "WireFormatError",
]


class AlertPackError(Exception):
    """Base of alertpack's user-facing errors; the CLI prints these as one line."""


class PermanentError(AlertPackError):
    """An error that the same call raises again: fix the input, setting or output."""


class TransientError(AlertPackError):
    """A service that does not answer now and may later: worth retrying with backoff."""


# --- permanent: input ---------------------------------------------------------


class InputError(PermanentError, ValueError):
    """Bad input data: a catalog column, an image, a file or a value."""


class CatalogFileError(InputError):
    """A catalog file that cannot be read; the message names the file and why."""


class ImageInputError(InputError):
    """An image that cannot be used for cutouts; the message says which and why."""


class LimitExceededError(InputError):
    """Input that declares, or inflates to, more than a limit of `alertpack.limits` allows.

    A decompression bomb, a catalog of 10**8 rows, a cutout of 15000 x 15000
    pixels, a SIP order of 400: refused before the memory or time is spent;
    the message names the input, the limit and how to raise it.
    """


class AlertDecodeError(InputError):
    """Bytes (a Kafka message, a file's record) that are not a decodable alert."""


class CutoutDecodeError(InputError):
    """Cutout bytes that are not a FITS stamp of any variant, or that decode past the limit."""


class FailedAlertFileError(InputError):
    """A file given to replay is not a readable failed-alerts file."""


class UnknownSchemaError(InputError):
    """A schema version or id that lsst-alert-packet does not ship."""


class WireFormatError(InputError):
    """Bytes that are not a Confluent wire-format message (magic byte, schema id)."""


class UnsupportedSchemaError(InputError):
    """An Avro schema construct the columnar encoder does not handle."""


# --- permanent: settings, command line, output, services refusing ------------


class ConfigError(PermanentError, ValueError):
    """A setting (config field, environment variable, option value) that cannot be used."""


class SelectionError(ConfigError):
    """A selection expression (``--where``, the browse filter) that does not parse or cannot run."""


class CommandError(PermanentError):
    """A command-line invocation that cannot be carried out as given (raised by `alertpack.cli`)."""


class OutputError(PermanentError, OSError):
    """An output location that cannot be written: missing, forbidden, not a directory, full."""


class StreamError(PermanentError):
    """Kafka (or the schema registry) cannot be used as configured."""


class SchedulerError(PermanentError):
    """The Dask scheduler cannot be reached or Dask is not installed."""


class LocalBrokerError(PermanentError):
    """The local test broker (``alertpack broker``) cannot start: not installed, port taken."""


# --- transient -----------------------------------------------------------------


class BrokerUnavailableError(TransientError):
    """No Kafka broker answers at the configured address (yet)."""


# --- the APDB: one family across both branches ---------------------------------


class ApdbError(AlertPackError):
    """The APDB cannot give the inputs asked for."""


class ApdbConfigError(ApdbError, InputError):
    """The APDB config file is missing or is not an APDB config."""


class ApdbSchemaError(ApdbError, InputError):
    """The APDB's tables cannot fill the chosen alert schema, or it has none."""


class ApdbCredentialsError(ApdbError, InputError):
    """The database refused the credentials (or none were found); retrying cannot help."""


class ApdbConnectionError(ApdbError, TransientError):
    """The APDB's database cannot be reached now."""


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM, as a batch system sends) on the orderly path of Ctrl-C.

    A `KeyboardInterrupt`, so every clean-up done for Ctrl-C is done for it
    too; the command line exits with ``128 + signum``.

    Parameters
    ----------
    signum : `int`
        The signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum
