"""A client-side request budget shared by every concurrent request of one client.

Requests are spaced evenly (one every 60/budget seconds, no bursts) so a collection
runs at the budget without tripping the service's own limit; when the service says
to slow down (a 429, or rate-limit headers saying nothing is left) every request
waits, not only the one that was told.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.itwin.retry import MAX_RETRY_AFTER_S, parse_retry_after

_REMAINING_HEADERS = (
    "iTwinPlatform-RateLimit-RemainingCalls",
    "X-RateLimit-Remaining",
    "RateLimit-Remaining",
)
_WAIT_SECONDS_HEADERS = ("iTwinPlatform-RateLimit-Retry-After-Seconds",)
_RESET_HEADERS = ("X-RateLimit-Reset", "RateLimit-Reset")
# Reset values above this are epoch seconds, below it seconds from now.
_EPOCH_THRESHOLD = 1_000_000_000
_WAKE_TOLERANCE_S = 0.001
# Spacing aims 2% under the budget: network jitter can bring two requests closer at the
# server than they left here, and a client exactly at a server's limit would then trip it.
DEFAULT_HEADROOM = 0.98


@dataclass(frozen=True)
class RateHint:
    """What a response's headers say about the rate limit; None where they say nothing."""

    remaining: int | None = None
    wait_s: float | None = None


def parse_rate_hint(headers: Mapping[str, str], *, now: datetime | None = None) -> RateHint:
    """Read the standard and iTwin rate-limit headers (names are case-insensitive in httpx)."""
    remaining = _first_int(headers, _REMAINING_HEADERS)
    wait = parse_retry_after(headers.get("Retry-After"), now=now)
    if wait is None:
        wait = _first_seconds(headers, _WAIT_SECONDS_HEADERS)
    if wait is None:
        wait = _reset_seconds(headers, now or datetime.now(UTC))
    return RateHint(remaining=remaining, wait_s=wait)


def _first_int(headers: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    for name in names:
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return int(float(raw.strip()))
        except (ValueError, OverflowError):
            continue
    return None


def _first_seconds(headers: Mapping[str, str], names: tuple[str, ...]) -> float | None:
    for name in names:
        seconds = parse_retry_after(headers.get(name))
        if seconds is not None:
            return seconds
    return None


def _reset_seconds(headers: Mapping[str, str], now: datetime) -> float | None:
    for name in _RESET_HEADERS:
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw.strip())
        except ValueError:
            continue
        if value > _EPOCH_THRESHOLD:
            value -= now.timestamp()
        if math.isfinite(value) and 0 < value <= MAX_RETRY_AFTER_S:
            return value
    return None


class RateLimiter:
    """Even spacing of request starts at ``per_minute``, plus a shared pause.

    Each caller reserves the next free slot synchronously (no await between reading
    and moving the schedule, so no lock is needed on one event loop) and sleeps
    until it. A pause set while callers sleep makes them reserve a new slot after it.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        headroom: float = DEFAULT_HEADROOM,
    ) -> None:
        if per_minute <= 0 or not 0 < headroom <= 1:
            raise ValueError("per_minute must be positive and headroom in (0, 1]")
        self.interval_s = 60.0 / (per_minute * headroom)
        self._clock = clock
        self._sleep = sleep
        self._next_slot = -math.inf
        self._paused_until = -math.inf

    async def acquire(self) -> float:
        """Wait for this caller's slot; returns the seconds waited."""
        waited = 0.0
        while True:
            now = self._clock()
            slot = max(now, self._next_slot, self._paused_until)
            self._next_slot = slot + self.interval_s
            if slot > now:
                await self._sleep(slot - now)
                waited += slot - now
            # asyncio may wake a hair early; that must not cost a second slot.
            if self._clock() >= self._paused_until - _WAKE_TOLERANCE_S:
                return waited

    def pause_for(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` from now (the longest pause wins)."""
        if seconds > 0:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, hint: RateHint, *, fallback_pause_s: float) -> None:
        """Slow down when a successful answer says the service's budget is used up."""
        if hint.remaining is not None and hint.remaining <= 0:
            self.pause_for(hint.wait_s if hint.wait_s is not None else fallback_pause_s)
