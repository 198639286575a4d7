"""What the summary must not hide (issue 22): stopped connections with why and how long,
runs that end before they start or have undocumented states, and failed checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pipeline.summary import read_summary
from pipeline.transform.flatten import FetchedRun, flatten_runs
from pipeline.warehouse import quality
from pipeline.warehouse.bookkeeping import CollectionLogEntry
from pipeline.warehouse.store import open_warehouse
from tests.transform.builders import T0, run

WHEN = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


def _warehouse(tmp_path: Path) -> Path:
    backwards = run("r-back")
    backwards["startDateTime"], backwards["endDateTime"] = (
        "2026-01-02T10:00:00Z",
        "2026-01-02T09:00:00Z",
    )
    lowercase = run("r-lower", state="completed")
    runs = [run("r-fine"), backwards, lowercase]
    path = tmp_path / "warehouse.duckdb"
    with open_warehouse(path) as warehouse:
        warehouse.loader.load(flatten_runs(FetchedRun("c1", r, T0) for r in runs))
        warehouse.bookkeeping.record_finished(
            log_entries=[
                CollectionLogEntry(
                    "k1",
                    "c1",
                    WHEN,
                    WHEN,
                    "stopped",
                    error_code="HTTP 429",
                    error_message="stopped: HTTP 429, the API asked to wait 1800 s "
                    "(ITWIN_MAX_WAIT_S is 900)",
                ),
                CollectionLogEntry("k1", "c2", WHEN, WHEN, "ok"),
            ]
        )
    return path


def test_quality_names_runs_ending_before_they_start_and_undocumented_states(
    tmp_path: Path,
) -> None:
    path = _warehouse(tmp_path)
    with open_warehouse(path) as warehouse:
        assert quality.negative_durations(warehouse.con) == (1, ["c1/r-back"])
        assert quality.runs_with_unknown_values(warehouse.con) == (
            1,
            ["c1/r-lower (state 'completed')"],
        )


def test_the_summary_names_stopped_connections_odd_runs_and_failed_checks(
    tmp_path: Path,
) -> None:
    _warehouse(tmp_path)
    summary = read_summary(tmp_path)
    summary.failed_checks = ["runs no_negative_durations (WARN): 1 runs end before they start"]
    lines = summary.render(seconds=1.0, collected=True).splitlines()
    assert lines[lines.index(next(ln for ln in lines if ln.startswith("STOPPED"))) + 1] == (
        "  c1: stopped: HTTP 429, the API asked to wait 1800 s (ITWIN_MAX_WAIT_S is 900)"
    )
    assert not any(ln.startswith("FAILED") for ln in lines)
    assert "WARNING: 1 runs end before they start (negative duration): c1/r-back" in lines
    assert any(
        ln.startswith("WARNING: 1 runs have a state or result outside") and "c1/r-lower" in ln
        for ln in lines
    )
    assert "failed checks (1):" in lines
