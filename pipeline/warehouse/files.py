"""Load API answers saved as files (what `itwin-runs load PATH...` calls).

Reading and flattening (pipeline.warehouse.reading) run in child processes for inputs
big enough to repay starting them, so they overlap the DuckDB writes; smaller inputs are
read here. Either way the batches are the same and are committed in groups of
COMMIT_EVERY_RUNS runs; memory is bounded by the batch (and the largest single .json
file) and DuckDB's limit, not by the history. A file or line that is not JSON is
quarantined with its path and the reason; it never stops the load.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.warehouse.inputs import BATCH_RUNS, expand_paths, worker_pays_off
from pipeline.warehouse.reading import flattened_batches, read_file
from pipeline.warehouse.store import LoadStats, Warehouse
from pipeline.warehouse.worker import ReadingWorker

__all__ = ["LoadFilesSummary", "expand_paths", "load_files", "read_file"]

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
    batch_runs: int = BATCH_RUNS,
    commit_every_runs: int = COMMIT_EVERY_RUNS,
    worker: bool | ReadingWorker | None = None,
    on_batch: Callable[[LoadFilesSummary, int], None] | None = None,
) -> LoadFilesSummary:
    """Read every file under `paths` and load its runs, `batch_runs` at a time.

    Batches are committed in groups of about `commit_every_runs` runs (see
    Warehouse.grouped_loads); a failure loses only the group in progress, and loading
    the same files again completes it (a load is idempotent).

    `worker`: read and flatten in child processes (None: when the input is big enough),
    or a ReadingWorker already started (its files are read; it is closed when done).
    `on_batch(summary, total_files)`: told after every loaded batch, for progress display.
    """
    connection_id = default_connection_id or ""
    reader: ReadingWorker | None
    if isinstance(worker, ReadingWorker):
        reader, files = worker, worker.files
    else:
        files = list(expand_paths(paths))
        use_worker = worker_pays_off(files) if worker is None else worker
        reader = ReadingWorker(files, connection_id, batch_runs) if use_worker else None
    summary = LoadFilesSummary()
    batches = iter(reader) if reader else flattened_batches(files, connection_id, batch_runs)
    # The readers keep at least one core busy; DuckDB gets the others (see Warehouse.threads).
    threads = max(1, (os.cpu_count() or 2) - 1) if reader else 0
    with (
        reader or nullcontext(),
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
