"""``alertpack schemas``: the shipped alert schema versions and their wire ids."""

from __future__ import annotations

import argparse

HELP = "list the alert schema versions and their wire ids"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``alertpack schemas`` takes no options."""


def run(args: argparse.Namespace) -> int:
    """List the shipped schema versions and their wire ids."""
    # the parser stays light: imported when the command runs
    from alertpack.schema import available_versions, latest_version

    latest = latest_version()
    print("version  schema id  alert record")
    for version in available_versions():
        mark = "  (latest, default)" if version == latest else ""
        record = f"lsst.v{version.major}_{version.minor}.alert"
        print(f"{version!s:>7}  {version.schema_id:>9}  {record}{mark}")
    return 0
