"""Every report model against the hand-computed data set in builders.mixed_warehouse.

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

from tests.models.builders import Warehouse, rows

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
    "share_of_failures",
    "runs_affected",
    "connections_affected",
    "first_seen",
    "last_seen",
)


def grouped(key: str, *expected: tuple[object, ...]) -> list[dict[str, object]]:
    return [dict(zip((key, *COLUMNS), row, strict=True)) for row in expected]


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


def test_failure_rate_by_connection(mixed: duckdb.DuckDBPyConnection) -> None:
    columns = (
        "connection_id",
        "completed_runs",
        "failed_runs",
        "partial_runs",
        "run_failure_rate",
        "completed_tasks",
        "failed_tasks",
        "task_failure_rate",
        "last_run_start",
        "last_run_result",
    )
    expected = [
        # the running r3 is the latest run and has no result yet
        ("c1", 2, 1, 0, 1 / 2, 5, 3, 3 / 5, R3, None),
        # TimedOut counts as failed, Canceled does not
        ("c2", 3, 1, 1, 1 / 3, 5, 3, 3 / 5, R6, "PartialSuccess"),
    ]
    assert rows(mixed, "failure_rate_by_connection") == [
        dict(zip(columns, row, strict=True)) for row in expected
    ]


def test_failure_daily(mixed: duckdb.DuckDBPyConnection) -> None:
    columns = (
        "day",
        "completed_runs",
        "failed_runs",
        "run_failure_rate",
        "completed_tasks",
        "failed_tasks",
        "task_failure_rate",
    )
    expected = [
        # r2 started at 23:59:30 UTC (08:59 next day in the Tokyo session): still 1 March
        (date(2024, 3, 1), 2, 1, 1 / 2, 5, 3, 3 / 5),
        (date(2024, 3, 2), 3, 1, 1 / 3, 5, 3, 3 / 5),
        # only a running run: both denominators are zero
        (date(2024, 3, 3), 0, 0, None, 0, 0, None),
    ]
    assert rows(mixed, "failure_daily") == [
        dict(zip(columns, row, strict=True)) for row in expected
    ]


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
            "completed_runs": 0,
            "failed_runs": 0,
            "partial_runs": 0,
            "run_failure_rate": None,
            "completed_tasks": 0,
            "failed_tasks": 0,
            "task_failure_rate": None,
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
        "failure_rate_by_connection",
        "failure_daily",
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
    assert len(report_types) == 3 * 2 + 2 + 2
    assert set(report_types.values()) == {"DOUBLE"}
