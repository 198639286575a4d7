"""Hostile and malformed input: generated pages through `load_files`, and exact storage.

Pages are built from plausible runs and then damaged (wrong types, missing and extra keys,
huge strings, deep nesting, non-UTF-8 bytes, NaN, integers beyond 64 bits, duplicate ids
with different payloads), written as files and loaded into a warehouse that already holds
other data. Each run must end up loaded or quarantined with a reason; nothing may crash;
the data stored before must be untouched.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.itwin.page_parsing import UnreadableBody, parse_page
from pipeline.sources.files import load_files
from pipeline.transform.flatten import FetchedRun, flatten_runs
from pipeline.warehouse.models import build_models
from pipeline.warehouse.store import Warehouse, open_warehouse
from tests.reliability.conftest import trials
from tests.reliability.helpers import integrity_problems, restrict
from tests.support import snapshot
from tests.transform.builders import random_runs

STORED = "stored-connection"
DEEP = "__DEEP_NESTING__"
BAD_BYTES = "__NOT_UTF8__"

hostile_values = st.one_of(
    st.integers(min_value=2**63, max_value=2**90) | st.integers(max_value=-(2**63) - 1),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0]),
    st.just("x" * 100_000),
    st.just(DEEP),
    st.just(BAD_BYTES),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.text(max_size=20),
)
FIELDS = [
    "id",
    "startDateTime",
    "endDateTime",
    "state",
    "result",
    "jobs",
    "tasks",
    "error",
    "errorCode",
    "retryAttempts",
    "bridgeExitCode",
    "canUserFix",
    "message",
]
mutation = st.tuples(
    st.sampled_from(["set", "delete", "extra"]),
    st.sampled_from(["run", "job", "task", "error"]),
    st.sampled_from(FIELDS),
    hostile_values,
)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def targets(run: dict[str, Any], level: str) -> list[dict[str, Any]]:
    jobs = [j for j in as_list(run.get("jobs")) if isinstance(j, dict)]
    tasks = [t for j in jobs for t in as_list(j.get("tasks")) if isinstance(t, dict)]
    found = {
        "run": [run],
        "job": jobs,
        "task": tasks,
        "error": [t["error"] for t in tasks if isinstance(t.get("error"), dict)],
    }
    return found[level] or [run]


def damaged_run(seed: int, mutations: list[tuple[str, str, str, Any]]) -> dict[str, Any]:
    run = random_runs(1, seed=seed)[0]
    run.pop("connectionId", None)
    for i, (op, level, key, value) in enumerate(mutations):
        where = targets(run, level)[i % len(targets(run, level))]
        if op == "set":
            where[key] = value
        elif op == "delete":
            where.pop(key, None)
        else:
            where[f"unexpected_{key}"] = value
    return run


pages = st.tuples(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.lists(mutation, max_size=4)), min_size=1, max_size=4
    ),
    st.booleans(),  # also a copy of the first run's id with a different payload
    st.sampled_from([".json", ".ndjson"]),
)


def page_bytes(runs: list[Any], suffix: str) -> bytes:
    if suffix == ".ndjson":
        text = "\n".join(json.dumps({"run": r}) for r in runs)
    else:
        text = json.dumps({"runs": runs, "_links": {"self": {"href": "x"}}, "extraTop": 1})
    text = text.replace(f'"{DEEP}"', "[" * 3000 + "]" * 3000)
    return text.encode().replace(BAD_BYTES.encode(), b"\xff\xfe\xc3(")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A warehouse that already holds a connection's runs, and its snapshot."""
    path = tmp_path_factory.mktemp("hostile") / "warehouse.duckdb"
    with open_warehouse(path) as w:
        from datetime import UTC, datetime

        at = datetime(2025, 1, 1, tzinfo=UTC)
        w.loader.load(flatten_runs([FetchedRun(STORED, r, at) for r in random_runs(40, seed=5)]))
        build_models(w.con)  # so the snapshot has every table
    return path, restrict(snapshot(path), {STORED})


COUNTER = itertools.count()


def check_page(w: Warehouse, folder: Path, case: tuple[Any, bool, str]) -> None:
    specs, duplicate, suffix = case
    n = next(COUNTER)
    conn = f"hostile-{n}"
    runs: list[Any] = [damaged_run(seed, muts) for seed, muts in specs]
    if duplicate and isinstance(runs[0].get("id"), str):
        twin = copy.deepcopy(runs[0])
        twin["state"] = "Executing" if twin.get("state") != "Executing" else "Completed"
        runs.append(twin)
    path = folder / f"page-{n}{suffix}"
    path.write_bytes(page_bytes(runs, suffix))

    summary = load_files([path], w, default_connection_id=conn)  # must not raise

    loaded = {
        r[0]
        for r in w.con.execute("select run_id from runs where connection_id = ?", [conn]).fetchall()
    }
    quarantine = w.con.execute(
        "select run_id, reason, source from quarantine where connection_id = ? or source like ?",
        [conn, f"{path}%"],
    ).fetchall()
    assert all(reason for _, reason, _ in quarantine), "every quarantine row has a reason"
    quarantined_ids = {run_id for run_id, _, _ in quarantine}
    # A file (or NDJSON line) that is not JSON at all is quarantined whole, before any run.
    unreadable = summary.files_quarantined > 0
    assert unreadable == any(run_id is None and "JSON" in why for run_id, why, _ in quarantine)
    for run in runs:
        rid = run.get("id")
        if isinstance(rid, str) and rid and rid not in (DEEP, BAD_BYTES) and not unreadable:
            assert rid in loaded or rid in quarantined_ids, f"{rid[:40]!r} neither loaded nor kept"
    unkeyed = [r for r in runs if not (isinstance(r.get("id"), str) and r.get("id"))]
    if unkeyed and not unreadable:
        assert summary.quarantined >= 1, "a run without an id must be quarantined"


