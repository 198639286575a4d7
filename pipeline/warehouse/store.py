"""The DuckDB warehouse: atomic, set-based loads of flattened batches, and the bookkeeping
the collector needs (stored hashes, open runs, full passes, the collection log).

Every load is one explicit transaction of separate statements: DuckDB commits the
earlier statements of a multi-statement string even when a later one fails.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from pipeline.errors import ITwinRunsError
from pipeline.transform.flatten import FetchedRun, FlatBatch, flatten_runs
from pipeline.transform.schema import BOOKKEEPING_TABLES, COLLECTION_LOG, CORE_TABLES
from pipeline.warehouse.ddl import create_all_tables

RUN_KEY = ("connection_id", "run_id")
# The name a statement reads its Arrow batch table by (see _exec_reading).
BATCH = "_itwin_runs_batch"
# Children first, so a failure half-way can never leave orphans (it rolls back anyway).
_DELETE_ORDER = ("task_errors", "tasks", "jobs", "runs")


class WarehouseLockedError(ITwinRunsError):
    """Another process holds the warehouse file's lock for longer than we were willing to wait."""

    def __init__(self, path: Path, holder: str, waited_s: float) -> None:
        self.path = path
        self.holder = holder
        self.waited_s = waited_s
        super().__init__(
            f"the warehouse {path} is in use by {holder}; waited {waited_s:.0f} s for it. "
            "Wait for that process to finish (a collection, load or report in progress) "
            "or stop it, then run the command again."
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
            for name, value in asdict(stats).items():
                setattr(out, name, getattr(out, name) + value)
        return out

    def add(self, other: LoadStats) -> None:
        for cid, stats in other.connections.items():
            mine = self.connections.setdefault(cid, ConnectionLoadStats())
            for name, value in asdict(stats).items():
                setattr(mine, name, getattr(mine, name) + value)


@dataclass(frozen=True)
class CollectionLogEntry:
    collection_id: str
    connection_id: str
    started_at: datetime
    ended_at: datetime
    outcome: str  # 'ok' | 'failed'
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    pages: int = 0
    requests: int = 0
    retries: int = 0
    throttled_429: int = 0
    runs_new: int = 0
    runs_changed: int = 0
    runs_unchanged: int = 0
    runs_quarantined: int = 0


class Warehouse:
    """The warehouse over one DuckDB connection (not safe for concurrent use)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, memory_limit: str | None = None) -> None:
        self.con = con
        # DuckDB shows its memory limit rounded down to 0.1 MiB, so reading it back and
        # setting that drifts it down; the limit given here is restored as given.
        self._given = {"memory_limit": memory_limit} if memory_limit else {}
        if memory_limit:
            _exec(con, f"SET memory_limit = '{memory_limit}'")
        create_all_tables(con)
        # A hook for tests: called between the statements of a load.
        self._between_statements: Callable[[str], None] | None = None
        self._batch_name_checked = False

    # --- loading ---------------------------------------------------------------------

    def load(self, batch: FlatBatch) -> LoadStats:
        """Apply a batch in one transaction; on any failure nothing of it remains."""
        with self._transaction():
            return self._apply(batch)

    @contextmanager
    def grouped_loads(
        self, commit_every_runs: int, on_commit: Callable[[LoadStats], None]
    ) -> Iterator[Callable[[FlatBatch], None]]:
        """Load many batches in transactions of about `commit_every_runs` runs each.

        For bulk loads (files): a commit writes the transaction to the WAL and later
        checkpoints copy it again, so fewer, larger transactions cost less (see
        files.COMMIT_EVERY_RUNS for the figures).
        Each group is atomic: `on_commit(stats)` is told what a group did once it is
        committed; on a failure the open group is rolled back whole and earlier groups
        stay. Yields the function that adds a batch.
        """
        group = _TransactionGroup(self, commit_every_runs, on_commit)
        try:
            yield group.add
        except BaseException:
            group.rollback()
            raise
        group.commit()

    def _apply(self, batch: FlatBatch) -> LoadStats:
        """The statements of a load, inside the caller's transaction."""
        outcome = self._classify(batch.latest)
        # Statements with nothing to do still scan whole tables; skip them, so a
        # batch costs what it changes, not what the history holds.
        kinds = {kind for _, kind, n in outcome if n}
        if kinds & {"new", "changed"}:
            self._replace_subtrees(batch.tables, kinds)
        self._record_versions(kinds, batch.raw)
        if batch.quarantine.num_rows:
            self._run("INSERT quarantine", _INSERT_QUARANTINE, batch.quarantine)
        return self._stats(outcome, batch.quarantine)

    def _classify(self, latest: pa.Table) -> list[tuple[str, str, int]]:
        self._run("classify", _CLASSIFY, latest)
        rows = self.con.execute(
            "SELECT connection_id, outcome, count(*) FROM _classified GROUP BY ALL"
        ).fetchall()
        return [(str(c), str(o), int(n)) for c, o, n in rows]

    def _replace_subtrees(self, tables: dict[str, pa.Table], kinds: set[str]) -> None:
        for name in _DELETE_ORDER if "changed" in kinds else ():
            self._run(
                f"DELETE {name}",
                f"DELETE FROM {name} t USING _classified c "
                f"WHERE c.outcome = 'changed' AND {_SAME_RUN}",
            )
        # The tables hold the batch's latest versions only, all classified: when every
        # one is new (a first load), every row goes in and the join only costs (loading
        # the 100k-run set alone: 6.3-7.8 s against 7.3-7.8 s with it, measured).
        rows = "" if kinds == {"new"} else _of_runs("IN ('new', 'changed')")
        for name in CORE_TABLES:
            self._insert(name, tables[name], rows)

    def _record_versions(self, kinds: set[str], raw: pa.Table) -> None:
        # A new run has no version in raw_runs yet (raw_latest knows every run there), so
        # its versions skip the anti-join against the history: 1.9 s against 2.2-2.3 s of
        # a 100k-run load in one transaction (measured). Others may be stored already.
        if raw.num_rows and "new" in kinds:
            rows = "" if kinds == {"new"} else _of_runs("= 'new'")
            self._insert("raw_runs", raw, rows, label="INSERT raw_runs new")
        if raw.num_rows and kinds - {"new"}:
            rows = (
                _of_runs("<> 'new'")
                + " ANTI JOIN raw_runs r USING (connection_id, run_id, payload_hash)"
            )
            self._insert("raw_runs", raw, rows)
        if "changed" in kinds:
            self._run("UPDATE raw_latest changed", _UPDATE_LATEST_CHANGED)
        if "unchanged" in kinds:
            self._run("UPDATE raw_latest unchanged", _UPDATE_LATEST_SEEN)
        if "new" in kinds:
            self._run("INSERT raw_latest", _INSERT_LATEST)

    def _insert(self, target: str, source: pa.Table, rows: str = "", label: str = "") -> None:
        """Insert the batch table `source` (read as `t`) into `target`; `rows` filters it."""
        cols = ", ".join(_SCHEMAS[target].names)
        self._run(
            label or f"INSERT {target}",
            f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {BATCH} t{rows}",
            source,
        )

    def _stats(self, outcome: list[tuple[str, str, int]], quarantine: pa.Table) -> LoadStats:
        stats = LoadStats()
        for cid, kind, n in outcome:
            setattr(stats.connections.setdefault(cid, ConnectionLoadStats()), kind, n)
        for cid in quarantine.column("connection_id").to_pylist():
            stats.connections.setdefault(cid or "", ConnectionLoadStats()).quarantined += 1
        return stats

    def _run(self, label: str, sql: str, table: pa.Table | None = None) -> None:
        """One statement; `table`: the Arrow table it reads as BATCH."""
        if self._between_statements is not None:
            self._between_statements(label)
        if table is None:
            _exec(self.con, sql)
            return
        if not self._batch_name_checked:
            _refuse_shadowing_table(self.con)
            self._batch_name_checked = True
        _exec_reading(self.con, sql, table)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        _exec(self.con, "BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            _exec(self.con, "ROLLBACK")
            raise
        _exec(self.con, "COMMIT")

    @contextmanager
    def bulk(self, checkpoint_every: str = "1GB", memory_limit: str = "256MB") -> Iterator[None]:
        """Many loads in a row: checkpoint by the given WAL size instead of DuckDB's 16 MB.

        A checkpoint rewrites each table's last, partly filled row group, and one every
        ~16 MB rewrote the same raw payloads again and again: loading 100k runs in 20
        batches cost 2x the time of a single insert (raw_runs alone 10.4 s against 4.6 s,
        measured). The WAL file may meanwhile grow to `checkpoint_every`; the last
        checkpoint runs on the way out.

        DuckDB is held to `memory_limit` meanwhile, since reading processes sit beside
        it: 256 MB against 512 MB cost nothing measurable (100k runs in one transaction:
        7.8 against 7.6 s) and held `itwin-runs load` of 300k runs to 776 MB of process
        tree RSS against 977 MB (measured).

        A large transaction writes its full row groups to the file as it goes; DuckDB
        gathers five before writing (and compressing) them together, so every fifth
        batch stalled the loader for 0.3-0.7 s and the commit wrote up to five per
        table at the end, with the readers already done. One at a time, a 100k-run load
        ends 0.28-0.33 s after its last batch arrived, against 0.56-0.60 s (measured).
        """
        with self._settings(
            checkpoint_threshold=checkpoint_every,
            memory_limit=memory_limit,
            write_buffer_row_group_count=1,
        ):
            yield
            _exec(self.con, "CHECKPOINT")

    @contextmanager
    def threads(self, count: int) -> Iterator[None]:
        """Run DuckDB on `count` threads meanwhile (restored after).

        For loads beside reading processes: on two cores the readers hold one, and a
        second DuckDB thread only contends with them (measured: `itwin-runs load` of 100k
        runs 18.7-20.8 s with one thread against 21.1-25.8 s with two).
        """
        with self._settings(threads=int(count)):
            yield

    @contextmanager
    def _settings(self, **settings: str | int) -> Iterator[None]:
        """DuckDB settings changed for a while, each restored to what it was."""
        previous = {
            name: self._given.get(name)
            or self.con.execute("SELECT current_setting(?)", [name]).fetchall()[0][0]
            for name in settings
        }
        try:
            for name, value in settings.items():
                _exec(self.con, f"SET {name} = '{value}'")
            yield
        finally:
            for name, value in previous.items():
                _exec(self.con, f"SET {name} = '{value}'")

    # --- rebuilding --------------------------------------------------------------------

    def rebuild_from_raw(self, *, batch_runs: int = 5_000) -> LoadStats:
        """Rebuild the four core tables from the latest raw version of every run, no API."""
        reader = self.con.cursor()  # its own connection: streams while we write
        try:
            # A cursor starts on the default database, not the attached warehouse file.
            reader.execute(f"USE {_one(self.con, 'SELECT current_database()')}")
            result = reader.sql(_LATEST_PAYLOADS).to_arrow_reader(batch_runs)
            stats = LoadStats()
            with self._transaction():
                for name in _DELETE_ORDER:
                    self._run(f"CLEAR {name}", f"DELETE FROM {name}")
                for record_batch in result:
                    stats.add(self._insert_rebuilt(record_batch))
            return stats
        finally:
            reader.close()

    def _insert_rebuilt(self, record_batch: pa.RecordBatch) -> LoadStats:
        columns = record_batch.to_pydict()
        runs = [
            FetchedRun(cid, orjson.loads(payload), at)
            for cid, payload, at in zip(
                columns["connection_id"], columns["payload"], columns["fetched_at"], strict=True
            )
        ]
        batch = flatten_runs(runs)
        for name in CORE_TABLES:
            self._insert(name, batch.tables[name])
        self._run("INSERT quarantine", _INSERT_QUARANTINE, batch.quarantine)
        stats = LoadStats()
        for cid in batch.tables["runs"].column("connection_id").to_pylist():
            stats.connections.setdefault(cid, ConnectionLoadStats()).new += 1
        return stats

    # --- what the collector asks -------------------------------------------------------

    def latest_hashes(self, connection_id: str, run_ids: list[str]) -> dict[str, str]:
        """Payload hash of the stored version of each given run that is stored."""
        if not run_ids:
            return {}
        rows = self.con.execute(
            "SELECT run_id, payload_hash FROM raw_latest WHERE connection_id = ? "
            "AND run_id IN (SELECT unnest(?::VARCHAR[]))",
            [connection_id, list(run_ids)],
        ).fetchall()
        return {str(r): str(h) for r, h in rows}

    def open_run_ids(self, connection_id: str) -> list[str]:
        """Stored runs not yet Completed (a missing state counts as not Completed)."""
        return self.open_runs_by_connection([connection_id]).get(connection_id, [])

    def open_runs_by_connection(self, connection_ids: Sequence[str]) -> dict[str, list[str]]:
        """`open_run_ids` of many connections in one query (connections with none left out)."""
        rows = self.con.execute(
            "SELECT connection_id, run_id FROM raw_latest "
            "WHERE connection_id IN (SELECT unnest(?::VARCHAR[])) "
            "AND state IS DISTINCT FROM 'Completed' ORDER BY connection_id, run_id",
            [list(connection_ids)],
        ).fetchall()
        out: dict[str, list[str]] = {}
        for cid, rid in rows:
            out.setdefault(str(cid), []).append(str(rid))
        return out

    def stored_run_count(self, connection_id: str) -> int:
        sql = "SELECT count(*) FROM raw_latest WHERE connection_id = ?"
        return int(_one(self.con, sql, [connection_id]) or 0)

    def last_full_pass(self, connection_id: str) -> datetime | None:
        return self.last_full_passes([connection_id]).get(connection_id)

    def last_full_passes(self, connection_ids: Sequence[str]) -> dict[str, datetime]:
        """When each connection's list was last read to its end (connections never, left out)."""
        rows = self.con.execute(
            "SELECT connection_id, last_full_pass FROM full_passes "
            "WHERE connection_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(connection_ids)],
        ).fetchall()
        return {str(cid): _as_utc(at) for cid, at in rows}

    def mark_full_pass(self, connection_id: str, at: datetime) -> None:
        self.record_finished(full_passes=[(connection_id, at)])

    def log_collection(self, entry: CollectionLogEntry) -> None:
        self.record_finished(log_entries=[entry])

    def record_finished(
        self,
        *,
        full_passes: Sequence[tuple[str, datetime]] = (),
        log_entries: Sequence[CollectionLogEntry] = (),
    ) -> None:
        """Full-pass marks and collection-log rows of many connections, in one transaction.

        200 connections finishing together each wrote two rows in two commits, queued with
        the loads on the one connection: 1.4 ms to 2.4 ms per statement and 2-3 s at the
        end of a 200-connection collection (measured). A later mark of a connection wins.
        """
        marks = {cid: _as_utc(at) for cid, at in full_passes}
        with self._transaction():
            if marks:
                _exec(
                    self.con,
                    "INSERT OR REPLACE INTO full_passes (connection_id, last_full_pass) "
                    "SELECT unnest(?::VARCHAR[]), unnest(?::TIMESTAMPTZ[])",
                    [list(marks), list(marks.values())],
                )
            if log_entries:
                rows = [asdict(e) for e in log_entries]
                for row in rows:
                    for name in ("started_at", "ended_at"):
                        row[name] = _as_utc(row[name])
                names = ", ".join(COLLECTION_LOG.names)
                self._run(
                    "INSERT collection_log",
                    f"INSERT INTO collection_log ({names}) SELECT {names} FROM {BATCH}",
                    pa.Table.from_pylist(rows, COLLECTION_LOG),
                )

    def table_counts(self) -> dict[str, int]:
        counts = {}
        for name in (*CORE_TABLES, *BOOKKEEPING_TABLES):
            counts[name] = int(_one(self.con, f"SELECT count(*) FROM {name}") or 0)
        return counts


class _TransactionGroup:
    """An open transaction that batches are added to until it holds enough runs."""

    def __init__(
        self, warehouse: Warehouse, commit_every_runs: int, on_commit: Callable[[LoadStats], None]
    ) -> None:
        self.warehouse = warehouse
        self.commit_every_runs = max(1, commit_every_runs)
        self.on_commit = on_commit
        self.open = False
        self.runs = 0
        self.stats = LoadStats()

    def add(self, batch: FlatBatch) -> None:
        if not self.open:
            _exec(self.warehouse.con, "BEGIN TRANSACTION")
            self.open = True
        self.stats.add(self.warehouse._apply(batch))
        self.runs += batch.run_count + batch.quarantine.num_rows
        if self.runs >= self.commit_every_runs:
            self.commit()

    def commit(self) -> None:
        if not self.open:
            return
        _exec(self.warehouse.con, "COMMIT")
        stats, self.stats, self.runs, self.open = self.stats, LoadStats(), 0, False
        self.on_commit(stats)

    def rollback(self) -> None:
        if self.open:
            self.open = False
            _exec(self.warehouse.con, "ROLLBACK")


# --- the load's statements ---------------------------------------------------------------

# new: never stored; unchanged: same hash as the stored version; stale: fetched before
# the stored version (loading old files after a collection); changed: everything else.
_CLASSIFY = f"""
CREATE OR REPLACE TEMP TABLE _classified AS
SELECT b.connection_id, b.run_id, b.payload_hash, b.fetched_at, b.state,
    CASE
        WHEN l.run_id IS NULL THEN 'new'
        WHEN l.payload_hash = b.payload_hash THEN 'unchanged'
        WHEN b.fetched_at < l.fetched_at THEN 'stale'
        ELSE 'changed'
    END AS outcome
FROM {BATCH} b
LEFT JOIN raw_latest l USING (connection_id, run_id)
"""

_SAME_RUN = " AND ".join(f"t.{k} = c.{k}" for k in RUN_KEY)
_SCHEMAS = {name: schema for name, (schema, _) in {**CORE_TABLES, **BOOKKEEPING_TABLES}.items()}


def _of_runs(outcome: str) -> str:
    """A filter keeping the batch rows (`t`) of runs whose outcome is `outcome` (SQL)."""
    return f" SEMI JOIN _classified c ON {_SAME_RUN} AND c.outcome {outcome}"


_UPDATE_LATEST_CHANGED = """
UPDATE raw_latest SET payload_hash = c.payload_hash, fetched_at = c.fetched_at, state = c.state
FROM _classified c
WHERE c.outcome = 'changed'
    AND raw_latest.connection_id = c.connection_id AND raw_latest.run_id = c.run_id
"""

# Remember the latest time an unchanged run was seen, so older files stay "stale".
_UPDATE_LATEST_SEEN = """
UPDATE raw_latest SET fetched_at = c.fetched_at
FROM _classified c
WHERE c.outcome = 'unchanged' AND c.fetched_at > raw_latest.fetched_at
    AND raw_latest.connection_id = c.connection_id AND raw_latest.run_id = c.run_id
"""

_INSERT_LATEST = """
INSERT INTO raw_latest (connection_id, run_id, payload_hash, fetched_at, state)
SELECT connection_id, run_id, payload_hash, fetched_at, state
FROM _classified WHERE outcome = 'new'
"""

# The same unreadable payload for the same reason is recorded once, so loading the same
# pages twice changes nothing.
_INSERT_QUARANTINE = f"""
INSERT INTO quarantine (connection_id, run_id, reason, payload, payload_hash, fetched_at, source)
SELECT b.connection_id, b.run_id, b.reason, b.payload, b.payload_hash, b.fetched_at, b.source
FROM (SELECT DISTINCT ON (connection_id, payload_hash, reason) * FROM {BATCH}) b
ANTI JOIN quarantine q
    ON q.payload_hash = b.payload_hash AND q.reason = b.reason
    AND q.connection_id IS NOT DISTINCT FROM b.connection_id
"""

_LATEST_PAYLOADS = """
SELECT l.connection_id, r.payload, l.fetched_at
FROM raw_latest l
JOIN raw_runs r USING (connection_id, run_id, payload_hash)
ORDER BY l.connection_id, l.run_id
"""


# --- opening the file ------------------------------------------------------------------

_HOLDER = re.compile(r"[Cc]onflicting lock is held in (.*?) \(PID (\d+)\)")


# DuckDB caches up to 80% of RAM by default; every connection of ours is held to this so
# memory is bounded by a batch (DuckDB spills beyond it), not by the history.
MEMORY_LIMIT = "512MB"


@contextmanager
def open_warehouse(
    path: str | Path,
    *,
    lock_timeout_s: float = 30.0,
    read_only: bool = False,
    memory_limit: str | None = MEMORY_LIMIT,
) -> Iterator[Warehouse]:
    """Open the warehouse file, waiting up to lock_timeout_s while another process holds it.

    DuckDB caches up to 80% of RAM by default; the limit keeps a load's memory bounded
    by its batch rather than by the history it has written (it spills beyond it).
    """
    con = _connect(Path(path), lock_timeout_s, read_only)
    try:
        yield Warehouse(con, memory_limit)
    finally:
        con.close()


def _connect(path: Path, timeout_s: float, read_only: bool) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            if read_only:
                return duckdb.connect(str(path), read_only=True)
            return _attach_for_writing(path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseLockedError(path, _holder(str(exc)), timeout_s) from exc
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)


# Rows per row group of the tables we write (DuckDB's default is 122,880). A checkpoint
# rewrites each table's last, partly filled row group: with raw payloads of ~4 KB that is
# up to ~500 MB rewritten per checkpoint, and more the more often a collection commits.
# Replaying a 100k-run collection (20 commits, 256 MB checkpoints): DuckDB's time 13.9-14.1 s
# at the default, 9.8-11.1 s at 16,384 (32,768: 11.8 s, 65,536: 13.4 s); the file grows
# from 177 to 215 MB. The size is a setting of the attachment, not stored in the file, so
# other readers of the file are unaffected.
WRITE_ROW_GROUP_SIZE = 16_384


def _attach_for_writing(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the warehouse file, with our row group size."""
    # Spill beside the file, as DuckDB does when it opens a file itself (an in-memory
    # database would spill to `.tmp` in the working directory).
    con = duckdb.connect(config={"temp_directory": f"{path}.tmp"})
    try:
        literal = str(path).replace("'", "''")
        _exec(con, f"ATTACH '{literal}' AS warehouse (ROW_GROUP_SIZE {WRITE_ROW_GROUP_SIZE})")
        _exec(con, "USE warehouse")
    except BaseException:
        con.close()
        raise
    return con


def _holder(message: str) -> str:
    m = _HOLDER.search(message)
    if m is None:
        return f"another process (DuckDB said: {message.strip()})"
    return f"process {m.group(2)} ({m.group(1)})"


def _exec(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> None:
    # DuckDB 2 refuses new work on a connection with an unfetched result, DML included.
    con.execute(sql, params or []).fetchall()


def _exec_reading(con: duckdb.DuckDBPyConnection, sql: str, table: pa.Table) -> None:
    """Run `sql`, which reads the Arrow `table` by the name BATCH, for this statement only.

    DuckDB finds the table by that name among this function's local variables (its
    replacement scan). That costs 0.5 ms a statement against 1.7 ms for a relation's
    query(), and 1.0 ms for register() + unregister() (measured, duckdb 2.0.1), and it
    holds nothing afterwards: a table register()ed inside a transaction stays referenced
    until COMMIT, so a transaction of many batches held all of them (+650 MB over a
    100k-run load in one transaction, measured).
    """
    _itwin_runs_batch = table  # read by DuckDB by this name, which BATCH holds
    con.execute(sql).fetchall()


def _refuse_shadowing_table(con: duckdb.DuckDBPyConnection) -> None:
    """Fail before a load if a table or view named BATCH would be read instead of the batch."""
    if _one(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [BATCH]):
        raise ITwinRunsError(
            f"the warehouse holds a table or view named {BATCH}, the name itwin-runs reads "
            "each batch by while loading; DuckDB would read that table instead. Rename or "
            "drop it, then run the command again."
        )


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """First column of the first row (or None); fetchall, since fetchone leaves the result open."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def _as_utc(at: Any) -> datetime:
    if not isinstance(at, datetime):
        raise TypeError(f"expected a datetime, got {type(at).__name__}")
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
