"""Run the SQL models in `sql/`: one file is one model, ordered by the dependencies it declares.

The folder says what a model is: `sql/staging/` renames and casts the core tables,
`sql/intermediate/` holds shapes several reports share, and `sql/marts/` holds the
report models, each also exported as Parquet (a new report is a new file there).
A model file starts with comment lines; `-- depends_on: a, b` names the models (or core
tables) it reads, and it must name exactly the tables its SQL reads (checked with
sqlglot). Staging and intermediate models become views unless the header says
`-- materialized: table`; marts become tables. One `build_models` call is one
transaction: a failing model leaves every model as it was, so readers never see a
half-rebuilt set. SQL macros in `sql/macros/` (e.g. the Wilson interval) are created
first in the same transaction, so every model uses one definition. A build redoes only
what changed since the last one (builds.py says how; refresh.py refreshes the tables
declaring `-- incremental:` for the changed days or runs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb

from pipeline.transform.schema import CORE_TABLES
from pipeline.warehouse.builds import RUN_SOURCES, BuildPlan
from pipeline.warehouse.model_headers import (
    Incremental,
    ModelError,
    dependency_mismatch,
    parse_depends_on,
    parse_incremental,
    parse_materialized,
)
from pipeline.warehouse.refresh import PartitionScopes, refresh_partitions
from pipeline.warehouse.statements import transaction

ModelKind = Literal["staging", "intermediate", "marts"]
LAYERS: tuple[ModelKind, ...] = ("staging", "intermediate", "marts")


def _find_sql_dir() -> Path:
    # An installed wheel carries sql/ inside the package; a checkout has it at the root.
    package = Path(__file__).resolve().parents[1]
    installed = package / "sql"
    return installed if installed.is_dir() else package.parent / "sql"


SQL_DIR = _find_sql_dir()

# Tables the pipeline fills that models may read: the core tables, the raw versions kept
# beside them (run history), connection details and Bentley's error catalogue.
SOURCE_TABLES: frozenset[str] = frozenset(CORE_TABLES) | {
    "raw_runs",
    "connections",
    "error_catalog",
}
MACROS_DIR = "macros"

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Model:
    name: str
    path: Path
    deps: tuple[str, ...]
    """Other models this one reads (its upstream assets)."""
    sources: tuple[str, ...]
    """Tables the pipeline fills that this one reads directly (see SOURCE_TABLES)."""
    kind: ModelKind
    """The folder it lives in; `marts` are the report models."""
    sql: str
    declared_materialization: Literal["view", "table"] | None = None
    incremental: Incremental | None = None
    """How its rows partition, each computed from that partition's runs alone: `day` (a
    UTC run day), `day_connection` (a day and a connection_id) or `run` (connection_id,
    run_id). Such a table is refreshed for the changed partitions instead of rebuilt."""

    @property
    def is_report(self) -> bool:
        return self.kind == "marts"

    @property
    def materialization(self) -> Literal["view", "table"]:
        """Marts are tables; other models views unless the file says `table`.

        A model read by several others (stg_tasks: a join over every task) is declared
        a table, so it is computed once per build rather than once per reader.
        """
        if self.is_report:
            return "table"
        return self.declared_materialization or "view"


def _read_model(path: Path, kind: ModelKind, model_names: set[str]) -> Model:
    name = path.stem
    shown = f"sql/{kind}/{path.name}"
    sql = path.read_text(encoding="utf-8")
    declared = parse_depends_on(sql)
    unknown = [d for d in declared if d not in model_names and d not in SOURCE_TABLES]
    if unknown:
        raise ModelError(f"{shown}: unknown dependency {', '.join(unknown)}")
    if name in declared:
        raise ModelError(f"{shown}: depends on itself")
    mismatch = dependency_mismatch(shown, sql, declared)
    if mismatch:
        raise ModelError(mismatch)
    try:
        materialized = parse_materialized(sql)
        incremental = parse_incremental(sql)
    except ModelError as exc:
        raise ModelError(f"{shown}: {exc}") from exc
    model = Model(
        name=name,
        path=path,
        deps=tuple(d for d in declared if d in model_names),
        sources=tuple(d for d in declared if d in SOURCE_TABLES),
        kind=kind,
        sql=sql,
        declared_materialization=materialized,
        incremental=incremental,
    )
    if model.incremental and model.materialization == "view":
        raise ModelError(f"{shown}: an incremental model must be a table (it keeps rows)")
    return model


def _topological_order(models: dict[str, Model]) -> list[Model]:
    # Kahn's algorithm, always taking the alphabetically first ready model so the order is stable.
    remaining = {name: set(m.deps) for name, m in models.items()}
    ordered: list[Model] = []
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if not deps)
        if not ready:
            files = ", ".join(sorted(f"sql/{models[n].kind}/{n}.sql" for n in remaining))
            raise ModelError(f"dependency cycle among {files}")
        for name in ready:
            ordered.append(models[name])
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(ready)
    return ordered


def _model_files(sql_dir: Path) -> list[tuple[ModelKind, Path]]:
    stray = sorted(p.name for p in sql_dir.glob("*.sql"))
    if stray:
        raise ModelError(
            f"{', '.join(stray)} in {sql_dir}: a model lives in "
            f"{', '.join(f'{layer}/' for layer in LAYERS)} (marts/ for a report)"
        )
    files = [(kind, p) for kind in LAYERS for p in sorted((sql_dir / kind).glob("*.sql"))]
    seen: dict[str, str] = {}
    for kind, path in files:
        if not _NAME.match(path.stem):
            raise ModelError(f"sql/{kind}/{path.name}: a model name must be a lowercase identifier")
        if path.stem in seen:
            raise ModelError(f"{path.stem}: defined in both {seen[path.stem]}/ and {kind}/")
        seen[path.stem] = kind
    return files


def list_models(sql_dir: Path | None = None) -> list[Model]:
    """Every model under `sql_dir` (default: the project's `sql/`), dependencies first."""
    files = _model_files(sql_dir or SQL_DIR)
    names = {p.stem for _, p in files}
    models = {p.stem: _read_model(p, kind, names) for kind, p in files}
    return _topological_order(models)


def report_models(sql_dir: Path | None = None) -> tuple[str, ...]:
    """The report models: every file in `sql/marts/`, by name (no list to keep in Python)."""
    return tuple(sorted(p.stem for p in ((sql_dir or SQL_DIR) / "marts").glob("*.sql")))


def _select(models: list[Model], names: Iterable[str] | None) -> list[Model]:
    if names is None:
        return models
    wanted = set(names)
    unknown = wanted - {m.name for m in models}
    if unknown:
        raise ModelError(f"no such model: {', '.join(sorted(unknown))}")
    return [m for m in models if m.name in wanted]


def macro_files(sql_dir: Path | None = None) -> list[Path]:
    """The files in `sql/macros/`, each a `create or replace macro` statement or more."""
    return sorted(((sql_dir or SQL_DIR) / MACROS_DIR).glob("*.sql"))


def create_macros(con: duckdb.DuckDBPyConnection, sql_dir: Path | None = None) -> None:
    """Create (or replace) every macro the models call, before any model is built."""
    for path in macro_files(sql_dir):
        try:
            con.execute(path.read_text(encoding="utf-8"))
        except duckdb.Error as exc:
            raise ModelError(f"sql/{MACROS_DIR}/{path.name}: {exc}") from exc


def macros_text(sql_dir: Path | None = None) -> str:
    """Every macro file's text: a model's SQL hash includes it, so a macro edit rebuilds."""
    return "\n".join(p.read_text(encoding="utf-8") for p in macro_files(sql_dir))


def _body(model: Model) -> str:
    # The body is a complete select; trailing semicolons would end the statement early.
    return model.sql.strip().rstrip(";")


def _create_statement(model: Model) -> str:
    return f"create or replace {model.materialization} {model.name} as\n{_body(model)}"


def _existing_kind(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    rows = con.execute(
        "select table_type from information_schema.tables "
        "where table_schema = current_schema() and table_name = ? "
        "and table_catalog = current_database()",
        [name],
    ).fetchall()
    return {"VIEW": "view", "BASE TABLE": "table"}.get(rows[0][0]) if rows else None


def build_models(
    con: duckdb.DuckDBPyConnection,
    names: Sequence[str] | None = None,
    *,
    sql_dir: Path | None = None,
    full: bool = False,
) -> dict[str, int | None]:
    """Build the named models (default: all) in dependency order; return the row count of
    each table (None for a view: counting one would run its whole query).

    Only the named models are built, not their upstream: the Dagster layer passes the
    selected model assets and relies on their declared deps. All of them go in one transaction,
    with what they were built from (see builds.py): a model whose inputs did not change
    is skipped (its count is the one of its last build), an incremental one refreshed for
    the changed days or runs. `full` rebuilds every named model whatever its state.
    """
    models = list_models(sql_dir)
    selected = _select(models, names)
    counts: dict[str, int | None] = {}
    scopes = PartitionScopes(con)
    with transaction(con):
        create_macros(con, sql_dir)
        plan = BuildPlan(con, models, macros_text(sql_dir), full)
        by_name = {m.name: m for m in models}
        for model in selected:
            sources = _run_sources(model, by_name)
            counts[model.name] = _build_one(con, plan, model, sources, scopes)
        scopes.close()
        plan.prune_changes()
    return counts


def model_versions(con: duckdb.DuckDBPyConnection, sql_dir: Path | None = None) -> dict[str, str]:
    """What each model holds now (see builds.BuildPlan.version): same version, same rows."""
    models = list_models(sql_dir)
    plan = BuildPlan(con, models, macros_text(sql_dir), full=False)
    return {m.name: plan.version(m.name) for m in models}


def _run_sources(model: Model, by_name: dict[str, Model]) -> tuple[str, ...]:
    """The run-keyed tables `model` reads, directly or through the views it reads."""
    found = {s for s in model.sources if s in RUN_SOURCES}
    for dep in model.deps:
        upstream = by_name[dep]
        if upstream.materialization == "table":
            continue  # a table holds what it was built from; it is not read through
        found.update(_run_sources(upstream, by_name))
    return tuple(sorted(found))


def _build_one(
    con: duckdb.DuckDBPyConnection,
    plan: BuildPlan,
    model: Model,
    run_sources: tuple[str, ...],
    scopes: PartitionScopes,
) -> int | None:
    existing = _existing_kind(con, model.name)
    action = plan.action(model, exists=existing == model.materialization)
    if action == "skip":
        return plan.state[model.name].row_count
    try:
        if action == "partial":
            since = plan.state[model.name].change_seq
            refresh_partitions(scopes, model, since, _body(model), run_sources)
        else:
            if existing is not None and existing != model.materialization:
                # `create or replace view` cannot replace a table (nor the reverse).
                con.execute(f"drop {existing} {model.name}")
            con.execute(_create_statement(model))
    except duckdb.Error as exc:
        raise ModelError(f"sql/{model.kind}/{model.path.name}: {exc}") from exc
    count = None
    if model.materialization == "table":
        rows = con.execute(f"select count(*) from {model.name}").fetchall()
        count = int(rows[0][0]) if rows else 0
    plan.record(model, count)
    return count
