"""Saved API answers on disk: pages, single runs, NDJSON, folders, and files that are not JSON."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import duckdb
import pytest

from pipeline.sources.files import LoadFilesSummary, load_files
from pipeline.warehouse.store import Warehouse
from tests.support import write_pages
from tests.transform.builders import random_runs, run

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def w() -> Warehouse:
    return Warehouse.over(duckdb.connect())


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


def test_files_load_in_order_so_a_later_file_holds_the_stored_version(
    tmp_path: Path, w: Warehouse
) -> None:
    first = run("r1", connection_id="c1", state="Executing")
    later = copy.deepcopy(first)
    later["state"] = "Completed"
    # Same modification time, so only the order of the files decides which is newer.
    for name, payload in (("a.json", first), ("b.json", later)):
        (tmp_path / name).write_text(json.dumps({"run": payload}))
    for name in ("a.json", "b.json"):
        (tmp_path / name).touch()
    load_files([tmp_path / "a.json", tmp_path / "b.json"], w, batch_runs=1)
    assert w.con.execute("SELECT state FROM runs").fetchall() == [("Completed",)]
    assert w.con.execute("SELECT count(*) FROM raw_runs").fetchall() == [(2,)]


def test_progress_is_told_after_every_batch_and_groups_commit_as_they_fill(
    tmp_path: Path, w: Warehouse
) -> None:
    write_pages(tmp_path / "pages", random_runs(30, seed=8, connection_id="c1"), size=5)
    seen: list[tuple[int, int, int]] = []

    def progress(summary: LoadFilesSummary, total_files: int) -> None:
        stored = w.con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
        seen.append((summary.runs_read, total_files, summary.runs_loaded + stored * 0))

    summary = load_files(
        [tmp_path / "pages"], w, batch_runs=10, commit_every_runs=20, on_batch=progress
    )
    assert [read for read, _, _ in seen] == [10, 20, 30]
    assert {files for _, files, _ in seen} == {6}
    # Stats of a group count once it is committed: after 20 runs, then at the end.
    assert [loaded for _, _, loaded in seen] == [0, 20, 20]
    assert summary.runs_loaded == 30


def test_a_failed_batch_rolls_back_only_its_group_and_loading_again_completes_it(
    tmp_path: Path, w: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches load in a worker thread while the next is flattened: a load's failure must
    # still stop the load, and only the group it belongs to may be lost.
    write_pages(tmp_path / "pages", random_runs(50, seed=9, connection_id="c1"), size=5)
    apply = type(w.loader).apply
    applied: list[int] = []

    def fail_on_the_fourth(self: object, batch: object) -> object:
        applied.append(1)
        if len(applied) == 4:
            raise RuntimeError("disk full")
        return apply(self, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(type(w.loader), "apply", fail_on_the_fourth)
    with pytest.raises(RuntimeError, match="disk full"):
        load_files([tmp_path / "pages"], w, batch_runs=10, commit_every_runs=20)
    assert len(applied) == 4  # nothing was loaded after the failure
    assert counts(w)["runs"] == 20  # the first group of two batches; the second rolled back
    monkeypatch.setattr(type(w.loader), "apply", apply)
    assert load_files([tmp_path / "pages"], w, batch_runs=10).runs_loaded == 30
    assert counts(w)["runs"] == 50
