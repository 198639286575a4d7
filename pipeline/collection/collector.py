"""The collector: every configured connection read concurrently, its runs loaded as they arrive.

Pure orchestration over the API client, the page reader, the loader and the bookkeeping
(no Dagster), so the CLI, the Dagster assets and the tests drive one logic.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from pipeline.collection.bookkeeping import Bookkeeper, FullRead
from pipeline.collection.connections import ConnectionBook
from pipeline.collection.fetching import as_api_error, discover_connections
from pipeline.collection.loading import CollectedRunsWriter, WarehouseGate
from pipeline.collection.open_runs import OpenRunRefresher
from pipeline.collection.page_reader import PageReader
from pipeline.collection.paging import choose_mode
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
from pipeline.itwin.client import CallStats, ExportApiClient
from pipeline.itwin.errors import ApiError
from pipeline.itwin.settings import Settings
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
        self.force_full = force_full
        self.collection_id = uuid.uuid4().hex
        self._gate = WarehouseGate(warehouse)
        self._loader = CollectedRunsWriter(self._gate)
        self._books = Bookkeeper(self._gate, self.collection_id)
        self._tasks: list[asyncio.Task[ConnectionResult]] = []
        self.stopped_because: str | None = None
        self._connections = ConnectionBook(client, self._gate, now)
        # Memory bounds over all connections: see PageReader.
        self._pages = PageReader(
            client,
            self._gate,
            self._loader,
            self._books,
            self.progress,
            lambda: self.stopped_because,
            batch_runs=batch_runs,
            max_held_runs=max_held_runs,
            max_waiting_runs=max_waiting_runs,
        )
        self._open_runs = OpenRunRefresher(client, self._loader, self._books, batch_runs)

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
            # Many small loads in a row: checkpoint by WAL size, not DuckDB's default; far
            # less than bulk file loads, since here checkpoints overlap the waits for the API
            # and the one left for the end, after the last answer, stays small.
            with self.warehouse.loader.bulk("64MB"):
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
                self.force_full or self._open_runs.has_unaddressable(connection_id),
            )
            if result.mode == FULL:
                read = self._books.full_read(
                    connection_id, result.started_at, self.settings.full_pass_every_s
                )
            refused = await self._connections.refresh(connection_id, result.stats)
            result.display_name = self._connections.display_name(connection_id)
            self.progress.connection_started(connection_id, result.mode, result.display_name)
            open_runs = self._books.open_at_start.get(connection_id, [])
            if result.mode == INCREMENTAL and self._connections.is_quiet(connection_id, open_runs):
                log.debug("connection %s: its last run is stored and complete", connection_id)
            else:
                seen, full_pass = await self._pages.read(connection_id, result, read)
                await self._open_runs.refresh(connection_id, seen, result)
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
