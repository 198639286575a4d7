"""The short summary every command ends with, read back from the warehouse."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipeline.alerts import finding_lines
from pipeline.collection.results import connection_label
from pipeline.itwin.errors import describe_failure
from pipeline.report.causes import FIXABILITY
from pipeline.report.data import has_relation, rows_of
from pipeline.report.format import format_rate, share
from pipeline.report.html import top_failure_causes
from pipeline.warehouse import WAREHOUSE_FILE, quality
from pipeline.warehouse.store import connect_read_only


@dataclass
class FailedConnection:
    connection_id: str
    http_status: int | None
    error_code: str | None
    error_message: str | None
    display_name: str | None = None
    outcome: str = "failed"  # or 'stopped': a wait too long, resumed by the next collection

    def describe(self) -> str:
        if self.outcome == "stopped":
            failure = self.error_message or f"stopped: {self.error_code}"
        else:
            failure = describe_failure(self.http_status, self.error_code, self.error_message)
        return f"{connection_label(self.connection_id, self.display_name)}: {failure}"


def who_can_fix(rows: list[dict[str, Any]]) -> str:
    """One line from failure_rate_by_fixability: failed tasks and share per fixability, and
    the user-fixable failure rate with its interval."""
    order = {key: i for i, key in enumerate(FIXABILITY)}
    rows = sorted(rows, key=lambda r: order.get(str(r.get("fixability")), len(order)))
    parts = [
        f"{FIXABILITY.get(str(r.get('fixability')), str(r.get('fixability')))} {r['failed_tasks']} "
        f"({share(r.get('share_of_failures'))})"
        for r in rows
        if r.get("failed_tasks")
    ]
    if not parts:
        return ""
    line = "who can fix it (failed tasks): " + ", ".join(parts)
    fixable = next((r for r in rows if r.get("fixability") == "user_fixable"), None)
    if fixable is not None:
        rate = format_rate(
            fixable.get("failure_rate"),
            fixable.get("failure_rate_low"),
            fixable.get("failure_rate_high"),
        )
        line += f"; user-fixable failure rate {rate} of completed tasks"
    return line


@dataclass
class Summary:
    data_dir: Path
    counts: dict[str, int]
    last_collection: dict[str, int] = field(default_factory=dict)
    failed_connections: list[FailedConnection] = field(default_factory=list)
    top_causes: list[Any] = field(default_factory=list)
    fixability: list[dict[str, Any]] = field(default_factory=list)
    odd_runs: list[str] = field(default_factory=list)  # runs whose data is suspect, one line each
    failed_checks: list[str] = field(default_factory=list)  # set by the caller from Dagster
    findings: list[str] = field(default_factory=list)

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
        stopped = [f for f in self.failed_connections if f.outcome == "stopped"]
        failed = [f for f in self.failed_connections if f.outcome != "stopped"]
        if collected and stopped:
            lines.append(
                f"STOPPED connections ({len(stopped)}; what was fetched is loaded, "
                "the next collection goes on):"
            )
            lines += [f"  {f.describe()}" for f in stopped]
        if collected and failed:
            lines.append(f"FAILED connections ({len(failed)}):")
            lines += [f"  {f.describe()}" for f in failed]
        lines += [f"WARNING: {line}" for line in self.odd_runs]
        if self.failed_checks:
            lines.append(f"failed checks ({len(self.failed_checks)}):")
            lines += [f"  {line}" for line in self.failed_checks]
        if self.top_causes:
            lines.append("top failure causes (failed tasks per error code in its phase / system):")
            for row in self.top_causes:
                lines.append(
                    f"  {row.failed_tasks:>6}  {row.share:6.1%}  {row.error_code}  "
                    f"[{row.phase} / {row.system}]"
                )
        else:
            lines.append("no failed tasks recorded")
        if fixability_line := who_can_fix(self.fixability):
            lines.append(fixability_line)
        reports = self.data_dir / "reports"
        lines.append(f"warehouse: {self.data_dir / WAREHOUSE_FILE}")
        lines.append(f"reports:   {reports}/ (report.html and one .parquet per model)")
        lines += findings_block(self.findings)
        return "\n".join(lines)


def findings_block(findings: list[str]) -> list[str]:
    """What the alerts would say, last: the answer to "is it getting worse?"."""
    if not findings:
        return [
            "is it getting worse? no: no spike day in the last 7 days and no new or rising "
            "error code"
        ]
    count = f"{len(findings)} finding{'' if len(findings) == 1 else 's'}"
    lines = [f"is it getting worse? {count} (what the alerts say):"]
    # Error codes in the texts come from the API: no terminal control sequences from them.
    return lines + ["  - " + "".join(ch if ch.isprintable() else "?" for ch in f) for f in findings]


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
    names = _display_names(con)
    failed = [
        FailedConnection(r[0], r[2], r[3], r[4], names.get(r[0]), r[1])
        for r in rows
        if r[1] != "ok"
    ]
    return totals, failed


def _display_names(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    # An older warehouse has no connections table: ids alone, as before.
    if not has_relation(con, "connections"):
        return {}
    rows = con.execute(
        "select connection_id, display_name from connections where display_name is not null"
    ).fetchall()
    return {connection_id: name for connection_id, name in rows}


def _fixability(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    if not has_relation(con, "failure_rate_by_fixability"):
        return []
    try:
        return rows_of(con, "select * from failure_rate_by_fixability")
    except duckdb.Error:  # a model of another shape: the line is left out, never a crash
        return []


def read_summary(data_dir: Path, top: int = 5) -> Summary:
    with connect_read_only(data_dir / WAREHOUSE_FILE) as con:
        counts = {t: _count(con, t) for t in ("runs", "jobs", "tasks", "task_errors", "quarantine")}
        last, failed = _last_collection(con)
        try:
            causes = top_failure_causes(con, top)
        except duckdb.CatalogException:
            causes = []
        fixability = _fixability(con)
        odd = _odd_runs(con)
        findings = finding_lines(con)
    return Summary(data_dir, counts, last, failed, causes, fixability, odd, findings=findings)


def _odd_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Runs stored as the API sent them whose figures mislead: said, never hidden."""
    lines = []
    for find, what in (
        (quality.negative_durations, "end before they start (negative duration)"),
        (
            quality.runs_with_unknown_values,
            "have a state or result outside the documented ones (left out of the failure rates)",
        ),
    ):
        try:
            count, named = find(con, 3)
        except duckdb.CatalogException:
            continue
        if count:
            more = f" and {count - len(named)} more" if count > len(named) else ""
            lines.append(f"{count} runs {what}: {', '.join(named)}{more}")
    return lines
