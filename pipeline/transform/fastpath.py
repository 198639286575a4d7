"""The vectorised flattening of a clean batch; it declines anything unusual.

Arrow infers the nested type of the whole batch in one call (which also checks every
value's JSON type exactly: a bool is never taken for an integer, and mixed types fail
inference), then the four tables come from Arrow's list and struct kernels. Whenever
something is not plainly valid (a type mismatch, a missing or repeated id, a timestamp
Arrow will not parse, an extra field it cannot write as JSON cheaply), `flatten_clean`
returns None and the caller runs the careful per-field path, which finds the reasons
and quarantines. So for any batch it accepts, the result equals the careful path's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.transform.schema import (
    CORE_TABLES,
    ERROR_FIELDS,
    JOB_FIELDS,
    RUN_FIELDS,
    TASK_FIELDS,
    UTC_MICROS,
)
from pipeline.transform.timestamps import parse_timestamps

__all__ = ["flatten_clean"]

_IDS = frozenset({"run_id", "job_id", "task_id"})
# Arrow type inferred from JSON values -> the column types it may fill.
_ACCEPTS = {
    pa.string(): (pa.string(), UTC_MICROS),
    pa.int64(): (pa.int64(),),
    pa.bool_(): (pa.bool_(),),
}
# Characters JSON (and orjson) escapes inside strings: a string with none is written as is.
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'
_FLAT_SCALARS = (str, int, bool, type(None))


class _Decline(Exception):
    """The batch is not plainly valid; the careful path decides what to do with it."""


def flatten_clean(
    payloads: Sequence[dict[str, Any]],
    connection_id: pa.Array,
    run_id: pa.Array,
    canonical_text: bytes,
) -> dict[str, pa.Table] | None:
    """The four core tables of runs already keyed (ids checked, one version each), or None.

    `canonical_text` is the runs' canonical JSON (any concatenation): it tells a field
    sent as null from a missing one, which Arrow cannot.
    """
    if not payloads:
        return None
    try:
        runs = pa.array(payloads)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return None
    try:
        return _flatten(runs, payloads, connection_id, run_id, canonical_text)
    except _Decline:
        return None


def _flatten(
    runs: pa.StructArray,
    payloads: Sequence[dict[str, Any]],
    conn: pa.Array,
    run_id: pa.Array,
    text: bytes,
) -> dict[str, pa.Table]:
    run_level = _Level(runs, lambda: list(payloads), text)
    jobs, job_parent = run_level.children("jobs")
    tasks, task_parent = jobs.children("tasks")
    errors, error_parent = tasks.errors()

    run_cols = run_level.columns(RUN_FIELDS, {"connectionId", "jobs"})
    run_cols.update(connection_id=conn, run_id=run_id, duration_s=_duration(run_cols))
    job_cols = jobs.columns(JOB_FIELDS, {"tasks"})
    _no_repeats(job_parent, job_cols["job_id"])
    job_cols.update(connection_id=conn.take(job_parent), run_id=run_id.take(job_parent))
    task_cols = tasks.columns(TASK_FIELDS, {"error"})
    _no_repeats(task_parent, task_cols["task_id"])
    task_cols.update(
        {k: job_cols[k].take(task_parent) for k in ("connection_id", "run_id", "job_id")}
    )
    error_cols = errors.columns(ERROR_FIELDS, set())
    parent_keys = ("connection_id", "run_id", "job_id", "task_id")
    error_cols.update({k: task_cols[k].take(error_parent) for k in parent_keys})
    columns = {"runs": run_cols, "jobs": job_cols, "tasks": task_cols, "task_errors": error_cols}
    return {
        name: pa.table({n: columns[name][n] for n in schema.names}, schema=schema)
        for name, (schema, _) in CORE_TABLES.items()
    }


class _Level:
    """One level of the tree as a struct array, with its Python dicts on demand."""

    def __init__(self, values: pa.Array, dicts: Any, text: bytes) -> None:
        if pa.types.is_null(values.type):
            if len(values):
                raise _Decline  # [null, ...] where objects belong
            values = pa.array([], pa.struct([]))
        if not pa.types.is_struct(values.type) or values.null_count:
            raise _Decline
        self.values: pa.StructArray = values
        self._dicts = dicts  # a callable giving the list of dicts, in row order
        self.text = text  # the batch's canonical JSON

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.values.type]

    def dicts(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._dicts()
        return found

    def children(self, key: str) -> tuple[_Level, pa.Array]:
        """The concatenated `key` lists of every row, and each child's parent row index."""
        if key not in self.names:
            empty = _Level(pa.array([], pa.struct([])), list, self.text)
            return empty, pa.array([], pa.int64())
        lists = pc.struct_field(self.values, key)
        if pa.types.is_null(lists.type):
            return _Level(pa.array([], pa.struct([])), list, self.text), pa.array([], pa.int64())
        if not pa.types.is_list(lists.type):
            raise _Decline
        parent = pc.list_parent_indices(lists).cast(pa.int64())
        child_values = pc.list_flatten(lists)

        def dicts() -> list[dict[str, Any]]:
            return [c for d in self.dicts() for c in (d.get(key) or ())]

        return _Level(child_values, dicts, self.text), parent

    def errors(self) -> tuple[_Level, pa.Array]:
        """Each task's error object (tasks with a null or missing error have none)."""
        if "error" not in self.names:
            return _Level(pa.array([], pa.struct([])), list, self.text), pa.array([], pa.int64())
        values = pc.struct_field(self.values, "error")
        if pa.types.is_null(values.type):
            return _Level(pa.array([], pa.struct([])), list, self.text), pa.array([], pa.int64())
        if not pa.types.is_struct(values.type):
            raise _Decline
        present = pc.indices_nonzero(pc.is_valid(values)).cast(pa.int64())

        def dicts() -> list[dict[str, Any]]:
            return [e for d in self.dicts() if (e := d.get("error")) is not None]

        return _Level(values.take(present), dicts, self.text), present

    def columns(self, fields: dict[str, str], nested: set[str]) -> dict[str, pa.Array]:
        schema = _schema_of(fields)
        cols: dict[str, pa.Array] = {}
        for api_name, column in fields.items():
            if column == "run_id":
                continue  # the run's key, read and checked already
            cols[column] = self._column(api_name, column, schema.field(column).type)
        extra_names = sorted(n for n in self.names if n not in fields and n not in nested)
        cols["extra"] = _extra(self, extra_names, self.text)
        return cols

    def _column(self, api_name: str, column: str, target: pa.DataType) -> pa.Array:
        n = len(self.values)
        if api_name not in self.names:
            if column in _IDS and n:
                raise _Decline
            return pa.nulls(n, target)
        values = pc.struct_field(self.values, api_name)
        if pa.types.is_null(values.type):
            if column in _IDS and n:
                raise _Decline
            return pa.nulls(n, target)
        if target not in _ACCEPTS.get(values.type, ()):
            raise _Decline
        if column in _IDS and (values.null_count or pc.any(pc.equal(values, "")).as_py()):
            raise _Decline
        if target == UTC_MICROS:
            parsed, bad = parse_timestamps(values)
            if bad:
                raise _Decline
            return parsed
        if column == "result":
            return pc.if_else(pc.equal(values, "Cancelled"), pa.scalar("Canceled"), values)
        return values


