"""The collection asset with a fake API: an httpx.MockTransport behind the resource, no server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import httpx
import pytest

from pipeline.collection import ConnectionResult
from pipeline.defs.assets import collection
from pipeline.defs.resources import ITwinApiResource, WarehouseResource
from tests.transform.builders import run

BASE = "https://api.test"
PAGES = {  # connection id -> its run pages, newest first
    "conn-a": [[run("a3"), run("a2")], [run("a1")]],
    "conn-b": [[run("b1")]],
}
DENIED = "conn-denied"
CONNECTIONS = {  # connection id -> its object; names are untrusted text
    "conn-a": {"id": "conn-a", "displayName": "Tower | B <east>", "iModelId": "im-1"},
    "conn-b": {"id": "conn-b", "displayName": "Bridge", "iModelId": "im-1"},
}


def fake_api(request: httpx.Request) -> httpx.Response:
    """List pages of runs by $skip, with next links; 403 for the denied connection."""
    parts = request.url.path.strip("/").split("/")  # export, connections, <id>[, runs]
    if parts[:2] != ["export", "connections"] or parts[3:] not in ([], ["runs"]):
        return httpx.Response(404, json={"error": {"code": "NotFound", "message": "no route"}})
    if parts[2] == DENIED:
        error = {"code": "InsufficientPermissions", "message": "not allowed"}
        return httpx.Response(403, json={"error": error})
    if len(parts) == 3:
        return httpx.Response(200, json={"connection": CONNECTIONS[parts[2]]})
    pages = PAGES[parts[2]]
    skip = int(request.url.params.get("$skip", "0"))
    body: dict[str, Any] = {"runs": pages[skip], "_links": {}}
    if skip + 1 < len(pages):
        body["_links"]["next"] = {
            "href": f"{BASE}/export/connections/{parts[2]}/runs?$skip={skip + 1}"
        }
    return httpx.Response(
        200, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )


class FakeApi(ITwinApiResource):
    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(fake_api)


class Heard:
    """A progress sink that keeps what it is told."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[ConnectionResult] = []

    def connection_started(self, connection_id: str, mode: str, display_name: str | None) -> None:
        self.started.append(connection_id)

    def pages_fetched(self, connection_id: str, pages: int, runs: int) -> None:
        pass

    def connection_finished(self, result: ConnectionResult) -> None:
        self.finished.append(result)


@pytest.fixture(autouse=True)
def no_api_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ITWIN_RUNS_CONFIG", "ITWIN_ACCESS_TOKEN", "ITWIN_CONNECTION_IDS"):
        monkeypatch.delenv(name, raising=False)


def materialize(tmp_path: Path, connections: list[str], heard: Heard) -> dg.ExecuteInProcessResult:
    api = FakeApi(base_url=BASE, access_token="token", connection_ids=connections)
    warehouse = WarehouseResource(database=str(tmp_path / "data" / "warehouse.duckdb"))
    resources = {"itwin_api": api, "warehouse": warehouse, "collection_progress": heard}
    return dg.materialize([collection], resources=resources)


def runs_stored(tmp_path: Path) -> set[str]:
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        return {row[0] for row in con.execute("select run_id from runs").fetchall()}


def test_the_asset_loads_every_page_and_reports_counts(tmp_path: Path) -> None:
    heard = Heard()
    result = materialize(tmp_path, ["conn-a", "conn-b"], heard)
    assert result.success
    assert runs_stored(tmp_path) == {"a1", "a2", "a3", "b1"}
    runs_meta = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.asset_materializations_for_node("collection")
    }["runs"]
    assert runs_meta["row_count"].value == 4
    assert runs_meta["runs_loaded"].value == 4
    # First sight: each connection's details, then two pages of conn-a and one of conn-b.
    assert runs_meta["requests"].value == 5
    outcomes = runs_meta["outcomes"].value
    assert "| Tower \\| B &lt;east&gt; | conn-a | ok |" in outcomes  # the name beside the id
    assert "| Bridge | conn-b | ok |" in outcomes
    assert sorted(heard.started) == ["conn-a", "conn-b"]  # the progress resource heard it
    assert all(r.ok for r in heard.finished)


def test_a_refused_connection_fails_alone_and_is_logged(tmp_path: Path) -> None:
    heard = Heard()
    result = materialize(tmp_path, ["conn-a", DENIED], heard)
    assert result.success  # the healthy connection's runs are loaded and reported
    assert runs_stored(tmp_path) == {"a1", "a2", "a3"}
    runs_meta = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.asset_materializations_for_node("collection")
    }["runs"]
    assert runs_meta["connections_failed"].value == 1
    assert f"|  | {DENIED} | failed: HTTP 403" in runs_meta["outcomes"].value
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        outcomes = dict(con.execute("select connection_id, outcome from collection_log").fetchall())
    assert outcomes == {"conn-a": "ok", DENIED: "failed"}
