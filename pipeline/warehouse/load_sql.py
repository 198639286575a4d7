"""The SQL statements of a load: classify a batch's runs, then replace and record them.

Each reads the batch table (BATCH_TABLE) or `_classified`, the temp table classify builds.
"""

from __future__ import annotations

from pipeline.transform.schema import BOOKKEEPING_TABLES, CORE_TABLES
from pipeline.warehouse.statements import BATCH_TABLE

RUN_KEY = ("connection_id", "run_id")
# Children first, so a failure half-way can never leave orphans (it rolls back anyway).
DELETE_ORDER = ("task_errors", "tasks", "jobs", "runs")
SCHEMAS = {name: schema for name, (schema, _) in {**CORE_TABLES, **BOOKKEEPING_TABLES}.items()}
SAME_RUN = " AND ".join(f"t.{k} = c.{k}" for k in RUN_KEY)

# Runs per index lookup. A join whose build side (the batch's runs) holds at most
# `dynamic_or_filter_threshold` distinct values hands the probe side's scan an IN filter
# on them, and DuckDB answers an IN filter on an indexed column from the index when it
# matches fewer than `index_scan_max_count` (2,048 by default) rows.
LOOKUP_IDS = 2_048
# Stored runs from which classify looks a batch's runs up in the index rather than
# joining all of raw_latest: the lookups cost about the same at any size, a join grows
# with the history; the crossover is measured by benchmarks/classify.py.
LOOKUP_ABOVE_STORED_RUNS = 500_000

STORED_RUNS_ESTIMATE = """
SELECT estimated_size FROM duckdb_tables()
WHERE table_name = 'raw_latest' AND database_name = current_database()
    AND schema_name = current_schema()
"""

CREATE_STORED = """
CREATE OR REPLACE TEMP TABLE _stored (
    connection_id VARCHAR, run_id VARCHAR, payload_hash VARCHAR, fetched_at TIMESTAMPTZ
)
"""

# The stored versions of the batch's runs (looked up by run_id alone, the indexed column;
# a run of the same id under another connection is ignored by the classifying join).
STORED_VERSIONS = f"""
INSERT INTO _stored
SELECT l.connection_id, l.run_id, l.payload_hash, l.fetched_at
FROM raw_latest l SEMI JOIN {BATCH_TABLE} b ON l.run_id = b.run_id
"""


# new: never stored; unchanged: same hash as the stored version; stale: fetched before
# the stored version (loading old files after a collection); changed: everything else.
CLASSIFY = f"""
CREATE OR REPLACE TEMP TABLE _classified AS
SELECT b.connection_id, b.run_id, b.payload_hash, b.fetched_at, b.state,
    CASE
        WHEN l.run_id IS NULL THEN 'new'
        WHEN l.payload_hash = b.payload_hash THEN 'unchanged'
        WHEN b.fetched_at < l.fetched_at THEN 'stale'
        ELSE 'changed'
    END AS outcome
FROM {BATCH_TABLE} b
LEFT JOIN {{stored}} l USING (connection_id, run_id)
"""

COUNT_OUTCOMES = "SELECT connection_id, outcome, count(*) FROM _classified GROUP BY ALL"


def of_runs(outcome: str) -> str:
    """A filter keeping the batch rows (`t`) of runs whose outcome is `outcome` (SQL)."""
    return f" SEMI JOIN _classified c ON {SAME_RUN} AND c.outcome {outcome}"


def insert_from_batch(target: str, rows: str = "") -> str:
    """Insert the batch table (read as `t`) into `target`; `rows` filters it."""
    cols = ", ".join(SCHEMAS[target].names)
    return f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {BATCH_TABLE} t{rows}"


def delete_changed(table: str) -> str:
    return f"DELETE FROM {table} t USING _classified c WHERE c.outcome = 'changed' AND {SAME_RUN}"


