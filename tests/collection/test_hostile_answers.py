"""The collection keeps every good run when the API misbehaves (issue 22): stops on long
waits with what was fetched loaded, quarantines unreadable runs, keeps duplicate-key texts,
compares ids case-insensitively and never lets one open run wedge its connection."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
from typing import Any

import httpx
import pytest

from pipeline.collection import CollectionResult, Collector
from pipeline.collection import collect as collect_all
from pipeline.collection.bookkeeping import LONG_AGO
from pipeline.itwin.client import ExportApiClient
from pipeline.itwin.settings import Settings
from pipeline.summary import read_summary
from pipeline.warehouse.store import open_warehouse
from tests.collection.scripted import BASE, CONN, connection_answer, stored
from tests.transform.builders import run

UPPER = "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"


class HostileApi:
    """Pages of one connection as raw bytes, single runs, and 429s a test switches on."""

    def __init__(self, pages: list[list[Any]], connection: str = CONN) -> None:
        self.pages: list[bytes] = [self.page_bytes(p) for p in pages]
        self.connection = connection
        self.runs: dict[str, bytes] = {}
        self.throttled_pages: set[int] = set()
        self.throttled_runs = False
        self.requests = 0  # every request, connection details included
        self.pages_served = 0

    @staticmethod
    def page_bytes(items: list[Any]) -> bytes:
        # An item already bytes is put in as it is (invalid JSON, repeated keys).
        parts = [i if isinstance(i, bytes) else json.dumps(i).encode() for i in items]
        return b'{"runs": [' + b", ".join(parts) + b"]}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        parts = request.url.path.strip("/").split("/")
        if len(parts) == 3:
            return connection_answer(parts[2])
        if len(parts) == 5:
            if self.throttled_runs:
                return _throttled()
            return _raw(200, self.runs[parts[4]])
        skip = int(request.url.params.get("$skip", "0"))
        if skip in self.throttled_pages:
            return _throttled()
        content = self.pages[skip]
        self.pages_served += 1
        if skip + 1 < len(self.pages):
            href = f"{BASE}/export/connections/{self.connection}/runs?$skip={skip + 1}"
            content = content[:-1] + b', "_links": {"next": {"href": "' + href.encode() + b'"}}}'
        return _raw(200, content)


def _raw(status: int, content: bytes) -> httpx.Response:
    return httpx.Response(status, content=content, headers={"content-type": "application/json"})


def _throttled() -> httpx.Response:
    body = b'{"error": {"code": "RateLimitExceeded", "message": "slow down"}}'
    return httpx.Response(429, content=body, headers={"Retry-After": "1800"})


def collect(settings: Settings, api: HostileApi, batch_runs: int = 2_000) -> CollectionResult:
    async def main() -> CollectionResult:
        async with ExportApiClient(settings, transport=httpx.MockTransport(api)) as client:
            return await Collector(client, warehouse, settings, batch_runs=batch_runs).run()

    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        return asyncio.run(main())


def run_ids(settings: Settings) -> list[str]:
    return [r[0] for r in stored(settings, "select run_id from runs order by run_id")]


def test_a_long_retry_after_stops_the_connection_with_its_fetched_pages_loaded(
    settings: Settings,
) -> None:
    api = HostileApi([[run("r4"), run("r3")], [run("r2")], [run("r1")]])
    api.throttled_pages.add(2)
    result = collect(settings, api).connections[0]
    assert result.stopped and result.outcome == "stopped"
    assert "HTTP 429" in str(result.error) and "1800 s" in str(result.error)
    assert run_ids(settings) == ["r2", "r3", "r4"]  # fetched before the stop: all loaded
    log = stored(settings, "select outcome, error_code, error_message from collection_log")
    assert log[0][:2] == ("stopped", "HTTP 429") and "1800 s" in log[0][2]
    assert stored(settings, "select * from full_passes") == []  # the full pass stays unfinished
    api.throttled_pages.clear()
    again = collect(settings, api).connections[0]
    assert again.ok and again.mode == "full"
    assert run_ids(settings) == ["r1", "r2", "r3", "r4"]


def test_an_incremental_read_stopped_early_makes_the_next_one_a_full_pass(
    settings: Settings,
) -> None:
    api = HostileApi([[run("r2")], [run("r1")]])
    assert collect(settings, api).ok
    api.pages = [api.page_bytes(p) for p in ([run("n2")], [run("n1")], [run("r2")], [run("r1")])]
    api.throttled_pages.add(1)
    stopped = collect(settings, api).connections[0]
    assert stopped.stopped and stopped.mode == "incremental" and stopped.runs_new == 1
    marks = stored(settings, "select last_full_pass from full_passes")
    assert [m[0] for m in marks] == [LONG_AGO]  # n2 stored must not end the next walk at page 0
    api.throttled_pages.clear()
    again = collect(settings, api).connections[0]
    assert again.ok and again.mode == "full" and again.runs_new == 1
    assert run_ids(settings) == ["n1", "n2", "r1", "r2"]


def test_a_stopped_refresh_loads_the_open_runs_it_fetched_and_leaves_the_rest_open(
    settings: Settings,
) -> None:
    api = HostileApi([[run("r2", state="Executing")], [run("r1")]])
    assert collect(settings, api).ok
    api.pages = [api.page_bytes(p) for p in ([run("r3")], [run("r1")])]
    api.throttled_runs = True  # r2, off the pages read, is re-read by id: throttled
    result = collect(settings, api).connections[0]
    assert result.stopped and result.runs_new == 1
    assert stored(settings, "select state from runs where run_id = 'r2'") == [("Executing",)]


def test_a_page_s_unreadable_run_is_quarantined_and_the_others_load(settings: Settings) -> None:
    bad = b'{"id": "r2", "startDateTime": "2026-01-01T00:00:00Z", "duration": NaN}'
    api = HostileApi([[run("r3"), bad, run("r1")]])
    result = collect(settings, api).connections[0]
    assert result.ok and result.runs_new == 2 and result.runs_quarantined == 1
    assert run_ids(settings) == ["r1", "r3"]
    rows = stored(settings, "select connection_id, reason, payload from quarantine")
    assert len(rows) == 1 and rows[0][0] == CONN
    assert "NaN" in rows[0][2] and rows[0][1].startswith("run 1 of the page")
    assert api.pages_served == 1  # the page was not fetched again


def test_an_unusable_single_run_answer_quarantines_that_run_only(settings: Settings) -> None:
    api = HostileApi([[run("r3")], [run("r2", state="Executing"), run("r1", state="Executing")]])
    assert collect(settings, api).ok
    api.pages = [api.page_bytes([run("r4")]), *api.pages]
    api.runs["r1"] = json.dumps({"run": run("r1")}).encode()
    api.runs["r2"] = b'{"run": {"id": "r2", "state": "Completed", "x": Infinity}}'
    result = collect(settings, api).connections[0]
    assert result.ok and result.runs_refreshed == 1 and result.runs_quarantined == 1
    states = stored(settings, "select run_id, state from runs where run_id in ('r1', 'r2')")
    assert sorted(states) == [("r1", "Completed"), ("r2", "Executing")]
    rows = stored(settings, "select payload from quarantine")
    assert len(rows) == 1 and "Infinity" in rows[0][0]


def test_a_run_repeating_a_key_loads_its_last_value_and_keeps_its_raw_text(
    settings: Settings,
) -> None:
    body = json.dumps(run("r1"))[1:]
    twice = b'{"result": "Error", ' + body.encode()  # "result" twice: the last ("Success") wins
    api = HostileApi([[twice, run("r2")]])
    result = collect(settings, api).connections[0]
    assert result.ok and result.duplicate_keys == 1 and result.runs_new == 2
    assert stored(settings, "select result from runs where run_id = 'r1'") == [("Success",)]
    kept = stored(settings, "select run_id, source, payload from quarantine")
    assert kept == [("r1", "duplicate keys", twice.decode())]
    assert stored(settings, "select duplicate_keys from collection_log") == [(1,)]


def test_a_connection_configured_in_upper_case_loads_runs_carrying_it_in_lower_case(
    settings: Settings,
) -> None:
    lower = UPPER.lower()
    api = HostileApi([[run("r1", connection_id=lower)]], connection=lower)
    configured = dataclasses.replace(settings, connection_ids=(UPPER, lower))
    result = collect(configured, api)
    assert [c.connection_id for c in result.connections] == [lower]  # collected once
    assert result.ok and result.connections[0].runs_new == 1
    assert stored(settings, "select count(*) from quarantine") == [(0,)]


@pytest.mark.parametrize("bad_id", ["a/b", "x" * 10_000])
def test_an_open_run_whose_id_cannot_be_a_url_segment_is_re_read_through_the_list(
    settings: Settings, bad_id: str
) -> None:
    api = HostileApi([[run("r2")], [run(bad_id, state="Executing")]])
    assert collect(settings, api).ok
    api.pages = [api.page_bytes(p) for p in ([run("r3")], [run("r2")], [run(bad_id)])]
    result = collect(settings, api).connections[0]
    assert result.ok and result.mode == "full"  # the list is read whole instead
    sql = f"select state from runs where length(run_id) = {len(bad_id)}"
    state = stored(settings, sql)
    assert state == [("Completed",)]
    assert collect(settings, api).ok


def test_the_hourly_budget_counts_the_requests_of_earlier_collections(
    settings: Settings,
) -> None:
    paced = dataclasses.replace(settings, rate_limit_per_hour=4)
    api = HostileApi([[run("r2")], [run("r1")]])
    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        assert asyncio.run(collect_all(paced, warehouse, transport=httpx.MockTransport(api))).ok
    # Two pages and the connection's details, read on first sight.
    assert stored(settings, "select count(*) from api_requests") == [(3,)] == [(api.requests,)]
    api.pages = [api.page_bytes(p) for p in ([run("r5")], [run("r4")], [run("r3")])]
    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        # The library entry point: it hands the stored request times to the client.
        again = asyncio.run(collect_all(paced, warehouse, transport=httpx.MockTransport(api)))
    stopped = again.connections[0]
    assert stopped.stopped and "hourly budget" in str(stopped.error)
    sent = api.requests
    assert stored(settings, "select count(*) from api_requests") == [(sent,)]
    assert len(run_ids(settings)) == api.pages_served  # every page fetched was loaded (a run each)


def test_a_compression_bomb_fails_its_connection_once_with_a_line_naming_it(
    settings: Settings,
) -> None:
    bomb = gzip.compress(b'{"runs": [' + b" " * (8 * 1024 * 1024) + b"]}")

    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(
            200,
            content=bomb,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )

    capped = dataclasses.replace(settings, max_answer_mb=1.0)

    async def main() -> CollectionResult:
        async with ExportApiClient(capped, transport=httpx.MockTransport(answer)) as client:
            return await Collector(client, warehouse, capped).run()

    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        result = asyncio.run(main()).connections[0]
    assert len(asked) == len(set(asked))  # each answer refused once, not retried
    assert result.outcome == "failed" and "max_answer_mb" in result.describe_error()
    line = read_summary(settings.data_dir).render(seconds=0, collected=True)
    failed = [ln for ln in line.splitlines() if ln.startswith(f"  {CONN}:")]
    assert len(failed) == 1 and "AnswerTooLarge" in failed[0] and "max_answer_mb" in failed[0]
