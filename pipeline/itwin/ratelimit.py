"""A client-side request budget shared by every concurrent request of one client.

Requests are spaced evenly (one every 60/budget seconds, no bursts) and, when an
hourly budget is set, kept within it over a sliding hour, so a collection runs at
the budget without tripping the service's own limits; when the service says to slow
down (a 429, or rate-limit headers saying nothing is left) every request waits, not
only the one that was told, unless the wait is longer than the collection accepts.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.itwin.errors import WaitTooLongError
from pipeline.itwin.retry import parse_retry_after

_REMAINING_HEADERS = (
    "iTwinPlatform-RateLimit-RemainingCalls",
    "X-RateLimit-Remaining",
    "RateLimit-Remaining",
)
_WAIT_SECONDS_HEADER = "iTwinPlatform-RateLimit-Retry-After-Seconds"
_RESET_HEADERS = ("X-RateLimit-Reset", "RateLimit-Reset")
# Reset values above this are epoch seconds, below it seconds from now.
_EPOCH_THRESHOLD = 1_000_000_000
_WAKE_TOLERANCE_S = 0.001
HOUR_S = 3600.0
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
    # Uncapped: a long wait is the service's word, and ITWIN_MAX_WAIT_S decides about it.
    wait = parse_retry_after(headers.get("Retry-After"), now=now, max_s=math.inf)
    if wait is None:
        wait = parse_retry_after(headers.get(_WAIT_SECONDS_HEADER), max_s=math.inf)
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
        if math.isfinite(value) and value > 0:
            return value
    return None


class RateLimiter:
    """Even spacing of request starts at ``per_minute``, an hourly window, and a shared pause.

    Each caller reserves the next free slot synchronously (no await between reading
    and moving the schedule, so no lock is needed on one event loop) and sleeps
    until it. A pause set while callers sleep makes them reserve a new slot after it.
    The hourly window holds the start times (epoch seconds) of the API requests of the
    last hour, earlier collections' included (``history``), and this limiter's own.
    A wait longer than ``max_wait_s`` is never slept: it stops the limiter, and every
    later caller gets the same WaitTooLongError at once.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        per_hour: float | None = None,
        max_wait_s: float = math.inf,
        history: Iterable[datetime] = (),
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_minute <= 0 or (per_hour is not None and per_hour <= 0):
            raise ValueError("budgets must be positive")
        self.interval_s = 60.0 / (per_minute * DEFAULT_HEADROOM)
        self.per_hour = max(1, int(per_hour)) if per_hour is not None else None
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep
        self._next_slot = -math.inf
        self._paused_until = -math.inf
        self._hour: deque[float] = deque(sorted(t.timestamp() for t in history))
        self._sent: list[float] = []
        self._stopped: tuple[str, float] | None = None

    async def acquire(self, connection_id: str | None = None) -> None:
        """Wait for this caller's slot."""
        while True:
            self.check(connection_id)
            now = self._clock()
            slot = self._hourly_slot(max(now, self._next_slot, self._paused_until))
            if slot - now > self.max_wait_s:
                reason = "HTTP 429" if self._paused_until >= slot else "hourly budget"
                self._stop(reason, slot - now)
                continue  # check() raises
            self._next_slot = slot + self.interval_s
            if self.per_hour is not None:
                self._hour.append(slot)
            if slot > now:
                await self._sleep(slot - now)
            # asyncio may wake a hair early; that must not cost a second slot.
            if self._clock() >= self._paused_until - _WAKE_TOLERANCE_S:
                self._sent.append(slot)
                return
            if self.per_hour is not None:
                self._hour.remove(slot)  # paused meanwhile: this slot was never used

    async def wait_for_pause(self) -> None:
        """Wait out a shared pause without using the budget (token requests do not count)."""
        while True:
            self.check()
            remaining = self._paused_until - self._clock()
            if remaining <= _WAKE_TOLERANCE_S:
                return
            await self._sleep(remaining)

    def _hourly_slot(self, earliest: float) -> float:
        """The first time from ``earliest`` on at which the last hour has room for a request."""
        if self.per_hour is None:
            return earliest
        while self._hour and self._hour[0] <= earliest - HOUR_S:
            self._hour.popleft()  # every later reservation starts at or after ``earliest``
        if len(self._hour) < self.per_hour:
            return earliest
        return max(earliest, self._hour[-self.per_hour] + HOUR_S)

    def pause_for(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` from now (the longest pause wins).

        A pause longer than ``max_wait_s`` is not taken: it stops the limiter instead.
        """
        if seconds > self.max_wait_s:
            self._stop("HTTP 429", seconds)
        elif seconds > 0:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, hint: RateHint, *, fallback_pause_s: float) -> None:
        """Slow down when a successful answer says the service's budget is used up."""
        if hint.remaining is not None and hint.remaining <= 0:
            self.pause_for(hint.wait_s if hint.wait_s is not None else fallback_pause_s)

    def check(self, connection_id: str | None = None) -> None:
        """Raise WaitTooLongError if a wait too long stopped this limiter."""
        if self._stopped is not None:
            reason, wait_s = self._stopped
            raise WaitTooLongError.build(reason, wait_s, self.max_wait_s, connection_id)

    def _stop(self, reason: str, wait_s: float) -> None:
        if self._stopped is None:
            self._stopped = (reason, wait_s)

    def request_times(self) -> list[datetime]:
        """When each API request this limiter let through started (UTC), to be stored."""
        return [datetime.fromtimestamp(t, UTC) for t in self._sent]
