"""failure_daily's baseline and spikes, the error-code trend, run history and durations,
against hand-computed values at the window edges and in sessions on either side of UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest

from tests.models.builders import DAILY_COLUMNS, Warehouse, approx_rows, rate, rows

ZONES = ["UTC", "America/Los_Angeles", "Asia/Tokyo"]


def tasks_on(w: Warehouse, run_id: str, start: str, outcomes: list[str | None]) -> None:
    """One completed run of c1 with a completed task per outcome: an error code (failed
    with that code) or None (succeeded)."""
    w.run("c1", run_id, start, "Completed", "Error" if any(outcomes) else "Succeeded")
    for i, code in enumerate(outcomes):
        w.task("c1", run_id, f"t{i}", "Completed", "Error" if code else "Succeeded")
        if code:
            w.error("c1", run_id, f"t{i}", code, "P", "S")


def at(day: date, clock: str) -> str:
    return f"{day.isoformat()} {clock}+00"


D = date(2024, 3, 31)


@pytest.fixture(params=ZONES)
def baseline(request: pytest.FixtureRequest) -> duckdb.DuckDBPyConnection:
    """D−29: 10 of 10 failed; D−28 (00:30 UTC, the day before in Los Angeles): 1 of 4;
    D−2: a running run only; D−1: 0 of 6; D (23:30 UTC, the next day in Tokyo): 9 of 10."""
    w = Warehouse.empty(request.param)
    tasks_on(w, "r29", at(D - timedelta(29), "12:00:00"), ["E"] * 10)
    tasks_on(w, "r28", at(D - timedelta(28), "00:30:00"), ["E", None, None, None])
    w.run("c1", "r2", at(D - timedelta(2), "12:00:00"), "Running", None)
    w.task("c1", "r2", "t0", "Running", None)
    tasks_on(w, "r1", at(D - timedelta(1), "12:00:00"), [None] * 6)
    tasks_on(w, "r0", at(D, "23:30:00"), ["E"] * 9 + [None])
    return w.build()


def test_baseline_covers_the_28_days_before(baseline: duckdb.DuckDBPyConnection) -> None:
    def day_row(
        back: int, runs: int, failed_runs: int, done: int, failed: int, base: tuple[int, int]
    ) -> tuple[object, ...]:
        return (
            D - timedelta(back),
            runs,
            failed_runs,
            *rate(failed_runs, runs),
            done,
            failed,
            *rate(failed, done),
            base[0],
            base[1],
            *rate(base[1], base[0]),
        )

    expected = [
        # nothing before D−29: no baseline, no spike
        (*day_row(29, 1, 1, 10, 10, (0, 0)), False),
        # D−29 is 1 day back from D−28: in its baseline. 1 of 4 is no spike over 10 of 10
        (*day_row(28, 1, 1, 4, 1, (10, 10)), False),
        # no completed task: no rate, no spike; D−29 is exactly 27 days back: included
        (*day_row(2, 0, 0, 0, 0, (14, 11)), False),
        # D−29 is 28 days back from D−1: the last day of its baseline
        (*day_row(1, 1, 0, 6, 0, (14, 11)), False),
        # D−29 is 29 days back from D: out. D−28..D−1 give 1 of 10; 9 of 10 is a spike
        (*day_row(0, 1, 1, 10, 9, (10, 1)), True),
    ]
    assert rows(baseline, "failure_daily") == approx_rows(
        [dict(zip(DAILY_COLUMNS, row, strict=True)) for row in expected]
    )


A = date(2024, 6, 30)
TREND_COLUMNS = (
    "error_code",
    "as_of_day",
    "recent_failed_tasks",
    "recent_completed_tasks",
    "recent_failure_rate",
    "recent_failure_rate_low",
    "recent_failure_rate_high",
    "prior_failed_tasks",
    "prior_completed_tasks",
    "prior_failure_rate",
    "prior_failure_rate_low",
    "prior_failure_rate_high",
    "trend",
)


@pytest.fixture(params=ZONES)
def trend(request: pytest.FixtureRequest) -> duckdb.DuckDBPyConnection:
    """Recent: A (10 tasks) and A−6 (10, at 00:30 UTC); prior: A−7 (20, at 23:30 UTC) and
    A−34 (20, at 00:30 UTC); A−35 (50, at 23:30 UTC) is in neither window."""
    w = Warehouse.empty(request.param)
    tasks_on(w, "a0", at(A, "10:00:00"), ["RISE"] * 5 + ["NEW"] + [None] * 4)
    tasks_on(w, "a6", at(A - timedelta(6), "00:30:00"), ["RISE"] * 5 + ["STEADY"] + [None] * 4)
    tasks_on(
        w,
        "a7",
        at(A - timedelta(7), "23:30:00"),
        ["FALL"] * 10 + ["RISE", "STEADY"] + [None] * 8,
    )
    tasks_on(w, "a34", at(A - timedelta(34), "00:30:00"), ["FALL"] * 10 + ["STEADY"] + [None] * 9)
    tasks_on(w, "a35", at(A - timedelta(35), "23:30:00"), ["OLD"] * 5 + ["NEW"] * 5 + [None] * 40)
    return w.build()


def test_trend_windows_and_classes(trend: duckdb.DuckDBPyConnection) -> None:
    def code(name: str, recent: int, prior: int, label: str) -> tuple[object, ...]:
        return (name, A, recent, 20, *rate(recent, 20), prior, 40, *rate(prior, 40), label)

    expected = [
        # NEW's 5 failures on A−35 are in no window: nothing before, so it is new
        code("NEW", 1, 0, "new"),
        # 10 of 20 (30%–70%) against 1 of 40 (0.4%–13%)
        code("RISE", 10, 1, "rising"),
        # 1 of 20 against 2 of 40: the intervals overlap
        code("STEADY", 1, 2, "steady"),
        # seen only in the prior window: 0 of 20 (0%–16%) against 20 of 40 (35%–65%)
        code("FALL", 0, 20, "falling"),
        # OLD failed only on A−35: no row
    ]
    assert rows(trend, "failure_trend_by_error_code") == approx_rows(
        [dict(zip(TREND_COLUMNS, row, strict=True)) for row in expected]
    )


def test_as_of_day_is_the_latest_day_a_run_started() -> None:
    w = Warehouse.empty("Asia/Tokyo")
    tasks_on(w, "r1", at(A - timedelta(8), "10:00:00"), ["E", None])
    # the latest run is still running: it moves as_of_day, and E falls out of the recent window
    w.run("c1", "r2", at(A, "23:30:00"), "Running", None)
    con = w.build()
    assert con.execute(
        "select error_code, as_of_day, recent_completed_tasks, prior_failed_tasks, trend "
        "from failure_trend_by_error_code"
    ).fetchall() == [("E", A, 0, 1, "steady")]


def test_run_state_history_numbers_versions_by_first_fetch() -> None:
    w = Warehouse.empty("America/Los_Angeles")
    # written out of order; versions follow fetched_at, not insertion
    w.raw_version(
        "c1", "r1", "2024-03-01 11:00:00+00", '{"id":"r1","result":"Cancelled","state":"Completed"}'
    )
    w.raw_version("c1", "r1", "2024-03-01 10:00:00+00", '{"id":"r1","state":"NotStarted"}')
    w.raw_version("c1", "r1", "2024-03-01 10:05:00+00", '{"id":"r1","state":"InProgress"}')
    w.raw_version(
        "c2", "r1", "2024-03-01 12:00:00+00", '{"id":"r1","result":"Succeeded","state":"Completed"}'
    )
    con = w.build()

    def t(h: int, m: int) -> datetime:
        return datetime(2024, 3, 1, h, m, tzinfo=UTC)

    columns = ("connection_id", "run_id", "version", "state", "result", "valid_from", "valid_to")
    expected = [
        ("c1", "r1", 1, "NotStarted", None, t(10, 0), t(10, 5)),
        ("c1", "r1", 2, "InProgress", None, t(10, 5), t(11, 0)),
        # spelled as the runs table stores it; the current version has no end
        ("c1", "r1", 3, "Completed", "Canceled", t(11, 0), None),
        ("c2", "r1", 1, "Completed", "Succeeded", t(12, 0), None),
    ]
    assert rows(con, "run_state_history") == [dict(zip(columns, r, strict=True)) for r in expected]


@pytest.mark.parametrize("zone", ZONES)
def test_run_duration_percentiles_by_utc_day(zone: str) -> None:
    w = Warehouse.empty(zone)
    for i, seconds in enumerate([40.0, 10.0, 30.0, 20.0]):
        w.run("c1", f"a{i}", "2024-03-01 23:30:00+00", duration_s=seconds)
    w.run("c1", "nodur", "2024-03-01 12:00:00+00", duration_s=None)  # no duration: left out
    w.run("c1", "running", "2024-03-01 12:00:00+00", "Running", None, duration_s=1000.0)
    w.run("c1", "b0", "2024-03-02 00:30:00+00", "Completed", "Error", duration_s=5.0)
    w.run("c1", "c0", "2024-03-03 00:30:00+00", "Running", None)  # no completed run: no row
    con = w.build()
    assert rows(con, "run_duration_daily") == [
        # quantile_cont interpolates: p90 at position 2.7 of 10, 20, 30, 40 is 37
        {
            "day": date(2024, 3, 1),
            "completed_runs": 4,
            "p50_duration_s": 25.0,
            "p90_duration_s": pytest.approx(37.0),
            "p95_duration_s": pytest.approx(38.5),
            "max_duration_s": 40.0,
        },
        {
            "day": date(2024, 3, 2),
            "completed_runs": 1,
            "p50_duration_s": 5.0,
            "p90_duration_s": 5.0,
            "p95_duration_s": 5.0,
            "max_duration_s": 5.0,
        },
    ]