UPDATE_LATEST_CHANGED = """
UPDATE raw_latest SET payload_hash = c.payload_hash, fetched_at = c.fetched_at, state = c.state
FROM _classified c
WHERE c.outcome = 'changed'
    AND raw_latest.connection_id = c.connection_id AND raw_latest.run_id = c.run_id
"""

# Remember the latest time an unchanged run was seen, so older files stay "stale".
UPDATE_LATEST_SEEN = """
UPDATE raw_latest SET fetched_at = c.fetched_at
FROM _classified c
WHERE c.outcome = 'unchanged' AND c.fetched_at > raw_latest.fetched_at
    AND raw_latest.connection_id = c.connection_id AND raw_latest.run_id = c.run_id
"""

INSERT_LATEST = """
INSERT INTO raw_latest (connection_id, run_id, payload_hash, fetched_at, state)
SELECT connection_id, run_id, payload_hash, fetched_at, state
FROM _classified WHERE outcome = 'new'
"""

# The same unreadable payload for the same reason is recorded once, so loading the same
# pages twice changes nothing.
INSERT_QUARANTINE = f"""
INSERT INTO quarantine (connection_id, run_id, reason, payload, payload_hash, fetched_at, source)
SELECT b.connection_id, b.run_id, b.reason, b.payload, b.payload_hash, b.fetched_at, b.source
FROM (SELECT DISTINCT ON (connection_id, payload_hash, reason) * FROM {BATCH_TABLE}) b
ANTI JOIN quarantine q
    ON q.payload_hash = b.payload_hash AND q.reason = b.reason
    AND q.connection_id IS NOT DISTINCT FROM b.connection_id
"""

LATEST_PAYLOADS = """
SELECT l.connection_id, r.payload, l.fetched_at
FROM raw_latest l
JOIN raw_runs r USING (connection_id, run_id, payload_hash)
ORDER BY l.connection_id, l.run_id
"""


# What the next model build must redo (see warehouse/builds.py): the day a changed run
# leaves (read before its rows are replaced) and the day a new or changed run enters
# (from the batch's runs); a stale run only adds a version to its history, on no day.
def record_changes(seq: int) -> str:
    return f"""
INSERT INTO model_changes (seq, connection_id, run_id, day, has_day)
SELECT DISTINCT {int(seq)}, connection_id, run_id, day, has_day FROM (
    SELECT c.connection_id, c.run_id, {UTC_DAY.format(t="r")} AS day, true AS has_day
    FROM _classified c JOIN runs r USING (connection_id, run_id)
    WHERE c.outcome = 'changed'
    UNION ALL
    SELECT t.connection_id, t.run_id, {UTC_DAY.format(t="t")}, true
    FROM {BATCH_TABLE} t SEMI JOIN _classified c ON {SAME_RUN} AND c.outcome IN ('new', 'changed')
    UNION ALL
    SELECT connection_id, run_id, NULL, false FROM _classified WHERE outcome = 'stale'
)
"""


# The day stg_runs gives a run (UTC, whatever the session time zone).
UTC_DAY = "cast(timezone('UTC', {t}.start_time) AS date)"

CREATE_DELETED = f"""
CREATE OR REPLACE TEMP TABLE _deleted AS
SELECT DISTINCT t.connection_id, t.run_id FROM {BATCH_TABLE} t
SEMI JOIN raw_latest l ON l.connection_id = t.connection_id AND l.run_id = t.run_id
"""


def record_deletions(seq: int) -> str:
    return f"""
INSERT INTO model_changes (seq, connection_id, run_id, day, has_day)
SELECT {int(seq)}, d.connection_id, d.run_id, {UTC_DAY.format(t="r")}, r.run_id IS NOT NULL
FROM _deleted d LEFT JOIN runs r USING (connection_id, run_id)
"""


def delete_listed(table: str) -> str:
    return f"DELETE FROM {table} t USING _deleted c WHERE {SAME_RUN}"
