"""Loads are exact, idempotent and atomic; rebuild-from-raw equals the direct load."""

from __future__ import annotations

import copy
import gc
import weakref
from datetime import datetime, timedelta
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pytest

from pipeline.errors import ITwinRunsError
from pipeline.transform.flatten import FetchedRun, flatten_runs
from pipeline.transform.schema import CORE_TABLES
from pipeline.warehouse.bookkeeping import CollectionLogEntry
from pipeline.warehouse.statements import BATCH_TABLE
from pipeline.warehouse.store import Warehouse
from tests.support import LOAD_TIME as T
from tests.support import load_runs as load
from tests.support import stored_rows as snapshot
from tests.transform.builders import error, job, random_runs, run, task


@pytest.fixture
def w() -> Warehouse:
    return Warehouse.over(duckdb.connect())


def test_loading_the_same_runs_twice_changes_nothing(w: Warehouse) -> None:
    runs = random_runs(50, seed=3)
    bad = {"id": "broken", "jobs": "nope"}
    first = load(w, [*runs, bad]).for_connection("c1")
    assert (first.new, first.quarantined) == (50, 1)
    before = snapshot(w)
    again = load(w, [*runs, bad]).for_connection("c1")
    assert (again.new, again.changed, again.unchanged) == (0, 0, 50)
    assert snapshot(w) == before


def test_a_batch_of_new_and_known_runs_adds_only_the_new_ones(w: Warehouse) -> None:
    runs = random_runs(40, seed=6)
    load(w, runs[:25])
    stats = load(w, runs).for_connection("c1")  # 25 known (unchanged), 15 new
    assert (stats.new, stats.unchanged) == (15, 25)
    direct = Warehouse.over(duckdb.connect())
    load(direct, runs)
    assert snapshot(w, tuple(CORE_TABLES)) == snapshot(direct, tuple(CORE_TABLES))


def test_a_run_that_completes_gains_tasks_and_loses_an_error_is_replaced_exactly(
    w: Warehouse,
) -> None:
    running = run(
        "r1",
        state="Executing",
        result="Undetermined",
        jobs=[job("j1", tasks=[task("t1", result="Error", err=error())])],
    )
    other = run("r2")
    load(w, [running, other])
    done = run(
        "r1", jobs=[job("j1", tasks=[task("t1"), task("t2")]), job("j2", tasks=[task("t3")])]
    )
    stats = load(w, [done], at=T + timedelta(minutes=5)).for_connection("c1")
    assert (stats.new, stats.changed) == (0, 1)
    direct = Warehouse.over(duckdb.connect())
    load(direct, [done, other])
    assert snapshot(w, tuple(CORE_TABLES)) == snapshot(direct, tuple(CORE_TABLES))
    assert w.con.execute("SELECT count(*) FROM task_errors WHERE run_id = 'r1'").fetchall() == [
        (0,)
    ]
    assert w.con.execute("SELECT count(*) FROM raw_runs WHERE run_id = 'r1'").fetchall() == [(2,)]
    assert w.bookkeeping.open_runs_by_connection(["c1"]).get("c1", []) == []


def test_open_runs_hashes_and_counts(w: Warehouse) -> None:
    runs = [run("r1", state="Executing"), run("r2"), {"id": "r3", "jobs": []}]
    load(w, runs)
    assert w.bookkeeping.open_runs_by_connection(["c1"]).get("c1", []) == [
        "r1",
        "r3",
    ]  # a missing state is not Completed
    counts = "SELECT connection_id, count(*) FROM raw_latest GROUP BY ALL"
    assert w.con.execute(counts).fetchall() == [("c1", 3)]
    from pipeline.transform.flatten import payload_hash

    assert w.bookkeeping.latest_hashes("c1", ["r1", "zz"]) == {"r1": payload_hash(runs[0])}
    assert w.bookkeeping.latest_hashes("c1", []) == {}


def test_an_older_fetch_never_replaces_a_newer_version(w: Warehouse) -> None:
    load(w, [run("r1")], at=T)
    stats = load(w, [run("r1", state="Executing")], at=T - timedelta(days=1)).for_connection("c1")
    assert stats.stale == 1
    assert w.con.execute("SELECT state FROM runs").fetchall() == [("Completed",)]
    assert w.con.execute("SELECT count(*) FROM raw_runs").fetchall() == [(2,)]  # kept as history


