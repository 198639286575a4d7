"""What the collector reads and records besides runs: stored hashes, open runs, full
passes of a connection's list, resume points and the collection log."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

import duckdb

from pipeline.transform.schema import COLLECTION_LOG, QUARANTINE
from pipeline.warehouse.api_requests import RequestTimes
from pipeline.warehouse.connections import ConnectionsTable
from pipeline.warehouse.statements import (
    as_utc,
    execute,
    insert_rows,
    rows_for_connections,
    transaction,
)


@dataclass(frozen=True)
class CollectionLogEntry:
    collection_id: str
    connection_id: str
    started_at: datetime
    ended_at: datetime
    outcome: str  # 'ok' | 'failed'
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    pages: int = 0
    requests: int = 0
    retries: int = 0
    throttled_429: int = 0
    runs_new: int = 0
    runs_changed: int = 0
    runs_unchanged: int = 0
    runs_quarantined: int = 0
    duplicate_keys: int = 0


@dataclass(frozen=True)
class ResumePoint:
    """Where an unfinished full pass of a connection's list goes on: the next link after
    the last page it loaded, and when that pass began (recorded as the full pass when a
    continued read reaches the end)."""

    connection_id: str
    next_href: str
    pass_started_at: datetime
    saved_at: datetime


@dataclass(frozen=True)
class RawText:
    """An answer's raw text to keep in quarantine although its run was loaded."""

    connection_id: str
    run_id: str | None
    reason: str
    text: str
    fetched_at: datetime
    source: str


class Bookkeeping:
    """The collector's tables besides runs, over one DuckDB connection.

    A collection reads what earlier ones stored (run hashes, open runs, when each
    connection's list was last read whole, where unfinished passes go on) and records
    each connection's end (collection-log row, full-pass mark, resume point) and raw
    texts kept beside loaded runs; `connections` and `requests` are the tables of
    connection details and of API request times.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.connections = ConnectionsTable(con)
        self.requests = RequestTimes(con)

    def latest_hashes(self, connection_id: str, run_ids: list[str]) -> dict[str, str]:
        """Payload hash of the stored version of each given run that is stored."""
        if not run_ids:
            return {}
        rows = self.con.execute(
            "SELECT run_id, payload_hash FROM raw_latest WHERE connection_id = ? "
            "AND run_id IN (SELECT unnest(?::VARCHAR[]))",
            [connection_id, list(run_ids)],
        ).fetchall()
        return {str(r): str(h) for r, h in rows}

    def open_runs_by_connection(self, connection_ids: Sequence[str]) -> dict[str, list[str]]:
        """Stored runs not yet Completed (a missing state counts as not Completed), per
        connection; connections with none are left out."""
        rows = self.con.execute(
            "SELECT connection_id, run_id FROM raw_latest "
            "WHERE connection_id IN (SELECT unnest(?::VARCHAR[])) "
            "AND state IS DISTINCT FROM 'Completed' ORDER BY connection_id, run_id",
            [list(connection_ids)],
        ).fetchall()
        out: dict[str, list[str]] = {}
        for cid, rid in rows:
            out.setdefault(str(cid), []).append(str(rid))
        return out

    def last_full_passes(self, connection_ids: Sequence[str]) -> dict[str, datetime]:
        """When each connection's list was last read to its end (connections never, left out)."""
        select = "SELECT connection_id, last_full_pass FROM full_passes"
        rows = rows_for_connections(self.con, select, connection_ids)
        return {str(cid): as_utc(at) for cid, at in rows}

    def resume_points(self, connection_ids: Sequence[str]) -> dict[str, ResumePoint]:
        """Each connection's stored resume point (connections without one, left out)."""
        select = "SELECT connection_id, next_href, pass_started_at, saved_at FROM resume_points"
        rows = rows_for_connections(self.con, select, connection_ids)
        return {
            str(cid): ResumePoint(str(cid), str(href), as_utc(started), as_utc(saved))
            for cid, href, started, saved in rows
        }

    def mark_full_pass(self, connection_id: str, at: datetime) -> None:
        self.record_finished(full_passes=[(connection_id, at)])

    def record_finished(
        self,
        *,
        full_passes: Sequence[tuple[str, datetime]] = (),
        log_entries: Sequence[CollectionLogEntry] = (),
        resume_points: Sequence[ResumePoint] = (),
        resume_dropped: Sequence[str] = (),
    ) -> None:
        """Full-pass marks, resume points and collection-log rows of many connections, in
        one transaction (connections finishing together would otherwise queue a commit
        each behind the loads). A later mark or point of a connection wins; a connection
        in `resume_dropped` loses its point (unless it is given a new one)."""
        marks = {cid: as_utc(at) for cid, at in full_passes}
        points = {p.connection_id: p for p in resume_points}
        with transaction(self.con):
            if points or resume_dropped:
                execute(
                    self.con,
                    "DELETE FROM resume_points "
                    "WHERE connection_id IN (SELECT unnest(?::VARCHAR[]))",
                    [[*resume_dropped, *points]],
                )
            if points:
                execute(
                    self.con,
                    "INSERT INTO resume_points SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                    "unnest(?::TIMESTAMPTZ[]), unnest(?::TIMESTAMPTZ[])",
                    [
                        list(points),
                        [p.next_href for p in points.values()],
                        [as_utc(p.pass_started_at) for p in points.values()],
                        [as_utc(p.saved_at) for p in points.values()],
                    ],
                )
            if marks:
                execute(
                    self.con,
                    "INSERT OR REPLACE INTO full_passes (connection_id, last_full_pass) "
                    "SELECT unnest(?::VARCHAR[]), unnest(?::TIMESTAMPTZ[])",
                    [list(marks), list(marks.values())],
                )
            if log_entries:
                rows = [asdict(e) for e in log_entries]
                for row in rows:
                    for name in ("started_at", "ended_at"):
                        row[name] = as_utc(row[name])
                insert_rows(self.con, "collection_log", COLLECTION_LOG, rows)

    def keep_raw_texts(self, rows: Sequence[RawText]) -> None:
        """Raw answer texts kept beside loaded runs (e.g. one that repeated a key), as
        quarantine rows whose source says why, so nothing the API sent is lost."""
        if not rows:
            return
        insert_rows(
            self.con,
            "quarantine",
            QUARANTINE,
            [
                {
                    "connection_id": r.connection_id,
                    "run_id": r.run_id,
                    "reason": r.reason,
                    "payload": r.text,
                    "payload_hash": hashlib.sha256(r.text.encode("utf-8", "replace")).hexdigest(),
                    "fetched_at": as_utc(r.fetched_at),
                    "source": r.source,
                }
                for r in rows
            ],
        )
