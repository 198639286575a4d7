from __future__ import annotations

import pytest

from pipeline.alerts import format_percent, format_rate


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "0%"),
        (0.004, "<1%"),
        (0.005, "1%"),
        (0.175, "18%"),
        (0.994, "99%"),
        (0.996, ">99%"),
        (1.0, "100%"),
        (None, "n/a"),
    ],
)
def test_a_rate_shows_as_a_whole_percent_never_rounded_to_zero_or_all(
    value: float | None, expected: str
) -> None:
    assert format_percent(value) == expected


def test_a_rate_shows_with_its_interval() -> None:
    assert format_rate(0.175, 0.0875, 0.3394) == "18% (9–34%)"
    assert format_rate(0.0, 0.0, 0.2775) == "0% (0–28%)"
    assert format_rate(0.003, 0.001, 0.009) == "<1% (<1–1%)"


def test_a_rate_without_a_denominator_shows_as_not_available() -> None:
    assert format_rate(None, None, None) == "n/a"
    assert format_rate(0.5, None, None) == "50%"
