"""Build a realistic synthetic warehouse and its reports, to look at the report page.

Usage: python scripts/sample_warehouse.py OUT_DIR [--runs N] [--days D] [--seed S]
Writes OUT_DIR/warehouse.duckdb and OUT_DIR/reports/ (Parquet + report.html).
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from pipeline.report.html import top_failure_causes, write_html_report
from pipeline.warehouse.ddl import create_core_tables
from pipeline.warehouse.export import export_parquet
from pipeline.warehouse.models import build_models

# A long tail: the first few codes cause most failures, as in real exports.
ERROR_CODES = [
    ("ConnectorTimeout", "The connector did not answer within 3600 s."),
    ("FileNotFound", "Source file 'site/model.dgn' could not be found."),
    ("AuthorizationFailed", "The service account lacks access to the source repository."),
    ("InvalidGeometry", "Element 0x20000001a3f has degenerate geometry."),
    ("OutOfMemory", "The bridge process ran out of memory (exit code 137)."),
    (
        "UnsupportedSchemaVersionInSourceFileWithAVeryLongName",
        "Schema 'AecUnits.01.00.05' is newer than supported.",
    ),
    ("ReferenceCycle", "Reference attachment cycle detected."),
    ("CorruptFile", "<script>alert('xss')</script> header checksum mismatch"),
    ("LicenseUnavailable", "No license seat available."),
    ("NetworkReset", "Connection reset by peer."),
    ("ChangesetConflict", "Changeset 42 conflicts with a pending push."),
    ("DiskFull", "No space left on device."),
    ("ProjectionMismatch", "Geographic coordinate systems differ."),
    ("BridgeCrashed", "The bridge exited with code -1073741819."),
    ("LockTimeout", "Could not acquire the briefcase lock."),
]
PHASES = ["Download", "Preprocess", "Convert", "Synchronize", "Upload", None]
SYSTEMS = ["Connector", "iModelHub", "Storage", "Orchestrator", None]
CONNECTIONS = [
    "8f3a1c2e-5b7d-4e0f-9a61-0c2d3e4f5a6b",
    "bridge-north-campus",
    "bridge-south-campus",
    "plant-3d-export",
    "civil-corridor-main",
    "connection-with-an-unusually-long-identifier-for-testing",
]


def _pick_error(rng: random.Random) -> tuple[str | None, str, str | None, str | None]:
    weights = [1 / (i + 1) ** 1.3 for i in range(len(ERROR_CODES))]
    index = rng.choices(range(len(ERROR_CODES)), weights)[0]
    code: str | None = ERROR_CODES[index][0]
    message = ERROR_CODES[index][1]
    # each code mostly comes from one phase and system, as real failures do
    phase = PHASES[index % len(PHASES)] if rng.random() < 0.8 else rng.choice(PHASES)
    system = SYSTEMS[index % len(SYSTEMS)] if rng.random() < 0.8 else rng.choice(SYSTEMS)
    if rng.random() < 0.05:
        code = None  # the API sometimes omits the code
    return code, message, phase, system


def _insert_run(con: duckdb.DuckDBPyConnection, rng: random.Random, run: dict[str, object]) -> None:
    connection_id, run_id, start = run["connection_id"], run["run_id"], run["start"]
    failure_p = float(run["failure_p"])  # type: ignore[arg-type]
    running = bool(run["running"])
    tasks: list[tuple[object, ...]] = []
    errors: list[tuple[object, ...]] = []
    for j in range(rng.randint(1, 3)):
        for t in range(rng.randint(2, 6)):
            task_id = f"{run_id}-j{j}-t{t}"
            if running and rng.random() < 0.6:
                tasks.append((connection_id, run_id, f"j{j}", task_id, "Running", None))
                continue
            roll = rng.random()
            result = (
                "Error"
                if roll < failure_p
                else "TimedOut"
                if roll < failure_p * 1.15
                else "Canceled"
                if roll < failure_p * 1.15 + 0.02
                else "Succeeded"
            )
            tasks.append((connection_id, run_id, f"j{j}", task_id, "Completed", result))
            # most failures carry an error row; some successes carry a warning-like error
            if (result in ("Error", "TimedOut") and rng.random() < 0.9) or rng.random() < 0.03:
                code, message, phase, system = _pick_error(rng)
                errors.append(
                    (connection_id, run_id, f"j{j}", task_id, code, message, phase, system)
                )
    results = [t[5] for t in tasks]
    state: str = "Completed"
    run_result: str | None = "Succeeded"
    if running:
        state, run_result = "Running", None
    elif "TimedOut" in results:
        run_result = "TimedOut"
    elif "Error" in results:
        run_result = rng.choice(["Error", "Error", "PartialSuccess"])
    elif "Canceled" in results:
        run_result = "Canceled"
    con.execute(
        "insert into runs (connection_id, run_id, start_time, state, result) "
        "values (?, ?, ?, ?, ?)",
        [connection_id, run_id, start, state, run_result],
    )
    con.executemany(
        "insert into tasks (connection_id, run_id, job_id, task_id, state, result) "
        "values (?, ?, ?, ?, ?, ?)",
        tasks,
    )
    if errors:
        con.executemany(
            "insert into task_errors "
            "(connection_id, run_id, job_id, task_id, error_code, message, phase, system) "
            "values (?, ?, ?, ?, ?, ?, ?, ?)",
            errors,
        )


def build_sample(con: duckdb.DuckDBPyConnection, runs: int, days: int, seed: int) -> None:
    rng = random.Random(seed)
    create_core_tables(con)
    end = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    base_p = {c: rng.uniform(0.02, 0.25) for c in CONNECTIONS}
    for i in range(runs):
        connection_id = rng.choice(CONNECTIONS)
        start = end - timedelta(seconds=rng.uniform(0, days * 86400))
        age_days = (end - start).total_seconds() / 86400
        # a failure wave in the middle of the period gives the trend chart something to show
        wave = 0.15 if days / 3 < age_days < days / 2 else 0.0
        _insert_run(
            con,
            rng,
            {
                "connection_id": connection_id,
                "run_id": f"run-{i:05d}",
                "start": start,
                "failure_p": base_p[connection_id] + wave,
                "running": age_days < 0.3 and rng.random() < 0.5,
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    db = args.out_dir / "warehouse.duckdb"
    db.unlink(missing_ok=True)
    with duckdb.connect(str(db)) as con:
        build_sample(con, args.runs, args.days, args.seed)
        build_models(con)
        reports = args.out_dir / "reports"
        export_parquet(con, reports)
        page = write_html_report(con, reports / "report.html")
        for cause in top_failure_causes(con):
            where = f"{cause.error_code} / {cause.phase} / {cause.system}"
            print(f"{cause.failed_tasks:5d} {cause.share:6.1%}  {where}")
    print(page)


if __name__ == "__main__":
    main()
