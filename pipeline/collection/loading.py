"""Loading for a collection: one consumer writes what connections hand over, merged.

Connections hand over batches as they read; whatever queues while a write runs goes
into the next write together, so many connections finishing at once cost a few large
transactions instead of one small one each (each has a fixed cost of several statements
and a commit). Each connection still waits until its own batch is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from pipeline.transform.flatten import FetchedRun, Rejected, flatten_runs
from pipeline.warehouse.loader import LoadStats
from pipeline.warehouse.store import Warehouse

T = TypeVar("T")
R = TypeVar("R")


class WarehouseGate:
    """Warehouse calls one at a time, each in a thread so requests flow meanwhile.

    A DuckDB connection is not safe for concurrent use, and a load takes long enough
    that it must not block the event loop.
    """

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self._lock = asyncio.Lock()

    async def call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        async with self._lock:
            running = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                # A thread cannot be stopped: hold the warehouse until it is done with it.
                await asyncio.wait([running])
                raise


@dataclass
class _Handed(Generic[T]):
    items: list[T]
    done: asyncio.Future[Any]


class MergingWriter(Generic[T, R]):
    """A queue with one consumer that writes everything queued so far in one call.

    Use as `async with`: leaving stops the consumer and fails whatever is still queued.
    """

    def __init__(self, write: Callable[[list[T]], Awaitable[R]]) -> None:
        self._write = write
        self._queue: asyncio.Queue[_Handed[T]] = asyncio.Queue()
        self._consumer: asyncio.Task[None] | None = None
        self.waiting = 0  # items handed over and not yet written: the memory they hold

    async def __aenter__(self) -> MergingWriter[T, R]:
        self._consumer = asyncio.create_task(self._consume())
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._consumer is not None and t is None:
            await self.drain()
        if self._consumer is not None:
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)
        while not self._queue.empty():
            self._queue.get_nowait().done.cancel()

    async def drain(self) -> None:
        """Wait until everything handed over is written (even for callers that stopped
        waiting for it: a stopped collection still commits what it fetched)."""
        assert self._consumer is not None
        joined = asyncio.ensure_future(self._queue.join())
        await asyncio.wait([joined, self._consumer], return_when=asyncio.FIRST_COMPLETED)
        joined.cancel()

    def hand_over(self, items: Sequence[T]) -> asyncio.Future[R]:
        """Queue items for the next write; the future ends when they are committed."""
        if self._consumer is None or self._consumer.done():
            raise RuntimeError("the writer is not running (use it as `async with`)")
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Handed(list(items), done))
        self.waiting += len(items)
        return done

    async def write(self, items: Sequence[T]) -> R:
        return await self.hand_over(items)

    async def _consume(self) -> None:
        while True:
            taken = [await self._queue.get()]
            while not self._queue.empty():
                taken.append(self._queue.get_nowait())
            try:
                outcome = await self._write([item for h in taken for item in h.items])
            except BaseException as exc:  # every waiting connection sees the failure
                _settle(taken, exc=exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                _settle(taken, outcome=outcome)
            finally:
                self.waiting -= sum(len(h.items) for h in taken)
                for _ in taken:
                    self._queue.task_done()


def _settle(
    taken: list[_Handed[Any]], outcome: Any = None, exc: BaseException | None = None
) -> None:
    for handed in taken:
        if handed.done.done():
            continue  # its connection was cancelled meanwhile
        if isinstance(exc, asyncio.CancelledError):
            handed.done.cancel()
        elif exc is not None:
            handed.done.set_exception(exc)
        else:
            handed.done.set_result(outcome)


# What a connection hands over: runs, and answers it could not read (quarantined).
Handed = FetchedRun | Rejected


def _flatten(items: Sequence[Handed]) -> Any:
    # Looked up when called: crash trials replace `flatten_runs` to kill the process.
    runs = [i for i in items if isinstance(i, FetchedRun)]
    rejected = [i for i in items if isinstance(i, Rejected)]
    return flatten_runs(runs, rejected) if rejected else flatten_runs(runs)


class RunLoader(MergingWriter[Handed, LoadStats]):
    """Flattens and loads what connections hand over, in one transaction per write."""

    def __init__(self, gate: WarehouseGate) -> None:
        super().__init__(self._flatten_and_load)
        self._gate = gate

    async def _flatten_and_load(self, runs: list[Handed]) -> LoadStats:
        # Flattened before taking the warehouse: it needs none, so reads go on meanwhile.
        batch = await asyncio.to_thread(_flatten, runs)
        return await self._gate.call(self._gate.warehouse.loader.load, batch)
