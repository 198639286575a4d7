"""The vectorised path either declines a batch or builds exactly what the careful path builds."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline.transform.flatten as flatten_module
from pipeline.transform.fastpath import flatten_clean
from pipeline.transform.flatten import FetchedRun, FlatBatch, flatten_runs
from tests.transform.builders import error, job, run, task
from tests.transform.test_flatten_hostile import NOW
from tests.transform.test_flatten_hostile import runs as hostile_runs


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
    import orjson
    import pyarrow as pa

    ids = pa.array([r["id"] for r in runs])
    text = b"".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in runs)
    return flatten_clean(runs, pa.array(["c"] * len(runs)), ids, text) is not None
