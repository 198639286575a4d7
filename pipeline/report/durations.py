"""The report section on run durations by day (run_duration_daily): a chart and a table."""

from __future__ import annotations

import duckdb

from pipeline.report.data import number, read_model
from pipeline.report.format import duration
from pipeline.report.tables import Column, counted, section, table, value
from pipeline.report.timeline import Series, day_chart

TABLE_DAYS = 14
CHARTED = (
    ("p50", "p50_duration_s", "#2563eb"),
    ("p90", "p90_duration_s", "#c2410c"),
    ("p95", "p95_duration_s", "#7c3aed"),
)
UNITS = ((3 * 3600, 3600.0, "hours"), (180, 60.0, "minutes"), (0, 1.0, "seconds"))


def _chart(rows: list[dict[str, object]]) -> str:
    # The p95 sets the scale (a single very long run would squash the rest; the table has
    # the maxima), in the unit that keeps the tick labels round.
    top = max((number(r, "p95_duration_s") for r in rows), default=0.0)
    _, per_unit, unit = next(u for u in UNITS if top >= u[0])
    markers = len(rows) <= TABLE_DAYS  # many days: lines only, or the dots hide them
    series = [
        Series(
            name,
            color,
            [None if r.get(key) is None else number(r, key) / per_unit for r in rows],
            [f"{r['day']:%Y-%m-%d} {name}: {duration(r.get(key))}" for r in rows],
            markers=markers,
        )
        for name, key, color in CHARTED
    ]
    return day_chart(
        [r["day"] for r in rows],  # type: ignore[misc]
        series,
        title="Run duration by day",
        y_label=f"duration ({unit})",
        y_format=lambda v: f"{v:g}",
        y_top=top / per_unit or 1.0,
    )


def duration_section(con: duckdb.DuckDBPyConnection) -> str:
    rows = read_model(con, "run_duration_daily", sort=lambda r: r["day"])
    if rows is None:
        return ""
    heading = "Run durations by day"
    if not rows:
        return section(heading, '<p class="empty">No completed runs with a duration yet.</p>')
    columns = [
        Column("day (UTC)", value("day", lambda d: f"{d:%Y-%m-%d}"), css="when"),
        counted("completed runs", "completed_runs"),
        # A duration stays on one line: on a phone the table scrolls rather than stack it.
        *(Column(name, value(key, duration), css="num when") for name, key, _ in CHARTED),
        Column("max", value("max_duration_s", duration), css="num when"),
    ]
    last = list(reversed(rows[-TABLE_DAYS:]))
    body = (
        f'<div class="chart days">{_chart(rows)}</div>'
        f"<h3>The last {len(last)} days</h3>{table(last, columns, '')}"
    )
    note = (
        "From <code>run_duration_daily</code>: completed runs by the UTC day they started; "
        "percentiles interpolated between runs."
    )
    return section(heading, body, note, anchor="durations")
