"""``alertpack validate``: check alerts against the schema, their ids, history and cutouts."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from alertpack.cli._files import report_file_problems
from alertpack.cli._kafka import (
    add_kafka_source_options,
    kafka_source_from_args,
    naming_kafka_flags,
)
from alertpack.cli._progress import Progress
from alertpack.cli._select import add_selection_options, selection_from_args
from alertpack.errors import CommandError, UnknownSchemaError
from alertpack.kafka.settings import ENV_SERVER, ENV_TOPIC

if TYPE_CHECKING:  # the read side loads when the command runs, not with --help
    from alertpack.schema import AlertSchema
    from alertpack.tools.inspection import AlertReport
    from alertpack.tools.reading import ReadReport
    from alertpack.tools.selection import Selection

HELP = "check alerts against schema, cutouts, ids (errors vs convention warnings)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack validate``."""
    parser.add_argument(
        "paths", nargs="*", metavar="PATH",
        help="Avro files or directories (or a topic: --server/--topic)",
    )
    parser.add_argument("--schema", default=None, help="schema version to check against")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail on warnings (departures from packaging conventions) too",
    )
    parser.add_argument(
        "--no-fitsverify", dest="fitsverify", action="store_false",
        help="do not check the cutouts with fitsverify (the FITS standard checker); "
        "they are still opened with astropy",
    )
    add_selection_options(parser)
    add_kafka_source_options(parser, required=False, reads_files=True)


def run(args: argparse.Namespace) -> int:
    """A line per problem (severity first); exit 1 on errors, or on warnings with --strict."""
    # the parser stays light: imported when the command runs
    from alertpack.schema import load_schema
    from alertpack.tools.fitsverify import FITSVERIFY_INSTALL_HINT, fitsverify_available
    from alertpack.tools.reading import ReadReport

    if args.paths and (args.server or args.topic):
        raise CommandError("give either alert files/directories or --server/--topic, not both")
    if not args.paths and not (args.server or os.environ.get(ENV_SERVER)):
        raise CommandError(
            "give alert files or directories, or a Kafka source with --server and --topic "
            f"(or ${ENV_SERVER} and ${ENV_TOPIC})"
        )
    try:
        schema = load_schema(args.schema) if args.schema else None
    except UnknownSchemaError as error:
        raise CommandError(str(error)) from None
    selection = selection_from_args(args)
    fitsverify = args.fitsverify
    if fitsverify and not fitsverify_available():
        print(
            "alertpack validate: fitsverify is not installed, so the cutouts are not checked "
            f"against the FITS standard (only opened with astropy); {FITSVERIFY_INSTALL_HINT}, "
            "or pass --no-fitsverify",
            file=sys.stderr,
        )
        fitsverify = False

    files = ReadReport()
    with naming_kafka_flags():
        counts = _validate(args, schema, selection, fitsverify, files)
    n_alerts, n_errors, n_warnings = counts[0], counts[2], counts[4]
    status = report_file_problems("validate", files, read_any=n_alerts > 0)
    if n_alerts == 0:
        if status == 0:
            found = "selected" if selection is not None else "found"
            print(f"alertpack validate: no alerts {found}", file=sys.stderr)
        return status or 1
    summary = _summary(*counts)
    if not fitsverify:
        summary += " (cutouts not checked with fitsverify)"
    if status:
        print(f"{summary} (readable files); {len(files.errors)} file problem(s)")
        return 1
    print(summary)
    return 1 if n_errors or (args.strict and n_warnings) else 0


def _validate(
    args: argparse.Namespace,
    schema: AlertSchema | None,
    selection: Selection | None,
    fitsverify: bool,
    files: ReadReport,
) -> tuple[int, int, int, int, int]:
    """Print the problems of every alert; (alerts, invalid, errors, warned, warnings)."""
    n_alerts = n_invalid = n_warned = n_errors = n_warnings = 0
    reports, total = _reports(args, schema, selection, fitsverify, files)
    with Progress(total, "alert", log_lines=False) as progress:
        for report in reports:
            n_alerts += 1
            progress.advance()
            errors, warnings = len(report.errors), len(report.warnings)
            n_errors += errors
            n_warnings += warnings
            n_invalid += bool(errors)
            n_warned += bool(warnings)
            for problem in report.problems:
                progress.print(f"{report.alert.label} id={report.alert.alert_id}: {problem}")
            if args.max is not None and n_alerts >= args.max:
                break
    sys.stdout.flush()
    return n_alerts, n_invalid, n_errors, n_warned, n_warnings


def _reports(
    args: argparse.Namespace,
    schema: AlertSchema | None,
    selection: Selection | None,
    fitsverify: bool,
    files: ReadReport,
) -> tuple[Iterator[AlertReport], int | None]:
    """The reports of the files or the topic, and how many alerts the bar expects."""
    # the parser stays light: imported when the command runs
    from alertpack.tools.consume import iter_kafka_alerts
    from alertpack.tools.inspection import validate_kafka, validate_paths
    from alertpack.tools.reading import ReadReport, iter_alert_files

    if args.paths:
        total = None
        if selection is None and args.max is None:
            # the block headers alone: the files are read again to be checked
            counts = [f.count_alerts() for f in iter_alert_files(args.paths, report=ReadReport())]
            total = None if None in counts else sum(c or 0 for c in counts)
        reports = validate_paths(
            args.paths, schema, report=files, selection=selection, fitsverify=fitsverify
        )
        return reports, total
    settings, options = kafka_source_from_args(args)
    alerts = iter_kafka_alerts(settings, selection=selection, **options)
    return validate_kafka(alerts, schema, fitsverify=fitsverify), None


def _summary(n_alerts: int, n_invalid: int, n_errors: int, n_warned: int, n_warnings: int) -> str:
    if not n_errors and not n_warnings:
        return f"all {n_alerts} alerts valid"
    verdict = (
        f"{n_invalid} of {n_alerts} alerts invalid ({n_errors} errors)"
        if n_errors
        else f"all {n_alerts} alerts valid"
    )
    if n_warnings:
        verdict += f"; {n_warnings} warnings in {n_warned} alerts"
    return verdict
