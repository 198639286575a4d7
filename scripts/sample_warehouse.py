"""Build a synthetic warehouse whose report shows every section, to look at the page.

Usage: python scripts/sample_warehouse.py OUT_DIR [--days D] [--seed S]
Writes OUT_DIR/warehouse.duckdb and OUT_DIR/reports/report.html, and prints the CLI summary.

The world: weeks of steady background failures, one error code rising in the last week,
one new this week, one falling, a spike day, a tiny first day, and connections with names
(two alike, one missing, one hostile: quotes, angle brackets, SQL and an emoji). Runs go
into the core tables; the mart tables are aggregated here in Python with exactly the
columns of the model spec (tests/report/fixtures.py), so the page can be looked at
whether or not the SQL models of this checkout produce them.
"""

from __future__ import annotations

import argparse
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from pipeline.report.html import write_html_report
from pipeline.summary import read_summary
from pipeline.warehouse.ddl import create_all_tables
from pipeline.warehouse.models import build_models
from tests.report.fixtures import (
    CONNECTIONS_COLUMNS,
    MART_COLUMNS,
    create_mart,
    create_table,
    insert_rows,
    with_rate,
)

Row = dict[str, Any]
END = date(2026, 11, 27)
UNSPECIFIED = "(unspecified)"
# Keys, descriptions and links from Bentley's public connector error catalogue (CC BY 3.0).
KB = "https://bentleysystems.service-now.com/community?id=kb_article&sysparm_article="
CAUSES: dict[str, tuple[str, str, str, bool | None, str | None, str]] = {
    # error code: (description key, phase, system, can user fix, kb link, description)
    "FileNotFound": (
        "CanNotOpenFile",
        "fetch_from_dms",
        "connector",
        True,
        KB + "KB0098395",
        "Cannot open the file; the path is incorrect or the file is missing.",
    ),
    "AccessDenied": (
        "AccessToDataSourceDenied",
        "file_download",
        "cloud_orchestrator",
        True,
        KB + "KB0098347",
        "Access to the data source was denied.",
    ),
    "ConcurrentPush": (
        "AnotherUserPushing",
        "pull_merge_push",
        "connector",
        True,
        KB + "KB0098412",
        "Another user is attempting to push data to the same iModel.",
    ),
    "TokenExpired": (
        "UserNotAuthenticated",
        "initialization",
        "cloud_orchestrator",
        True,
        KB + "KB0098401",
        "User is not authenticated.",
    ),
    "OrchestrationFailed": (
        "RunOrchestrationError",
        "planning",
        "cloud_orchestrator",
        False,
        None,
        "Failed to orchestrate Run.",
    ),
    "PreprocessorCrash": (
        "PreprocessingFailed",
        "preprocessor",
        "cloud_orchestrator",
        False,
        None,
        "Preprocessing of the Run failed.",
    ),
    "QueueTimeout": (
        "AllFilesHaveFailed",
        "master",
        "cloud_orchestrator",
        False,
        KB + "KB0098417",
        "Synchronization job was in the queue for too long.",
    ),
    "SchemaUpgradeFailed": ("SchemaImportFailed_Custom", "schema", "connector", None, None, ""),
}
BACKGROUND = {
    "FileNotFound": 5,
    "AccessDenied": 2,
    "OrchestrationFailed": 3,
    "TokenExpired": 1,
    "QueueTimeout": 2,
    "PreprocessorCrash": 2,
}
RISING, NEW, FALLING = "ConcurrentPush", "SchemaUpgradeFailed", "QueueTimeout"
HOSTILE = 'Plant <b>"Q"</b> \'; DROP TABLE runs; -- 🚧'
CONNECTIONS = [  # id, display name, iModel, iTwin, runs per day
    ("0f3a1c2e-5b7d-4e0f-9a61-0c2d3e4f5a6b", "Bridge North", "im-bridge", "tw-infra", 3),
    ("7c1d9e00-2b44-4c1a-8f00-19a2b3c4d5e6", "Bridge North", "im-bridge", "tw-infra", 1),
    (
        "a1b2c3d4-0000-4aaa-8bbb-ccccdddd0001",
        "Civil corridor — main line",
        "im-corridor",
        "tw-infra",
        4,
    ),
    ("a1b2c3d4-0000-4aaa-8bbb-ccccdddd0002", HOSTILE, "im-plant", "tw-plant", 2),
    ("a1b2c3d4-0000-4aaa-8bbb-ccccdddd0003", "Campus MEP", "im-campus", "tw-plant", 2),
    ("e9f8a7b6-1111-4222-8333-444455556666", None, None, None, 1),
]
SPIKE_DAY = END - timedelta(days=3)


