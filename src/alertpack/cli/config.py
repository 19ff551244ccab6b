"""``alertpack config``: print the configuration a package run would use."""

from __future__ import annotations

import argparse

from alertpack.cli._config import add_config_options, config_from_args

HELP = "print the resolved PackageAlertsConfig (defaults, files, -c overrides)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack config``: the same config options as package."""
    add_config_options(parser)
    parser.add_argument(
        "--produce", action="store_true", help="as package --produce (doProduceAlerts=True)"
    )


def run(args: argparse.Namespace) -> int:
    """Print the config as an override file that ``--config-file`` loads back (secrets masked)."""
    # the parser stays light: imported when the command runs
    from alertpack.config import config_text

    print(config_text(config_from_args(args, produce=args.produce)), end="")
    return 0
