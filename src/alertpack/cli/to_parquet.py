"""``alertpack to-parquet``: flatten alerts to Parquet tables."""

from __future__ import annotations

import argparse
import sys

from alertpack.cli._files import report_file_problems, reported_on_error, say
from alertpack.cli._select import add_selection_options, selection_from_args

HELP = "flatten alerts to Parquet tables"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack to-parquet``."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="Avro files or directories")
    parser.add_argument("-o", "--output", required=True, metavar="DIR")
    parser.add_argument(
        "--decode-cutouts", action="store_true",
        help="store each cutout as the plain FITS file it holds (gzipped and tile-compressed "
        "stamps decoded); by default the bytes stay as the alert carries them",
    )
    add_selection_options(parser)


def run(args: argparse.Namespace) -> int:
    """Flatten alerts to Parquet tables in a directory: the alerts of every readable file.

    Exit 0 when every file was converted; 1 when some could not be read (each
    named; the tables hold the alerts of the others, whole files only); 2
    when none could.
    """
    # the parser stays light: imported when the command runs
    from alertpack.tools.parquet import ALERTS_TABLE, alerts_to_parquet
    from alertpack.tools.reading import ReadReport

    selection = selection_from_args(args)
    report = ReadReport()
    with reported_on_error("to-parquet", report):
        written = alerts_to_parquet(
            args.paths, args.output, report=report, decode_cutouts=args.decode_cutouts,
            selection=selection,
        )
    for name, (path, rows) in written.items():
        say(f"{path}: {rows} {'alerts' if name == ALERTS_TABLE else 'rows'}")
    if selection is not None and written[ALERTS_TABLE][1] == 0:
        print("alertpack to-parquet: no alerts selected: the tables are empty", file=sys.stderr)
    return report_file_problems("to-parquet", report, read_any=True)
