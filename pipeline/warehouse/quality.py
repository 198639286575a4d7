"""Data-quality queries behind the asset checks; plain functions over a DuckDB connection."""

from __future__ import annotations

from datetime import datetime

import duckdb

from pipeline.transform.schema import CORE_TABLES
from pipeline.warehouse.statements import first_value

KNOWN_STATES = (
    "NotStarted",
    "Idle",
    "WaitingToExecute",
    "WaitingToRetry",
    "Executing",
    "Finalizing",
    "Completed",
    "Queued",
)
KNOWN_RESULTS = (
    "Undetermined",
    "Success",
    "Error",
    "PartialSuccess",
    "Skipped",
    "Canceled",
    "TimedOut",
)

# child table -> (parent table, the key columns they share)
PARENTS = {
    "jobs": ("runs", ("connection_id", "run_id")),
    "tasks": ("jobs", ("connection_id", "run_id", "job_id")),
    "task_errors": ("tasks", ("connection_id", "run_id", "job_id", "task_id")),
}


def duplicate_keys(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Number of key values that occur more than once in a core table."""
    key = ", ".join(CORE_TABLES[table][1])
    return int(
        first_value(
            con,
            f"select count(*) from (select {key} from {table} group by all having count(*) > 1)",
        )
    )


def orphans(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows whose parent row is missing, per child table."""
    found = {}
    for child, (parent, key) in PARENTS.items():
        on = " and ".join(f"c.{k} = p.{k}" for k in key)
        found[child] = int(
            first_value(
                con,
                f"select count(*) from {child} c anti join {parent} p on {on}",
            )
        )
    return found


def unknown_values(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, int]]:
    """(table, column, value, rows) for states and results outside the documented sets."""
    out: list[tuple[str, str, str, int]] = []
    for table in ("runs", "jobs", "tasks"):
        for column, known in (("state", KNOWN_STATES), ("result", KNOWN_RESULTS)):
            rows = con.execute(
                f"select {column}, count(*) from {table} where {column} is not null "
                f"and {column} not in (select unnest(?)) group by 1 order by 2 desc",
                [list(known)],
            ).fetchall()
            out += [(table, column, str(value), int(n)) for value, n in rows]
    return out


def stuck_runs(con: duckdb.DuckDBPyConnection, now: datetime, older_than_hours: float) -> int:
    """Runs not Completed whose start is more than the threshold in the past."""
    return int(
        first_value(
            con,
            "select count(*) from runs where coalesce(state, '') <> 'Completed' "
            "and start_time < ?::timestamptz - to_microseconds(cast(? * 3600e6 as bigint))",
            [now, older_than_hours],
        )
    )


def last_successful_collection(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """End of the latest collection in which every connection succeeded."""
    value = first_value(
        con,
        "select max(ended) from (select collection_id, max(ended_at) as ended "
        "from collection_log group by 1 having bool_and(outcome = 'ok'))",
    )
    return value if isinstance(value, datetime) else None


def rates_out_of_range(con: duckdb.DuckDBPyConnection, model: str) -> int:
    """Rows of a model where any *_rate or share column is outside [0, 1]."""
    columns = [
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns where table_name = ? "
            "and (column_name like '%rate' or column_name like 'share%')",
            [model],
        ).fetchall()
    ]
    if not columns:
        return 0
    cond = " or ".join(f"({c} is not null and ({c} < 0 or {c} > 1))" for c in columns)
    return int(first_value(con, f'select count(*) from "{model}" where {cond}'))


def negative_durations(con: duckdb.DuckDBPyConnection, limit: int = 20) -> tuple[int, list[str]]:
    """Runs that end before they start: how many, and the first few as 'connection/run'."""
    rows = con.execute(
        "select connection_id, run_id, count(*) over () from runs where end_time < start_time "
        "order by connection_id, run_id limit ?",
        [limit],
    ).fetchall()
    return (int(rows[0][2]) if rows else 0), [f"{c}/{r}" for c, r, _ in rows]


def runs_with_unknown_values(
    con: duckdb.DuckDBPyConnection, limit: int = 20
) -> tuple[int, list[str]]:
    """Runs whose state or result is outside the documented sets (e.g. a lowercase
    'completed', which the failure models would silently leave out): how many, and the
    first few as 'connection/run (state 'x')'."""
    where = (
        "(state is not null and state not in (select unnest($states))) "
        "or (result is not null and result not in (select unnest($results)))"
    )
    rows = con.execute(
        f"select connection_id, run_id, state, result, count(*) over () from runs where {where} "
        "order by connection_id, run_id limit $limit",
        {"states": list(KNOWN_STATES), "results": list(KNOWN_RESULTS), "limit": limit},
    ).fetchall()
    named = []
    for conn, rid, state, result, _ in rows:
        odd = [
            f"{name} {value!r}"
            for name, value, known in (
                ("state", state, KNOWN_STATES),
                ("result", result, KNOWN_RESULTS),
            )
            if value is not None and value not in known
        ]
        named.append(f"{conn}/{rid} ({', '.join(odd)})")
    return (int(rows[0][4]) if rows else 0), named
