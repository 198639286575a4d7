"""Saved API answers on disk: pages, single runs, NDJSON, folders, and files that are not JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.warehouse.files import load_files
from pipeline.warehouse.store import Warehouse
from pipeline.warehouse.worker import ReadingWorker, WorkerFailedError, file_chunks
from tests.transform.builders import random_runs, run

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def w() -> Warehouse:
    return Warehouse(duckdb.connect())


def write_pages(folder: Path, runs: list[dict], size: int = 7) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(0, len(runs), size):
        (folder / f"page-{i // size:03d}.json").write_text(json.dumps({"runs": runs[i : i + size]}))


def counts(w: Warehouse) -> dict[str, int]:
    return w.table_counts()


def test_a_folder_of_pages_loads_in_batches_and_twice_changes_nothing(
    tmp_path: Path, w: Warehouse
) -> None:
    runs = random_runs(40, seed=2, connection_id="c1")
    write_pages(tmp_path / "pages", runs)
    summary = load_files([tmp_path / "pages"], w, batch_runs=9)
    assert (summary.files, summary.runs_read, summary.runs_loaded, summary.quarantined) == (
        6,
        40,
        40,
        0,
    )
    before = counts(w)
    rows = w.con.execute("SELECT * FROM tasks ORDER BY ALL").fetchall()
    again = load_files([tmp_path / "pages"], w, batch_runs=9)
    assert again.runs_loaded == 0 and again.stats.total().unchanged == 40
    assert counts(w) == before
    assert w.con.execute("SELECT * FROM tasks ORDER BY ALL").fetchall() == rows
    assert "40 runs read" in str(summary)


def test_published_examples_single_run_list_page_and_ndjson(tmp_path: Path, w: Warehouse) -> None:
    lines = [
        json.dumps({"run": run("n1", connection_id="c2")}),
        "",
        json.dumps({"runs": [run("n2")]}),
    ]
    (tmp_path / "more.ndjson").write_text("\n".join(lines) + "\n")
    summary = load_files(
        [FIXTURES / "get-run-200.json", FIXTURES / "list-runs-200.json", tmp_path / "more.ndjson"],
        w,
        default_connection_id="c2",
    )
    assert summary.runs_loaded == 4 and summary.quarantined == 0
    conns = dict(w.con.execute("SELECT run_id, connection_id FROM runs").fetchall())
    assert (
        conns["a1ecbdc8c4f6173004f9f881914a57c5511a362b"] == "bc38cd8a-fd9f-4abf-9ad7-0c3b3d28720e"
    )
    assert conns["75d94fca-4a9b-4ff0-8f3a-eeedbc1fea97"] == "c2"  # from --connection
    assert conns["n2"] == "c2"


def test_runs_without_connection_are_quarantined_saying_to_pass_it(w: Warehouse) -> None:
    summary = load_files([FIXTURES / "list-runs-200.json"], w)
    assert summary.runs_loaded == 0 and summary.quarantined == 1
    (reason,) = w.con.execute("SELECT reason FROM quarantine").fetchall()[0]
    assert "--connection" in reason


def test_unreadable_files_are_quarantined_with_path_and_reason(
    tmp_path: Path, w: Warehouse
) -> None:
    (tmp_path / "broken.json").write_text('{"runs": [')
    (tmp_path / "latin1.json").write_bytes(b'{"runs": [{"id": "caf\xe9"}]}')
    (tmp_path / "odd.json").write_text('{"something": "else"}')
    (tmp_path / "lines.ndjson").write_text(json.dumps({"run": run("ok1")}) + "\nnot json\n")
    (tmp_path / "ignored.txt").write_text("not looked at")
    summary = load_files([tmp_path], w, default_connection_id="c1")
    assert summary.files == 4 and summary.runs_loaded == 1
    rows = w.con.execute(
        "SELECT source, reason, payload FROM quarantine ORDER BY source"
    ).fetchall()
    assert len(rows) == 3 + 1  # broken, latin1, odd, and line 2 of lines.ndjson
    by_source = {
        Path(s.split(":")[0]).name if s.count(":") else Path(s).name: (s, r, p) for s, r, p in rows
    }
    assert "not valid JSON" in by_source["broken.json"][1]
    assert by_source["latin1.json"][2] == '{"runs": [{"id": "caf\\xe9"}]}'  # bytes kept, escaped
    assert "single-run answer" in by_source["odd.json"][1]
    assert by_source["lines.ndjson"][0].endswith("lines.ndjson:2")


def test_a_json_file_holding_ndjson_is_accepted(tmp_path: Path, w: Warehouse) -> None:
    lines = [json.dumps({"runs": [r]}) for r in random_runs(3, seed=4, connection_id="c1")]
    (tmp_path / "pages.json").write_text("\n".join(lines))
    assert load_files([tmp_path / "pages.json"], w).runs_loaded == 3


def test_a_reading_worker_process_loads_exactly_what_one_process_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.warehouse.worker as worker_module

    runs = random_runs(30, seed=5, connection_id="c1")
    runs[3]["jobs"] = "not a list"  # quarantined, with its reason, either way
    write_pages(tmp_path / "pages", runs)
    (tmp_path / "pages" / "broken.json").write_text('{"runs": [')
    loaded = {}
    available = worker_module.SHARED_MEMORY
    # In this process; in a worker handing batches over in shared memory (where the
    # system has it); in a worker sending them through its pipe (everywhere else).
    ways = {"here": (False, False), "shared": (True, True), "pipe": (True, False)}
    for way, (worker, shared) in ways.items():
        monkeypatch.setattr(worker_module, "SHARED_MEMORY", shared and available)
        w = Warehouse(duckdb.connect())
        summary = load_files([tmp_path / "pages"], w, batch_runs=8, worker=worker)
        tables = {
            name: w.con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
            for name in ("runs", "jobs", "tasks", "task_errors", "raw_runs", "quarantine")
        }
        loaded[way] = (str(summary), tables)
    assert loaded["shared"] == loaded["here"]
    assert loaded["pipe"] == loaded["here"]
    assert "2 quarantined (1 unreadable" in loaded["here"][0]


def test_a_failing_reading_worker_fails_the_load_loudly(tmp_path: Path) -> None:
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"runs": [{"id": "r1"}]}))  # its connection comes from the call
    bad_request = ReadingWorker([page], 123, 2)  # type: ignore[arg-type]
    with pytest.raises(WorkerFailedError, match="reading the files failed"):
        list(bad_request)


def test_reading_ahead_passes_items_and_errors_through_in_order() -> None:
    from pipeline.warehouse.worker import _ReadAhead

    def source():  # type: ignore[no-untyped-def]
        yield from range(5)
        raise WorkerFailedError("the reader died")

    got = []
    with pytest.raises(WorkerFailedError, match="the reader died"):
        for item in _ReadAhead(source(), depth=2):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_reading_ahead_stops_its_thread_when_the_consumer_stops() -> None:
    import itertools
    import threading

    from pipeline.warehouse.worker import _ReadAhead

    produced = []

    def endless():  # type: ignore[no-untyped-def]
        for i in itertools.count():
            produced.append(i)
            yield i

    items = _ReadAhead(endless(), depth=2)
    assert next(items) == 0
    items.close()
    for puller in [t for t in threading.enumerate() if t.name == "itwin-runs-read-ahead"]:
        puller.join(timeout=10)
        assert not puller.is_alive()
    assert len(produced) <= 5  # it read at most `depth` (+ the one in hand) ahead


def reading_children() -> list[Any]:
    """This process's reading children (other tests' children are not counted)."""
    import psutil

    def is_reader(child: psutil.Process) -> bool:
        try:
            return "pipeline.warehouse.worker" in " ".join(child.cmdline())
        except psutil.Error:  # another test's child that has exited meanwhile
            return False

    return [child for child in psutil.Process().children() if is_reader(child)]


def test_a_load_stopped_early_stops_the_reading_processes(tmp_path: Path) -> None:
    import psutil

    write_pages(tmp_path / "pages", random_runs(200, seed=6, connection_id="c1"), size=2)
    files = sorted((tmp_path / "pages").glob("*.json"))
    batches = iter(ReadingWorker(files, "c1", 2, readers=2))
    first = next(batches)
    assert first.runs_read == 2
    children = reading_children()
    assert len(children) == 2
    batches.close()  # type: ignore[attr-defined]
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive


def test_a_reading_worker_never_iterated_is_stopped_when_closed(tmp_path: Path) -> None:
    import psutil

    write_pages(tmp_path / "pages", random_runs(20, seed=8, connection_id="c1"), size=2)
    files = sorted((tmp_path / "pages").glob("*.json"))
    with ReadingWorker(files, "c1", 2, readers=2):
        children = reading_children()
        assert len(children) == 2
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive


def test_files_are_chunked_in_order_by_size_with_a_big_file_alone(tmp_path: Path) -> None:
    sizes = [300, 300, 300, 2_000, 100, 600, 0]
    files = []
    for i, size in enumerate(sizes):
        files.append(tmp_path / f"f{i}.json")
        files[-1].write_bytes(b" " * size)
    chunks = file_chunks([*files, tmp_path / "missing.json"], 700)
    names = [[f.name for f in chunk] for chunk in chunks]
    assert names == [
        ["f0.json", "f1.json"],
        ["f2.json"],
        ["f3.json"],
        ["f4.json", "f5.json", "f6.json", "missing.json"],
    ]


@pytest.mark.parametrize("readers", [1, 2, 3])
def test_readers_hand_over_the_runs_in_file_order(tmp_path: Path, readers: int) -> None:
    runs = random_runs(60, seed=10, connection_id="c1")
    write_pages(tmp_path / "pages", runs, size=3)
    files = sorted((tmp_path / "pages").glob("*.json"))
    # 4 runs a batch: chunks of ~16 KB, a few files each, so every reader has several.
    with ReadingWorker(files, "c1", 4, readers=readers) as worker:
        order = [
            run_id
            for item in worker
            if item.batch is not None
            for run_id in item.batch.latest.column("run_id").to_pylist()
        ]
    in_files = [r["id"] for path in files for r in json.loads(path.read_text())["runs"]]
    assert order == in_files


def test_a_started_reading_worker_is_what_load_files_reads(tmp_path: Path, w: Warehouse) -> None:
    write_pages(tmp_path / "pages", random_runs(12, seed=9, connection_id="c1"), size=4)
    files = sorted((tmp_path / "pages").glob("*.json"))
    summary = load_files([], w, worker=ReadingWorker(files, "c1", 5))
    assert (summary.files, summary.runs_read, summary.runs_loaded) == (3, 12, 12)


def test_the_reading_process_can_start_before_pyarrow_and_duckdb_are_imported() -> None:
    # `itwin-runs load` starts its reading process first, so that the child's start-up
    # overlaps the loader's heavy imports; that needs these modules to stay light.
    code = (
        "import sys, pipeline.warehouse.worker, pipeline.warehouse.inputs;"
        "print(sorted(m for m in ('pyarrow', 'duckdb', 'orjson') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_reader_killed_midway_fails_the_load_loudly_and_stops_the_other(
    tmp_path: Path,
) -> None:
    import psutil

    write_pages(tmp_path / "pages", random_runs(400, seed=11, connection_id="c1"), size=2)
    files = sorted((tmp_path / "pages").glob("*.json"))
    batches = iter(ReadingWorker(files, "c1", 2, readers=2))
    next(batches)
    children = reading_children()
    assert len(children) == 2
    children[1].kill()  # as the kernel's OOM killer would
    with pytest.raises(WorkerFailedError, match="reading process"):
        for _ in batches:
            pass
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
