"""The vectorised flattening of a clean batch; it declines anything unusual.

Arrow converts the whole batch in one call to a fixed nested type holding every known
key. Converting to a known type is cheaper than letting Arrow infer one, but it is
lenient where inference was strict, so the shape
is checked first, in Python, where that leniency could hide a wrong value: each level
must be a list of exact dicts (Arrow would take a string or a tuple as a list, a list of
pairs as an object), integer fields must hold exact ints (Arrow would truncate 1.5 to
1), and unknown keys are found per row (Arrow would drop them) and written as the extra
column's JSON. What Arrow still rejects on its own (a number where a string belongs, a
bool where an integer belongs, an integer beyond int64) makes it raise.

Whenever something is not plainly valid (a type mismatch, a missing or repeated id, a
timestamp Arrow will not parse, an extra value JSON cannot carry), `flatten_clean`
returns None and the caller runs the careful per-field path, which finds the reasons
and quarantines. So for any batch it accepts, the result equals the careful path's.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.transform.canonical import UnreadablePayload, extra_json
from pipeline.transform.keys import add_keys_and_duration, rename_results
from pipeline.transform.schema import (
    API_FIELDS,
    CORE_TABLES,
    ERROR_FIELDS,
    JOB_FIELDS,
    RUN_FIELDS,
    TASK_FIELDS,
    UTC_MICROS,
)
from pipeline.transform.timestamps import parse_timestamps

__all__ = ["KNOWN_KEYS", "extra_column", "flatten_clean"]

_IDS = frozenset({"run_id", "job_id", "task_id"})
_NONE = type(None)
_LIST_OR_NONE: frozenset[type] = frozenset({list, _NONE})
_DICT_OR_NONE: frozenset[type] = frozenset({dict, _NONE})
_INT_OR_NONE: frozenset[type] = frozenset({int, _NONE})

# Keys of each level that never go to `extra`: its columns and its nested children.
KNOWN_KEYS = {
    "runs": frozenset(RUN_FIELDS) | {"connectionId", "jobs"},
    "jobs": frozenset(JOB_FIELDS) | {"tasks"},
    "tasks": frozenset(TASK_FIELDS) | {"error"},
    "task_errors": frozenset(ERROR_FIELDS),
}


def _struct_of(table: str, fields: dict[str, str], children: list[pa.Field]) -> pa.StructType:
    """The Arrow type one level converts to: every key it knows (timestamps as text).

    Holding every known key lets a row's count of non-null fields tell, against its
    count of keys, whether it may have an extra key (see `_rows_maybe_extra`).
    """
    schema = CORE_TABLES[table][0]
    out = []
    for api_name, column in fields.items():
        arrow_type = schema.field(column).type
        out.append(pa.field(api_name, pa.string() if arrow_type == UTC_MICROS else arrow_type))
    return pa.struct(out + children)


_ERROR_TYPE = _struct_of("task_errors", ERROR_FIELDS, [])
_TASK_TYPE = _struct_of("tasks", TASK_FIELDS, [pa.field("error", _ERROR_TYPE)])
_JOB_TYPE = _struct_of("jobs", JOB_FIELDS, [pa.field("tasks", pa.list_(_TASK_TYPE))])
_RUN_TYPE = _struct_of(
    "runs",
    RUN_FIELDS,
    [pa.field("connectionId", pa.string()), pa.field("jobs", pa.list_(_JOB_TYPE))],
)
# Integer fields per level: Arrow's int64 conversion accepts floats, so they are checked.
_INT_FIELDS = {
    name: [api for api, col in fields.items() if CORE_TABLES[name][0].field(col).type == pa.int64()]
    for name, fields in API_FIELDS.items()
}


class _Decline(Exception):
    """The batch is not plainly valid; the careful path decides what to do with it."""


@dataclass(frozen=True)
class _Tree:
    """Every entity of the batch per level, in Arrow's flattening order."""

    runs: Sequence[dict[str, Any]]
    jobs: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    errors: list[dict[str, Any]]  # the tasks' non-null error objects


def flatten_clean(
    payloads: Sequence[dict[str, Any]], connection_id: pa.Array, run_id: pa.Array
) -> dict[str, pa.Table] | None:
    """The four core tables of runs already keyed (ids checked, one version each), or None."""
    if not payloads:
        return None
    try:
        tree = _walk(payloads)
        runs = _convert(payloads)
        return _flatten(runs, tree, connection_id, run_id)
    except _Decline:
        return None


