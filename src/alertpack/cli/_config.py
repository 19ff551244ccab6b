"""Command-line options that build a `PackageAlertsConfig`, shared by package and config."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from alertpack.errors import CommandError, ConfigError, UnknownSchemaError

if TYPE_CHECKING:
    from alertpack.config import PackageAlertsConfig

__all__ = ["add_config_options", "config_from_args"]


def add_config_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--config-file``, ``-c NAME=VALUE``, ``--schema``, ``-o`` and the cutout options.

    To a parser or an argument group.
    """
    parser.add_argument(
        "-o", "--output", default=None, metavar="DIR",
        help="alert directory (config alertWriteLocation; default: alerts)",
    )
    parser.add_argument(
        "--schema", default=None, metavar="VERSION",
        help="alert schema version, e.g. 9.0 (default: the latest lsst-alert-packet ships)",
    )
    parser.add_argument(
        "--cutout-compression", default=None,
        choices=("none", "gzip", "lossless", "lossy16"),
        help="pack each cutout: none (plain FITS, Rubin's), gzip (ZTF's: consumers gunzip), "
        "lossless or lossy16 (FITS tile compression; config cutoutCompression)",
    )
    parser.add_argument(
        "--cutout-orientation", default=None, choices=("native", "north-up"),
        help="cutouts in the image's pixel frame (native, Rubin's) or north up, east left "
        "(config cutoutOrientation)",
    )
    parser.add_argument(
        "--config-file", "-C", action="append", default=[], metavar="FILE",
        help="a pex_config override file (`config.cutoutSize = 40`), as for pipetask; "
        "repeatable, applied in order before -c",
    )
    parser.add_argument(
        "--config", "-c", action="append", default=[], metavar="NAME=VALUE",
        help="set a PackageAlertsConfig field (repeatable; applied last)",
    )


def config_from_args(args: argparse.Namespace, *, produce: bool = False) -> PackageAlertsConfig:
    """The validated config: defaults, then config files, -o/--schema, then ``-c`` pairs."""
    # lsst.pex.config (~0.1 s) when a command runs: the parser imports this module
    from alertpack.config import PackageAlertsConfig, apply_config_overrides, load_config_file

    config = PackageAlertsConfig()
    for path in args.config_file:
        try:
            load_config_file(config, path)
        except ConfigError as error:  # the message starts with the file
            raise CommandError(f"--config-file {error}") from None
    if args.output is not None:
        config.alertWriteLocation = args.output
    if args.schema is not None:
        from alertpack.schema import load_schema  # the parser stays light, as above

        try:
            load_schema(args.schema)
        except UnknownSchemaError as error:
            raise CommandError(f"--schema {args.schema}: {error}") from None
        try:
            apply_config_overrides(config, [f"schemaVersion={args.schema}"])
        except ConfigError as error:
            raise CommandError(f"--schema {error}") from None
    if produce:
        config.doProduceAlerts = True
    if args.cutout_compression is not None:
        config.cutoutCompression = args.cutout_compression
    if args.cutout_orientation is not None:
        config.cutoutOrientation = args.cutout_orientation
    try:
        apply_config_overrides(config, args.config)
    except ConfigError as error:  # the message starts with the pair or the field
        raise CommandError(f"--config {error}") from None
    try:
        config.validate()
    except Exception as error:
        raise CommandError(f"invalid configuration: {error}") from None
    return config
