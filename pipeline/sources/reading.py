"""Saved API answers on disk -> flattened batches (no DuckDB here).

Accepts list pages (`{"runs": [...]}`), single-run answers (`{"run": {...}}`), bare
runs, and NDJSON of any of them; a folder means every .json/.ndjson/.jsonl under it.
A file or line that is not JSON becomes a Rejected with its path and the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pipeline.transform.flatten import (
    FetchedRun,
    FlatBatch,
    Rejected,
    cyclic_gc_paused,
    flatten_runs,
)

_LINE_SUFFIXES = (".ndjson", ".jsonl")
SUFFIXES = (".json", *_LINE_SUFFIXES)

# Runs flattened and loaded together: memory is bounded by a batch, and larger batches
# save little per-statement overhead.
BATCH_RUNS = 2_500


def expand_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files as given, and every JSON file under each folder, in a stable order."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            yield from sorted(found)
        else:
            yield path


@dataclass(frozen=True)
class FileBatch:
    """One flattened batch and what was read for it (files, runs, unreadable items)."""

    batch: FlatBatch | None  # None: files were read but held nothing to load
    files: int
    runs_read: int
    files_quarantined: int


def flattened_batches(
    files: Sequence[Path], connection_id: str, batch_runs: int
) -> Iterator[FileBatch]:
    """Read `files` in order and flatten their runs `batch_runs` at a time."""
    batches = _batches(files, connection_id, batch_runs)
    while True:
        # Parsed pages form no cycles: the collector waits until the batch is flattened.
        with cyclic_gc_paused():
            batch = next(batches, None)
        if batch is None:
            return
        yield batch  # the consumer runs with the collector as it had it


def _batches(files: Sequence[Path], connection_id: str, batch_runs: int) -> Iterator[FileBatch]:
    runs: list[FetchedRun] = []
    rejected: list[Rejected] = []
    counts = [0, 0, 0]  # files, runs read, unreadable items since the last batch

    def flush() -> FileBatch:
        out = FileBatch(flatten_runs(runs, rejected) if runs or rejected else None, *counts)
        runs.clear()
        rejected.clear()
        counts[:] = [0, 0, 0]
        return out

    for path in files:
        counts[0] += 1
        for item in read_file(path, connection_id):
            if isinstance(item, Rejected):
                rejected.append(item)
                counts[2] += 1
            else:
                runs.append(item)
                counts[1] += 1
            if len(runs) + len(rejected) >= batch_runs:
                yield flush()
    if any(counts) or runs or rejected:
        yield flush()


def read_file(path: Path, connection_id: str) -> Iterator[FetchedRun | Rejected]:
    """The runs of one file (or a Rejected for what cannot be read)."""
    try:
        fetched_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)  # saved ~ fetched
        if path.suffix.lower() in _LINE_SUFFIXES:
            yield from _read_lines(path, connection_id, fetched_at)
            return
        data = path.read_bytes()
    except OSError as exc:
        reason = f"cannot read {path}: {exc}"
        yield Rejected(connection_id, reason, "", datetime.now(UTC), str(path))
        return
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield from _lines_or_reject(path, data, connection_id, fetched_at, exc)
        return
    yield from _runs_of(document, connection_id, fetched_at, str(path))


def _read_lines(
    path: Path, connection_id: str, fetched_at: datetime
) -> Iterator[FetchedRun | Rejected]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            source = f"{path}:{number}"
            try:
                document = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                reason = f"line {number} is not valid JSON: {exc}"
                yield _reject(connection_id, source, line, reason, fetched_at)
                continue
            yield from _runs_of(document, connection_id, fetched_at, source)


def _lines_or_reject(
    path: Path, data: bytes, connection_id: str, fetched_at: datetime, error: Exception
) -> Iterator[FetchedRun | Rejected]:
    # A .json file may still hold NDJSON (one answer per line); accept it only if every
    # non-empty line parses, otherwise the whole file is quarantined with the first error.
    lines = data.splitlines()
    if len(lines) > 1:
        try:
            documents = [orjson.loads(line) for line in lines if line.strip()]
        except orjson.JSONDecodeError:
            documents = None
        if documents is not None:
            for document in documents:
                yield from _runs_of(document, connection_id, fetched_at, str(path))
            return
    yield _reject(connection_id, str(path), data, f"{path} is not valid JSON: {error}", fetched_at)


def _runs_of(
    document: Any, connection_id: str, fetched_at: datetime, source: str
) -> Iterator[FetchedRun | Rejected]:
    if isinstance(document, dict) and "runs" in document:
        runs = document["runs"]
        if not isinstance(runs, list):
            yield _reject_document(
                connection_id, source, document, "runs: expected an array", fetched_at
            )
            return
        for run in runs:
            yield FetchedRun(_connection_of(run, connection_id), run, fetched_at, source)
    elif isinstance(document, dict) and "run" in document:
        run = document["run"]
        yield FetchedRun(_connection_of(run, connection_id), run, fetched_at, source)
    elif isinstance(document, dict) and "id" in document:  # a bare run
        yield FetchedRun(_connection_of(document, connection_id), document, fetched_at, source)
    elif isinstance(document, list):
        for run in document:
            yield FetchedRun(_connection_of(run, connection_id), run, fetched_at, source)
    else:
        reason = (
            f'{source}: not a list page ({{"runs": [...]}}) or a single-run answer '
            '({"run": {...}})'
        )
        yield _reject_document(connection_id, source, document, reason, fetched_at)


def _connection_of(run: Any, default: str) -> str:
    """A saved run names its own connection when it can; `--connection` fills the gaps only."""
    if isinstance(run, dict):
        own = run.get("connectionId")
        if isinstance(own, str) and own:
            return own
    return default


def _reject(connection_id: str, source: str, data: bytes, reason: str, at: datetime) -> Rejected:
    # Not UTF-8 or not JSON: keep the bytes readable and recoverable (\\xNN escapes).
    text = data.decode("utf-8", "backslashreplace")
    return Rejected(connection_id, reason, text, at, source)


def _reject_document(
    connection_id: str, source: str, document: Any, reason: str, at: datetime
) -> Rejected:
    return Rejected(connection_id, reason, orjson.dumps(document).decode(), at, source)
