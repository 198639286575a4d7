"""The shipped error catalogue: its rows against hand-checked entries, its table, bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest

from pipeline.catalog import (
    ERROR_CATALOG_SCHEMA,
    SNAPSHOT_DIR,
    CatalogError,
    error_catalog_table,
    read_catalogs,
    replace_error_catalog,
)

KB = "https://bentleysystems.service-now.com/community?id=kb_article"


def rows_by_key(table: pa.Table) -> dict[tuple[str, str], dict[str, object]]:
    return {(r["catalog"], r["description_key"]): r for r in table.to_pylist()}


def test_counts_per_catalogue_match_the_source_note() -> None:
    table = error_catalog_table()
    assert table.schema == ERROR_CATALOG_SCHEMA
    assert table.column_names == [
        "catalog",
        "description_key",
        "description",
        "category",
        "can_user_fix",
        "kb_article_link",
    ]
    rows = table.to_pylist()
    exporter = [r for r in rows if r["catalog"] == "exporter"]
    connector = [r for r in rows if r["catalog"] == "connector"]
    assert (len(exporter), sum(r["can_user_fix"] for r in exporter)) == (36, 9)
    assert (len(connector), sum(r["can_user_fix"] for r in connector)) == (112, 47)
    assert len(rows) == 148 == len({(r["catalog"], r["description_key"]) for r in rows})


def test_known_entries_resolve_their_knowledge_base_links() -> None:
    rows = rows_by_key(error_catalog_table())
    assert rows["exporter", "ExcessiveElements"] == {
        "catalog": "exporter",
        "description_key": "ExcessiveElements",
        "description": (
            "The requested export contained more than 1.5 million objects and the exporter is "
            "unable to export this iModel. Please try again using a saved view that has fewer "
            "elements."
        ),
        "category": "download_imodel",
        "can_user_fix": True,
        "kb_article_link": f"{KB}_view&sysparm_article=KB0041879#EXP_003",
    }
    # An empty kbLinkId is no link at all.
    orchestration = rows["connector", "RunOrchestrationError"]
    assert orchestration["description"] == "Failed to orchestrate Run."
    assert orchestration["can_user_fix"] is False
    assert orchestration["kb_article_link"] is None
    assert rows["connector", "AccessToDataSourceDenied"]["kb_article_link"] == (
        f"{KB}&sysparm_article=KB0098347"
    )
    # A key in both catalogues keeps both rows, each with its own text.
    assert rows["exporter", "IModelNotFound"]["description"].startswith("iModel not found.")
    assert rows["connector", "IModelNotFound"]["description"] == "iModel was not found."


def test_systems_and_phases_are_read_for_the_vocabulary() -> None:
    exporter, connector = read_catalogs()
    assert exporter.name == "exporter" and connector.name == "connector"
    assert "export_file" in exporter.systems["exporter"]
    assert set(connector.systems) == {"cloud_orchestrator", "edge_orchestrator", "connector"}
    assert "internal_server_error" in connector.systems["cloud_orchestrator"]
    assert "network" in connector.categories


def test_replace_writes_the_rows_and_replaces_rather_than_appends() -> None:
    con = duckdb.connect()
    assert replace_error_catalog(con) == 148
    con.execute("insert into error_catalog values ('exporter', 'Stale', 'x', 'other', false, null)")
    assert replace_error_catalog(con) == 148
    count, fixable = con.execute(
        "select count(*), count(*) filter (where can_user_fix) from error_catalog"
    ).fetchone() or (0, 0)
    assert (count, fixable) == (148, 56)
    types = dict(
        con.execute(
            "select column_name, data_type from duckdb_columns() where table_name = 'error_catalog'"
        ).fetchall()
    )
    assert types["can_user_fix"] == "BOOLEAN" and types["kb_article_link"] == "VARCHAR"


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    copy = tmp_path / "snapshot"
    shutil.copytree(SNAPSHOT_DIR, copy)
    return copy


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda p: p.unlink(), "is missing"),
        (lambda p: p.write_text('{"errors": {'), "is not valid JSON"),
        (lambda p: p.write_text("[1, 2]"), "not in the catalogue's shape"),
        (lambda p: p.write_text('{"kbArticleLinks": {}, "errors": []}'), "`errors` must be"),
        (
            lambda p: p.write_text(
                '{"kbArticleLinks": {}, "errors": {"K": {"description": "d", '
                '"categoryId": "c", "canUserFix": "yes"}}}'
            ),
            "boolean `canUserFix`",
        ),
        (
            lambda p: p.write_text(
                '{"kbArticleLinks": {}, "errors": {"K": {"description": "d", '
                '"categoryId": "c", "canUserFix": true, "kbLinkId": "Nowhere"}}}'
            ),
            "absent from kbArticleLinks",
        ),
    ],
    ids=[
        "missing",
        "invalid-json",
        "not-an-object",
        "errors-not-an-object",
        "bad-type",
        "bad-link",
    ],
)
def test_a_bad_file_fails_naming_it_and_leaves_the_table_alone(
    snapshot: Path, damage: object, said: str
) -> None:
    con = duckdb.connect()
    replace_error_catalog(con)
    target = snapshot / "exporter-errors" / "fatal-errors.json"
    damage(target)  # type: ignore[operator]
    with pytest.raises(CatalogError, match=said) as caught:
        replace_error_catalog(con, snapshot)
    assert str(target) in str(caught.value)
    assert con.execute("select count(*) from error_catalog").fetchone() == (148,)


def test_the_snapshot_ships_with_its_licence_and_source() -> None:
    names = {p.relative_to(SNAPSHOT_DIR).as_posix() for p in SNAPSHOT_DIR.rglob("*")}
    assert {
        "LICENSE.txt",
        "SOURCE.md",
        "fatal-errors.json",
        "exporter-errors/fatal-errors.json",
    } <= names
    source = (SNAPSHOT_DIR / "SOURCE.md").read_text()
    assert "iTwin/connector-errors" in source and "ace3857" in source and "2025-12-18" in source
    assert "Attribution 3.0" in (SNAPSHOT_DIR / "LICENSE.txt").read_text()
    # Unmodified copies: the counts in SOURCE.md hold for the files themselves.
    document = orjson.loads((SNAPSHOT_DIR / "fatal-errors.json").read_bytes())
    assert len(document["errors"]) == 112
