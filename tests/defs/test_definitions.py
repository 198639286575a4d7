"""The Dagster code location: its graph, schedule and resource settings."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pipeline.definitions import build_definitions
from pipeline.defs.resources import ITwinApiResource
from pipeline.warehouse.models import list_models, report_models


def test_one_asset_per_sql_file_with_declared_deps(tmp_path: Path) -> None:
    defs = build_definitions(data_dir=tmp_path)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    models = list_models()
    assert {m.name for m in models} <= keys
    for model in models:
        parents = {k.to_user_string() for k in graph.get(dg.AssetKey(model.name)).parent_keys}
        assert parents == {*model.deps, *model.sources}, model.name
    for report in ("parquet_reports", "html_report"):
        parents = {k.to_user_string() for k in graph.get(dg.AssetKey(report)).parent_keys}
        assert parents == set(report_models())


def test_schedule_is_hourly_unless_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ITWIN_RUNS_SCHEDULE_CRON", raising=False)
    schedule = build_definitions(data_dir=tmp_path).resolve_schedule_def("collect_schedule")
    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.job_name == "collect_job"
    monkeypatch.setenv("ITWIN_RUNS_SCHEDULE_CRON", "*/15 * * * *")
    schedule = build_definitions(data_dir=tmp_path).resolve_schedule_def("collect_schedule")
    assert schedule.cron_schedule == "*/15 * * * *"


def test_blocking_checks_guard_the_models(tmp_path: Path) -> None:
    defs = build_definitions(data_dir=tmp_path)
    graph = defs.resolve_asset_graph()
    blocking = {
        (key.asset_key.to_user_string(), key.name)
        for key in graph.asset_check_keys
        if graph.get_check_spec(key).blocking
    }
    assert {
        ("runs", "unique_key"),
        ("tasks", "no_orphans"),
        ("task_errors", "no_orphans"),
    } <= blocking


def test_resource_settings_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("connection_ids: [from-file]\nscope: file-scope\n")
    monkeypatch.setenv("ITWIN_CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("ITWIN_SCOPE", "env-scope")
    resource = ITwinApiResource(
        client_id="svc", config_file=str(cfg), base_url="http://127.0.0.1:1"
    )
    settings = resource.settings()
    assert settings.connection_ids == ("from-file",)
    assert settings.scope == "env-scope"
    assert settings.base_url == "http://127.0.0.1:1"
    assert settings.client_secret is not None and settings.client_secret.reveal() == "env-secret"
    assert resource.settings(connection_ids=["launchpad"]).connection_ids == ("launchpad",)


def test_loading_the_definitions_creates_no_folder(tmp_path: Path) -> None:
    data_dir = tmp_path / "not-yet"
    build_definitions(data_dir=data_dir)
    assert not data_dir.exists()  # made when the warehouse is first opened


def test_the_models_step_builds_only_the_selected_models(tmp_path: Path) -> None:
    from pipeline.defs.assets import MODELS_OP
    from pipeline.warehouse.store import open_warehouse
    from tests.support import load_runs
    from tests.transform.builders import random_runs

    defs = build_definitions(data_dir=tmp_path)
    with open_warehouse(tmp_path / "warehouse.duckdb") as warehouse:
        load_runs(warehouse, random_runs(6, seed=3))
    job = defs.resolve_implicit_global_asset_job_def()
    wanted = [dg.AssetKey("stg_runs"), dg.AssetKey("run_duration_daily")]
    result = job.execute_in_process(asset_selection=wanted)
    assert result.success
    mats = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.asset_materializations_for_node(MODELS_OP)
    }
    assert set(mats) == {"stg_runs", "run_duration_daily"}
    assert "row_count" not in mats["stg_runs"]  # a view: counting it would run its query
    with open_warehouse(tmp_path / "warehouse.duckdb") as warehouse:
        built = warehouse.con.execute("select count(*) from run_duration_daily").fetchone()
        others = warehouse.con.execute(
            "select count(*) from duckdb_tables() where table_name = 'failure_daily'"
        ).fetchone()
    assert built is not None and mats["run_duration_daily"]["row_count"].value == built[0]
    assert others == (0,)  # not selected: not built
