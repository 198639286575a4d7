"""The collector: every configured connection read concurrently, its runs loaded as they arrive.

Pure orchestration over the API client, the paging decisions, the loader and the
bookkeeping (no Dagster), so the CLI, the Dagster assets and the tests drive one logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx

from pipeline.collection.bookkeeping import Bookkeeper, FullRead
from pipeline.collection.connections import ConnectionBook
from pipeline.collection.fetching import as_api_error, discover_connections, fetch_runs
from pipeline.collection.loading import Handed, RunLoader, WarehouseGate
from pipeline.collection.odd_answers import duplicate_key_texts, rejected_runs
from pipeline.collection.paging import PageWalk, choose_mode, page_is_unchanged, run_id
from pipeline.collection.requests_log import RequestRecorder
from pipeline.collection.results import (
    FULL,
    INCREMENTAL,
    CollectionResult,
    ConnectionResult,
    NoProgress,
    Progress,
)
from pipeline.collection.stopping import stop_on_signals
from pipeline.errors import ITwinRunsError
from pipeline.itwin.client import CallStats, ExportApiClient, RunsPage
from pipeline.itwin.errors import ApiError, InvalidIdError, PagingError
from pipeline.itwin.ids import validate_id
from pipeline.itwin.settings import Settings
from pipeline.transform.flatten import FetchedRun
from pipeline.warehouse.loader import LoadStats
from pipeline.warehouse.store import Warehouse

log = logging.getLogger("pipeline.collection")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Collector:
    """Collect every configured connection concurrently and keep the warehouse current."""

    def __init__(
        self,
        client: ExportApiClient,
        warehouse: Warehouse,
        settings: Settings,
        *,
        progress: Progress | None = None,
        now: Callable[[], datetime] = _utcnow,
        batch_runs: int = 2_000,
        force_full: bool = False,
        max_held_runs: int = 5_000,
        max_waiting_runs: int = 20_000,
    ) -> None:
        self.client = client
        self.warehouse = warehouse
        self.settings = settings
        self.progress: Progress = progress or NoProgress()
        self.now = now
        self.batch_runs = batch_runs
        self.force_full = force_full
        # Memory bounds over all connections. Past `max_held_runs` fetched and not handed
        # over, a connection hands over what it holds; past `max_waiting_runs` handed over
        # and not loaded, it waits for its own load before reading on.
        self.max_held_runs = max_held_runs
        self.max_waiting_runs = max_waiting_runs
        self.held = 0
        self.collection_id = uuid.uuid4().hex
        self._gate = WarehouseGate(warehouse)
        self._loader = RunLoader(self._gate)
        self._books = Bookkeeper(self._gate, self.collection_id)
        self._tasks: list[asyncio.Task[ConnectionResult]] = []
        self.stopped_because: str | None = None
        self._connections = ConnectionBook(client, self._gate, now)

    async def run(self) -> CollectionResult:
        started = self.now()
        async with self._books, self._loader, RequestRecorder(self.client, self._gate, self.now):
            found = await discover_connections(
                self.client, self.settings.connection_ids, self.settings.imodel_ids, self.now
            )
            connection_ids, failures = found.connection_ids, found.failures
            for failed in failures:
                await self._books.finish(failed, self.now())
                self.progress.connection_finished(failed)
            await self._connections.save(found.details, connection_ids)
            await self._books.read_state(connection_ids)
            await self._connections.read_state(connection_ids)
            if self.stopped_because is not None:  # stopped before reading any list
                connection_ids = []
            # Many small loads in a row: checkpoint by WAL size, not DuckDB's default; less
            # than bulk file loads, since here checkpoints overlap the waits for the API.
            with self.warehouse.loader.bulk("256MB"):
                self._tasks = [asyncio.create_task(self._collect_one(c)) for c in connection_ids]
                results = await asyncio.gather(*self._tasks)
                # A stop hands its last batches over unawaited: they load before the bulk
                # settings are put back on the connection they use.
                await self._loader.drain()
        connections = [*failures, *results]
        totals = CallStats()
        totals.add(found.stats)  # discovery's requests (failed ones are among the results)
        for r in connections:
            totals.add(r.stats)
        return CollectionResult(self.collection_id, started, self.now(), connections, totals)

    def stop(self, why: str) -> None:
        """Stop fetching now (a signal): what was fetched is loaded, each connection's end
        recorded with `why`, and `run` returns."""
        self.stopped_because = why
        for task in self._tasks:
            task.cancel()

    async def _collect_one(self, connection_id: str) -> ConnectionResult:
        result = ConnectionResult(connection_id=connection_id, mode=FULL, started_at=self.now())
        full_pass: datetime | None = None  # what to record as its last full pass, if anything
        read: FullRead | None = None  # a full read: where it began and what it loaded
        try:
            last_full = self._books.last_full.get(connection_id)
            result.mode = choose_mode(
                last_full,
                self.now(),
                self.settings.full_pass_every_s,
                self.force_full or self._has_unaddressable_open_run(connection_id),
            )
            if result.mode == FULL:
                read = self._books.full_read(
                    connection_id, result.started_at, self.settings.full_pass_every_s
                )
            self.progress.connection_started(connection_id, result.mode)
            refused = await self._connections.refresh(connection_id, result.stats)
            open_runs = self._books.open_at_start.get(connection_id, [])
            if result.mode == INCREMENTAL and self._connections.is_quiet(connection_id, open_runs):
                log.debug("connection %s: its last run is stored and complete", connection_id)
            else:
                seen, full_pass = await self._read_pages(connection_id, result, read)
                await self._refresh_open_runs(connection_id, seen, result)
            if refused is not None:
                raise refused  # its runs are loaded; it still fails, naming why
        except ITwinRunsError as exc:
            err = as_api_error(exc)
            if err.connection_id is None:
                err.connection_id = connection_id
            result.error = err
            # A stop's message starts with "stopped:".
            verb = "" if result.stopped else " failed"
            log.warning("collecting connection %s%s: %s", connection_id, verb, err)
        except asyncio.CancelledError:
            if self.stopped_because is None:
                raise
            # Recorded in the collection log; the command says it once, not per connection.
            result.error = ApiError(message=self.stopped_because, connection_id=connection_id)
            result.ended_at = self.now()
            await self._books.finish(result, self.now(), full_pass, read)
            return result
        result.ended_at = self.now()
        await self._books.finish(result, self.now(), full_pass, read)
        self.progress.connection_finished(result)
        return result

    async def _read_pages(
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
            async for page in self._list_runs(connection_id, result, read):
                page_next = page.next_url
                pages += 1
                page_ids = [rid for rid in map(run_id, page.runs) if rid is not None]
                seen.update(page_ids)
                result.runs_seen += len(page.runs) + len(page.rejected)
                # Only an incremental walk stops early; a full one need not ask the warehouse.
                unchanged = walk.incremental and page_is_unchanged(
                    page.runs,
                    await self._gate.call(
                        self.warehouse.bookkeeping.reads.latest_hashes, connection_id, page_ids
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
            if pending and self.stopped_because is not None:  # stopped: still load them
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

    def _list_runs(
        self, connection_id: str, result: ConnectionResult, read: FullRead | None
    ) -> AsyncIterator[RunsPage]:
        """The connection's pages: a full read from where its pass stopped, if it did."""
        if read is not None and read.start_url is not None:
            try:
                return self.client.list_runs(
                    connection_id, stats=result.stats, start_url=read.start_url
                )
            except PagingError as exc:  # e.g. the API's address changed since
                log.warning("connection %s: not resuming its full pass: %s", connection_id, exc)
                read.start_over(result.started_at)
        return self.client.list_runs(connection_id, stats=result.stats)

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

    async def _refresh_open_runs(
        self, connection_id: str, seen: set[str], result: ConnectionResult
    ) -> None:
        """Re-fetch stored runs that are not Completed and were not on the pages just read.

        What was fetched is loaded even when the refresh ended early (its error is raised
        after); runs it did not re-read stay as stored, open, for the next collection.
        """
        todo = [r for r in self._books.open_at_start.get(connection_id, []) if r not in seen]
        refreshed = await fetch_runs(self.client, connection_id, todo, result)
        result.runs_refreshed += len(refreshed.fetched)
        handed: list[Handed] = [*refreshed.fetched, *refreshed.rejected]
        for start in range(0, len(handed), self.batch_runs):
            stats = await self._loader.write(handed[start : start + self.batch_runs])
            result.add_loaded(stats.for_connection(connection_id))
        if refreshed.error is not None:
            raise refreshed.error

    def _has_unaddressable_open_run(self, connection_id: str) -> bool:
        """An open run whose id cannot be a URL path segment is re-read through the list
        (a full pass reads it there) instead of by id, so it never wedges the connection."""
        for rid in self._books.open_at_start.get(connection_id, []):
            try:
                validate_id(rid, "run_id")
            except InvalidIdError:
                return True
        return False

    async def _keep_duplicate_texts(
        self, connection_id: str, page: RunsPage, result: ConnectionResult
    ) -> None:
        """Runs that repeated a key load with the last value; their raw text is kept too."""
        if page.duplicate_keys:
            result.duplicate_keys += len(page.duplicate_keys)
            rows = duplicate_key_texts(connection_id, page)
            await self._gate.call(self.warehouse.bookkeeping.records.keep_raw_texts, rows)


def _count_loaded(loading: asyncio.Future[LoadStats], result: ConnectionResult) -> None:
    if not loading.cancelled() and loading.exception() is None:
        result.add_loaded(loading.result().for_connection(result.connection_id))


async def _settled(loading: asyncio.Future[LoadStats]) -> None:
    """Wait for a batch whose read failed since; the read's error is the one to report."""
    with contextlib.suppress(Exception):
        await loading


async def collect(
    settings: Settings,
    warehouse: Warehouse,
    *,
    progress: Progress | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    force_full: bool = False,
) -> CollectionResult:
    """Open a client for the settings and collect every configured connection."""
    settings.require_credentials()
    settings.require_targets()
    history = warehouse.bookkeeping.requests.recent_requests(datetime.now(UTC))
    async with ExportApiClient(settings, transport=transport, request_history=history) as client:
        collector = Collector(client, warehouse, settings, progress=progress, force_full=force_full)

        def on_signal(signum: int) -> None:
            name = signal.Signals(signum).name
            log.warning("%s received: stopping the collection", name)
            collector.stop(f"interrupted by {name}: stopped fetching, what was fetched is loaded")

        with stop_on_signals(on_signal):
            return await collector.run()