def _walk(payloads: Sequence[dict[str, Any]]) -> _Tree:
    """The entities of every level, declining any shape Arrow's conversion would bend."""
    _require(payloads, frozenset({dict}))
    jobs = _children(payloads, "jobs")
    tasks = _children(jobs, "tasks")
    errors = _values(tasks, "error")
    _require(errors, _DICT_OR_NONE)
    tree = _Tree(payloads, jobs, tasks, [e for e in errors if e is not None])
    levels = {"runs": payloads, "jobs": jobs, "tasks": tasks, "task_errors": tree.errors}
    for name, dicts in levels.items():
        for api_name in _INT_FIELDS[name]:
            _require(_values(dicts, api_name), _INT_OR_NONE)
    return tree


def _values(dicts: Sequence[dict[str, Any]], key: str) -> list[Any]:
    # map over dict.get loops in C, cheaper than a comprehension; it also needs every item
    # to be an exact dict, as checked.
    return list(map(dict.get, dicts, repeat(key)))


def _children(parents: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    lists = _values(parents, key)
    _require(lists, _LIST_OR_NONE)  # Arrow would take a string or a tuple as a list
    children = list(chain.from_iterable(filter(None, lists)))  # only lists and None here
    _require(children, frozenset({dict}))  # ... and a tuple or a list of pairs as an object
    return children


def _require(values: Sequence[Any], types: frozenset[type]) -> None:
    if not types.issuperset(map(type, values)):
        raise _Decline


def _convert(payloads: Sequence[dict[str, Any]]) -> pa.StructArray:
    try:
        runs: pa.StructArray = pa.array(payloads, _RUN_TYPE)
    except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
        raise _Decline from exc  # a value of the wrong JSON type, an int beyond int64
    return runs


def _flatten(
    runs: pa.StructArray, tree: _Tree, conn: pa.Array, run_id: pa.Array
) -> dict[str, pa.Table]:
    jobs, job_parent = _children_of(runs, "jobs")
    tasks, task_parent = _children_of(jobs, "tasks")
    errors, error_parent = _errors_of(tasks)

    columns = {
        "runs": _columns(runs, tree.runs, "runs"),
        "jobs": _columns(jobs, tree.jobs, "jobs"),
        "tasks": _columns(tasks, tree.tasks, "tasks"),
        "task_errors": _columns(errors, tree.errors, "task_errors"),
    }
    _no_repeats(job_parent, columns["jobs"]["job_id"])
    _no_repeats(task_parent, columns["tasks"]["task_id"])
    parents = {"jobs": job_parent, "tasks": task_parent, "task_errors": error_parent}
    add_keys_and_duration(columns, conn, run_id, parents)
    return {
        name: pa.table({n: columns[name][n] for n in schema.names}, schema=schema)
        for name, (schema, _) in CORE_TABLES.items()
    }


def _children_of(parents: pa.StructArray, key: str) -> tuple[pa.StructArray, pa.Array]:
    """The concatenated `key` lists of every row, and each child's parent row index."""
    lists = pc.struct_field(parents, key)
    parent = pc.list_parent_indices(lists).cast(pa.int64())
    children: pa.StructArray = pc.list_flatten(lists)
    if children.null_count:
        raise _Decline  # [null, ...] where objects belong
    return children, parent


def _errors_of(tasks: pa.StructArray) -> tuple[pa.StructArray, pa.Array]:
    """Each task's error object (tasks with a null or missing error have none)."""
    values = pc.struct_field(tasks, "error")
    present = pc.indices_nonzero(pc.is_valid(values)).cast(pa.int64())
    errors: pa.StructArray = values.take(present)
    return errors, present


def _columns(
    values: pa.StructArray, dicts: Sequence[dict[str, Any]], table: str
) -> dict[str, pa.Array]:
    schema = CORE_TABLES[table][0]
    cols: dict[str, pa.Array] = {}
    for api_name, column in API_FIELDS[table].items():
        if column == "run_id":
            continue  # the run's key, read and checked already
        field_values = pc.struct_field(values, api_name)
        cols[column] = _column(field_values, column, schema.field(column).type)
    try:
        cols["extra"] = _extra(values, dicts, KNOWN_KEYS[table])
    except UnreadablePayload as exc:
        raise _Decline from exc
    return cols


def _rows_maybe_extra(values: pa.StructArray, dicts: Sequence[dict[str, Any]]) -> list[int]:
    """Rows with more keys than non-null known fields: only they can hold an extra key.

    A row's known keys are all in `values`' type, so a row whose key count equals its
    count of non-null fields has no other key; only the rows left are looked at in Python.
    """
    always = 0  # fields valid in every row add one each, without a kernel call
    non_null: pa.Array | None = None
    for field_values in values.flatten():
        if not field_values.null_count:
            always += 1
        elif field_values.null_count < len(field_values):
            valid = pc.is_valid(field_values).cast(pa.int64())
            non_null = valid if non_null is None else pc.add(non_null, valid)
    keys = pa.array(list(map(len, dicts)), pa.int64())
    others = pc.subtract(keys, always)
    differs = pc.not_equal(others, non_null) if non_null is not None else others
    rows: list[int] = pc.indices_nonzero(differs).to_pylist()
    return rows


def _column(values: pa.Array, column: str, target: pa.DataType) -> pa.Array:
    if (
        column in _IDS
        and len(values)
        and (values.null_count or pc.any(pc.equal(values, "")).as_py())
    ):
        raise _Decline
    if target == UTC_MICROS:
        parsed, bad = parse_timestamps(values)
        if bad:
            raise _Decline
        return parsed
    if column == "result":
        return rename_results(values)
    return values


def _no_repeats(parent: pa.Array, ids: pa.Array) -> None:
    # unique() is cheaper than count_distinct() on these ids; ids hold no nulls here, so
    # both count the same.
    if len(ids) < 2 or len(pc.unique(ids)) == len(ids):
        return  # ids unique in the whole batch (GUIDs, as a rule), so within each parent
    pairs = pa.table({"parent": parent, "id": ids})
    if pairs.group_by(["parent", "id"]).aggregate([]).num_rows != len(ids):
        raise _Decline


# --- extra: the fields without a column, as JSON with sorted keys --------------------------


def _extra(
    values: pa.StructArray, dicts: Sequence[dict[str, Any]], known: frozenset[str]
) -> pa.Array:
    """The extra column of one level: Arrow writes the usual extras, Python any others."""
    rows = [i for i in _rows_maybe_extra(values, dicts) if not known.issuperset(dicts[i])]
    if not rows:
        return pa.nulls(len(dicts), pa.string())
    with_extra = [dicts[i] for i in rows]
    texts = _flat_extras(with_extra, known)
    if texts is None:
        texts = extra_column(with_extra, known)
    positions: list[int | None] = [None] * len(dicts)
    for at, row in enumerate(rows):
        positions[row] = at
    return texts.take(pa.array(positions, pa.int64()))


# orjson escapes these inside strings (and nothing else): text without them is written as is.
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


def _flat_extras(dicts: Sequence[dict[str, Any]], known: frozenset[str]) -> pa.Array | None:
    """JSON text of rows that each have extras, when every extra is a plain scalar; or None.

    Plain: per key, only strings needing no escape, or only int64s, or only bools, and
    never an explicit null (Arrow cannot tell it from a missing key). Anything else: None,
    and Python writes each row.
    """
    names = sorted(set().union(*dicts) - known)  # code point order, as orjson sorts
    pieces = []
    for name in names:
        text = _scalar_json(list(map(dict.get, dicts, repeat(name))))
        if text is None or _present(dicts, name) != len(text) - text.null_count:
            return None  # not plain, or sent as null somewhere
        key = orjson.dumps(name).decode("utf-8")
        pieces.append(pc.binary_join_element_wise("," + key + ":", text, ""))
    joined = pc.binary_join_element_wise(*pieces, "", null_handling="replace")
    # Each present field brought a leading comma; the first one becomes the brace.
    braced: pa.Array = pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 1), "}", "")
    return braced


