"""DuckDB DDL derived from the Arrow schemas in pipeline.transform.schema."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from pipeline.transform.schema import CORE_TABLES, JSON_COLUMNS


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


def create_table_sql(name: str, schema: pa.Schema, key: tuple[str, ...]) -> str:
    cols = [f"{f.name} {duckdb_type(f)}{'' if f.nullable else ' NOT NULL'}" for f in schema]
    cols.append(f"PRIMARY KEY ({', '.join(key)})")
    return f"CREATE TABLE IF NOT EXISTS {name} (\n    " + ",\n    ".join(cols) + "\n)"


def create_core_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create runs, jobs, tasks and task_errors if they do not exist yet."""
    for name, (schema, key) in CORE_TABLES.items():
        con.execute(create_table_sql(name, schema, key))