def test_each_version_of_a_run_is_kept_once(w: Warehouse) -> None:
    executing, done = run("r1", state="Executing"), run("r1")
    # Two versions of a new run in one batch: both are history, the later one is loaded.
    w.loader.load(
        flatten_runs(
            [FetchedRun("c1", executing, T), FetchedRun("c1", done, T + timedelta(hours=1))]
        )
    )
    assert w.con.execute("SELECT state FROM runs").fetchall() == [("Completed",)]
    # Sent again: as a change back to an earlier version, and as a stale copy of one.
    load(w, [executing], at=T + timedelta(hours=2))
    load(w, [done], at=T - timedelta(days=1))
    load(w, [done], at=T + timedelta(hours=3))
    rows = w.con.execute("SELECT state, fetched_at FROM raw_runs ORDER BY fetched_at").fetchall()
    assert rows == [("Executing", T), ("Completed", T + timedelta(hours=1))]
    assert w.con.execute("SELECT state FROM runs").fetchall() == [("Completed",)]


def test_rebuild_from_raw_equals_the_direct_load(w: Warehouse) -> None:
    runs = random_runs(40, seed=5)
    runs[0]["surprise"] = {"b": [1, 2], "a": "😀"}
    runs[1]["jobs"][0]["tasks"][0]["error"] = error(extraField=None)
    load(w, runs)
    changed = copy.deepcopy(runs[:10])
    for r in changed:
        r["result"] = "Cancelled"
        r["jobs"] = r["jobs"][:1]
    load(w, changed, at=T + timedelta(hours=1))
    expected = snapshot(w, tuple(CORE_TABLES))
    stats = w.rewriter.rebuild_from_raw(batch_runs=7)
    assert stats.total().new == 40
    assert snapshot(w, tuple(CORE_TABLES)) == expected


def test_a_load_failing_midway_leaves_the_previous_state(w: Warehouse) -> None:
    load(w, random_runs(20, seed=1))
    before = snapshot(w)

    def explode(label: str) -> None:
        if label == "INSERT tasks":
            raise RuntimeError("injected")

    w.loader.statements.between_statements = explode
    changed = random_runs(20, seed=1)
    for r in changed:
        r["state"] = "Executing"
    with pytest.raises(RuntimeError, match="injected"):
        load(w, [*changed, *random_runs(5, seed=9)], at=T + timedelta(hours=1))
    assert snapshot(w) == before
    w.loader.statements.between_statements = None
    stats = load(w, changed, at=T + timedelta(hours=1)).for_connection("c1")
    assert stats.changed == 20


def test_strings_are_stored_byte_exact(w: Warehouse) -> None:
    nasty = '\'); DROP TABLE runs; -- "quoted" \\ back 🚀👩‍👩‍👧 שלום עולם مرحبا \u202e rtl \t\n'
    r = run(
        "r'1\"", jobs=[job("j;1", tasks=[task("t--1", err=error(message=nasty, details=nasty))])]
    )
    r["note"] = nasty
    load(w, [r])
    assert w.con.execute("SELECT message, details FROM task_errors").fetchall() == [(nasty, nasty)]
    assert w.con.execute("SELECT run_id, job_id FROM jobs").fetchall() == [("r'1\"", "j;1")]
    (payload,) = w.con.execute("SELECT payload FROM raw_runs").fetchall()[0]
    assert orjson.loads(payload) == r
    assert orjson.loads(w.con.execute("SELECT extra FROM runs").fetchall()[0][0]) == {"note": nasty}


def test_full_pass_and_collection_log(w: Warehouse) -> None:
    assert w.bookkeeping.last_full_passes(["c1"]).get("c1") is None
    w.bookkeeping.mark_full_pass("c1", T)
    w.bookkeeping.mark_full_pass("c1", T + timedelta(hours=1))
    assert w.bookkeeping.last_full_passes(["c1"]).get("c1") == T + timedelta(hours=1)
    entry = CollectionLogEntry(
        "col1",
        "c1",
        T,
        T + timedelta(seconds=3),
        "failed",
        http_status=403,
        error_code="InsufficientPermissions",
        error_message="no",
        requests=2,
        throttled_429=1,
    )
    w.bookkeeping.record_finished(log_entries=[entry])
    row = w.con.execute(
        "SELECT outcome, http_status, error_code, throttled_429 FROM collection_log"
    ).fetchall()
    assert row == [("failed", 403, "InsufficientPermissions", 1)]
    assert w.table_counts()["collection_log"] == 1


