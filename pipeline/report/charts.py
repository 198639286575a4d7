"""Inline SVG charts drawn in Python, so the report page needs no script, font or network.

Every string that reaches the markup goes through `esc`; labels come from API data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
AXIS = "#555"
GRID = "#e3e3e3"
BAR = "#c2410c"


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def nice_step(top: float, target_ticks: int = 5, *, integer: bool = False) -> float:
    """A 1-2-2.5-5 step giving about `target_ticks` ticks from 0 to `top`."""
    if top <= 0:
        return 1.0
    raw = top / target_ticks
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        step = multiple * magnitude
        if step >= raw and (not integer or step == int(step)):
            return step
    return 10 * magnitude


def ticks(top: float, *, integer: bool = False) -> list[float]:
    step = max(nice_step(top, integer=integer), 1.0) if integer else nice_step(top)
    count = max(1, math.ceil(top / step - 1e-9))
    return [i * step for i in range(count + 1)]


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px;{FONT}" role="img" aria-label="{esc(label)}">'
        f"<title>{esc(label)}</title>" + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="12" '
        f'fill="#222" {extra}>{esc(text)}</text>'
    )


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    value_text: str


def bar_chart(bars: Sequence[Bar], *, title: str, x_label: str, label_chars: int = 28) -> str:
    """Horizontal bars, largest first as given; long labels are cut, with the full text on hover."""
    left, right, top, row = 210, 110, 28, 26
    width = 720
    plot = width - left - right
    height = top + row * len(bars) + 48
    axis_ticks = ticks(max((b.value for b in bars), default=1) or 1, integer=True)
    scale = plot / axis_ticks[-1]
    body = [_text(0, 16, title, extra='font-weight="600" font-size="13"')]
    axis_y = top + row * len(bars)
    for t in axis_ticks:
        x = left + t * scale
        body.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="{GRID}"/>'
        )
        body.append(_text(x, axis_y + 16, f"{t:,.0f}", anchor="middle"))
    for i, bar in enumerate(bars):
        y = top + i * row
        shown = truncate(bar.label, label_chars)
        body.append(
            f"<g><title>{esc(bar.label)}: {esc(bar.value_text)}</title>"
            + _text(left - 8, y + 17, shown, anchor="end")
            + f'<rect x="{left}" y="{y + 4}" width="{max(bar.value * scale, 1):.1f}" '
            f'height="{row - 8}" fill="{BAR}" rx="2"/>'
            + _text(left + bar.value * scale + 6, y + 17, bar.value_text)
            + "</g>"
        )
    body.append(
        f'<line x1="{left}" y1="{top - 4}" x2="{left}" y2="{axis_y}" stroke="{AXIS}"/>'
        f'<line x1="{left}" y1="{axis_y}" x2="{left + plot}" y2="{axis_y}" stroke="{AXIS}"/>'
    )
    body.append(_text(left + plot / 2, axis_y + 36, x_label, anchor="middle"))
    return _svg(width, height, title, body)


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: Sequence[float | None]
    hover: Sequence[str]


def _date_ticks(first: date, last: date, max_ticks: int = 8) -> list[date]:
    span = (last - first).days
    step = next((s for s in (1, 2, 3, 7, 14, 30, 61, 91, 182) if span / s <= max_ticks), 365)
    return [first + timedelta(days=d) for d in range(0, span + 1, step)]


def _date_label(day: date, first: date, last: date) -> str:
    return day.strftime("%d %b %Y" if first.year != last.year else "%d %b")


def _segments(points: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    # A day with no completed runs has no rate: the line breaks there instead of dropping to 0.
    segments: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            segments.append([])
        else:
            segments[-1].append(point)
    return [s for s in segments if s]


def line_chart(days: Sequence[date], series: Sequence[Series], *, title: str, y_label: str) -> str:
    """Rates by day on a dated x axis and a percentage y axis, one line per series."""
    width, height = 1000, 320
    left, right, top, bottom = 70, 20, 40, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    first, last = days[0], days[-1]
    span = max((last - first).days, 1)
    values = [v for s in series for v in s.values if v is not None]
    y_ticks = ticks(max(values, default=0) or 0.1)
    y_top = y_ticks[-1]

    def x_of(day: date) -> float:
        if first == last:
            return left + plot_w / 2
        return left + (day - first).days / span * plot_w

    def y_of(value: float) -> float:
        return top + plot_h - value / y_top * plot_h

    # No visible title: the page's section heading names the chart; the legend takes the row.
    body: list[str] = []
    for t in y_ticks:
        y = y_of(t)
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        digits = 0 if round(t * 100, 6).is_integer() else 1
        body.append(_text(left - 6, y + 4, percent(t, digits), anchor="end"))
    for day in _date_ticks(first, last):
        x = x_of(day)
        body.append(
            f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 5}" '
            f'stroke="{AXIS}"/>'
        )
        body.append(_text(x, top + plot_h + 18, _date_label(day, first, last), anchor="middle"))
    body.append(
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="{AXIS}"/>'
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="{AXIS}"/>'
    )
    body.append(_text(left + plot_w / 2, height - 8, "day (UTC)", anchor="middle"))
    body.append(
        _text(
            16,
            top + plot_h / 2,
            y_label,
            anchor="middle",
            extra=f'transform="rotate(-90 16 {top + plot_h / 2:.1f})"',
        )
    )
    for i, s in enumerate(series):
        body.extend(_series_marks(s, days, x_of, y_of))
        lx = left + 10 + i * 230
        body.append(
            f'<line x1="{lx}" y1="{top - 14}" x2="{lx + 22}" y2="{top - 14}" '
            f'stroke="{s.color}" stroke-width="2.5"/>' + _text(lx + 28, top - 10, s.name)
        )
    return _svg(width, height, title, body)


def _series_marks(
    s: Series,
    days: Sequence[date],
    x_of: Callable[[date], float],
    y_of: Callable[[float], float],
) -> list[str]:
    points = [
        None if v is None else (x_of(d), y_of(v)) for d, v in zip(days, s.values, strict=True)
    ]
    marks = [
        f'<polyline fill="none" stroke="{s.color}" stroke-width="2" points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
        + '"/>'
        for segment in _segments(points)
        if len(segment) > 1
    ]
    # Lone points (a single day, or a day between gaps) get bigger markers to stay visible.
    radius = 5 if len(points) == 1 else 3
    for point, hover in zip(points, s.hover, strict=True):
        if point is not None:
            marks.append(
                f'<circle cx="{point[0]:.1f}" cy="{point[1]:.1f}" r="{radius}" fill="{s.color}">'
                f"<title>{esc(hover)}</title></circle>"
            )
    return marks
