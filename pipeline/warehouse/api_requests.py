"""The `api_requests` table: when recent API requests started, so the hourly budget
counts earlier collections' requests too."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import duckdb

from pipeline.warehouse.statements import as_utc, execute, transaction

# Request times older than this are pruned: the hourly budget looks back 60 minutes.
REQUEST_HISTORY = timedelta(minutes=65)


class RequestTimes:
    """Reads and writes of `api_requests` over one DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def recent_requests(self, now: datetime) -> list[datetime]:
        """When the API requests of the last hour started (earlier collections' included)."""
        rows = self.con.execute(
            "SELECT requested_at FROM api_requests WHERE requested_at >= ? ORDER BY 1",
            [as_utc(now) - REQUEST_HISTORY],
        ).fetchall()
        return [as_utc(at) for (at,) in rows]

    def record_requests(self, times: Sequence[datetime], now: datetime) -> None:
        """Store request start times and drop those too old to count any more."""
        with transaction(self.con):
            execute(
                self.con,
                "DELETE FROM api_requests WHERE requested_at < ?",
                [as_utc(now) - REQUEST_HISTORY],
            )
            if times:
                execute(
                    self.con,
                    "INSERT INTO api_requests SELECT unnest(?::TIMESTAMPTZ[])",
                    [[as_utc(t) for t in times]],
                )