def test_bookkeeping_of_many_connections_at_once(w: Warehouse) -> None:
    load(w, [run("r1", state="Executing"), run("r2")])
    load(w, [run("r9", state="Queued")], conn="c2")
    assert w.bookkeeping.open_runs_by_connection(["c1", "c2", "c3"]) == {
        "c1": ["r1"],
        "c2": ["r9"],
    }
    assert w.bookkeeping.open_runs_by_connection([]) == {}
    entries = [
        CollectionLogEntry("col", cid, T, T + timedelta(seconds=1), "ok", pages=n)
        for n, cid in enumerate(["c1", "c2", "c3"])
    ]
    later = T + timedelta(hours=2)
    w.bookkeeping.record_finished(
        full_passes=[("c1", T), ("c2", T), ("c1", later)], log_entries=entries
    )
    # A later mark of the same connection wins; a connection never read whole is absent.
    assert w.bookkeeping.last_full_passes(["c1", "c2", "c3"]) == {"c1": later, "c2": T}
    rows = w.con.execute(
        "SELECT connection_id, pages, started_at FROM collection_log ORDER BY connection_id"
    ).fetchall()
    assert rows == [("c1", 0, T), ("c2", 1, T), ("c3", 2, T)]


def test_bookkeeping_is_one_transaction(w: Warehouse) -> None:
    bad = CollectionLogEntry("col", "c1", T, T, "ok", pages=2**70)  # overflows BIGINT
    with pytest.raises(Exception, match=r"(?i)overflow|out of range|conver"):
        w.bookkeeping.record_finished(full_passes=[("c1", T)], log_entries=[bad])
    assert (
        w.bookkeeping.last_full_passes(["c1"]).get("c1") is None
    )  # the mark written first was rolled back
    assert w.table_counts()["collection_log"] == 0


