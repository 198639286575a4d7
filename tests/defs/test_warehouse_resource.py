"""The warehouse resource: Dagster's steps open the file the way the loader does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.definitions import WAREHOUSE_FILE, build_definitions
from pipeline.defs.resources import WarehouseResource
from pipeline.sources.files import load_files
from pipeline.transform.schema import CORE_TABLES
from pipeline.warehouse.store import WRITE_ROW_GROUP_SIZE, WarehouseLockedError, open_warehouse
from tests.support import start_paused_load, write_pages
from tests.transform.builders import random_runs

LOADED_TABLES = (*CORE_TABLES, "raw_runs")


def _storage(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Where each column segment of the loaded tables lies in the file (moves when rewritten)."""
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            table: con.execute(
                "SELECT row_group_id, column_id, segment_id, count, block_id, block_offset "
                f"FROM pragma_storage_info('{table}') ORDER BY ALL"
            ).fetchall()
            for table in LOADED_TABLES
        }


def test_building_the_models_leaves_the_loaded_tables_as_written(tmp_path: Path) -> None:
    # A connection with DuckDB's default row group size merged the loader's smaller row
    # groups on its first checkpoint: every table rewritten, the file ~1.8x its size.
    runs = random_runs(5000, seed=3, connection_id="c1")
    pages = tmp_path / "pages"
    write_pages(pages, runs, size=500)
    path = tmp_path / WAREHOUSE_FILE
    with open_warehouse(path) as warehouse:
        assert load_files([pages], warehouse).runs_loaded == 5000
    before = _storage(path)
    row_groups = {row[0] for row in before["tasks"]}
    assert len(row_groups) >= 2  # more tasks than one row group holds
    assert max(row[3] for row in before["tasks"]) == WRITE_ROW_GROUP_SIZE

    defs = build_definitions(data_dir=tmp_path)
    result = defs.resolve_job_def("report_job").execute_in_process(raise_on_error=False)

    assert result.success
    assert _storage(path) == before
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM failure_rate_by_error_code").fetchall()[0][0] > 0


def test_a_step_waits_for_another_process_then_names_it(tmp_path: Path) -> None:
    path = tmp_path / WAREHOUSE_FILE
    duckdb.connect(str(path)).close()
    child = start_paused_load(path, "classify")  # holds the file, paused inside a load
    try:
        resource = WarehouseResource(database=str(path), lock_timeout_s=0.5)
        with pytest.raises(WarehouseLockedError) as caught, resource.get_connection():
            pass
        assert str(child.pid) in str(caught.value)
    finally:
        child.kill()
        child.wait(timeout=30)
    with WarehouseResource(database=str(path)).get_connection() as con:
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(0,)]
