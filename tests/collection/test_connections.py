"""Connection details in `connections` and the `lastRun` skip, against the simulator over
loopback (request counts from its log) and on hand-made connection objects."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.collection import CollectionResult, Collector
from pipeline.collection.connections import last_run_id, parse_connection
from pipeline.itwin.client import ExportApiClient
from pipeline.itwin.settings import Settings
from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from pipeline.warehouse.store import open_warehouse
from tests.support import load_runs, sim_settings
from tests.transform.builders import run

EXAMPLES = Path("/work/shared/api/examples")
AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
EXAMPLE = {
    "id": "fc226d0d-1647-48d7-8c11-f1f74f2d9808",
    "iModelId": "7dbd531d-6967-47b2-8945-a722a437ad7a",
    "iTwinId": "7dbd531d-6967-47b2-8945-a722a437ad7a",
    "displayName": "30",
    "authenticationType": "User",
    "_links": {
        "iModel": {"href": "https://api.bentley.com/imodels/5db42812"},
        "lastRun": {
            "href": "https://api.bentley.com/export/connections/fc226d0d-1647-48d7-8c11-"
            "f1f74f2d9808/runs/de626d0d-1647-48d7-8c11-f1f74f2d4523"
        },
    },
}


# --- connection objects -------------------------------------------------------------------


def test_a_connection_object_fills_the_columns_and_keeps_the_rest_in_extra() -> None:
    details = parse_connection(EXAMPLE, AT)
    assert details is not None
    assert (details.connection_id, details.display_name, details.authentication_type) == (
        EXAMPLE["id"],
        "30",
        "User",
    )
    assert (details.imodel_id, details.itwin_id) == (EXAMPLE["iModelId"], EXAMPLE["iTwinId"])
    assert details.last_run_id == "de626d0d-1647-48d7-8c11-f1f74f2d4523"
    assert details.fetched_at == AT
    assert json.loads(details.extra or "") == {"_links": EXAMPLE["_links"]}


def test_unexpected_types_and_unknown_fields_go_to_extra_and_leave_columns_null() -> None:
    odd = {
        "id": "FC226D0D-1647-48D7-8C11-F1F74F2D9808",  # a GUID compares in lower case
        "displayName": 30,
        "iModelId": None,
        "iTwinId": ["x"],
        "authenticationType": "Service",
        "newField": {"nested": True},
        "_links": "not an object",
    }
    details = parse_connection(odd, AT)
    assert details is not None
    assert details.connection_id == "fc226d0d-1647-48d7-8c11-f1f74f2d9808"
    assert (details.display_name, details.imodel_id, details.itwin_id) == (None, None, None)
    assert details.authentication_type == "Service" and details.last_run_id is None
    assert json.loads(details.extra or "") == {
        "displayName": 30,
        "iModelId": None,
        "iTwinId": ["x"],
        "newField": {"nested": True},
        "_links": "not an object",
    }


@pytest.mark.parametrize("obj", [None, [], "id", {}, {"id": 7}, {"id": ""}, {"id": "a/b"}])
def test_an_object_without_a_usable_id_is_no_connection(obj: Any) -> None:
    assert parse_connection(obj, AT) is None


@pytest.mark.parametrize(
    ("links", "expected"),
    [
        ({"lastRun": {"href": "https://h/export/connections/c/runs/r-1"}}, "r-1"),
        ({"lastRun": {"href": "https://h/export/connections/c/runs/r-1/?x=1"}}, "r-1"),
        ({"lastRun": {"href": "https://h/runs/r%2F1"}}, None),  # not one id once decoded
        ({"lastRun": {"href": ""}}, None),
        ({"lastRun": {"href": 5}}, None),
        ({"lastRun": None}, None),
        ({}, None),
        (None, None),
    ],
)
def test_the_last_run_id_is_the_last_segment_of_the_lastrun_link(
    links: Any, expected: str | None
) -> None:
    assert last_run_id(links) == expected


def test_the_shipped_example_answers_parse() -> None:
    if not EXAMPLES.is_dir():
        pytest.skip("the shared API examples are not on this machine")
    one = json.loads((EXAMPLES / "get-connection-200.json").read_text())["connection"]
    listed = json.loads((EXAMPLES / "list-connections-200.json").read_text())["connections"]
    assert parse_connection(one, AT) == parse_connection(listed[0], AT)


# --- against the simulator ----------------------------------------------------------------


def stored(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def collect_at(settings: Settings, at: datetime | None = None) -> CollectionResult:
    """One collection, its clock set to `at` (the details' age is measured by it)."""

    async def main() -> CollectionResult:
        async with ExportApiClient(settings) as client:
            now = (lambda: at) if at else (lambda: datetime.now(UTC))
            return await Collector(client, warehouse, settings, now=now).run()

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        return asyncio.run(main())


def run_list_requests(sim: SimulatorServer, since: int) -> dict[str, int]:
    """Run-list requests per connection id since request number `since`."""
    out: dict[str, int] = {}
    for r in sim.requests[since:]:
        parts = r.path.strip("/").split("/")
        if len(parts) == 4 and parts[3] == "runs":
            out[parts[2]] = out.get(parts[2], 0) + 1
    return out


@pytest.fixture
def discovered() -> Any:
    """Connections found through iModels only (none configured), some with open runs."""
    with SimulatorServer(
        SimulatorConfig(seed=5, connections=60, imodels=2, runs_per_connection=30)
    ) as sim:
        yield sim


def test_discovered_connections_are_stored_with_their_details(
    discovered: SimulatorServer, tmp_path: Path
) -> None:
    settings = sim_settings(discovered, tmp_path, connection_ids=())
    assert collect_at(settings).ok
    rows = stored(
        tmp_path,
        "select connection_id, display_name, imodel_id, itwin_id, authentication_type, "
        "last_run_id, fetched_at is not null from connections",
    )
    world = discovered.world
    expected = {
        (c.id, c.display_name, c.imodel_id, c.itwin_id, c.authentication_type)
        for c in world.connections.values()
    }
    assert {r[:5] for r in rows} == expected
    assert all(r[5] == world.last_run_id(r[0]) and r[6] for r in rows)
    # Discovery alone gave the details: no single-connection GETs.
    assert not [r for r in discovered.requests if r.path.count("/") == 3]


def test_a_quiet_hourly_collection_reads_only_the_imodel_listings_and_open_connections(
    discovered: SimulatorServer, tmp_path: Path
) -> None:
    settings = sim_settings(discovered, tmp_path, connection_ids=())
    assert collect_at(settings).ok
    open_runs = dict(
        stored(
            tmp_path,
            "select connection_id, count(*) from raw_latest "
            "where state is distinct from 'Completed' group by 1",
        )
    )
    assert 0 < len(open_runs) < 60  # the world has both kinds
    since = len(discovered.requests)
    result = collect_at(settings)
    assert result.ok and result.runs_loaded == 0
    assert all(c.mode == "incremental" for c in result.connections)
    listed = run_list_requests(discovered, since)
    assert set(listed) == set(open_runs)  # every quiet connection: no run-list request
    for c in result.connections:
        if c.connection_id not in open_runs:
            assert c.stats.requests == 0, c.connection_id
    # 60 connections in 2 iModels: one listing page (of 50 at most) each.
    discovery = sum(1 for r in discovered.requests[since:] if r.path == "/export/connections")
    assert discovery == 2
    assert result.totals.requests == discovery + sum(c.stats.requests for c in result.connections)


def test_a_new_run_moves_lastrun_so_its_connection_is_read_again(
    discovered: SimulatorServer, tmp_path: Path
) -> None:
    settings = sim_settings(discovered, tmp_path, connection_ids=())
    assert collect_at(settings).ok
    before = {c.id: discovered.world.run_count(c.id) for c in discovered.world.connections.values()}
    discovered.world.advance(12 * 3600)  # runs appear on some connections
    grown = {cid for cid, n in before.items() if discovered.world.run_count(cid) > n}
    assert grown
    since = len(discovered.requests)
    result = collect_at(settings)
    assert result.ok
    assert grown <= set(run_list_requests(discovered, since))
    stored_counts = dict(stored(tmp_path, "select connection_id, count(*) from runs group by 1"))
    assert stored_counts == {cid: discovered.world.run_count(cid) for cid in before}


def test_the_daily_full_pass_still_reads_every_connection(
    discovered: SimulatorServer, tmp_path: Path
) -> None:
    settings = sim_settings(discovered, tmp_path, connection_ids=())
    assert collect_at(settings).ok
    since = len(discovered.requests)
    day_later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    result = collect_at(settings, day_later)
    assert result.ok and all(c.mode == "full" for c in result.connections)
    assert set(run_list_requests(discovered, since)) == set(discovered.connection_ids)


@pytest.fixture
def configured() -> Any:
    """Connections a user lists by id (no iModels to discover them through)."""
    with SimulatorServer(
        SimulatorConfig(seed=8, connections=3, imodels=0, runs_per_connection=20)
    ) as sim:
        yield sim


def detail_gets(sim: SimulatorServer, since: int) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in sim.requests[since:] if r.path.count("/") == 3]


