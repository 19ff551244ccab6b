"""The ``alertpack`` command line.

Argument definitions live here and stay import-light so that ``alertpack
--help`` starts fast; each command's work is done by a ``run_<command>``
function in the module that owns that concern, imported only when the
command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from alertpack.errors import AlertPackError

__all__ = ["main"]

# command name -> (module, function) doing its work
_HANDLERS = {
    "package": ("alertpack.packaging", "run_package_command"),
    "consume": ("alertpack.consume", "run_consume_command"),
    "replay": ("alertpack.sinks.kafka", "run_replay_command"),
    "inspect": ("alertpack.inspection", "run_inspect_command"),
    "validate": ("alertpack.inspection", "run_validate_command"),
    "show": ("alertpack.plotting", "run_show_command"),
    "to-parquet": ("alertpack.parquet", "run_to_parquet_command"),
    "schemas": ("alertpack.schema", "run_schemas_command"),
}


def _add_kafka_source_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    group = parser.add_argument_group("Kafka")
    group.add_argument(
        "--server",
        required=required,
        help="bootstrap server(s), host:port[,host:port]; default $AP_KAFKA_SERVER",
    )
    group.add_argument(
        "--topic", required=required, help="topic to read; default $AP_KAFKA_TOPIC"
    )
    group.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the earliest offset instead of only new messages",
    )
    group.add_argument(
        "--max", type=int, default=None, metavar="N",
        help="stop after N alerts (for inspect, also when reading files)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="stop when no message arrived for this long (default 10)",
    )
    group.add_argument("--group", default=None, help="consumer group id (default: none, assign)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``alertpack`` command."""
    parser = argparse.ArgumentParser(
        prog="alertpack",
        description="Package survey detections into Rubin alert packets, deliver and inspect them.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    package = commands.add_parser(
        "package", help="run the PackageAlertsTask on the built-in sample or on a visit's files"
    )
    package.add_argument(
        "--sample", action="store_true", help="package the built-in sample visit"
    )
    package.add_argument(
        "--n-sources", type=int, default=None, help="sample: number of DiaSources"
    )
    package.add_argument(
        "--image-size",
        default=None,
        metavar="NXxNY",
        help="sample: image size in pixels, e.g. 2048x2048 (default: one LSST detector)",
    )
    package.add_argument("--seed", type=int, default=None, help="sample: random seed")
    package.add_argument(
        "--detectors", type=int, default=1,
        help="sample: package a visit of this many detectors (189 for a full LSST visit), "
        "each simulated and packaged in a worker process",
    )
    package.add_argument(
        "--workers", type=int, default=None, help="processes for --detectors (default: all cores)"
    )
    package.add_argument(
        "--visit-dir",
        metavar="DIR",
        help="a visit directory: diaSourceCat.parquet, diaObjectCat.parquet, "
        "diaSrcHistory.parquet, diaForcedSources.parquet, ssSource.parquet, mpc_orbits.parquet, "
        "difference.fits, template.fits, science.fits (those present are used; options below "
        "override single files)",
    )
    package.add_argument("--sources", help="DiaSource catalog (Parquet)")
    package.add_argument("--objects", help="DiaObject catalog (Parquet)")
    package.add_argument("--history", help="previous DiaSources (Parquet)")
    package.add_argument("--forced", help="previous DiaForcedSources (Parquet)")
    package.add_argument("--ss-source", help="ssSource rows of asteroid DiaSources (Parquet)")
    package.add_argument("--mpc-orbits", help="orbits of those asteroids (Parquet)")
    package.add_argument(
        "--id-bits", type=int, default=None,
        help="ccdExposureIdBits: bits of the exposure id packed into diaSourceId",
    )
    package.add_argument("--difference", help="difference image (FITS)")
    package.add_argument("--template", help="template image (FITS)")
    package.add_argument("--science", help="science image (FITS)")
    package.add_argument(
        "-o", "--output", default=None, help="alert directory (config alertWriteLocation)"
    )
    package.add_argument("--schema", default=None, help="alert schema version, e.g. 11.1")
    package.add_argument(
        "--config", "-c", action="append", default=[], metavar="NAME=VALUE",
        help="set a PackageAlertsConfig field (repeatable)",
    )
    package.add_argument("--produce", action="store_true", help="also send alerts to Kafka")

    consume = commands.add_parser("consume", help="read alerts from a Kafka topic")
    _add_kafka_source_options(consume, required=False)
    consume.add_argument("--out", default=None, metavar="DIR", help="write alerts to Avro files")

    replay = commands.add_parser("replay", help="send failed alerts again")
    replay.add_argument("paths", nargs="+", metavar="FILE|DIR", help="failed-alert files")
    replay.add_argument("--server", default=None, help="bootstrap server(s)")
    replay.add_argument("--topic", default=None, help="topic (default: the one recorded)")
    replay.add_argument("--timeout", type=float, default=30.0, help="flush timeout, seconds")

    inspect = commands.add_parser("inspect", help="one row per alert: ids, band, time, S/N, ...")
    inspect.add_argument("paths", nargs="*", metavar="PATH", help="Avro files or directories")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    _add_kafka_source_options(inspect, required=False)

    validate = commands.add_parser("validate", help="check alerts against schema, cutouts, ids")
    validate.add_argument("paths", nargs="+", metavar="PATH", help="Avro files or directories")
    validate.add_argument("--schema", default=None, help="schema version to check against")

    show = commands.add_parser("show", help="plot an alert's cutouts and light curve")
    show.add_argument("path", metavar="ALERT_FILE")
    show.add_argument("--id", type=int, default=None, help="diaSourceId/alertId (default: first)")
    show.add_argument("-o", "--output", required=True, help="output image, e.g. alert.png")

    to_parquet = commands.add_parser("to-parquet", help="flatten alerts to Parquet tables")
    to_parquet.add_argument("paths", nargs="+", metavar="PATH", help="Avro files or directories")
    to_parquet.add_argument("-o", "--output", required=True, metavar="DIR")

    commands.add_parser("schemas", help="list the alert schema versions and their wire ids")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alertpack`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from alertpack import __version__

        print(__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    module_name, function_name = _HANDLERS[args.command]
    handler = getattr(importlib.import_module(module_name), function_name)
    try:
        return int(handler(args) or 0)
    except AlertPackError as error:
        print(f"alertpack {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader (e.g. `| head`) closed early: not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
