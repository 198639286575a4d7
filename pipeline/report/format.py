"""Turning model values into the text people read: rates with intervals, counts, names, links.

Shared by the HTML page and the CLI summary so a rate reads the same everywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlsplit

MISSING = "–"


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def percent(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{value * 100:.{digits}f}%"


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def format_rate(rate: object, low: object = None, high: object = None) -> str:
    """A rate with its 95% interval, e.g. "18% (8–34%)"; "–" when there is no rate.

    The precision follows the certainty: one decimal when the interval is narrower than 10
    points, whole percents when it is wider (a decimal there would be false precision). An
    older warehouse without the interval columns gives just the rate.
    """
    value = _as_float(rate)
    if value is None:
        return MISSING
    low_value, high_value = _as_float(low), _as_float(high)
    if low_value is None or high_value is None:
        digits = 1 if 0 < value < 0.1 else 0
    else:
        digits = 1 if high_value - low_value < 0.1 else 0
    shown = f"{value * 100:.{digits}f}%"
    if low_value is None or high_value is None:
        return shown
    return f"{shown} ({low_value * 100:.{digits}f}–{high_value * 100:.{digits}f}%)"


def share(value: object) -> str:
    """A proportion without an interval (e.g. a share of all failures), one decimal."""
    return percent(_as_float(value))


def count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else MISSING


def moment(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return MISSING


def duration(seconds: object) -> str:
    """Seconds in the two largest units that fit (s; min and s; h and min)."""
    value = _as_float(seconds)
    if value is None:
        return MISSING
    whole = round(value)
    if whole < 60:
        return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def short_id(identifier: str) -> str:
    return identifier[:8]


def connection_labels(rows: Iterable[Mapping[str, object]]) -> dict[str, str]:
    """connection_id -> what a person reads: the display name, with a short id beside a name
    other connections share, or the full id when the connection has no name."""
    named = [(str(r["connection_id"]), r.get("display_name")) for r in rows]
    seen = Counter(str(name).strip() for _, name in named if _has_text(name))
    labels: dict[str, str] = {}
    for connection_id, name in named:
        if not _has_text(name):
            labels[connection_id] = connection_id
            continue
        text = str(name).strip()
        labels[connection_id] = f"{text} · {short_id(connection_id)}" if seen[text] > 1 else text
    return labels


def _has_text(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def safe_link(url: object) -> str | None:
    """The URL when it is an absolute http(s) address a browser may follow, else None."""
    if not isinstance(url, str):
        return None
    text = url.strip()
    if not text or any(ch.isspace() or ord(ch) < 32 for ch in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    return text if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def link(url: object, text: str) -> str:
    """An <a> for a safe http(s) URL (escaped); other values are shown as escaped text only."""
    target = safe_link(url)
    if target is None:
        return esc(url) if isinstance(url, str) and url.strip() else MISSING
    return (
        f'<a href="{esc(target)}" rel="noopener noreferrer" target="_blank" class="kb">'
        f"{esc(text)}</a>"
    )
