"""SIGINT and SIGTERM during a collection: a request to stop, noticed by the event loop.

Dagster's own handler raises its interrupt wherever the main thread is; inside an asyncio
callback that exception is logged by asyncio and the loop runs on. While a collection's
loop runs, the loop's own signal handlers take over instead, so a signal always reaches
the collector as a call on the loop, and the command learns which signal came.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []  # signals received by collections of this process, in order


def received_signal() -> int | None:
    """The first stop signal a collection of this process received, if any."""
    return _received[0] if _received else None


def forget_signals() -> None:
    _received.clear()


@contextmanager
def stop_on_signals(on_stop: Callable[[int], None]) -> Iterator[None]:
    """While inside, SIGINT/SIGTERM call `on_stop(signum)` on the running loop (once).

    The handlers in place before (Dagster's, Python's) are put back on the way out. Off
    the main thread signals cannot be handled here; then nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    saved: dict[int, Any] = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def received(signum: int) -> None:
        first = not _received
        _received.append(signum)
        if first:
            on_stop(signum)

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, received, signum)
    try:
        yield
    finally:
        for stop_signal, handler in saved.items():
            loop.remove_signal_handler(stop_signal)
            signal.signal(stop_signal, handler)
