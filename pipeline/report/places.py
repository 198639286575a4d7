"""Report sections on where failures happen: per iTwin, per iModel, and connections by iModel."""

from __future__ import annotations

from collections import defaultdict

import duckdb

from pipeline.report.data import Row, number, read_model
from pipeline.report.format import connection_labels, esc, moment
from pipeline.report.tables import (
    SMALL_NOTE,
    Column,
    counted,
    is_small,
    rated,
    section,
    table,
    value,
)

NO_IMODEL = "(no iModel details)"
NO_ITWIN = "(unknown iTwin)"


def by_failures(row: Row) -> tuple[float, float]:
    # Counts first, then the interval's lower bound: few tasks never outrank many.
    return (-number(row, "failed_tasks"), -number(row, "task_failure_rate_low"))


def _id_or(key: str, missing: str, limit: int = 40) -> Column:
    header = {"imodel_id": "iModel", "itwin_id": "iTwin"}[key]
    return Column(
        header, lambda r: str(r[key]) if r.get(key) else missing, css="text id", limit=limit
    )


# What is failing first (tasks, then runs): on a phone the first columns are what shows.
RATES = [
    counted("failed tasks", "failed_tasks"),
    rated("task failure rate", "task_failure_rate"),
    counted("completed tasks", "completed_tasks"),
    counted("failed runs", "failed_runs"),
    rated("run failure rate", "run_failure_rate"),
    counted("completed runs", "completed_runs"),
]


LAST_RUN = Column("last run start (UTC)", value("last_run_start", moment), css="when")


def itwin_section(con: duckdb.DuckDBPyConnection) -> str:
    places = [
        _id_or("itwin_id", NO_ITWIN),
        counted("iModels", "imodels"),
        counted("connections", "connections"),
    ]
    return _failure_rate_section(
        con, "failure_rate_by_itwin", places, "Failures by iTwin", "itwins"
    )


def imodel_section(con: duckdb.DuckDBPyConnection) -> str:
    places = [
        _id_or("imodel_id", NO_IMODEL),
        # Cut, whole on hover (the iTwin table shows it whole): two whole ids pushed this
        # table past the page's 1,200 px.
        _id_or("itwin_id", NO_ITWIN, limit=len(NO_ITWIN)),
        counted("connections", "connections"),
    ]
    return _failure_rate_section(
        con, "failure_rate_by_imodel", places, "Failures by iModel", "imodels"
    )


def _failure_rate_section(
    con: duckdb.DuckDBPyConnection, model: str, places: list[Column], heading: str, anchor: str
) -> str:
    """A model's rows, most failed tasks first: the columns naming each place, then RATES."""
    rows = read_model(con, model, sort=by_failures)
    if rows is None:
        return ""
    body = table(rows, [*places, *RATES, LAST_RUN], "No runs yet.", small=is_small)
    note = f"From <code>{model}</code>, most failed tasks first. " + esc(SMALL_NOTE)
    return section(heading, body, note, anchor=anchor)


def _imodel_heading(row: Row) -> str:
    imodel, itwin = row.get("imodel_id"), row.get("itwin_id")
    if not imodel:
        return esc(NO_IMODEL)
    where = f' <span class="muted">in iTwin {esc(itwin)}</span>' if itwin else ""
    return f"iModel {esc(imodel)}{where}"


def _connection_hover(row: Row) -> str:
    name = row.get("display_name")
    return f"{name} (connection id {row['connection_id']})" if name else str(row["connection_id"])


def connections_section(con: duckdb.DuckDBPyConnection) -> str:
    rows = read_model(con, "failure_rate_by_connection")
    if rows is None:
        return ""
    labels = connection_labels(rows)
    failed_per_imodel: dict[object, float] = defaultdict(float)
    for r in rows:
        failed_per_imodel[r.get("imodel_id")] += number(r, "failed_tasks")
    # iModels with the most failed tasks first, then their connections the same way.
    rows.sort(
        key=lambda r: (
            -failed_per_imodel[r.get("imodel_id")],
            str(r.get("imodel_id") or "~"),
            *by_failures(r),
            labels[str(r["connection_id"])],
        )
    )
    columns = [
        Column(
            "connection",
            lambda r: labels[str(r["connection_id"])],
            css="text",
            limit=60,
            hover=_connection_hover,
        ),
        *RATES,
        counted("partial runs", "partial_runs"),
        LAST_RUN,
        Column("last run result", value("last_run_result"), css="text"),
    ]
    body = table(
        rows, columns, "No connections with runs yet.", small=is_small, group=_imodel_heading
    )
    note = (
        "From <code>failure_rate_by_connection</code>, grouped by iModel. Connections show their "
        "display name (the first 8 characters of the id beside a name two connections share; "
        "the id when there is no name; hover for the full id). " + esc(SMALL_NOTE)
    )
    return section("Connections by iModel", body, note, anchor="connections")
