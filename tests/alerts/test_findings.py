from __future__ import annotations

from datetime import date, timedelta

import duckdb

from pipeline.alerts import Finding, current_findings, finding_lines
from tests.alerts.support import AS_OF, add_day, add_days, add_trend


def spike_days(con: duckdb.DuckDBPyConnection) -> list[date | None]:
    return [f.day for f in current_findings(con) if f.kind == "spike"]


def test_a_spike_six_days_before_the_latest_day_is_recent_and_seven_days_before_is_not(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_days(con, 0, 6, 7, 20)
    assert spike_days(con) == [AS_OF - timedelta(6), AS_OF]


def test_the_recent_window_ends_at_the_latest_day_a_run_started_not_today(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # Days with no runs have no row; the window is counted in calendar days from the last row.
    add_day(con, AS_OF - timedelta(30), spike=True)
    add_day(con, AS_OF - timedelta(24), spike=True)
    add_day(con, AS_OF - timedelta(20))
    assert spike_days(con) == [AS_OF - timedelta(24)]


def test_days_without_is_spike_are_no_findings(con: duckdb.DuckDBPyConnection) -> None:
    add_days(con)
    assert current_findings(con) == []


def test_a_spike_finding_names_the_day_its_rate_with_interval_and_the_baseline(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_day(
        con,
        date(2026, 12, 3),
        spike=True,
        completed=40,
        failed=7,
        rate=(0.175, 0.0875, 0.3394),
        baseline=(0.05, 0.0389, 0.0641),
        baseline_completed=1200,
    )
    assert current_findings(con) == [
        Finding(
            kind="spike",
            as_of_day=date(2026, 12, 3),
            day=date(2026, 12, 3),
            text=(
                "Task failure spike on 2026-12-03: 18% (9–34%) of 40 completed tasks failed, "
                "against 5.0% (3.9–6.4%) of 1,200 over the 28 days before."
            ),
        )
    ]


def test_new_and_rising_codes_are_findings_falling_and_steady_are_not(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_days(con)
    for code, trend in [("A", "steady"), ("B", "rising"), ("C", "falling"), ("D", "new")]:
        add_trend(con, code, trend)
    assert [(f.error_code, f.trend) for f in current_findings(con)] == [
        ("D", "new"),
        ("B", "rising"),
    ]


def test_a_trend_finding_names_the_code_its_recent_rate_and_the_prior_one(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_trend(
        con,
        "TAE_X",
        "rising",
        recent=(48, 400, 0.12, 0.0917, 0.1556),
        prior=(48, 1600, 0.03, 0.0227, 0.0395),
    )
    add_trend(
        con,
        "TAE_NEW",
        "new",
        recent=(5, 400, 0.0125, 0.0043, 0.0289),
        prior=(0, 1600, 0.0, 0.0, 0.0024),
    )
    assert finding_lines(con) == [
        "Error code TAE_NEW is new: 5 failed tasks, 1.2% (0.4–2.9%) of 400 completed tasks in the "
        "7 days to 2026-12-06, none in the 28 days before.",
        "Error code TAE_X is rising: 48 failed tasks, 12.0% (9.2–15.6%) of 400 completed tasks "
        "in the 7 days to 2026-12-06, against 3.0% (2.3–4.0%) of 1,600 in the 28 days before.",
    ]


def test_spike_findings_come_before_trend_findings(con: duckdb.DuckDBPyConnection) -> None:
    add_days(con, 1)
    add_trend(con, "TAE_X", "rising")
    assert [f.kind for f in current_findings(con)] == ["spike", "trend"]


def test_a_warehouse_without_the_models_has_no_findings() -> None:
    with duckdb.connect() as empty:
        assert current_findings(empty) == []


def test_models_built_before_spikes_and_trends_existed_give_no_findings() -> None:
    with duckdb.connect() as old:
        old.execute(
            "create table failure_daily as select date '2026-12-06' as day, 10 as completed_tasks,"
            " 2 as failed_tasks, 0.2 as task_failure_rate"
        )
        assert current_findings(old) == []


def test_models_of_another_schema_are_not_taken_for_the_warehouse_s(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_days(con, 0)
    con.execute("create schema other")
    con.execute("create table other.failure_daily as select * from failure_daily")
    con.execute("drop table failure_daily")
    assert current_findings(con) == []


def test_a_long_or_multi_line_code_from_the_api_stays_one_short_line(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_trend(con, "TAE_\nX\t" + "Y" * 500, "new")
    [line] = finding_lines(con)
    assert line.startswith("Error code TAE_ X YYY")
    assert "\n" not in line and len(line) < 300
