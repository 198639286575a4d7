"""Recompute an incremental model's rows for the partitions the recorded changes touched.

A partition is what a model's rows are computed from alone: a UTC run day (`day`), a day
and a connection (`day_connection`), or a run (`run`). The run-keyed source tables are
shadowed, for the length of the refresh, by temp views holding only the runs of the
touched partitions, so the staging views and the model's own SQL run unchanged over a
few runs instead of the whole history. The partitions' rows are then deleted and
inserted again, in the caller's transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from pipeline.warehouse.models import Model

RUN_KEY = ("connection_id", "run_id")
# Children of a run: their rows are kept for a task whose run row is missing, which counts
# on no day (a NULL day) for its connection.
RUN_CHILDREN = ("jobs", "tasks", "task_errors")
RUN_DAY = "cast(timezone('UTC', r.start_time) as date)"  # as stg_runs computes run_day

# The columns naming a partition, in the changes and in the model's rows.
PARTITION_COLUMNS = {"day": ("day",), "day_connection": ("day", "connection_id"), "run": RUN_KEY}


def _same(columns: tuple[str, ...], left: str, right: str) -> str:
    return " and ".join(f"{left}.{c} is not distinct from {right}.{c}" for c in columns)


def _touched_partitions(
    con: duckdb.DuckDBPyConnection, columns: tuple[str, ...], since: int
) -> None:
    day_only = "and has_day" if "day" in columns else ""
    con.execute(
        f"create or replace temp table _affected as select distinct {', '.join(columns)} "
        f"from model_changes where seq > ? {day_only}",
        [since],
    )


def _touched_runs(con: duckdb.DuckDBPyConnection, columns: tuple[str, ...]) -> None:
    if columns == RUN_KEY:
        con.execute("create or replace temp table _affected_runs as select * from _affected")
        return
    # Every run of a touched day (and connection), not only the changed ones: the
    # partition is recomputed whole.
    on = f"a.day is not distinct from {RUN_DAY}"
    if "connection_id" in columns:
        on += " and a.connection_id = r.connection_id"
    con.execute(
        "create or replace temp table _affected_runs as "
        f"select r.connection_id, r.run_id from runs r semi join _affected a on {on}"
    )


def _scope(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...]) -> None:
    keys = " and ".join(f"s.{k} = a.{k}" for k in RUN_KEY)
    # The touched rows are found by their key columns alone, then fetched by row id: a
    # scan filtered on row ids reads the wide columns (a payload) only in the row groups
    # holding them, where a join on the keys would read every row's.
    rows = f"select s.rowid as row_id from {table} s semi join _affected_runs a on {keys}"
    if table in RUN_CHILDREN and "day" in columns:
        # Rows whose run is missing belong to their connection's NULL day.
        on = "a.day is null" + (
            " and a.connection_id = s.connection_id" if "connection_id" in columns else ""
        )
        rows += (
            f" union all select s.rowid from {table} s "
            "anti join runs r on s.connection_id = r.connection_id and s.run_id = r.run_id "
            f"semi join _affected a on {on}"
        )
    con.execute(f"create or replace temp table _scoped_rows as {rows}")
    con.execute(
        f"create or replace temp table _scoped_{table} as select s.* from {table} s "
        "semi join _scoped_rows r on s.rowid = r.row_id"
    )


def refresh_partitions(
    con: duckdb.DuckDBPyConnection,
    model: Model,
    since_seq: int,
    body: str,
    run_sources: tuple[str, ...],
) -> None:
    """Recompute `model`'s rows of the partitions changed after `since_seq`.

    `body` is the model's select; `run_sources` the run-keyed tables it reads, directly
    or through views.
    """
    assert model.incremental is not None
    columns = PARTITION_COLUMNS[model.incremental]
    _touched_partitions(con, columns, since_seq)
    _touched_runs(con, columns)
    for table in run_sources:
        _scope(con, table, columns)
    try:
        for table in run_sources:
            con.execute(f"create or replace temp view {table} as select * from _scoped_{table}")
        where = _same(columns, "a", model.name)
        con.execute(
            f"delete from {model.name} where exists (select 1 from _affected a where {where})"
        )
        con.execute(f"insert into {model.name} by name select * from ({body})")
    finally:
        for table in run_sources:
            con.execute(f"drop view if exists temp.main.{table}")
            con.execute(f"drop table if exists temp.main._scoped_{table}")
        con.execute("drop table if exists temp.main._scoped_rows")
