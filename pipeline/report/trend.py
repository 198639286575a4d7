"""Report sections answering "is it getting worse?": what changed this week, the daily rate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import duckdb

from pipeline.report.data import Row, number, read_model
from pipeline.report.format import count, esc, percent
from pipeline.report.tables import (
    SMALL_NOTE,
    Column,
    counted,
    is_small,
    rate,
    rated,
    section,
    table,
    value,
)
from pipeline.report.timeline import Band, Series, day_chart

TREND_ORDER = {"new": 0, "rising": 1, "falling": 2, "steady": 3}
TREND_TEXT = {"new": "NEW", "rising": "rising ↑", "falling": "falling ↓", "steady": "steady"}
RECENT_DAYS = 7
TABLE_DAYS = 14
TASKS = "#c2410c"
BASELINE = "#475569"


def _by_trend(row: Row) -> tuple[int, float, str]:
    return (
        TREND_ORDER.get(str(row.get("trend")), 9),
        -number(row, "recent_failed_tasks"),
        str(row.get("error_code")),
    )


TREND_COLUMNS = [
    Column("error code", value("error_code"), css="text", limit=40),
    Column(
        "trend",
        lambda r: TREND_TEXT.get(str(r.get("trend")), str(r.get("trend"))),
        css="text trend",
    ),
    counted("failed tasks", "recent_failed_tasks"),
    rated("failure rate", "recent_failure_rate"),
    counted("failed tasks", "prior_failed_tasks"),
    rated("failure rate", "prior_failure_rate"),
]
TREND_SPANS = (("", 2), ("last 7 days", 2), ("the 28 days before", 2))


def _window_note(as_of: object) -> str:
    if not isinstance(as_of, date):
        return ""
    recent, prior_end, prior = (
        as_of - timedelta(days=6),
        as_of - timedelta(days=7),
        as_of - timedelta(days=34),
    )
    return (
        f"Last 7 days: {recent:%d %b} to {as_of:%d %b %Y}; the 28 days before: {prior:%d %b} to "
        f"{prior_end:%d %b}. Rising or falling only when the two 95% intervals do not overlap; "
        "new when the code had no failed task in the 28 days before. "
    )


def what_changed_section(con: duckdb.DuckDBPyConnection) -> str:
    rows = read_model(con, "failure_trend_by_error_code", sort=_by_trend)
    if rows is None:
        return ""
    moving = [r for r in rows if r.get("trend") != "steady"]
    steady = [r for r in rows if r.get("trend") == "steady"]
    body = table(
        moving,
        TREND_COLUMNS,
        "No error code is new, rising or falling this week.",
        spans=TREND_SPANS,
    )
    if steady:
        body += (
            f"<details><summary>{len(steady)} error code{'s' if len(steady) != 1 else ''} "
            f"steady</summary>{table(steady, TREND_COLUMNS, '', spans=TREND_SPANS)}</details>"
        )
    note = esc(_window_note(rows[0].get("as_of_day") if rows else None)) + (
        "From <code>failure_trend_by_error_code</code>."
    )
    return section("What changed this week", body, note, anchor="changed")


def _daily_hover(r: Row) -> str:
    text = (
        f"{r['day']:%Y-%m-%d}: {rate('task_failure_rate')(r)}"
        f" of {count(r.get('completed_tasks'))} completed tasks"
    )
    return text + (" (spike)" if r.get("is_spike") is True else "")


def _small_baseline(row: Row) -> bool:
    return is_small(row, "baseline_completed_tasks")


def _y_top(rows: Sequence[Row]) -> float:
    # Scale to the days worth reading; a tiny day's 100% is pinned to the top instead.
    solid = [r for r in rows if not is_small(r)] or list(rows)
    tops = [number(r, k) for r in solid for k in ("task_failure_rate", "task_failure_rate_high")]
    tops += [number(r, "baseline_task_failure_rate") for r in rows if not _small_baseline(r)]
    return max(tops, default=0.0) or 0.1


def _daily_chart(rows: Sequence[Row]) -> str:
    days: list[date] = [r["day"] for r in rows]
    largest = max((number(r, "completed_tasks") for r in rows), default=0.0) or 1.0
    tasks = Series(
        "task failure rate",
        TASKS,
        [r.get("task_failure_rate") for r in rows],
        [_daily_hover(r) for r in rows],
        weights=[number(r, "completed_tasks") / largest for r in rows],
        faint=[is_small(r) for r in rows],
    )
    baseline = Series(
        "baseline (28 days before)",
        BASELINE,
        [r.get("baseline_task_failure_rate") for r in rows],
        [""] * len(rows),
        dashed=True,
        markers=False,
        faint=[_small_baseline(r) for r in rows],  # a baseline of a few tasks is not drawn
    )
    band = Band(
        "95% interval",
        TASKS,
        [r.get("task_failure_rate_low") for r in rows],
        [r.get("task_failure_rate_high") for r in rows],
        faint=[is_small(r) for r in rows],
    )
    spikes = [(r["day"], _daily_hover(r)) for r in rows if r.get("is_spike") is True]
    return day_chart(
        days,
        [baseline, tasks],
        title="Daily task failure rate",
        y_label="task failure rate",
        y_format=lambda v: percent(v, 0 if round(v * 100, 6).is_integer() else 1),
        y_top=_y_top(rows),
        bands=[band],
        marked=spikes,
        mark_name="spike day",
    )


DAILY_COLUMNS = [
    Column("day (UTC)", value("day", lambda d: f"{d:%Y-%m-%d}"), css="when"),
    counted("completed runs", "completed_runs"),
    counted("failed runs", "failed_runs"),
    rated("run failure rate", "run_failure_rate"),
    counted("completed tasks", "completed_tasks"),
    counted("failed tasks", "failed_tasks"),
    rated("task failure rate", "task_failure_rate"),
    rated("baseline (28 days before)", "baseline_task_failure_rate"),
    Column("spike", lambda r: "SPIKE" if r.get("is_spike") is True else "", css="text spike"),
]


def daily_section(con: duckdb.DuckDBPyConnection) -> str:
    rows = read_model(con, "failure_daily", sort=lambda r: r["day"])
    if rows is None:
        return ""
    if not rows:
        return section("Daily failure rate", '<p class="empty">No runs yet.</p>')
    spikes = [r for r in rows if r.get("is_spike") is True]
    spike_list = (
        "<p>Spike days: "
        + "; ".join(
            esc(_daily_hover(r).replace(" (spike)", ""))
            + esc(f", baseline {rate('baseline_task_failure_rate')(r)}")
            for r in spikes
        )
        + ".</p>"
        if spikes
        else "<p>No spike days.</p>"
    )
    last = list(reversed(rows[-TABLE_DAYS:]))
    note = (
        "From <code>failure_daily</code>, by the UTC day the run started (tasks count on their "
        "run's day). The band is the 95% interval; larger dots rest on more tasks, grey dots on "
        "fewer than the table's threshold. A spike day's interval lies wholly above the interval "
        "of the 28 days before it. " + esc(SMALL_NOTE)
    )
    body = (
        f'<div class="chart days">{_daily_chart(rows)}</div>{spike_list}'
        f"<h3>The last {min(TABLE_DAYS, len(rows))} days</h3>"
        + table(last, DAILY_COLUMNS, "", small=is_small)
    )
    return section("Daily failure rate", body, note, anchor="daily")


def verdict(con: duckdb.DuckDBPyConnection) -> str:
    """One line for the top of the page: new and rising codes, recent spike days."""
    trend_rows = read_model(con, "failure_trend_by_error_code")
    trends, daily = trend_rows or [], read_model(con, "failure_daily") or []
    if not trends and not daily:
        return ""
    new = sum(1 for r in trends if r.get("trend") == "new")
    rising = sum(1 for r in trends if r.get("trend") == "rising")
    last_day = max((r["day"] for r in daily), default=None)
    spikes = [
        r["day"]
        for r in daily
        if r.get("is_spike") is True and last_day and (last_day - r["day"]).days < RECENT_DAYS
    ]
    parts = [
        f"{new} new error code{'s' if new != 1 else ''}",
        f"{rising} rising",
        f"{len(spikes)} spike day{'s' if len(spikes) != 1 else ''} in the last {RECENT_DAYS} days",
    ]
    worse = new or rising or spikes
    css = "verdict worse" if worse else "verdict"
    lead = "Getting worse? Yes: " if worse else "Getting worse? Nothing stands out: "
    links = ['<a href="#changed">What changed</a>'] if trend_rows is not None else []
    links += ['<a href="#daily">Daily rate</a>'] if daily else []
    return f'<p class="{css}">{esc(lead + ", ".join(parts) + ".")} {" · ".join(links)}</p>'
