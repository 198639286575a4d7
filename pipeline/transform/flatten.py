"""Run JSON (from list pages or single-run answers) -> the four core Arrow tables.

Column by column rather than row by row: each field is pulled out of every entity of
the batch with one comprehension, its Python types are checked in one pass, and Arrow
builds the column. Hostile values (wrong types, ids missing or repeated, timestamps
that do not parse, integers out of range, NaN) never raise: they mark their run, and
marked runs go to the quarantine table whole, with a reason naming the field.
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.transform.canonical import (
    UnreadablePayload,
    canonical_json,
    extra_json,
    fallback_text,
    find_bad_value,
    hash_bytes,
    payload_hash,
)
from pipeline.transform.fastpath import KNOWN_KEYS, flatten_clean
from pipeline.transform.keys import add_keys_and_duration
from pipeline.transform.schema import (
    CORE_TABLES,
    ERROR_FIELDS,
    JOB_FIELDS,
    QUARANTINE,
    RAW_LATEST,
    RAW_RUNS,
    RUN_FIELDS,
    TASK_FIELDS,
    UTC_MICROS,
)
from pipeline.transform.timestamps import parse_timestamps

__all__ = ["FetchedRun", "FlatBatch", "Rejected", "flatten_runs", "payload_hash"]

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class FetchedRun:
    """One run as the API answered it: the connection asked for, the parsed JSON, when."""

    connection_id: str
    payload: Any
    fetched_at: datetime
    source: str | None = None  # where it came from (file path, URL), kept with quarantine rows


@dataclass(frozen=True, slots=True)
class Rejected:
    """Something unreadable before it is even a run (a file that is not JSON, say)."""

    connection_id: str
    reason: str
    text: str
    fetched_at: datetime
    source: str | None = None


@dataclass(frozen=True)
class FlatBatch:
    """A batch ready to load: core tables, raw versions, current versions, quarantine."""

    tables: dict[str, pa.Table]
    raw: pa.Table  # one row per distinct (connection, run, payload hash), first fetch time
    latest: pa.Table  # one row per run now in `tables`: the version they were built from
    quarantine: pa.Table

    @property
    def run_count(self) -> int:
        return int(self.tables["runs"].num_rows)


@dataclass(slots=True)
class _Version:
    connection_id: str
    run_id: str
    payload: dict[str, Any]
    canonical: bytes
    hash: str
    fetched_at: datetime
    source: str | None


@dataclass
class _Quarantine:
    rows: dict[str, list[Any]] = field(default_factory=lambda: {n: [] for n in QUARANTINE.names})

    def add(
        self, run: FetchedRun | _Version | Rejected, run_id: str | None, reason: str, text: str
    ) -> None:
        digest = hash_bytes(text.encode("utf-8", "backslashreplace"))
        conn = run.connection_id or None
        values = (conn, run_id, reason, text, digest, _utc(run.fetched_at), run.source)
        for name, value in zip(QUARANTINE.names, values, strict=True):
            self.rows[name].append(value)

    def table(self) -> pa.Table:
        return pa.table(
            {n: pa.array(self.rows[n], QUARANTINE.field(n).type) for n in QUARANTINE.names},
            schema=QUARANTINE,
        )


def flatten_runs(runs: Iterable[FetchedRun], rejected: Iterable[Rejected] = ()) -> FlatBatch:
    """Flatten a batch; never raises on what the API (or a file) sent.

    `rejected` are added to the quarantine as they are (the caller has the reason).
    """
    # The batch holds many small containers and creates no cycles; the cyclic collector's
    # passes over them would only cost, so it waits meanwhile.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _flatten_batch(runs, rejected)
    finally:
        if enabled:
            gc.enable()


def _flatten_batch(runs: Iterable[FetchedRun], rejected: Iterable[Rejected]) -> FlatBatch:
    quarantine = _Quarantine()
    for item in rejected:
        quarantine.add(item, None, item.reason, item.text)
    versions = _read_versions(runs, quarantine)
    latest = _latest_per_run(versions)
    keys = _KeyColumns.of(latest)
    tables, bad = _flatten_fast_or_careful(latest, keys)
    if not bad and len(latest) == len(versions):
        # The usual batch: each run fetched once and loaded, so raw versions = latest.
        return FlatBatch(
            tables=tables,
            raw=keys.raw_table([v.canonical for v in latest]),
            latest=keys.latest_table(),
            quarantine=quarantine.table(),
        )
    bad_keys = set()
    for i, reason in sorted(bad.items()):
        v = latest[i]
        quarantine.add(v, v.run_id, reason, v.canonical.decode("utf-8"))
        bad_keys.add((v.connection_id, v.run_id, v.hash))
    good = [v for i, v in enumerate(latest) if i not in bad]
    return FlatBatch(
        tables=tables,
        raw=_raw_table(versions, bad_keys),
        latest=_KeyColumns.of(good).latest_table(),
        quarantine=quarantine.table(),
    )


@dataclass(frozen=True)
class _KeyColumns:
    """The key and bookkeeping columns of some versions, built once for every table."""

    connection_id: pa.Array
    run_id: pa.Array
    payload_hash: pa.Array
    fetched_at: pa.Array
    state: pa.Array

    @classmethod
    def of(cls, rows: list[_Version]) -> _KeyColumns:
        return cls(
            pa.array([v.connection_id for v in rows], pa.string()),
            pa.array([v.run_id for v in rows], pa.string()),
            pa.array([v.hash for v in rows], pa.string()),
            pa.array([v.fetched_at for v in rows], UTC_MICROS),
            _state_column([v.payload for v in rows]),
        )

    def raw_table(self, canonical: list[bytes]) -> pa.Table:
        columns = [self.connection_id, self.run_id, self.payload_hash, _text_column(canonical)]
        return pa.Table.from_arrays([*columns, self.fetched_at, self.state], schema=RAW_RUNS)

    def latest_table(self) -> pa.Table:
        columns = [self.connection_id, self.run_id, self.payload_hash, self.fetched_at]
        return pa.Table.from_arrays([*columns, self.state], schema=RAW_LATEST)


def _flatten_fast_or_careful(
    latest: list[_Version], keys: _KeyColumns
) -> tuple[dict[str, pa.Table], _Problems]:
    # Clean batches (nearly all) take the vectorised path; it declines anything unusual,
    # and then the careful path finds each problem and names it.
    tables = flatten_clean([v.payload for v in latest], keys.connection_id, keys.run_id)
    if tables is not None:
        return tables, _Problems()
    return _flatten(latest, keys.connection_id, keys.run_id)


# --- run level: key, canonical JSON, hash -------------------------------------------------


def _read_versions(runs: Iterable[FetchedRun], quarantine: _Quarantine) -> list[_Version]:
    versions = []
    in_utc: dict[datetime, datetime] = {}  # runs of one file share their fetch time
    for run in runs:
        payload = run.payload
        try:
            canonical = canonical_json(payload)
        except UnreadablePayload as exc:
            rid = payload.get("id") if isinstance(payload, dict) else None
            quarantine.add(
                run, rid if isinstance(rid, str) else None, str(exc), fallback_text(payload)
            )
            continue
        key, reason = _run_key(run)
        if key is None:
            rid = payload.get("id") if isinstance(payload, dict) else None
            quarantine.add(
                run, rid if isinstance(rid, str) else None, reason, canonical.decode("utf-8")
            )
            continue
        fetched_at = in_utc.get(run.fetched_at)
        if fetched_at is None:
            fetched_at = in_utc[run.fetched_at] = _utc(run.fetched_at)
        digest = hash_bytes(canonical)
        versions.append(_Version(*key, payload, canonical, digest, fetched_at, run.source))
    return versions


def _run_key(run: FetchedRun) -> tuple[Key | None, str]:
    payload = run.payload
    if not isinstance(payload, dict):
        return None, f"run: expected a JSON object, got {_json_type(payload)}"
    rid = payload.get("id")
    if not isinstance(rid, str) or not rid:
        return (
            None,
            "id: missing"
            if rid is None
            else f"id: expected a non-empty string, got {_json_type(rid)}",
        )
    conn = payload.get("connectionId")
    if conn is not None and (not isinstance(conn, str) or not conn):
        return None, f"connectionId: expected a non-empty string, got {_json_type(conn)}"
    if conn and run.connection_id and conn != run.connection_id:
        return None, (
            f"connectionId: the run says {conn!r} but it was fetched for connection "
            f"{run.connection_id!r}"
        )
    conn = conn or run.connection_id
    if not conn:
        return None, (
            "connectionId: missing in the run and no connection was given for it "
            "(pass --connection ID when loading files)"
        )
    return (conn, rid), ""


def _latest_per_run(versions: list[_Version]) -> list[_Version]:
    # The most recently fetched version wins; on a tie, the later one in the batch.
    latest: dict[Key, _Version] = {}
    for v in versions:
        key = (v.connection_id, v.run_id)
        seen = latest.get(key)
        if seen is None or v.fetched_at >= seen.fetched_at:
            latest[key] = v
    return list(latest.values())


def _raw_table(versions: list[_Version], skip: set[tuple[str, str, str]]) -> pa.Table:
    first: dict[tuple[str, str, str], _Version] = {}
    for v in versions:
        key = (v.connection_id, v.run_id, v.hash)
        if key in skip:
            continue
        seen = first.get(key)
        if seen is None or v.fetched_at < seen.fetched_at:
            first[key] = v
    rows = list(first.values())
    return _KeyColumns.of(rows).raw_table([v.canonical for v in rows])


def _text_column(texts: list[bytes]) -> pa.Array:
    """UTF-8 byte strings as one string column, without a Python object per value.

    Much cheaper than converting the list; validated in full, so a payload that is not
    UTF-8 still fails loudly rather than reaching DuckDB.
    """
    lengths = accumulate(map(len, texts))
    data = pa.py_buffer(b"".join(texts))
    if data.size < 2**31:  # 32-bit offsets: no copy into a string column afterwards
        offsets = array("i", [0])
        offsets.extend(lengths)
        column = pa.StringArray.from_buffers(len(texts), pa.py_buffer(offsets), data)
    else:
        large = array("q", [0])
        large.extend(lengths)
        column = pa.LargeStringArray.from_buffers(len(texts), pa.py_buffer(large), data)
    column.validate(full=True)
    return column.cast(pa.string())


def _state_column(payloads: list[dict[str, Any]]) -> pa.Array:
    states = [p.get("state") for p in payloads]
    return pa.array([s if isinstance(s, str) else None for s in states], pa.string())


# --- entity level: columns for runs, jobs, tasks, errors ----------------------------------


@dataclass
class _Entities:
    """One level of the tree: its dicts, the run each belongs to, and a label for reasons."""

    dicts: list[Any]
    owner: list[int]  # index of the run (in the batch) each row belongs to
    label: Callable[[int], str]


class _Problems(dict[int, str]):
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
_RESULT_RENAMES = {"Cancelled": "Canceled"}
_FIELDS = {
    "runs": RUN_FIELDS,
    "jobs": JOB_FIELDS,
    "tasks": TASK_FIELDS,
    "task_errors": ERROR_FIELDS,
}


def _flatten(
    latest: list[_Version], conn: pa.Array, run_id: pa.Array
) -> tuple[dict[str, pa.Table], _Problems]:
    problems = _Problems()
    runs = _Entities([v.payload for v in latest], list(range(len(latest))), lambda i: "")
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


def _children(parents: _Entities, key: str, problems: _Problems) -> tuple[_Entities, list[int]]:
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
                f"{parents.label(i)}{key}: expected an array, got {_json_type(value)}",
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


def _errors(tasks: _Entities, problems: _Problems) -> tuple[_Entities, list[int]]:
    values = [t.get("error") for t in tasks.dicts]
    parent_ix = [i for i, e in enumerate(values) if e is not None]
    errors = _Entities(
        [values[i] for i in parent_ix],
        [tasks.owner[i] for i in parent_ix],
        lambda row: f"{tasks.label(parent_ix[row])}error.",
    )
    _require_objects(errors, problems, trailing=True)
    return errors, parent_ix


def _require_objects(ents: _Entities, problems: _Problems, *, trailing: bool = False) -> None:
    if set(map(type, ents.dicts)) <= {dict}:
        return
    for i, d in enumerate(ents.dicts):
        if type(d) is not dict:
            where = ents.label(i).rstrip(".")
            problems.mark(ents.owner[i], f"{where}: expected an object, got {_json_type(d)}")
            ents.dicts[i] = {}  # keep rows aligned; the run is quarantined anyway


def _columns(ents: _Entities, table: str, problems: _Problems) -> dict[str, pa.Array]:
    schema = CORE_TABLES[table][0]
    fields = _FIELDS[table]
    cols: dict[str, pa.Array] = {}
    for api_name, column in fields.items():
        values = [d.get(api_name) for d in ents.dicts]
        is_id = column in ("run_id", "job_id", "task_id")
        if column == "run_id":
            continue  # the run's id is its key, read and checked already
        cols[column] = _typed(values, schema.field(column).type, ents, api_name, problems, is_id)
        if column == "result":
            cols[column] = _rename_results(cols[column])
    cols["extra"] = _extra(ents, KNOWN_KEYS[table], problems)
    return cols


def _typed(
    values: list[Any],
    arrow_type: pa.DataType,
    ents: _Entities,
    name: str,
    problems: _Problems,
    is_id: bool,
) -> pa.Array:
    allowed = (str,) if is_id else _KINDS[arrow_type]
    if not set(map(type, values)) <= set(allowed) or (is_id and "" in values):
        for i, v in enumerate(values):
            if type(v) not in allowed or (is_id and v == ""):
                expected = "a non-empty string" if is_id else _EXPECTED[arrow_type]
                what = "missing" if v is None else f"expected {expected}, got {_json_type(v)}"
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


def _int64(values: list[Any], ents: _Entities, name: str, problems: _Problems) -> pa.Array:
    try:
        return pa.array(values, pa.int64())
    except (OverflowError, pa.ArrowInvalid):
        pass
    for i, v in enumerate(values):
        if v is not None and not _INT64_MIN <= v <= _INT64_MAX:
            problems.mark(ents.owner[i], f"{ents.label(i)}{name}: integer {v} out of int64 range")
            values[i] = None
    return pa.array(values, pa.int64())


def _rename_results(results: pa.Array) -> pa.Array:
    for old, new in _RESULT_RENAMES.items():
        results = pc.if_else(pc.equal(results, old), pa.scalar(new), results)
    return results


def _extra(ents: _Entities, known: frozenset[str], problems: _Problems) -> pa.Array:
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
    parent_ix: Sequence[int], ids: pa.Array, ents: _Entities, what: str, problems: _Problems
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


def _table(name: str, cols: dict[str, pa.Array], owner: list[int], problems: _Problems) -> pa.Table:
    schema = CORE_TABLES[name][0]
    table = pa.table({n: cols[n] for n in schema.names}, schema=schema)
    if problems and len(owner):
        keep = pc.invert(
            pc.is_in(pa.array(owner, pa.int64()), value_set=pa.array(list(problems), pa.int64()))
        )
        table = table.filter(keep)
    return table


# --- small helpers ------------------------------------------------------------------------


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _json_type(value: Any) -> str:
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
