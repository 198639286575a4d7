"""Connection objects: names, iModels, iTwins, `_links.lastRun`, by id and through the iModel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson

from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from tests.simulator.conftest import client_for

EXAMPLE = Path(__file__).parents[1] / "fixtures" / "get-connection-200.json"


def connection(client: httpx.Client, conn_id: str) -> dict[str, Any]:
    answer = client.get(f"/export/connections/{conn_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()["connection"]
    return body


def listed(client: httpx.Client, imodel_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    url: str | None = f"/export/connections?imodelId={imodel_id}&$top=2"
    while url:
        body = client.get(url).json()
        found.extend(body["connections"])
        url = (body["_links"].get("next") or {}).get("href")
    return found


def test_get_connection_has_the_published_shape(client: httpx.Client, sim: SimulatorServer) -> None:
    example = orjson.loads(EXAMPLE.read_bytes())["connection"]
    for conn_id in sim.connection_ids:
        body = connection(client, conn_id)
        assert set(body) == set(example)
        assert set(body["_links"]) == set(example["_links"]) == {"iModel", "iTwin", "lastRun"}
        assert body["id"] == conn_id
        assert body["_links"]["iModel"]["href"] == f"{sim.base_url}/imodels/{body['iModelId']}"
        assert body["_links"]["iTwin"]["href"] == f"{sim.base_url}/itwins/{body['iTwinId']}"
        assert body["authenticationType"] in ("User", "Service")
        assert isinstance(body["displayName"], str) and body["displayName"].strip()


def test_last_run_points_at_the_newest_run_and_follows_time(
    client: httpx.Client, sim: SimulatorServer
) -> None:
    conn_id = sim.connection_ids[0]

    def last_run() -> str:
        href = connection(client, conn_id)["_links"]["lastRun"]["href"]
        prefix = f"{sim.base_url}/export/connections/{conn_id}/runs/"
        assert href.startswith(prefix)
        return str(href.removeprefix(prefix))

    newest = client.get(f"/export/connections/{conn_id}/runs", params={"$top": 1}).json()
    assert last_run() == newest["runs"][0]["id"] == sim.world.run_ids(conn_id)[-1]
    before = last_run()
    sim.world.advance(3 * 86_400)
    after = last_run()
    assert after != before and after == sim.world.run_ids(conn_id)[-1]
    # The link is a real address: the run it names is served.
    assert client.get(f"/export/connections/{conn_id}/runs/{after}").status_code == 200


def test_the_imodel_listing_returns_the_same_connection_objects(
    client: httpx.Client, sim: SimulatorServer
) -> None:
    seen = 0
    for imodel_id in sim.world.imodels:
        for body in listed(client, imodel_id):
            assert body["iModelId"] == imodel_id
            assert body == connection(client, body["id"])
            seen += 1
    assert seen == len(sim.connection_ids)


def test_names_imodels_and_itwins_look_like_a_real_account() -> None:
    config = SimulatorConfig(seed=3, connections=8, imodels=3, runs_per_connection=2)
    with SimulatorServer(config) as sim, client_for(sim) as client:
        bodies = [connection(client, c) for c in sim.connection_ids]
    names = [b["displayName"] for b in bodies]
    assert len(set(names)) == 8
    # Display names are untrusted text: at least one needs escaping wherever it is shown.
    hostile = [n for n in names if {'"', "<", ">"} <= set(n) and any(ord(ch) > 0xFFFF for ch in n)]
    assert hostile, names
    assert any("'" in n for n in names)
    assert len({b["iModelId"] for b in bodies}) == 3
    assert len({b["iTwinId"] for b in bodies}) == 2
    # An iModel belongs to one iTwin.
    assert len({(b["iModelId"], b["iTwinId"]) for b in bodies}) == 3


def test_without_discoverable_imodels_each_connection_still_has_an_imodel() -> None:
    config = SimulatorConfig(seed=3, connections=2, imodels=0, runs_per_connection=2)
    with SimulatorServer(config) as sim, client_for(sim) as client:
        assert sim.imodel_ids == [] and sim.direct_connection_ids == sim.connection_ids
        bodies = [connection(client, c) for c in sim.connection_ids]
        assert all(b["iModelId"] for b in bodies)
        assert [c["id"] for c in listed(client, bodies[0]["iModelId"])] == [bodies[0]["id"]]


def test_names_repeat_with_a_number_in_large_accounts() -> None:
    config = SimulatorConfig(seed=3, connections=20, imodels=4, runs_per_connection=1)
    with SimulatorServer(config) as sim:
        names = [c.display_name for c in sim.world.connections.values()]
    assert len(set(names)) == 20
