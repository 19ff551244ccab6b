"""``alertpack validate``: check alerts against the schema, their ids, history and cutouts."""

from __future__ import annotations

import argparse
import sys

from alertpack.cli._files import report_file_problems, say
from alertpack.errors import CommandError, UnknownSchemaError

HELP = "check alerts against schema, cutouts, ids (errors vs convention warnings)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack validate``."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="Avro files or directories")
    parser.add_argument("--schema", default=None, help="schema version to check against")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail on warnings (departures from packaging conventions) too",
    )


def run(args: argparse.Namespace) -> int:
    """A line per problem (severity first); exit 1 on errors, or on warnings with --strict."""
    # the parser stays light: imported when the command runs
    from alertpack.schema import load_schema
    from alertpack.tools.inspection import validate_paths
    from alertpack.tools.reading import ReadReport

    try:
        schema = load_schema(args.schema) if args.schema else None
    except UnknownSchemaError as error:
        raise CommandError(str(error)) from None

    files = ReadReport()
    n_alerts = n_invalid = n_warned = n_errors = n_warnings = 0
    for report in validate_paths(args.paths, schema, report=files):
        n_alerts += 1
        errors, warnings = len(report.errors), len(report.warnings)
        n_errors += errors
        n_warnings += warnings
        n_invalid += bool(errors)
        n_warned += bool(warnings)
        for problem in report.problems:
            say(f"{report.alert.label} id={report.alert.alert_id}: {problem}")
    sys.stdout.flush()
    status = report_file_problems("validate", files, read_any=n_alerts > 0)
    if n_alerts == 0:
        if status == 0:
            print("alertpack validate: no alerts found", file=sys.stderr)
        return status or 1
    summary = _summary(n_alerts, n_invalid, n_errors, n_warned, n_warnings)
    if status:
        print(f"{summary} (readable files); {len(files.errors)} file problem(s)")
        return 1
    print(summary)
    return 1 if n_errors or (args.strict and n_warnings) else 0


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