def test_generated_hostile_pages_load_or_quarantine(
    seeded: tuple[Path, Any], tmp_path: Path, figures: list[Any]
) -> None:
    run_hostile(seeded, tmp_path, figures, examples=200, name="hostile_pages_quick")


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_generated_hostile_pages_many(
    seeded: tuple[Path, Any], tmp_path: Path, figures: list[Any]
) -> None:
    count = trials("hostile_examples", 2_000)
    run_hostile(seeded, tmp_path, figures, examples=count, name="hostile_pages")


def run_hostile(
    seeded: tuple[Path, Any], folder: Path, figures: list[Any], *, examples: int, name: str
) -> None:
    path, before = seeded
    cases = []
    with open_warehouse(path) as w:

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(pages)
        def property_(case: tuple[Any, bool, str]) -> None:
            cases.append(case)
            check_page(w, folder, case)

        property_()
        counts = w.con.execute(
            "select (select count(*) from runs where connection_id like 'hostile-%'), "
            "(select count(*) from quarantine)"
        ).fetchall()[0]
    assert integrity_problems(path) == []
    assert restrict(snapshot(path), {STORED}) == before  # stored data intact
    figures.append(
        {"figure": name, "cases": len(cases), "runs_loaded": counts[0], "quarantined": counts[1]}
    )
    assert counts[0] > 0 and counts[1] > 0  # both outcomes really happened


# --- exact storage of awkward text ---------------------------------------------------------

AWKWARD = {
    "sql": "'); DROP TABLE runs; --",
    "quotes": "\"double\" 'single' `back` \\ backslash",
    "emoji": "export 🚀🔥 done ✅ 👩🏽‍💻",
    "rtl": "שגיאה בייצוא \u202eevil\u202c مرحبا",
    "json": '{"nested": "not really"}',
    "percent": "%s %d {0} $1 ?",
}


def test_sql_quotes_emoji_and_rtl_are_stored_byte_exact(tmp_path: Path) -> None:
    run = random_runs(1, seed=9)[0]
    run.pop("connectionId", None)
    run["id"] = "awkward-run"
    for key, value in AWKWARD.items():
        run[value] = key  # as a key
        run[f"value_{key}"] = value  # and as a value
    task = run["jobs"][0]["tasks"][0]
    task["error"] = {"errorCode": AWKWARD["sql"], "message": AWKWARD["rtl"], "phase": "🚀"}
    page = tmp_path / "awkward.json"
    page.write_bytes(json.dumps({"runs": [run]}, ensure_ascii=False).encode())
    path = tmp_path / "warehouse.duckdb"
    with open_warehouse(path) as w:
        summary = load_files([page], w, default_connection_id=AWKWARD["quotes"])
        assert summary.runs_loaded == 1 and summary.quarantined == 0
    with duckdb.connect(str(path), read_only=True) as con:
        [(conn, extra)] = con.execute("select connection_id, extra from runs").fetchall()
        assert conn == AWKWARD["quotes"]
        stored_extra = json.loads(extra)
        for key, value in AWKWARD.items():
            assert stored_extra[value] == key
            assert stored_extra[f"value_{key}"] == value
        [(code, message, phase)] = con.execute(
            "select error_code, message, phase from task_errors where task_id = ?", [task["id"]]
        ).fetchall()
        assert (code, message, phase) == (AWKWARD["sql"], AWKWARD["rtl"], "🚀")
        [(payload,)] = con.execute("select payload from raw_runs").fetchall()
        assert json.loads(payload) == run
        tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert {"runs", "jobs", "tasks", "task_errors", "raw_runs", "quarantine"} <= tables


# --- generated API pages through the client's tolerant page parser --------------------------
#
# The API path cannot quarantine a file: a bad run inside a page must come back rejected
# with its raw text while the page's other runs come back parsed, a run repeating a key must
# be kept raw, and a page whose own structure is broken (cut short, bad outside the runs)
# must stay an error rather than a page missing runs. The oracle is the construction itself.

