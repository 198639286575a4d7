"""A full pass longer than the hourly budget finishes over several collections: each one
goes on from the next link after the last page the one before loaded (issue 22), and the
pass is recorded with the time it began."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.collection import CollectionResult, Collector
from pipeline.itwin.client import ExportApiClient
from pipeline.itwin.errors import PagingError
from pipeline.itwin.settings import Settings
from pipeline.warehouse.bookkeeping import ResumePoint
from pipeline.warehouse.store import open_warehouse
from tests.collection.scripted import BASE, CONN, connection_answer, json_answer, stored
from tests.transform.builders import run

T = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
PAGE = 2  # runs a page


class SkipApi:
    """One connection's runs, newest first, paged by `$skip` over the runs as the real API
    does (a run added at the front pushes every other one a place further)."""

    def __init__(self, count: int) -> None:
        self.runs = [run(f"r{i:03d}") for i in range(count, 0, -1)]
        self.list_skips: list[int] = []  # the $skip of every list request, in order
        self.hosts: list[str] = []

    def add_newest(self, *ids: str) -> None:
        self.runs[:0] = [run(i) for i in ids]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        parts = request.url.path.strip("/").split("/")
        if len(parts) == 3:
            return connection_answer(parts[2])
        skip = int(request.url.params.get("$skip", "0"))
        self.list_skips.append(skip)
        body: dict[str, Any] = {"runs": self.runs[skip : skip + PAGE]}
        if skip + PAGE < len(self.runs):
            href = f"{BASE}/export/connections/{CONN}/runs?$skip={skip + PAGE}&$top={PAGE}"
            body["_links"] = {"next": {"href": href}}
        return json_answer(200, body)


def budgeted(settings: Settings, per_hour: int) -> Settings:
    # A wait for the hourly budget is far longer than 1 s: the collection stops at once.
    return dataclasses.replace(settings, rate_limit_per_hour=per_hour, max_wait_s=1.0)


def collect(settings: Settings, api: SkipApi, at: datetime) -> CollectionResult:
    """One collection at `at`, its hourly budget unspent (as an hour after the last)."""

    async def main() -> CollectionResult:
        async with ExportApiClient(settings, transport=httpx.MockTransport(api)) as client:
            return await Collector(client, warehouse, settings, now=lambda: at).run()

    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        return asyncio.run(main())


def resume_point(settings: Settings) -> ResumePoint | None:
    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        return warehouse.bookkeeping.resume_points([CONN]).get(CONN)


def latest(settings: Settings) -> list[tuple[Any, ...]]:
    return stored(settings, "select run_id, payload_hash from raw_latest order by run_id")


def test_a_pass_longer_than_the_hourly_budget_finishes_reading_each_page_once(
    settings: Settings, tmp_path: Path
) -> None:
    api = SkipApi(count=48)  # 24 pages, 5 requests an hour
    slow = budgeted(settings, per_hour=5)
    requests: list[int] = []
    for hour in range(10):
        result = collect(slow, api, T + timedelta(hours=hour)).connections[0]
        requests.append(result.stats.requests)
        if result.ok:
            break
        assert result.stopped and "hourly budget" in str(result.error)
        assert result.mode == "full" and stored(slow, "select * from full_passes") == []
    assert result.ok and result.mode == "full"
    # 24 pages and 1 details request, 5 requests an hour: 5 collections, no page read twice.
    assert requests == [5, 5, 5, 5, 5]
    assert sorted(api.list_skips) == list(range(0, 48, PAGE))
    assert stored(slow, "select last_full_pass from full_passes") == [(T,)]  # the first start
    assert resume_point(slow) is None
    unthrottled = dataclasses.replace(settings, data_dir=tmp_path / "whole")
    unthrottled.data_dir.mkdir()
    assert collect(unthrottled, SkipApi(count=48), T).ok
    assert latest(slow) == latest(unthrottled) and len(latest(slow)) == 48


def test_runs_added_while_the_pass_is_stopped_are_read_again_never_missed(
    settings: Settings,
) -> None:
    api = SkipApi(count=20)  # 10 pages
    slow = budgeted(settings, per_hour=4)
    first = collect(slow, api, T).connections[0]
    assert first.stopped and api.list_skips == [0, 2, 4]  # details, then 3 pages
    point = resume_point(slow)
    assert point is not None and point.next_href.endswith("$skip=6&$top=2")
    assert point.pass_started_at == T
    api.add_newest("n2", "n1")  # r014 and r013 move from offsets 6, 7 to 8, 9
    api.list_skips.clear()
    second = collect(slow, api, T + timedelta(hours=1)).connections[0]
    assert second.stopped and api.list_skips == [6, 8, 10, 12]
    assert second.runs_unchanged == 2 and second.runs_new == 6  # one page's overlap
    api.list_skips.clear()
    third = collect(slow, api, T + timedelta(hours=2)).connections[0]
    assert third.ok and api.list_skips == [14, 16, 18, 20]
    ids = {r for (r, _) in latest(slow)}
    assert ids == {f"r{i:03d}" for i in range(1, 21)}  # every run of the pass's start
    assert stored(slow, "select last_full_pass from full_passes") == [(T,)]
    api.list_skips.clear()
    incremental = collect(slow, api, T + timedelta(hours=3)).connections[0]
    assert incremental.ok and incremental.mode == "incremental" and incremental.runs_new == 2
    assert api.list_skips == [0, 2]  # the newest pages, until one held nothing new


def test_a_resume_point_too_old_is_dropped_and_the_pass_starts_over(settings: Settings) -> None:
    api = SkipApi(count=20)
    slow = budgeted(settings, per_hour=4)
    assert collect(slow, api, T).connections[0].stopped
    api.list_skips.clear()
    later = T + timedelta(seconds=settings.full_pass_every_s + 60)
    result = collect(slow, api, later).connections[0]
    assert result.stopped and api.list_skips == [0, 2, 4]  # from the first page again
    point = resume_point(slow)
    assert point is not None and point.pass_started_at == later and point.saved_at == later


def test_a_stored_link_to_another_origin_is_refused_and_the_pass_starts_over(
    settings: Settings,
) -> None:
    api = SkipApi(count=6)
    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        foreign = ResumePoint(CONN, "https://evil.test/export/connections/x/runs?$skip=4", T, T)
        warehouse.bookkeeping.record_finished(resume_points=[foreign])
    result = collect(settings, api, T + timedelta(minutes=5)).connections[0]
    assert result.ok and api.list_skips == [0, 2, 4]
    assert set(api.hosts) == {"api.test"}  # nothing sent to the stored origin
    assert resume_point(settings) is None
    assert stored(settings, "select last_full_pass from full_passes") == [
        (T + timedelta(minutes=5),)
    ]


def test_the_client_refuses_a_start_link_of_another_origin_before_sending(
    settings: Settings,
) -> None:
    api = SkipApi(count=6)

    async def main() -> None:
        async with ExportApiClient(settings, transport=httpx.MockTransport(api)) as client:
            for link in ("https://evil.test/runs?$skip=2", "http://api.test/runs?$skip=2"):
                with pytest.raises(PagingError, match="another origin"):
                    client.list_runs(CONN, start_url=link)
            with pytest.raises(PagingError, match="user name or password"):
                client.list_runs(CONN, start_url="https://u:p@api.test/runs?$skip=2")
            pages = [p async for p in client.list_runs(CONN, start_url=f"{BASE}/x?$skip=2")]
            assert [p.runs[0]["id"] for p in pages] == ["r004", "r002"]
            assert pages[0].next_url == f"{BASE}/export/connections/{CONN}/runs?$skip=4&$top=2"
            assert pages[-1].next_url is None

    asyncio.run(main())
    assert api.hosts == ["api.test", "api.test"]


def test_a_pass_failing_part_way_goes_on_from_its_last_loaded_page(settings: Settings) -> None:
    api = SkipApi(count=10)
    failing = {6}
    plain = api.__call__

    def answer(request: httpx.Request) -> httpx.Response:
        if int(request.url.params.get("$skip", "-1")) in failing:
            return json_answer(404, {"error": {"code": "NotFound", "message": "gone"}})
        return plain(request)

    async def main(at: datetime) -> CollectionResult:
        async with ExportApiClient(settings, transport=httpx.MockTransport(answer)) as client:
            return await Collector(client, warehouse, settings, now=lambda: at).run()

    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        failed = asyncio.run(main(T)).connections[0]
        assert failed.outcome == "failed" and failed.runs_new == 6
        failing.clear()
        api.list_skips.clear()
        assert asyncio.run(main(T + timedelta(hours=1))).ok
    assert api.list_skips == [6, 8]
    assert stored(settings, "select last_full_pass from full_passes") == [(T,)]


def test_a_read_cut_by_the_page_cap_goes_on_from_there(settings: Settings) -> None:
    api = SkipApi(count=10)  # 5 pages, 2 a read
    capped = dataclasses.replace(settings, max_pages=2)
    outcomes = []
    for hour in range(3):
        result = collect(capped, api, T + timedelta(hours=hour)).connections[0]
        outcomes.append(result.outcome if result.ok else result.error.code)  # type: ignore[union-attr]
    assert outcomes == ["PageCapReached", "PageCapReached", "ok"]
    assert api.list_skips == [0, 2, 4, 6, 8]
    assert stored(capped, "select last_full_pass from full_passes") == [(T,)]
    assert len(latest(capped)) == 10


def test_an_interrupted_read_saves_no_point_past_what_is_committed(settings: Settings) -> None:
    api = SkipApi(count=12)
    plain = api.__call__

    async def main() -> CollectionResult:
        async with ExportApiClient(settings, transport=httpx.MockTransport(answer)) as client:
            collector = Collector(client, warehouse, settings, now=lambda: T, batch_runs=2)
            stop.append(collector)
            return await collector.run()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("$skip") == "6":
            stop[0].stop("interrupted by SIGTERM")  # as the signal handler does
        return plain(request)

    stop: list[Collector] = []
    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        result = asyncio.run(main()).connections[0]
        point = warehouse.bookkeeping.resume_points([CONN]).get(CONN)
        ids = [r for (r,) in warehouse.con.execute("select run_id from runs").fetchall()]
    assert not result.ok and stored(settings, "select * from full_passes") == []
    assert point is not None and point.pass_started_at == T
    skip = int(point.next_href.rsplit("$skip=", 1)[1].split("&")[0])
    assert skip in (4, 6)  # the pages before it are committed (page 4's load may not be)
    assert {f"r{i:03d}" for i in range(12, 12 - skip, -1)} <= set(ids)
    api.list_skips.clear()
    assert collect(settings, api, T + timedelta(hours=1)).ok
    assert api.list_skips == list(range(skip, 12, PAGE))
    assert len(latest(settings)) == 12
