"""SIGTERM (what batch systems and ``kill`` send) handled like Ctrl-C, exit status 143."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

__all__ = ["Terminated", "terminate_raises"]


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; clean-up written for Ctrl-C runs, then the command exits 143."""

    exit_code = 128 + signal.SIGTERM


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` instead of killing the process."""

    def raise_terminated(signum, frame) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread: leave SIGTERM as it is
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
