"""SIGINT and SIGTERM during a command: a request to stop, and which signal it was.

Dagster's own handler raises its interrupt wherever the main thread is, and it handles
SIGTERM as SIGINT; inside an asyncio callback that exception is logged by asyncio and
the loop runs on. While a collection's loop runs, the loop's own signal handlers take
over instead, so a signal always reaches the collector as a call on the loop.
`signals_noticed` learns which signals came, whoever handled them, through Python's
wakeup file descriptor (written with the signal's number for every signal received).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signals_noticed() -> Iterator[Callable[[], int | None]]:
    """While inside, notice every signal; yields a function giving the first stop signal
    noticed so far (None if none). Off the main thread it notices nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    noticed: list[int] = []

    def first_stop_signal() -> int | None:
        with contextlib.suppress(BlockingIOError):
            noticed.extend(s for s in os.read(read_end, 512) if s in STOP_SIGNALS)
        return noticed[0] if noticed else None

    try:
        yield first_stop_signal
    finally:
        signal.set_wakeup_fd(previous)
        os.close(read_end)
        os.close(write_end)


@contextmanager
def stop_on_signals(on_stop: Callable[[int], None]) -> Iterator[None]:
    """While inside, SIGINT/SIGTERM call `on_stop(signum)` on the running loop (once).

    The handlers and wakeup descriptor in place before (Dagster's, Python's,
    `signals_noticed`'s) are put back on the way out. Off the main thread signals cannot
    be handled here; then nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    saved: dict[int, Any] = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    wakeup_fd = signal.set_wakeup_fd(-1)  # the loop replaces it, then sets none
    signal.set_wakeup_fd(wakeup_fd)
    stopped = False

    def received(signum: int) -> None:
        nonlocal stopped
        if wakeup_fd != -1:  # the loop's own descriptor took this signal's byte
            with contextlib.suppress(OSError):
                os.write(wakeup_fd, bytes([signum]))
        if not stopped:
            stopped = True
            on_stop(signum)

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, received, signum)
    try:
        yield
    finally:
        for stop_signal, handler in saved.items():
            loop.remove_signal_handler(stop_signal)
            signal.signal(stop_signal, handler)
        signal.set_wakeup_fd(wakeup_fd)
