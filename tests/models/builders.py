"""Small builders that insert hand-written rows straight into the core tables."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pipeline.warehouse.ddl import create_core_tables
from pipeline.warehouse.models import build_models


@dataclass
class Warehouse:
    """A core-table writer whose rows read like the data set they describe."""

    con: duckdb.DuckDBPyConnection

    @classmethod
    def empty(cls, timezone: str = "UTC") -> Warehouse:
        con = duckdb.connect()
        # The session TimeZone must not change any model's answer, so tests pick a non-UTC one.
        con.execute(f"set TimeZone = '{timezone}'")
        create_core_tables(con)
        return cls(con)

    def run(
        self,
        connection_id: str,
        run_id: str,
        start: str | None,
        state: str = "Completed",
        result: str | None = "Succeeded",
    ) -> Warehouse:
        self.con.execute(
            "insert into runs (connection_id, run_id, start_time, state, result) "
            "values (?, ?, cast(? as timestamptz), ?, ?)",
            [connection_id, run_id, start, state, result],
        )
        return self

    def task(
        self,
        connection_id: str,
        run_id: str,
        task_id: str,
        state: str = "Completed",
        result: str | None = "Succeeded",
        job_id: str = "j1",
    ) -> Warehouse:
        self.con.execute(
            "insert into tasks (connection_id, run_id, job_id, task_id, state, result) "
            "values (?, ?, ?, ?, ?, ?)",
            [connection_id, run_id, job_id, task_id, state, result],
        )
        return self

    def error(
        self,
        connection_id: str,
        run_id: str,
        task_id: str,
        error_code: str | None,
        phase: str | None,
        system: str | None,
        message: str | None = None,
        job_id: str = "j1",
    ) -> Warehouse:
        self.con.execute(
            "insert into task_errors "
            "(connection_id, run_id, job_id, task_id, error_code, phase, system, message) "
            "values (?, ?, ?, ?, ?, ?, ?, ?)",
            [connection_id, run_id, job_id, task_id, error_code, phase, system, message],
        )
        return self

    def build(self) -> duckdb.DuckDBPyConnection:
        build_models(self.con)
        return self.con


def rows(con: duckdb.DuckDBPyConnection, model: str) -> list[dict[str, object]]:
    """A model's rows as dicts, in the model's own order."""
    result = con.execute(f"select * from {model}")
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def mixed_warehouse(timezone: str = "Asia/Tokyo") -> Warehouse:
    """The hand-computed data set the model tests check against (see test_models.py).

    Two connections over three UTC days. c1/r2 starts 30 s before midnight UTC, which is
    already the next day in Tokyo. c1/r3 is still running (3 March has no completed run).
    """
    w = Warehouse.empty(timezone)
    (
        w.run("c1", "r1", "2024-03-01 10:00:00+00", "Completed", "Error")
        .task("c1", "r1", "t1", "Completed", "Error")
        .error("c1", "r1", "t1", "E1", "P1", "S1", "first failure")
        .task("c1", "r1", "t2", "Completed", "Error")  # failed, no error row
        .task("c1", "r1", "t3", "Completed", "Succeeded")
        .error("c1", "r1", "t3", "W1", None, "S1", "a warning")  # succeeded, NULL phase
    )
    (
        w.run("c1", "r2", "2024-03-01 23:59:30+00", "Completed", "Succeeded")
        .task("c1", "r2", "t4", "Completed", "Succeeded")
        .task("c1", "r2", "t5", "Completed", "TimedOut")
        .error("c1", "r2", "t5", "E1", "P2", None, "timed out")  # NULL system
    )
    (
        w.run("c1", "r3", "2024-03-03 05:00:00+00", "Running", None)
        .task("c1", "r3", "t6", "Running", None)
        .task("c1", "r3", "t7", "Running", None)
        .error("c1", "r3", "t7", "E2", "P1", "S2")  # not completed: counts nowhere
    )
    (
        w.run("c2", "r4", "2024-03-02 09:00:00+00", "Completed", "TimedOut")
        .task("c2", "r4", "t8", "Completed", "TimedOut")
        .error("c2", "r4", "t8", "E2", "P1", "S2")
        .task("c2", "r4", "t9", "Completed", "Error")
        .error("c2", "r4", "t9", "E1", "P1", "S1")
    )
    (
        w.run("c2", "r5", "2024-03-02 12:00:00+00", "Completed", "Canceled")
        .task("c2", "r5", "t10", "Completed", "Canceled")
        .task("c2", "r5", "t11", "Completed", "Error")
        .error("c2", "r5", "t11", None, "P2", "S2")  # NULL error code
    )
    (
        w.run("c2", "r6", "2024-03-02 13:00:00+00", "Completed", "PartialSuccess")
        .task("c2", "r6", "t12", "Completed", "Succeeded")
        .error("c2", "r6", "t12", "W1", "P1", "S1")
    )
    return w
