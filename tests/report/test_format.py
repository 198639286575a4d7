"""The text people read: rates with intervals, connection names, durations, safe links."""

from __future__ import annotations

import pytest

from pipeline.report.format import (
    connection_labels,
    duration,
    format_rate,
    link,
    safe_link,
)


@pytest.mark.parametrize(
    ("rate", "low", "high", "shown"),
    [
        (0.18, 0.08, 0.34, "18% (8–34%)"),
        (0.5, 0.2366, 0.7634, "50% (24–76%)"),  # 5 of 10
        (0.0, 0.0, 0.2775, "0% (0–28%)"),  # 0 of 10
        (1.0, 0.7225, 1.0, "100% (72–100%)"),  # 10 of 10
        (0.0, 0.0, 0.0032, "0.0% (0.0–0.3%)"),  # 0 of 1200: narrow, so one decimal
        (0.1, 0.0709, 0.1392, "10.0% (7.1–13.9%)"),  # 30 of 300
        (None, None, None, "–"),  # n = 0
        (0.2, None, None, "20%"),  # an older model without interval columns
        (0.04, None, None, "4.0%"),
    ],
)
def test_format_rate(rate: float | None, low: float | None, high: float | None, shown: str) -> None:
    assert format_rate(rate, low, high) == shown


def test_connection_labels_disambiguate_with_a_short_id() -> None:
    rows = [
        {"connection_id": "aaaa1111-x", "display_name": "Bridge"},
        {"connection_id": "bbbb2222-y", "display_name": " Bridge "},
        {"connection_id": "cccc3333-z", "display_name": "Tunnel"},
        {"connection_id": "dddd4444-w", "display_name": None},
        {"connection_id": "eeee5555-v", "display_name": "   "},
        {"connection_id": "ffff6666-u"},  # an older model without names
    ]
    assert connection_labels(rows) == {
        "aaaa1111-x": "Bridge · aaaa1111",
        "bbbb2222-y": "Bridge · bbbb2222",
        "cccc3333-z": "Tunnel",
        "dddd4444-w": "dddd4444-w",
        "eeee5555-v": "eeee5555-v",
        "ffff6666-u": "ffff6666-u",
    }


@pytest.mark.parametrize(
    ("url", "followed"),
    [
        ("https://example.com/kb?a=1&b=2", True),
        ("HTTP://example.com/kb", True),
        ("javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//example.com/kb", False),
        ("https:///no-host", False),
        ("https://exa mple.com", False),
        ("https://example.com/\nx", False),
        ("", False),
        (None, False),
        (42, False),
    ],
)
def test_only_absolute_http_links_are_followed(url: object, followed: bool) -> None:
    assert (safe_link(url) is not None) is followed


def test_links_are_escaped() -> None:
    assert link('https://e.com/?a=1&b="x"', "KB") == (
        '<a href="https://e.com/?a=1&amp;b=&quot;x&quot;" rel="noopener noreferrer" '
        'target="_blank" class="kb">KB</a>'
    )
    assert link("javascript:alert('x')", "KB") == "javascript:alert(&#x27;x&#x27;)"
    assert link(None, "KB") == "–"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(4.25, "4.2 s"), (45, "45 s"), (725, "12 min 5 s"), (12000, "3 h 20 min"), (None, "–")],
)
def test_duration(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown
