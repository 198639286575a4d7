"""Incremental builds equal full rebuilds, through random loads, corrections and deletions.

Two warehouses receive the same operations; one builds incrementally after each, the
other from scratch (`full=True`); every model must hold exactly the same rows.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.transform.flatten import FetchedRun, flatten_runs
from pipeline.warehouse.models import build_models, list_models
from pipeline.warehouse.store import Warehouse
from tests.transform.builders import error, job, run, stamp, task

DAY0 = datetime(2024, 3, 1, 22, 30, tzinfo=UTC)  # late in the day: offsets cross midnight
MODELS = [m.name for m in list_models()]


def _payload(run_id: str, shape: dict[str, Any]) -> dict[str, Any]:
    tasks = [
        task(
            f"{run_id}-t{i}",
            result="Error" if code else "Success",
            err=error(code, phase=shape["phase"], canUserFix=shape["fix"]) if code else None,
        )
        for i, code in enumerate(shape["codes"])
    ]
    payload = run(
        run_id, state=shape["state"], result=shape["result"], jobs=[job(f"{run_id}-j", tasks=tasks)]
    )
    if shape["hours"] is None:
        payload["startDateTime"] = None
    else:
        start = DAY0 + timedelta(hours=shape["hours"])
        payload["startDateTime"] = stamp(start)
        if payload["endDateTime"]:
            payload["endDateTime"] = stamp(start + timedelta(seconds=shape["seconds"]))
    return payload


shapes = st.fixed_dictionaries(
    {
        "hours": st.one_of(st.none(), st.integers(0, 80)),
        "seconds": st.integers(1, 5000),
        "state": st.sampled_from(["Completed", "Completed", "Executing", "Queued"]),
        "result": st.sampled_from(["Success", "Error", "PartialSuccess", "TimedOut"]),
        "codes": st.lists(st.sampled_from([None, None, "E1", "E2", "E3"]), max_size=3),
        "phase": st.sampled_from(["export_file", "upload"]),
        "fix": st.sampled_from([True, False, None]),
    }
)
run_ids = st.sampled_from([f"r{i}" for i in range(8)])
connections = st.sampled_from(["c1", "c2"])
operations = st.one_of(
    st.tuples(st.just("load"), st.lists(st.tuples(connections, run_ids, shapes), max_size=4)),
    st.tuples(st.just("stale"), st.tuples(connections, run_ids, shapes)),
    st.tuples(st.just("delete"), st.lists(st.tuples(connections, run_ids), max_size=3)),
    st.tuples(st.just("rebuild"), st.none()),
    st.tuples(st.just("catalog"), st.sampled_from([True, False])),
)


class _Pair:
    """The same operations on two warehouses: one built incrementally, one in full."""

    def __init__(self) -> None:
        self.sides = [Warehouse.over(duckdb.connect()) for _ in range(2)]
        self.clock = DAY0 + timedelta(days=30)

    def apply(self, op: str, arg: Any) -> None:
        self.clock += timedelta(minutes=5)
        for w in self.sides:
            if op == "load":
                by_id = {(c, r): _payload(r, s) for c, r, s in arg}  # one version per run
                fetched = [
                    FetchedRun(c, copy.deepcopy(p), self.clock) for (c, _), p in by_id.items()
                ]
                w.loader.load(flatten_runs(fetched))
            elif op == "stale":  # a version fetched before the stored one: history only
                c, r, s = arg
                older = self.clock - timedelta(days=60)
                w.loader.load(flatten_runs([FetchedRun(c, _payload(r, s), older)]))
            elif op == "delete":
                w.rewriter.delete_runs(list(arg))
            elif op == "rebuild":
                w.rewriter.rebuild_from_raw()
            elif op == "catalog":  # the catalogue decides fixability when the API is silent
                w.con.execute("delete from error_catalog")
                w.con.execute(
                    "insert into error_catalog values "
                    "('exporter', 'FailedToExport', 'd', 'c', ?, '')",
                    [arg],
                )

    def check(self) -> None:
        incremental, full = self.sides
        build_models(incremental.con)
        build_models(full.con, full=True)
        for name in MODELS:
            query = f"select * from {name} order by all"
            assert (
                incremental.con.execute(query).fetchall() == full.con.execute(query).fetchall()
            ), name


def _builds_agree_through(steps: list[tuple[str, Any]]) -> None:
    pair = _Pair()
    pair.check()
    for op, arg in steps:
        pair.apply(op, arg)
        pair.check()


@pytest.mark.long
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, min_size=1, max_size=6))
def test_incremental_builds_equal_full_rebuilds(steps: list[tuple[str, Any]]) -> None:
    _builds_agree_through(steps)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 150 sequences outlast the suite's default
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, min_size=1, max_size=10))
def test_incremental_builds_equal_full_rebuilds_over_many_sequences(
    steps: list[tuple[str, Any]],
) -> None:
    _builds_agree_through(steps)


def _changes(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("select count(*) from model_changes").fetchone()[0])  # type: ignore[index]


def _built(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, int]]:
    rows = con.execute("select model, inputs_key, change_seq from build_state").fetchall()
    return {str(m): (str(k), int(s)) for m, k, s in rows}


def test_a_build_with_nothing_new_rebuilds_nothing() -> None:
    w = Warehouse.over(duckdb.connect())
    w.loader.load(flatten_runs([FetchedRun("c1", _payload("r1", _shape(hours=1)), DAY0)]))
    build_models(w.con)
    # Poison every table model: a build that recomputed any of them would undo it.
    tables = [m.name for m in list_models() if m.materialization == "table"]
    for name in tables:
        w.con.execute(f"create or replace table {name} as select * from {name} limit 0")
    w.loader.load(flatten_runs([FetchedRun("c1", _payload("r1", _shape(hours=1)), DAY0)]))
    assert _changes(w.con) == 0  # the same version again is no change
    counts = build_models(w.con)
    for name in tables:
        assert w.con.execute(f"select count(*) from {name}").fetchall() == [(0,)], name
    assert counts["failure_daily"] == 1  # the count of the last build that ran it


def _shape(**changes: Any) -> dict[str, Any]:
    shape = {
        "hours": 1,
        "seconds": 60,
        "state": "Completed",
        "result": "Error",
        "codes": ["E1"],
        "phase": "upload",
        "fix": None,
    }
    shape.update(changes)
    return shape


def test_a_changed_run_refreshes_its_days_and_nothing_else() -> None:
    w = Warehouse.over(duckdb.connect())
    runs = [FetchedRun("c1", _payload(f"r{d}", _shape(hours=24 * d)), DAY0) for d in range(3)]
    w.loader.load(flatten_runs(runs))
    build_models(w.con)
    # Poison a day no change touches: a refresh of only the changed days keeps the poison.
    w.con.execute("update int_daily_connection set completed_runs = 99 where last_run_id = 'r0'")
    moved = FetchedRun("c1", _payload("r1", _shape(hours=24 * 2 + 1)), DAY0 + timedelta(hours=1))
    w.loader.load(flatten_runs([moved]))
    assert _changes(w.con) == 2  # the day r1 left and the day it entered
    build_models(w.con)
    rows = w.con.execute(
        "select last_run_id, completed_runs from int_daily_connection order by day"
    ).fetchall()
    assert rows == [("r0", 99), ("r1", 2)]  # r1 now starts after r2
    assert _changes(w.con) == 0  # applied by every incremental model, so dropped


def test_full_rebuilds_whatever_the_state() -> None:
    w = Warehouse.over(duckdb.connect())
    w.loader.load(flatten_runs([FetchedRun("c1", _payload("r1", _shape()), DAY0)]))
    build_models(w.con)
    w.con.execute("update failure_daily set failed_runs = 99")
    build_models(w.con)
    assert w.con.execute("select failed_runs from failure_daily").fetchall() == [(99,)]
    build_models(w.con, full=True)
    assert w.con.execute("select failed_runs from failure_daily").fetchall() == [(1,)]


def test_an_edited_model_rebuilds_with_what_reads_it(tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    for layer in ("staging", "intermediate", "marts", "macros"):
        (sql_dir / layer).mkdir(parents=True)
    (sql_dir / "staging" / "stg_x.sql").write_text("-- depends_on: runs\nselect run_id from runs\n")
    (sql_dir / "marts" / "count_x.sql").write_text(
        "-- depends_on: stg_x\nselect count(*) as n from stg_x\n"
    )
    (sql_dir / "marts" / "other.sql").write_text("select 1 as one\n")
    w = Warehouse.over(duckdb.connect())
    w.loader.load(flatten_runs([FetchedRun("c1", _payload("r1", _shape()), DAY0)]))
    build_models(w.con, sql_dir=sql_dir)
    first = _built(w.con)
    (sql_dir / "staging" / "stg_x.sql").write_text(
        "-- depends_on: runs\nselect run_id from runs where false\n"
    )
    build_models(w.con, sql_dir=sql_dir)
    after = _built(w.con)
    assert w.con.execute("select n from count_x").fetchall() == [(0,)]
    assert after["other"] == first["other"]
    assert after["count_x"] != first["count_x"]
    (sql_dir / "macros" / "m.sql").write_text("create or replace macro twice(x) as 2 * x;\n")
    build_models(w.con, sql_dir=sql_dir)
    assert _built(w.con)["other"] != after["other"]  # a macro edit rebuilds every model


@pytest.mark.parametrize("session_zone", ["UTC", "Pacific/Kiritimati"])
def test_refresh_reads_days_in_utc(session_zone: str) -> None:
    w = Warehouse.over(duckdb.connect())
    w.con.execute(f"set TimeZone = '{session_zone}'")
    w.loader.load(flatten_runs([FetchedRun("c1", _payload("r1", _shape(hours=1)), DAY0)]))
    build_models(w.con)
    w.loader.load(flatten_runs([FetchedRun("c1", _payload("r2", _shape(hours=2)), DAY0)]))
    build_models(w.con)
    incremental = w.con.execute("select * from int_daily_connection order by all").fetchall()
    build_models(w.con, full=True)
    assert (
        w.con.execute("select * from int_daily_connection order by all").fetchall() == incremental
    )
