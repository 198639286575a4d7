"""The collector against a scripted API (httpx.MockTransport) and a real warehouse file:
open runs refreshed, vanished runs kept, full-pass marks deferred while a read is partial."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from pipeline.collection import CollectionResult, Collector
from pipeline.collection.bookkeeping import LONG_AGO
from pipeline.itwin.client import ExportApiClient
from pipeline.itwin.settings import Settings
from pipeline.warehouse.store import open_warehouse
from tests.collection.scripted import BASE, CONN, connection_answer, json_answer, stored
from tests.transform.builders import run


class ScriptedApi:
    """Run pages of one connection, single runs by id, and failures a test switches on."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.runs: dict[str, dict[str, Any]] = {}
        self.gone: set[str] = set()
        self.denied_pages: set[int] = set()
        self.details_denied = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")  # export connections <id> [runs [<run>]]
        if len(parts) == 3:
            if self.details_denied:
                return json_answer(
                    403, {"error": {"code": "InsufficientPermissions", "message": "no"}}
                )
            return connection_answer(parts[2])
        if len(parts) == 5:
            if parts[4] in self.gone:
                return json_answer(404, {"error": {"code": "RunNotFound", "message": "gone"}})
            return json_answer(200, {"run": self.runs[parts[4]]})
        skip = int(request.url.params.get("$skip", "0"))
        if skip in self.denied_pages:
            return json_answer(403, {"error": {"code": "InsufficientPermissions", "message": "no"}})
        body: dict[str, Any] = {"runs": self.pages[skip], "_links": {}}
        if skip + 1 < len(self.pages):
            body["_links"]["next"] = {
                "href": f"{BASE}/export/connections/{CONN}/runs?$skip={skip + 1}"
            }
        return json_answer(200, body)


def collect(settings: Settings, api: ScriptedApi, batch_runs: int = 2_000) -> CollectionResult:
    async def main() -> CollectionResult:
        async with ExportApiClient(settings, transport=httpx.MockTransport(api)) as client:
            return await Collector(client, warehouse, settings, batch_runs=batch_runs).run()

    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        return asyncio.run(main())


def test_an_open_run_off_the_pages_read_is_fetched_again(settings: Settings) -> None:
    api = ScriptedApi([[run("r3"), run("r2")], [run("r1", state="Running", result="")]])
    assert collect(settings, api).ok
    api.runs["r1"] = run("r1")  # it completed since
    result = collect(settings, api).connections[0]
    assert result.mode == "incremental" and result.stats.pages == 1  # stopped at page 1
    assert (result.runs_refreshed, result.runs_changed) == (1, 1)
    assert stored(settings, "select state from runs where run_id = 'r1'") == [("Completed",)]


def test_an_open_run_the_api_no_longer_knows_keeps_its_stored_version(settings: Settings) -> None:
    api = ScriptedApi([[run("r2")], [run("r1", state="Running", result="")]])
    assert collect(settings, api).ok
    api.gone.add("r1")
    result = collect(settings, api).connections[0]
    assert result.ok and result.runs_vanished == 1 and result.runs_refreshed == 0
    assert stored(settings, "select state from runs where run_id = 'r1'") == [("Running",)]


def test_a_partial_incremental_read_leaves_the_next_collection_a_full_pass(
    settings: Settings,
) -> None:
    api = ScriptedApi([[run("r2")], [run("r1")]])
    first = collect(settings, api)
    api.pages = [[run("n2"), run("n1")], [run("r2")], [run("r1")]]
    api.denied_pages.add(1)  # page 1 fails after page 0's batch loaded
    failed = collect(settings, api, batch_runs=1).connections[0]
    assert not failed.ok and failed.mode == "incremental" and failed.runs_new == 2
    marks = stored(settings, "select last_full_pass from full_passes")
    assert [m[0] for m in marks] == [LONG_AGO]  # stopping at page 0 next time would miss runs
    api.denied_pages.clear()
    assert collect(settings, api).connections[0].mode == "full"
    assert first.connections[0].mode == "full"


def test_a_whole_incremental_read_restores_the_last_full_pass(settings: Settings) -> None:
    api = ScriptedApi([[run("r2")], [run("r1")]])
    first = collect(settings, api).connections[0]
    api.pages = [[run("n1")], [run("r2")], [run("r1")]]
    result = collect(settings, api, batch_runs=1).connections[0]
    assert result.ok and result.mode == "incremental" and result.runs_new == 1
    marks = stored(settings, "select last_full_pass from full_passes")
    assert [m[0] for m in marks] == [first.started_at]


def test_details_that_cannot_be_read_fail_the_connection_after_its_runs_load(
    settings: Settings,
) -> None:
    api = ScriptedApi([[run("r2")], [run("r1")]])
    api.details_denied = True
    result = collect(settings, api).connections[0]
    assert not result.ok and result.error is not None
    assert (result.error.status, result.error.code) == (403, "InsufficientPermissions")
    assert result.runs_new == 2  # what could be read is kept
    assert stored(settings, "select connection_id, fetched_at from connections") == [(CONN, None)]
    api.details_denied = False
    assert collect(settings, api).ok  # first sight still: fetched now
    assert stored(settings, "select display_name from connections") == [("One",)]
