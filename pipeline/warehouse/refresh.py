"""Recompute an incremental model's rows for the partitions the recorded changes touched.

A partition is what a model's rows are computed from alone: a UTC run day (`day`), a day
and a connection (`day_connection`), or a run (`run`). The run-keyed source tables are
shadowed, for the length of the refresh, by temp views holding only the runs of the
touched partitions, so the staging views and the model's own SQL run unchanged over a
few runs instead of the whole history. The partitions' rows are then deleted and
inserted again, in the caller's transaction. The touched runs' rows are copied once per
build and partition kind, and shared by every model refreshed from the same changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from pipeline.warehouse.load_sql import RUN_KEY

if TYPE_CHECKING:
    from pipeline.warehouse.models import Model

# Children of a run: their rows are kept for a task whose run row is missing, which counts
# on no day (a NULL day) for its connection.
RUN_CHILDREN = ("jobs", "tasks", "task_errors")
RUN_DAY = "cast(timezone('UTC', r.start_time) as date)"  # as stg_runs computes run_day

# The columns naming a partition, in the changes and in the model's rows.
PARTITION_COLUMNS = {"day": ("day",), "day_connection": ("day", "connection_id"), "run": RUN_KEY}


def _same(columns: tuple[str, ...], left: str, right: str) -> str:
    return " and ".join(f"{left}.{c} is not distinct from {right}.{c}" for c in columns)


class PartitionScopes:
    """The touched partitions, their runs and those runs' rows of each run-keyed table, as
    temp tables made on first use within one build (one transaction: the source tables do
    not change in between) and dropped by `close`."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._made: set[str] = set()

    def affected(self, kind: str, since: int) -> str:
        """The table of partitions (PARTITION_COLUMNS[kind]) changed after `since`."""
        name = f"_affected_{kind}_{since}"
        if name not in self._made:
            columns = PARTITION_COLUMNS[kind]
            day_only = "and has_day" if "day" in columns else ""
            self._create(
                name,
                f"select distinct {', '.join(columns)} from model_changes "
                f"where seq > {int(since)} {day_only}",
            )
        return name

    def scoped(self, kind: str, since: int, table: str) -> str:
        """The table of `table`'s rows that belong to the touched partitions."""
        name = f"_scoped_{kind}_{since}_{table}"
        if name not in self._made:
            self._create(name, self._scoped_select(kind, since, table))
        return name

    def close(self) -> None:
        for name in sorted(self._made):
            self.con.execute(f"drop table if exists temp.main.{name}")
        self._made.clear()

    def _create(self, name: str, select: str) -> None:
        self.con.execute(f"create or replace temp table {name} as {select}")
        self._made.add(name)

    def _runs(self, kind: str, since: int) -> str:
        affected = self.affected(kind, since)
        columns = PARTITION_COLUMNS[kind]
        if columns == RUN_KEY:
            return affected
        name = f"_affected_runs_{kind}_{since}"
        if name not in self._made:
            # Every run of a touched day (and connection), not only the changed ones: the
            # partition is recomputed whole.
            on = f"a.day is not distinct from {RUN_DAY}"
            if "connection_id" in columns:
                on += " and a.connection_id = r.connection_id"
            self._create(
                name, f"select r.connection_id, r.run_id from runs r semi join {affected} a on {on}"
            )
        return name

    def _scoped_select(self, kind: str, since: int, table: str) -> str:
        columns = PARTITION_COLUMNS[kind]
        keys = " and ".join(f"s.{k} = a.{k}" for k in RUN_KEY)
        runs = self._runs(kind, since)
        rows = f"select s.rowid as row_id from {table} s semi join {runs} a on {keys}"
        if table in RUN_CHILDREN and "day" in columns:
            # Rows whose run is missing belong to their connection's NULL day.
            on = "a.day is null" + (
                " and a.connection_id = s.connection_id" if "connection_id" in columns else ""
            )
            rows += (
                f" union all select s.rowid from {table} s "
                "anti join runs r on s.connection_id = r.connection_id and s.run_id = r.run_id "
                f"semi join {self.affected(kind, since)} a on {on}"
            )
        # The touched rows are found by their key columns alone, then fetched by row id: a
        # scan filtered on row ids reads the wide columns (a payload) only in the row
        # groups holding them, where a join on the keys would read every row's.
        return f"select s.* from {table} s semi join ({rows}) r on s.rowid = r.row_id"


def refresh_partitions(
    scopes: PartitionScopes,
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
    con, kind = scopes.con, model.incremental
    affected = scopes.affected(kind, since_seq)
    scoped = {table: scopes.scoped(kind, since_seq, table) for table in run_sources}
    try:
        for table, rows in scoped.items():
            con.execute(f"create or replace temp view {table} as select * from {rows}")
        where = _same(PARTITION_COLUMNS[kind], "a", model.name)
        con.execute(
            f"delete from {model.name} where exists (select 1 from {affected} a where {where})"
        )
        con.execute(f"insert into {model.name} by name select * from ({body})")
    finally:
        for table in run_sources:
            con.execute(f"drop view if exists temp.main.{table}")
