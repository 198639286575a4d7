"""Hostile input: every run ends up either as valid rows or in quarantine, never an exception."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.transform.flatten import FetchedRun, FlatBatch, flatten_runs
from pipeline.transform.schema import CORE_TABLES
from pipeline.transform.timestamps import parse_timestamp_us, parse_timestamps
from tests.transform.builders import error, job, run, task
from tests.transform.strategies import NOW, runs


def base() -> dict[str, Any]:
    return run(
        "r1", jobs=[job("j1", tasks=[task("t1", err=error()), task("t2")]), job("j2", tasks=[])]
    )


def set_path(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


TASK = ("jobs", 0, "tasks", 0)
CASES = [
    (("id",), 42, "id"),
    (("jobs",), {"a": 1}, "jobs"),
    (("startDateTime",), "yesterday", "startDateTime"),
    (("startDateTime",), "2024-02-30T00:00:00Z", "startDateTime"),
    (("endDateTime",), "2024-01-01T00:00:00", "endDateTime"),  # no time zone
    (("state",), True, "state"),
    (("jobs", 1, "id"), "j1", "id 'j1' appears more than once"),
    (("jobs", 0, "tasks", 1, "id"), "t1", "id 't1' appears more than once"),
    (("jobs", 0, "id"), None, "jobs[0].id: missing"),
    (("jobs", 0, "tasks", 0, "id"), "", "tasks[0].id"),
    ((*TASK, "retryAttempts"), 1.5, "retryAttempts"),
    ((*TASK, "retryAttempts"), True, "retryAttempts"),
    ((*TASK, "error", "bridgeExitCode"), 2**63, "bridgeExitCode"),
    ((*TASK, "error", "bridgeExitCode"), 2**70, "bridgeExitCode"),
    ((*TASK, "error", "bridgeExitCode"), "4294967295", "bridgeExitCode"),
    ((*TASK, "error", "canUserFix"), "false", "canUserFix"),
    ((*TASK, "error"), ["x"], "error"),
    ((*TASK, "newThing"), float("nan"), "newThing"),
    ((*TASK, "newThing"), float("inf"), "newThing"),
    ((*TASK, "newThing"), {1: "non-string key"}, "newThing"),
    ((*TASK, "message"), "lone \ud800 surrogate", "message"),
    (("jobs", 0, "tasks"), [1, 2], "tasks[0]"),
    (("jobs", 0), "not a job", "jobs[0]"),
    (("connectionId",), 7, "connectionId"),
]


@pytest.mark.parametrize(("path", "value", "needle"), CASES)
def test_bad_field_quarantines_the_whole_run_naming_it(
    path: tuple[Any, ...], value: Any, needle: str
) -> None:
    good = run("r2")
    bad = set_path(base(), path, value)
    batch = flatten_runs([FetchedRun("c", bad, NOW), FetchedRun("c", good, NOW)])
    assert batch.tables["runs"].column("run_id").to_pylist() == ["r2"]
    for name in ("jobs", "tasks", "task_errors"):
        assert set(batch.tables[name].column("run_id").to_pylist()) <= {"r2"}
    (q,) = batch.quarantine.to_pylist()
    assert needle in q["reason"], q["reason"]
    assert q["connection_id"] == "c" and q["payload"]
    assert batch.raw.column("run_id").to_pylist() == ["r2"]


@pytest.mark.parametrize("payload", [None, [], "text", 3, {"jobs": []}, {"id": None}])
def test_unkeyable_payloads_are_quarantined(payload: Any) -> None:
    batch = flatten_runs([FetchedRun("c", payload, NOW)])
    assert batch.quarantine.num_rows == 1
    assert all(t.num_rows == 0 for t in batch.tables.values())


def test_deep_nesting_is_quarantined_not_a_crash() -> None:
    deep: Any = "x"
    for _ in range(2000):
        deep = [deep]
    batch = flatten_runs([FetchedRun("c", {**base(), "deep": deep}, NOW)])
    assert batch.quarantine.num_rows == 1


# --- property tests -----------------------------------------------------------------------


def check_invariants(inputs: list[FetchedRun], batch: FlatBatch) -> None:
    for name, (schema, key) in CORE_TABLES.items():
        table = batch.tables[name]
        assert table.schema.equals(schema)
        table.validate(full=True)
        for k in key:
            assert table.column(k).null_count == 0
            assert "" not in table.column(k).to_pylist()
        keys = list(zip(*(table.column(k).to_pylist() for k in key), strict=True))
        assert len(keys) == len(set(keys)), f"duplicate keys in {name}"
    run_keys = set(
        zip(
            batch.tables["runs"]["connection_id"].to_pylist(),
            batch.tables["runs"]["run_id"].to_pylist(),
            strict=True,
        )
    )
    for name in ("jobs", "tasks", "task_errors"):
        t = batch.tables[name]
        assert (
            set(zip(t["connection_id"].to_pylist(), t["run_id"].to_pylist(), strict=True))
            <= run_keys
        )
    # Nothing dropped silently: each input is loaded (its key is in runs), or
    # quarantined, or superseded by a later fetch of the same key.
    quarantined = batch.quarantine.num_rows
    assert len(run_keys) + quarantined >= len({id(r) for r in inputs}) - _superseded(inputs)


def _superseded(inputs: list[FetchedRun]) -> int:
    keys = [r.payload.get("id") for r in inputs if isinstance(r.payload, dict)]
    hashable = [k for k in keys if isinstance(k, str)]
    return len(hashable) - len(set(hashable))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(runs, max_size=4), st.sampled_from(["", "c"]))
def test_any_mix_of_fields_yields_valid_rows_or_quarantine(payloads: list[Any], conn: str) -> None:
    inputs = [
        FetchedRun(conn, copy.deepcopy(p), NOW + timedelta(seconds=i))
        for i, p in enumerate(payloads)
    ]
    batch = flatten_runs(inputs)
    check_invariants(inputs, batch)


timestamps = st.builds(
    lambda dt, digits, zone: (
        dt.strftime("%Y-%m-%dT%H:%M:%S") + (("." + digits) if digits else "") + zone
    ),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.text("0123456789", max_size=12),
    st.sampled_from(["Z", "+00:00", "+05:30", "-0800", "+14", ""]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(timestamps | st.text(max_size=30), max_size=6))
def test_vectorised_timestamps_match_the_reference_parser(texts: list[str]) -> None:
    parsed, bad = parse_timestamps(pa.array(texts, pa.string()))
    got = parsed.view(pa.int64()).to_pylist()
    for i, text in enumerate(texts):
        try:
            expected = parse_timestamp_us(text)
        except ValueError:
            assert i in bad and got[i] is None, text
        else:
            assert got[i] == expected, text
