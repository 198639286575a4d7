"""The CLI summary read back from a warehouse: names, who can fix it, older warehouses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipeline.summary import FailedConnection, read_summary
from tests.report.fixtures import C_HOSTILE, C_NAMELESS, C_NORTH_2, HOSTILE_NAME, report_warehouse

WHEN = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


def _log_collection(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        (C_NORTH_2, "failed", 404, "ConnectionNotFound", "No such connection."),
        (C_NAMELESS, "failed", 503, None, None),
        (C_HOSTILE, "ok", None, None, None),
    ]
    for connection_id, outcome, status, code, message in rows:
        con.execute(
            "insert into collection_log (collection_id, connection_id, started_at, ended_at, "
            "outcome, http_status, error_code, error_message, requests, retries, throttled_429, "
            "runs_new, runs_changed, runs_unchanged) values "
            "('k1', ?, ?, ?, ?, ?, ?, ?, 2, 0, 0, 1, 0, 0)",
            [connection_id, WHEN, WHEN, outcome, status, code, message],
        )


def _summary_text(tmp_path: Path, leave_out: tuple[str, ...] = ()) -> str:
    con = report_warehouse(leave_out=leave_out, database=str(tmp_path / "warehouse.duckdb"))
    _log_collection(con)
    con.close()
    return read_summary(tmp_path).render(seconds=1.0, collected=True)


def test_failed_connections_are_named(tmp_path: Path) -> None:
    text = _summary_text(tmp_path)
    assert "FAILED connections (2):" in text
    assert (
        f"  Bridge North ({C_NORTH_2}): HTTP 404, ConnectionNotFound: No such connection." in text
    )
    assert f"  {C_NAMELESS}: HTTP 503, no API error code: " in text  # no name: the id alone
    assert HOSTILE_NAME not in text  # an ok connection is not listed


def test_a_display_name_cannot_drive_the_terminal() -> None:
    failed = FailedConnection("c1", 500, None, None, "Evil\x1b[2J\x07 name\n")
    assert failed.describe() == "Evil?[2J? name? (c1): HTTP 500, no API error code: "


def test_who_can_fix_it_line(tmp_path: Path) -> None:
    text = _summary_text(tmp_path)
    assert (
        "who can fix it (failed tasks): user can fix 9 (40.9%), user cannot fix 10 (45.5%), "
        "(unspecified) 3 (13.6%); user-fixable failure rate 5.5% (2.9–10.2%) of completed tasks"
    ) in text.splitlines()


def test_an_older_warehouse_leaves_the_new_parts_out(tmp_path: Path) -> None:
    text = _summary_text(tmp_path, leave_out=("connections", "failure_rate_by_fixability"))
    assert f"  {C_NORTH_2}: HTTP 404, ConnectionNotFound: No such connection." in text
    assert "who can fix it" not in text
    assert "no failed tasks recorded" in text  # no staging in this warehouse: no top causes
