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
from pipeline.warehouse.store import Warehouse, open_warehouse
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


@pytest.mark.long
def test_the_full_run_config_rebuilds_every_model_and_report(tmp_path: Path) -> None:
    from pipeline.definitions import WAREHOUSE_FILE, build_definitions
    from pipeline.defs.jobs import full_build_run_config
    from pipeline.sources.files import load_files
    from tests.support import write_pages
    from tests.transform.builders import random_runs

    write_pages(tmp_path / "pages", random_runs(20, seed=5, connection_id="c1"))
    path = tmp_path / WAREHOUSE_FILE
    with open_warehouse(path) as warehouse:
        load_files([tmp_path / "pages"], warehouse)
    job = build_definitions(data_dir=tmp_path).resolve_job_def("report_job")
    assert job.execute_in_process().success
    with open_warehouse(path) as warehouse:  # an edit no build can see
        warehouse.con.execute("update failure_daily set failed_runs = 99")
    page = tmp_path / "reports" / "report.html"
    written = page.stat().st_mtime_ns

    assert job.execute_in_process().success
    assert page.stat().st_mtime_ns == written  # nothing changed: nothing rewritten
    assert _failed_runs(path) == {99}

    assert job.execute_in_process(run_config=full_build_run_config()).success
    assert _failed_runs(path) != {99}
    assert page.stat().st_mtime_ns != written
    parquet = pq.read_table(tmp_path / "reports" / "failure_daily.parquet")
    assert 99 not in parquet.column("failed_runs").to_pylist()


def _failed_runs(path: Path) -> set[int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {int(r[0]) for r in con.execute("select failed_runs from failure_daily").fetchall()}
