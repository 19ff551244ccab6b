"""The ``alertpack`` command line: one module per command.

Each command module defines ``HELP``, ``add_arguments(parser)`` and
``run(args)``, and imports what its work needs only inside ``run``, so that
``alertpack --help`` starts fast. Library modules print nothing: what a
command prints is in its module here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence

from alertpack import __version__
from alertpack.errors import AlertPackError
from alertpack.kafka.signals import sigterm_as_interrupt
from alertpack.terminal import printable

__all__ = ["build_parser", "main"]

#: command name -> module under alertpack.cli
COMMANDS = {
    "package": "package",
    "consume": "consume",
    "replay": "replay",
    "inspect": "inspect",
    "validate": "validate",
    "show": "show",
    "browse": "browse",
    "to-parquet": "to_parquet",
    "schemas": "schemas",
    "config": "config",
    "apdb": "apdb",
    "simulate": "simulate",
    "broker": "broker",
}


def _command_module(name: str):
    return importlib.import_module(f"alertpack.cli.{COMMANDS[name]}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``alertpack`` command."""
    parser = argparse.ArgumentParser(
        prog="alertpack",
        description="Package survey detections into Rubin alert packets, deliver and inspect them.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _command_module(name)
        subparser = commands.add_parser(name, help=module.HELP)
        module.add_arguments(subparser)
        # unknown options are reported by the command they were given to
        subparser.set_defaults(command_parser=subparser)
    return parser


def _import_lsst_resources_without_fsspec() -> None:
    """Import ``lsst.resources`` (under ``lsst.pex.config``) without ``fsspec``.

    ``lsst.resources`` imports fsspec, when installed, only to offer
    ``ResourcePath.to_fsspec``, which no alertpack command uses; fsspec (with
    asyncio) is a fifth of this command's start-up. A ``None`` entry in
    `sys.modules` makes that optional import fail, as Python documents; it is
    removed right after, so fsspec stays importable for anything else.
    """
    if "lsst.resources" in sys.modules or "fsspec" in sys.modules:
        return
    sys.modules["fsspec"] = None  # type: ignore[assignment]
    try:
        # here, not at the top: fsspec is kept out only for this one import
        import lsst.resources  # noqa: F401
    except ImportError:
        pass  # then alertpack.config reports the missing lsst packages itself
    finally:
        del sys.modules["fsspec"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alertpack`` console script."""
    _import_lsst_resources_without_fsspec()
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # argparse would report them with the top-level usage; the command's is the useful one
        owner = getattr(args, "command_parser", None) or parser
        owner.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.version:
        print(__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    handler = _command_module(args.command).run
    try:
        # SIGTERM raises errors.Terminated, a KeyboardInterrupt: the clean-up of Ctrl-C
        with sigterm_as_interrupt():
            return int(handler(args) or 0)
    except AlertPackError as error:
        # the message names input (files, columns, values): printed escaped
        print(f"alertpack {args.command}: error: {printable(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        # 130 for Ctrl-C, 143 for SIGTERM: the shell's convention, 128 + signal number
        return 128 + getattr(interrupt, "signum", signal.SIGINT)
    except BrokenPipeError:
        # the reader (e.g. `| head`) closed early: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


