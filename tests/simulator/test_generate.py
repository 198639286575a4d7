"""The generated data: deterministic per seed, realistic in mix, and full of the API's quirks."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from pipeline.simulator.catalog import ERROR_KINDS
from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.timefmt import format_ticks, ticks_of
from pipeline.simulator.world import World


def all_runs(world: World) -> Iterator[dict[str, Any]]:
    for conn in world.connections:
        runs, _ = world.page(conn, 0, 10_000)
        yield from (orjson.loads(r) for r in runs)


def tasks_of(runs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for run in runs:
        for job in run["jobs"]:
            yield from job["tasks"]


@pytest.fixture(scope="module")
def runs() -> list[dict[str, Any]]:
    return list(all_runs(World(SimulatorConfig(seed=3, connections=10, runs_per_connection=200))))


def test_same_seed_same_data_other_seed_other_data() -> None:
    def snapshot(seed: int) -> list[bytes]:
        world = World(SimulatorConfig(seed=seed, connections=3, runs_per_connection=20))
        return [b for conn in world.connections for b in world.page(conn, 0, 100)[0]]

    assert snapshot(5) == snapshot(5)
    assert snapshot(5) != snapshot(6)


def test_sizes_follow_the_config() -> None:
    world = World(SimulatorConfig(connections=5, imodels=2, runs_per_connection=33))
    assert len(world.connections) == 5
    assert all(world.run_count(c) == 33 for c in world.connections)
    assert len(world.imodels) == 2


def test_shape_is_near_the_performance_references(runs: list[dict[str, Any]]) -> None:
    jobs = sum(len(r["jobs"]) for r in runs) / len(runs)
    tasks = sum(1 for _ in tasks_of(runs)) / len(runs)
    errors = sum("error" in t for t in tasks_of(runs)) / len(runs)
    assert 2.0 < jobs < 2.5
    assert 9.0 < tasks < 11.5
    assert 1.8 < errors < 3.2
    assert all(1 <= len(r["jobs"]) <= 4 for r in runs if r["state"] == "Completed")
    assert all(
        1 <= len(j["tasks"]) <= 8 for r in runs for j in r["jobs"] if j["state"] == "Completed"
    )


def test_result_mix_is_mostly_success_with_every_other_result(runs: list[dict[str, Any]]) -> None:
    results = Counter(r["result"] for r in runs if r["state"] == "Completed")
    assert results.most_common(1)[0][0] == "Success"
    assert results["Success"] / sum(results.values()) > 0.6
    for result in ("Error", "PartialSuccess", "TimedOut", "Canceled", "Cancelled", "Skipped"):
        assert results[result] > 0, result


def test_error_codes_are_long_tailed_with_fixed_attributes(runs: list[dict[str, Any]]) -> None:
    errors = [t["error"] for t in tasks_of(runs) if "error" in t]
    codes = Counter(e["errorCode"] for e in errors)
    assert len(codes) >= 25
    top_count = codes.most_common(1)[0][1]
    assert top_count > 5 * codes.most_common()[len(codes) // 2][1]
    kinds = {k.code: k for k in ERROR_KINDS}
    for error in errors:
        kind = kinds[error["errorCode"]]
        assert error["descriptionKey"] == kind.description_key
        assert error["description"] == kind.description
        assert error["phase"] in (kind.phase, None)
        assert error["category"] in (kind.category, "")


def test_every_documented_quirk_appears(runs: list[dict[str, Any]]) -> None:
    tasks = list(tasks_of(runs))
    errors = [t["error"] for t in tasks if "error" in t]
    stamps = [t["startDateTime"] for t in tasks] + [r["startDateTime"] for r in runs]
    fractions = Counter(len(m.group(1)) for s in stamps if (m := re.search(r"\.(\d+)Z$", s)))
    assert fractions[7] > fractions[6] > 0 and fractions[3] > 0
    assert any(s.endswith(":00Z") or "." not in s for s in stamps)
    exit_codes = {e.get("bridgeExitCode") for e in errors}
    assert {4294967295, -7002} <= exit_codes
    assert any("bridgeExitCode" not in e for e in errors)
    assert any(t["result"] == "Success" and "error" in t for t in tasks)
    assert any(t["result"] in ("Error", "TimedOut") and "error" not in t for t in tasks)
    assert any(e["phase"] is None and e["system"] is None for e in errors)
    jobs = [j for r in runs for j in r["jobs"]]
    assert any("connectorType" not in j for j in jobs) and any("connectorType" in j for j in jobs)
    assert any("exportOutputFileId" not in t for t in tasks)
    assert any("exportOutputFileId" in t for t in tasks)
    # Fields a client does not know yet, at every level.
    assert any("triggerType" in r for r in runs)
    assert any("jobPriority" in j for j in jobs)
    assert any("outputSizeBytes" in t for t in tasks)
    assert any("correlationId" in e for e in errors)
    assert all("connectionId" not in r for r in runs)


def test_the_data_set_starts_with_open_runs(runs: list[dict[str, Any]]) -> None:
    states = Counter(r["state"] for r in runs)
    assert states["Completed"] > 0.9 * len(runs)
    assert set(states) - {"Completed"}, "some runs should still be queued or executing"
    for run in runs:
        if run["state"] != "Completed":
            assert run["result"] == "Undetermined"
            assert run.get("endDateTime") is None


def test_timestamps_keep_seven_digits_and_drop_trailing_zeros() -> None:
    from datetime import UTC, datetime

    base = ticks_of(datetime(2020, 10, 24, 2, 44, 13, tzinfo=UTC))
    assert format_ticks(base + 4109666) == "2020-10-24T02:44:13.4109666Z"
    assert format_ticks(base + 8010860) == "2020-10-24T02:44:13.801086Z"
    assert format_ticks(base) == "2020-10-24T02:44:13Z"