def test_configured_connections_are_fetched_on_first_sight_and_when_a_day_old(
    configured: SimulatorServer, tmp_path: Path
) -> None:
    settings = sim_settings(configured, tmp_path, imodel_ids=())
    start = datetime.now(UTC)
    assert collect_at(settings, start).ok
    assert sorted(detail_gets(configured, 0)) == sorted(configured.connection_ids)
    names = dict(stored(tmp_path, "select connection_id, display_name from connections"))
    assert names == {c.id: c.display_name for c in configured.world.connections.values()}

    since = len(configured.requests)
    assert collect_at(settings, start + timedelta(hours=23)).ok
    assert detail_gets(configured, since) == []  # still fresh
    since = len(configured.requests)
    assert collect_at(settings, start + timedelta(days=1, minutes=1)).ok
    assert sorted(detail_gets(configured, since)) == sorted(configured.connection_ids)


def test_a_connection_whose_details_cannot_be_read_fails_naming_the_answer(
    configured: SimulatorServer, tmp_path: Path
) -> None:
    denied = configured.connection_ids[0]
    configured.faults.forbidden_connections.add(denied)
    result = collect_at(sim_settings(configured, tmp_path, imodel_ids=()))
    assert [c.connection_id for c in result.failed] == [denied]
    failure = result.failed[0]
    assert failure.error is not None and failure.error.status == 403
    assert "403" in failure.describe_error()
    # It is known (a row with no details), and the others are collected.
    rows = dict(stored(tmp_path, "select connection_id, fetched_at from connections"))
    assert denied in rows and rows[denied] is None
    assert len(stored(tmp_path, "select distinct connection_id from runs")) == 2


