"""Load API answers saved as files (what `itwin-runs load PATH...` calls).

Accepts list pages (`{"runs": [...]}`), single-run answers (`{"run": {...}}`), bare
runs, and NDJSON of any of them; a folder means every .json/.ndjson/.jsonl under it.
Runs are loaded in batches, so memory is bounded by the batch (and the largest single
.json file), not by the history. A file or line that is not JSON is quarantined with
its path and the reason; it never stops the load.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pipeline.transform.flatten import FetchedRun, Rejected, flatten_runs
from pipeline.warehouse.store import LoadStats, Warehouse

SUFFIXES = (".json", ".ndjson", ".jsonl")
_LINE_SUFFIXES = (".ndjson", ".jsonl")


@dataclass
class LoadFilesSummary:
    files: int = 0
    runs_read: int = 0
    files_quarantined: int = 0  # files (or lines) that were not readable JSON answers
    stats: LoadStats = field(default_factory=LoadStats)

    @property
    def runs_loaded(self) -> int:
        """Runs whose tables were written (new or changed)."""
        total = self.stats.total()
        return total.new + total.changed

    @property
    def quarantined(self) -> int:
        return self.stats.total().quarantined

    def __str__(self) -> str:
        t = self.stats.total()
        return (
            f"{self.files} files, {self.runs_read} runs read: {t.new} new, {t.changed} changed, "
            f"{t.unchanged} unchanged, {t.stale} older than stored, {t.quarantined} quarantined "
            f"({self.files_quarantined} unreadable files or lines)"
        )


def load_files(
    paths: Sequence[str | Path],
    warehouse: Warehouse,
    *,
    default_connection_id: str | None = None,
    batch_runs: int = 5_000,
) -> LoadFilesSummary:
    """Read every file under `paths` and load its runs, `batch_runs` at a time."""
    summary = LoadFilesSummary()
    runs: list[FetchedRun] = []
    rejected: list[Rejected] = []

    def flush() -> None:
        summary.stats.add(warehouse.load(flatten_runs(runs, rejected)))
        runs.clear()
        rejected.clear()

    for path in expand_paths(paths):
        summary.files += 1
        for item in read_file(path, default_connection_id or ""):
            if isinstance(item, Rejected):
                rejected.append(item)
                summary.files_quarantined += 1
            else:
                runs.append(item)
                summary.runs_read += 1
            if len(runs) + len(rejected) >= batch_runs:
                flush()
    if runs or rejected:
        flush()
    return summary


def expand_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files as given, and every JSON file under each folder, in a stable order."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            yield from sorted(found)
        else:
            yield path


def read_file(path: Path, connection_id: str) -> Iterator[FetchedRun | Rejected]:
    """The runs of one file (or a Rejected for what cannot be read)."""
    try:
        fetched_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)  # saved ~ fetched
        if path.suffix.lower() in _LINE_SUFFIXES:
            yield from _read_lines(path, connection_id, fetched_at)
            return
        data = path.read_bytes()
    except OSError as exc:
        yield Rejected(connection_id, f"cannot read {path}: {exc}", "", _now(), str(path))
        return
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield from _lines_or_reject(path, data, connection_id, fetched_at, exc)
        return
    yield from _runs_of(document, connection_id, fetched_at, str(path))


def _read_lines(path: Path, connection_id: str, fetched_at: datetime) -> Iterator[Any]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            yield from _parse_line(line, number, path, connection_id, fetched_at)


def _parse_line(
    line: bytes, number: int, path: Path, connection_id: str, fetched_at: datetime
) -> Iterator[FetchedRun | Rejected]:
    if not line.strip():
        return
    source = f"{path}:{number}"
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        yield _reject(
            connection_id, source, line, f"line {number} is not valid JSON: {exc}", fetched_at
        )
        return
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


def _now() -> datetime:
    return datetime.now(UTC)
