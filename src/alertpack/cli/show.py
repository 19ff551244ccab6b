"""``alertpack show``: plot an alert's cutouts and light curve."""

from __future__ import annotations

import argparse

HELP = "plot an alert's cutouts and light curve"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack show``."""
    parser.add_argument("path", metavar="ALERT_FILE")
    parser.add_argument("--id", type=int, default=None, help="diaSourceId/alertId (default: first)")
    parser.add_argument("-o", "--output", required=True, help="output image, e.g. alert.png")


def run(args: argparse.Namespace) -> int:
    """Plot one alert of a file to an image."""
    from alertpack.tools.plotting import save_alert_plot
    from alertpack.tools.reading import find_alert

    alert = find_alert(args.path, args.id)
    written = save_alert_plot(alert, args.output)
    print(f"wrote {written} (alert {alert.alert_id}, {alert.label})")
    return 0
