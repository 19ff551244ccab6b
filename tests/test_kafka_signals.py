"""SIGINT and SIGTERM held back while work must finish, and SIGTERM taken as Ctrl-C."""

from __future__ import annotations

import signal
import threading

import pytest

from alertpack.errors import Terminated
from alertpack.kafka.signals import signals_deferred, sigterm_as_interrupt, stop_description


def test_signals_wait_for_the_block_then_the_first_one_is_delivered():
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    finished = False
    with sigterm_as_interrupt():
        with pytest.raises(Terminated) as caught:
            with signals_deferred():
                signal.raise_signal(signal.SIGTERM)
                signal.raise_signal(signal.SIGINT)
                finished = True  # neither signal cut the block short
        assert finished and caught.value.signum == signal.SIGTERM
        assert isinstance(caught.value, KeyboardInterrupt)
        assert stop_description(caught.value) == "the run was interrupted by SIGTERM"
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_sigint_alone_is_delivered_as_keyboard_interrupt():
    with pytest.raises(KeyboardInterrupt) as caught:
        with signals_deferred():
            signal.raise_signal(signal.SIGINT)
    assert not isinstance(caught.value, Terminated)
    assert stop_description(caught.value) == "the run was interrupted by SIGINT"


def test_outside_the_main_thread_nothing_changes():
    seen: list[object] = []

    def work() -> None:
        with signals_deferred(), sigterm_as_interrupt():
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [before]
