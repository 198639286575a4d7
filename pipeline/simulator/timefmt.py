"""Timestamps as the service writes them: ISO 8601 UTC with up to 7 fractional digits.

Simulated time is kept as integer ticks of 100 ns since the Unix epoch (the .NET resolution
behind the 7 digits), so no float rounding creeps into the generated data. Like .NET's
serializer, trailing zeros of the fraction are dropped, so some values have fewer digits.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

TICKS_PER_SECOND = 10_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ticks_of(moment: datetime) -> int:
    """Ticks since the epoch of an aware datetime."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


def datetime_of(ticks: int) -> datetime:
    """The aware UTC datetime of a tick count, truncated to microseconds."""
    return _EPOCH + timedelta(microseconds=ticks // 10)


_DAYS: dict[int, str] = {}


def _day(days: int) -> str:
    text = _DAYS[days] = (_EPOCH + timedelta(days=days)).strftime("%Y-%m-%dT")
    return text


# Every time of day as text, built once: formatting is then two lookups.
_HMS = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]


def format_ticks(ticks: int) -> str:
    """`2020-10-24T02:44:13.4109666Z`, with trailing fractional zeros dropped.

    Hot path of data generation (about 25 calls per run), hence the lookup tables.
    """
    seconds, fraction = divmod(ticks, TICKS_PER_SECOND)
    days, rest = divmod(seconds, 86_400)
    day = _DAYS.get(days) or _day(days)
    if fraction:
        return f"{day}{_HMS[rest]}.{fraction:07d}".rstrip("0") + "Z"
    return f"{day}{_HMS[rest]}Z"