def _schema_of(fields: dict[str, str]) -> pa.Schema:
    for schema, _ in CORE_TABLES.values():
        if all(c in schema.names for c in fields.values()):
            return schema
    raise LookupError(fields)


def _no_repeats(parent: pa.Array, ids: pa.Array) -> None:
    if len(ids) < 2 or pc.count_distinct(ids).as_py() == len(ids):
        return  # ids unique in the whole batch (GUIDs, as a rule), so within each parent
    pairs = pa.table({"parent": parent, "id": ids})
    if pairs.group_by(["parent", "id"]).aggregate([]).num_rows != len(ids):
        raise _Decline


def _duration(cols: dict[str, pa.Array]) -> pa.Array:
    start = cols["start_time"].view(pa.int64())
    end = cols["end_time"].view(pa.int64())
    return pc.divide(pc.subtract(end, start).cast(pa.float64()), 1e6)


# --- extra: the fields without a column, as JSON with sorted keys --------------------------


def _extra(level: _Level, names: list[str], text: bytes) -> pa.Array:
    """JSON text of the extra fields per row; rows Arrow cannot write exactly go via Python.

    Arrow cannot tell a missing key from a null value. A null is read as "missing" only
    when the batch's canonical JSON (`text`) never holds that key with a null value;
    otherwise, and for values of types not written here, the row takes the per-row path.
    """
    n = len(level.values)
    if not names:
        return pa.nulls(n, pa.string())
    pieces: list[pa.Array] = []
    slow: pa.Array | None = None
    for name in names:
        key = orjson.dumps(name)
        values = pc.struct_field(level.values, name)
        value_text, unsure = _as_json(values)
        if values.null_count and key + b":null" in text:
            unsure = (
                pc.or_(unsure, pc.is_null(values)) if unsure is not None else pc.is_null(values)
            )
        if unsure is not None:
            slow = unsure if slow is None else pc.or_(slow, unsure)
        pieces.append(pc.binary_join_element_wise("," + key.decode() + ":", value_text, ""))
    joined = pc.binary_join_element_wise(*pieces, "", null_handling="replace")
    # Each present field brought a leading comma; the first one becomes the brace.
    fast = pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 1), "}", "")
    if any(p.null_count for p in pieces):  # rows with no extra field at all: NULL
        fast = pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), fast)
    if slow is None:
        return fast
    rows = pc.indices_nonzero(slow).to_pylist()
    if not rows:
        return fast
    dicts = level.dicts()
    by_row = {row: _extra_of(dicts[row], names) for row in rows}
    mask = pa.array([i in by_row for i in range(n)])
    replacement = pa.array([by_row.get(i) for i in range(n)], pa.string())
    return pc.if_else(mask, replacement, fast)


def _as_json(values: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """JSON text of each value, and where that text is not known to be exact (None: nowhere)."""
    if values.type == pa.int64():
        return pc.cast(values, pa.string()), None
    if values.type == pa.bool_():
        return pc.if_else(values, "true", "false"), None
    if values.type == pa.string():
        escapes = pc.fill_null(pc.match_substring_regex(values, _NEEDS_ESCAPE), False)
        text = pc.binary_join_element_wise('"', values, '"', "")
        return text, escapes if pc.any(escapes).as_py() else None
    # Anything else (numbers, nested values, all-null fields): the rows that have it.
    return pa.nulls(len(values), pa.string()), pc.is_valid(values)


def _extra_of(d: dict[str, Any], names: list[str]) -> str | None:
    extra = {k: d[k] for k in names if k in d}
    if not extra:
        return None
    if not all(isinstance(v, _FLAT_SCALARS) for v in extra.values()):
        # Floats (NaN would become null) and nested values need the careful path's walk.
        raise _Decline
    return orjson.dumps(extra, option=orjson.OPT_SORT_KEYS).decode("utf-8")
