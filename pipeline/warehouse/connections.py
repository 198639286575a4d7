"""The `connections` table: connection details as the collection saw them, and which
connections' last runs are stored Completed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import duckdb

from pipeline.transform.schema import CONNECTIONS
from pipeline.warehouse.statements import (
    as_utc,
    execute,
    first_value,
    insert_rows,
    rows_for_connections,
    transaction,
)


class ConnectionsTable:
    """Reads and writes of `connections` over one DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def connection_fetch_times(self, connection_ids: Sequence[str]) -> dict[str, datetime | None]:
        """When each known connection's details were last fetched (None: never); unknown
        connections are left out."""
        select = "SELECT connection_id, fetched_at FROM connections"
        rows = rows_for_connections(self.con, select, connection_ids)
        return {str(cid): None if at is None else as_utc(at) for cid, at in rows}

    def display_names(self, connection_ids: Sequence[str]) -> dict[str, str]:
        """The stored display name of each of these connections that has one."""
        select = "SELECT connection_id, display_name FROM connections"
        rows = rows_for_connections(self.con, select, connection_ids)
        return {str(cid): str(name) for cid, name in rows if name is not None}

    def save_connections(
        self, details: Sequence[Mapping[str, object]], known_ids: Sequence[str] = ()
    ) -> None:
        """Connection details (rows of the `connections` schema) replacing what was stored,
        and a bare row for each of `known_ids` not stored yet, in one transaction."""
        with transaction(self.con):
            if details:
                rows = [dict(row) for row in details]
                for row in rows:
                    if row.get("fetched_at") is not None:
                        row["fetched_at"] = as_utc(row["fetched_at"])
                insert_rows(self.con, "connections", CONNECTIONS, rows, "INSERT OR REPLACE")
            if known_ids:
                execute(
                    self.con,
                    "INSERT INTO connections (connection_id) SELECT DISTINCT id FROM "
                    "(SELECT unnest(?::VARCHAR[]) AS id) WHERE id NOT IN "
                    "(SELECT connection_id FROM connections)",
                    [list(known_ids)],
                )

    def add_connections_with_runs(self) -> int:
        """A bare `connections` row for every connection that has stored runs and none yet
        (e.g. runs loaded from files); returns how many were added."""
        before = int(first_value(self.con, "SELECT count(*) FROM connections") or 0)
        with transaction(self.con):
            execute(
                self.con,
                "INSERT INTO connections (connection_id) SELECT DISTINCT connection_id "
                "FROM raw_latest WHERE connection_id NOT IN "
                "(SELECT connection_id FROM connections)",
            )
        return int(first_value(self.con, "SELECT count(*) FROM connections") or 0) - before

    def completed_last_runs(self, last_runs: Mapping[str, str]) -> set[str]:
        """The connections (of connection id -> run id) whose given run is stored Completed."""
        if not last_runs:
            return set()
        rows = self.con.execute(
            "SELECT DISTINCT w.connection_id FROM raw_latest AS r JOIN "
            "(SELECT unnest(?::VARCHAR[]) AS connection_id, unnest(?::VARCHAR[]) AS run_id) AS w "
            "ON r.connection_id = w.connection_id AND r.run_id = w.run_id "
            "WHERE r.state = 'Completed'",
            [list(last_runs), list(last_runs.values())],
        ).fetchall()
        return {str(cid) for (cid,) in rows}
