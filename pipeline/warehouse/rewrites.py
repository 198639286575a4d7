"""Rewriting stored runs without the API: the core tables rebuilt from the raw versions,
and runs deleted wholly."""

from __future__ import annotations

import orjson
import pyarrow as pa

from pipeline.transform.flatten import FetchedRun, FlatBatch, flatten_runs
from pipeline.transform.schema import CORE_TABLES
from pipeline.warehouse import load_sql as sql
from pipeline.warehouse.builds import forget_builds, next_change_seq
from pipeline.warehouse.loader import ConnectionLoadStats, LoadStats
from pipeline.warehouse.statements import StatementRunner, first_value, transaction


class RunRewriter:
    """Rebuilds and deletes stored runs over the loader's connection, each in one transaction."""

    def __init__(self, statements: StatementRunner) -> None:
        self.statements = statements
        self.con = statements.con

    def delete_runs(self, keys: list[tuple[str, str]]) -> int:
        """Delete runs wholly (their tasks, errors, jobs and raw versions), as if never
        fetched; the days they leave are recorded for the next build. Returns how many."""
        if not keys:
            return 0
        keys_table = pa.table(
            {"connection_id": [k[0] for k in keys], "run_id": [k[1] for k in keys]}
        )
        with transaction(self.con):
            self.statements.run("keys to delete", sql.CREATE_DELETED, keys_table)
            seq = next_change_seq(self.con)  # the listed runs and the days they leave
            self.statements.run("record deletions", sql.record_deletions(seq))
            for name in (*sql.DELETE_ORDER, "raw_runs", "raw_latest"):
                self.statements.run(f"DELETE {name}", sql.delete_listed(name))
            return int(first_value(self.con, "SELECT count(*) FROM _deleted") or 0)

    def rebuild_from_raw(self, *, batch_runs: int = 5_000) -> LoadStats:
        """Rebuild the four core tables from the latest raw version of every run, no API."""
        reader = self.con.cursor()  # its own connection: streams while we write
        try:
            # A cursor starts on the default database, not the attached warehouse file.
            reader.execute(f"USE {first_value(self.con, 'SELECT current_database()')}")
            result = reader.sql(sql.LATEST_PAYLOADS).to_arrow_reader(batch_runs)
            stats = LoadStats()
            with transaction(self.con):
                forget_builds(self.con)  # every table is rewritten: the next build is full
                for name in sql.DELETE_ORDER:
                    self.statements.run(f"CLEAR {name}", f"DELETE FROM {name}")
                for record_batch in result:
                    stats.add(self._insert_rebuilt(record_batch))
            return stats
        finally:
            reader.close()

    def _insert_rebuilt(self, record_batch: pa.RecordBatch) -> LoadStats:
        batch = _flattened_payloads(record_batch)
        for name in CORE_TABLES:
            self.statements.run(f"INSERT {name}", sql.insert_from_batch(name), batch.tables[name])
        self.statements.run("INSERT quarantine", sql.INSERT_QUARANTINE, batch.quarantine)
        stats = LoadStats()
        for cid in batch.tables["runs"].column("connection_id").to_pylist():
            stats.connections.setdefault(cid, ConnectionLoadStats()).new += 1
        return stats


def _flattened_payloads(record_batch: pa.RecordBatch) -> FlatBatch:
    """Stored versions (connection_id, payload, fetched_at) flattened again."""
    columns = record_batch.to_pydict()
    runs = [
        FetchedRun(cid, orjson.loads(payload), at)
        for cid, payload, at in zip(
            columns["connection_id"], columns["payload"], columns["fetched_at"], strict=True
        )
    ]
    return flatten_runs(runs)
