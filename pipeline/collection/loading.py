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


async def _unchanged(items: list[Any]) -> Any:
    return items


class MergingWriter(Generic[T, R]):
    """A queue with one consumer that writes everything queued so far in one call.

    With a `prepare` step, the next batch is prepared while the previous one is still
    being written (writes stay in hand-over order): flattening in Python and loading in
    DuckDB then use both cores. Use as `async with`: leaving stops the consumer and
    fails whatever is still queued.
    """

    def __init__(
        self,
        write: Callable[[Any], Awaitable[R]],
        prepare: Callable[[list[T]], Awaitable[Any]] = _unchanged,
    ) -> None:
        self._prepare = prepare
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
        writing: asyncio.Task[None] | None = None
        try:
            while True:
                taken = [await self._queue.get()]
                while not self._queue.empty():
                    taken.append(self._queue.get_nowait())
                try:
                    prepared = await self._prepare([item for h in taken for item in h.items])
                except BaseException as exc:
                    self._settle(taken, exc=exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                if writing is not None:
                    await writing
                writing = asyncio.create_task(self._write_and_settle(taken, prepared))
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)

    async def _write_and_settle(self, taken: list[_Handed[T]], prepared: Any) -> None:
        try:
            outcome = await self._write(prepared)
        except BaseException as exc:  # every waiting connection sees the failure
            self._settle(taken, exc=exc)
            if not isinstance(exc, Exception):
                raise
        else:
            self._settle(taken, outcome=outcome)

    def _settle(
        self, taken: list[_Handed[T]], outcome: Any = None, exc: BaseException | None = None
    ) -> None:
        for handed in taken:
            if handed.done.done():
                pass  # its connection was cancelled meanwhile
            elif isinstance(exc, asyncio.CancelledError):
                handed.done.cancel()
            elif exc is not None:
                handed.done.set_exception(exc)
            else:
                handed.done.set_result(outcome)
            self.waiting -= len(handed.items)
            self._queue.task_done()


# What a connection hands over: runs, and answers it could not read (quarantined).
Handed = FetchedRun | Rejected


def _flatten_handed(items: Sequence[Handed]) -> Any:
    # Looked up when called: crash trials replace `flatten_runs` to kill the process.
    runs = [i for i in items if isinstance(i, FetchedRun)]
    rejected = [i for i in items if isinstance(i, Rejected)]
    return flatten_runs(runs, rejected) if rejected else flatten_runs(runs)


class CollectedRunsWriter(MergingWriter[Handed, LoadStats]):
    """Flattens and loads what connections hand over, in one transaction per write.

    Flattening needs no warehouse, so it runs outside the gate: reads go on meanwhile,
    and the next batch is flattened while the previous one loads.
    """

    def __init__(self, gate: WarehouseGate) -> None:
        super().__init__(self._load, prepare=self._flatten)
        self._gate = gate

    async def _flatten(self, runs: list[Handed]) -> Any:
        return await asyncio.to_thread(_flatten_handed, runs)

    async def _load(self, batch: Any) -> LoadStats:
        return await self._gate.call(self._gate.warehouse.loader.load, batch)
