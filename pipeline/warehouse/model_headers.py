"""The declarations a model file's leading comment lines make, and the tables its SQL reads.

`-- depends_on: a, b` (checked against the tables the SQL reads, parsed with sqlglot),
`-- materialized: table|view` and `-- incremental: day|day_connection|run`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Literal, cast, get_args

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import traverse_scope

from pipeline.errors import ITwinRunsError

_DEPENDS_ON = re.compile(r"^--\s*depends_on\s*:(.*)$", re.IGNORECASE)
_MATERIALIZED = re.compile(r"^--\s*materialized\s*:\s*(\S*)", re.IGNORECASE)
_INCREMENTAL = re.compile(r"^--\s*incremental\s*:\s*(\S*)", re.IGNORECASE)
Incremental = Literal["day", "day_connection", "run"]


class ModelError(ITwinRunsError, ValueError):
    """A model file is malformed, its SQL fails, or the declared dependencies are wrong."""


def _header_lines(sql: str) -> Iterator[str]:
    """The file's leading comment lines: only they declare, so a body comment cannot."""
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            return
        yield stripped


def parse_depends_on(sql: str) -> tuple[str, ...]:
    """Names from `-- depends_on:` lines in the file's leading comment block."""
    names: list[str] = []
    for line in _header_lines(sql):
        match = _DEPENDS_ON.match(line)
        if match:
            names.extend(n.strip() for n in match.group(1).split(",") if n.strip())
    return tuple(dict.fromkeys(names))


def parse_materialized(sql: str) -> Literal["view", "table"] | None:
    """`-- materialized: table` (or `view`) from the header; None when not declared."""
    value = _declared(sql, _MATERIALIZED, "materialized", ("view", "table"))
    return cast(Literal["view", "table"] | None, value)


def parse_incremental(sql: str) -> Incremental | None:
    """`-- incremental: day` (or `run`) from the header; None when not declared."""
    return cast(
        Incremental | None, _declared(sql, _INCREMENTAL, "incremental", get_args(Incremental))
    )


def _declared(
    sql: str, pattern: re.Pattern[str], what: str, allowed: tuple[str, ...]
) -> str | None:
    """The value the first header line matching `pattern` declares, one of `allowed`."""
    for line in _header_lines(sql):
        match = pattern.match(line)
        if match:
            value = match.group(1).strip().lower()
            if value not in allowed:
                expected = f"{', '.join(allowed[:-1])} or {allowed[-1]}"
                raise ModelError(f"{what}: expected {expected}, got {value!r}")
            return value
    return None


@functools.lru_cache(maxsize=256)  # every model asset lists every model; parse each text once
def tables_read(sql: str) -> frozenset[str]:
    """The tables and views a model's SQL reads, CTE names excluded (parsed as DuckDB SQL).

    Scopes resolve names as DuckDB does, so `with tasks as (select * from tasks)` reads
    the table `tasks`; table functions such as read_parquet(...) name no table.
    """
    read: set[str] = set()
    for scope in traverse_scope(sqlglot.parse_one(sql, read="duckdb")):
        for source in scope.sources.values():
            if (
                isinstance(source, exp.Table)
                and isinstance(source.this, exp.Identifier)
                and source.name not in scope.cte_sources
            ):
                read.add(source.name.lower())  # DuckDB matches names case-insensitively
    return frozenset(read)


def dependency_mismatch(model_file: str, sql: str, declared: Iterable[str]) -> str | None:
    """What differs between `-- depends_on:` and the tables the SQL reads; None when equal."""
    try:
        read = tables_read(sql)
    except SqlglotError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{model_file}: cannot parse its SQL to check depends_on: {first}"
    undeclared = sorted(read - set(declared))
    unread = sorted(set(declared) - read)
    problems = []
    if undeclared:
        problems.append(f"reads {', '.join(undeclared)} without declaring it in depends_on")
    if unread:
        problems.append(f"declares {', '.join(unread)} in depends_on but does not read it")
    return f"{model_file}: {'; '.join(problems)}" if problems else None
