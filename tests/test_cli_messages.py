"""One-line, actionable command-line messages (no pex_config internals, the right usage)."""

from __future__ import annotations

import pytest

from alertpack.cli import main

SMALL_SAMPLE = ["package", "--sample", "--n-sources", "6", "--image-size", "300x300"]


@pytest.mark.parametrize(
    "arguments", [["--schema", "12.0"], ["-c", "schemaVersion=12.0"]]
)
def test_unknown_schema_lists_the_valid_versions(tmp_path, capsys, arguments):
    assert main([*SMALL_SAMPLE, "-o", str(tmp_path), *arguments]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "12.0" in error
    assert "3.0, " in error and "11.1" in error
    assert "None" not in error and "config.py" not in error and "Field" not in error


def test_a_misspelt_option_gets_the_commands_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["package", "--sampel"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("usage: alertpack package ")
    assert "alertpack package: error: unrecognized arguments: --sampel" in error


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--max", "-1"], "argument --max: -1 must be at least 1"),
        (["--max", "0"], "argument --max: 0 must be at least 1"),
        (["--timeout", "0"], "argument --timeout: 0 must be a number of seconds above 0"),
        (["--timeout", "-2.5"], "argument --timeout: -2.5 must be a number"),
        (["--timeout", "nan"], "argument --timeout: nan must be a number"),
    ],
)
def test_consume_rejects_counts_and_timeouts_that_read_nothing(capsys, option, message):
    with pytest.raises(SystemExit) as exit_:
        main(["consume", "--server", "127.0.0.1:1", "--topic", "t", *option])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "usage: alertpack consume" in error and message in error


def test_cutout_size_ignored_under_bbox_sizing_is_said(tmp_path, capsys):
    assert main([*SMALL_SAMPLE, "-o", str(tmp_path), "-c", "cutoutSize=31"]) == 0
    warning = capsys.readouterr().err
    assert "warning: cutoutSize=31 applies only to sources without a bboxSize" in warning
    assert "-c useBboxSize=false" in warning
    arguments = [*SMALL_SAMPLE, "-o", str(tmp_path / "fixed"), "-c", "cutoutSize=31",
                 "-c", "useBboxSize=false"]  # other stamps: another directory
    assert main(arguments) == 0
    assert "warning" not in capsys.readouterr().err
