"""Read Bentley's error catalogue snapshot and put it in the warehouse as `error_catalog`.

The snapshot ships with the code (see snapshot/SOURCE.md), so a missing or malformed file
means someone edited it: that fails loudly, naming the file, rather than building reports
that silently lack descriptions and fixability.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from pipeline.errors import ITwinRunsError
from pipeline.transform.schema import ERROR_CATALOG
from pipeline.warehouse.ddl import create_table_sql
from pipeline.warehouse.statements import BATCH_TABLE, StatementRunner, transaction

SNAPSHOT_DIR = Path(__file__).resolve().parent / "snapshot"

# catalog name -> file inside the snapshot. A key in both is looked up in `exporter` first.
CATALOG_FILES: dict[str, str] = {
    "exporter": "exporter-errors/fatal-errors.json",
    "connector": "fatal-errors.json",
}

ERROR_CATALOG_TABLE = "error_catalog"
ERROR_CATALOG_KEY = ("catalog", "description_key")
ERROR_CATALOG_SCHEMA = ERROR_CATALOG


class CatalogError(ITwinRunsError):
    """A catalogue file is missing or not in the catalogue's shape; the message names it."""


@dataclass(frozen=True)
class CatalogEntry:
    """One catalogue error, keyed by the task error's `descriptionKey`."""

    catalog: str
    description_key: str
    description: str
    category: str
    can_user_fix: bool
    kb_article_link: str | None


@dataclass(frozen=True)
class Catalog:
    """One catalogue file: its systems with their phases, categories and errors."""

    name: str
    systems: dict[str, tuple[str, ...]]
    categories: tuple[str, ...]
    entries: tuple[CatalogEntry, ...]


def read_catalogs(snapshot_dir: Path = SNAPSHOT_DIR) -> tuple[Catalog, ...]:
    """Both catalogues, `exporter` first; raises CatalogError naming a bad file."""
    return tuple(_read(name, snapshot_dir / rel) for name, rel in CATALOG_FILES.items())


def error_catalog_table(snapshot_dir: Path = SNAPSHOT_DIR) -> pa.Table:
    """The `error_catalog` rows of both catalogues as an Arrow table."""
    entries = [e for catalog in read_catalogs(snapshot_dir) for e in catalog.entries]
    columns = {
        name: [getattr(entry, name) for entry in entries] for name in ERROR_CATALOG_SCHEMA.names
    }
    return pa.Table.from_pydict(columns, schema=ERROR_CATALOG_SCHEMA)


def replace_error_catalog(con: duckdb.DuckDBPyConnection, snapshot_dir: Path = SNAPSHOT_DIR) -> int:
    """Replace the `error_catalog` table with the snapshot's rows in one transaction.

    The files are read before the transaction starts, so a bad file leaves the table as it
    was. It opens its own transaction, so call it outside one. Returns the number of rows.
    """
    table = error_catalog_table(snapshot_dir)
    ddl = create_table_sql(
        ERROR_CATALOG_TABLE, ERROR_CATALOG_SCHEMA, ERROR_CATALOG_KEY, primary_key=True
    )
    statements = StatementRunner(con)  # refuses a table that would shadow BATCH_TABLE
    with transaction(con):
        statements.run("drop", f"DROP TABLE IF EXISTS {ERROR_CATALOG_TABLE}")
        statements.run("create", ddl)
        insert = f"INSERT INTO {ERROR_CATALOG_TABLE} SELECT * FROM {BATCH_TABLE}"
        statements.run("insert", insert, table)
    return int(table.num_rows)


def _read(name: str, path: Path) -> Catalog:
    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise CatalogError(
            f"error catalogue file {path} is missing: restore it from the project's "
            "sources (it ships with the code)"
        ) from None
    except orjson.JSONDecodeError as exc:
        raise CatalogError(f"error catalogue file {path} is not valid JSON: {exc}") from None
    try:
        return _parse(name, document)
    except (TypeError, KeyError, ValueError) as exc:
        raise CatalogError(
            f"error catalogue file {path} is not in the catalogue's shape: {exc}"
        ) from None


def _parse(name: str, document: Any) -> Catalog:
    if not isinstance(document, dict):
        raise TypeError("the top level must be an object")
    links = _mapping(document, "kbArticleLinks")
    errors = _mapping(document, "errors")
    systems = document.get("systems", [])
    categories = document.get("categories", [])
    if not isinstance(systems, list) or not isinstance(categories, list):
        raise TypeError("`systems` and `categories` must be lists")
    entries = tuple(_entry(name, key, fields, links) for key, fields in errors.items())
    return Catalog(
        name=name,
        systems={str(s["name"]): tuple(map(str, s["phases"])) for s in systems},
        categories=tuple(map(str, categories)),
        entries=entries,
    )


def _entry(name: str, key: str, fields: Any, links: dict[str, Any]) -> CatalogEntry:
    if not isinstance(fields, dict):
        raise TypeError(f"error {key!r} must be an object")
    description, category, fixable = (
        fields.get("description"),
        fields.get("categoryId"),
        fields.get("canUserFix"),
    )
    if not (isinstance(description, str) and isinstance(category, str)):
        raise TypeError(f"error {key!r} needs string `description` and `categoryId`")
    if not isinstance(fixable, bool):
        raise TypeError(f"error {key!r} needs a boolean `canUserFix`")
    link_id = fields.get("kbLinkId") or ""
    if link_id and link_id not in links:
        raise ValueError(f"error {key!r} names kbLinkId {link_id!r}, absent from kbArticleLinks")
    link = links[link_id] if link_id else None
    return CatalogEntry(name, key, description, category, fixable, str(link) if link else None)


def _mapping(document: dict[str, Any], field: str) -> dict[str, Any]:
    value = document.get(field)
    if not isinstance(value, dict):
        raise TypeError(f"`{field}` must be an object")
    return value