@dataclass
class Task:
    connection_id: str
    run_id: str
    day: date
    start: datetime
    failed: bool
    code: str | None


def _code_weights(day: date) -> dict[str, float]:
    age = (END - day).days
    weights = {code: float(w) for code, w in BACKGROUND.items()}
    weights[RISING] = 1.0 if age > 6 else 6.0
    weights[FALLING] = 2.0 if age > 6 else 0.1
    if age <= 4:
        weights[NEW] = 2.5
    return weights


def simulate(days: int, rng: random.Random) -> tuple[list[Row], list[Task]]:
    runs: list[Row] = []
    tasks: list[Task] = []
    first = END - timedelta(days=days - 1)
    for offset in range(days):
        day = first + timedelta(days=offset)
        for cid, _name, _imodel, _itwin, per_day in CONNECTIONS:
            count = (
                1
                if offset == 0 and cid == CONNECTIONS[0][0]
                else 0
                if offset == 0
                else rng.randint(0, per_day * 2)
            )
            for n in range(count):
                start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                    seconds=rng.uniform(0, 86000)
                )
                run_id = f"run-{day:%m%d}-{cid[:4]}-{n}"
                p = 1.0 if offset == 0 else 0.08 * (4 if day == SPIKE_DAY else 1)
                weights = _code_weights(day)
                outcomes = [rng.random() < p for _ in range(rng.randint(3, 9) if offset else 1)]
                for failed in outcomes:
                    code = rng.choices(list(weights), list(weights.values()))[0] if failed else None
                    tasks.append(Task(cid, run_id, day, start, failed, code))
                duration = rng.lognormvariate(math.log(900), 0.5) * (1 + 2 * any(outcomes))
                runs.append(
                    {
                        "connection_id": cid,
                        "run_id": run_id,
                        "start": start,
                        "day": day,
                        "failed": any(outcomes),
                        "partial": False,
                        "duration": duration,
                    }
                )
    return runs, tasks


def _dimension_rows(key: str, tasks: list[Task], value_of: Callable[[Task], str]) -> list[Row]:
    completed, failed = len(tasks), [t for t in tasks if t.failed]
    groups: dict[str, list[Task]] = defaultdict(list)
    for t in failed:
        groups[value_of(t)].append(t)
    rows = []
    for value, group in groups.items():
        row = {
            key: value,
            "failed_tasks": len(group),
            "error_occurrences": len(group),
            "completed_tasks": completed,
            "share_of_failures": len(group) / len(failed),
            "runs_affected": len({t.run_id for t in group}),
            "connections_affected": len({t.connection_id for t in group}),
            "first_seen": min(t.start for t in group),
            "last_seen": max(t.start for t in group),
        }
        rows.append(with_rate(row, "failure_rate", len(group), completed))
    return rows


def _fixability(t: Task) -> str:
    fixable = CAUSES[t.code][3] if t.code else None
    return UNSPECIFIED if fixable is None else "user_fixable" if fixable else "not_user_fixable"


def _description_rows(tasks: list[Task]) -> list[Row]:
    rows = _dimension_rows(
        "description_key", tasks, lambda t: CAUSES[t.code][0] if t.code else UNSPECIFIED
    )
    by_key = {cause[0]: cause for cause in CAUSES.values()}
    for row in rows:
        cause = by_key.get(row["description_key"])
        known = cause is not None and cause[5] != ""
        row |= {
            "in_catalog": known,
            "description": cause[5] if known else None,
            "category": "other" if known else None,
            "can_user_fix": cause[3] if known else None,
            "kb_article_link": cause[4] if known else None,
        }
    return rows


def _totals(row: Row, runs: Iterable[Row], tasks: Iterable[Task]) -> Row:
    runs, tasks = list(runs), list(tasks)
    failed_runs, failed_tasks = sum(r["failed"] for r in runs), sum(t.failed for t in tasks)
    row |= {
        "completed_runs": len(runs),
        "failed_runs": failed_runs,
        "completed_tasks": len(tasks),
        "failed_tasks": failed_tasks,
    }
    return with_rate(
        with_rate(row, "run_failure_rate", failed_runs, len(runs)),
        "task_failure_rate",
        failed_tasks,
        len(tasks),
    )


