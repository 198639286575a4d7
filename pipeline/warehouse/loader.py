"""Atomic, set-based loads of flattened batches into the warehouse."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from pipeline.transform.flatten import FlatBatch
from pipeline.transform.schema import CORE_TABLES
from pipeline.warehouse import load_sql as sql
from pipeline.warehouse.builds import next_change_seq
from pipeline.warehouse.statements import (
    StatementRunner,
    changed_settings,
    execute,
    first_value,
    transaction,
)


@dataclass
class ConnectionLoadStats:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    stale: int = 0  # an older fetch than the stored version: kept as history only
    quarantined: int = 0


@dataclass
class LoadStats:
    """What one load did, per connection id ('' for quarantine rows with no connection)."""

    connections: dict[str, ConnectionLoadStats] = field(default_factory=dict)

    def for_connection(self, connection_id: str) -> ConnectionLoadStats:
        return self.connections.get(connection_id, ConnectionLoadStats())

    def total(self) -> ConnectionLoadStats:
        out = ConnectionLoadStats()
        for stats in self.connections.values():
            _add_counts(out, stats)
        return out

    def add(self, other: LoadStats) -> None:
        for cid, stats in other.connections.items():
            _add_counts(self.connections.setdefault(cid, ConnectionLoadStats()), stats)


def _add_counts(into: ConnectionLoadStats, other: ConnectionLoadStats) -> None:
    for name, value in asdict(other).items():
        setattr(into, name, getattr(into, name) + value)


class RunLoader:
    """Loads batches over one DuckDB connection (not safe for concurrent use)."""

    def __init__(self, statements: StatementRunner, given: Mapping[str, str]) -> None:
        self.statements = statements
        self.con = statements.con
        self._given = given  # settings to restore as given (see changed_settings)

    def load(self, batch: FlatBatch) -> LoadStats:
        """Apply a batch in one transaction; on any failure nothing of it remains."""
        with transaction(self.con):
            return self.apply(batch)

    @contextmanager
    def grouped_loads(
        self, commit_every_runs: int, on_commit: Callable[[LoadStats], None]
    ) -> Iterator[Callable[[FlatBatch], None]]:
        """Load many batches in transactions of about `commit_every_runs` runs each.

        Fewer, larger transactions cost less: DuckDB writes a large transaction's rows
        straight to the file instead of the WAL. Each group is atomic: `on_commit(stats)`
        is told what a group did once committed; on a failure the open group is rolled
        back whole and earlier groups stay. Yields the function that adds a batch.
        """
        group = _TransactionGroup(self, commit_every_runs, on_commit)
        try:
            yield group.add
        except BaseException:
            group.rollback()
            raise
        group.commit()

    @contextmanager
    def bulk(self, checkpoint_every: str = "1GB", memory_limit: str = "256MB") -> Iterator[None]:
        """Many loads in a row: checkpoint by the given WAL size, not DuckDB's small default.

        A checkpoint rewrites each table's last, partly filled row group, so frequent ones
        rewrite the same raw payloads again and again; the last runs on the way out. One
        row group is written at a time, so the commit does not write several at the end.
        """
        with changed_settings(
            self.con,
            self._given,
            checkpoint_threshold=checkpoint_every,
            memory_limit=memory_limit,
            write_buffer_row_group_count=1,
        ):
            yield
            execute(self.con, "CHECKPOINT")

    def apply(self, batch: FlatBatch) -> LoadStats:
        """The statements of a load, inside the caller's transaction."""
        outcome = self.classify(batch.latest)
        # Statements with nothing to do still scan whole tables; skip them, so a
        # batch costs what it changes, not what the history holds.
        kinds = {kind for _, kind, n in outcome if n}
        if kinds & {"new", "changed", "stale"}:
            # Recorded in `model_changes` before the old rows go: a changed run's old start
            # day is read from `runs`.
            seq = next_change_seq(self.con)
            self.statements.run("record changes", sql.record_changes(seq), batch.tables["runs"])
        if kinds & {"new", "changed"}:
            self._replace_subtrees(batch.tables, kinds)
        self._record_versions(kinds, batch.raw)
        if batch.quarantine.num_rows:
            self.statements.run("INSERT quarantine", sql.INSERT_QUARANTINE, batch.quarantine)
        return _stats(outcome, batch.quarantine)

    def classify(self, latest: pa.Table) -> list[tuple[str, str, int]]:
        """Sort the batch's runs into new, changed, unchanged and stale (in `_classified`)."""
        stored = "raw_latest"
        if int(first_value(self.con, sql.STORED_RUNS_ESTIMATE) or 0) > sql.LOOKUP_ABOVE_STORED_RUNS:
            stored = "_stored"
            self.statements.run("clear stored", sql.CREATE_STORED)
            with changed_settings(
                self.con, self._given, dynamic_or_filter_threshold=sql.LOOKUP_IDS
            ):
                for start in range(0, latest.num_rows, sql.LOOKUP_IDS):
                    chunk = latest.slice(start, sql.LOOKUP_IDS)
                    self.statements.run("look up stored", sql.STORED_VERSIONS, chunk)
        self.statements.run("classify", sql.CLASSIFY.format(stored=stored), latest)
        rows = self.con.execute(sql.COUNT_OUTCOMES).fetchall()
        return [(str(c), str(o), int(n)) for c, o, n in rows]

    def _replace_subtrees(self, tables: dict[str, pa.Table], kinds: set[str]) -> None:
        for name in sql.DELETE_ORDER if "changed" in kinds else ():
            self.statements.run(f"DELETE {name}", sql.delete_changed(name))
        # The tables hold the batch's latest versions only, all classified: when every
        # one is new (a first load), every row goes in and the join would only cost.
        rows = "" if kinds == {"new"} else sql.of_runs("IN ('new', 'changed')")
        for name in CORE_TABLES:
            self.statements.run(f"INSERT {name}", sql.insert_from_batch(name, rows), tables[name])

    def _record_versions(self, kinds: set[str], raw: pa.Table) -> None:
        # A new run has no version in raw_runs yet (raw_latest knows every run there), so
        # its versions skip the anti-join against the history. Others may be stored already.
        if raw.num_rows and "new" in kinds:
            rows = "" if kinds == {"new"} else sql.of_runs("= 'new'")
            self.statements.run("INSERT raw_runs new", sql.insert_from_batch("raw_runs", rows), raw)
        if raw.num_rows and kinds - {"new"}:
            rows = (
                sql.of_runs("<> 'new'")
                + " ANTI JOIN raw_runs r USING (connection_id, run_id, payload_hash)"
            )
            self.statements.run("INSERT raw_runs", sql.insert_from_batch("raw_runs", rows), raw)
        if "changed" in kinds:
            self.statements.run("UPDATE raw_latest changed", sql.UPDATE_LATEST_CHANGED)
        if "unchanged" in kinds:
            self.statements.run("UPDATE raw_latest unchanged", sql.UPDATE_LATEST_SEEN)
        if "new" in kinds:
            self.statements.run("INSERT raw_latest", sql.INSERT_LATEST)


