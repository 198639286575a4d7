"""Load API answers saved as files (what `itwin-runs load PATH...` calls).

Files are read and flattened in order, a batch at a time (the next while the previous one
loads), and the batches committed in groups of COMMIT_EVERY_RUNS runs; memory is bounded
by two batches (and the largest single .json file) and DuckDB's limit, not by the
history. A file or line that is not JSON is quarantined with its path and the reason; it
never stops the load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.sources.reading import BATCH_RUNS, expand_paths, flattened_batches
from pipeline.warehouse.loader import LoadStats
from pipeline.warehouse.store import Warehouse

# Runs per transaction of a file load: DuckDB writes a large transaction's rows straight
# to the file instead of the WAL, so big groups cost less. A failure loses only the open
# group, and loading the same files again completes it.
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
    on_batch: Callable[[LoadFilesSummary, int], None] | None = None,
) -> LoadFilesSummary:
    """Read every file under `paths` and load its runs, `batch_runs` at a time.

    Batches are committed in groups of about `commit_every_runs` runs (see
    RunLoader.grouped_loads); a failure loses only the group in progress, and loading
    the same files again completes it (a load is idempotent).
    `on_batch(summary, total_files)`: told after every loaded batch, for progress display.
    """
    files = list(expand_paths(paths))
    summary = LoadFilesSummary()
    loader = warehouse.loader
    in_flight: tuple[Future[None], LoadFilesSummary] | None = None

    def finish_in_flight() -> None:
        # Progress is told here, in this thread, once its batch is loaded and nothing
        # else uses the warehouse, with the counts as they were when it was handed over.
        if in_flight is not None:
            loading, counts = in_flight
            loading.result()
            if on_batch is not None:
                on_batch(counts, len(files))

    with (
        loader.bulk(),
        loader.grouped_loads(commit_every_runs, summary.stats.add) as load,
        # One batch loads in DuckDB, which releases the GIL, while the next is read and
        # flattened in Python; the warehouse is still used by one thread at a time.
        # Leaving waits for the load in flight before the group commits or rolls back.
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="load") as writer,
    ):
        for item in flattened_batches(files, default_connection_id or "", batch_runs):
            summary.files += item.files
            summary.runs_read += item.runs_read
            summary.files_quarantined += item.files_quarantined
            if item.batch is not None:
                finish_in_flight()
                in_flight = (writer.submit(load, item.batch), replace(summary))
        finish_in_flight()
    return summary
