"""The vectorised path either declines a batch or builds exactly what the careful path builds."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline.transform.flatten as flatten_module
from pipeline.transform.fastpath import flatten_clean
from pipeline.transform.flatten import FetchedRun, FlatBatch, flatten_runs
from tests.transform.builders import error, job, run, task
from tests.transform.strategies import NOW
from tests.transform.strategies import runs as hostile_runs


def both_paths(inputs: list[FetchedRun]) -> tuple[FlatBatch, FlatBatch]:
    accepted: list[bool] = []

    def spy(*args: Any) -> Any:
        out = flatten_clean(*args)
        accepted.append(out is not None)
        return out

    with pytest.MonkeyPatch.context() as m:
        m.setattr(flatten_module, "flatten_clean", spy)
        fast = flatten_runs(copy.deepcopy(inputs))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(flatten_module, "flatten_clean", lambda *args: None)
        careful = flatten_runs(copy.deepcopy(inputs))
    return fast, careful


def assert_same(fast: FlatBatch, careful: FlatBatch) -> None:
    for name, table in careful.tables.items():
        assert fast.tables[name].equals(table), name
    assert fast.raw.equals(careful.raw)
    assert fast.latest.equals(careful.latest)
    assert fast.quarantine.equals(careful.quarantine)


# Well-typed runs with the awkward but valid parts: missing and null fields, extras of
# every scalar kind (null, strings needing escapes, non-ASCII, floats, nested values).
extra_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet='ab"\\\n\x01é🚀', max_size=4),
    st.lists(st.integers(0, 3), max_size=2),
)
extras = st.dictionaries(st.sampled_from(["zeta", "alpha", "kind"]), extra_values, max_size=2)


@st.composite
def clean_runs(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for r in range(draw(st.integers(1, 3))):
        jobs = []
        for j in range(draw(st.integers(0, 2))):
            tasks = []
            for t in range(draw(st.integers(0, 2))):
                result = draw(st.sampled_from(["Success", "Cancelled", "Error"]))
                err = error(canUserFix=draw(st.booleans())) if draw(st.booleans()) else None
                tk = task(f"t{t}", result=result, err=err)
                if err is not None:
                    err.update(draw(extras))
                tk.update(draw(extras))
                tasks.append(tk)
            jb = job(f"j{j}", tasks=tasks)
            jb.update(draw(extras))
            if draw(st.booleans()):
                jb["state"] = None
            jobs.append(jb)
        rn = run(f"r{r}", jobs=jobs)
        rn.update(draw(extras))
        if draw(st.booleans()):
            rn.pop("endDateTime", None)
        out.append(rn)
    return out


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(clean_runs())
def test_clean_batches_match_the_careful_path(payloads: list[dict[str, Any]]) -> None:
    inputs = [FetchedRun("c", p, NOW + timedelta(seconds=i)) for i, p in enumerate(payloads)]
    assert_same(*both_paths(inputs))


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(hostile_runs, max_size=4))
def test_hostile_batches_match_the_careful_path(payloads: list[Any]) -> None:
    inputs = [FetchedRun("c", p, NOW + timedelta(seconds=i)) for i, p in enumerate(payloads)]
    assert_same(*both_paths(inputs))


def test_the_fast_path_takes_plain_batches() -> None:
    runs = [run(f"r{i}", jobs=[job("j", tasks=[task("t1"), task("t2")])]) for i in range(3)]
    for r in runs:
        r["triggerType"] = "Scheduled"
    fast, careful = both_paths([FetchedRun("c", r, NOW) for r in runs])
    assert_same(fast, careful)
    assert flatten_clean_accepted(runs)
    batch = fast
    assert batch.tables["runs"]["extra"].to_pylist() == ['{"triggerType":"Scheduled"}'] * 3


def flatten_clean_accepted(runs: list[dict[str, Any]]) -> bool:
    import pyarrow as pa

    ids = pa.array([r["id"] for r in runs])
    return flatten_clean(runs, pa.array(["c"] * len(runs)), ids) is not None


# --- the conversion to a fixed Arrow type is lenient; each leniency must still decline ----

TASK0 = ("jobs", 0, "tasks", 0)
ERROR0 = (*TASK0, "error")


def one_run() -> dict[str, Any]:
    return run("r1", jobs=[job("j1", tasks=[task("t1", err=error()), task("t2")])])


def mutated(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = one_run()
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


def fast_accepts(payloads: list[dict[str, Any]]) -> bool:
    import pyarrow as pa

    ids = pa.array([p["id"] for p in payloads], pa.string())
    out = flatten_clean(copy.deepcopy(payloads), pa.array(["c"] * len(payloads)), ids)
    return out is not None


DECLINED = [
    ((*TASK0, "retryAttempts"), 1.0),  # Arrow's int64 conversion would take it as 1
    ((*TASK0, "retryAttempts"), 1.5),  # ... and truncate this one to 1
    ((*TASK0, "retryAttempts"), True),
    ((*TASK0, "retryAttempts"), "1"),
    ((*ERROR0, "bridgeExitCode"), 2**63),  # beyond int64
    ((*ERROR0, "bridgeExitCode"), -(2**63) - 1),
    ((*ERROR0, "canUserFix"), 0),  # a number where a bool belongs
    ((*ERROR0, "canUserFix"), "false"),
    ((*TASK0, "state"), 3),  # a number where a string belongs
    ((*TASK0, "state"), 3.5),
    ((*TASK0, "state"), True),
    ((*TASK0, "state"), ["Completed"]),
    ((*TASK0, "state"), {"v": "Completed"}),
    (("startDateTime",), 1700000000),
    (("jobs", 0, "tasks"), ""),  # Arrow would take a string as an (empty) list
    (("jobs", 0, "tasks"), "ab"),
    (("jobs", 0, "tasks"), (task("t9"),)),  # a tuple is no JSON array
    (("jobs",), {"a": 1}),
    (("jobs", 0), [("id", "j1")]),  # Arrow would take a list of pairs as an object
    (("jobs", 0), None),
    (ERROR0, [["errorCode", "E1"]]),
    (ERROR0, ("E1",)),
    (ERROR0, "E1"),
    ((*TASK0, "id"), None),
    ((*TASK0, "id"), ""),
    (("jobs",), [job("j1", tasks=[]), job("j1", tasks=[])]),  # a repeated job id
    (("jobs", 0, "tasks"), [task("t1"), task("t1")]),
    ((*TASK0, "newThing"), float("nan")),  # an extra JSON cannot carry
    ((*TASK0, "newThing"), {"deep": [float("inf")]}),
    ((*TASK0, "endDateTime"), "2024-01-01T00:00:00"),  # no time zone
]


@pytest.mark.parametrize(("path", "value"), DECLINED)
def test_values_the_conversion_would_bend_decline(path: tuple[Any, ...], value: Any) -> None:
    payloads = [mutated(path, value), one_run() | {"id": "r2"}]
    assert not fast_accepts(payloads)
    inputs = [FetchedRun("c", p, NOW) for p in payloads]
    assert_same(*both_paths(inputs))


def test_the_unmutated_run_is_accepted() -> None:
    assert fast_accepts([one_run()])  # so every decline above is the mutation's doing


ACCEPTED = [
    (("triggerType",), "Scheduled"),  # extra fields at each level
    (("jobs", 0, "jobPriority"), 1),
    ((*TASK0, "outputSizeBytes"), 2**64 - 1),  # beyond int64, but JSON carries it as extra
    ((*ERROR0, "correlationId"), 'quote " backslash \\ newline \n é 🚀'),
    ((*TASK0, "ratio"), 0.25),
    ((*TASK0, "nested"), {"b": [1, {"z": None, "a": True}], "a": "x"}),  # keys sorted inside
    ((*TASK0, "nothing"), None),  # an extra sent as null stays in extra, unlike a missing one
    ((*TASK0, "empty"), {}),
    ((*TASK0, "state"), None),  # a column sent as null equals a missing one
    ((*TASK0, "retryAttempts"), -(2**63)),
    ((*ERROR0, "bridgeExitCode"), 2**63 - 1),
    ((*TASK0, "error"), None),
    ((*TASK0, "error"), {}),  # an error object with no fields is still an error row
    (("jobs", 0, "tasks"), None),
    (("jobs", 0, "tasks"), []),
    (("jobs",), None),
    (("endDateTime",), None),
    (("connectionId",), "c"),  # the run's own connection is a key, not an extra
]


@pytest.mark.parametrize(("path", "value"), ACCEPTED)
def test_valid_oddities_are_accepted_and_match(path: tuple[Any, ...], value: Any) -> None:
    payloads = [mutated(path, value), one_run() | {"id": "r2"}]
    assert fast_accepts(payloads)
    inputs = [FetchedRun("c", p, NOW) for p in payloads]
    fast, careful = both_paths(inputs)
    assert careful.quarantine.num_rows == 0
    assert_same(fast, careful)


def test_null_and_missing_extras_are_told_apart() -> None:
    sent_null = mutated((*TASK0, "note"), None)
    missing = one_run() | {"id": "r2"}
    fast, _ = both_paths([FetchedRun("c", sent_null, NOW), FetchedRun("c", missing, NOW)])
    extras = fast.tables["tasks"]["extra"].to_pylist()
    assert extras == ['{"note":null}', None, None, None]


def test_a_key_absent_in_the_first_rows_is_still_read() -> None:
    late = [one_run() | {"id": f"r{i}"} for i in range(3)]
    late[2]["jobs"][0]["tasks"][1]["outputSizeBytes"] = 7
    fast, careful = both_paths([FetchedRun("c", p, NOW) for p in late])
    assert_same(fast, careful)
    assert fast.tables["tasks"]["extra"].to_pylist()[-1] == '{"outputSizeBytes":7}'


# Extras across the rows of one level: Arrow writes them when plain, Python otherwise.
EXTRA_MIXES = [
    [{"note": None}, {"note": "x"}, {}],  # sent as null in one row, a string in another
    [{"v": 1}, {"v": "1"}, {"v": True}],  # one key, mixed kinds
    [{"v": 1}, {"v": -(2**63)}, {"v": 2**63}],  # one beyond int64
    [{"b": True, "a": 1}, {"b": False}, {"c": "x", "a": 2}],  # several keys, some missing
    [{"s": 'say "hi"'}, {"s": "plain"}],  # a string JSON escapes
    [{"s": "tab\there"}, {"s": "\x7f é 🚀 \u2028"}],  # escaped / written as is
    [{"é": 1}, {"z": 2, "\uffff": 3, "🚀": 4}],  # non-ASCII keys: orjson's order decides
    [{"f": 1.0}, {"f": 2}],  # a float among ints
    [{"n": [1, "a"]}, {"n": {"k": None}}],  # nested values
    [{'q"k': 1}, {"a\\b": "x"}],  # keys JSON escapes
]


@pytest.mark.parametrize("extras", EXTRA_MIXES)
def test_extra_mixes_match_the_careful_path(extras: list[dict[str, Any]]) -> None:
    tasks = [task(f"t{i}") | extra for i, extra in enumerate(extras)]
    jobs = [
        job(f"j{i}", tasks=[task("t", err=error() | extra)]) | extra
        for i, extra in enumerate(extras)
    ]
    payloads = [run("r1", jobs=[job("j", tasks=tasks)]), run("r2", jobs=jobs)]
    payloads += [run(f"x{i}") | extra for i, extra in enumerate(extras)]
    assert fast_accepts(payloads)
    fast, careful = both_paths([FetchedRun("c", p, NOW) for p in payloads])
    assert_same(fast, careful)
    assert careful.quarantine.num_rows == 0
    assert fast.tables["tasks"]["extra"].to_pylist()[: len(extras)] == [
        orjson.dumps(e, option=orjson.OPT_SORT_KEYS).decode() if e else None for e in extras
    ]


def test_each_level_type_holds_exactly_its_known_keys() -> None:
    # A row's key count is compared with its non-null fields to find extras, which is
    # only exact while every known key (and no other) is a field of the level's type.
    from pipeline.transform import fastpath

    types = {
        "runs": fastpath._RUN_TYPE,
        "jobs": fastpath._JOB_TYPE,
        "tasks": fastpath._TASK_TYPE,
        "task_errors": fastpath._ERROR_TYPE,
    }
    for name, arrow_type in types.items():
        assert {f.name for f in arrow_type} == fastpath.KNOWN_KEYS[name], name
