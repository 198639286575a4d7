"""Reading built models for the reports, tolerant of older warehouses.

A warehouse built before a model existed has no table for it: readers get None and leave
the section out. Rows are sorted in Python with `row.get`, so a column an older model
lacks sorts as missing instead of failing the query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import duckdb

Row = dict[str, Any]


def rows_of(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> list[Row]:
    result = con.execute(sql, list(params))
    columns = [d[0] for d in result.description or ()]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def has_relation(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute(
        "select count(*) from duckdb_tables() "
        "where table_name = ? and schema_name = current_schema() "
        "union all select count(*) from duckdb_views() "
        "where view_name = ? and schema_name = current_schema()",
        [name, name],
    ).fetchall()
    return any(n for (n,) in found)


def read_model(
    con: duckdb.DuckDBPyConnection,
    model: str,
    *,
    sort: Callable[[Row], Any] | None = None,
    limit: int | None = None,
) -> list[Row] | None:
    """All rows of `model` (sorted, cut to `limit`), or None when the model is not built."""
    if not has_relation(con, model):
        return None
    rows = rows_of(con, f'select * from "{model}"')
    if sort is not None:
        rows.sort(key=sort)
    return rows if limit is None else rows[:limit]


def number(row: Row, key: str) -> float:
    """A figure for sorting: missing or NULL counts as 0."""
    item = row.get(key)
    return float(item) if isinstance(item, int | float) and not isinstance(item, bool) else 0.0
