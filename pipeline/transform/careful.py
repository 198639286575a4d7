"""The careful flattening: finds every problem in a batch and names it, run by run.

Runs with a problem are left out of the tables and reported with the reason, so one
unusual run never stops the rest of its batch. Used when the fast path declines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.transform.canonical import (
    UnreadablePayload,
    extra_json,
    find_bad_value,
)
from pipeline.transform.fastpath import KNOWN_KEYS
from pipeline.transform.keys import add_keys_and_duration, rename_results
from pipeline.transform.schema import API_FIELDS, CORE_TABLES, UTC_MICROS
from pipeline.transform.timestamps import parse_timestamps


@dataclass
class _Entities:
    """One level of the tree: its dicts, the run each belongs to, and a label for reasons."""

    dicts: list[Any]
    owner: list[int]  # index of the run (in the batch) each row belongs to
    label: Callable[[int], str]


class Problems(dict[int, str]):
    """Run index -> first reason it cannot be loaded."""

    def mark(self, run: int, reason: str) -> None:
        self.setdefault(run, reason)


_KINDS: dict[pa.DataType, tuple[type, ...]] = {
    pa.string(): (str, type(None)),
    pa.int64(): (int, type(None)),
    pa.bool_(): (bool, type(None)),
    UTC_MICROS: (str, type(None)),
}
_EXPECTED = {
    pa.string(): "a string",
    pa.int64(): "an integer",
    pa.bool_(): "true or false",
    UTC_MICROS: "a timestamp string",
}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def flatten_carefully(
    payloads: list[Any], conn: pa.Array, run_id: pa.Array
) -> tuple[dict[str, pa.Table], Problems]:
    """The four tables of these payloads, and the runs that cannot be loaded with why."""
    problems = Problems()
    runs = _Entities(payloads, list(range(len(payloads))), lambda i: "")
    jobs, job_parent = _children(runs, "jobs", problems)
    tasks, task_parent = _children(jobs, "tasks", problems)
    errors, error_parent = _errors(tasks, problems)
    run_cols = _columns(runs, "runs", problems)
    job_cols = _columns(jobs, "jobs", problems)
    task_cols = _columns(tasks, "tasks", problems)
    error_cols = _columns(errors, "task_errors", problems)
    _duplicates(job_parent, job_cols["job_id"], jobs, "jobs", problems)
    _duplicates(task_parent, task_cols["task_id"], tasks, "tasks", problems)

    columns = {"runs": run_cols, "jobs": job_cols, "tasks": task_cols, "task_errors": error_cols}
    parents = {"jobs": job_parent, "tasks": task_parent, "task_errors": error_parent}
    rows = {table: pa.array(ix, pa.int64()) for table, ix in parents.items()}
    add_keys_and_duration(columns, conn, run_id, rows)
    owners = {
        "runs": runs.owner,
        "jobs": jobs.owner,
        "tasks": tasks.owner,
        "task_errors": errors.owner,
    }
    tables = {name: _table(name, columns[name], owners[name], problems) for name in CORE_TABLES}
    return tables, problems


def _children(parents: _Entities, key: str, problems: Problems) -> tuple[_Entities, list[int]]:
    """Concatenate every parent's `key` list; rows remember their parent's row index."""
    dicts: list[Any] = []
    parent_ix: list[int] = []
    position: list[int] = []
    for i, value in enumerate([d.get(key) for d in parents.dicts]):
        if value is None:
            continue  # a missing or null list means no children
        if type(value) is not list:
            problems.mark(
                parents.owner[i],
                f"{parents.label(i)}{key}: expected an array, got {json_type(value)}",
            )
            continue
        dicts.extend(value)
        parent_ix.extend([i] * len(value))
        position.extend(range(len(value)))
    owner = [parents.owner[p] for p in parent_ix]

    def label(row: int) -> str:
        return f"{parents.label(parent_ix[row])}{key}[{position[row]}]."

    children = _Entities(dicts, owner, label)
    _require_objects(children, problems)
    return children, parent_ix


def _errors(tasks: _Entities, problems: Problems) -> tuple[_Entities, list[int]]:
    values = [t.get("error") for t in tasks.dicts]
    parent_ix = [i for i, e in enumerate(values) if e is not None]
    errors = _Entities(
        [values[i] for i in parent_ix],
        [tasks.owner[i] for i in parent_ix],
        lambda row: f"{tasks.label(parent_ix[row])}error.",
    )
    _require_objects(errors, problems)
    return errors, parent_ix


def _require_objects(ents: _Entities, problems: Problems) -> None:
    if set(map(type, ents.dicts)) <= {dict}:
        return
    for i, d in enumerate(ents.dicts):
        if type(d) is not dict:
            where = ents.label(i).rstrip(".")
            problems.mark(ents.owner[i], f"{where}: expected an object, got {json_type(d)}")
            ents.dicts[i] = {}  # keep rows aligned; the run is quarantined anyway


def _columns(ents: _Entities, table: str, problems: Problems) -> dict[str, pa.Array]:
    schema = CORE_TABLES[table][0]
    fields = API_FIELDS[table]
    cols: dict[str, pa.Array] = {}
    for api_name, column in fields.items():
        values = [d.get(api_name) for d in ents.dicts]
        is_id = column in ("run_id", "job_id", "task_id")
        if column == "run_id":
            continue  # the run's id is its key, read and checked already
        cols[column] = _typed(values, schema.field(column).type, ents, api_name, problems, is_id)
        if column == "result":
            cols[column] = rename_results(cols[column])
    cols["extra"] = _extra(ents, KNOWN_KEYS[table], problems)
    return cols


def _typed(
    values: list[Any],
    arrow_type: pa.DataType,
    ents: _Entities,
    name: str,
    problems: Problems,
    is_id: bool,
) -> pa.Array:
    allowed = (str,) if is_id else _KINDS[arrow_type]
    if not set(map(type, values)) <= set(allowed) or (is_id and "" in values):
        for i, v in enumerate(values):
            if type(v) not in allowed or (is_id and v == ""):
                expected = "a non-empty string" if is_id else _EXPECTED[arrow_type]
                what = "missing" if v is None else f"expected {expected}, got {json_type(v)}"
                problems.mark(ents.owner[i], f"{ents.label(i)}{name}: {what}")
                values[i] = None
    if arrow_type == UTC_MICROS:
        parsed, bad = parse_timestamps(pa.array(values, pa.string()))
        for i in bad:
            problems.mark(
                ents.owner[i],
                f"{ents.label(i)}{name}: not an ISO 8601 timestamp: {str(values[i])[:64]!r}",
            )
        return parsed
    if arrow_type == pa.int64():
        return _int64(values, ents, name, problems)
    return pa.array(values, arrow_type)


def _int64(values: list[Any], ents: _Entities, name: str, problems: Problems) -> pa.Array:
    try:
        return pa.array(values, pa.int64())
    except (OverflowError, pa.ArrowInvalid):
        pass
    for i, v in enumerate(values):
        if v is not None and not _INT64_MIN <= v <= _INT64_MAX:
            problems.mark(ents.owner[i], f"{ents.label(i)}{name}: integer {v} out of int64 range")
            values[i] = None
    return pa.array(values, pa.int64())


def _extra(ents: _Entities, known: frozenset[str], problems: Problems) -> pa.Array:
    """Fields without a column, as JSON text (keys sorted); NULL when there are none."""
    out: list[str | None] = [None] * len(ents.dicts)
    for i, d in enumerate(ents.dicts):
        if known.issuperset(d):
            continue
        extra = {k: v for k, v in d.items() if k not in known}
        try:
            out[i] = extra_json(extra)
        except UnreadablePayload:  # rare: find the bad value again, now with its path
            problems.mark(ents.owner[i], str(find_bad_value(extra, ents.label(i).rstrip("."))))
    return pa.array(out, pa.string())


def _duplicates(
    parent_ix: Sequence[int], ids: pa.Array, ents: _Entities, what: str, problems: Problems
) -> None:
    if len(ids) < 2:
        return
    t = pa.table(
        {
            "parent": pa.array(parent_ix, pa.int64()),
            "id": ids,
            "row": pa.array(range(len(ids)), pa.int64()),
        }
    )
    counts = t.group_by(["parent", "id"]).aggregate([("row", "min"), ("row", "count")])
    dup = counts.filter(pc.greater(counts["row_count"], 1))
    for row, ident in zip(dup["row_min"].to_pylist(), dup["id"].to_pylist(), strict=True):
        if ident is not None:
            where = ents.label(row).rstrip(".").rsplit("[", 1)[0]
            problems.mark(ents.owner[row], f"{where}: id {ident!r} appears more than once")


def _table(name: str, cols: dict[str, pa.Array], owner: list[int], problems: Problems) -> pa.Table:
    schema = CORE_TABLES[name][0]
    table = pa.table({n: cols[n] for n in schema.names}, schema=schema)
    if problems and len(owner):
        keep = pc.invert(
            pc.is_in(pa.array(owner, pa.int64()), value_set=pa.array(list(problems), pa.int64()))
        )
        table = table.filter(keep)
    return table


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
