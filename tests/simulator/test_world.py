"""Simulated time: open runs complete, new runs appear, and offset paging drifts like the API's."""

from __future__ import annotations

from datetime import datetime

import orjson

from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.timefmt import datetime_of
from pipeline.simulator.world import World


def states(world: World, conn: str) -> dict[str, str]:
    runs, _ = world.page(conn, 0, 10_000)
    return {r["id"]: r["state"] for r in map(orjson.loads, runs)}


def open_world() -> tuple[World, str]:
    """A world and a connection whose newest run is still open at the start."""
    for seed in range(50):
        world = World(SimulatorConfig(seed=seed, connections=3, runs_per_connection=10))
        for conn in world.connections:
            if next(iter(states(world, conn).values())) != "Completed":
                return world, conn
    raise AssertionError("no seed produced an open run")


def test_advancing_completes_open_runs_and_adds_newer_ones() -> None:
    world, conn = open_world()
    before = states(world, conn)
    open_ids = {i for i, s in before.items() if s != "Completed"}
    start = world.now_ticks()
    world.advance(3 * 86_400)
    after = states(world, conn)
    assert all(after[i] == "Completed" for i in open_ids)
    new = [i for i in after if i not in before]
    assert new, "three simulated days should add runs"
    runs = {r["id"]: r for r in map(orjson.loads, world.page(conn, 0, 10_000)[0])}
    assert all(
        datetime_of(start) < _parse(runs[i]["startDateTime"]) <= datetime_of(world.now_ticks())
        for i in new
    )


def test_runs_depend_on_the_moment_not_on_how_time_was_advanced() -> None:
    config = SimulatorConfig(seed=4, connections=2, runs_per_connection=5)
    one, many = World(config), World(config)
    one.advance(86_400)
    for _ in range(24):
        many.advance(3600)
    for conn in one.connections:
        assert one.page(conn, 0, 1000) == many.page(conn, 0, 1000)


def test_newest_first_prepends_new_runs_so_offset_paging_drifts() -> None:
    world = World(SimulatorConfig(seed=2, connections=1, runs_per_connection=10))
    (conn,) = world.connections
    second_page = [orjson.loads(r)["id"] for r in world.page(conn, 5, 5)[0]]
    world.advance(86_400)
    added = world.run_count(conn) - 10
    assert added > 0
    shifted = [orjson.loads(r)["id"] for r in world.page(conn, 5 + added, 5)[0]]
    assert shifted == second_page


def test_orders() -> None:
    def ids(order: str) -> list[str]:
        world = World(SimulatorConfig(seed=2, connections=1, runs_per_connection=10, order=order))  # type: ignore[arg-type]
        (conn,) = world.connections
        return [orjson.loads(r)["id"] for r in world.page(conn, 0, 100)[0]]

    oldest, newest, unordered = ids("oldest_first"), ids("newest_first"), ids("unordered")
    assert oldest == newest[::-1]
    assert sorted(unordered) == sorted(oldest) and unordered not in (oldest, newest)


def test_single_run_carries_connection_id() -> None:
    world = World(SimulatorConfig(seed=2, connections=1, runs_per_connection=3))
    (conn,) = world.connections
    run_id = world.run_ids(conn)[0]
    body = world.run(conn, run_id)
    assert body is not None
    run = orjson.loads(body)
    assert run["id"] == run_id and run["connectionId"] == conn
    assert world.run(conn, "nope") is None


def test_realtime_speed_moves_the_clock_by_itself() -> None:
    import time

    world = World(SimulatorConfig(realtime_speed=3600.0))
    before = world.now_ticks()
    time.sleep(0.05)
    assert world.now_ticks() - before >= 0.05 * 3600 * 10_000_000 * 0.9


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00")


def test_warm_renders_every_run_once_and_changes_nothing() -> None:
    config = SimulatorConfig(seed=8, connections=2, runs_per_connection=15)
    cold, warm = World(config), World(config)
    assert warm.warm() == 30
    for conn in cold.connections:
        assert cold.page(conn, 0, 100) == warm.page(conn, 0, 100)
