"""Flattening in a child process: the same batches as here, and no way to hang or lose runs."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.collection import CollectionResult, Collector
from pipeline.itwin.client import ExportApiClient
from pipeline.itwin.settings import Settings
from pipeline.messages import read_message, send_message
from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from pipeline.simulator.world import World
from pipeline.transform import offload
from pipeline.transform.flatten import FetchedRun, FlatBatch, flatten_runs
from pipeline.transform.offload import CollectionFlattener, FlatteningChild
from pipeline.warehouse.models import build_models
from pipeline.warehouse.store import open_warehouse
from tests.support import sim_settings, snapshot
from tests.transform.builders import T0


def simulator_runs(connections: int = 3, per_connection: int = 120) -> list[FetchedRun]:
    world = World(SimulatorConfig(seed=5, connections=connections, runs_per_connection=120))
    out = []
    for cid in list(world.connections)[:connections]:
        texts, _ = world.page(cid, 0, per_connection)
        out += [FetchedRun(cid, orjson.loads(t), T0) for t in texts]
    return out


def _damaged(run: dict[str, Any], how: int) -> dict[str, Any]:
    run = copy.deepcopy(run)
    task = next((t for j in run.get("jobs") or [] for t in j.get("tasks") or []), None)
    if how == 0:
        run["id"] = 42
    elif how == 1:
        run.pop("id")
    elif how == 2:
        run["jobs"] = "not a list"
    elif how == 3:
        run["startDateTime"] = "yesterday-ish"
    elif how == 4 and task is not None:
        task["retryAttempts"] = "three"
    elif how == 5:
        run["connectionId"] = "somebody-else"
    elif how == 6:
        run["unexpected"] = {"nested": [1, 2.5, None], "deep": {"x": True}}
    elif how == 7 and run.get("jobs"):
        run["jobs"].append(copy.deepcopy(run["jobs"][0]))  # a job id twice
    return run


def hostile_runs(clean: list[FetchedRun]) -> list[FetchedRun]:
    """Damaged runs as the client would parse them (through JSON text), and non-JSON payloads."""
    out = []
    for i, r in enumerate(clean[:40]):
        text = orjson.dumps(_damaged(r.payload, i % 8))
        out.append(FetchedRun(r.connection_id, orjson.loads(text), T0, source=f"page-{i}"))
    # Text an API could send that parses into surprising values: beyond 64 bits, a float.
    huge = orjson.dumps(clean[0].payload).replace(b'"state"', b'"retryAttempts":1e30,"state"', 1)
    out.append(FetchedRun(clean[0].connection_id, orjson.loads(huge), T0))
    out.append(FetchedRun(clean[1].connection_id, orjson.loads(b"[1, 2]"), T0))
    out.append(FetchedRun(clean[1].connection_id, None, T0))
    # Payloads orjson cannot write go pickled, and are quarantined as in this process.
    deep: Any = []
    for _ in range(300):
        deep = [deep]
    for value in (2**70, {1: "int key"}, "\ud800", deep, {1, 2}):
        payload = dict(clean[2].payload, extra=value)
        out.append(FetchedRun(clean[2].connection_id, payload, T0))
    # A newer version of a run already in the batch, and an older one.
    later = dict(clean[3].payload, state="Completed")
    out.append(FetchedRun(clean[3].connection_id, later, T0 + timedelta(seconds=5)))
    out.append(FetchedRun(clean[4].connection_id, clean[4].payload, T0 - timedelta(seconds=5)))
    return out


def assert_same(a: FlatBatch, b: FlatBatch) -> None:
    assert a.tables.keys() == b.tables.keys()
    for name in a.tables:
        assert a.tables[name].equals(b.tables[name]), name
    assert a.raw.equals(b.raw)
    assert a.latest.equals(b.latest)
    assert a.quarantine.equals(b.quarantine)


@pytest.fixture
def child():
    c = FlatteningChild()
    c.wait_ready()
    yield c
    c.stop()
    assert c.proc.returncode is not None  # reaped


def test_child_flattens_simulator_runs_exactly_as_this_process(child: FlatteningChild) -> None:
    runs = simulator_runs()
    assert_same(child.flatten(runs), flatten_runs(runs))


def test_child_flattens_hostile_runs_exactly_as_this_process(child: FlatteningChild) -> None:
    runs = simulator_runs()
    batch = [*runs[40:], *hostile_runs(runs)]
    mine = flatten_runs(batch)
    assert mine.quarantine.num_rows >= 40  # the test does exercise the quarantine
    assert_same(child.flatten(batch), mine)
    assert_same(child.flatten([]), flatten_runs([]))  # and the child serves on


def test_a_bad_request_is_answered_with_the_reason_and_the_child_serves_on(
    child: FlatteningChild,
) -> None:
    send_message(child._in, b"X", b"")
    kind, body = read_message(child._out) or (b"", b"")
    assert kind == b"F" and b"unexpected message kind" in body
    runs = simulator_runs(1, 10)
    assert_same(child.flatten(runs), flatten_runs(runs))


def test_a_killed_child_is_a_clear_error(child: FlatteningChild) -> None:
    child.kill()
    with pytest.raises(offload.FlatteningChildFailed, match="killed by SIGKILL"):
        child.flatten(simulator_runs(1, 10))


def test_the_child_has_no_itwin_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITWIN_CLIENT_SECRET", "do-not-pass")
    assert "ITWIN_CLIENT_SECRET" not in offload._child_environment()


# --- the collector's flattener: thresholds, fallback, stopping ----------------------------


async def _flatten_all(flattener: CollectionFlattener, batches: list[list[FetchedRun]]) -> list:
    try:
        return [await flattener.flatten(b) for b in batches]
    finally:
        flattener.close()


async def _until_ready(flattener: CollectionFlattener) -> FlatteningChild:
    await flattener.flatten([])  # starts the child (threshold 0)
    assert flattener._ready is not None
    await flattener._ready
    assert flattener._child is not None
    return flattener._child


def test_small_collections_never_start_a_child() -> None:
    flattener = CollectionFlattener(offload_after_runs=10_000)
    runs = simulator_runs(1, 50)
    batches = asyncio.run(_flatten_all(flattener, [runs] * 3))
    assert flattener._ready is None and flattener.runs_offloaded == 0
    assert_same(batches[0], flatten_runs(runs))


def test_a_big_collection_offloads_once_the_child_is_ready() -> None:
    runs = simulator_runs()

    async def main() -> tuple[list[FlatBatch], FlatteningChild]:
        flattener = CollectionFlattener(offload_after_runs=0)
        try:
            child = await _until_ready(flattener)
            batches = [await flattener.flatten(runs) for _ in range(2)]
            assert flattener.runs_offloaded == 2 * len(runs)
            return batches, child
        finally:
            flattener.close()

    batches, child = asyncio.run(main())
    assert child.proc.returncode == 0  # stopped by EOF, and reaped
    for batch in batches:
        assert_same(batch, flatten_runs(runs))


def test_a_child_that_dies_falls_back_to_this_process(caplog: pytest.LogCaptureFixture) -> None:
    runs = simulator_runs()

    async def main() -> tuple[FlatBatch, FlatBatch, FlatteningChild, CollectionFlattener]:
        flattener = CollectionFlattener(offload_after_runs=0)
        try:
            child = await _until_ready(flattener)
            os.kill(child.pid, signal.SIGKILL)
            first = await asyncio.wait_for(flattener.flatten(runs), 30)
            second = await flattener.flatten(runs)
            return first, second, child, flattener
        finally:
            flattener.close()

    with caplog.at_level(logging.WARNING, "pipeline.transform.offload"):
        first, second, child, flattener = asyncio.run(main())
    assert child.proc.returncode == -signal.SIGKILL  # reaped
    assert flattener.failure and "killed by SIGKILL" in flattener.failure
    assert "killed by SIGKILL" in caplog.text and "flattening in this process" in caplog.text
    assert flattener.runs_offloaded == 0
    assert_same(first, flatten_runs(runs))
    assert_same(second, flatten_runs(runs))


def test_a_stuck_child_is_killed_and_the_batch_flattened_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(offload, "_BASE_TIMEOUT_S", 1.0)
    monkeypatch.setattr(offload, "_TIMEOUT_PER_RUN_S", 0.0)
    runs = simulator_runs(1, 20)

    async def main() -> tuple[FlatBatch, FlatteningChild, CollectionFlattener]:
        flattener = CollectionFlattener(offload_after_runs=0)
        try:
            child = await _until_ready(flattener)
            os.kill(child.pid, signal.SIGSTOP)
            return await asyncio.wait_for(flattener.flatten(runs), 30), child, flattener
        finally:
            flattener.close()

    batch, child, flattener = asyncio.run(main())
    assert flattener.failure and "gave no answer in 1 s" in flattener.failure
    assert child.proc.returncode is not None
    assert_same(batch, flatten_runs(runs))


def test_cancelling_mid_batch_stops_and_reaps_the_child() -> None:
    runs = simulator_runs() * 20  # long enough to be mid-flight when cancelled

    async def main() -> FlatteningChild:
        flattener = CollectionFlattener(offload_after_runs=0)
        try:
            child = await _until_ready(flattener)
            task = asyncio.ensure_future(flattener.flatten(runs))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return child
        finally:
            flattener.close()

    child = asyncio.run(asyncio.wait_for(main(), 30))
    assert child.proc.returncode is not None


# --- a whole collection: the same warehouse either way ------------------------------------


@pytest.fixture
def sim():
    with SimulatorServer(
        SimulatorConfig(seed=13, connections=4, imodels=1, runs_per_connection=150)
    ) as s:
        yield s


def _collect(settings: Settings, threshold: int | None) -> tuple[CollectionResult, int]:
    """A collection and how many runs its child flattened."""
    settings.data_dir.mkdir(parents=True)
    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:

        async def main() -> tuple[CollectionResult, int]:
            async with ExportApiClient(settings) as client:
                collector = Collector(
                    client,
                    warehouse,
                    settings,
                    batch_runs=100,
                    offload_after_runs=threshold,
                )
                result = await collector.run()
                return result, collector._flattener.runs_offloaded

        result = asyncio.run(main())
        build_models(warehouse.con)
    return result


def test_a_collection_offloaded_from_the_start_stores_the_same(
    sim: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[FlatteningChild] = []
    original = FlatteningChild.__init__

    def start_and_wait(self: FlatteningChild) -> None:
        original(self)
        started.append(self)
        self.wait_ready()  # so that a collection this small does use it
        self.wait_ready = lambda: None  # type: ignore[method-assign]  # ready was read

    monkeypatch.setattr(FlatteningChild, "__init__", start_and_wait)
    here, _ = _collect(sim_settings(sim, tmp_path / "here"), None)
    assert not started
    there, offloaded = _collect(sim_settings(sim, tmp_path / "there"), 0)
    assert here.ok and there.ok
    assert there.runs_loaded == here.runs_loaded > 0
    assert offloaded > 0  # all batches but the first (flattened while it started)
    assert len(started) == 1 and started[0].proc.returncode == 0  # one child, reaped
    assert snapshot(tmp_path / "here" / "warehouse.duckdb") == snapshot(
        tmp_path / "there" / "warehouse.duckdb"
    )
