"""Seeded fault decisions and the server-side rate limit.

A fault is drawn from (seed, request URL, how many times that URL was asked before): the same
client behaviour meets the same faults on every run, whatever order concurrent requests arrive
in, while a retry of a URL gets a fresh draw and so can succeed.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate
from enum import Enum

from pipeline.simulator.config import Faults


class Fault(Enum):
    """How one response goes wrong (at most one per request, besides slowness)."""

    DROP_BEFORE = "drop_before"  # connection closed or reset before any byte of a response
    DROP_MID = "drop_mid"  # headers and part of the body, then reset
    ERROR_5XX = "error_5xx"
    TRUNCATED = "truncated"  # complete HTTP 200 whose JSON body is cut short
    NON_JSON = "non_json"  # HTTP 200 with an HTML error page
    DRIP = "drip"  # the whole body, slowly, in small chunks


@dataclass(frozen=True)
class Draw:
    """The faults chosen for one request."""

    fault: Fault | None
    slow: bool
    rng: random.Random  # for the details (which 5xx, where to cut)


def draw(faults: Faults, url: str, attempt: int) -> Draw:
    """Choose the random faults of one request, reproducibly."""
    rng = random.Random(f"{faults.seed}|{url}|{attempt}")
    fault: Fault | None = None
    for rate, kind in (
        (faults.drop_rate, None),
        (faults.error_5xx_rate, Fault.ERROR_5XX),
        (faults.truncated_rate, Fault.TRUNCATED),
        (faults.non_json_rate, Fault.NON_JSON),
        (faults.drip_rate, Fault.DRIP),
    ):
        if rng.random() < rate and fault is None:
            if kind is None:
                kind = Fault.DROP_BEFORE if rng.random() < 0.5 else Fault.DROP_MID
            fault = kind
    slow = rng.random() < faults.slow_rate
    return Draw(fault, slow, rng)


class RateLimiter:
    """A sliding window of request times per OAuth client, like a per-minute subscription limit."""

    def __init__(self) -> None:
        self._windows: dict[str, deque[float]] = {}

    def check(self, client: str, limit: float, window_s: float) -> tuple[bool, int, float]:
        """(allowed, calls remaining, seconds until a call is allowed again)."""
        now = time.monotonic()
        calls = self._windows.setdefault(client, deque())
        while calls and calls[0] <= now - window_s:
            calls.popleft()
        cap = max(1, int(limit * window_s / 60.0))
        if len(calls) >= cap:
            return False, 0, max(0.0, calls[0] + window_s - now)
        calls.append(now)
        return True, cap - len(calls), 0.0


def retry_after_header(form: str | None, wait_s: float) -> str | None:
    """The Retry-After value to send for a wait, in the configured form (None: no header)."""
    if form is None:
        return str(max(1, math.ceil(wait_s)))
    if form == "http-date":
        return formatdate(time.time() + max(1.0, wait_s), usegmt=True)
    if form == "past-date":
        return formatdate(time.time() - 3600, usegmt=True)
    if form == "missing":
        return None
    return form


PLATFORM_WAIT_HEADER = b"itwinplatform-ratelimit-retry-after-seconds"


def rate_limit_headers(limit: float, remaining: int, wait_s: float) -> list[tuple[bytes, bytes]]:
    """Headers like the platform's gateway sends with a limit (names as Azure APIM uses them)."""
    return [
        (b"x-ratelimit-limit", str(int(limit)).encode()),
        (b"x-ratelimit-remaining", str(remaining).encode()),
        (b"x-ratelimit-reset", str(math.ceil(wait_s)).encode()),
        (b"x-ratelimit-tier", b"simulated"),
    ]
