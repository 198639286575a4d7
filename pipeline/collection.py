"""Incremental collection: decide which pages and runs to fetch, and load them as they arrive.

Pure orchestration over the API client, the flattener and the warehouse (no Dagster),
so the CLI, the Dagster assets and the tests all drive the same logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pipeline.errors import ITwinRunsError
from pipeline.itwin.client import CallStats, ExportApiClient
from pipeline.itwin.errors import ApiError, NotFoundError, describe_failure
from pipeline.itwin.settings import Settings
from pipeline.transform.flatten import FetchedRun, FlatBatch, flatten_runs, payload_hash
from pipeline.transform.offload import OFFLOAD_AFTER_RUNS, CollectionFlattener
from pipeline.warehouse.store import CollectionLogEntry, LoadStats, Warehouse

log = logging.getLogger("pipeline.collection")

FULL = "full"
INCREMENTAL = "incremental"
# A "last full pass" this old makes the next collection of a connection a full pass.
_LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)


class Progress(Protocol):
    """What a front end (terminal bars, Dagster log lines) is told as work advances."""

    def connection_started(self, connection_id: str, mode: str) -> None: ...

    def pages_fetched(self, connection_id: str, pages: int, runs: int) -> None: ...

    def connection_finished(self, result: ConnectionResult) -> None: ...


class _NoProgress:
    def connection_started(self, connection_id: str, mode: str) -> None:
        pass

    def pages_fetched(self, connection_id: str, pages: int, runs: int) -> None:
        pass

    def connection_finished(self, result: ConnectionResult) -> None:
        pass


class FanOutProgress:
    """Tell several front ends at once (e.g. Dagster's log and a terminal's bars)."""

    def __init__(self, *sinks: Progress) -> None:
        self.sinks = sinks

    def connection_started(self, connection_id: str, mode: str) -> None:
        for sink in self.sinks:
            sink.connection_started(connection_id, mode)

    def pages_fetched(self, connection_id: str, pages: int, runs: int) -> None:
        for sink in self.sinks:
            sink.pages_fetched(connection_id, pages, runs)

    def connection_finished(self, result: ConnectionResult) -> None:
        for sink in self.sinks:
            sink.connection_finished(result)


# Front ends of this process that want progress from in-process Dagster runs (the CLI's
# terminal bars): the asset cannot be handed objects through run config.
PROCESS_PROGRESS: list[Progress] = []


@dataclass
class ConnectionResult:
    """The outcome of collecting one connection (or discovering one iModel's connections)."""

    connection_id: str
    mode: str
    started_at: datetime
    ended_at: datetime | None = None
    stats: CallStats = field(default_factory=CallStats)
    runs_seen: int = 0
    runs_new: int = 0
    runs_changed: int = 0
    runs_unchanged: int = 0
    runs_quarantined: int = 0
    runs_refreshed: int = 0
    runs_vanished: int = 0
    error: ApiError | None = None
    imodel_id: str | None = None  # set when this records a failed iModel discovery

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe_counts(self) -> str:
        return (
            f"{self.runs_new} new, {self.runs_changed} changed, {self.runs_unchanged} "
            f"unchanged, {self.stats.requests} requests"
        )

    def describe_error(self) -> str:
        if self.error is None:
            return ""
        return describe_failure(self.error.status, self.error.code, self.error.message)


@dataclass
class CollectionResult:
    collection_id: str
    started_at: datetime
    ended_at: datetime
    connections: list[ConnectionResult]
    totals: CallStats

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.connections)

    @property
    def failed(self) -> list[ConnectionResult]:
        return [c for c in self.connections if not c.ok]

    @property
    def runs_loaded(self) -> int:
        return sum(c.runs_new + c.runs_changed for c in self.connections)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _start_key(run: Any) -> str | None:
    """ISO timestamps of one format sort as text, which is all the order check needs."""
    if isinstance(run, dict):
        value = run.get("startDateTime")
        if isinstance(value, str):
            return value
    return None


def _run_id(run: Any) -> str | None:
    if isinstance(run, dict) and isinstance(run.get("id"), str):
        return str(run["id"])
    return None


class _OrderWatch:
    """Tells whether a connection's runs arrive newest-first, across the pages read so far."""

    def __init__(self) -> None:
        self.previous: str | None = None
        self.newest_first = True

    def observe(self, runs: Iterable[Any]) -> None:
        for run in runs:
            key = _start_key(run)
            if key is None:
                continue
            if self.previous is not None and key > self.previous:
                self.newest_first = False
            self.previous = key


