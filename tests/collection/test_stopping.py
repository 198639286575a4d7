"""Which stop signal came, whoever handled it: in a collection's loop or after it."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from pipeline.collection.stopping import signals_noticed, stop_on_signals


@pytest.fixture
def quiet_handlers() -> Iterator[None]:
    """Python-level handlers that do nothing, like Dagster's while it captures interrupts."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in saved:
        signal.signal(s, lambda signum, frame: None)
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_a_signal_outside_any_loop_is_noticed(quiet_handlers: None) -> None:
    with signals_noticed() as first_stop_signal:
        assert first_stop_signal() is None
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        assert first_stop_signal() == signal.SIGTERM


def test_signals_in_and_after_a_collection_loop_are_noticed(quiet_handlers: None) -> None:
    stops: list[int] = []

    async def collection() -> None:
        with stop_on_signals(stops.append):
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(0.05)  # the loop's handler runs
            os.kill(os.getpid(), signal.SIGINT)  # a second one stops nothing more
            await asyncio.sleep(0.05)

    with signals_noticed() as first_stop_signal:
        asyncio.run(collection())
        assert stops == [signal.SIGINT]
        assert first_stop_signal() == signal.SIGINT
    with signals_noticed() as first_stop_signal:
        asyncio.run(collection())
        # The loop put the wakeup descriptor back: a signal after it is noticed too.
        os.kill(os.getpid(), signal.SIGTERM)
        assert first_stop_signal() == signal.SIGINT

    async def quiet_collection() -> None:
        with stop_on_signals(stops.append):
            await asyncio.sleep(0)

    with signals_noticed() as first_stop_signal:
        asyncio.run(quiet_collection())
        os.kill(os.getpid(), signal.SIGTERM)  # only after the loop
        assert first_stop_signal() == signal.SIGTERM
