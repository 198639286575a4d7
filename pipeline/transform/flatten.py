"""Run JSON (from list pages or single-run answers) -> the four core Arrow tables, the
raw versions, the latest version per run, and the quarantine.

Each run is keyed, hashed and kept as canonical JSON here; its tables come from the fast
path (fastpath.py) or, when that declines, the careful one (careful.py). Hostile values
never raise: they mark their run, and marked runs go to the quarantine table whole, with
a reason naming the field.
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

import pyarrow as pa

from pipeline.itwin.ids import normalize_id
from pipeline.transform.canonical import (
    UnreadablePayload,
    canonical_json,
    fallback_text,
    hash_bytes,
    payload_hash,
)
from pipeline.transform.careful import Problems, flatten_carefully, json_type
from pipeline.transform.fastpath import flatten_clean
from pipeline.transform.schema import (
    QUARANTINE,
    RAW_LATEST,
    RAW_RUNS,
    UTC_MICROS,
)

__all__ = [
    "FetchedRun",
    "FlatBatch",
    "Rejected",
    "cyclic_gc_paused",
    "flatten_runs",
    "payload_hash",
]

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
    with cyclic_gc_paused():
        return _flatten_batch(runs, rejected)


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """The cyclic collector waits meanwhile: runs are many small containers and form no
    cycles, so its passes over them would only cost."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
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
) -> tuple[dict[str, pa.Table], Problems]:
    # Clean batches (nearly all) take the vectorised path; it declines anything unusual,
    # and then the careful path finds each problem and names it.
    tables = flatten_clean([v.payload for v in latest], keys.connection_id, keys.run_id)
    if tables is not None:
        return tables, Problems()
    return flatten_carefully([v.payload for v in latest], keys.connection_id, keys.run_id)


# --- run level: key, canonical JSON, hash -------------------------------------------------


def _read_versions(runs: Iterable[FetchedRun], quarantine: _Quarantine) -> list[_Version]:
    versions = []
    in_utc: dict[datetime, datetime] = {}  # runs of one file share their fetch time
    for run in runs:
        payload = run.payload
        try:
            canonical = canonical_json(payload)
        except UnreadablePayload as exc:
            quarantine.add(run, _id_text(payload), str(exc), fallback_text(payload))
            continue
        key, reason = _run_key(run)
        if key is None:
            quarantine.add(run, _id_text(payload), reason, canonical.decode("utf-8"))
            continue
        fetched_at = in_utc.get(run.fetched_at)
        if fetched_at is None:
            fetched_at = in_utc[run.fetched_at] = _utc(run.fetched_at)
        digest = hash_bytes(canonical)
        versions.append(_Version(*key, payload, canonical, digest, fetched_at, run.source))
    return versions


def _id_text(payload: Any) -> str | None:
    """The run's id for the quarantine, when it is text."""
    rid = payload.get("id") if isinstance(payload, dict) else None
    return rid if isinstance(rid, str) else None


def _run_key(run: FetchedRun) -> tuple[Key | None, str]:
    payload = run.payload
    if not isinstance(payload, dict):
        return None, f"run: expected a JSON object, got {json_type(payload)}"
    rid = payload.get("id")
    if not isinstance(rid, str) or not rid:
        return (
            None,
            "id: missing"
            if rid is None
            else f"id: expected a non-empty string, got {json_type(rid)}",
        )
    conn = payload.get("connectionId")
    if conn is not None and (not isinstance(conn, str) or not conn):
        return None, f"connectionId: expected a non-empty string, got {json_type(conn)}"
    # GUIDs are case-insensitive: a list page may carry the id in another case.
    if conn and run.connection_id and normalize_id(conn) != normalize_id(run.connection_id):
        return None, (
            f"connectionId: the run says {conn!r} but it was fetched for connection "
            f"{run.connection_id!r}"
        )
    conn = run.connection_id or conn
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


# --- small helpers ------------------------------------------------------------------------


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
