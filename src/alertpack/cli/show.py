"""``alertpack show``: plot alerts' cutouts and light curves, one alert or a whole object."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import TYPE_CHECKING

from alertpack.cli._files import report_file_problems, reported_on_error, say
from alertpack.cli._kafka import positive_int
from alertpack.cli._select import add_selection_options, object_id, selection_from_args
from alertpack.errors import CommandError, InputError

if TYPE_CHECKING:  # the read side loads when the command runs, not with --help
    from matplotlib.figure import Figure

    from alertpack.tools.reading import LoadedAlert, ReadReport
    from alertpack.tools.selection import Selection

HELP = "plot alerts' cutouts and light curves (one alert, several, or a whole object)"

#: figures drawn at most unless --max says otherwise
DEFAULT_MAX_FIGURES = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack show``."""
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="alert files (Avro) or directories of them",
    )
    parser.add_argument(
        "--id", type=object_id, action="append", default=[], metavar="ID",
        help="the alert with this diaSourceId/alertId (repeatable; default: the first alert, "
        "or every alert --where/--object select)",
    )
    parser.add_argument(
        "-o", "--output", default=None, metavar="FILE|DIR",
        help="image file (.png, .pdf, .svg); with several figures a .pdf gets a page each, "
        "FILE.png becomes FILE-<name>.png; a directory gets <name>.png; default: "
        "alert-<diaSourceId>.png or object-<diaObjectId>.png here",
    )
    # the stretches of alertpack.tools.stamp_display, which loads numpy (not for the parser)
    parser.add_argument(
        "--stretch", choices=("zscale", "asinh", "linear"), default="zscale",
        help="stamp stretch: zscale (default), asinh (faint outskirts and bright core at "
        "once) or linear (0.25-99.75 percentiles)",
    )
    parser.add_argument(
        "--magnitudes", action="store_true",
        help="light curve in AB magnitudes, 5-sigma upper limits below 3 sigma (default: "
        "difference flux in nJy with an AB magnitude axis)",
    )
    parser.add_argument(
        "--max", type=positive_int, default=DEFAULT_MAX_FIGURES, metavar="N",
        help=f"draw at most N figures (default {DEFAULT_MAX_FIGURES})",
    )
    add_selection_options(
        parser,
        object_help="draw this diaObject: the stamps of its latest alert over the merged light "
        "curve of all its alerts in PATH (repeatable: a figure each); --where 'object == ID' "
        "draws each of its alerts instead",
    )


def run(args: argparse.Namespace) -> int:
    """Plot the chosen alerts (or objects) to image files.

    Exit 0 when the plots show everything the alerts hold; 1 when a cutout
    they hold cannot be read (the plot says why in that panel) or fewer
    figures than asked were drawn; 2 when no plot.
    """
    # the parser stays light: imported when the command runs
    from alertpack.tools.reading import ReadReport

    try:
        # matplotlib is the optional `plot` extra: said before any file is read
        import matplotlib  # noqa: F401
    except ImportError:
        raise CommandError(
            "show draws with matplotlib, which is not installed; install the plot extra: "
            "pip install '.[plot]' in alertpack's source tree (or pip install matplotlib)"
        ) from None
    selection = _selection(args)
    report = ReadReport()
    with reported_on_error("show", report):
        if args.object:
            groups, missing = _object_alerts(args, selection, report)
            names = [f"object-{number}" for number in groups]
        else:
            groups, missing = _chosen_alerts(args, selection, report)
            names = [f"alert-{alert.alert_id}" for alerts in groups.values() for alert in alerts]
        status = _draw(args, groups, names)
    status = max(status, report_file_problems("show", report, read_any=True))
    for line in missing:
        say(f"alertpack show: {line}", error=True)
        status = max(status, 1)
    return status


def _selection(args: argparse.Namespace) -> Selection | None:
    # the parser stays light: imported when the command runs
    from alertpack.tools.selection import Selection, literal

    selection = selection_from_args(args, objects=False)
    if args.id:
        ids = ", ".join(literal(i) for i in dict.fromkeys(args.id))
        # older files carry an alertId beside the diaSource's own id: either matches
        chosen = Selection.parse(f"id in ({ids}) or source in ({ids})")
        selection = chosen if selection is None else selection & chosen
    if args.object:
        chosen = Selection.of_objects(args.object)
        selection = chosen if selection is None else selection & chosen
    return selection


def _read(args: argparse.Namespace, report: ReadReport) -> Iterator[LoadedAlert]:
    # the parser stays light: imported when the command runs
    from alertpack.tools.reading import iter_alerts

    return iter_alerts(args.paths, report=report, shipped_schema=True)