def _place_rows(runs: list[Row], tasks: list[Task]) -> tuple[list[Row], list[Row], list[Row]]:
    info = {c[0]: c for c in CONNECTIONS}
    connections, imodels, itwins = [], [], []
    for cid, name, imodel, itwin, _ in CONNECTIONS:
        mine = [r for r in runs if r["connection_id"] == cid]
        last = max(mine, key=lambda r: r["start"])
        row = {
            "connection_id": cid,
            "display_name": name,
            "imodel_id": imodel,
            "itwin_id": itwin,
            "partial_runs": 0,
            "last_run_start": last["start"],
            "last_run_result": "Error" if last["failed"] else "Succeeded",
        }
        connections.append(_totals(row, mine, (t for t in tasks if t.connection_id == cid)))
    for key, out, extra in (("imodel_id", imodels, 2), ("itwin_id", itwins, 3)):
        for value in {c[extra] for c in CONNECTIONS}:
            ids = {c[0] for c in CONNECTIONS if c[extra] == value}
            mine = [r for r in runs if r["connection_id"] in ids]
            row: Row = {
                key: value,
                "connections": len(ids),
                "last_run_start": max(r["start"] for r in mine),
            }
            if key == "imodel_id":
                row["itwin_id"] = info[next(iter(ids))][3]
            else:
                row["imodels"] = len({c[2] for c in CONNECTIONS if c[0] in ids and c[2]})
            out.append(_totals(row, mine, (t for t in tasks if t.connection_id in ids)))
    return connections, imodels, itwins


