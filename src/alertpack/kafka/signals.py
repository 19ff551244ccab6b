"""SIGINT and SIGTERM on the orderly path: held back while something must finish, or raised.

Two uses of one mechanism (`_handlers`: install Python handlers for a block,
put the previous ones back after it):

- `signals_deferred` holds both signals back while a failed-alerts file, or a
  batch of consumed alerts and its offsets, is written, then delivers the
  first that came: a second Ctrl-C cannot leave that work half done.
- `sigterm_as_interrupt` turns SIGTERM (what a batch system sends) into
  `~alertpack.errors.Terminated`, a `KeyboardInterrupt`: the command line
  cleans up after it exactly as after Ctrl-C.

Only the main thread receives signals in Python; elsewhere, and where a
handler was installed outside Python (which could not be put back), both
leave the signals alone.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from types import FrameType

from alertpack.errors import Terminated

__all__ = ["STOP_SIGNALS", "signals_deferred", "sigterm_as_interrupt", "stop_description"]

_Handler = Callable[[int, FrameType | None], object]

#: the signals an operator stops a run with
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _handlers(handlers: Mapping[int, _Handler]) -> Iterator[bool]:
    """Install ``handlers`` (signal number -> handler) for the block; yields whether it did."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = {signum: signal.getsignal(signum) for signum in handlers}
    if any(handler is None for handler in previous.values()):
        yield False  # a handler installed outside Python cannot be put back
        return
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    try:
        yield True
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block, then deliver the first one that came."""
    arrived: list[int] = []
    held: dict[int, _Handler] = {
        signum: lambda number, frame: arrived.append(number) for signum in STOP_SIGNALS
    }
    try:
        with _handlers(held):
            yield
    finally:
        if arrived:
            signal.raise_signal(arrived[0])


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises `~alertpack.errors.Terminated` (a KeyboardInterrupt) in the block."""
    with _handlers({signal.SIGTERM: _raise_terminated}):
        yield


def stop_description(error: BaseException) -> str:
    """How an exception that stopped a run is named: the signal, or the exception."""
    signum = getattr(error, "signum", None)
    if signum is not None:
        return f"the run was interrupted by {signal.Signals(signum).name}"
    if isinstance(error, KeyboardInterrupt):
        return "the run was interrupted by SIGINT"
    return f"the run stopped on {type(error).__name__}: {error}"