def test_warehouse_file_is_written_with_small_row_groups(tmp_path: Any) -> None:
    from pipeline.warehouse.store import WRITE_ROW_GROUP_SIZE, open_warehouse

    path = tmp_path / "w.duckdb"
    with open_warehouse(path) as wh:
        load(wh, [run(f"r{i}") for i in range(3)])
        wh.con.execute("CREATE TABLE big AS SELECT range AS i FROM range(40000)").fetchall()
        groups = wh.con.execute(
            "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('big')"
        ).fetchall()
        assert groups == [(-(-40000 // WRITE_ROW_GROUP_SIZE),)]
        (spill,) = wh.con.execute("SELECT current_setting('temp_directory')").fetchall()[0]
        assert spill == f"{path}.tmp"  # beside the file, not in the working directory
    with duckdb.connect(str(path), read_only=True) as con:  # a plain open reads it all
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(3,)]


def test_warehouse_on_an_existing_file_reopens_read_only(tmp_path: Any) -> None:
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    load(Warehouse.over(con), [run("r1")])
    con.close()
    ro = duckdb.connect(str(path), read_only=True)
    assert Warehouse.over(ro).table_counts()["runs"] == 1
    ro.close()


def batch_of(payloads: list[dict[str, Any]], at: datetime = T) -> Any:
    return flatten_runs([FetchedRun("c1", copy.deepcopy(p), at) for p in payloads])


def test_grouped_loads_commit_every_n_runs_and_report_each_group(w: Warehouse) -> None:
    runs = random_runs(30, seed=3)
    committed: list[tuple[int, int]] = []  # (new runs the group reported, runs stored then)

    def on_commit(stats: Any) -> None:
        stored = w.con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
        committed.append((stats.total().new, stored))

    with w.loader.grouped_loads(12, on_commit) as add:
        for start in range(0, 30, 5):
            add(batch_of(runs[start : start + 5]))
    # 5+5+5 reaches 12 -> commit; 5+5+5 again; nothing left open at the end.
    assert committed == [(15, 15), (15, 30)]
    direct = Warehouse.over(duckdb.connect())
    direct.loader.load(batch_of(runs))
    assert snapshot(w) == snapshot(direct)


def test_an_open_group_holds_no_batch_it_has_loaded(w: Warehouse) -> None:
    # A transaction of many batches must not keep their Arrow tables alive until it
    # commits, or a bulk load's memory grows with the history (DuckDB's register did).
    runs = random_runs(20, seed=5)
    loaded: list[weakref.ref[pa.Table]] = []
    with w.loader.grouped_loads(1_000, lambda s: None) as add:
        for start in range(0, 20, 5):
            batch = batch_of(runs[start : start + 5])
            tables = [batch.latest, batch.raw, batch.quarantine, *batch.tables.values()]
            loaded.extend(weakref.ref(t) for t in tables)
            add(batch)
            del batch, tables
        gc.collect()
        alive = [ref() for ref in loaded if ref() is not None]
        assert alive == [], f"{len(alive)} of {len(loaded)} tables still held before commit"
    assert w.con.execute("SELECT count(*) FROM runs").fetchall() == [(20,)]


@pytest.mark.parametrize("kind", ["TABLE", "VIEW"])
def test_a_table_named_like_the_batch_stops_the_load_before_anything_is_read(
    w: Warehouse, kind: str
) -> None:
    # Loads read each Arrow batch by the name BATCH_TABLE; a table of that name would be read
    # instead, so the load must refuse, name it, and leave the warehouse as it was.
    load(w, random_runs(3, seed=1))
    source = "SELECT * FROM runs" if kind == "VIEW" else "SELECT 1 AS x"
    w.con.execute(f"CREATE {kind} {BATCH_TABLE} AS {source}").fetchall()
    before = snapshot(w)
    fresh = Warehouse.over(w.con)
    with pytest.raises(ITwinRunsError, match=f"named {BATCH_TABLE}.*Rename or drop it"):
        load(fresh, random_runs(5, seed=2))
    assert snapshot(fresh) == before


def test_a_failing_group_is_rolled_back_whole_and_earlier_groups_stay(w: Warehouse) -> None:
    runs = random_runs(20, seed=4)
    committed: list[int] = []
    w_calls = {"n": 0}

    def explode_on_the_fourth_batch(label: str) -> None:
        if label == "classify":
            w_calls["n"] += 1
            if w_calls["n"] == 4:
                raise RuntimeError("injected")

    w.loader.statements.between_statements = explode_on_the_fourth_batch
    with (
        pytest.raises(RuntimeError, match="injected"),
        w.loader.grouped_loads(10, lambda s: committed.append(s.total().new)) as add,
    ):
        for start in range(0, 20, 5):
            add(batch_of(runs[start : start + 5]))
    w.loader.statements.between_statements = None
    assert committed == [10]  # the first group; the third batch's group is gone whole
    assert w.con.execute("SELECT count(*) FROM runs").fetchall() == [(10,)]
    assert w.con.execute("SELECT count(*) FROM raw_latest").fetchall() == [(10,)]
    # Loading everything again completes the history, as if nothing had failed.
    w.loader.load(batch_of(runs))
    direct = Warehouse.over(duckdb.connect())
    direct.loader.load(batch_of(runs))
    assert snapshot(w) == snapshot(direct)


def test_a_bulk_load_lowers_duckdbs_limits_for_a_while() -> None:
    w = Warehouse.over(duckdb.connect(), memory_limit="1GB")

    def settings() -> tuple[str, str, str]:
        row = w.con.execute(
            "SELECT current_setting('memory_limit'), current_setting('checkpoint_threshold'), "
            "current_setting('write_buffer_row_group_count')"
        ).fetchall()[0]
        return str(row[0]), str(row[1]), str(row[2])

    before = settings()
    assert before == ("953.6 MiB", "16.0 MiB", "5")
    with pytest.raises(RuntimeError), w.loader.bulk("64MB", memory_limit="200MB"):
        assert settings() == ("190.7 MiB", "61.0 MiB", "1")
        raise RuntimeError("even on the way out through an error")
    assert settings() == before


def test_classifying_by_index_lookups_loads_exactly_what_the_join_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.warehouse import load_sql

    runs = random_runs(30, seed=12)
    runs[0]["id"] = "it's quoted"  # a quote in a looked-up run id
    changed = copy.deepcopy(runs[:10])
    for r in changed:
        r["state"] = "Executing"

    def history(w: Warehouse) -> list[Any]:
        outcomes = [load(w, runs[:20]).total()]
        outcomes.append(load(w, changed + runs[20:], at=T + timedelta(hours=1)).total())
        outcomes.append(load(w, runs[:5], at=T - timedelta(days=1)).total())  # stale
        outcomes.append(load(w, runs, at=T + timedelta(hours=2)).total())
        return outcomes

    joined = Warehouse.over(duckdb.connect())
    by_join = history(joined)
    monkeypatch.setattr(load_sql, "LOOKUP_ABOVE_STORED_RUNS", -1)
    monkeypatch.setattr(load_sql, "LOOKUP_IDS", 7)  # several lookups per batch
    looked_up = Warehouse.over(duckdb.connect())
    labels: list[str] = []
    looked_up.loader.statements.between_statements = labels.append
    assert history(looked_up) == by_join
    assert "look up stored" in labels
    assert snapshot(looked_up) == snapshot(joined)
    assert by_join[2].stale == 5 and by_join[3].changed == 10
