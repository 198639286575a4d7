"""DuckDB DDL derived from the Arrow schemas in pipeline.transform.schema.

The core tables carry no PRIMARY KEY constraint on purpose: an ART index on them makes
inserts and replacing runs several times slower and the file larger, and its memory
grows with the history. Key uniqueness is guaranteed by construction instead: the
flattener quarantines runs with repeated job or task ids and keeps one version per
run, and a load deletes a run's whole subtree before inserting it again; `raw_latest`
(one row per run) keeps an enforced key, and pipeline.warehouse.quality.duplicate_keys
checks the core tables.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from pipeline.transform.schema import BOOKKEEPING_TABLES, CORE_TABLES, JSON_COLUMNS

# Raw JSON compresses better with zstd and checkpoints faster than with DuckDB's
# default string compression; it is read rarely.
COLUMN_COMPRESSION = {("raw_runs", "payload"): "zstd", ("quarantine", "payload"): "zstd"}

# Bookkeeping tables small enough (one row per run or per connection) to enforce keys.
ENFORCED_KEYS = frozenset({"raw_latest", "full_passes", "connections", "error_catalog"})


def duckdb_type(field: pa.Field) -> str:
    t = field.type
    if field.name in JSON_COLUMNS:
        return "JSON"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_float64(t):
        return "DOUBLE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_timestamp(t) and t.tz is not None:
        return "TIMESTAMPTZ"
    raise TypeError(f"no DuckDB type mapped for {field.name}: {t}")


def create_table_sql(
    name: str, schema: pa.Schema, key: tuple[str, ...], *, primary_key: bool = False
) -> str:
    cols = [_column_sql(name, f) for f in schema]
    if primary_key and key:
        cols.append(f"PRIMARY KEY ({', '.join(key)})")
    return f"CREATE TABLE IF NOT EXISTS {name} (\n    " + ",\n    ".join(cols) + "\n)"


def _column_sql(table: str, field: pa.Field) -> str:
    sql = f"{field.name} {duckdb_type(field)}"
    if (table, field.name) in COLUMN_COMPRESSION:
        sql += f" USING COMPRESSION {COLUMN_COMPRESSION[table, field.name]}"
    return sql if field.nullable else f"{sql} NOT NULL"


def create_core_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create runs, jobs, tasks and task_errors if they do not exist yet."""
    for name, (schema, key) in CORE_TABLES.items():
        con.execute(create_table_sql(name, schema, key)).fetchall()


def create_all_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Core tables plus the bookkeeping tables (raw versions, quarantine, log, connections)."""
    existing = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary "
            "AND database_name = current_database() AND schema_name = current_schema()"
        ).fetchall()
    }
    tables = {**CORE_TABLES, **BOOKKEEPING_TABLES}
    for name, (schema, key) in tables.items():
        if name not in existing:  # skipping existing tables keeps read-only opens working
            sql = create_table_sql(name, schema, key, primary_key=name in ENFORCED_KEYS)
            con.execute(sql).fetchall()
    _create_lookup_index(con)


# Classifying a batch looks its runs up by run_id (see load_sql.STORED_VERSIONS); the
# primary key's index is on both key columns, which DuckDB does not scan for IN lists.
LOOKUP_INDEX = "raw_latest_run_id"


def _create_lookup_index(con: duckdb.DuckDBPyConnection) -> None:
    found = con.execute(
        "SELECT count(*) FROM duckdb_indexes() WHERE index_name = ? "
        "AND database_name = current_database()",
        [LOOKUP_INDEX],
    ).fetchall()
    if not found[0][0]:  # checked first, so read-only opens of a made warehouse work
        con.execute(f"CREATE INDEX {LOOKUP_INDEX} ON raw_latest (run_id)").fetchall()
