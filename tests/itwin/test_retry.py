"""Retry-After parsing, status classification and backoff bounds (pure functions)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.itwin.retry import (
    MAX_RETRY_AFTER_S,
    Outcome,
    backoff_delay,
    classify_status,
    parse_retry_after,
)

NOW = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [("7", 7.0), (" 2 ", 2.0), ("1.5", 1.5)])
def test_retry_after_in_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_retry_after_as_http_date() -> None:
    value = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(value, now=NOW) == pytest.approx(30.0)


@pytest.mark.parametrize(
    "value",
    [None, "", "0", "-5", "garbage", "99999", "nan", "inf", "Wed, 21 Oct 2015 07:28:00 GMT"],
)
def test_untrustworthy_retry_after_means_backoff(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_absurd_limit_is_configurable() -> None:
    assert parse_retry_after(str(MAX_RETRY_AFTER_S + 1), now=NOW) is None
    assert parse_retry_after("700", now=NOW, max_s=1000) == 700.0


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.OK),
        (302, Outcome.REDIRECT),
        (400, Outcome.FATAL),
        (401, Outcome.FATAL),
        (403, Outcome.FATAL),
        (404, Outcome.FATAL),
        (422, Outcome.FATAL),
        (429, Outcome.THROTTLED),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
    ],
)
def test_status_classes(status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome


@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    base=st.floats(min_value=0.001, max_value=10),
    cap=st.floats(min_value=0.01, max_value=600),
    seed=st.integers(),
)
def test_backoff_stays_within_half_ceiling_and_ceiling(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    delay = backoff_delay(attempt, base_s=base, cap_s=cap, rng=random.Random(seed))
    ceiling = min(cap, base * 2.0 ** min(attempt, 62))
    assert ceiling / 2 <= delay <= ceiling
    assert delay <= cap


def test_backoff_grows_then_caps() -> None:
    rng = random.Random(1)
    firsts = [backoff_delay(a, base_s=1, cap_s=8, rng=rng) for a in range(6)]
    assert firsts[0] <= 1 and firsts[3] >= 4 and max(firsts) <= 8


def test_backoff_jitter_spreads_callers() -> None:
    delays = {backoff_delay(3, base_s=1, cap_s=60, rng=random.Random(s)) for s in range(20)}
    assert len(delays) > 10
