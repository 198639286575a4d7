"""What is worth an alert, read from the built models: spike days and new or rising error codes.

Definitions are the contract's: a spike finding is a day of `failure_daily` with
`is_spike` within the recent window (the 7 days ending at as_of_day, the latest day
on which a run started); a trend finding is an error code of
`failure_trend_by_error_code` trending `new` or `rising`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import duckdb

from pipeline.report.data import rows_of
from pipeline.report.format import format_rate

log = logging.getLogger("pipeline.alerts")

RECENT_WINDOW_DAYS = 7
ALERTED_TRENDS: tuple[str, ...] = ("new", "rising")

FindingKind = Literal["spike", "trend"]

_SPIKE_COLUMNS: tuple[str, ...] = (
    "day",
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
)
_TREND_COLUMNS: tuple[str, ...] = (
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


@dataclass(frozen=True)
class Finding:
    """One thing worth telling people; `key` names it in the alert log."""

    kind: FindingKind
    as_of_day: date
    text: str
    day: date | None = None  # the spike's day
    error_code: str | None = None
    trend: str | None = None

    @property
    def key(self) -> str:
        if self.kind == "spike":
            return f"spike:{self.day}"
        return f"trend:{self.error_code}:{self.trend}:{self.as_of_day}"


def current_findings(con: duckdb.DuckDBPyConnection) -> list[Finding]:
    """Spike days first (oldest first), then trending codes (`new`, then `rising`, by code).

    A warehouse whose models predate these columns has no findings rather than an error.
    """
    return _spike_findings(con) + _trend_findings(con)


def finding_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The current findings as one-line texts, for a summary."""
    return [finding.text for finding in current_findings(con)]


def _spike_findings(con: duckdb.DuckDBPyConnection) -> list[Finding]:
    if not _has_columns(con, "failure_daily", (*_SPIKE_COLUMNS, "is_spike")):
        return []
    rows = rows_of(
        con,
        f"""
        with latest as (select max(day) as as_of_day from failure_daily)
        select {", ".join(_SPIKE_COLUMNS)}, latest.as_of_day
        from failure_daily, latest
        where is_spike and day between latest.as_of_day - ? and latest.as_of_day
        order by day
        """,
        [RECENT_WINDOW_DAYS - 1],
    )
    return [
        Finding(kind="spike", as_of_day=row["as_of_day"], day=row["day"], text=spike_text(row))
        for row in rows
    ]


def _trend_findings(con: duckdb.DuckDBPyConnection) -> list[Finding]:
    if not _has_columns(con, "failure_trend_by_error_code", _TREND_COLUMNS):
        return []
    rows = rows_of(
        con,
        f"""
        select {", ".join(_TREND_COLUMNS)}
        from failure_trend_by_error_code
        where trend in ({", ".join("?" for _ in ALERTED_TRENDS)})
        order by trend, error_code
        """,
        list(ALERTED_TRENDS),
    )
    return [
        Finding(
            kind="trend",
            as_of_day=row["as_of_day"],
            error_code=row["error_code"],
            trend=row["trend"],
            text=trend_text(row),
        )
        for row in rows
    ]


def spike_text(row: dict[str, Any]) -> str:
    rate = format_rate(
        row["task_failure_rate"], row["task_failure_rate_low"], row["task_failure_rate_high"]
    )
    baseline = format_rate(
        row["baseline_task_failure_rate"],
        row["baseline_task_failure_rate_low"],
        row["baseline_task_failure_rate_high"],
    )
    return (
        f"Task failure spike on {row['day']}: {rate} of {row['completed_tasks']:,} completed "
        f"tasks failed, against {baseline} of {row['baseline_completed_tasks']:,} over the "
        "28 days before."
    )


def trend_text(row: dict[str, Any]) -> str:
    recent = format_rate(
        row["recent_failure_rate"], row["recent_failure_rate_low"], row["recent_failure_rate_high"]
    )
    if row["prior_failed_tasks"] == 0:
        prior = "none in the 28 days before"
    else:
        prior_rate = format_rate(
            row["prior_failure_rate"], row["prior_failure_rate_low"], row["prior_failure_rate_high"]
        )
        prior = f"against {prior_rate} of {row['prior_completed_tasks']:,} in the 28 days before"
    code = display_code(row["error_code"])
    return (
        f"Error code {code} is {row['trend']}: {row['recent_failed_tasks']:,} failed "
        f"tasks, {recent} of {row['recent_completed_tasks']:,} completed tasks in the 7 days to "
        f"{row['as_of_day']}, {prior}."
    )


def display_code(code: str, limit: int = 120) -> str:
    """An error code as sent by the API, made safe for one line of a message."""
    flat = " ".join(code.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _has_columns(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...]) -> bool:
    found = {
        name
        for (name,) in con.execute(
            """
            select column_name from information_schema.columns
            where table_catalog = current_database() and table_schema = current_schema()
                and table_name = ?
            """,
            [table],
        ).fetchall()
    }
    missing = [column for column in columns if column not in found]
    if found and missing:
        log.warning(
            "%s lacks %s (built by an older version); no alerts from it until the models "
            "are rebuilt",
            table,
            ", ".join(missing),
        )
    return not missing