def test_upper_case_ids_configured_and_discovered_are_one_connection(tmp_path: Path) -> None:
    with SimulatorServer(
        SimulatorConfig(seed=3, connections=4, imodels=1, runs_per_connection=10)
    ) as sim:
        upper = tuple(c.upper() for c in sim.direct_connection_ids)
        settings = replace(sim_settings(sim, tmp_path), connection_ids=upper)
        result = collect_at(settings)
    assert result.ok
    assert sorted(c.connection_id for c in result.connections) == sorted(sim.connection_ids)
    assert stored(tmp_path, "select count(*) from connections") == [(4,)]


def test_connections_known_only_from_runs_get_a_row_without_details(tmp_path: Path) -> None:
    with open_warehouse(tmp_path / "warehouse.duckdb") as warehouse:
        load_runs(warehouse, [run("r1"), run("r2")], conn="from-a-file")
        warehouse.bookkeeping.connections.save_connections(
            [], known_ids=["configured-1", "configured-1", "from-a-file"]
        )
        assert warehouse.bookkeeping.connections.add_connections_with_runs() == 0  # already known
        load_runs(warehouse, [run("r3")], conn="another-file")
        assert warehouse.bookkeeping.connections.add_connections_with_runs() == 1
        assert warehouse.bookkeeping.connections.add_connections_with_runs() == 0
        rows = warehouse.con.execute(
            "select connection_id, display_name, fetched_at from connections order by 1"
        ).fetchall()
    assert rows == [
        ("another-file", None, None),
        ("configured-1", None, None),
        ("from-a-file", None, None),
    ]
