"""The short summary every command ends with, read back from the warehouse."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipeline.itwin.errors import describe_failure
from pipeline.report.html import top_failure_causes


@dataclass
class FailedConnection:
    connection_id: str
    http_status: int | None
    error_code: str | None
    error_message: str | None

    def describe(self) -> str:
        failure = describe_failure(self.http_status, self.error_code, self.error_message)
        return f"{self.connection_id}: {failure}"


@dataclass
class Summary:
    data_dir: Path
    counts: dict[str, int]
    last_collection: dict[str, int] = field(default_factory=dict)
    failed_connections: list[FailedConnection] = field(default_factory=list)
    top_causes: list[Any] = field(default_factory=list)

    def render(self, *, seconds: float, collected: bool) -> str:
        c = self.counts
        lines = [
            f"tables: {c.get('runs', 0)} runs, {c.get('jobs', 0)} jobs, {c.get('tasks', 0)} tasks, "
            f"{c.get('task_errors', 0)} task errors, {c.get('quarantine', 0)} quarantined "
            f"({seconds:.1f} s)"
        ]
        if collected and self.last_collection:
            lc = self.last_collection
            lines.append(
                f"this collection: {lc['connections']} connections, {lc['runs_new']} new runs, "
                f"{lc['runs_changed']} changed, {lc['runs_unchanged']} unchanged, "
                f"{lc['requests']} requests ({lc['retries']} retries, "
                f"{lc['throttled']} answered 429)"
            )
        if collected and self.failed_connections:
            lines.append(f"FAILED connections ({len(self.failed_connections)}):")
            lines += [f"  {f.describe()}" for f in self.failed_connections]
        if self.top_causes:
            lines.append("top failure causes (failed tasks per error code in its phase / system):")
            for row in self.top_causes:
                lines.append(
                    f"  {row.failed_tasks:>6}  {row.share:6.1%}  {row.error_code}  "
                    f"[{row.phase} / {row.system}]"
                )
        else:
            lines.append("no failed tasks recorded")
        reports = self.data_dir / "reports"
        lines.append(f"warehouse: {self.data_dir / 'warehouse.duckdb'}")
        lines.append(f"reports:   {reports}/ (report.html and one .parquet per model)")
        return "\n".join(lines)


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    try:
        rows = con.execute(f'select count(*) from "{table}"').fetchall()
    except duckdb.CatalogException:
        return 0
    return int(rows[0][0]) if rows else 0


def _last_collection(
    con: duckdb.DuckDBPyConnection,
) -> tuple[dict[str, int], list[FailedConnection]]:
    try:
        rows = con.execute(
            "select connection_id, outcome, http_status, error_code, error_message, runs_new, "
            "runs_changed, runs_unchanged, requests, retries, throttled_429 from collection_log "
            "where collection_id = (select collection_id from collection_log "
            "order by started_at desc limit 1) order by connection_id"
        ).fetchall()
    except duckdb.CatalogException:
        return {}, []
    if not rows:
        return {}, []
    totals = {
        "connections": len(rows),
        "runs_new": sum(r[5] or 0 for r in rows),
        "runs_changed": sum(r[6] or 0 for r in rows),
        "runs_unchanged": sum(r[7] or 0 for r in rows),
        "requests": sum(r[8] or 0 for r in rows),
        "retries": sum(r[9] or 0 for r in rows),
        "throttled": sum(r[10] or 0 for r in rows),
    }
    failed = [FailedConnection(r[0], r[2], r[3], r[4]) for r in rows if r[1] != "ok"]
    return totals, failed


def read_summary(data_dir: Path, top: int = 5) -> Summary:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        counts = {t: _count(con, t) for t in ("runs", "jobs", "tasks", "task_errors", "quarantine")}
        last, failed = _last_collection(con)
        try:
            causes = top_failure_causes(con, top)
        except duckdb.CatalogException:
            causes = []
    return Summary(data_dir, counts, last, failed, causes)
