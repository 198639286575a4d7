"""A hand-made warehouse for the report: mart tables with exactly the columns of the model
spec (MODELS_SPEC.md) and known values, without running any SQL model.

Reusable: `create_mart` / `insert_rows` / `with_rate` build any mart; `report_warehouse()`
is the data set the report tests read, with the values the tests expect written beside it.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from pipeline.warehouse.ddl import create_all_tables

Z = 1.959963984540054
RATE = "DOUBLE"
COUNT = "BIGINT"
WHEN = "TIMESTAMPTZ"


def _rate(prefix: str) -> list[tuple[str, str]]:
    return [(prefix, RATE), (f"{prefix}_low", RATE), (f"{prefix}_high", RATE)]


def _dimension(key: str) -> list[tuple[str, str]]:
    return [
        (key, "VARCHAR"),
        ("failed_tasks", COUNT),
        ("error_occurrences", COUNT),
        ("completed_tasks", COUNT),
        *_rate("failure_rate"),
        ("share_of_failures", RATE),
        ("runs_affected", COUNT),
        ("connections_affected", COUNT),
        ("first_seen", WHEN),
        ("last_seen", WHEN),
    ]


_RUNS_AND_TASKS = [
    ("completed_runs", COUNT),
    ("failed_runs", COUNT),
    *_rate("run_failure_rate"),
    ("completed_tasks", COUNT),
    ("failed_tasks", COUNT),
    *_rate("task_failure_rate"),
]

MART_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "failure_rate_by_error_code": _dimension("error_code"),
    "failure_rate_by_phase": _dimension("phase"),
    "failure_rate_by_system": _dimension("system"),
    "failure_rate_by_fixability": _dimension("fixability"),
    "failure_rate_by_description_key": [
        *_dimension("description_key"),
        ("in_catalog", "BOOLEAN"),
        ("description", "VARCHAR"),
        ("category", "VARCHAR"),
        ("can_user_fix", "BOOLEAN"),
        ("kb_article_link", "VARCHAR"),
    ],
    "failure_rate_by_connection": [
        ("connection_id", "VARCHAR"),
        ("display_name", "VARCHAR"),
        ("imodel_id", "VARCHAR"),
        ("itwin_id", "VARCHAR"),
        ("completed_runs", COUNT),
        ("failed_runs", COUNT),
        ("partial_runs", COUNT),
        *_rate("run_failure_rate"),
        ("completed_tasks", COUNT),
        ("failed_tasks", COUNT),
        *_rate("task_failure_rate"),
        ("last_run_start", WHEN),
        ("last_run_result", "VARCHAR"),
    ],
    "failure_rate_by_imodel": [
        ("imodel_id", "VARCHAR"),
        ("itwin_id", "VARCHAR"),
        ("connections", COUNT),
        *_RUNS_AND_TASKS,
        ("last_run_start", WHEN),
    ],
    "failure_rate_by_itwin": [
        ("itwin_id", "VARCHAR"),
        ("imodels", COUNT),
        ("connections", COUNT),
        *_RUNS_AND_TASKS,
        ("last_run_start", WHEN),
    ],
    "failure_daily": [
        ("day", "DATE"),
        *_RUNS_AND_TASKS,
        ("baseline_completed_tasks", COUNT),
        ("baseline_failed_tasks", COUNT),
        *_rate("baseline_task_failure_rate"),
        ("is_spike", "BOOLEAN"),
    ],
    "failure_trend_by_error_code": [
        ("error_code", "VARCHAR"),
        ("as_of_day", "DATE"),
        ("recent_failed_tasks", COUNT),
        ("recent_completed_tasks", COUNT),
        *_rate("recent_failure_rate"),
        ("prior_failed_tasks", COUNT),
        ("prior_completed_tasks", COUNT),
        *_rate("prior_failure_rate"),
        ("trend", "VARCHAR"),
    ],
    "run_duration_daily": [
        ("day", "DATE"),
        ("completed_runs", COUNT),
        ("p50_duration_s", RATE),
        ("p90_duration_s", RATE),
        ("p95_duration_s", RATE),
        ("max_duration_s", RATE),
    ],
}

CONNECTIONS_COLUMNS = [
    ("connection_id", "VARCHAR PRIMARY KEY"),
    ("display_name", "VARCHAR"),
    ("imodel_id", "VARCHAR"),
    ("itwin_id", "VARCHAR"),
    ("authentication_type", "VARCHAR"),
    ("last_run_id", "VARCHAR"),
    ("fetched_at", WHEN),
    ("extra", "JSON"),
]

Row = dict[str, Any]


def wilson(k: int, n: int) -> tuple[float | None, float | None]:
    """The 95% Wilson interval as the contract defines it (test data only)."""
    if n == 0:
        return None, None
    centre = (k + Z * Z / 2) / (n + Z * Z)
    half = Z * math.sqrt(k * (n - k) / n + Z * Z / 4) / (n + Z * Z)
    return max(0.0, centre - half), min(1.0, centre + half)


def with_rate(row: Row, prefix: str, k: int, n: int) -> Row:
    low, high = wilson(k, n)
    return row | {prefix: k / n if n else None, f"{prefix}_low": low, f"{prefix}_high": high}


def create_table(con: duckdb.DuckDBPyConnection, name: str, columns: list[tuple[str, str]]) -> None:
    ddl = ", ".join(f'"{column}" {kind}' for column, kind in columns)
    con.execute(f'create table if not exists "{name}" ({ddl})')


def create_mart(con: duckdb.DuckDBPyConnection, model: str) -> None:
    create_table(con, model, MART_COLUMNS[model])


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[Row]) -> None:
    """Insert dict rows; columns a row leaves out are NULL. Unknown keys are an error."""
    columns = [c for c, _ in (MART_COLUMNS.get(table) or CONNECTIONS_COLUMNS)]
    for row in rows:
        unknown = set(row) - set(columns)
        assert not unknown, f"{table} has no column {unknown}"
        marks = ", ".join("?" for _ in columns)
        con.execute(f'insert into "{table}" values ({marks})', [row.get(c) for c in columns])


# ---------------------------------------------------------------- the tests' data set

HOSTILE_NAME = "\"><script>alert('x')</script> ' OR 1=1; DROP TABLE runs; -- 🚧"
KB_LINK = "https://example.bentley.com/kb/missing?a=1&b=2"
AS_OF = date(2026, 11, 10)
SPIKE_DAY = date(2026, 11, 8)
LAST_RUN = datetime(2026, 11, 10, 9, 30, tzinfo=UTC)

C_NORTH_1 = "aaaa1111-0000-4000-8000-000000000001"
C_NORTH_2 = "bbbb2222-0000-4000-8000-000000000002"
C_NAMELESS = "cccc3333-0000-4000-8000-000000000003"
C_HOSTILE = "dddd4444-0000-4000-8000-000000000004"
M1, M2, T1 = "imodel-0001", "imodel-0002", "itwin-0001"


def _connection(
    cid: str,
    name: str | None,
    imodel: str | None,
    runs: tuple[int, int, int],
    tasks: tuple[int, int],
) -> Row:
    row: Row = {
        "connection_id": cid,
        "display_name": name,
        "imodel_id": imodel,
        "itwin_id": T1 if imodel else None,
        "completed_runs": runs[0],
        "failed_runs": runs[1],
        "partial_runs": runs[2],
        "completed_tasks": tasks[0],
        "failed_tasks": tasks[1],
        "last_run_start": LAST_RUN,
        "last_run_result": "Error" if runs[1] else "Succeeded",
    }
    return with_rate(
        with_rate(row, "run_failure_rate", runs[1], runs[0]),
        "task_failure_rate",
        tasks[1],
        tasks[0],
    )


CONNECTION_ROWS = [
    _connection(C_NORTH_1, "Bridge North", M1, (10, 2, 1), (40, 8)),
    _connection(C_NORTH_2, "Bridge North", M1, (5, 0, 0), (20, 1)),
    _connection(C_NAMELESS, None, None, (2, 2, 0), (3, 3)),
    _connection(C_HOSTILE, HOSTILE_NAME, M2, (30, 3, 0), (100, 10)),
]
COMPLETED_TASKS = 163  # 40 + 20 + 3 + 100
FAILED_TASKS = 22  # 8 + 1 + 3 + 10


def _dimension_row(key: str, value: str, failed: int, **extra: object) -> Row:
    row: Row = {
        key: value,
        "failed_tasks": failed,
        "error_occurrences": failed + 1,
        "completed_tasks": COMPLETED_TASKS,
        "share_of_failures": failed / FAILED_TASKS,
        "runs_affected": failed,
        "connections_affected": 2,
        "first_seen": datetime(2026, 11, 1, 8, tzinfo=UTC),
        "last_seen": LAST_RUN,
    }
    return with_rate(row, "failure_rate", failed, COMPLETED_TASKS) | extra


def _catalogued(
    key: str, failed: int, fixable: bool | None, link: str | None, description: str | None
) -> Row:
    return _dimension_row(
        "description_key",
        key,
        failed,
        in_catalog=description is not None,
        description=description,
        category="Input" if description else None,
        can_user_fix=fixable,
        kb_article_link=link,
    )


DESCRIPTION_KEY_ROWS = [
    _catalogued(
        "ServiceCrash",
        10,
        False,
        "http://kb.example.com/crash",
        "The service stopped unexpectedly.",
    ),
    _catalogued("MissingReferenceFile", 6, True, KB_LINK, "A reference file could not be found."),
    _catalogued("BadLinkKey", 3, True, "javascript:alert(1)", "An entry whose link is not http."),
    _catalogued("NotInAnyCatalogue", 3, None, None, None),
]


def _day(day: date, completed: int, failed: int, spike: bool = False) -> Row:
    row: Row = {
        "day": day,
        "completed_runs": completed // 5,
        "failed_runs": failed // 5,
        "completed_tasks": completed,
        "failed_tasks": failed,
        "baseline_completed_tasks": 200,
        "baseline_failed_tasks": 20,
        "is_spike": spike,
    }
    row = with_rate(row, "run_failure_rate", failed // 5, completed // 5)
    row = with_rate(row, "task_failure_rate", failed, completed)
    return with_rate(row, "baseline_task_failure_rate", 20, 200)


DAILY_ROWS = [
    _day(date(2026, 11, 1), 1, 1),  # a tiny first day: 100%, which must not dominate
    *(_day(date(2026, 11, d), 50, 5) for d in range(2, 8)),
    _day(SPIKE_DAY, 50, 25, spike=True),
    _day(date(2026, 11, 9), 50, 4),
    _day(AS_OF, 50, 6),
]


def _trend(code: str, trend: str, recent: int, prior: int) -> Row:
    row: Row = {
        "error_code": code,
        "as_of_day": AS_OF,
        "recent_failed_tasks": recent,
        "recent_completed_tasks": 300,
        "prior_failed_tasks": prior,
        "prior_completed_tasks": 1200,
        "trend": trend,
    }
    return with_rate(
        with_rate(row, "recent_failure_rate", recent, 300), "prior_failure_rate", prior, 1200
    )


TREND_ROWS = [
    _trend("SteadyCode", "steady", 5, 20),
    _trend("FallingCode", "falling", 1, 60),
    _trend("RisingCode", "rising", 30, 24),
    _trend("NewCode", "new", 4, 0),
]


def _rollup(model_key: str, value: str | None, tasks: tuple[int, int], **counts: object) -> Row:
    row: Row = {
        model_key: value,
        "completed_runs": tasks[0] // 4,
        "failed_runs": tasks[1] // 4,
        "completed_tasks": tasks[0],
        "failed_tasks": tasks[1],
        "last_run_start": LAST_RUN,
    } | counts
    row = with_rate(row, "run_failure_rate", tasks[1] // 4, tasks[0] // 4)
    return with_rate(row, "task_failure_rate", tasks[1], tasks[0])


IMODEL_ROWS = [
    _rollup("imodel_id", M1, (60, 9), itwin_id=T1, connections=2),
    _rollup("imodel_id", M2, (100, 10), itwin_id=T1, connections=1),
    _rollup("imodel_id", None, (3, 3), itwin_id=None, connections=1),
]
ITWIN_ROWS = [
    _rollup("itwin_id", T1, (160, 19), imodels=2, connections=3),
    _rollup("itwin_id", None, (3, 3), imodels=0, connections=1),
]
DURATION_ROWS = [
    {
        "day": AS_OF - timedelta(days=d),
        "completed_runs": 10,
        "p50_duration_s": 300.0 + d,
        "p90_duration_s": 900.0,
        "p95_duration_s": 1200.0,
        "max_duration_s": 7200.0,
    }
    for d in range(3)
]


def report_warehouse(
    *, leave_out: tuple[str, ...] = (), database: str = ":memory:"
) -> duckdb.DuckDBPyConnection:
    """The tests' data set in a warehouse (in memory unless `database` names a file);
    `leave_out` models (and "connections") are not created."""
    con = duckdb.connect(database)
    con.execute("set TimeZone = 'Asia/Tokyo'")  # the page must show UTC whatever the session says
    create_all_tables(con)
    if "connections" not in leave_out:
        create_table(con, "connections", CONNECTIONS_COLUMNS)
    data: dict[str, list[Row]] = {
        "failure_rate_by_error_code": [
            _dimension_row("error_code", "ConnectorTimeout", 12),
            _dimension_row("error_code", "FileNotFound", 6),
            _dimension_row("error_code", "(unspecified)", 4),
        ],
        "failure_rate_by_phase": [
            _dimension_row("phase", "Convert", 14),
            _dimension_row("phase", "Upload", 8),
        ],
        "failure_rate_by_system": [_dimension_row("system", "Connector", 22)],
        "failure_rate_by_fixability": [
            _dimension_row("fixability", "not_user_fixable", 10),
            _dimension_row("fixability", "user_fixable", 9),
            _dimension_row("fixability", "(unspecified)", 3),
        ],
        "failure_rate_by_description_key": DESCRIPTION_KEY_ROWS,
        "failure_rate_by_connection": CONNECTION_ROWS,
        "failure_rate_by_imodel": IMODEL_ROWS,
        "failure_rate_by_itwin": ITWIN_ROWS,
        "failure_daily": DAILY_ROWS,
        "failure_trend_by_error_code": TREND_ROWS,
        "run_duration_daily": DURATION_ROWS,
    }
    for model, rows in data.items():
        if model not in leave_out:
            create_mart(con, model)
            insert_rows(con, model, rows)
    if "connections" in leave_out:
        return con
    insert_rows(
        con,
        "connections",
        [
            {
                "connection_id": r["connection_id"],
                "display_name": r["display_name"],
                "imodel_id": r["imodel_id"],
                "itwin_id": r["itwin_id"],
            }
            for r in CONNECTION_ROWS
        ],
    )
    return con