async def _abandon(loading: asyncio.Future[None] | None, why: BaseException) -> None:
    """A read failed: let its batch in flight finish (it is good), or stop it if cancelled."""
    if loading is None or loading.done():
        if loading is not None and not loading.cancelled():
            loading.exception()  # the read's own error is the one to report
        return
    if isinstance(why, Exception):
        with contextlib.suppress(Exception):
            await loading
    else:
        loading.cancel()


def _flatten_here(runs: Sequence[FetchedRun]) -> FlatBatch:
    # Looks `flatten_runs` up when called: crash trials replace it to kill the process.
    return flatten_runs(runs)


# Thresholds of the cyclic garbage collector during a collection (see _young_gc_only).
_COLLECTING_GC_THRESHOLDS = (50_000, 10, 1_000_000)
_gc_saved: list[tuple[int, int, int]] = []  # thresholds before the outermost collection


@contextlib.contextmanager
def _young_gc_only() -> Iterator[None]:
    """Collect only young objects, and rarely, while a collection runs.

    Pages parse into millions of small containers that live until their batch loads and
    form no cycles, so the default thresholds (a young pass every 700 new containers, a
    full pass whenever the old ones grew by a quarter) spent 14 s (wall, on a busy
    machine) in 2,640 passes over a 100k-run collection, 1.3-2 s with these. Young passes
    every 50k containers still free the short-lived cycles of requests and retries;
    what reaches the old generation waits until the collection ends.
    """
    if not _gc_saved:
        _gc_saved.append(gc.get_threshold())
        gc.set_threshold(*_COLLECTING_GC_THRESHOLDS)
    else:
        _gc_saved.append(_gc_saved[-1])  # nested or concurrent collections: count them
    try:
        yield
    finally:
        saved = _gc_saved.pop()
        if not _gc_saved:
            gc.set_threshold(*saved)


@dataclass
class _Submission:
    runs: list[Any]  # runs to load, or whatever else a _MergingLoader writes
    done: asyncio.Future[Any]

    def settle(self, stats: Any, exc: BaseException | None = None) -> None:
        if self.done.done():
            return  # its connection was cancelled meanwhile
        if exc is not None:
            self.done.set_exception(exc)
        else:
            self.done.set_result(stats)


_FAILED = object()  # a batch whose preparation failed (its waiters were told)


