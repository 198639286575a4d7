"""Report sections on why tasks fail: error codes, phases, systems, and who can fix it."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from pipeline.report.charts import Bar, bar_chart
from pipeline.report.data import Row, number, read_model, rows_of
from pipeline.report.format import MISSING, esc, link, moment, percent, share
from pipeline.report.tables import Column, counted, rated, section, table, value

TOP_N = 10
UNSPECIFIED = "(unspecified)"

FIXABILITY = {
    "user_fixable": "user can fix",
    "not_user_fixable": "user cannot fix",
    UNSPECIFIED: UNSPECIFIED,
}


def by_failures(row: Row) -> tuple[float, float, float]:
    # Counts first: a rate from a handful of tasks must not outrank a common failure.
    return (
        -number(row, "failed_tasks"),
        -number(row, "error_occurrences"),
        -number(row, "failure_rate_low"),
    )


def dimension_columns(key: str, header: str) -> list[Column]:
    return [
        Column(header, value(key), css="text", limit=40),
        counted("failed tasks", "failed_tasks"),
        Column("share of failures", value("share_of_failures", share)),
        rated("failure rate (95% interval)", "failure_rate"),
        counted("error occurrences", "error_occurrences"),
        counted("runs affected", "runs_affected"),
        counted("connections", "connections_affected"),
        Column("first seen (UTC)", value("first_seen", moment), css="when"),
        Column("last seen (UTC)", value("last_seen", moment), css="when"),
    ]


def _bars(rows: Sequence[Row], key: str, label: dict[str, str] | None = None) -> str:
    bars = [
        Bar(
            (label or {}).get(str(r[key]), str(r[key])),
            number(r, "failed_tasks"),
            f"{r['failed_tasks']:,} ({percent(r.get('share_of_failures'))})",
        )
        for r in rows
        if number(r, "failed_tasks") > 0
    ]
    if not bars:
        return '<p class="empty">No failed tasks yet.</p>'
    chart = bar_chart(
        bars, title="Failed tasks", x_label="failed tasks (share of all failed tasks)"
    )
    return f'<div class="chart">{chart}</div>'


def _typical_messages(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    # The most common message among an error code's failed tasks (ties: alphabetical).
    try:
        rows = rows_of(
            con,
            """
            with messages as (
                select error_code, error_message, sum(failed_tasks) as n
                from int_daily_failure_cause
                where error_message is not null
                group by error_code, error_message
            )
            select error_code, error_message from messages
            qualify row_number() over (partition by error_code order by n desc, error_message) = 1
            """,
        )
    except duckdb.Error:  # staging changed shape: the column is just left empty
        return {}
    return {r["error_code"]: r["error_message"] for r in rows}


def dimension_section(con: duckdb.DuckDBPyConnection, key: str, header: str) -> str:
    model = f"failure_rate_by_{key}"
    rows = read_model(con, model, sort=by_failures, limit=TOP_N)
    if rows is None:
        return ""
    columns = dimension_columns(key, header)
    if key == "error_code":
        messages = _typical_messages(con)
        rows = [r | {"message": messages.get(r["error_code"], "")} for r in rows]
        columns.append(Column("most common message", value("message"), css="text", limit=90))
    note = (
        f"From <code>{esc(model)}</code>, top {TOP_N} by failed tasks. A failed task with no "
        f"error details, or a missing value, counts under {esc(UNSPECIFIED)}."
    )
    body = _bars(rows, key) + table(rows, columns, "No errors recorded yet.")
    return section(f"Top {header}s", body, note)


def _kb(row: Row) -> str:
    return link(row.get("kb_article_link"), "KB article")


def _yes_no(item: object) -> str:
    return "yes" if item is True else "no" if item is False else MISSING


def _cause_columns(*, fixable_column: bool) -> list[Column]:
    columns = [
        Column("description key", value("description_key"), css="text", limit=40),
        Column("what it means (catalogue)", value("description"), css="text wide", limit=160),
        Column("category", value("category"), css="text"),
        counted("failed tasks", "failed_tasks"),
        Column("share of failures", value("share_of_failures", share)),
        rated("failure rate (95% interval)", "failure_rate"),
        counted("connections", "connections_affected"),
    ]
    if fixable_column:
        columns.append(Column("user can fix", lambda r: _yes_no(r.get("can_user_fix")), css="text"))
    columns.append(Column("knowledge base", _kb, css="text", markup=True))
    return columns


def _fixable_causes(con: duckdb.DuckDBPyConnection) -> str:
    rows = read_model(con, "failure_rate_by_description_key", sort=by_failures)
    if rows is None:
        return ""
    failing = [r for r in rows if number(r, "failed_tasks") > 0]
    fixable = [r for r in failing if r.get("can_user_fix") is True][:TOP_N]
    fixable_html = table(
        fixable,
        _cause_columns(fixable_column=False),
        "No failed task has a cause the user can fix.",
    )
    others = table(failing[:TOP_N], _cause_columns(fixable_column=True), "No failed tasks yet.")
    return (
        '<h3>Top causes the user can fix</h3><p class="note">Send the user the knowledge-base '
        "article where there is one.</p>"
        + fixable_html
        + "<h3>Top causes by description key</h3>"
        + others
        + '<p class="note">From <code>failure_rate_by_description_key</code>; descriptions, '
        "categories and links from Bentley's public connector error catalogue (CC BY 3.0).</p>"
    )


def fixability_section(con: duckdb.DuckDBPyConnection) -> str:
    rows = read_model(con, "failure_rate_by_fixability", sort=by_failures)
    if rows is None:
        return ""
    columns = dimension_columns("fixability", "who can fix it")[:6]
    columns[0] = Column(
        "who can fix it",
        lambda r: FIXABILITY.get(str(r.get("fixability")), str(r.get("fixability"))),
        css="text",
    )
    body = _bars(rows, "fixability", FIXABILITY) + table(rows, columns, "No failed tasks yet.")
    note = (
        "From <code>failure_rate_by_fixability</code>: the task's own <code>canUserFix</code> "
        "flag, else its catalogue entry's."
    )
    return section(
        "Who can fix it", body + f'<p class="note">{note}</p>' + _fixable_causes(con), anchor="fix"
    )
