"""``alertpack apdb fill --sample CONFIG DIR``: the built-in sample stored in an APDB."""

from __future__ import annotations

import argparse

from alertpack.cli._apdb import parse_detectors
from alertpack.cli.package import _parse_image_size
from alertpack.errors import CommandError

HELP = "fill an APDB (lsst-dax-apdb) with the built-in sample, images written beside it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alertpack apdb``."""
    actions = parser.add_subparsers(dest="apdb_action", metavar="ACTION")
    fill = actions.add_parser(
        "fill", help="store sample detectors of one visit with the library's own store()",
        description="Store sample detectors of one visit (and the previous visits of their "
        "objects) in an APDB made by `apdb-cli create-sql URL CONFIG`, and write each "
        "detector's images and catalogs to DIR/<detector>/. Then: alertpack package --apdb "
        "CONFIG --visit V --detector D --difference 'DIR/{detector}/difference.fits' ...",
    )
    fill.add_argument("--sample", action="store_true", required=True,
                      help="the built-in sample (the only source for now)")
    fill.add_argument("config", metavar="CONFIG", help="APDB config file")
    fill.add_argument("directory", metavar="DIR", help="where the detectors' files go")
    fill.add_argument("--detector", default="42", metavar="LIST",
                      help="sample detectors to store: 42, 40-44 or 1,5 (default 42)")
    fill.add_argument("--n-sources", type=int, default=60, help="new DiaSources per detector")
    fill.add_argument("--n-history", type=int, default=20, metavar="N",
                      help="previous DiaSources and forced sources per DiaObject (default 20)")
    fill.add_argument("--image-size", default=None, metavar="NXxNY",
                      help="image size in pixels (default: one LSST detector)")
    fill.add_argument("--seed", type=int, default=0, help="random seed")


def run(args: argparse.Namespace) -> int:
    """Fill the APDB and print what was stored and how to package it."""
    if args.apdb_action != "fill":
        raise CommandError("give an action: alertpack apdb fill --sample CONFIG DIR")
    # the parser stays light: imported when the command runs
    from alertpack.sample.apdb import write_apdb

    options = {"n_history": args.n_history, "n_forced": args.n_history}
    shape = _parse_image_size(args.image_size)
    if shape is not None:
        options["image_shape"] = shape
    detectors = parse_detectors([args.detector])
    fill = write_apdb(args.config, args.directory, detectors=detectors,
                      n_sources=args.n_sources, seed=args.seed, **options)
    counts = ", ".join(f"{n} {table}" for table, n in fill.row_counts.items())
    print(f"alertpack: stored sample visit {fill.visit}, detector(s) "
          f"{','.join(map(str, detectors))} in {args.config} ({fill.store_calls} store calls, "
          f"{fill.store_seconds:.1f} s); the APDB now holds {counts}")
    for detector, directory in fill.directories.items():
        print(f"  detector {detector}: images and catalogs in {directory}")
    images = " ".join(f"--{kind} '{args.directory}/{{detector}}/{kind}.fits'"
                      for kind in ("difference", "template", "science"))
    print(f"  next: alertpack package --apdb {args.config} --visit {fill.visit} "
          f"--detector {args.detector} {images} --id-bits 50")
    return 0
