"""ISO 8601 timestamps (up to 9 or more fractional digits) to UTC microseconds, by truncation.

The API sends 7 fractional digits, which pyarrow refuses to cast to microseconds. Arrow
does parse them at nanosecond resolution, so the fast path casts a whole column to
nanoseconds and floors to microseconds in integer arithmetic. Values Arrow cannot hold
(more than 9 digits, years outside 1678-2261) or will not parse take a per-value
Python path with the same grammar, which also names the values that do not parse.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.transform.schema import UTC_MICROS

# The grammar Arrow's ISO 8601 cast accepts with a zone: date, [T ]hour[:min[:sec[.frac]]],
# then Z or an offset. A timestamp without a zone is rejected: the API always sends one
# and guessing would silently shift times.
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2})"
    r"(?::([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?)?"
    r"(Z|[+-][0-9]{2}(?::?[0-9]{2})?)",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_NS = pa.timestamp("ns", tz="UTC")


def parse_timestamp_us(text: str) -> int:
    """Microseconds since the epoch for one timestamp; ValueError when it does not parse."""
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        raise ValueError(f"not an ISO 8601 timestamp with a time zone: {text[:64]!r}")
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        dt = datetime(
            int(year), int(month), int(day), int(hour), int(minute or 0), int(second or 0), 0, UTC
        )
        dt -= _offset(zone)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"not a valid timestamp: {text[:64]!r}") from exc
    micros = int((frac or "")[:6].ljust(6, "0"))  # truncation, never rounding
    return (dt - _EPOCH) // _ONE_US + micros


def _offset(zone: str) -> timedelta:
    if zone == "Z":
        return timedelta(0)
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"bad offset {zone}")
    sign = 1 if zone[0] == "+" else -1
    return sign * timedelta(hours=hours, minutes=minutes)


def parse_timestamps(values: pa.Array) -> tuple[pa.Array, list[int]]:
    """A string column -> timestamp[us, UTC]; values that do not parse become null, listed."""
    try:
        nanos = pc.cast(values, _NS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _parse_each(values)
    return _floor_to_micros(nanos), []


def _floor_to_micros(nanos: pa.Array) -> pa.Array:
    ns = nanos.view(pa.int64())
    # Arrow's integer division truncates toward zero; shift negatives so it floors, so
    # that times before 1970 are truncated the same way as later ones.
    shifted = pc.subtract(ns, pc.if_else(pc.less(ns, 0), 999, 0))
    return pc.divide(shifted, 1000).cast(UTC_MICROS)


def _parse_each(values: pa.Array) -> tuple[pa.Array, list[int]]:
    out: list[int | None] = []
    bad: list[int] = []
    for i, text in enumerate(values.to_pylist()):
        if text is None:
            out.append(None)
            continue
        try:
            out.append(parse_timestamp_us(text))
        except ValueError:
            bad.append(i)
            out.append(None)
    return pa.array(out, pa.int64()).cast(UTC_MICROS), bad
