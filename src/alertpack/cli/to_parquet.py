"""``alertpack to-parquet``: flatten alerts to Parquet tables."""

from __future__ import annotations

import argparse

from alertpack.cli._files import report_file_problems, reported_on_error, say

HELP = "flatten alerts to Parquet tables"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack to-parquet``."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="Avro files or directories")
    parser.add_argument("-o", "--output", required=True, metavar="DIR")


def run(args: argparse.Namespace) -> int:
    """Flatten alerts to Parquet tables in a directory: the alerts of every readable file.

    Exit 0 when every file was converted; 1 when some could not be read (each
    named; the tables hold the alerts of the others, whole files only); 2
    when none could.
    """
    # the parser stays light: imported when the command runs
    from alertpack.tools.parquet import ALERTS_TABLE, alerts_to_parquet
    from alertpack.tools.reading import ReadReport

    report = ReadReport()
    with reported_on_error("to-parquet", report):
        written = alerts_to_parquet(args.paths, args.output, report=report)
    for name, (path, rows) in written.items():
        say(f"{path}: {rows} {'alerts' if name == ALERTS_TABLE else 'rows'}")
    return report_file_problems("to-parquet", report, read_any=True)
