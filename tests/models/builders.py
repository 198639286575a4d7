"""Small builders that insert hand-written rows straight into the tables models read."""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import pytest

from pipeline.transform.schema import BOOKKEEPING_TABLES
from pipeline.warehouse.ddl import create_core_tables, create_table_sql
from pipeline.warehouse.models import build_models

# The pipeline creates these two before building (their loaders live elsewhere); the model
# tests write them by hand with the columns CONTRACT.md gives.
SOURCE_DDL = (
    "create table connections (connection_id varchar not null, display_name varchar, "
    "imodel_id varchar, itwin_id varchar, authentication_type varchar, last_run_id varchar, "
    "fetched_at timestamptz, extra json)",
    "create table error_catalog (catalog varchar not null, description_key varchar not null, "
    "description varchar, category varchar, can_user_fix boolean, kb_article_link varchar)",
)


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
        raw_schema, raw_key = BOOKKEEPING_TABLES["raw_runs"]
        con.execute(create_table_sql("raw_runs", raw_schema, raw_key))
        for ddl in SOURCE_DDL:
            con.execute(ddl)
        return cls(con)

    def run(
        self,
        connection_id: str,
        run_id: str,
        start: str | None,
        state: str = "Completed",
        result: str | None = "Succeeded",
        duration_s: float | None = None,
    ) -> Warehouse:
        self.con.execute(
            "insert into runs (connection_id, run_id, start_time, end_time, state, result, "
            "duration_s) values (?, ?, cast(? as timestamptz), "
            "cast(? as timestamptz) + to_microseconds(cast(? * 1e6 as bigint)), ?, ?, ?)",
            [connection_id, run_id, start, start, duration_s, state, result, duration_s],
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
        description_key: str | None = None,
        can_user_fix: bool | None = None,
    ) -> Warehouse:
        self.con.execute(
            "insert into task_errors (connection_id, run_id, job_id, task_id, error_code, "
            "phase, system, message, description_key, can_user_fix) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                connection_id,
                run_id,
                job_id,
                task_id,
                error_code,
                phase,
                system,
                message,
                description_key,
                can_user_fix,
            ],
        )
        return self

    def connection(
        self,
        connection_id: str,
        display_name: str | None,
        imodel_id: str | None,
        itwin_id: str | None,
    ) -> Warehouse:
        self.con.execute(
            "insert into connections (connection_id, display_name, imodel_id, itwin_id) "
            "values (?, ?, ?, ?)",
            [connection_id, display_name, imodel_id, itwin_id],
        )
        return self

    def catalog_entry(
        self,
        catalog: str,
        description_key: str,
        description: str,
        category: str | None = None,
        can_user_fix: bool | None = None,
        kb_article_link: str | None = None,
    ) -> Warehouse:
        self.con.execute(
            "insert into error_catalog values (?, ?, ?, ?, ?, ?)",
            [catalog, description_key, description, category, can_user_fix, kb_article_link],
        )
        return self

    def raw_version(
        self, connection_id: str, run_id: str, fetched_at: str, payload: str
    ) -> Warehouse:
        """A stored version of a run, as the collection keeps it (payload: the run's JSON)."""
        self.con.execute(
            "insert into raw_runs (connection_id, run_id, payload_hash, payload, fetched_at, "
            "state) values (?, ?, md5(?), ?, cast(? as timestamptz), "
            "json_extract_string(?, '$.state'))",
            [connection_id, run_id, payload, payload, fetched_at, payload],
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

    Two connections over three UTC days; only c1 has connection details. c1/r2 starts 30 s
    before midnight UTC, which is already the next day in Tokyo. c1/r3 is still running
    (3 March has no completed run).
    """
    w = Warehouse.empty(timezone)
    w.connection("c1", "Plant <north>", "m1", "w1")  # c2 has runs but no details
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


Z = 1.959963984540054


def wilson(k: int, n: int) -> tuple[float | None, float | None]:
    """The 95% Wilson score interval of k in n, from CONTRACT.md's formula; NULLs when n = 0."""
    if n == 0:
        return None, None
    centre = (k + Z * Z / 2) / (n + Z * Z)
    half_width = Z * math.sqrt(k * (n - k) / n + Z * Z / 4) / (n + Z * Z)
    return centre - half_width, centre + half_width


def rate(k: int, n: int) -> tuple[float | None, float | None, float | None]:
    """A rate column and its two interval companions, as the models give them."""
    return (k / n if n else None, *wilson(k, n))


def approx_rows(expected: list[dict[str, object]]) -> list[dict[str, object]]:
    """Rows compared exactly except floats, which allow rounding (interval bounds)."""
    return [
        {k: pytest.approx(v, abs=1e-12) if isinstance(v, float) else v for k, v in row.items()}
        for row in expected
    ]


# failure_daily's columns, in order.
DAILY_COLUMNS = (
    "day",
    "completed_runs",
    "failed_runs",
    "run_failure_rate",
    "run_failure_rate_low",
    "run_failure_rate_high",
    "completed_tasks",
    "failed_tasks",
    "task_failure_rate",
    "task_failure_rate_low",
    "task_failure_rate_high",
    "baseline_completed_tasks",
    "baseline_failed_tasks",
    "baseline_task_failure_rate",
    "baseline_task_failure_rate_low",
    "baseline_task_failure_rate_high",
    "is_spike",
)
