"""The self-contained `report.html`: headline figures, top causes, daily trend, connections.

Reads the built models (and the staging views for the headline figures). The page has
inline CSS and inline SVG only, so it opens with no network; every value from the data is
escaped. Also `top_failure_causes`, the summary the CLI prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

from pipeline.report.charts import Bar, Series, bar_chart, esc, line_chart, percent, truncate
from pipeline.warehouse.export import atomic_write_bytes

DEFAULT_TITLE = "iTwin export runs: why exports fail"
TOP_N = 10
UNSPECIFIED = "(unspecified)"

Row = dict[str, Any]


class FailureCause(NamedTuple):
    error_code: str
    phase: str
    system: str
    failed_tasks: int
    share: float


def top_failure_causes(con: duckdb.DuckDBPyConnection, n: int = 5) -> list[FailureCause]:
    """The n most frequent (error code, phase, system) among failed tasks, with their share."""
    rows = con.execute(
        """
        with failed as (
            select error_code, phase, system from stg_tasks where is_failed
        )
        select
            error_code,
            phase,
            system,
            count(*) as failed_tasks,
            count(*) / sum(count(*)) over () as share
        from failed
        group by error_code, phase, system
        order by failed_tasks desc, error_code, phase, system
        limit ?
        """,
        [n],
    ).fetchall()
    return [FailureCause(*row) for row in rows]


# ---------------------------------------------------------------- data


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> list[Row]:
    result = con.execute(sql, list(params))
    columns = [d[0] for d in result.description or ()]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def _headline(con: duckdb.DuckDBPyConnection) -> Row:
    runs = _rows(
        con,
        """
        select
            count(*) as runs,
            count(*) filter (where is_completed) as completed_runs,
            count(*) filter (where is_failed) as failed_runs,
            count(distinct connection_id) as connections,
            min(run_day) as first_day,
            max(run_day) as last_day
        from stg_runs
        """,
    )[0]
    tasks = _rows(
        con,
        """
        select
            count(*) as tasks,
            count(*) filter (where is_completed) as completed_tasks,
            count(*) filter (where is_failed) as failed_tasks
        from stg_tasks
        """,
    )[0]
    return runs | tasks


def _typical_messages(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    # The most common message among an error code's failed tasks (ties: alphabetical).
    rows = con.execute(
        """
        with messages as (
            select error_code, error_message, count(*) as n
            from stg_tasks
            where is_failed and error_message is not null
            group by error_code, error_message
        )
        select error_code, error_message from messages
        qualify row_number() over (partition by error_code order by n desc, error_message) = 1
        """
    ).fetchall()
    return {code: message for code, message in rows}


def _grouped(con: duckdb.DuckDBPyConnection, model: str, limit: int) -> list[Row]:
    return _rows(
        con,
        f"select * from {model} order by failed_tasks desc, error_occurrences desc limit ?",
        [limit],
    )


# ---------------------------------------------------------------- formatting


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "–"


def _moment(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return "–"


def _rate(value: object) -> str:
    return percent(value if isinstance(value, float) else None)


@dataclass(frozen=True)
class Column:
    header: str
    key: str
    fmt: Callable[[object], str] = str
    css: str = "num"
    """num (right-aligned figures), when (a timestamp, kept on one line) or text."""
    limit: int = 60
    """Longer text is cut (full text on hover) so one long identifier cannot widen the table."""


def _cell(row: Row, column: Column) -> str:
    value = row.get(column.key)
    text = column.fmt(value) if value is not None or column.fmt is not str else "–"
    css = f' class="{column.css}"'
    shown = truncate(text, column.limit)
    title = f' title="{esc(text)}"' if shown != text else ""
    return f"<td{css}{title}>{esc(shown)}</td>"


def _table(rows: Sequence[Row], columns: Sequence[Column], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f'<th class="{c.css}">{esc(c.header)}</th>' for c in columns)
    body = "".join("<tr>" + "".join(_cell(row, c) for c in columns) + "</tr>" for row in rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _grouped_columns(key: str, header: str) -> list[Column]:
    return [
        Column(header, key, css="text", limit=32),
        Column("failed tasks", "failed_tasks", _count),
        Column("share of failures", "share_of_failures", _rate),
        Column("failure rate", "failure_rate", _rate),
        Column("error occurrences", "error_occurrences", _count),
        Column("runs affected", "runs_affected", _count),
        Column("connections", "connections_affected", _count),
        Column("first seen (UTC)", "first_seen", _moment, css="when"),
        Column("last seen (UTC)", "last_seen", _moment, css="when"),
    ]


CONNECTION_COLUMNS = [
    Column("connection", "connection_id", css="text"),
    Column("completed runs", "completed_runs", _count),
    Column("failed runs", "failed_runs", _count),
    Column("partial runs", "partial_runs", _count),
    Column("run failure rate", "run_failure_rate", _rate),
    Column("completed tasks", "completed_tasks", _count),
    Column("failed tasks", "failed_tasks", _count),
    Column("task failure rate", "task_failure_rate", _rate),
    Column("last run start (UTC)", "last_run_start", _moment, css="when"),
    Column("last run result", "last_run_result", css="text"),
]


# ---------------------------------------------------------------- sections


def _figure(label: str, value: str, note: str = "", css: str = "figure") -> str:
    note_html = f'<div class="note">{esc(note)}</div>' if note else ""
    return (
        f'<div class="{css}"><div class="label">{esc(label)}</div>'
        f'<div class="value">{esc(value)}</div>{note_html}</div>'
    )


def _rate_of(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _headline_section(h: Row) -> str:
    first, last = h["first_day"], h["last_day"]
    span = f"{first:%Y-%m-%d} → {last:%Y-%m-%d}" if first and last else "no runs yet"
    figures = [
        _figure("runs", _count(h["runs"])),
        _figure("completed runs", _count(h["completed_runs"])),
        _figure("failed runs", _count(h["failed_runs"]), "Error or TimedOut"),
        _figure("run failure rate", percent(_rate_of(h["failed_runs"], h["completed_runs"]))),
        _figure("completed tasks", _count(h["completed_tasks"]), f"of {h['tasks']:,} tasks"),
        _figure("failed tasks", _count(h["failed_tasks"])),
        _figure("task failure rate", percent(_rate_of(h["failed_tasks"], h["completed_tasks"]))),
        _figure("connections", _count(h["connections"])),
        _figure("run start dates (UTC)", span, css="figure wide"),
    ]
    return '<section class="figures">' + "".join(figures) + "</section>"


def _bars(rows: Sequence[Row], key: str) -> list[Bar]:
    return [
        Bar(
            str(r[key]),
            float(r["failed_tasks"]),
            f"{r['failed_tasks']:,} ({percent(r['share_of_failures'])})",
        )
        for r in rows
        if r["failed_tasks"] > 0
    ]


def _grouped_section(
    model: str, key: str, header: str, rows: Sequence[Row], extra: Sequence[Column] = ()
) -> str:
    bars = _bars(rows, key)
    chart = (
        bar_chart(
            bars,
            title=f"Failed tasks by {header} (top {TOP_N})",
            x_label="failed tasks (share of all failed tasks)",
        )
        if bars
        else '<p class="empty">No failed tasks yet.</p>'
    )
    table = _table(rows, [*_grouped_columns(key, header), *extra], "No errors recorded yet.")
    return (
        f'<section><h2>Top {esc(header)}s</h2><div class="chart">{chart}</div>{table}'
        f'<p class="note">From <code>{esc(model)}</code>, top {TOP_N} by failed tasks. A failed '
        f"task with no error details, or a missing value, counts under {esc(UNSPECIFIED)}.</p>"
        "</section>"
    )


def _error_code_section(con: duckdb.DuckDBPyConnection) -> str:
    messages = _typical_messages(con)
    rows = [
        r | {"message": messages.get(r["error_code"], "")}
        for r in _grouped(con, "failure_rate_by_error_code", TOP_N)
    ]
    message = Column("most common message", "message", css="text", limit=90)
    return _grouped_section(
        "failure_rate_by_error_code", "error_code", "error code", rows, [message]
    )


def _dimension_section(con: duckdb.DuckDBPyConnection, key: str) -> str:
    model = f"failure_rate_by_{key}"
    return _grouped_section(model, key, key, _grouped(con, model, TOP_N))


def _daily_section(con: duckdb.DuckDBPyConnection) -> str:
    rows = _rows(con, "select * from failure_daily order by day")
    if not rows:
        chart = '<p class="empty">No runs yet.</p>'
    else:
        days: list[date] = [r["day"] for r in rows]
        series = [
            _daily_series(
                rows, "runs", "#1d4ed8", "run_failure_rate", "failed_runs", "completed_runs"
            ),
            _daily_series(
                rows, "tasks", "#c2410c", "task_failure_rate", "failed_tasks", "completed_tasks"
            ),
        ]
        chart = line_chart(days, series, title="Daily failure rate", y_label="failure rate")
    return (
        f'<section><h2>Daily failure rate</h2><div class="chart">{chart}</div>'
        '<p class="note">From <code>failure_daily</code>: failed / completed, by the UTC day '
        "the run started; tasks count on their run's day. Gaps are days with no completed "
        "runs or tasks.</p></section>"
    )


def _daily_series(
    rows: Sequence[Row], noun: str, color: str, rate: str, failed: str, completed: str
) -> Series:
    return Series(
        name=f"{noun}: failed / completed",
        color=color,
        values=[r[rate] for r in rows],
        hover=[
            f"{r['day']:%Y-%m-%d} {noun}: {percent(r[rate])} ({r[failed]:,} of {r[completed]:,})"
            for r in rows
        ],
    )


def _connection_section(con: duckdb.DuckDBPyConnection) -> str:
    rows = _rows(
        con,
        "select * from failure_rate_by_connection "
        "order by failed_runs desc, run_failure_rate desc nulls last, connection_id",
    )
    table = _table(rows, CONNECTION_COLUMNS, "No connections with runs yet.")
    return f"<section><h2>Connections</h2>{table}</section>"


# ---------------------------------------------------------------- page

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2937;
margin:24px auto;max-width:1200px;padding:0 16px;line-height:1.4}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;
padding-bottom:4px}.meta{color:#666;font-size:13px;margin:0 0 16px}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
.figure{background:#f6f7f9;border:1px solid #e5e7eb;border-radius:6px;padding:10px 12px}
.figure .label{font-size:12px;color:#555;text-transform:uppercase;letter-spacing:.03em}
.figure .value{font-size:22px;font-weight:600;margin-top:2px}
.note{font-size:12px;color:#666}.empty{color:#666;font-style:italic}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:8px}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f7f9;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
.when{white-space:nowrap;font-variant-numeric:tabular-nums}.text{overflow-wrap:break-word}
.figure.wide{grid-column:span 2}.scroll{overflow-x:auto}
tbody tr:nth-child(even){background:#fafafa}.chart{margin:8px 0}
code{font-size:12px;background:#f3f4f6;padding:0 3px;border-radius:3px}
"""


def render_html(
    con: duckdb.DuckDBPyConnection, *, title: str = DEFAULT_TITLE, generated_at: datetime
) -> str:
    """The whole page as a string."""
    sections = [
        _headline_section(_headline(con)),
        _error_code_section(con),
        _dimension_section(con, "phase"),
        _dimension_section(con, "system"),
        _daily_section(con),
        _connection_section(con),
    ]
    stamp = generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>{esc(title)}</h1><p class="meta">Generated {esc(stamp)}. A failed task or run '
        "is a completed one whose result is Error or TimedOut.</p>"
        + "".join(sections)
        + "</body></html>\n"
    )


def write_html_report(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    title: str = DEFAULT_TITLE,
    generated_at: datetime | None = None,
) -> Path:
    """Render the report from the built models and write it to `path` atomically."""
    page = render_html(con, title=title, generated_at=generated_at or datetime.now(UTC))
    return atomic_write_bytes(Path(path), page.encode("utf-8"))
