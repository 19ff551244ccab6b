"""Help and errors that are easy to misread: --max, --detector vs --sample-detectors, extras."""

from __future__ import annotations

import sys

import pytest

from alertpack.cli import build_parser, main


def _help(*command: str) -> str:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    sub = subparsers.choices[command[0]]
    return sub.format_help()


def test_max_says_what_it_counts_for_each_command():
    consume = _help("consume")
    assert "inspect" not in consume.split("--max")[1].split("--")[0]
    assert "read until --timeout" in consume
    for command in ("inspect", "validate"):
        assert "from files too" in _help(command)
    for command in ("inspect", "consume", "validate", "to-parquet", "show"):
        text = _help(command)
        assert "--where EXPR" in text and "--object ID" in text, command


def test_detector_and_sample_detectors_cannot_be_confused(capsys):
    assert main(["package", "--sample", "--detector", "5"]) == 2
    error = capsys.readouterr().err
    assert "--detector picks detectors of an APDB" in error and "--sample-detectors" in error
    with pytest.raises(SystemExit):
        main(["package", "--sample", "--detectors", "3"])
    assert "unrecognized arguments: --detectors" in capsys.readouterr().err
    assert "--sample-detectors N" in _help("package")


def test_commands_that_need_an_extra_say_which(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["show", str(tmp_path)]) == 2
    assert "pip install '.[plot]'" in capsys.readouterr().err
    assert "Tansu" in _help("broker") and "--port" in _help("broker")
    assert "--no-fitsverify" in _help("validate") and "--server" in _help("validate")
