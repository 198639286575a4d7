"""DuckDB's own load of the page files, the yardstick for `itwin-runs load`.

Bare: read_json + UNNEST into the four core tables, nothing else. Like for like: the
same, but each run is also kept as its JSON text with its sha256 and fetch time in
raw_runs (and raw_latest), as our load does. Run in its own process by load.py:

    .venv/bin/python -m benchmarks.reference --pages DIR --db FILE [--like-for-like]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

TABLES = ("runs", "jobs", "tasks", "task_errors")

_ERROR = {
    "errorCode": "VARCHAR",
    "message": "VARCHAR",
    "details": "VARCHAR",
    "bridgeExitCode": "BIGINT",
    "system": "VARCHAR",
    "phase": "VARCHAR",
    "category": "VARCHAR",
    "descriptionKey": "VARCHAR",
    "description": "VARCHAR",
    "kbArticleLink": "VARCHAR",
    "canUserFix": "BOOLEAN",
}
_TIMES = {"startDateTime": "VARCHAR", "endDateTime": "VARCHAR"}
_TASK = {
    "id": "VARCHAR",
    **_TIMES,
    "retryAttempts": "BIGINT",
    "state": "VARCHAR",
    "result": "VARCHAR",
    "exportOutputFileId": "VARCHAR",
    "error": _ERROR,
}
_JOB = {
    "id": "VARCHAR",
    **_TIMES,
    "state": "VARCHAR",
    "result": "VARCHAR",
    "connectorType": "VARCHAR",
    "tasks": [_TASK],
}
RUN = {
    "id": "VARCHAR",
    "connectionId": "VARCHAR",
    **_TIMES,
    "state": "VARCHAR",
    "result": "VARCHAR",
    "jobs": [_JOB],
}


def _struct(shape: Any) -> str:
    """The DuckDB type of a JSON structure as json_transform takes it."""
    if isinstance(shape, str):
        return shape
    if isinstance(shape, list):
        return _struct(shape[0]) + "[]"
    return "STRUCT(" + ", ".join(f"{k} {_struct(v)}" for k, v in shape.items()) + ")"


RUN_STRUCT = _struct(RUN)
_RUN_SHAPE = json.dumps(RUN).replace("{", "{{").replace("}", "}}")  # braces escaped for format()


def _result(expr: str) -> str:
    return f"CASE WHEN {expr} = 'Cancelled' THEN 'Canceled' ELSE {expr} END"


# One read of every page file into `src` (a column r of RUN_STRUCT).
READ_BARE = (
    "CREATE TEMP TABLE src AS SELECT unnest(runs) AS r "
    "FROM read_json('{pages}/*.json', columns={{runs: '" + RUN_STRUCT + "[]'}}, records=true)"
)
# The same, keeping each run's JSON text, sha256 and fetch time beside it.
READ_KEEPING_TEXT = [
    "CREATE TEMP TABLE src_text AS SELECT unnest(runs)::VARCHAR AS payload, now() AS fetched_at "
    "FROM read_json('{pages}/*.json', columns={{runs: 'JSON[]'}}, records=true)",
    "CREATE TEMP TABLE src AS SELECT payload, sha256(payload) AS payload_hash, fetched_at, "
    "json_transform(payload, '"
    + json.dumps(RUN).replace("{", "{{").replace("}", "}}")
    + "') AS r FROM src_text",
]

UNNEST_INTO_CORE = [
    "INSERT INTO runs SELECT r.connectionId, r.id, r.startDateTime::TIMESTAMPTZ, "
    "r.endDateTime::TIMESTAMPTZ, r.state, " + _result("r.result") + ", "
    "(epoch_us(r.endDateTime::TIMESTAMPTZ) - epoch_us(r.startDateTime::TIMESTAMPTZ)) / 1e6, "
    "NULL FROM src",
    "CREATE TEMP TABLE src_jobs AS SELECT r.connectionId AS c, r.id AS rid, unnest(r.jobs) AS j "
    "FROM src",
    "INSERT INTO jobs SELECT c, rid, j.id, j.startDateTime::TIMESTAMPTZ, "
    "j.endDateTime::TIMESTAMPTZ, j.state, " + _result("j.result") + ", j.connectorType, NULL "
    "FROM src_jobs",
    "CREATE TEMP TABLE src_tasks AS SELECT c, rid, j.id AS jid, unnest(j.tasks) AS t FROM src_jobs",
    "INSERT INTO tasks SELECT c, rid, jid, t.id, t.startDateTime::TIMESTAMPTZ, "
    "t.endDateTime::TIMESTAMPTZ, t.retryAttempts, t.state, " + _result("t.result") + ", "
    "t.exportOutputFileId, NULL FROM src_tasks",
    "INSERT INTO task_errors SELECT c, rid, jid, t.id, t.error.errorCode, t.error.message, "
    "t.error.details, t.error.bridgeExitCode, t.error.system, t.error.phase, "
    "t.error.category, t.error.descriptionKey, t.error.description, t.error.kbArticleLink, "
    "t.error.canUserFix, NULL FROM src_tasks WHERE t.error IS NOT NULL",
]

KEEP_RAW = [
    "INSERT INTO raw_runs (connection_id, run_id, payload_hash, payload, fetched_at, state) "
    "SELECT r.connectionId, r.id, payload_hash, payload, fetched_at, r.state FROM src",
    "INSERT INTO raw_latest (connection_id, run_id, payload_hash, fetched_at, state) "
    "SELECT r.connectionId, r.id, payload_hash, fetched_at, r.state FROM src",
]


def statements(like_for_like: bool) -> list[str]:
    if like_for_like:
        return [*READ_KEEPING_TEXT, *UNNEST_INTO_CORE, *KEEP_RAW]
    return [READ_BARE, *UNNEST_INTO_CORE]


def load(pages: Path, db: Path, like_for_like: bool) -> dict[str, int]:
    """Load the pages into a fresh file `db` in one transaction; the row counts."""
    import duckdb

    from pipeline.warehouse.ddl import create_all_tables, create_core_tables

    con = duckdb.connect(str(db))
    (create_all_tables if like_for_like else create_core_tables)(con)
    con.execute("BEGIN TRANSACTION").fetchall()
    for sql in statements(like_for_like):
        con.execute(sql.format(pages=pages)).fetchall()
    con.execute("COMMIT").fetchall()
    counted = (*TABLES, "raw_runs") if like_for_like else TABLES
    counts = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]) for t in counted}
    con.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=Path, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--like-for-like", action="store_true")
    args = parser.parse_args()
    args.db.unlink(missing_ok=True)
    started = time.perf_counter()
    counts = load(args.pages, args.db, args.like_for_like)
    # Printed as `itwin-runs load` prints its own line, so the harness marks both alike.
    print(f"loaded {json.dumps(counts)} in {time.perf_counter() - started:.2f} s", file=sys.stderr)
    print(json.dumps(counts))
    args.db.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