def _daily_rows(runs: list[Row], tasks: list[Task]) -> list[Row]:
    per_day: dict[date, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for t in tasks:
        n, k = per_day[t.day]
        per_day[t.day] = (n + 1, k + t.failed)
    rows = []
    for day in sorted({r["day"] for r in runs}):
        window = [per_day[d] for d in list(per_day) if 1 <= (day - d).days <= 28]
        bn, bk = sum(w[0] for w in window), sum(w[1] for w in window)
        mine = (r for r in runs if r["day"] == day)
        row = _totals({"day": day}, mine, (t for t in tasks if t.day == day))
        row |= {"baseline_completed_tasks": bn, "baseline_failed_tasks": bk}
        row = with_rate(row, "baseline_task_failure_rate", bk, bn)
        low, high = row["task_failure_rate_low"], row["baseline_task_failure_rate_high"]
        rows.append(row | {"is_spike": low is not None and high is not None and low > high})
    return rows


def _trend_rows(tasks: list[Task]) -> list[Row]:
    as_of = max(t.day for t in tasks)
    recent = [t for t in tasks if 0 <= (as_of - t.day).days <= 6]
    prior = [t for t in tasks if 7 <= (as_of - t.day).days <= 34]
    rows = []
    for code in sorted({t.code for t in recent + prior if t.failed and t.code}):
        rk, pk = sum(t.code == code for t in recent), sum(t.code == code for t in prior)
        row = {
            "error_code": code,
            "as_of_day": as_of,
            "recent_failed_tasks": rk,
            "recent_completed_tasks": len(recent),
            "prior_failed_tasks": pk,
            "prior_completed_tasks": len(prior),
        }
        row = with_rate(
            with_rate(row, "recent_failure_rate", rk, len(recent)),
            "prior_failure_rate",
            pk,
            len(prior),
        )
        trend = (
            "new"
            if pk == 0
            else "rising"
            if row["recent_failure_rate_low"] > row["prior_failure_rate_high"]
            else "falling"
            if row["recent_failure_rate_high"] < row["prior_failure_rate_low"]
            else "steady"
        )
        rows.append(row | {"trend": trend})
    return rows


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _duration_rows(runs: list[Row]) -> list[Row]:
    rows = []
    for day in sorted({r["day"] for r in runs}):
        values = [r["duration"] for r in runs if r["day"] == day]
        rows.append(
            {
                "day": day,
                "completed_runs": len(values),
                "p50_duration_s": _quantile(values, 0.5),
                "p90_duration_s": _quantile(values, 0.9),
                "p95_duration_s": _quantile(values, 0.95),
                "max_duration_s": max(values),
            }
        )
    return rows


def _insert_core(con: duckdb.DuckDBPyConnection, runs: list[Row], tasks: list[Task]) -> None:
    con.executemany(
        "insert into runs (connection_id, run_id, start_time, end_time, state, result, "
        "duration_s) values (?, ?, ?, ?, 'Completed', ?, ?)",
        [
            [
                r["connection_id"],
                r["run_id"],
                r["start"],
                r["start"] + timedelta(seconds=r["duration"]),
                "Error" if r["failed"] else "Succeeded",
                r["duration"],
            ]
            for r in runs
        ],
    )
    con.executemany(
        "insert into tasks (connection_id, run_id, job_id, task_id, state, result) "
        "values (?, ?, 'j1', ?, 'Completed', ?)",
        [
            [t.connection_id, t.run_id, f"t{i}", "Error" if t.failed else "Succeeded"]
            for i, t in enumerate(tasks)
        ],
    )
    errors = []
    for i, t in enumerate(tasks):
        if t.code:
            key, phase, system, fixable, link, _ = CAUSES[t.code]
            errors.append(
                [t.connection_id, t.run_id, f"t{i}", t.code, phase, system, key, fixable, link]
            )
    con.executemany(
        "insert into task_errors (connection_id, run_id, job_id, task_id, error_code, phase, "
        "system, description_key, can_user_fix, kb_article_link) "
        "values (?, ?, 'j1', ?, ?, ?, ?, ?, ?, ?)",
        errors,
    )


def _has_spec_columns(con: duckdb.DuckDBPyConnection, model: str) -> bool:
    found = {
        name
        for (name,) in con.execute(
            "select column_name from duckdb_columns() where table_name = ?", [model]
        ).fetchall()
    }
    return {column for column, _ in MART_COLUMNS[model]} <= found


def build_sample(con: duckdb.DuckDBPyConnection, days: int, seed: int) -> list[str]:
    """Fill the warehouse; returns the models the sample had to stand in for."""
    runs, tasks = simulate(days, random.Random(seed))
    create_all_tables(con)
    create_table(con, "connections", CONNECTIONS_COLUMNS)
    _insert_core(con, runs, tasks)
    insert_rows(
        con,
        "connections",
        [
            {"connection_id": c[0], "display_name": c[1], "imodel_id": c[2], "itwin_id": c[3]}
            for c in CONNECTIONS
        ],
    )
    build_models(con)
    marts = {
        "failure_rate_by_error_code": lambda: _dimension_rows(
            "error_code", tasks, lambda t: t.code or UNSPECIFIED
        ),
        "failure_rate_by_phase": lambda: _dimension_rows(
            "phase", tasks, lambda t: CAUSES[t.code][1] if t.code else UNSPECIFIED
        ),
        "failure_rate_by_system": lambda: _dimension_rows(
            "system", tasks, lambda t: CAUSES[t.code][2] if t.code else UNSPECIFIED
        ),
        "failure_rate_by_fixability": lambda: _dimension_rows("fixability", tasks, _fixability),
        "failure_rate_by_description_key": lambda: _description_rows(tasks),
        "failure_rate_by_connection": lambda: _place_rows(runs, tasks)[0],
        "failure_rate_by_imodel": lambda: _place_rows(runs, tasks)[1],
        "failure_rate_by_itwin": lambda: _place_rows(runs, tasks)[2],
        "failure_daily": lambda: _daily_rows(runs, tasks),
        "failure_trend_by_error_code": lambda: _trend_rows(tasks),
        "run_duration_daily": lambda: _duration_rows(runs),
    }
    stood_in = []
    for model, make_rows in marts.items():
        if _has_spec_columns(con, model):
            continue  # the SQL model of this checkout has the spec's shape: keep it
        con.execute(f'drop table if exists "{model}"')
        create_mart(con, model)
        insert_rows(con, model, make_rows())
        stood_in.append(model)
    return stood_in


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--days", type=int, default=42)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    db = args.out_dir / "warehouse.duckdb"
    db.unlink(missing_ok=True)
    with duckdb.connect(str(db)) as con:
        stood_in = build_sample(con, args.days, args.seed)
        page = write_html_report(con, args.out_dir / "reports" / "report.html")
    if stood_in:
        print(f"aggregated here, not by sql/ (no such model yet): {', '.join(stood_in)}")
    print(read_summary(args.out_dir).render(seconds=0.0, collected=False))
    print(page)


if __name__ == "__main__":
    main()
