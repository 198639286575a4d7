"""The warning checks on hand-made warehouses: vocabulary drift, a spike on the latest day,
stuck runs named by connection; and the error_catalog asset."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.catalog import replace_error_catalog
from pipeline.defs.build_assets import error_catalog
from pipeline.defs.checks import no_stuck_runs
from pipeline.defs.finding_checks import latest_day_no_spike, vocabulary_in_catalog
from pipeline.defs.resources import WarehouseResource
from pipeline.warehouse.models import build_models
from pipeline.warehouse.store import open_warehouse
from tests.alerts.support import FAILURE_DAILY_DDL
from tests.support import load_runs
from tests.transform.builders import run


@pytest.fixture
def warehouse(tmp_path: Path) -> WarehouseResource:
    return WarehouseResource(database=str(tmp_path / "warehouse.duckdb"))


def add_failed_task(
    con: duckdb.DuckDBPyConnection,
    task: str,
    key: str | None,
    system: str | None,
    phase: str | None,
    result: str = "Error",
) -> None:
    con.execute(
        "insert into tasks (connection_id, run_id, job_id, task_id, state, result) "
        "values ('c', 'r', 'j', ?, 'Completed', ?)",
        [task, result],
    )
    con.execute(
        "insert into task_errors (connection_id, run_id, job_id, task_id, description_key, "
        "system, phase) values ('c', 'r', 'j', ?, ?, ?, ?)",
        [task, key, system, phase],
    )


def test_vocabulary_drift_names_unknown_keys_systems_and_phases_with_counts(
    warehouse: WarehouseResource,
) -> None:
    with warehouse.open() as store:
        con = store.con
        replace_error_catalog(con)
        # Known: a key of each catalogue, `Exporter` for the catalogue's `exporter`.
        add_failed_task(con, "t1", "FailedToExport", "Exporter", "export_file")
        add_failed_task(con, "t2", "briefcase_deleted", "connector", "schema", "TimedOut")
        add_failed_task(con, "t3", None, None, None)
        # Unknown, twice and once; a succeeded task's error row is no failed task.
        add_failed_task(con, "t4", "ExportQuotaExceeded", "quota_service", "export_file")
        add_failed_task(con, "t5", "ExportQuotaExceeded", "exporter", "warp_drive")
        add_failed_task(con, "t6", "NotCounted", "nowhere", "nothing", result="Success")
        build_models(con)  # the check reads the models, built before it in every job
    check = vocabulary_in_catalog(warehouse=warehouse)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    listed = check.metadata["values"].value
    assert listed.splitlines() == [
        "- description key `ExportQuotaExceeded`: 2 failed tasks",
        "- phase `warp_drive`: 1 failed tasks",
        "- system `quota_service`: 1 failed tasks",
    ]
    assert check.metadata["unknown_values"].value == 3
    assert "NotCounted" not in listed


def test_vocabulary_in_the_catalogues_passes(warehouse: WarehouseResource) -> None:
    with warehouse.open() as store:
        replace_error_catalog(store.con)
        add_failed_task(store.con, "t1", "FailedToExport", "EXPORTER", "Export_File")
        build_models(store.con)
    assert vocabulary_in_catalog(warehouse=warehouse).passed


def add_day(con: duckdb.DuckDBPyConnection, day: date, spike: bool) -> None:
    con.execute(
        "insert into failure_daily values (?, 10, 1, 0.1, 0.02, 0.4, 600, 48, 0.08, 0.06, 0.11, "
        "17851, 536, 0.03, 0.028, 0.032, ?)",
        [day, spike],
    )


def test_a_spike_on_the_latest_day_warns_naming_the_day_rate_and_baseline(
    warehouse: WarehouseResource,
) -> None:
    with warehouse.get_connection() as con:
        con.execute(FAILURE_DAILY_DDL)
        add_day(con, date(2026, 12, 3), spike=False)
        add_day(con, date(2026, 12, 4), spike=True)
    check = latest_day_no_spike(warehouse=warehouse)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    meta = {k: v.value for k, v in check.metadata.items()}
    assert meta == {
        "day": "2026-12-04",
        "task_failure_rate": "8.0% (6.0–11.0%) of 600 completed tasks",
        "baseline_28_days": "3.0% (2.8–3.2%) of 17851 completed tasks",
    }


def test_a_spike_before_the_latest_day_does_not_warn(warehouse: WarehouseResource) -> None:
    with warehouse.get_connection() as con:
        con.execute(FAILURE_DAILY_DDL)
        add_day(con, date(2026, 12, 3), spike=True)
        add_day(con, date(2026, 12, 4), spike=False)
    assert latest_day_no_spike(warehouse=warehouse).passed


def test_a_stuck_run_is_named_by_its_connection(warehouse: WarehouseResource) -> None:
    old = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    with warehouse.open() as store:
        stuck = run("r-stuck", state="Executing", result="")
        stuck["startDateTime"] = old
        load_runs(store, [stuck, run("r-done")], conn="c-blocked")
        store.bookkeeping.connections.save_connections(
            [
                {
                    "connection_id": "c-blocked",
                    "display_name": "Tower | B",
                    "imodel_id": "im-9",
                    "fetched_at": datetime.now(UTC),
                }
            ]
        )
    check = no_stuck_runs(warehouse=warehouse)
    assert not check.passed and check.metadata["stuck_runs"].value == 1
    table = check.metadata["connections"].value
    assert "| Tower \\| B | c-blocked | im-9 | 1 |" in table


def test_the_error_catalog_asset_loads_the_catalogue_and_names_connections_with_runs(
    warehouse: WarehouseResource,
) -> None:
    with warehouse.open() as store:
        load_runs(store, [run("r1")], conn="from-a-file")
    result = dg.materialize([error_catalog], resources={"warehouse": warehouse})
    assert result.success
    (mat,) = result.asset_materializations_for_node("error_catalog")
    assert mat.metadata["connections_added"].value == 1
    with open_warehouse(warehouse.path) as store:
        count = store.con.execute("select count(*) from error_catalog").fetchone()
        assert count is not None and count[0] == mat.metadata["row_count"].value > 0
        assert store.con.execute("select connection_id from connections").fetchall() == [
            ("from-a-file",)
        ]
