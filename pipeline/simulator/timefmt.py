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


_MINUTE_PREFIXES: dict[int, str] = {}


def _minute_prefix(minute: int) -> str:
    prefix = _MINUTE_PREFIXES.get(minute)
    if prefix is None:
        if len(_MINUTE_PREFIXES) > 200_000:
            _MINUTE_PREFIXES.clear()  # bounded memory over very long histories
        prefix = (_EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:")
        _MINUTE_PREFIXES[minute] = prefix
    return prefix


def format_ticks(ticks: int) -> str:
    """`2020-10-24T02:44:13.4109666Z`, with trailing fractional zeros dropped.

    Hot path of data generation (about 25 calls per run), hence the per-minute prefix cache.
    """
    seconds, fraction = divmod(ticks, TICKS_PER_SECOND)
    minute, secs = divmod(seconds, 60)
    prefix = _MINUTE_PREFIXES.get(minute) or _minute_prefix(minute)
    if fraction:
        return f"{prefix}{secs:02d}.{fraction:07d}".rstrip("0") + "Z"
    return f"{prefix}{secs:02d}Z"
