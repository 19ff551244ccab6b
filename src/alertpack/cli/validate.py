"""``alertpack validate``: check alerts against the schema, their ids, history and cutouts."""

from __future__ import annotations

import argparse
import sys

from alertpack.errors import CommandError

HELP = "check alerts against schema, cutouts, ids"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack validate``."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="Avro files or directories")
    parser.add_argument("--schema", default=None, help="schema version to check against")


def run(args: argparse.Namespace) -> int:
    """A line per problem; exit 0 only when every alert is valid."""
    from alertpack.schema import UnknownSchemaError, load_schema
    from alertpack.tools.inspection import validate_paths

    try:
        schema = load_schema(args.schema) if args.schema else None
    except UnknownSchemaError as error:
        raise CommandError(str(error)) from None
    from alertpack.cli._files import report_file_problems
    from alertpack.tools.reading import ReadReport

    files = ReadReport()
    n_alerts = n_invalid = n_problems = 0
    for report in validate_paths(args.paths, schema, report=files):
        n_alerts += 1
        if report.valid:
            continue
        n_invalid += 1
        n_problems += len(report.problems)
        for problem in report.problems:
            print(f"{report.alert.label} id={report.alert.alert_id}: {problem}")
    sys.stdout.flush()
    status = report_file_problems("validate", files)
    if n_alerts == 0:
        if status == 0:
            print("alertpack validate: no alerts found", file=sys.stderr)
        return status or 1
    if status:
        verdict = f"{n_invalid} of {n_alerts}" if n_invalid else f"none of the {n_alerts}"
        print(f"{verdict} readable alerts invalid; {len(files.errors)} file problem(s)")
        return status
    if n_invalid:
        print(f"{n_invalid} of {n_alerts} alerts invalid ({n_problems} problems)")
        return 1
    print(f"all {n_alerts} alerts valid")
    return 0
