"""Run the SQL models in `sql/`: one file is one model, ordered by the dependencies it declares.

A model file starts with comment lines; `-- depends_on: a, b` names the models (or core
tables) it reads. Staging models (every model that is not a report) become views unless
the header says `-- materialized: table`; the report models become tables. One
`build_models` call is one transaction: a failing model leaves every model as it was,
so readers never see a half-rebuilt set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb

from pipeline.transform.schema import CORE_TABLES

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

REPORT_MODELS: tuple[str, ...] = (
    "failure_rate_by_error_code",
    "failure_rate_by_phase",
    "failure_rate_by_system",
    "failure_rate_by_connection",
    "failure_daily",
)

SOURCE_TABLES: frozenset[str] = frozenset(CORE_TABLES)

ModelKind = Literal["staging", "report"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_DEPENDS_ON = re.compile(r"^--\s*depends_on\s*:(.*)$", re.IGNORECASE)
_MATERIALIZED = re.compile(r"^--\s*materialized\s*:\s*(\S*)", re.IGNORECASE)


class ModelError(ValueError):
    """A model file is malformed, or the declared dependencies do not form a DAG."""


@dataclass(frozen=True)
class Model:
    name: str
    path: Path
    deps: tuple[str, ...]
    """Other models this one reads (its upstream assets)."""
    sources: tuple[str, ...]
    """Core tables this one reads directly (runs, jobs, tasks, task_errors)."""
    kind: ModelKind
    sql: str
    declared_materialization: Literal["view", "table"] | None = None

    @property
    def materialization(self) -> Literal["view", "table"]:
        """Report models are tables; staging models views unless the file says `table`.

        A staging model read by several others (stg_tasks: a join over every task) is
        declared a table, so it is computed once per build rather than once per reader.
        """
        if self.kind == "report":
            return "table"
        return self.declared_materialization or "view"


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
    for line in _header_lines(sql):
        match = _MATERIALIZED.match(line)
        if match:
            value = match.group(1).strip().lower()
            if value not in ("view", "table"):
                raise ModelError(f"materialized: expected view or table, got {value!r}")
            return "table" if value == "table" else "view"
    return None


def _read_model(path: Path, model_names: set[str]) -> Model:
    name = path.stem
    sql = path.read_text(encoding="utf-8")
    declared = parse_depends_on(sql)
    unknown = [d for d in declared if d not in model_names and d not in SOURCE_TABLES]
    if unknown:
        raise ModelError(f"{path.name}: unknown dependency {', '.join(unknown)}")
    if name in declared:
        raise ModelError(f"{path.name}: depends on itself")
    return Model(
        name=name,
        path=path,
        deps=tuple(d for d in declared if d in model_names),
        sources=tuple(d for d in declared if d in SOURCE_TABLES),
        kind="report" if name in REPORT_MODELS else "staging",
        sql=sql,
        declared_materialization=_materialized_of(path, sql),
    )


def _materialized_of(path: Path, sql: str) -> Literal["view", "table"] | None:
    try:
        return parse_materialized(sql)
    except ModelError as exc:
        raise ModelError(f"{path.name}: {exc}") from exc


def _topological_order(models: dict[str, Model]) -> list[Model]:
    # Kahn's algorithm, always taking the alphabetically first ready model so the order is stable.
    remaining = {name: set(m.deps) for name, m in models.items()}
    ordered: list[Model] = []
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if not deps)
        if not ready:
            files = ", ".join(sorted(models[n].path.name for n in remaining))
            raise ModelError(f"dependency cycle among {files}")
        for name in ready:
            ordered.append(models[name])
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(ready)
    return ordered


def list_models(sql_dir: Path | None = None) -> list[Model]:
    """Every model in `sql_dir` (default: the project's `sql/`), dependencies first."""
    paths = sorted((sql_dir or SQL_DIR).glob("*.sql"))
    for path in paths:
        if not _NAME.match(path.stem):
            raise ModelError(f"{path.name}: a model name must be a lowercase SQL identifier")
    names = {p.stem for p in paths}
    models = {p.stem: _read_model(p, names) for p in paths}
    return _topological_order(models)


def _select(models: list[Model], names: Iterable[str] | None) -> list[Model]:
    if names is None:
        return models
    wanted = set(names)
    unknown = wanted - {m.name for m in models}
    if unknown:
        raise ModelError(f"no such model: {', '.join(sorted(unknown))}")
    return [m for m in models if m.name in wanted]


def _create_statement(model: Model) -> str:
    # The body is a complete select; trailing semicolons would end the statement early.
    body = model.sql.strip().rstrip(";")
    return f"create or replace {model.materialization} {model.name} as\n{body}"


def _drop_if_other_kind(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    # `create or replace view` cannot replace a table (nor the reverse), which happens when
    # a model changes materialization between versions.
    rows = con.execute(
        "select table_type from information_schema.tables "
        "where table_schema = current_schema() and table_name = ?",
        [model.name],
    ).fetchall()
    existing = {"VIEW": "view", "BASE TABLE": "table"}.get(rows[0][0]) if rows else None
    if existing is not None and existing != model.materialization:
        con.execute(f"drop {existing} {model.name}")


def build_models(
    con: duckdb.DuckDBPyConnection,
    names: Sequence[str] | None = None,
    *,
    sql_dir: Path | None = None,
) -> dict[str, int]:
    """Build the named models (default: all) in dependency order; return row counts.

    Only the named models are built, not their upstream: the Dagster layer builds one
    model per asset and relies on its declared deps. All of them go in one transaction.
    """
    selected = _select(list_models(sql_dir), names)
    counts: dict[str, int] = {}
    con.begin()
    try:
        for model in selected:
            try:
                _drop_if_other_kind(con, model)
                con.execute(_create_statement(model))
            except duckdb.Error as exc:
                raise ModelError(f"{model.path.name}: {exc}") from exc
            rows = con.execute(f"select count(*) from {model.name}").fetchall()
            counts[model.name] = int(rows[0][0]) if rows else 0
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return counts
