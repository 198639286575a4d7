"""Discovering sql/, parsing declared dependencies and building in dependency order."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse.ddl import create_core_tables
from pipeline.warehouse.models import (
    REPORT_MODELS,
    ModelError,
    build_models,
    list_models,
    parse_depends_on,
    parse_materialized,
)


def write_models(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        (tmp_path / f"{name}.sql").write_text(body)
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


def test_project_models_are_ordered_and_classified() -> None:
    models = list_models()
    names = [m.name for m in models]
    position = {name: i for i, name in enumerate(names)}
    for model in models:
        assert all(position[dep] < position[model.name] for dep in model.deps)
        assert model.kind == ("report" if model.name in REPORT_MODELS else "staging")
        assert model.path.name == f"{model.name}.sql"
    assert set(REPORT_MODELS) <= set(names)
    assert {m.name: m.sources for m in models}["stg_runs"] == ("runs",)


def test_every_model_file_states_its_grain_first() -> None:
    for model in list_models():
        assert model.sql.startswith("-- grain: "), model.path.name


def test_order_follows_declared_deps_not_file_names(tmp_path: Path) -> None:
    sql_dir = write_models(
        tmp_path,
        {"a_last": "-- depends_on: z_first\nselect 1 as x", "z_first": "select 1 as x"},
    )
    assert [m.name for m in list_models(sql_dir)] == ["z_first", "a_last"]


def test_cycle_names_the_files(tmp_path: Path) -> None:
    sql_dir = write_models(
        tmp_path,
        {
            "one": "-- depends_on: two\nselect 1",
            "two": "-- depends_on: one\nselect 1",
            "free": "select 1",
        },
    )
    with pytest.raises(ModelError, match=r"cycle among one\.sql, two\.sql"):
        list_models(sql_dir)


def test_unknown_dependency_names_the_file(tmp_path: Path) -> None:
    sql_dir = write_models(tmp_path, {"one": "-- depends_on: runs, nowhere\nselect 1"})
    with pytest.raises(ModelError, match=r"one\.sql: unknown dependency nowhere"):
        list_models(sql_dir)


def test_self_dependency_is_an_error(tmp_path: Path) -> None:
    sql_dir = write_models(tmp_path, {"one": "-- depends_on: one\nselect 1"})
    with pytest.raises(ModelError, match=r"one\.sql"):
        list_models(sql_dir)


def test_build_selected_models_only() -> None:
    con = duckdb.connect()
    create_core_tables(con)
    assert build_models(con, ["stg_runs"]) == {"stg_runs": 0}
    assert con.execute(
        "select table_name, table_type from information_schema.tables "
        "where table_name not in ('runs', 'jobs', 'tasks', 'task_errors')"
    ).fetchall() == [("stg_runs", "VIEW")]
    with pytest.raises(ModelError, match="no such model: nope"):
        build_models(con, ["nope"])


def test_reports_are_tables() -> None:
    con = duckdb.connect()
    create_core_tables(con)
    build_models(con)
    kinds = dict(
        con.execute("select table_name, table_type from information_schema.tables").fetchall()
    )
    assert all(kinds[name] == "BASE TABLE" for name in REPORT_MODELS)
    # Staging: views, except the ones read by several models, declared tables.
    assert kinds["stg_runs"] == "VIEW"
    assert kinds["stg_tasks"] == "BASE TABLE"
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
        sql_dir = write_models(tmp_path, {"stg_x": f"-- materialized: {kind}\nselect 1 as one"})
        assert build_models(con, sql_dir=sql_dir) == {"stg_x": 1}
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
            "good": "select 'new' as v",
            "zbad": "-- depends_on: good\nselect * from missing_table",
        },
    )
    with pytest.raises(ModelError, match=r"zbad\.sql"):
        build_models(con, sql_dir=sql_dir)
    assert con.execute("select v from good").fetchall() == [("old",)]
