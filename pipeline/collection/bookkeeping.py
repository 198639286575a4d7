"""What a collection records besides runs: full-pass marks and collection-log rows."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from pipeline.collection.loading import MergingWriter, WarehouseGate
from pipeline.collection.results import ConnectionResult
from pipeline.itwin.errors import WaitTooLongError
from pipeline.warehouse.bookkeeping import CollectionLogEntry

log = logging.getLogger("pipeline.collection")

# A "last full pass" this old makes the next collection of a connection a full pass.
LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)

_Finished = tuple[CollectionLogEntry, datetime | None]


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
        self, result: ConnectionResult, now: datetime, full_pass: datetime | None = None
    ) -> None:
        """Record a connection's end: its collection-log row, and its full pass if any."""
        try:
            await self._writer.write([(log_entry(self.collection_id, result, now), full_pass)])
        except Exception:
            # The runs are loaded. Without the full-pass mark the next collection reads
            # this connection whole again, which is safe.
            log.exception("could not record the end of connection %s", result.connection_id)

    async def _write(self, finished: list[_Finished]) -> None:
        entries = [entry for entry, _ in finished]
        marks = [(entry.connection_id, at) for entry, at in finished if at is not None]
        await self._gate.call(
            self._gate.warehouse.bookkeeping.record_finished, full_passes=marks, log_entries=entries
        )
