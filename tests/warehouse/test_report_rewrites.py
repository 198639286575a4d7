"""Report files are rewritten only when the model they hold changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.transform.flatten import FetchedRun, flatten_runs
from pipeline.warehouse import export
from pipeline.warehouse.export import export_parquet
from pipeline.warehouse.models import build_models
from pipeline.warehouse.store import Warehouse
from tests.transform.builders import error, job, run, task

T = datetime(2024, 3, 1, 12, tzinfo=UTC)


def _load(w: Warehouse, run_id: str, result: str, at: datetime) -> None:
    failed = result == "Error"
    tasks = [task(f"{run_id}-t", result=result, err=error("E1") if failed else None)]
    payload = run(run_id, result=result, jobs=[job(f"{run_id}-j", tasks=tasks)])
    w.loader.load(flatten_runs([FetchedRun("c1", payload, at)]))


def _stamps(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.parquet")}


@pytest.fixture
def w() -> Warehouse:
    w = Warehouse.over(duckdb.connect())
    _load(w, "r1", "Error", T)
    build_models(w.con)
    return w


def test_nothing_changed_rewrites_nothing(w: Warehouse, tmp_path: Path) -> None:
    export_parquet(w.con, tmp_path)
    before = _stamps(tmp_path)
    build_models(w.con)
    export_parquet(w.con, tmp_path)
    assert _stamps(tmp_path) == before
    export_parquet(w.con, tmp_path, force=True)
    assert all(_stamps(tmp_path)[name] != stamp for name, stamp in before.items())


def test_a_changed_model_rewrites_its_file_only(w: Warehouse, tmp_path: Path) -> None:
    export_parquet(w.con, tmp_path)
    before = _stamps(tmp_path)
    # A connection's details change the per-connection report and the two rolled up from it.
    w.con.execute("insert into connections (connection_id, display_name) values ('c1', 'Bridge A')")
    build_models(w.con)
    export_parquet(w.con, tmp_path)
    after = _stamps(tmp_path)
    changed = {name for name in before if after[name] != before[name]}
    by_place = ("connection", "imodel", "itwin")
    assert changed == {f"failure_rate_by_{place}.parquet" for place in by_place}
    table = pq.read_table(tmp_path / "failure_rate_by_connection.parquet")
    assert table.column("display_name").to_pylist() == ["Bridge A"]


def test_a_write_interrupted_before_it_is_recorded_is_redone(
    w: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_parquet(w.con, tmp_path)
    _load(w, "r1", "Success", T + timedelta(hours=1))
    build_models(w.con)

    def crash(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "record_written", crash)
    with pytest.raises(KeyboardInterrupt):
        export_parquet(w.con, tmp_path, ["failure_daily"])
    monkeypatch.undo()
    before = _stamps(tmp_path)["failure_daily.parquet"]
    export_parquet(w.con, tmp_path, ["failure_daily"])
    assert _stamps(tmp_path)["failure_daily.parquet"] != before
    assert pq.read_table(tmp_path / "failure_daily.parquet").column("failed_runs").to_pylist() == [
        0
    ]
