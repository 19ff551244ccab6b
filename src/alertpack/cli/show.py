"""``alertpack show``: plot an alert's cutouts and light curve."""

from __future__ import annotations

import argparse

from alertpack.cli._files import report_file_problems, reported_on_error, say

HELP = "plot an alert's cutouts and light curve"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack show``."""
    parser.add_argument("path", metavar="ALERT_FILE")
    parser.add_argument("--id", type=int, default=None, help="diaSourceId/alertId (default: first)")
    parser.add_argument("-o", "--output", required=True, help="output image, e.g. alert.png")


def run(args: argparse.Namespace) -> int:
    """Plot one alert of a file to an image.

    Exit 0 when the plot shows everything the alert holds; 1 when a cutout it
    holds cannot be read (the plot says why in that panel); 2 when no plot.
    """
    # the parser stays light: imported when the command runs
    from alertpack.tools.plotting import check_plot_path, save_alert_plot, unreadable_cutouts
    from alertpack.tools.reading import ReadReport, find_alert

    check_plot_path(args.output)
    report = ReadReport()
    with reported_on_error("show", report):
        alert = find_alert(args.path, args.id, report=report)
    written = save_alert_plot(alert, args.output)
    say(f"wrote {written} (alert {alert.alert_id}, {alert.label})")
    status = report_file_problems("show", report, read_any=True)
    for name, reason in unreadable_cutouts(alert.record).items():
        say(f"alertpack show: {alert.label}: {name} unreadable: {reason}", error=True)
        status = status or 1
    return status
