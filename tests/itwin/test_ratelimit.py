"""The shared rate budget spaces requests evenly and pauses everyone when told to."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from pipeline.itwin.errors import WaitTooLongError
from pipeline.itwin.ratelimit import RateHint, RateLimiter, parse_rate_hint

NOW = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """A monotonic clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@pytest.mark.anyio
async def test_requests_are_spaced_at_the_budget_without_a_burst() -> None:
    limiter = RateLimiter(6000)  # one every 10 ms, on the real clock
    loop = asyncio.get_running_loop()
    starts: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        starts.append(loop.time())

    t0 = loop.time()
    await asyncio.gather(*(one() for _ in range(10)))
    # The k-th request may not start before its slot k intervals after the first.
    for k, start in enumerate(sorted(starts)):
        assert start >= t0 + k * 0.010 - 0.002


@pytest.mark.anyio
async def test_a_pause_holds_every_caller_back() -> None:
    clock = FakeClock()
    limiter = RateLimiter(6000, clock=clock, sleep=clock.sleep)
    limiter.pause_for(3.0)
    await limiter.acquire()
    assert clock.now == pytest.approx(1003.0)


def test_limiter_rejects_a_non_positive_budget() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)


@pytest.mark.parametrize(
    ("headers", "hint"),
    [
        ({}, RateHint()),
        ({"X-RateLimit-Remaining": "0", "Retry-After": "4"}, RateHint(0, 4.0)),
        (
            {
                "iTwinPlatform-RateLimit-RemainingCalls": "3",
                "iTwinPlatform-RateLimit-Retry-After-Seconds": "12",
            },
            RateHint(3, 12.0),
        ),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "20"}, RateHint(0, 20.0)),
        (
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW.timestamp()) + 30)},
            RateHint(0, 30.0),
        ),
        ({"X-RateLimit-Remaining": "lots", "Retry-After": "garbage"}, RateHint()),
    ],
)
def test_rate_limit_headers_are_read(headers: dict[str, str], hint: RateHint) -> None:
    assert parse_rate_hint(headers, now=NOW) == hint


def test_exhausted_budget_on_a_success_pauses() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    limiter.observe(RateHint(remaining=5, wait_s=9.0), fallback_pause_s=1.0)
    assert limiter._paused_until < clock.now
    limiter.observe(RateHint(remaining=0), fallback_pause_s=1.0)
    assert limiter._paused_until == pytest.approx(clock.now + 1.0)


def _epoch(clock: FakeClock, seconds_ago: float) -> datetime:
    return datetime.fromtimestamp(clock.now - seconds_ago, UTC)


@pytest.mark.anyio
async def test_the_hourly_budget_counts_earlier_collections_and_waits_for_room() -> None:
    clock = FakeClock()
    clock.now = 1_800_000_000.0
    # Three requests of an earlier collection, 50, 40 and 30 minutes ago; budget four an hour.
    history = [_epoch(clock, m * 60) for m in (50, 40, 30)]
    limiter = RateLimiter(
        60_000, per_hour=4, max_wait_s=900, history=history, clock=clock, sleep=clock.sleep
    )
    start = clock.now
    await limiter.acquire()  # the fourth of the hour: at once
    assert clock.now == start
    await limiter.acquire()  # waits until the one of 50 minutes ago leaves the window
    assert clock.now == pytest.approx(start + 10 * 60)
    assert [t.timestamp() for t in limiter.request_times()] == pytest.approx([start, start + 600])


@pytest.mark.anyio
async def test_an_hourly_wait_longer_than_max_wait_stops_every_caller_without_sleeping() -> None:
    clock = FakeClock()
    clock.now = 1_800_000_000.0
    history = [_epoch(clock, 60)] * 5  # the hour's five requests were all a minute ago
    limiter = RateLimiter(
        60_000, per_hour=5, max_wait_s=900, history=history, clock=clock, sleep=clock.sleep
    )
    with pytest.raises(WaitTooLongError) as caught:
        await limiter.acquire("c1")
    assert caught.value.reason == "hourly budget"
    assert caught.value.wait_s == pytest.approx(3540)
    assert "stopped: hourly budget" in str(caught.value) and "3540 s" in str(caught.value)
    assert "ITWIN_MAX_WAIT_S is 900" in str(caught.value)
    with pytest.raises(WaitTooLongError, match="connection c2"):
        await limiter.acquire("c2")  # later callers fail fast the same way
    assert clock.now == 1_800_000_000.0 and limiter.request_times() == []


@pytest.mark.anyio
async def test_a_pause_longer_than_max_wait_is_not_taken_but_stops_the_limiter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(6000, max_wait_s=900, clock=clock, sleep=clock.sleep)
    limiter.pause_for(1800)
    with pytest.raises(WaitTooLongError) as caught:
        await limiter.wait_for_pause()
    assert (caught.value.reason, caught.value.wait_s) == ("HTTP 429", 1800)
    with pytest.raises(WaitTooLongError, match="the API asked to wait 1800 s"):
        await limiter.acquire()
    assert clock.now == 1000.0


@pytest.mark.anyio
async def test_token_requests_wait_out_the_shared_pause_without_using_the_budget() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, per_hour=1, max_wait_s=900, clock=clock, sleep=clock.sleep)
    limiter.pause_for(30)
    await limiter.wait_for_pause()
    assert clock.now == pytest.approx(1030.0)
    await limiter.acquire()  # the hour's one request is still free
    assert len(limiter.request_times()) == 1


def test_waits_longer_than_ten_minutes_are_read_from_either_header() -> None:
    assert parse_rate_hint({"Retry-After": "1800"}).wait_s == 1800
    platform = {"iTwinPlatform-RateLimit-Retry-After-Seconds": "1800"}
    assert parse_rate_hint(platform).wait_s == 1800
    later = "Wed, 15 Jan 2025 12:30:00 GMT"
    assert parse_rate_hint({"Retry-After": later}, now=NOW).wait_s == 1800
