"""The client against the project's simulator over real loopback HTTP.

Each test starts its own small simulator; faults are seeded, so a failure here is
reproducible. Assertions are on counts and generous bounds, never on exact timing.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from pipeline.itwin.client import CallStats, ExportApiClient
from pipeline.itwin.errors import (
    AuthenticationError,
    InvalidIdError,
    InvalidRequestError,
    NotFoundError,
    PagingError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
)
from pipeline.itwin.settings import Secret
from pipeline.simulator.config import Faults
from tests.itwin.simulated import RUNS, all_runs, sim_settings, simulator, token_requests


@pytest.mark.anyio
@pytest.mark.parametrize("malformed", [True, False])
async def test_paging_reaches_every_run_with_either_link_form(malformed: bool) -> None:
    with simulator(malformed_next_links=malformed, page_cap=50) as sim:
        stats = CallStats()
        async with ExportApiClient(sim_settings(sim)) as client:
            ids = await all_runs(client, sim.connection_ids[0], stats)
    assert len(ids) == len(set(ids)) == RUNS
    assert stats.pages == 3 and stats.requests == 3 and stats.retries == 0


@pytest.mark.anyio
async def test_each_page_says_whether_another_follows() -> None:
    with simulator(page_cap=40) as sim:
        async with ExportApiClient(sim_settings(sim)) as client:
            pages = [p async for p in client.list_runs(sim.connection_ids[0])]
    assert [len(p.runs) for p in pages] == [40, 40, 40]
    assert [p.has_next for p in pages] == [True, True, False]


@pytest.mark.anyio
async def test_caller_may_stop_early() -> None:
    with simulator() as sim:
        async with ExportApiClient(sim_settings(sim)) as client:
            async for _ in client.list_runs(sim.connection_ids[0]):
                break
            assert client.totals.requests == 1


@pytest.mark.anyio
async def test_connections_of_an_imodel_and_one_connection() -> None:
    with simulator() as sim:
        async with ExportApiClient(sim_settings(sim)) as client:
            found = []
            for imodel in sim.imodel_ids:
                found += [c["id"] async for c in client.list_connections(imodel)]
            one = await client.get_connection(sim.connection_ids[0])
            async for page in client.list_runs(sim.connection_ids[0]):
                first = page.runs[0]
                break
            run, fetched_at = await client.get_run(sim.connection_ids[0], first["id"])
    assert found and len(found) == len(set(found))
    assert one["id"] == sim.connection_ids[0]
    assert run["id"] == first["id"] and fetched_at.tzinfo is not None


FAULTS = {
    "5xx": {"error_5xx_rate": 0.3},
    "truncated": {"truncated_rate": 0.3},
    "non_json": {"non_json_rate": 0.3},
    "dropped": {"drop_rate": 0.3},
    "slow": {"slow_rate": 0.3, "slow_seconds": 3.0},
    "drip": {"drip_rate": 0.3, "drip_chunk_bytes": 64, "drip_interval_s": 0.2},
    "latency": {"latency_s": 0.02},
}


@pytest.mark.anyio
@pytest.mark.parametrize("kind", sorted(FAULTS))
async def test_transient_faults_are_retried_to_a_complete_result(kind: str) -> None:
    with simulator(Faults(seed=3, **FAULTS[kind])) as sim:
        stats = CallStats()
        settings = sim_settings(sim, connect_timeout_s=0.4, read_timeout_s=0.4)
        async with ExportApiClient(settings) as client:
            results = await asyncio.gather(
                *(all_runs(client, c, stats) for c in sim.connection_ids)
            )
    for ids in results:
        assert len(ids) == len(set(ids)) == RUNS
    if kind != "latency":
        assert stats.retries > 0
    assert stats.requests == stats.pages + stats.retries


@pytest.mark.anyio
@pytest.mark.parametrize("form", [None, "http-date", "0", "-5", "garbage", "missing"])
async def test_server_429s_are_waited_out_whatever_the_retry_after_form(form: str | None) -> None:
    faults = Faults(rate_limit_per_minute=300, rate_limit_window_s=1.0, retry_after=form)
    with simulator(faults) as sim:
        stats = CallStats()
        settings = sim_settings(sim, backoff_base_s=0.2, backoff_cap_s=1.0, max_retries=10)
        async with ExportApiClient(settings) as client:
            ids = [r["id"] async for p in client.list_runs(sim.connection_ids[0]) for r in p.runs]
            await asyncio.gather(
                *(client.get_run(sim.connection_ids[0], i, stats=stats) for i in ids[:12])
            )
    assert stats.throttled > 0 and stats.retries >= stats.throttled


@pytest.mark.anyio
async def test_the_rate_budget_is_respected_without_provoking_429s() -> None:
    budget = 600.0  # ten a second
    # A 3 s server window: a burst of 40 would break it, while a loaded machine's delivery
    # jitter (requests paced right but arriving bunched) cannot.
    faults = Faults(rate_limit_per_minute=budget, rate_limit_window_s=3.0)
    with simulator(faults) as sim:
        stats = CallStats()
        async with ExportApiClient(sim_settings(sim, rate_limit_per_minute=budget)) as client:
            ids = [r["id"] async for p in client.list_runs(sim.connection_ids[0]) for r in p.runs]
            assert len(ids) >= 40
            started = time.monotonic()
            await asyncio.gather(
                *(client.get_run(sim.connection_ids[0], i, stats=stats) for i in ids[:40])
            )
            elapsed = time.monotonic() - started
    assert stats.throttled == 0 and stats.requests == 40
    assert elapsed >= 39 * 60 / budget * 0.95  # no faster than the budget


@pytest.mark.anyio
async def test_a_foreign_next_link_is_refused_and_no_token_reaches_it() -> None:
    with simulator() as recorder, simulator() as sim:
        sim.faults.foreign_next_link = recorder.base_url
        pages = []
        async with ExportApiClient(sim_settings(sim)) as client:
            with pytest.raises(PagingError) as info:
                async for page in client.list_runs(sim.connection_ids[0]):
                    pages.append(page)
    assert len(pages) == 1 and pages[0].has_next
    assert recorder.base_url.rstrip("/") in str(info.value)
    assert info.value.connection_id == sim.connection_ids[0]
    assert not any("authorization" in {k.lower() for k in r.headers} for r in recorder.requests)
    assert recorder.requests == [] or all(
        r.path.endswith("/connect/token") for r in recorder.requests
    )


@pytest.mark.anyio
async def test_invalid_ids_send_nothing() -> None:
    with simulator() as sim:
        async with ExportApiClient(sim_settings(sim, oauth=True)) as client:
            for bad in ["", "..", "a/b", "a?b", "a#b", "a%2e", "a b", "a\x01"]:
                with pytest.raises(InvalidIdError):
                    await client.get_run(sim.connection_ids[0], bad)
                with pytest.raises(InvalidIdError):
                    client.list_runs(bad)
        assert sim.requests == []


@pytest.mark.anyio
async def test_short_lived_tokens_are_renewed_before_they_expire() -> None:
    with simulator(token_lifetime_s=1.0) as sim:
        async with ExportApiClient(sim_settings(sim, oauth=True)) as client:
            await client.get_connection(sim.connection_ids[0])
            await asyncio.sleep(1.0)
            await client.get_connection(sim.connection_ids[0])
        assert token_requests(sim) == 2


@pytest.mark.anyio
async def test_ten_concurrent_callers_cause_one_token_request() -> None:
    with simulator(faults=Faults(latency_s=0.05)) as sim:
        async with ExportApiClient(sim_settings(sim, oauth=True)) as client:
            await asyncio.gather(*(client.get_connection(sim.connection_ids[0]) for _ in range(10)))
        assert token_requests(sim) == 1


@pytest.mark.anyio
async def test_token_endpoint_outage_is_retried() -> None:
    with simulator(Faults(token_endpoint_failures=2)) as sim:
        async with ExportApiClient(sim_settings(sim, oauth=True)) as client:
            await client.get_connection(sim.connection_ids[0])
        assert token_requests(sim) == 3


@pytest.mark.anyio
async def test_a_token_the_server_expired_is_renewed_and_replayed() -> None:
    with simulator(token_lifetime_s=3600.0) as sim:
        async with ExportApiClient(sim_settings(sim, oauth=True)) as client:
            await client.get_connection(sim.connection_ids[0])
            sim.world.advance(7200)  # the server's clock passes expiry; ours does not
            await client.get_connection(sim.connection_ids[0])
        assert token_requests(sim) == 2


@pytest.mark.anyio
async def test_a_wrong_token_is_an_authentication_error() -> None:
    with simulator() as sim:
        async with ExportApiClient(sim_settings(sim, access_token=Secret("wrong"))) as client:
            with pytest.raises(AuthenticationError) as info:
                await client.get_connection(sim.connection_ids[0])
    assert info.value.status == 401 and info.value.connection_id == sim.connection_ids[0]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fault", "kind", "status"),
    [
        ("forbidden_connections", PermissionDeniedError, 403),
        ("unknown_connections", NotFoundError, 404),
        ("permanent_5xx_connections", ServiceUnavailableError, None),
        ("permanent_429_connections", RateLimitedError, 429),
    ],
)
async def test_typed_errors_name_the_connection(fault: str, kind: type, status: int | None) -> None:
    with simulator() as sim:
        bad, good = sim.connection_ids[0], sim.connection_ids[1]
        getattr(sim.faults, fault).add(bad)
        settings = sim_settings(sim, max_retries=2, backoff_cap_s=0.05)
        async with ExportApiClient(settings) as client:
            with pytest.raises(kind) as info:
                await all_runs(client, bad, CallStats())
            assert len(await all_runs(client, good, CallStats())) == RUNS
    assert info.value.connection_id == bad
    if status is not None:
        assert info.value.status == status
    assert info.value.code or info.value.message


@pytest.mark.anyio
async def test_a_request_the_api_finds_invalid_is_a_typed_422() -> None:
    with simulator() as sim:
        async with ExportApiClient(sim_settings(sim)) as client:
            with pytest.raises(InvalidRequestError) as info:
                [c async for c in client.list_connections("not:an:imodel")]
    assert info.value.status == 422 and info.value.code
    assert [d.target for d in info.value.details] == ["imodelId"]
    assert len(sim.requests) == 1  # not retried
