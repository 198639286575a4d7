"""When to retry a request and how long to wait: pure functions, no I/O.

The service tells us how long to wait on a 429 (``Retry-After``, seconds or an
HTTP-date); anything we cannot trust there falls back to capped exponential backoff
with jitter, so many concurrent callers do not retry in lockstep.
"""

from __future__ import annotations

import enum
import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A Retry-After longer than this is treated as a bug on the other side, not advice.
MAX_RETRY_AFTER_S = 600.0


class Outcome(enum.Enum):
    """What a response status means for the retry loop."""

    OK = "ok"
    RETRY = "retry"  # 5xx: transient on the service side
    THROTTLED = "throttled"  # 429: wait as told, then retry
    REDIRECT = "redirect"  # 3xx: never followed with the token
    FATAL = "fatal"  # other 4xx: retrying cannot help


def classify_status(status: int) -> Outcome:
    """Map an HTTP status to what the retry loop should do with it."""
    if 200 <= status < 300:
        return Outcome.OK
    if status == 429:
        return Outcome.THROTTLED
    if status >= 500:
        return Outcome.RETRY
    if 300 <= status < 400:
        return Outcome.REDIRECT
    return Outcome.FATAL


def parse_retry_after(
    value: str | None, *, now: datetime | None = None, max_s: float = MAX_RETRY_AFTER_S
) -> float | None:
    """Seconds to wait from a Retry-After value, or None when it cannot be trusted.

    None (meaning: use backoff) for a missing, empty, zero, negative, non-finite,
    unparseable or absurdly long value, and for an HTTP-date already in the past.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds: float | None = float(text)
    except ValueError:
        seconds = _parse_http_date(text, now or datetime.now(UTC))
    if seconds is None or not math.isfinite(seconds) or seconds <= 0 or seconds > max_s:
        return None
    return seconds


def _parse_http_date(text: str, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" zone: RFC 5322 says UTC
        when = when.replace(tzinfo=UTC)
    return (when - now).total_seconds()


def backoff_delay(
    attempt: int, *, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """Delay before retry number ``attempt`` (0-based): equal jitter over a capped doubling.

    The result lies in [ceiling/2, ceiling] with ceiling = min(cap, base * 2**attempt):
    it always grows with the attempt (unlike full jitter, which can retry at once) yet
    spreads concurrent callers apart.
    """
    exponent = min(max(attempt, 0), 62)  # 2**63 overflows float math soon after
    ceiling = min(cap_s, base_s * (2.0**exponent))
    jitter = (rng or random).random()
    return ceiling / 2 + jitter * ceiling / 2
