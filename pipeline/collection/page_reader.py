"""Reading one connection's run pages: the walk (all pages, or the newest until one holds
nothing new), handing batches to the loader as they fill, and what a stop, a failure or a
full pass that goes on later needs of it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from pipeline.collection.bookkeeping import Bookkeeper, FullRead
from pipeline.collection.loading import CollectedRunsWriter, Handed, WarehouseGate
from pipeline.collection.odd_answers import duplicate_key_texts, rejected_runs
from pipeline.collection.paging import PageWalk, page_is_unchanged, run_id
from pipeline.collection.results import ConnectionResult, Progress
from pipeline.errors import ITwinRunsError
from pipeline.itwin.client import ExportApiClient, RunsPage
from pipeline.itwin.errors import PagingError
from pipeline.transform.flatten import FetchedRun
from pipeline.warehouse.loader import LoadStats

log = logging.getLogger("pipeline.collection")


class PageReader:
    """Reads connections' pages and hands their runs to the loader, within memory bounds
    shared by every connection of the collection."""

    def __init__(
        self,
        client: ExportApiClient,
        gate: WarehouseGate,
        loader: CollectedRunsWriter,
        books: Bookkeeper,
        progress: Progress,
        stopped_because: Callable[[], str | None],
        *,
        batch_runs: int,
        max_held_runs: int,
        max_waiting_runs: int,
    ) -> None:
        self.client = client
        self._gate = gate
        self._loader = loader
        self._books = books
        self.progress = progress
        self._stopped_because = stopped_because
        self.batch_runs = batch_runs
        # Past `max_held_runs` fetched and not handed over, a connection hands over what
        # it holds; past `max_waiting_runs` handed over and not loaded, it waits for its
        # own load before reading on.
        self.max_held_runs = max_held_runs
        self.max_waiting_runs = max_waiting_runs
        self.held = 0

    async def read(
        self, connection_id: str, result: ConnectionResult, read: FullRead | None
    ) -> tuple[set[str], datetime | None]:
        """Read pages (all, or the newest until one holds nothing new); load in batches.

        A full read (`read`) may go on from where an earlier one stopped, and notes how far
        its loads got. Returns the run ids seen and the last full pass to record when the
        connection ends: this pass's start if it read to the end, the one deferred if an
        incremental read's batch loaded early.
        """
        seen: set[str] = set()
        pending: list[Handed] = []
        walk = PageWalk(result.mode)
        pages = 0
        deferred: datetime | None = None
        loading: asyncio.Future[LoadStats] | None = None  # its batch in the loader, if any
        page_next: str | None = None  # the next link of the last page read
        try:
            async for page in _list_runs(self.client, connection_id, result, read):
                page_next = page.next_url
                pages += 1
                page_ids = [rid for rid in map(run_id, page.runs) if rid is not None]
                seen.update(page_ids)
                result.runs_seen += len(page.runs) + len(page.rejected)
                # Only an incremental walk stops early; a full one need not ask the warehouse.
                unchanged = walk.incremental and page_is_unchanged(
                    page.runs,
                    await self._gate.call(
                        self._gate.warehouse.bookkeeping.latest_hashes,
                        connection_id,
                        page_ids,
                    ),
                )
                pending.extend(FetchedRun(connection_id, run, page.fetched_at) for run in page.runs)
                pending.extend(rejected_runs(connection_id, page))
                await self._keep_duplicate_texts(connection_id, page, result)
                self.held += len(page.runs) + len(page.rejected)
                if len(pending) >= self.batch_runs or self.held >= self.max_held_runs:
                    if walk.incremental and deferred is None:
                        deferred = await self._books.defer_full_pass(connection_id)
                    loading = await self._hand_over(pending, result, loading, read, page_next)
                    pending = []
                self.progress.pages_fetched(connection_id, pages, result.runs_seen)
                if not walk.go_on(page.runs, unchanged, page.has_next):
                    break
        except ITwinRunsError:
            # The API stopped or failed this read: what it already sent is loaded all the
            # same. An incremental read's partial pages must not look like a finished walk,
            # so the next collection reads this connection whole.
            if pending and walk.incremental and deferred is None:
                await self._books.defer_full_pass(connection_id)
            if pending:
                loading = await self._hand_over(pending, result, loading, read, page_next)
            if loading is not None:
                await _settled(loading)
            raise
        except asyncio.CancelledError:
            if pending and self._stopped_because() is not None:  # stopped: still load them
                if walk.incremental and deferred is None:
                    await self._books.defer_full_pass(connection_id)
                loading = self._loader.hand_over(pending)
                if read is not None:
                    loading.add_done_callback(lambda done: read.loaded(done, page_next))
            self.held -= len(pending)
            raise
        except BaseException as exc:
            self.held -= len(pending)  # loads nothing more
            if loading is not None and isinstance(exc, Exception):
                await _settled(loading)  # its batch is good: let it finish
            raise
        if pending:
            loading = await self._hand_over(pending, result, loading, read, page_next)
        if loading is not None:
            await loading
        if read is not None and walk.read_all:
            return seen, read.pass_started_at
        return seen, deferred

    async def _hand_over(
        self,
        runs: list[Handed],
        result: ConnectionResult,
        previous: asyncio.Future[LoadStats] | None,
        read: FullRead | None = None,
        up_to: str | None = None,
    ) -> asyncio.Future[LoadStats] | None:
        """Give held runs to the loader and read on while they load (returns their load);
        once loaded, a full `read` has loaded up to `up_to`, the next link after them.

        A load can stall (a checkpoint), and the budget's requests are lost if every
        connection waits for it. One batch of a connection at a time, though, so a merged
        write holds each run once and a connection's batches load in order.
        """
        if previous is not None:
            await previous
        self.held -= len(runs)
        loading = self._loader.hand_over(runs)
        loading.add_done_callback(lambda done: _count_loaded(done, result))
        if read is not None:
            loading.add_done_callback(lambda done: read.loaded(done, up_to))
        if self._loader.waiting > self.max_waiting_runs:
            await loading
            return None
        return loading

    async def _keep_duplicate_texts(
        self, connection_id: str, page: RunsPage, result: ConnectionResult
    ) -> None:
        """Runs that repeated a key load with the last value; their raw text is kept too."""
        if page.duplicate_keys:
            result.duplicate_keys += len(page.duplicate_keys)
            rows = duplicate_key_texts(connection_id, page)
            await self._gate.call(self._gate.warehouse.bookkeeping.keep_raw_texts, rows)


def _list_runs(
    client: ExportApiClient, connection_id: str, result: ConnectionResult, read: FullRead | None
) -> AsyncIterator[RunsPage]:
    """The connection's pages: a full read from where its pass stopped, if it did."""
    if read is not None and read.start_url is not None:
        try:
            return client.list_runs(connection_id, stats=result.stats, start_url=read.start_url)
        except PagingError as exc:  # e.g. the API's address changed since
            log.warning("connection %s: not resuming its full pass: %s", connection_id, exc)
            read.start_over(result.started_at)
    return client.list_runs(connection_id, stats=result.stats)


def _count_loaded(loading: asyncio.Future[LoadStats], result: ConnectionResult) -> None:
    if not loading.cancelled() and loading.exception() is None:
        result.add_loaded(loading.result().for_connection(result.connection_id))


async def _settled(loading: asyncio.Future[LoadStats]) -> None:
    """Wait for a batch whose read failed since; the read's error is the one to report."""
    with contextlib.suppress(Exception):
        await loading