def _stats(outcome: list[tuple[str, str, int]], quarantine: pa.Table) -> LoadStats:
    stats = LoadStats()
    for cid, kind, n in outcome:
        setattr(stats.connections.setdefault(cid, ConnectionLoadStats()), kind, n)
    for cid in quarantine.column("connection_id").to_pylist():
        stats.connections.setdefault(cid or "", ConnectionLoadStats()).quarantined += 1
    return stats


class _TransactionGroup:
    """An open transaction that batches are added to until it holds enough runs."""

    def __init__(
        self, loader: RunLoader, commit_every_runs: int, on_commit: Callable[[LoadStats], None]
    ) -> None:
        self.loader = loader
        self.commit_every_runs = max(1, commit_every_runs)
        self.on_commit = on_commit
        self.open = False
        self.runs = 0
        self.stats = LoadStats()

    def add(self, batch: FlatBatch) -> None:
        if not self.open:
            execute(self.loader.con, "BEGIN TRANSACTION")
            self.open = True
        self.stats.add(self.loader.apply(batch))
        self.runs += batch.run_count + batch.quarantine.num_rows
        if self.runs >= self.commit_every_runs:
            self.commit()

    def commit(self) -> None:
        if not self.open:
            return
        execute(self.loader.con, "COMMIT")
        stats, self.stats, self.runs, self.open = self.stats, LoadStats(), 0, False
        self.on_commit(stats)

    def rollback(self) -> None:
        if self.open:
            self.open = False
            execute(self.loader.con, "ROLLBACK")
