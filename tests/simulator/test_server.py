"""The HTTP surface over real loopback: endpoints, paging, auth, the request log, lifecycle."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from tests.simulator.conftest import client_for


def collect(client: httpx.Client, first: str, fix_malformed: bool) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    url: str | None = first
    while url:
        if fix_malformed and "/runs&" in url:
            url = url.replace("/runs&", "/runs?", 1)
        page = client.get(url)
        assert page.status_code == 200, page.text
        body = page.json()
        runs.extend(body["runs"])
        url = (body["_links"].get("next") or {}).get("href")
    return runs


@pytest.mark.parametrize("malformed", [True, False])
def test_paging_reaches_every_run_with_both_link_forms(malformed: bool) -> None:
    config = SimulatorConfig(seed=5, connections=1, imodels=0, runs_per_connection=23, page_cap=10)
    config.malformed_next_links = malformed
    with SimulatorServer(config) as sim, client_for(sim) as client:
        conn = sim.connection_ids[0]
        first = client.get(f"/export/connections/{conn}/runs", params={"$top": 1000}).json()
        assert len(first["runs"]) == 10  # $top clamped to the cap
        next_href = first["_links"]["next"]["href"]
        if malformed:
            assert next_href.endswith(f"/export/connections/{conn}/runs&$skip=10&$top=10")
            # Followed literally, the malformed link is not a route.
            assert client.get(next_href).status_code == 404
        else:
            assert next_href == f"{sim.base_url}/export/connections/{conn}/runs?$skip=10&$top=10"
        runs = collect(client, f"/export/connections/{conn}/runs?$top=1000", malformed)
        assert len(runs) == 23 == len({r["id"] for r in runs})
        last = client.get(f"/export/connections/{conn}/runs", params={"$skip": 20}).json()
        assert len(last["runs"]) == 3 and "next" not in last["_links"]
        default = client.get(f"/export/connections/{conn}/runs").json()
        assert len(default["runs"]) == 10


def test_bad_paging_parameters_are_422(client: httpx.Client, sim: SimulatorServer) -> None:
    url = f"/export/connections/{sim.connection_ids[0]}/runs"
    for params in ({"$top": "x"}, {"$top": "0"}, {"$skip": "-1"}):
        answer = client.get(url, params=params)
        assert answer.status_code == 422
        assert answer.json()["error"]["code"] == "InvalidConnectionRunRequest"


def test_single_run_connection_and_listing_shapes(
    client: httpx.Client, sim: SimulatorServer
) -> None:
    conn = sim.connection_ids[0]
    listed = client.get(f"/export/connections/{conn}/runs").json()["runs"][0]
    assert "connectionId" not in listed
    one = client.get(f"/export/connections/{conn}/runs/{listed['id']}").json()["run"]
    assert one["connectionId"] == conn
    assert {k: v for k, v in one.items() if k != "connectionId"} == listed
    connection = client.get(f"/export/connections/{conn}").json()["connection"]
    assert connection["id"] == conn
    assert set(connection) >= {"iModelId", "iTwinId", "displayName", "authenticationType"}
    assert connection["_links"]["lastRun"]["href"].startswith(sim.base_url)


def test_connections_found_through_imodels(client: httpx.Client, sim: SimulatorServer) -> None:
    found: set[str] = set()
    for imodel in sim.imodel_ids:
        url: str | None = f"/export/connections?imodelId={imodel}&$top=1"
        while url:
            body = client.get(url).json()
            found |= {c["id"] for c in body["connections"]}
            url = (body["_links"].get("next") or {}).get("href")
    assert found | set(sim.direct_connection_ids) == set(sim.connection_ids)
    assert set(sim.connection_ids) - set(sim.direct_connection_ids) <= found
    assert set(sim.direct_connection_ids) != set(sim.connection_ids)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/export/connections", 422, "InvalidExportConnectionRequest"),
        ("/export/connections?imodelId=a%2Fb", 422, "InvalidExportConnectionRequest"),
        ("/export/connections?imodelId=unknown", 404, "iModelNotFound"),
        ("/export/connections/not-a-connection", 404, "ExportConnectionNotFound"),
        ("/export/connections/a%2E%2E/runs", 422, "InvalidConnectionRunRequest"),
        ("/export/connections/{conn}/runs/unknown-run", 404, "ConnectionRunNotFound"),
        ("/export/connections/{conn}/runs/bad%20id", 422, "InvalidConnectionRunRequest"),
        ("/elsewhere", 404, "ResourceNotFound"),
    ],
)
def test_error_bodies_have_the_published_shape(
    client: httpx.Client, sim: SimulatorServer, path: str, status: int, code: str
) -> None:
    answer = client.get(path.format(conn=sim.connection_ids[0]))
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["code"] == code and error["message"]
    if status == 422:
        assert {"code", "message", "target"} <= set(error["details"][0])


def token(sim: SimulatorServer, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "scope": "itwin-platform",
        **overrides,
    }
    return httpx.post(sim.token_url, data=form)


def test_auth_static_issued_expired_and_wrong_credentials() -> None:
    with SimulatorServer(SimulatorConfig(connections=1, token_lifetime_s=0.3)) as sim:
        url = f"{sim.base_url}/export/connections/{sim.connection_ids[0]}"
        missing = httpx.get(url)
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "HeaderNotFound"
        assert httpx.get(url, headers={"Authorization": f"Bearer {sim.static_token}"}).is_success
        issued = token(sim).json()
        assert issued["token_type"] == "Bearer" and issued["expires_in"] >= 1
        bearer = {"Authorization": f"Bearer {issued['access_token']}"}
        assert httpx.get(url, headers=bearer).status_code == 200
        time.sleep(0.4)
        expired = httpx.get(url, headers=bearer)
        assert expired.status_code == 401 and expired.json()["error"]["code"] == "InvalidToken"
        assert httpx.get(url, headers={"Authorization": "Bearer forged"}).status_code == 401
        wrong = token(sim, client_secret="wrong")
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_client"
        assert token(sim, grant_type="password").json()["error"] == "unsupported_grant_type"
        assert token(sim, scope="other").json()["error"] == "invalid_scope"
        basic = httpx.post(
            sim.token_url,
            data={"grant_type": "client_credentials"},
            auth=(sim.client_id, sim.client_secret),
        )
        assert basic.status_code == 200


def test_advancing_the_world_expires_issued_tokens() -> None:
    with SimulatorServer(SimulatorConfig(connections=1, token_lifetime_s=3600)) as sim:
        bearer = {"Authorization": f"Bearer {token(sim).json()['access_token']}"}
        url = f"{sim.base_url}/export/connections/{sim.connection_ids[0]}"
        assert httpx.get(url, headers=bearer).status_code == 200
        sim.world.advance(7200)
        assert httpx.get(url, headers=bearer).status_code == 401


def test_requests_are_recorded_with_headers_and_status(
    client: httpx.Client, sim: SimulatorServer
) -> None:
    client.get(f"/export/connections/{sim.connection_ids[0]}/runs", params={"$top": 2})
    (seen,) = sim.requests
    assert seen.method == "GET"
    assert seen.path == f"/export/connections/{sim.connection_ids[0]}/runs"
    assert seen.query == "$top=2" and seen.raw_query == "%24top=2"
    assert seen.headers["authorization"] == f"Bearer {sim.static_token}"
    assert seen.status == 200 and seen.fault is None


def test_servers_start_and_stop_fast_in_parallel_without_leaking_threads() -> None:
    threads = threading.active_count()
    started = time.monotonic()
    with SimulatorServer() as a, SimulatorServer() as b:
        assert a.port != b.port
        assert httpx.get(f"{a.base_url}/export/connections").status_code == 401
        # A keep-alive connection left open must not hold the shutdown.
        held = httpx.Client()
        held.get(f"{b.base_url}/export/connections")
    assert time.monotonic() - started < 2.0
    held.close()
    assert threading.active_count() == threads
    # The port is free again.
    with SimulatorServer(port=a.port) as again:
        assert again.port == a.port


def test_curl_style_call_works_on_a_fixed_port() -> None:
    with SimulatorServer() as probe:
        port = probe.port
    with SimulatorServer(port=port) as sim:
        answer = httpx.get(
            f"http://127.0.0.1:{port}/export/connections/{sim.connection_ids[0]}/runs",
            headers={"Authorization": f"Bearer {sim.static_token}"},
        )
        assert answer.status_code == 200 and answer.json()["runs"]
