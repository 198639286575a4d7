"""Reading pages into batches: the cyclic collector waits while a batch is read, not after."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest

import pipeline.sources.reading as reading
from tests.transform.builders import random_runs


def write_pages(folder: Path, runs: list[dict[str, Any]], size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(0, len(runs), size):
        path = folder / f"page-{i // size:03d}.json"
        path.write_text(json.dumps({"runs": runs[i : i + size]}))
        paths.append(path)
    return paths


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_paused_while_reading_and_restored_for_the_consumer(
    tmp_path: Path, enabled: bool
) -> None:
    paths = write_pages(tmp_path, random_runs(12, seed=3, connection_id="c"), size=5)
    while_reading: list[bool] = []
    read_file = reading.read_file

    def spy(path: Path, connection_id: str) -> Any:
        while_reading.append(gc.isenabled())
        return read_file(path, connection_id)

    was = gc.isenabled()
    try:
        if enabled:
            gc.enable()
        else:
            gc.disable()
        with pytest.MonkeyPatch.context() as m:
            m.setattr(reading, "read_file", spy)
            seen = []
            for batch in reading.flattened_batches(paths, "", 4):
                seen.append(gc.isenabled())  # what the consumer runs with
                assert batch.batch is not None
        assert seen and all(state == enabled for state in seen)
        assert while_reading == [False] * len(paths)
        assert gc.isenabled() == enabled
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


def test_batches_hold_every_run_once_in_file_order(tmp_path: Path) -> None:
    runs = random_runs(12, seed=4, connection_id="c")
    paths = write_pages(tmp_path, runs, size=5)
    batches = list(reading.flattened_batches(paths, "", 4))
    assert [b.runs_read for b in batches] == [4, 4, 4]
    assert [b.files for b in batches] == [1, 1, 1]  # a batch closes mid-file, files counted once
    got = [rid for b in batches if b.batch for rid in b.batch.tables["runs"]["run_id"].to_pylist()]
    assert got == [r["id"] for r in runs]
