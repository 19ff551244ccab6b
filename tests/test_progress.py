"""Progress of many-detector commands: a tqdm bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import fcntl
import os
import struct
import sys
import termios

from alertpack.cli._progress import Progress


def _read_all(fd: int) -> str:
    chunks = []
    os.set_blocking(fd, False)
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_a_bar_and_failures_as_lines(monkeypatch):
    leader, follower = os.openpty()
    # a terminal 100 columns wide (a fresh pty has size 0x0)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with os.fdopen(follower, "w", buffering=1) as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        with Progress(3, "detector") as progress:
            assert progress.is_tty
            progress.update("d0")
            progress.update("d1", "FAILED: no difference file")
            progress.update("d2", postfix="12 alerts/s")
    shown = _read_all(leader)
    os.close(leader)
    assert "3/3" in shown and "100%" in shown and "12 alerts/s" in shown
    assert "detector d1: FAILED: no difference file" in shown
    assert "[1/3]" not in shown  # no plain log lines on a terminal


def test_a_pipe_gets_one_plain_line_per_item(capsys):
    with Progress(2, "visit") as progress:
        assert not progress.is_tty
        progress.update("7", "10 alerts", postfix="5 alerts/s")
        progress.update("8")
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["[1/2] visit 7: 10 alerts (5 alerts/s)", "[2/2] visit 8: done"]
