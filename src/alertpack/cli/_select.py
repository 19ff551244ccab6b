"""Command-line options that select alerts, shared by the read commands: ``--where``, ``--object``.

``--where EXPR`` is an expression of `alertpack.tools.selection` (the
language of ``alertpack browse``'s filter box); ``--object ID`` (repeatable)
keeps the alerts of those diaObjects. Both become one
`~alertpack.tools.selection.Selection`, which the library functions take.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from alertpack.errors import CommandError, SelectionError

if TYPE_CHECKING:  # numpy and the language load when the command runs, not with --help
    from alertpack.tools.selection import Selection

__all__ = ["add_selection_options", "object_id", "selection_from_args"]

WHERE_HELP = (
    "only the alerts this expression selects, e.g. \"band == 'r' and snr > 10\", "
    "\"new and not ss\", \"20 < mag < 22.5\" (the language of the README's 'Selection "
    "expressions'; names: id, object, band, mjd, ra, dec, snr, flux, mag, new, ss, cutouts, "
    "..., diaSource.<field>)"
)


def object_id(text: str) -> int:
    """An argparse type: a diaObjectId (a whole number)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a diaObjectId (a whole number)"
        ) from None


def add_selection_options(
    parser: argparse.ArgumentParser, *, object_help: str | None = None
) -> None:
    """Add ``--where EXPR`` and ``--object ID`` in a group of their own."""
    group = parser.add_argument_group("selection", "which alerts (all by default)")
    group.add_argument("--where", metavar="EXPR", default=None, help=WHERE_HELP)
    group.add_argument(
        "--object", metavar="ID", type=object_id, action="append", default=[],
        help=object_help or "only the alerts of this diaObjectId (repeatable; for an "
        "asteroid: --where 'ssobject == ID')",
    )


def selection_from_args(args: argparse.Namespace, *, objects: bool = True) -> Selection | None:
    """The `Selection` of ``--where`` and ``--object`` (both must hold); `None` for all alerts.

    With ``objects=False``, ``--object`` is left to the command (``show``
    draws an object's alerts together).

    Raises
    ------
    CommandError
        For an expression that does not parse, naming ``--where``, where it
        goes wrong and how to fix it.
    """
    # the language (numpy) loads when the command runs, not with the parser
    from alertpack.tools.selection import Selection

    try:
        selection = Selection.parse(args.where or "")
    except SelectionError as error:
        raise CommandError(f"--where: {error}") from None
    if objects and args.object:
        selection = selection & Selection.of_objects(args.object)
    return None if selection.selects_all else selection
