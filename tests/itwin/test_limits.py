"""The platform's rate limits against the simulator: long waits stop the client, never hammer.

The simulator's hourly cap answers 429 asking to wait until the hour has room (about an
hour in these tests); with ITWIN_MAX_WAIT_S at 900 the client must not wait, must not send
again, and must say why. Bounded time: nothing here sleeps through a long wait.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.itwin.client import ExportApiClient
from pipeline.itwin.errors import WaitTooLongError
from pipeline.simulator.config import Faults
from tests.itwin.simulated import all_runs, sim_settings, simulator, token_requests


def api_requests(sim: Any) -> int:
    return sum(1 for r in sim.requests if not r.path.endswith("/connect/token"))


@pytest.mark.anyio
@pytest.mark.parametrize("retry_after", [None, "http-date", "missing"])
async def test_a_429_asking_for_longer_than_max_wait_stops_the_client_at_once(
    retry_after: str | None,
) -> None:
    """Whichever header carries the wait (Retry-After in seconds or as a date, or only the
    platform's own header), the client stops after the first 429 and later calls fail fast."""
    faults = Faults(rate_limit_per_hour=2, retry_after=retry_after)
    with simulator(faults, connections=2) as sim:
        settings = sim_settings(sim, max_wait_s=900)
        async with ExportApiClient(settings) as client:
            first, second = sim.connection_ids[:2]
            with pytest.raises(WaitTooLongError) as caught:
                await all_runs(client, first, client.totals)  # two pages, then the cap
            sent = api_requests(sim)
            with pytest.raises(WaitTooLongError) as again:
                await all_runs(client, second, client.totals)
            assert api_requests(sim) == sent == 3  # nothing sent after the 429
    error = caught.value
    assert error.reason == "HTTP 429" and 3500 < error.wait_s <= 3601
    assert str(error).startswith("stopped: HTTP 429, the API asked to wait")
    assert "(ITWIN_MAX_WAIT_S is 900)" in str(error) and first in str(error)
    assert again.value.reason == "HTTP 429" and second in str(again.value)


@pytest.mark.anyio
async def test_the_hourly_budget_paces_under_the_platform_cap_and_stops_when_it_is_used() -> None:
    """With ITWIN_RATE_LIMIT_PER_HOUR at the platform's cap and the hour's earlier requests
    passed in, the client never provokes the cap: it stops on its own budget, unsent."""
    faults = Faults(rate_limit_per_hour=5)
    with simulator(faults) as sim:
        settings = sim_settings(sim, rate_limit_per_hour=5, max_wait_s=900)
        earlier = [datetime.now(UTC) - timedelta(minutes=5)] * 2  # an earlier collection's
        async with ExportApiClient(settings, request_history=earlier) as client:
            await all_runs(client, sim.connection_ids[0], client.totals)  # 3 pages
            with pytest.raises(WaitTooLongError) as caught:
                await all_runs(client, sim.connection_ids[1], client.totals)
            made = client.request_times()
    assert caught.value.reason == "hourly budget" and caught.value.wait_s > 3000
    assert "stopped: hourly budget" in str(caught.value)
    assert api_requests(sim) == 3 and len(made) == 3
    assert all(r.status != 429 for r in sim.requests)


@pytest.mark.anyio
async def test_a_throttled_token_endpoint_with_a_long_wait_is_asked_once() -> None:
    faults = Faults(token_endpoint_throttled_s=1800)
    with simulator(faults, connections=4) as sim:
        settings = sim_settings(sim, oauth=True, max_wait_s=900)
        async with ExportApiClient(settings) as client:
            outcomes = await asyncio.gather(
                *(all_runs(client, c, client.totals) for c in sim.connection_ids[:4]),
                return_exceptions=True,
            )
    assert all(isinstance(o, WaitTooLongError) for o in outcomes)
    assert {o.wait_s for o in outcomes if isinstance(o, WaitTooLongError)} == {1800}
    assert token_requests(sim) == 1 and api_requests(sim) == 0


@pytest.mark.anyio
async def test_connections_opened_for_a_burst_close_once_idle() -> None:
    """httpcore's pool checks every connection on every request start and end, so the
    surplus a burst opened must go once idle instead of taxing each later request."""
    with simulator(Faults(), connections=16) as sim:
        settings = sim_settings(sim, rate_limit_per_minute=600_000.0, max_concurrency=16)
        async with ExportApiClient(settings) as client:
            # httpx's transport keeps the httpcore pool privately; its connections are public.
            pool = client._http._transport._pool  # type: ignore[attr-defined]
            await asyncio.gather(*(client.get_connection(c) for c in sim.connection_ids))
            opened = len(pool.connections)
            await asyncio.sleep(0.8)  # past the 0.5 s idle limit at this pace
            await client.get_connection(sim.connection_ids[0])
            kept = len(pool.connections)
    assert opened > 4  # the burst did open several connections
    assert kept == 1
