"""Which files a load reads, and whether reading processes pay off (stdlib only).

Kept free of pyarrow and DuckDB so that `itwin-runs load` can start its reading processes
before importing them: their start-up then overlaps the parent's imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

SUFFIXES = (".json", ".ndjson", ".jsonl")

# Runs flattened and loaded together. With reading processes, per reader about one
# batch is being read, one handed over and one waits in the loader; 2,500 runs keep them
# all under 1 GiB (804 / 816 MB at 100k / 300k runs in benchmarks/RESULTS.md, shared
# memory included; with one reader, 5,000 runs took 1.1 GB; on generated pages).
BATCH_RUNS = 2_500

# Below this many bytes of input, starting reading processes (~0.5 s) costs more than
# the overlap saves.
WORKER_MIN_BYTES = 32 * 2**20


def expand_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files as given, and every JSON file under each folder, in a stable order."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            yield from sorted(found)
        else:
            yield path


def worker_pays_off(files: Sequence[Path]) -> bool:
    """Whether the input is big enough to read in child processes."""
    total = 0
    for path in files:
        total += file_bytes(path)
        if total >= WORKER_MIN_BYTES:
            return True
    return False


def file_bytes(path: Path) -> int:
    """The file's size; 0 when it cannot be read (reading it then reports why)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0
