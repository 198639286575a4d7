"""Pages on disk -> the four DuckDB tables: our path against DuckDB's own read_json + UNNEST.

Ours is what `itwin-runs load` does (pipeline.sources.files.load_files into a fresh
warehouse file: parse, validate, flatten, raw versions, atomic load). The reference is
DuckDB reading the same page files and unnesting them into the same four tables. Each
measurement runs in its own subprocess (so peak RSS is that method's alone), the two
methods alternate, and medians of --repeat rounds are printed. Figures, not assertions.

    .venv/bin/python benchmarks/flatten_bench.py [--runs 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
TABLES = ("runs", "jobs", "tasks", "task_errors")

_TS = "VARCHAR"
_ERROR = (
    "STRUCT(errorCode VARCHAR, message VARCHAR, details VARCHAR, bridgeExitCode BIGINT, "
    "system VARCHAR, phase VARCHAR, category VARCHAR, descriptionKey VARCHAR, "
    "description VARCHAR, kbArticleLink VARCHAR, canUserFix BOOLEAN)"
)
_TASK = (
    f"STRUCT(id VARCHAR, startDateTime {_TS}, endDateTime {_TS}, retryAttempts BIGINT, "
    f"state VARCHAR, result VARCHAR, exportOutputFileId VARCHAR, error {_ERROR})"
)
_JOB = (
    f"STRUCT(id VARCHAR, startDateTime {_TS}, endDateTime {_TS}, state VARCHAR, "
    f"result VARCHAR, connectorType VARCHAR, tasks {_TASK}[])"
)
_RUN = (
    f"STRUCT(id VARCHAR, connectionId VARCHAR, startDateTime {_TS}, endDateTime {_TS}, "
    f"state VARCHAR, result VARCHAR, jobs {_JOB}[])"
)


def _result(expr: str) -> str:
    return f"CASE WHEN {expr} = 'Cancelled' THEN 'Canceled' ELSE {expr} END"


REFERENCE_SQL = [
    # One read of every page file, then plain UNNESTs into the same four tables.
    "CREATE TEMP TABLE src AS SELECT unnest(runs) AS r "
    "FROM read_json('{pages}/*.json', columns={{runs: '" + _RUN + "[]'}}, records=true)",
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


def run_ours(pages: Path, db: Path, batch_runs: int) -> dict[str, int]:
    from pipeline.sources.files import load_files
    from pipeline.warehouse.store import open_warehouse

    with open_warehouse(db) as warehouse:
        load_files([pages], warehouse, batch_runs=batch_runs)
        counts = warehouse.table_counts()
    return {t: counts[t] for t in TABLES}


def run_reference(pages: Path, db: Path) -> dict[str, int]:
    import duckdb

    from pipeline.warehouse.ddl import create_core_tables

    con = duckdb.connect(str(db))
    create_core_tables(con)
    con.execute("BEGIN TRANSACTION").fetchall()
    for sql in REFERENCE_SQL:
        con.execute(sql.format(pages=pages)).fetchall()
    con.execute("COMMIT").fetchall()
    counts = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]) for t in TABLES}
    con.close()
    return counts


def child(method: str, pages: Path, db: Path, batch_runs: int) -> None:
    """One measurement; prints a JSON line. Imports happen before the clock starts."""
    import duckdb  # noqa: F401
    import orjson  # noqa: F401
    import pyarrow  # noqa: F401

    import pipeline.sources.files  # noqa: F401

    db.unlink(missing_ok=True)
    started = time.perf_counter()
    counts = run_ours(pages, db, batch_runs) if method == "ours" else run_reference(pages, db)
    wall = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"method": method, "wall_s": wall, "rss_mb": rss_mb, "counts": counts}))
    db.unlink(missing_ok=True)


def measure(method: str, pages: Path, batch_runs: int) -> dict[str, Any]:
    db = WORK / f"bench-{method}.duckdb"
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            method,
            "--pages",
            str(pages),
            "--db",
            str(db),
            "--batch-runs",
            str(batch_runs),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def ensure_pages(runs: int, seed: int) -> Path:
    from pipeline.simulator.pages import write_run_pages

    pages = WORK / f"pages-{runs}-{seed}"
    done = pages / ".complete"
    if not done.exists():
        started = time.perf_counter()
        write_run_pages(pages, runs=runs, page_size=50, seed=seed, include_connection_id=True)
        done.touch()
        print(f"wrote {runs} runs as pages in {time.perf_counter() - started:.1f} s", flush=True)
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-runs", type=int, default=5_000)
    parser.add_argument("--child", choices=["ours", "reference"])
    parser.add_argument("--pages", type=Path)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.pages, args.db, args.batch_runs)
        return
    WORK.mkdir(parents=True, exist_ok=True)
    pages = ensure_pages(args.runs, args.seed)
    files = sorted(pages.glob("*.json"))
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"{args.runs} runs in {len(files)} page files, {size_mb:.0f} MB", flush=True)
    results: dict[str, list[dict[str, Any]]] = {"ours": [], "reference": []}
    for round_ in range(args.repeat):
        order = ["ours", "reference"] if round_ % 2 == 0 else ["reference", "ours"]
        for method in order:
            r = measure(method, pages, args.batch_runs)
            results[method].append(r)
            print(
                f"  round {round_ + 1} {method:9s} {r['wall_s']:6.2f} s  "
                f"{r['rss_mb']:6.0f} MB RSS  {r['counts']}",
                flush=True,
            )
    report(results, args.runs, size_mb)


def report(results: dict[str, list[dict[str, Any]]], runs: int, size_mb: float) -> None:
    print(f"\n{'method':10s} {'wall s':>7s} {'runs/s':>9s} {'MB/s':>7s} {'peak RSS MB':>12s}")
    medians = {}
    for method, rs in results.items():
        wall = statistics.median(r["wall_s"] for r in rs)
        rss = max(r["rss_mb"] for r in rs)
        medians[method] = wall
        print(f"{method:10s} {wall:7.2f} {runs / wall:9.0f} {size_mb / wall:7.1f} {rss:12.0f}")
    ours, ref = (results[m][0]["counts"] for m in ("ours", "reference"))
    print(f"\nthroughput ours / reference: {medians['reference'] / medians['ours']:.2f}")
    print(f"row counts {'identical' if ours == ref else 'DIFFER'}: ours {ours}, reference {ref}")


if __name__ == "__main__":
    main()
