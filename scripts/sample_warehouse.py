"""Build a synthetic warehouse whose report shows every section, to look at the page.

Usage: python scripts/sample_warehouse.py OUT_DIR [--days D] [--seed S]
Writes OUT_DIR/warehouse.duckdb and OUT_DIR/reports/report.html, and prints the CLI summary.

Runs of the sample world (sample_world.py) go into the core tables and the SQL models are
built; a report model this checkout's SQL does not produce with the spec's columns is
aggregated by sample_marts.py instead, so the page shows every section either way.
"""

from __future__ import annotations

import argparse
import random
from datetime import timedelta
from pathlib import Path

import duckdb
from sample_marts import (
    daily_rows,
    description_rows,
    dimension_rows,
    duration_rows,
    fixability,
    place_rows,
    trend_rows,
)
from sample_world import CAUSES, CONNECTIONS, UNSPECIFIED, Row, Task, simulate

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
)


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
        "failure_rate_by_error_code": lambda: dimension_rows(
            "error_code", tasks, lambda t: t.code or UNSPECIFIED
        ),
        "failure_rate_by_phase": lambda: dimension_rows(
            "phase", tasks, lambda t: CAUSES[t.code][1] if t.code else UNSPECIFIED
        ),
        "failure_rate_by_system": lambda: dimension_rows(
            "system", tasks, lambda t: CAUSES[t.code][2] if t.code else UNSPECIFIED
        ),
        "failure_rate_by_fixability": lambda: dimension_rows("fixability", tasks, fixability),
        "failure_rate_by_description_key": lambda: description_rows(tasks),
        "failure_rate_by_connection": lambda: place_rows(runs, tasks)[0],
        "failure_rate_by_imodel": lambda: place_rows(runs, tasks)[1],
        "failure_rate_by_itwin": lambda: place_rows(runs, tasks)[2],
        "failure_daily": lambda: daily_rows(runs, tasks),
        "failure_trend_by_error_code": lambda: trend_rows(tasks),
        "run_duration_daily": lambda: duration_rows(runs),
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
        page = args.out_dir / "reports" / "report.html"
        write_html_report(con, page, force=True)
    if stood_in:
        print(f"aggregated here, not by sql/ (no such model yet): {', '.join(stood_in)}")
    print(read_summary(args.out_dir).render(seconds=0.0, collected=False))
    print(page)


if __name__ == "__main__":
    main()