class _MergingLoader:
    """Loads that connections ask for while another load runs are merged into one.

    Each connection still waits until its own runs are committed, but 200 connections
    finishing together cost a few transactions of thousands of runs, not 200 small ones
    (each has a fixed cost of several statements and a commit). A merged batch holds
    runs of different connections only, so no run can meet another version of itself
    that it would not have met alone.

    With a `prepare` stage (flattening), batch k+1 is prepared while batch k loads: a
    connection submits again only after its last batch loaded, so two batches in flight
    never share a connection and their order does not matter. At most one batch is
    being prepared and one loaded (plus one prepared and waiting), which bounds memory.

    The end-of-connection bookkeeping (full-pass marks, collection-log rows) is merged
    the same way.
    """

    def __init__(
        self,
        load: Callable[[Any], Awaitable[Any]],
        prepare: Callable[[list[Any]], Awaitable[Any]] | None = None,
    ) -> None:
        self._load = load
        self._prepare = prepare
        self._queue: list[_Submission] = []
        self._driver: asyncio.Task[None] | None = None

    async def submit(self, runs: list[Any]) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Submission(list(runs), done))
        if self._driver is None or self._driver.done():
            # Taken now, not when the task first runs: a lone load is not delayed, and
            # whatever queues meanwhile goes together into the next one.
            taken, self._queue = self._queue, []
            self._driver = asyncio.create_task(self._drive(taken))
        return await done

    async def _drive(self, taken: list[_Submission]) -> None:
        loading: asyncio.Task[None] | None = None
        try:
            while taken:
                prepared = await self._prepared(taken)
                if loading is not None:
                    await loading  # one load at a time
                if prepared is not _FAILED:
                    loading = asyncio.create_task(self._apply(prepared, taken))
                taken, self._queue = self._queue, []
                if not taken and loading is not None:
                    await loading  # what queues meanwhile is this driver's to take
                    loading = None
                    taken, self._queue = self._queue, []
        except BaseException as exc:  # cancelled: nobody may be left waiting
            for s in [*taken, *self._queue]:
                s.settle(None, exc)
            self._queue = []
            if loading is not None:
                loading.cancel()
            raise

    async def _prepared(self, taken: list[_Submission]) -> Any:
        runs = [run for s in taken for run in s.runs]
        if self._prepare is None:
            return runs
        try:
            return await self._prepare(runs)
        except Exception as exc:  # every waiting connection sees the failure
            for s in taken:
                s.settle(None, exc)
            return _FAILED

    async def _apply(self, prepared: Any, taken: list[_Submission]) -> None:
        try:
            stats = await self._load(prepared)
        except Exception as exc:  # every waiting connection sees the failure
            for s in taken:
                s.settle(None, exc)
            return
        except BaseException as exc:
            for s in taken:
                s.settle(None, exc)
            raise
        for s in taken:
            s.settle(stats)


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
        max_in_flight_runs: int = 20_000,
        offload_after_runs: int | None = OFFLOAD_AFTER_RUNS,
    ) -> None:
        self.client = client
        self.warehouse = warehouse
        self.settings = settings
        self.progress: Progress = progress or _NoProgress()
        self.now = now
        self.batch_runs = batch_runs
        # Runs fetched but not yet handed to the loader, over all connections: past this,
        # a connection loads what it holds before reading on, which bounds memory.
        self.max_held_runs = max_held_runs
        self._held = 0
        # Runs handed to the loader and not yet loaded, over all connections: a connection
        # reads on while its batch loads, until there are this many (memory again).
        self.max_in_flight_runs = max_in_flight_runs
        self._in_flight = 0
        self.force_full = force_full
        self.collection_id = uuid.uuid4().hex
        # DuckDB connections are not safe for concurrent use; loads also take long enough
        # that they belong off the event loop, so requests keep flowing meanwhile.
        self._db_lock = asyncio.Lock()
        # Flattening holds the GIL the HTTP client needs: past a few thousand runs it moves
        # to a child process, and the loader flattens one batch while loading the last.
        self._flattener = CollectionFlattener(
            offload_after_runs=offload_after_runs, flatten_here=_flatten_here
        )
        self._loader = _MergingLoader(self._load_batch, prepare=self._flattener.flatten)
        self._finisher = _MergingLoader(self._write_finished)
        # Read once for all connections when the collection starts (see run()).
        self._last_full: dict[str, datetime] = {}
        self._open_at_start: dict[str, list[str]] = {}

    async def _db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async with self._db_lock:
            return await asyncio.to_thread(fn, *args, **kwargs)

    async def run(self) -> CollectionResult:
        started = self.now()
        connection_ids, failures = await self._resolve_connections()
        # One query each for all connections, not one per connection queued with the loads.
        # The open runs read now are those a connection's end would find unseen: every run
        # this collection stores was on a page it read.
        self._last_full = await self._db(self.warehouse.last_full_passes, connection_ids)
        self._open_at_start = await self._db(self.warehouse.open_runs_by_connection, connection_ids)
        # Many small loads in a row: checkpoint by WAL size, not every 16 MB (see bulk()).
        # 256 MB, not bulk()'s 1 GB for file loads: here checkpoints overlap the waits for
        # the API, and a big one left for the end lengthens the tail. First collection,
        # 200 x 500 runs (2 runs each): 128 MB 33.3/34.1 s, 256 MB 28.8/28.7 s, 512 MB
        # 29.5/30.9 s, 1 GB 36.9/33.8 s; DuckDB on one thread made it slower (33.2/32.4 s).
        try:
            with self.warehouse.bulk("256MB"), _young_gc_only():
                results = await asyncio.gather(*(self._collect_one(c) for c in connection_ids))
        finally:
            self._flattener.close()  # on every way out: no child outlives its collection
        totals = CallStats()
        for r in [*failures, *results]:
            totals.add(r.stats)
        return CollectionResult(
            collection_id=self.collection_id,
            started_at=started,
            ended_at=self.now(),
            connections=[*failures, *results],
            totals=totals,
        )

    async def _resolve_connections(self) -> tuple[list[str], list[ConnectionResult]]:
        """Configured connection ids plus those discovered through iModels, each once."""
        ids = list(dict.fromkeys(self.settings.connection_ids))
        failures: list[ConnectionResult] = []
        for imodel_id in self.settings.imodel_ids:
            stats = CallStats()
            started = self.now()
            try:
                async for conn in self.client.list_connections(imodel_id, stats=stats):
                    cid = conn.get("id") if isinstance(conn, dict) else None
                    if isinstance(cid, str) and cid not in ids:
                        ids.append(cid)
            except ITwinRunsError as exc:
                err = exc if isinstance(exc, ApiError) else ApiError(message=str(exc))
                log.warning("discovering connections of iModel %s failed: %s", imodel_id, err)
                result = ConnectionResult(
                    connection_id=f"imodel:{imodel_id}",
                    mode="discovery",
                    started_at=started,
                    ended_at=self.now(),
                    stats=stats,
                    error=err,
                    imodel_id=imodel_id,
                )
                failures.append(result)
                await self._finish(result)
                self.progress.connection_finished(result)
        return ids, failures

    def _choose_mode(self, connection_id: str) -> str:
        if self.force_full:
            return FULL
        last_full = self._last_full.get(connection_id)
        if last_full is None:
            return FULL  # first collection, or an earlier full pass never finished
        age = (self.now() - last_full).total_seconds()
        return FULL if age >= self.settings.full_pass_every_s else INCREMENTAL

    async def _collect_one(self, connection_id: str) -> ConnectionResult:
        result = ConnectionResult(connection_id=connection_id, mode=FULL, started_at=self.now())
        full_pass: datetime | None = None  # what to record as its last full pass, if anything
        try:
            result.mode = self._choose_mode(connection_id)
            self.progress.connection_started(connection_id, result.mode)
            seen, read_all, deferred_full = await self._read_pages(connection_id, result)
            full_pass = result.started_at if result.mode == FULL and read_all else deferred_full
            await self._refresh_open_runs(connection_id, seen, result)
        except ITwinRunsError as exc:
            err = exc if isinstance(exc, ApiError) else ApiError(message=str(exc))
            if err.connection_id is None:
                err.connection_id = connection_id
            result.error = err
            log.warning("collecting connection %s failed: %s", connection_id, err)
        result.ended_at = self.now()
        await self._finish(result, full_pass)
        self.progress.connection_finished(result)
        return result

    async def _read_pages(
        self, connection_id: str, result: ConnectionResult
    ) -> tuple[set[str], bool, datetime | None]:
        """Read pages (all of them, or the newest until one holds nothing new); load in batches.

        Returns the run ids seen, whether the list was read to its end, and the last full
        pass to restore once the connection ends (set when `_defer_full_pass` ran).
        """
        seen: set[str] = set()
        pending: list[FetchedRun] = []
        order = _OrderWatch()
        pages = 0
        read_all = True
        deferred_full: datetime | None = None
        loading: asyncio.Future[None] | None = None  # this connection's batch in the loader
        try:
            async for page in self.client.list_runs(connection_id, stats=result.stats):
                pages += 1
                order.observe(page.runs)
                fetched = [FetchedRun(connection_id, run, page.fetched_at) for run in page.runs]
                page_ids = [rid for rid in map(_run_id, page.runs) if rid is not None]
                seen.update(page_ids)
                result.runs_seen += len(page.runs)
                # Only an incremental read stops early; a full one need not ask the warehouse.
                nothing_new = result.mode == INCREMENTAL and await self._page_is_unchanged(
                    connection_id, page.runs, page_ids
                )
                pending.extend(fetched)
                self._held += len(fetched)
                if len(pending) >= self.batch_runs or self._held >= self.max_held_runs:
                    if result.mode == INCREMENTAL and deferred_full is None:
                        deferred_full = await self._defer_full_pass(connection_id)
                    loading = await self._hand_over(pending, result, loading)
                    pending = []
                self.progress.pages_fetched(connection_id, pages, result.runs_seen)
                if (
                    result.mode == INCREMENTAL
                    and nothing_new
                    and order.newest_first
                    and page.has_next
                ):
                    read_all = False
                    break
        except BaseException as exc:
            self._held -= len(pending)  # a failed read loads nothing more
            await _abandon(loading, exc)
            raise
        if pending:
            loading = await self._hand_over(pending, result, loading)
        if loading is not None:
            await loading
        return seen, read_all, deferred_full

    async def _defer_full_pass(self, connection_id: str) -> datetime:
        """Make the next collection a full pass until this read has loaded all it found.

        A batch loaded before the read ends makes the newest pages look unchanged, so after
        a crash or failure the next incremental read would stop before the older new runs
        this one never loaded. Returns the real last full pass, to restore at the end.
        """
        await self._db(self.warehouse.mark_full_pass, connection_id, _LONG_AGO)
        return self._last_full.get(connection_id, _LONG_AGO)

    async def _page_is_unchanged(
        self, connection_id: str, runs: list[Any], run_ids: list[str]
    ) -> bool:
        if len(run_ids) != len(runs):
            return False  # runs without a readable id: let the loader quarantine them
        stored: dict[str, str] = await self._db(
            self.warehouse.latest_hashes, connection_id, run_ids
        )
        return all(stored.get(_run_id(run) or "") == payload_hash(run) for run in runs)

    async def _refresh_open_runs(
        self, connection_id: str, seen: set[str], result: ConnectionResult
    ) -> None:
        """Re-fetch stored runs that are not Completed and were not on the pages just read."""
        todo = [rid for rid in self._open_at_start.get(connection_id, []) if rid not in seen]
        if not todo:
            return

        async def fetch(run_id: str) -> FetchedRun | None:
            try:
                run, fetched_at = await self.client.get_run(
                    connection_id, run_id, stats=result.stats
                )
            except NotFoundError:
                # The API no longer knows it; keep the last version we stored.
                log.warning("open run %s of connection %s is gone (404)", run_id, connection_id)
                result.runs_vanished += 1
                return None
            return FetchedRun(connection_id, run, fetched_at)

        fetched = [f for f in await asyncio.gather(*(fetch(r) for r in todo)) if f is not None]
        result.runs_refreshed += len(fetched)
        for start in range(0, len(fetched), self.batch_runs):
            await self._load(fetched[start : start + self.batch_runs], result)

    async def _load_batch(self, batch: FlatBatch) -> LoadStats:
        # Flattened before (see _MergingLoader): it needed no warehouse, so it did not
        # wait for (or hold up) other queries.
        stats: LoadStats = await self._db(self.warehouse.load, batch)
        return stats

    async def _hand_over(
        self,
        runs: list[FetchedRun],
        result: ConnectionResult,
        previous: asyncio.Future[None] | None,
    ) -> asyncio.Future[None] | None:
        """Give held runs to the loader and read on while they load (returns their load).

        A load stalls (a checkpoint takes seconds) and the budget's requests are lost if
        every connection waits for it. One batch of a connection at a time, though: so
        merged batches hold different connections and a connection's batches load in
        order. Past `max_in_flight_runs`, this waits for the load.
        """
        if previous is not None:
            await previous
        self._held -= len(runs)
        self._in_flight += len(runs)
        loading = asyncio.ensure_future(self._load_in_flight(runs, result))
        if self._in_flight > self.max_in_flight_runs:
            await loading
            return None
        return loading

    async def _load_in_flight(self, runs: list[FetchedRun], result: ConnectionResult) -> None:
        try:
            await self._load(runs, result)
        finally:
            self._in_flight -= len(runs)

    async def _load(self, runs: list[FetchedRun], result: ConnectionResult) -> None:
        stats = await self._loader.submit(runs)
        counts = stats.for_connection(result.connection_id)
        result.runs_new += counts.new
        result.runs_changed += counts.changed
        result.runs_unchanged += counts.unchanged
        result.runs_quarantined += counts.quarantined

    async def _finish(self, result: ConnectionResult, full_pass: datetime | None = None) -> None:
        """Record a connection's end: its collection-log row, and its full pass if any.

        Connections ending while another's record is written go into the next write
        together (see Warehouse.record_finished).
        """
        err = result.error
        entry = CollectionLogEntry(
            collection_id=self.collection_id,
            connection_id=result.connection_id,
            started_at=result.started_at,
            ended_at=result.ended_at or self.now(),
            outcome="ok" if result.ok else "failed",
            http_status=err.status if err else None,
            error_code=err.code if err else None,
            error_message=err.message if err else None,
            pages=result.stats.pages,
            requests=result.stats.requests,
            retries=result.stats.retries,
            throttled_429=result.stats.throttled,
            runs_new=result.runs_new,
            runs_changed=result.runs_changed,
            runs_unchanged=result.runs_unchanged,
            runs_quarantined=result.runs_quarantined,
        )
        try:
            await self._finisher.submit([(entry, full_pass)])
        except Exception:
            # Bookkeeping: the runs are loaded. Without the full-pass mark the next
            # collection reads this connection whole again, which is safe.
            log.exception("could not record the end of connection %s", result.connection_id)

    async def _write_finished(
        self, finished: list[tuple[CollectionLogEntry, datetime | None]]
    ) -> None:
        entries = [entry for entry, _ in finished]
        marks = [(entry.connection_id, at) for entry, at in finished if at is not None]
        await self._db(self.warehouse.record_finished, full_passes=marks, log_entries=entries)


async def collect(
    settings: Settings,
    warehouse: Warehouse,
    *,
    progress: Progress | None = None,
    transport: Any = None,
    force_full: bool = False,
) -> CollectionResult:
    """Open a client for the settings and collect every configured connection."""
    settings.require_credentials()
    settings.require_targets()
    async with ExportApiClient(settings, transport=transport) as client:
        collector = Collector(client, warehouse, settings, progress=progress, force_full=force_full)
        return await collector.run()