BAD_VALUES: list[tuple[bytes, str]] = [
    (b"NaN", "not a finite number"),
    (b"Infinity", "not a finite number"),
    (b"-Infinity", "not a finite number"),
    (b"1e999", "not a finite number"),
    (b'"\\ud800"', "lone surrogate"),
    (b'"ok \\udc00 then"', "lone surrogate"),
    (b"[" * 3000 + b"]" * 3000, "nested too deeply"),
    (b'"\xff\xfe\xc3("', "not valid JSON"),
    (b"[1, 2,]", "not valid JSON"),
]
TRICKY_BUT_VALID = [
    b'"\\"runs\\": [1, 2,"',
    b'"a\\":b"',
    b'"\\\\"',
    b'"]}{[,:"',
    b'{"k": [], "l": {}}',
    b'"caf\\u00e9 \\ud83d\\ude80"',
    b'"escaped colon \\u003a here"',
]
SHADOWING = [b'"id": "shadowed"', b'"id": "sh\\u003aadowed"', b'"\\u0069d": "x"']
SEPARATORS = [b",", b", ", b",\n    "]


def _pool() -> list[tuple[bytes, str]]:
    return [(json.dumps(r).encode(), r["id"]) for r in random_runs(300, seed=22)]


def _inject(run: bytes, member: bytes) -> bytes:
    return b"{" + member + b", " + run[1:]


def generated_api_page(rng: Any, pool: list[tuple[bytes, str]], deep_every: int) -> dict[str, Any]:
    """A page's bytes and what the parser must make of it."""
    count = rng.randint(1, 8)
    texts, expect = [], []
    for _ in range(count):
        run, run_id = pool[rng.randrange(len(pool))]
        roll = rng.random()
        if roll < 0.3:
            value, reason = BAD_VALUES[rng.randrange(len(BAD_VALUES))]
            if value.startswith(b"[[[") and rng.randrange(deep_every) == 0:
                value = b"[" * 100_000 + b"]" * 100_000
            texts.append(_inject(run, b'"hostile": ' + value))
            expect.append(("rejected", reason))
        elif roll < 0.45:
            texts.append(_inject(run, SHADOWING[rng.randrange(len(SHADOWING))]))
            expect.append(("duplicate", run_id))
        elif roll < 0.6:
            tricky = TRICKY_BUT_VALID[rng.randrange(len(TRICKY_BUT_VALID))]
            texts.append(_inject(run, b'"note": ' + tricky))
            expect.append(("good", run_id))
        else:
            texts.append(run)
            expect.append(("good", run_id))
    runs = SEPARATORS[rng.randrange(3)].join(texts)
    tail = b'"_links": {"self": {"href": "x"}}, "extraTop": "]}"'
    broken = rng.random() < 0.1
    if broken and rng.random() < 0.5:
        tail += b', "bad": NaN'
    body = (
        b'{"runs": [' + runs + b"], " + tail + b"}"
        if rng.random() < 0.5
        else b"{" + tail + b', "runs": [\n' + runs + b"\n]}"
    )
    if broken and b'"bad"' not in body:
        body = body[: rng.randrange(1, len(body))]
    return {"body": body, "texts": texts, "expect": expect, "broken": broken}


def check_api_page(case: dict[str, Any]) -> str:
    try:
        page = parse_page(case["body"], "runs")
    except UnreadableBody:
        assert case["broken"], "a page with a sound structure was refused whole"
        return "unreadable"
    assert not case["broken"], "a broken page came back as if whole"
    expect = case["expect"]
    good_ids = [e[1] for e in expect if e[0] != "rejected"]
    assert [r["id"] for r in page.body["runs"]] == good_ids
    assert page.body["_links"] == {"self": {"href": "x"}} and page.body["extraTop"] == "]}"
    rejected = [(i, e[1]) for i, e in enumerate(expect) if e[0] == "rejected"]
    assert [(r.index, r.raw) for r in page.rejected] == [
        (i, case["texts"][i].decode("utf-8", "backslashreplace")) for i, _ in rejected
    ]
    for got, (_, reason) in zip(page.rejected, rejected, strict=True):
        assert reason in got.reason, (got.reason, reason)
    dupes = [i for i, e in enumerate(expect) if e[0] == "duplicate"]
    assert [(d.index, d.raw) for d in page.duplicate_keys] == [
        (i, case["texts"][i].decode()) for i in dupes
    ]
    return "rejected" if page.rejected else "whole"


def run_api_pages(figures: list[Any], *, pages: int, deep_every: int, name: str) -> None:
    rng = random.Random(2212)
    pool = _pool()
    outcomes: dict[str, int] = {}
    for _ in range(pages):
        outcome = check_api_page(generated_api_page(rng, pool, deep_every))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    figures.append({"figure": name, "pages": pages, **outcomes})
    assert set(outcomes) == {"unreadable", "rejected", "whole"}  # every outcome really happened


def test_generated_api_pages_keep_good_runs_and_reject_bad_ones(figures: list[Any]) -> None:
    count = trials("api_page_examples", 10_000)
    run_api_pages(figures, pages=count, deep_every=200, name="hostile_api_pages")
