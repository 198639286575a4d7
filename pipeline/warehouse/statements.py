"""How every warehouse statement runs: one at a time, results fetched, batches read by name.

Every load is an explicit transaction of separate statements: DuckDB commits the
earlier statements of a multi-statement string even when a later one fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.errors import ITwinRunsError

# The name a statement reads its Arrow table by (see execute_reading).
BATCH_TABLE = "_itwin_runs_batch"


def execute(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> None:
    # DuckDB 2 refuses new work on a connection with an unfetched result, DML included.
    con.execute(sql, params or []).fetchall()


def execute_reading(con: duckdb.DuckDBPyConnection, sql: str, table: pa.Table) -> None:
    """Run `sql`, which reads the Arrow `table` by the name BATCH_TABLE, for this statement only.

    DuckDB finds the table among this function's local variables (its replacement scan),
    which is cheaper than a relation's query() or register() + unregister(), and holds
    nothing afterwards: a table register()ed inside a transaction stays referenced until
    COMMIT, so a transaction of many batches would hold all of them.
    """
    _itwin_runs_batch = table  # read by DuckDB by this name, which BATCH_TABLE holds
    con.execute(sql).fetchall()


def insert_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    schema: pa.Schema,
    rows: list[dict[str, Any]],
    verb: str = "INSERT",
) -> None:
    """Rows (dicts of `schema`'s columns) added to `table` in one statement."""
    names = ", ".join(schema.names)
    sql = f"{verb} INTO {table} ({names}) SELECT {names} FROM {BATCH_TABLE}"
    execute_reading(con, sql, pa.Table.from_pylist(rows, schema))


def rows_for_connections(
    con: duckdb.DuckDBPyConnection, select: str, connection_ids: Sequence[str]
) -> list[tuple[Any, ...]]:
    """The rows of `select` (a SELECT ... FROM table) of these connections."""
    where = "WHERE connection_id IN (SELECT unnest(?::VARCHAR[]))"
    return con.execute(f"{select} {where}", [list(connection_ids)]).fetchall()


def sql_string(value: str) -> str:
    """`value` as a SQL string literal, for the few statements (ATTACH, COPY ... TO) that
    take a file path but no parameter."""
    return "'" + value.replace("'", "''") + "'"


def first_value(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """First column of the first row (or None); fetchall, since fetchone leaves the result open."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    execute(con, "BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        execute(con, "ROLLBACK")
        raise
    execute(con, "COMMIT")


@contextmanager
def changed_settings(
    con: duckdb.DuckDBPyConnection, given: Mapping[str, str], **settings: str | int
) -> Iterator[None]:
    """DuckDB settings changed for a while, each restored to what it was.

    `given`: settings to restore as given rather than as read back (DuckDB shows its
    memory limit rounded down, so setting what it shows would drift it down).
    """
    previous = {
        name: given.get(name) or first_value(con, "SELECT current_setting(?)", [name])
        for name in settings
    }
    try:
        for name, value in settings.items():
            execute(con, f"SET {name} = '{value}'")
        yield
    finally:
        for name, value in previous.items():
            execute(con, f"SET {name} = '{value}'")


def refuse_shadowing_table(con: duckdb.DuckDBPyConnection) -> None:
    """Fail before a load if a table or view named BATCH_TABLE would be read instead."""
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
    if first_value(con, sql, [BATCH_TABLE]):
        raise ITwinRunsError(
            f"the warehouse holds a table or view named {BATCH_TABLE}, the name itwin-runs "
            "reads each batch by while loading; DuckDB would read that table instead. Rename "
            "or drop it, then run the command again."
        )


def as_utc(at: Any) -> datetime:
    if not isinstance(at, datetime):
        raise TypeError(f"expected a datetime, got {type(at).__name__}")
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


class StatementRunner:
    """Runs a load's statements by label over one connection (not safe for concurrent use)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        # A hook for tests: called with each statement's label before it runs.
        self.between_statements: Callable[[str], None] | None = None
        self._batch_name_checked = False

    def run(self, label: str, statement: str, table: pa.Table | None = None) -> None:
        """One statement; `table`: the Arrow table it reads as BATCH_TABLE."""
        if self.between_statements is not None:
            self.between_statements(label)
        if table is None:
            execute(self.con, statement)
            return
        if not self._batch_name_checked:
            refuse_shadowing_table(self.con)
            self._batch_name_checked = True
        execute_reading(self.con, statement, table)