def _where(args: argparse.Namespace) -> str:
    return " ".join(args.paths)


def _chosen_alerts(
    args: argparse.Namespace, selection: Selection | None, report: ReadReport
) -> tuple[dict[int, list[LoadedAlert]], list[str]]:
    """The alerts to draw, one figure each (at most --max); lines about what was left out."""
    # the parser stays light: imported when the command runs
    from alertpack.tools.reading import field_value

    chosen: list[LoadedAlert] = []
    seen = selected = 0
    for alert in _read(args, report):
        seen += 1
        if selection is not None and not selection.matches(alert.alert):
            continue
        selected += 1
        if len(chosen) < args.max:
            chosen.append(alert)
        if selection is None:
            break  # no selection: the first alert
    if not chosen:
        raise _nothing_found(args, seen, report)
    missing = []
    if args.id:
        found = {alert.alert_id for alert in chosen} | {
            field_value(alert.alert.get("diaSource"), "diaSourceId") for alert in chosen
        }
        absent = [i for i in dict.fromkeys(args.id) if i not in found]
        if absent and len(chosen) < args.max:
            missing.append(f"no alert with diaSourceId/alertId {', '.join(map(str, absent))} "
                           f"among the {seen} alerts in {_where(args)}")
    if selected > len(chosen):
        missing.append(f"drew {len(chosen)} of the {selected} alerts selected; --max N for more")
    return {index: [alert] for index, alert in enumerate(chosen)}, missing


def _object_alerts(
    args: argparse.Namespace, selection: Selection | None, report: ReadReport
) -> tuple[dict[int, list[LoadedAlert]], list[str]]:
    """The alerts of each --object, a figure per object; lines about objects not found."""
    wanted = list(dict.fromkeys(args.object))[: args.max]
    groups: dict[int, list[LoadedAlert]] = {number: [] for number in wanted}
    seen = 0
    for alert in _read(args, report):
        seen += 1
        if alert.object_id in groups and (selection is None or selection.matches(alert.alert)):
            groups[alert.object_id].append(alert)
    missing = [f"no alert of diaObject {number} among the {seen} alerts in {_where(args)}"
               for number, alerts in groups.items() if not alerts]
    found = {number: alerts for number, alerts in groups.items() if alerts}
    if not found:
        raise _nothing_found(args, seen, report)
    if len(args.object) > len(wanted):
        missing.append(f"drew {len(wanted)} of the {len(args.object)} objects; --max N for more")
    return found, missing


def _nothing_found(args: argparse.Namespace, seen: int, report: ReadReport) -> InputError:
    where = _where(args)
    if seen == 0:
        problems = " that can be read" if report.errors else ""
        return InputError(f"{where} holds no alerts{problems}")
    if args.object:
        objects = ", ".join(map(str, dict.fromkeys(args.object)))
        return InputError(f"no alert of diaObject {objects} among the {seen} alerts in {where}")
    if args.id and not args.where:
        ids = ", ".join(map(str, dict.fromkeys(args.id)))
        return InputError(
            f"no alert with diaSourceId/alertId {ids} among the {seen} alerts in {where}; "
            "list the ids with `alertpack inspect`"
        )
    return InputError(f"no alert among the {seen} in {where} is selected")


def _draw(args: argparse.Namespace, groups: dict[int, list[LoadedAlert]], names: list[str]) -> int:
    """Draw and write every figure, a line each; 1 when a cutout could not be read, else 0."""
    # the parser stays light: imported when the command runs
    from alertpack.tools.plotting import (
        plot_alert,
        plot_object,
        plot_targets,
        save_figures,
        unreadable_cutouts,
    )

    targets = plot_targets(args.output, names)
    shown: list[str] = []
    status = 0

    def figures() -> Iterator[Figure]:
        nonlocal status
        for key, alerts in groups.items():
            for alert in alerts:
                for name, reason in unreadable_cutouts(alert.alert).items():
                    say(f"alertpack show: {alert.label}: {name} unreadable: {reason}",
                        error=True)
                    status = 1
            if args.object:
                shown.append(f"object {key}, {len(alerts)} alert(s)")
                yield plot_object(alerts, stretch=args.stretch, magnitudes=args.magnitudes)
            else:
                (alert,) = alerts
                shown.append(f"alert {alert.alert_id}, {alert.label}")
                yield plot_alert(alert, stretch=args.stretch, magnitudes=args.magnitudes)

    for path in save_figures(figures(), targets):
        if targets.pdf is None:
            say(f"wrote {path} ({shown[-1]})", flush=True)
        else:
            say(f"wrote {path}: {len(shown)} page(s): {'; '.join(shown)}", flush=True)
    return status
