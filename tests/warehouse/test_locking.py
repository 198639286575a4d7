"""Other processes: a load killed half-way, and a second process wanting the file's lock."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import duckdb
import pytest

from pipeline.errors import ITwinRunsError
from pipeline.warehouse.store import WarehouseLockedError, open_warehouse
from tests.support import LOAD_TIME as T
from tests.support import load_runs as load
from tests.support import start_paused_load
from tests.support import stored_rows as snapshot


@pytest.mark.parametrize("pause_at", ["INSERT tasks", "UPDATE raw_latest changed"])
def test_a_killed_load_leaves_the_committed_state_and_the_next_load_converges(
    tmp_path: Path, pause_at: str
) -> None:
    from tests.transform.builders import random_runs

    path = tmp_path / "w.duckdb"
    with open_warehouse(path) as w:
        load(w, random_runs(300, seed=1))
        before = snapshot(w)
    child = start_paused_load(path, pause_at)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    with open_warehouse(path) as w:
        assert snapshot(w) == before
        runs = random_runs(300, seed=1)
        for r in runs:
            r["state"] = "Executing"
        from datetime import timedelta

        load(w, runs + random_runs(300, seed=2), at=T + timedelta(hours=1))
        reached = snapshot(w)
    expected_path = tmp_path / "direct.duckdb"
    with open_warehouse(expected_path) as direct:
        load(direct, runs + random_runs(300, seed=2), at=T + timedelta(hours=1))
        expected = snapshot(
            direct, tuple(k for k in reached if k not in ("raw_runs", "raw_latest"))
        )
    assert {k: v for k, v in reached.items() if k in expected} == expected


def test_a_second_process_gets_a_clear_error_after_a_bounded_wait(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    child = start_paused_load(path, "classify")
    try:
        started = time.monotonic()
        with (
            pytest.raises(WarehouseLockedError) as caught,
            open_warehouse(path, lock_timeout_s=1.0),
        ):
            pass
        waited = time.monotonic() - started
        assert 0.9 <= waited < 10
        message = str(caught.value)
        assert str(path) in message and str(child.pid) in message
        assert "Wait for that process" in message
        assert isinstance(caught.value, ITwinRunsError)
    finally:
        child.kill()
        child.wait(timeout=30)
    with open_warehouse(path, lock_timeout_s=5.0) as w:  # free again once the holder is gone
        assert w.table_counts()["runs"] == 0
