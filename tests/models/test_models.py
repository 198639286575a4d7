"""The report models against the hand-computed data set in builders.mixed_warehouse.

Task tally (10 completed tasks, 6 failed):
  c1/r1 (3-01 10:00, Error)      t1 Error E1/P1/S1, t2 Error no row, t3 Succeeded W1/NULL/S1
  c1/r2 (3-01 23:59:30, Success) t4 Succeeded no row, t5 TimedOut E1/P2/NULL
  c1/r3 (3-03 05:00, Running)    t6 Running, t7 Running E2/P1/S2 (not completed)
  c2/r4 (3-02 09:00, TimedOut)   t8 TimedOut E2/P1/S2, t9 Error E1/P1/S1
  c2/r5 (3-02 12:00, Canceled)   t10 Canceled no row, t11 Error NULL/P2/S2
  c2/r6 (3-02 13:00, Partial)    t12 Succeeded W1/P1/S1
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import pytest

from pipeline.warehouse.models import report_models
from tests.models.builders import DAILY_COLUMNS, Warehouse, approx_rows, rate, rows, wilson

U = "(unspecified)"
R1 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
R2 = datetime(2024, 3, 1, 23, 59, 30, tzinfo=UTC)
R3 = datetime(2024, 3, 3, 5, 0, tzinfo=UTC)
R4 = datetime(2024, 3, 2, 9, 0, tzinfo=UTC)
R5 = datetime(2024, 3, 2, 12, 0, tzinfo=UTC)
R6 = datetime(2024, 3, 2, 13, 0, tzinfo=UTC)

COLUMNS = (
    "failed_tasks",
    "error_occurrences",
    "completed_tasks",
    "failure_rate",
    "failure_rate_low",
    "failure_rate_high",
    "share_of_failures",
    "runs_affected",
    "connections_affected",
    "first_seen",
    "last_seen",
)


def grouped(key: str, *expected: tuple[object, ...]) -> list[dict[str, object]]:
    """Rows written as (value, failed, occurrences, completed, rate, share, runs, ...);
    the interval of failed in completed is inserted after the rate."""
    full = []
    for row in expected:
        failed, completed = row[1], row[3]
        assert isinstance(failed, int) and isinstance(completed, int)
        full.append((*row[:5], *wilson(failed, completed), *row[5:]))
    return approx_rows([dict(zip((key, *COLUMNS), row, strict=True)) for row in full])


def test_failure_rate_by_error_code(mixed: duckdb.DuckDBPyConnection) -> None:
    assert rows(mixed, "failure_rate_by_error_code") == grouped(
        "error_code",
        ("E1", 3, 3, 10, 3 / 10, 3 / 6, 3, 2, R1, R4),
        # t2 (no error row) and t11 (NULL code): only t11 is an occurrence
        (U, 2, 1, 10, 2 / 10, 2 / 6, 2, 2, R1, R5),
        ("E2", 1, 1, 10, 1 / 10, 1 / 6, 1, 1, R4, R4),
        # errors only on successful tasks: a row, with zero failures
        ("W1", 0, 2, 10, 0.0, 0.0, 0, 0, None, None),
    )


def test_failure_rate_by_phase(mixed: duckdb.DuckDBPyConnection) -> None:
    assert rows(mixed, "failure_rate_by_phase") == grouped(
        "phase",
        ("P1", 3, 4, 10, 3 / 10, 3 / 6, 2, 2, R1, R4),
        ("P2", 2, 2, 10, 2 / 10, 2 / 6, 2, 2, R2, R5),
        # t2 failed with no error row; t3's NULL phase is an occurrence
        (U, 1, 1, 10, 1 / 10, 1 / 6, 1, 1, R1, R1),
    )


def test_failure_rate_by_system(mixed: duckdb.DuckDBPyConnection) -> None:
    assert rows(mixed, "failure_rate_by_system") == grouped(
        "system",
        ("S1", 2, 4, 10, 2 / 10, 2 / 6, 2, 2, R1, R4),
        ("S2", 2, 2, 10, 2 / 10, 2 / 6, 2, 1, R4, R5),
        (U, 2, 1, 10, 2 / 10, 2 / 6, 2, 1, R1, R2),
    )


CONNECTION_COLUMNS = (
    "connection_id",
    "display_name",
    "imodel_id",
    "itwin_id",
    "completed_runs",
    "failed_runs",
    "partial_runs",
    "run_failure_rate",
    "run_failure_rate_low",
    "run_failure_rate_high",
    "completed_tasks",
    "failed_tasks",
    "task_failure_rate",
    "task_failure_rate_low",
    "task_failure_rate_high",
    "last_run_start",
    "last_run_result",
)


def test_failure_rate_by_connection(mixed: duckdb.DuckDBPyConnection) -> None:
    expected = [
        # the running r3 is the latest run and has no result yet
        ("c1", "Plant <north>", "m1", "w1", 2, 1, 0, *rate(1, 2), 5, 3, *rate(3, 5), R3, None),
        # TimedOut counts as failed, Canceled does not; c2 has no details: NULL names
        ("c2", None, None, None, 3, 1, 1, *rate(1, 3), 5, 3, *rate(3, 5), R6, "PartialSuccess"),
    ]
    assert rows(mixed, "failure_rate_by_connection") == approx_rows(
        [dict(zip(CONNECTION_COLUMNS, row, strict=True)) for row in expected]
    )
    # the hand-written rates themselves, not only the helper's
    assert [r["run_failure_rate"] for r in rows(mixed, "failure_rate_by_connection")] == [
        1 / 2,
        1 / 3,
    ]


def test_failure_daily(mixed: duckdb.DuckDBPyConnection) -> None:
    expected = [
        # r2 started at 23:59:30 UTC (08:59 next day in the Tokyo session): still 1 March
        (date(2024, 3, 1), 2, 1, *rate(1, 2), 5, 3, *rate(3, 5), 0, 0, *rate(0, 0), False),
        # the baseline of 2 March is 1 March alone; 3 of 5 against 3 of 5 is no spike
        (date(2024, 3, 2), 3, 1, *rate(1, 3), 5, 3, *rate(3, 5), 5, 3, *rate(3, 5), False),
        # only a running run: both denominators are zero, so no rate and no spike
        (date(2024, 3, 3), 0, 0, *rate(0, 0), 0, 0, *rate(0, 0), 10, 6, *rate(6, 10), False),
    ]
    assert rows(mixed, "failure_daily") == approx_rows(
        [dict(zip(DAILY_COLUMNS, row, strict=True)) for row in expected]
    )
    assert [r["task_failure_rate"] for r in rows(mixed, "failure_daily")] == [3 / 5, 3 / 5, None]


def test_day_is_utc_in_a_session_west_of_utc() -> None:
    # 00:30 UTC on 2 March is still 1 March in Los Angeles
    w = Warehouse.empty("America/Los_Angeles").run("c1", "r1", "2024-03-02 00:30:00+00")
    con = w.build()
    assert con.execute("select day from failure_daily").fetchall() == [(date(2024, 3, 2),)]


def test_no_failed_tasks_gives_null_share_and_zero_rate() -> None:
    w = (
        Warehouse.empty()
        .run("c1", "r1", "2024-03-01 10:00:00+00")
        .task("c1", "r1", "t1")
        .error("c1", "r1", "t1", "W1", "P1", "S1")
    )
    con = w.build()
    assert rows(con, "failure_rate_by_error_code") == grouped(
        "error_code", ("W1", 0, 1, 1, 0.0, None, 0, 0, None, None)
    )


def test_connection_with_only_a_running_run_has_null_rates() -> None:
    con = Warehouse.empty().run("c1", "r1", "2024-03-01 10:00:00+00", "Running", None).build()
    assert rows(con, "failure_rate_by_connection") == [
        {
            "connection_id": "c1",
            "display_name": None,
            "imodel_id": None,
            "itwin_id": None,
            "completed_runs": 0,
            "failed_runs": 0,
            "partial_runs": 0,
            "run_failure_rate": None,
            "run_failure_rate_low": None,
            "run_failure_rate_high": None,
            "completed_tasks": 0,
            "failed_tasks": 0,
            "task_failure_rate": None,
            "task_failure_rate_low": None,
            "task_failure_rate_high": None,
            "last_run_start": R1,
            "last_run_result": None,
        }
    ]


def test_last_run_tie_break_is_deterministic() -> None:
    w = Warehouse.empty()
    # inserted out of order; equal start times are broken by the larger run_id
    w.run("c1", "rb", "2024-03-01 10:00:00+00", "Completed", "Error")
    w.run("c1", "ra", "2024-03-01 10:00:00+00", "Completed", "Succeeded")
    w.run("c1", "r0", None, "Completed", "TimedOut")  # no start time: never the latest
    con = w.build()
    assert con.execute(
        "select last_run_start, last_run_result from failure_rate_by_connection"
    ).fetchall() == [(R1, "Error")]


@pytest.mark.parametrize(
    "model",
    [
        "failure_rate_by_error_code",
        "failure_rate_by_phase",
        "failure_rate_by_system",
        "failure_rate_by_fixability",
        "failure_rate_by_description_key",
        "failure_rate_by_connection",
        "failure_rate_by_imodel",
        "failure_rate_by_itwin",
        "failure_daily",
        "failure_trend_by_error_code",
        "run_state_history",
        "run_duration_daily",
    ],
)
def test_empty_warehouse_gives_empty_models(model: str) -> None:
    con = Warehouse.empty().build()
    assert rows(con, model) == []


def test_rate_columns_are_double(mixed: duckdb.DuckDBPyConnection) -> None:
    types = mixed.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where column_name like '%rate' or column_name = 'share_of_failures'"
    ).fetchall()
    report_types = {(t, c): d for t, c, d in types if not t.startswith(("stg_", "int_"))}
    # five dimension marts (rate, share), connection/iModel/iTwin (run and task rates),
    # failure_daily (run, task, baseline), the trend (recent, prior)
    assert len(report_types) == 5 * 2 + 3 * 2 + 3 + 2
    assert set(report_types.values()) == {"DOUBLE"}


def test_every_rate_has_its_interval_and_it_contains_the_rate(
    mixed: duckdb.DuckDBPyConnection,
) -> None:
    columns = mixed.execute(
        "select table_name, column_name from information_schema.columns "
        "where column_name like '%rate' and table_name not like 'stg\\_%' escape '\\'"
    ).fetchall()
    assert columns
    for table, column in columns:
        outside = mixed.execute(
            f"select count(*) from {table} where "
            f"({column} is null) <> ({column}_low is null or {column}_high is null) "
            f"or not ({column}_low <= {column} and {column} <= {column}_high) "
            f"or {column}_low < 0 or {column}_high > 1"
        ).fetchall()
        assert outside == [(0,)], (table, column)


def test_a_task_whose_run_row_is_missing_counts_for_its_connection_on_no_day() -> None:
    w = (
        Warehouse.empty()
        .run("c1", "r1", "2024-03-01 10:00:00+00")
        .task("c1", "r1", "t1")
        .task("c1", "r9", "t1", "Completed", "Error")  # r9 has no run row
        .error("c1", "r9", "t1", "E9", "P", "S")
    )
    con = w.build()
    assert con.execute(
        "select completed_runs, completed_tasks, failed_tasks from failure_rate_by_connection"
    ).fetchall() == [(1, 2, 1)]
    assert con.execute(
        "select day, completed_tasks, failed_tasks from failure_daily"
    ).fetchall() == [(date(2024, 3, 1), 1, 0)]
    assert con.execute(
        "select error_code, failed_tasks, completed_tasks, runs_affected, first_seen "
        "from failure_rate_by_error_code"
    ).fetchall() == [("E9", 1, 2, 1, None)]


def test_report_columns_have_plain_types(mixed: duckdb.DuckDBPyConnection) -> None:
    # sums are HUGEINT in DuckDB; the reports cast counts back so Parquet readers get int64
    types = mixed.execute(
        "select distinct data_type from information_schema.columns "
        "where table_name in (select unnest(?))",
        [list(report_models())],
    ).fetchall()
    assert {t for (t,) in types} <= {
        "VARCHAR",
        "BIGINT",
        "DOUBLE",
        "DATE",
        "TIMESTAMP WITH TIME ZONE",
        "BOOLEAN",
    }
