"""What each model was built from, so a build redoes only what changed since the last one.

The loader records every new, changed, stale or deleted run in `model_changes` (its key
and the UTC start days it left and entered) under a change number bumped in the same
transaction as the load. `build_state` remembers, per model, a key of what it was built
from (its SQL and the macros' hash, and the versions of what it reads); a model whose key
still matches is skipped. A model declaring `-- incremental: day` (or `run`) whose only
new input is recorded run changes is refreshed for the affected days (or runs) only:
their rows are deleted and recomputed from its inputs restricted to those days (runs).
State is written in the build's own transaction, so a crash leaves both or neither.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import duckdb

from pipeline.transform.schema import CORE_TABLES

if TYPE_CHECKING:
    from pipeline.warehouse.models import Model

# Tables the loader changes run by run, and records in model_changes when it does.
RUN_SOURCES: frozenset[str] = frozenset(CORE_TABLES) | {"raw_runs"}

Action = Literal["skip", "full", "partial"]
ABSENT = "absent"  # the version of a table no build recorded

STATE_TABLES = ("build_state", "model_changes", "model_change_counter", "report_state")
STATE_DDL = (
    "create table if not exists build_state (model varchar, inputs_key varchar, "
    "change_seq bigint, row_count bigint)",
    "create table if not exists model_changes (seq bigint, connection_id varchar, "
    "run_id varchar, day date, has_day boolean)",
    "create table if not exists model_change_counter (seq bigint)",
    "create table if not exists report_state (path varchar, version varchar)",
)


def ensure_state_tables(con: duckdb.DuckDBPyConnection) -> None:
    for statement in STATE_DDL:
        con.execute(statement)


def next_change_seq(con: duckdb.DuckDBPyConnection) -> int:
    """Bump the change number (in the caller's transaction) and return it."""
    ensure_state_tables(con)
    row = con.execute("select max(seq) from model_change_counter").fetchone()
    seq = int(row[0]) + 1 if row and row[0] is not None else 1
    con.execute("delete from model_change_counter")
    con.execute("insert into model_change_counter values (?)", [seq])
    return seq


def forget_builds(con: duckdb.DuckDBPyConnection) -> None:
    """Make the next build a full one (after the tables were rewritten wholesale)."""
    ensure_state_tables(con)
    con.execute("delete from build_state")
    con.execute("delete from model_changes")


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


@dataclass
class _State:
    inputs_key: str
    change_seq: int
    row_count: int | None


class BuildPlan:
    """Decides, model by model in dependency order, whether to skip, refresh or rebuild."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, models: Sequence[Model], macros: str, full: bool
    ) -> None:
        ensure_state_tables(con)
        self.con = con
        self.full = full
        self.macros = macros
        self.models = {m.name: m for m in models}
        rows = con.execute("select model, inputs_key, change_seq, row_count from build_state")
        self.state = {
            str(r[0]): _State(str(r[1]), int(r[2]), None if r[3] is None else int(r[3]))
            for r in rows.fetchall()
        }
        counter = con.execute("select max(seq) from model_change_counter").fetchone()
        self.seq = int(counter[0]) if counter and counter[0] is not None else 0
        self._source_versions: dict[str, str] = {}

    # Versions: a model's version names the data it holds; a source's names its contents.
    def source_version(self, name: str, *, static: bool) -> str:
        if name in RUN_SOURCES:
            return "runs" if static else f"runs@{self.seq}"
        if name not in self._source_versions:
            # Small tables (connections, the catalogue): a fingerprint of their rows.
            row = self.con.execute(
                f"select count(*), coalesce(sum(hash(t)::hugeint), 0) from {name} t"
            ).fetchone()
            self._source_versions[name] = f"{row[0]}:{row[1]}" if row else "?"
        return self._source_versions[name]

    def inputs_key(self, model: Model, *, static: bool) -> str:
        code = _digest(model.sql, self.macros, model.materialization, model.incremental)
        reads = [f"{s}={self.source_version(s, static=static)}" for s in sorted(model.sources)]
        reads += [f"{d}={self.version(d, static=static)}" for d in sorted(model.deps)]
        return _digest(code, *reads)

    def version(self, name: str, *, static: bool = False) -> str:
        """What `name` holds now: a view follows its inputs; a table what it was built from."""
        model = self.models[name]
        if model.materialization == "view":
            return self.inputs_key(model, static=static)
        state = self.state.get(name)
        if state is None:
            return ABSENT
        if static:
            return state.inputs_key
        return (
            _digest(state.inputs_key, state.change_seq) if model.incremental else state.inputs_key
        )

    def action(self, model: Model, exists: bool) -> Action:
        state = self.state.get(model.name)
        if self.full or state is None or not exists:
            return "full"
        if model.materialization == "view":
            # A view reads live data: only its definition can go stale.
            return "skip" if state.inputs_key == self._view_key(model) else "full"
        if model.incremental:
            if self._reads_a_table(model) or state.inputs_key != self.inputs_key(
                model, static=True
            ):
                return "full"
            return "skip" if state.change_seq >= self.seq else "partial"
        return "skip" if state.inputs_key == self.inputs_key(model, static=False) else "full"

    def _reads_a_table(self, model: Model) -> bool:
        # A partial refresh scopes the run tables under the views it reads; a table
        # model in between holds the whole history, so the model is rebuilt instead.
        return any(
            self.models[d].materialization == "table" or self._reads_a_table(self.models[d])
            for d in model.deps
        )

    def _view_key(self, model: Model) -> str:
        return _digest(model.sql, self.macros, model.materialization)

    def record(self, model: Model, row_count: int | None) -> None:
        if model.materialization == "view":
            key = self._view_key(model)
        else:
            key = self.inputs_key(model, static=bool(model.incremental))
        self.state[model.name] = _State(key, self.seq, row_count)
        self.con.execute("delete from build_state where model = ?", [model.name])
        self.con.execute(
            "insert into build_state values (?, ?, ?, ?)", [model.name, key, self.seq, row_count]
        )

    def prune_changes(self) -> None:
        """Drop recorded changes every incremental model has applied."""
        applied = [
            self.state[m.name].change_seq
            for m in self.models.values()
            if m.incremental and m.name in self.state
        ]
        if applied:
            self.con.execute("delete from model_changes where seq <= ?", [min(applied)])


def written_version(con: duckdb.DuckDBPyConnection, path: str) -> str | None:
    """The version of the models a report file was last written from (None: unknown)."""
    ensure_state_tables(con)
    row = con.execute("select max(version) from report_state where path = ?", [path]).fetchone()
    return str(row[0]) if row and row[0] is not None else None


def record_written(con: duckdb.DuckDBPyConnection, path: str, version: str) -> None:
    """Remember `path` holds `version`; written after the file, so a crash between the two
    only rewrites the file once more."""
    con.execute("delete from report_state where path = ?", [path])
    con.execute("insert into report_state values (?, ?)", [path, version])


def versions_digest(versions: Iterable[str]) -> str:
    return _digest(*versions)
