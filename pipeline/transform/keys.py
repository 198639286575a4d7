"""What both flatteners derive from the four tables' own columns: each run's duration,
each child row's parent keys (connection, run, job, task ids), and results spelled one way."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

# Each child table, its parent table, and the keys it takes from that parent.
_PARENT_KEYS = (
    ("jobs", "runs", ("connection_id", "run_id")),
    ("tasks", "jobs", ("connection_id", "run_id", "job_id")),
    ("task_errors", "tasks", ("connection_id", "run_id", "job_id", "task_id")),
)
# A result the API spells more than one way -> the spelling stored.
_RESULT_RENAMES = {"Cancelled": "Canceled"}


def add_keys_and_duration(
    columns: dict[str, dict[str, pa.Array]],
    connection_id: pa.Array,
    run_id: pa.Array,
    parent_rows: dict[str, pa.Array],
) -> None:
    """Complete `columns` (table -> column -> array) in place.

    `parent_rows[table]`: for each row of that child table, its parent's row index.
    """
    runs = columns["runs"]
    runs.update(connection_id=connection_id, run_id=run_id, duration_s=_duration(runs))
    for child, parent, keys in _PARENT_KEYS:
        rows = parent_rows[child]
        columns[child].update({k: columns[parent][k].take(rows) for k in keys})


def _duration(runs: dict[str, pa.Array]) -> pa.Array:
    """Seconds from start to end (null where either is missing)."""
    start = runs["start_time"].view(pa.int64())
    end = runs["end_time"].view(pa.int64())
    return pc.divide(pc.subtract(end, start).cast(pa.float64()), 1e6)


def rename_results(results: pa.Array) -> pa.Array:
    """A `result` column with each result in its stored spelling."""
    for old, new in _RESULT_RENAMES.items():
        results = pc.if_else(pc.equal(results, old), pa.scalar(new), results)
    return results