def _present(dicts: Sequence[dict[str, Any]], name: str) -> int:
    return sum(map(operator.contains, dicts, repeat(name)))


def _scalar_json(values: list[Any]) -> pa.Array | None:
    """JSON text of each value (null where None), if all are one plain kind; else None."""
    kinds = set(map(type, values)) - {_NONE}
    if kinds == {int}:
        try:
            return pc.cast(pa.array(values, pa.int64()), pa.string())
        except OverflowError:
            return None  # beyond int64 (up to uint64 is valid JSON): Python writes it
    if kinds == {bool}:
        return pc.if_else(pa.array(values, pa.bool_()), "true", "false")
    if kinds == {str}:
        strings = pa.array(values, pa.string())
        if pc.any(pc.match_substring_regex(strings, _NEEDS_ESCAPE)).as_py():
            return None
        return pc.binary_join_element_wise('"', strings, '"', "")
    return None  # floats, nested values, mixed kinds: Python writes them


def extra_column(dicts: Sequence[dict[str, Any]], known: frozenset[str]) -> pa.Array:
    """The fields without a column as JSON text (keys sorted) per row; NULL when none.

    Raises UnreadablePayload (naming the value) for a row JSON cannot carry exactly.
    """
    out: list[str | None] = [None] * len(dicts)
    for i, d in enumerate(dicts):
        if not known.issuperset(d):
            out[i] = extra_json({k: v for k, v in d.items() if k not in known})
    return pa.array(out, pa.string())
