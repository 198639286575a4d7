"""Rates as people read them: whole percents with their 95% interval, e.g. "18% (8–34%)"."""

from __future__ import annotations

NO_RATE = "n/a"


def format_percent(value: float | None) -> str:
    """A rate in [0, 1] as a whole percent; never rounds a non-zero rate to 0% or a partial to 100%.

    "0%" beside a code that did fail (or "100%" beside one that did not always fail) would
    misstate it, so those show as "<1%" and ">99%".
    """
    if value is None:
        return NO_RATE
    percent = value * 100
    whole = int(percent + 0.5)  # half up; rates are never negative
    if whole == 0 and percent > 0:
        return "<1%"
    if whole == 100 and percent < 100:
        return ">99%"
    return f"{whole}%"


def format_rate(rate: float | None, low: float | None, high: float | None) -> str:
    """A rate with its interval, "18% (8–34%)"; "n/a" when the rate has no denominator."""
    if rate is None:
        return NO_RATE
    if low is None or high is None:
        return format_percent(rate)
    return f"{format_percent(rate)} ({format_percent(low).rstrip('%')}–{format_percent(high)})"
