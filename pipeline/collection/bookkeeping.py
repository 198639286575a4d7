"""What a collection records besides runs: full-pass marks, where unfinished full passes
go on, and collection-log rows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.collection.loading import MergingWriter, WarehouseGate
from pipeline.collection.results import ConnectionResult
from pipeline.itwin.errors import ApiError, PagingError, WaitTooLongError
from pipeline.warehouse.bookkeeping import CollectionLogEntry, ResumePoint

log = logging.getLogger("pipeline.collection")

# A "last full pass" this old makes the next collection of a connection a full pass.
LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class FullRead:
    """One full read of a connection's list: where it began, and how far its runs are
    loaded (the next link after the last page whose runs are committed).

    A read continuing a stored resume point carries that pass's start: reaching the end
    then means every run that existed when the pass began has been read (runs added since
    only push older ones to later offsets, so the continued read re-reads a few).
    """

    connection_id: str
    pass_started_at: datetime
    start_url: str | None = None  # None: the first page
    loaded_up_to: str | None = None
    drop_stored: bool = False  # a stored point is not used (too old, or refused)

    def start_over(self, started_at: datetime) -> None:
        """Read from the first page after all; the stored point goes when the read ends."""
        self.start_url, self.pass_started_at, self.drop_stored = None, started_at, True

    def loaded(self, loading: asyncio.Future[Any], next_url: str | None) -> None:
        """A batch's load ended: past its last page if it committed (batches of one
        connection commit in order)."""
        if not loading.cancelled() and loading.exception() is None and next_url is not None:
            self.loaded_up_to = next_url

    def resume_point(self, error: ApiError | None, now: datetime) -> ResumePoint | None:
        """Where the next collection goes on after this read stopped or failed, if anywhere.

        A refused next link (PagingError other than the page cap) is not a place to go on
        from: the pages before it were loaded, but the link itself must not be followed.
        """
        if self.loaded_up_to is None:
            return None
        if isinstance(error, PagingError) and error.code != "PageCapReached":
            return None
        return ResumePoint(self.connection_id, self.loaded_up_to, self.pass_started_at, now)


# A connection's end: its log row, its full pass, a resume point to save, and whether
# its stored one goes.
_Finished = tuple[CollectionLogEntry, datetime | None, ResumePoint | None, bool]


def log_entry(collection_id: str, result: ConnectionResult, now: datetime) -> CollectionLogEntry:
    """The collection-log row of one connection's (or iModel discovery's) end."""
    err = result.error
    return CollectionLogEntry(
        collection_id=collection_id,
        connection_id=result.connection_id,
        started_at=result.started_at,
        ended_at=result.ended_at or now,
        outcome=result.outcome,
        http_status=err.status if err else None,
        # A stopped connection's code is why it stopped: 'HTTP 429' or 'hourly budget'.
        error_code=(err.reason if isinstance(err, WaitTooLongError) else err.code) if err else None,
        error_message=err.message if err else None,
        pages=result.stats.pages,
        requests=result.stats.requests,
        retries=result.stats.retries,
        throttled_429=result.stats.throttled,
        runs_new=result.runs_new,
        runs_changed=result.runs_changed,
        runs_unchanged=result.runs_unchanged,
        runs_quarantined=result.runs_quarantined,
        duplicate_keys=result.duplicate_keys,
    )


class Bookkeeper:
    """Reads what the last collections left (full passes, open runs) and records this one's.

    Connections ending while another's record is written are recorded together.
    Use as `async with`, like the writer it holds.
    """

    def __init__(self, gate: WarehouseGate, collection_id: str) -> None:
        self._gate = gate
        self.collection_id = collection_id
        self._writer: MergingWriter[_Finished, None] = MergingWriter(self._write)
        self.last_full: dict[str, datetime] = {}
        self.open_at_start: dict[str, list[str]] = {}
        self.resume_points: dict[str, ResumePoint] = {}

    async def __aenter__(self) -> Bookkeeper:
        await self._writer.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._writer.__aexit__(None, None, None)

    async def read_state(self, connection_ids: Sequence[str]) -> None:
        """One query each for all connections, when the collection starts.

        The open runs read now are those a connection's end would find unseen: every run
        this collection stores was on a page it read.
        """
        warehouse = self._gate.warehouse
        self.last_full = await self._gate.call(
            warehouse.bookkeeping.last_full_passes, connection_ids
        )
        self.open_at_start = await self._gate.call(
            warehouse.bookkeeping.open_runs_by_connection, connection_ids
        )
        self.resume_points = await self._gate.call(
            warehouse.bookkeeping.resume_points, connection_ids
        )

    def full_read(self, connection_id: str, started_at: datetime, max_age_s: float) -> FullRead:
        """A full read of the connection: continuing its stored resume point unless that
        was saved more than `max_age_s` before `started_at` (the list has moved on too far
        for the point to mean much: the pass starts over)."""
        read = FullRead(connection_id, started_at)
        stored = self.resume_points.get(connection_id)
        if stored is None:
            return read
        if (started_at - stored.saved_at).total_seconds() > max_age_s:
            log.info(
                "connection %s: its resume point is too old, reading from the start", connection_id
            )
            read.drop_stored = True
        else:
            read.start_url, read.pass_started_at = stored.next_href, stored.pass_started_at
        return read

    async def defer_full_pass(self, connection_id: str) -> datetime:
        """Make the next collection a full pass until this read has loaded all it found.

        A batch loaded before the read ends makes the newest pages look unchanged, so after
        a crash or failure the next incremental read would stop before the older new runs
        this one never loaded. Returns the real last full pass, to restore at the end.
        """
        await self._gate.call(
            self._gate.warehouse.bookkeeping.mark_full_pass, connection_id, LONG_AGO
        )
        return self.last_full.get(connection_id, LONG_AGO)

    async def finish(
        self,
        result: ConnectionResult,
        now: datetime,
        full_pass: datetime | None = None,
        read: FullRead | None = None,
    ) -> None:
        """Record a connection's end: its collection-log row, its full pass if any, and
        where its unfinished full read (`read`) goes on."""
        try:
            entry = log_entry(self.collection_id, result, now)
            point = None
            if read is not None and full_pass is None:
                point = read.resume_point(result.error, now)
            drop = read is not None and (full_pass is not None or read.drop_stored)
            await self._writer.write([(entry, full_pass, point, drop)])
        except Exception:
            # The runs are loaded. Without the full-pass mark the next collection reads
            # this connection whole again, which is safe.
            log.exception("could not record the end of connection %s", result.connection_id)

    async def _write(self, finished: list[_Finished]) -> None:
        entries = [entry for entry, _, _, _ in finished]
        marks = [(entry.connection_id, at) for entry, at, _, _ in finished if at is not None]
        await self._gate.call(
            self._gate.warehouse.bookkeeping.record_finished,
            full_passes=marks,
            log_entries=entries,
            resume_points=[point for _, _, point, _ in finished if point is not None],
            resume_dropped=[entry.connection_id for entry, _, _, drop in finished if drop],
        )
