"""Discovering sql/ by layer, checking declared dependencies, building in dependency order."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse.builds import STATE_TABLES
from pipeline.warehouse.ddl import create_core_tables
from pipeline.warehouse.export import export_parquet
from pipeline.warehouse.model_headers import (
    ModelError,
    dependency_mismatch,
    parse_depends_on,
    parse_materialized,
    tables_read,
)
from pipeline.warehouse.models import LAYERS, SQL_DIR, build_models, list_models, report_models
from tests.models.builders import Warehouse

MODEL_FILES = sorted(p for layer in LAYERS for p in (SQL_DIR / layer).glob("*.sql"))


def write_models(tmp_path: Path, files: dict[str, str]) -> Path:
    """Files named `layer/name`: written as tmp_path/layer/name.sql."""
    for name, body in files.items():
        path = tmp_path / f"{name}.sql"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return tmp_path


def test_parse_depends_on_reads_only_the_header() -> None:
    sql = (
        "-- grain: one row per thing\n"
        "-- depends_on: a, b\n"
        "--depends_on:c\n"
        "select 1\n"
        "-- depends_on: not_a_header\n"
    )
    assert parse_depends_on(sql) == ("a", "b", "c")


def test_project_models_are_ordered_and_classified_by_folder() -> None:
    models = list_models()
    names = [m.name for m in models]
    position = {name: i for i, name in enumerate(names)}
    for model in models:
        assert all(position[dep] < position[model.name] for dep in model.deps)
        assert model.path == SQL_DIR / model.kind / f"{model.name}.sql"
        assert model.is_report == (model.kind == "marts")
    assert report_models() == tuple(sorted(m.name for m in models if m.kind == "marts"))
    assert {"failure_rate_by_error_code", "failure_daily"} <= set(report_models())
    sources = {m.name: m.sources for m in models}
    assert sources["stg_runs"] == ("runs",)
    # tables other parts of the pipeline fill are sources too, so Dagster shows the lineage
    assert sources["stg_connections"] == ("connections",)
    assert sources["stg_error_catalog"] == ("error_catalog",)
    assert sources["stg_run_versions"] == ("raw_runs",)
    assert all(m.name.startswith("stg_") for m in models if m.kind == "staging")
    assert all(m.name.startswith("int_") for m in models if m.kind == "intermediate")


def test_the_project_has_model_files_in_every_layer() -> None:
    assert {path.parent.name for path in MODEL_FILES} == set(LAYERS)


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_model_file_states_its_grain_and_declares_what_it_reads(path: Path) -> None:
    sql = path.read_text()
    assert sql.startswith("-- grain: "), path
    assert dependency_mismatch(path.name, sql, parse_depends_on(sql)) is None


def test_tables_read_ignores_cte_names_but_not_a_table_a_cte_shadows() -> None:
    sql = (
        "with tasks as (select * from tasks), "
        "counted as (select run_id, count(*) as n from tasks group by run_id) "
        "select * from counted join stg_runs using (run_id) "
        "where run_id in (select run_id from task_errors)"
    )
    assert tables_read(sql) == {"tasks", "stg_runs", "task_errors"}
    assert tables_read("select * from read_parquet('x.parquet')") == set()
    assert tables_read('select * from STG_Runs join "Tasks" using (run_id)') == {
        "stg_runs",
        "tasks",
    }
    pivoted = "with t as (select 1 as a, 2 as b) select * from t unpivot (v for d in (a, b))"
    assert tables_read(pivoted) == set()


def test_dependency_mismatch_names_the_file_and_both_directions() -> None:
    sql = "-- depends_on: runs, jobs\nselect * from runs join tasks using (run_id)"
    message = dependency_mismatch("staging/stg_x.sql", sql, parse_depends_on(sql))
    assert message == (
        "staging/stg_x.sql: reads tasks without declaring it in depends_on; "
        "declares jobs in depends_on but does not read it"
    )
    broken = dependency_mismatch("marts/m.sql", "select * from (", ())
    assert broken is not None and broken.startswith("marts/m.sql: cannot parse its SQL")


def test_a_model_reading_an_undeclared_table_fails_to_load(tmp_path: Path) -> None:
    sql_dir = write_models(
        tmp_path,
        {
            "staging/stg_a": "-- depends_on: runs\nselect * from runs",
            "marts/report_b": "-- depends_on: stg_a\nselect * from stg_a join tasks using (run_id)",
        },
    )
    with pytest.raises(ModelError, match=r"marts/report_b\.sql: reads tasks without declaring"):
        list_models(sql_dir)
    con = duckdb.connect()
    create_core_tables(con)
    with pytest.raises(ModelError, match=r"marts/report_b\.sql"):
        build_models(con, sql_dir=sql_dir)


def test_a_file_outside_the_layer_folders_is_refused(tmp_path: Path) -> None:
    sql_dir = write_models(tmp_path, {"stray": "select 1 as x"})
    with pytest.raises(ModelError, match=r"stray\.sql in .*: a model lives in staging/"):
        list_models(sql_dir)


def test_one_name_in_two_layers_is_refused(tmp_path: Path) -> None:
    sql_dir = write_models(tmp_path, {"staging/x": "select 1", "marts/x": "select 1"})
    with pytest.raises(ModelError, match="x: defined in both staging/ and marts/"):
        list_models(sql_dir)


def test_a_new_sql_file_in_marts_is_a_new_report(tmp_path: Path) -> None:
    """Adding a report needs no Python: it is built as a table and exported as Parquet."""
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "marts" / "failed_runs_by_result.sql").write_text(
        "-- grain: one row per run result among failed runs\n"
        "-- depends_on: stg_runs\n"
        "select run_result, count(*) as runs from stg_runs where is_failed group by run_result\n"
    )
    assert "failed_runs_by_result" in report_models(sql_dir)
    con = Warehouse.empty().con
    con.execute(
        "insert into runs (connection_id, run_id, state, result) "
        "values ('c', 'r1', 'Completed', 'Error'), ('c', 'r2', 'Completed', 'Succeeded')"
    )
    assert build_models(con, sql_dir=sql_dir)["failed_runs_by_result"] == 1
    paths = export_parquet(con, tmp_path / "reports", sql_dir=sql_dir)
    assert set(paths) == set(report_models(sql_dir))
    assert paths["failed_runs_by_result"].exists()
    kind = con.execute(
        "select table_type from information_schema.tables where table_name = ?",
        ["failed_runs_by_result"],
    ).fetchall()
    assert kind == [("BASE TABLE",)]


def test_order_follows_declared_deps_not_file_names(tmp_path: Path) -> None:
    sql_dir = write_models(
        tmp_path,
        {
            "staging/a_last": "-- depends_on: z_first\nselect * from z_first",
            "staging/z_first": "select 1 as x",
        },
    )
    assert [m.name for m in list_models(sql_dir)] == ["z_first", "a_last"]


def test_cycle_names_the_files(tmp_path: Path) -> None:
    sql_dir = write_models(
        tmp_path,
        {
            "staging/one": "-- depends_on: two\nselect * from two",
            "staging/two": "-- depends_on: one\nselect * from one",
            "staging/free": "select 1",
        },
    )
    with pytest.raises(ModelError, match=r"cycle among sql/staging/one\.sql, sql/staging/two\.sql"):
        list_models(sql_dir)


def test_unknown_dependency_names_the_file(tmp_path: Path) -> None:
    sql_dir = write_models(tmp_path, {"staging/one": "-- depends_on: runs, nowhere\nselect 1"})
    with pytest.raises(ModelError, match=r"staging/one\.sql: unknown dependency nowhere"):
        list_models(sql_dir)


def test_self_dependency_is_an_error(tmp_path: Path) -> None:
    sql_dir = write_models(tmp_path, {"staging/one": "-- depends_on: one\nselect 1"})
    with pytest.raises(ModelError, match=r"one\.sql"):
        list_models(sql_dir)


def test_build_selected_models_only() -> None:
    con = duckdb.connect()
    create_core_tables(con)
    assert build_models(con, ["stg_runs"]) == {"stg_runs": None}  # a view is not counted
    built = con.execute(
        "select table_name, table_type from information_schema.tables "
        "where table_name not in ('runs', 'jobs', 'tasks', 'task_errors')"
    ).fetchall()
    assert [row for row in built if row[0] not in STATE_TABLES] == [("stg_runs", "VIEW")]
    with pytest.raises(ModelError, match="no such model: nope"):
        build_models(con, ["nope"])


def test_reports_are_tables() -> None:
    con = Warehouse.empty().build()
    kinds = dict(
        con.execute("select table_name, table_type from information_schema.tables").fetchall()
    )
    assert all(kinds[name] == "BASE TABLE" for name in report_models())
    # Staging: views (incremental builds read them restricted to the changed days).
    assert kinds["stg_runs"] == "VIEW"
    assert kinds["stg_tasks"] == "VIEW"
    # The day-grain layer and the all-time roll-up over it are each read by several marts.
    assert kinds["int_daily_connection"] == "BASE TABLE"
    assert kinds["int_daily_dimension"] == "BASE TABLE"
    assert kinds["int_failure_rate_by_dimension"] == "BASE TABLE"


def test_parse_materialized_reads_only_the_header() -> None:
    assert parse_materialized("-- grain: x\n-- materialized: table (why)\nselect 1") == "table"
    assert parse_materialized("-- Materialized:VIEW\nselect 1") == "view"
    assert parse_materialized("-- grain: x\nselect 1\n-- materialized: table") is None
    with pytest.raises(ModelError, match="expected view or table, got 'tabel'"):
        parse_materialized("-- materialized: tabel\nselect 1")


def test_a_model_switching_between_view_and_table_is_rebuilt(tmp_path: Path) -> None:
    con = duckdb.connect()
    create_core_tables(con)
    for kind, expected in (("view", "VIEW"), ("table", "BASE TABLE"), ("view", "VIEW")):
        sql_dir = write_models(
            tmp_path, {"staging/stg_x": f"-- materialized: {kind}\nselect 1 as one"}
        )
        assert build_models(con, sql_dir=sql_dir) == {"stg_x": 1 if kind == "table" else None}
        rows = con.execute(
            "select table_type from information_schema.tables where table_name = 'stg_x'"
        ).fetchall()
        assert rows == [(expected,)]


def test_a_failing_model_rolls_back_the_whole_build(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("create table good as select 'old' as v")
    sql_dir = write_models(
        tmp_path,
        {
            "staging/good": "select 'new' as v",
            "marts/zbad": "-- depends_on: good\nselect error('this model fails') as v from good",
        },
    )
    with pytest.raises(ModelError, match=r"marts/zbad\.sql"):
        build_models(con, sql_dir=sql_dir)
    assert con.execute("select v from good").fetchall() == [("old",)]


def test_macros_are_created_before_the_models_that_call_them(tmp_path: Path) -> None:
    sql_dir = write_models(
        tmp_path,
        {
            "macros/double_it": "create or replace macro double_it(x) as x * 2;",
            "marts/doubled": "select double_it(21) as answer",
        },
    )
    con = duckdb.connect()
    assert build_models(con, sql_dir=sql_dir) == {"doubled": 1}
    assert con.execute("select answer from doubled").fetchall() == [(42,)]


def test_a_broken_macro_names_its_file_and_builds_nothing(tmp_path: Path) -> None:
    sql_dir = write_models(
        tmp_path,
        {"macros/broken": "create or replace macro broken(x) as x +;", "marts/m": "select 1"},
    )
    con = duckdb.connect()
    with pytest.raises(ModelError, match=r"sql/macros/broken\.sql"):
        build_models(con, sql_dir=sql_dir)
    assert con.execute("select count(*) from information_schema.tables").fetchall() == [(0,)]
