"""The shared rate budget spaces requests evenly and pauses everyone when told to."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

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
    waited = await limiter.acquire()
    assert waited == pytest.approx(3.0)


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
