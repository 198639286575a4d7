"""Load API answers saved as files (what `itwin-runs load PATH...` calls).

Reading and flattening (pipeline.warehouse.reading) run in a child process for inputs
big enough to repay starting it, so they overlap the DuckDB writes; smaller inputs are
read here. Either way the batches are the same and are committed in groups of
COMMIT_EVERY_RUNS runs; memory is bounded by the batch (and the largest single .json
file) and DuckDB's limit, not by the history. A file or line that is not JSON is
quarantined with its path and the reason; it never stops the load.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.warehouse.reading import FileBatch, expand_paths, flattened_batches, read_file
from pipeline.warehouse.store import LoadStats, Warehouse
from pipeline.warehouse.worker import batches_from_worker

__all__ = ["LoadFilesSummary", "expand_paths", "load_files", "read_file"]

# Below this many bytes of input, starting a worker process (~0.5 s) costs more than
# the overlap saves.
WORKER_MIN_BYTES = 32 * 2**20

# Runs per transaction of a file load: about 400 MB of list pages. Loading the 100k-run
# set's batches alone, a commit per 2,500-run batch cost 8.3 s of statements and commits
# plus a 3.5 s checkpoint; groups of 100,000 runs 5.6-6.7 s in all (measured), as DuckDB
# writes a large transaction's rows straight to the file instead of the WAL. A failure
# loses only the open group, and loading the same files again completes it.
COMMIT_EVERY_RUNS = 100_000


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
    batch_runs: int = 2_500,
    commit_every_runs: int = COMMIT_EVERY_RUNS,
    worker: bool | None = None,
    on_batch: Callable[[LoadFilesSummary, int], None] | None = None,
) -> LoadFilesSummary:
    """Read every file under `paths` and load its runs, `batch_runs` at a time.

    With a worker, about two batches are in memory in each process; 2,500 runs keep the
    two processes together under 1 GiB (5,000: 1.1 GB, measured on generated pages).

    Batches are committed in groups of about `commit_every_runs` runs (see
    Warehouse.grouped_loads); a failure loses only the group in progress, and loading
    the same files again completes it (a load is idempotent).

    `worker`: read and flatten in a child process (None: when the input is big enough).
    `on_batch(summary, total_files)`: told after every loaded batch, for progress display.
    """
    files = list(expand_paths(paths))
    if worker is None:
        worker = _input_bytes(files) >= WORKER_MIN_BYTES
    summary = LoadFilesSummary()
    batches = _batches(files, default_connection_id or "", batch_runs, worker=worker)
    # The reading process keeps one core busy; DuckDB gets the other (see Warehouse.threads).
    threads = max(1, (os.cpu_count() or 2) - 1) if worker else 0
    with (
        warehouse.threads(threads) if threads else nullcontext(),
        warehouse.bulk(),
        warehouse.grouped_loads(commit_every_runs, summary.stats.add) as load,
    ):
        for item in batches:
            summary.files += item.files
            summary.runs_read += item.runs_read
            summary.files_quarantined += item.files_quarantined
            if item.batch is not None:
                load(item.batch)
                if on_batch is not None:
                    on_batch(summary, len(files))
    return summary


def _batches(
    files: list[Path], connection_id: str, batch_runs: int, *, worker: bool
) -> Iterator[FileBatch]:
    if worker:
        return batches_from_worker(files, connection_id, batch_runs)
    return flattened_batches(files, connection_id, batch_runs)


def _input_bytes(files: list[Path]) -> int:
    total = 0
    for path in files:
        try:
            total += path.stat().st_size
        except OSError:
            continue  # read_file reports it
    return total
