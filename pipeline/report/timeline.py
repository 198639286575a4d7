"""A chart of values by UTC day: lines, an interval band, marker sizes by sample, marked days.

Markers shrink and turn grey where a day rests on few tasks, and values above the chart's
top (chosen by the caller from the days worth reading) are pinned to the top as open
markers, so one tiny day cannot flatten every other day into the floor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from pipeline.report.charts import AXIS, GRID, svg, text, ticks
from pipeline.report.format import esc

FAINT = "#9ca3af"
MARK = "#dc2626"


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: Sequence[float | None]
    hover: Sequence[str]
    dashed: bool = False
    markers: bool = True
    weights: Sequence[float] | None = None
    """0..1 per day: marker size (e.g. the day's share of the largest sample)."""
    faint: Sequence[bool] | None = None
    """Days drawn grey (a small sample)."""


@dataclass(frozen=True)
class Band:
    name: str
    color: str
    low: Sequence[float | None]
    high: Sequence[float | None]
    faint: Sequence[bool] | None = None
    """Days drawn as a thin grey whisker instead of joining the band (a small sample)."""


@dataclass(frozen=True)
class Frame:
    """Where a day and a value land in the SVG."""

    first: date
    span: int
    left: float
    top: float
    width: float
    height: float
    y_top: float

    def x(self, day: date) -> float:
        if self.span == 0:
            return self.left + self.width / 2
        return self.left + (day - self.first).days / self.span * self.width

    def y(self, value: float) -> float:
        return self.top + self.height - min(value, self.y_top) / self.y_top * self.height


def _date_ticks(first: date, last: date, max_ticks: int = 7) -> list[date]:
    span = (last - first).days
    step = next((s for s in (1, 2, 3, 7, 14, 30, 61, 91, 182) if span / s <= max_ticks), 365)
    return [first + timedelta(days=d) for d in range(0, span + 1, step)]


def _runs(points: Sequence[tuple[float, ...] | None]) -> list[list[tuple[float, ...]]]:
    # A day without a value breaks the line (and the band) instead of dropping to 0.
    runs: list[list[tuple[float, ...]]] = [[]]
    for point in points:
        if point is None:
            runs.append([])
        else:
            runs[-1].append(point)
    return [r for r in runs if r]


def _axes(
    f: Frame, days: Sequence[date], y_format: Callable[[float], str], y_label: str
) -> list[str]:
    body: list[str] = []
    bottom = f.top + f.height
    for t in ticks(f.y_top):
        y = f.y(t)
        body.append(
            f'<line x1="{f.left}" y1="{y:.1f}" x2="{f.left + f.width}" y2="{y:.1f}" '
            f'stroke="{GRID}"/>' + text(f.left - 6, y + 4, y_format(t), anchor="end")
        )
    first, last = days[0], days[-1]
    pattern = "%d %b %Y" if first.year != last.year else "%d %b"
    for day in _date_ticks(first, last):
        x = f.x(day)
        body.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}" stroke="{AXIS}"/>'
            + text(x, bottom + 19, day.strftime(pattern), anchor="middle")
        )
    mid = f.top + f.height / 2
    body.append(
        f'<line x1="{f.left}" y1="{f.top}" x2="{f.left}" y2="{bottom}" stroke="{AXIS}"/>'
        f'<line x1="{f.left}" y1="{bottom}" x2="{f.left + f.width}" y2="{bottom}" '
        f'stroke="{AXIS}"/>'
        + text(f.left + f.width / 2, bottom + 40, "day (UTC)", anchor="middle")
        + text(14, mid, y_label, anchor="middle", extra=f'transform="rotate(-90 14 {mid:.1f})"')
    )
    return body


def _band(f: Frame, days: Sequence[date], band: Band) -> list[str]:
    faint = band.faint or [False] * len(days)
    points = [
        None if lo is None or hi is None or thin else (f.x(d), f.y(lo), f.y(hi))
        for d, lo, hi, thin in zip(days, band.low, band.high, faint, strict=True)
    ]
    shapes = [
        f'<line x1="{f.x(d):.1f}" y1="{f.y(lo):.1f}" x2="{f.x(d):.1f}" y2="{f.y(hi):.1f}" '
        f'stroke="{FAINT}" stroke-width="1.5"/>'
        for d, lo, hi, thin in zip(days, band.low, band.high, faint, strict=True)
        if thin and lo is not None and hi is not None
    ]
    for run in _runs(points):
        if len(run) == 1:  # a lone day: a short vertical bar
            x, y_low, y_high = run[0]
            run = [(x - 3, y_low, y_high), (x + 3, y_low, y_high)]
        outline = [f"{x:.1f},{hi:.1f}" for x, _, hi in run]
        outline += [f"{x:.1f},{lo:.1f}" for x, lo, _ in reversed(run)]
        shapes.append(
            f'<polygon points="{" ".join(outline)}" fill="{band.color}" fill-opacity="0.18" '
            'stroke="none"/>'
        )
    return shapes


def _series(f: Frame, days: Sequence[date], s: Series) -> list[str]:
    points = [None if v is None else (f.x(d), f.y(v)) for d, v in zip(days, s.values, strict=True)]
    faint = s.faint or [False] * len(days)
    # The line joins only the days worth reading; a small-sample day stands alone, grey.
    joined = [None if thin else point for point, thin in zip(points, faint, strict=True)]
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    marks = [
        f'<polyline fill="none" stroke="{s.color}" stroke-width="2"{dash} points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
        + '"/>'
        for run in _runs(joined)
        if len(run) > 1
    ]
    if not s.markers:
        return marks
    for i, (point, raw, hover) in enumerate(zip(points, s.values, s.hover, strict=True)):
        if point is None or raw is None:
            continue
        weight = s.weights[i] if s.weights else 1.0
        radius = 5.0 if len(days) == 1 else 1.5 + 3.0 * max(0.0, min(weight, 1.0)) ** 0.5
        color = FAINT if faint[i] else s.color
        # Off the top: an open marker pinned to the top edge; the hover gives the value.
        fill = "#fff" if raw > f.y_top else color
        marks.append(
            f'<circle cx="{point[0]:.1f}" cy="{point[1]:.1f}" r="{radius:.1f}" fill="{fill}" '
            f'stroke="{color}" stroke-width="1.5"><title>{esc(hover)}</title></circle>'
        )
    return marks


def _marked(f: Frame, marked: Sequence[tuple[date, str]]) -> list[str]:
    width = max(f.width / max(f.span, 1) * 0.8, 4)
    out = []
    for day, hover in marked:
        x = f.x(day)
        out.append(
            f"<g><title>{esc(hover)}</title>"
            f'<rect x="{x - width / 2:.1f}" y="{f.top}" width="{width:.1f}" height="{f.height}" '
            f'fill="{MARK}" fill-opacity="0.10"/>'
            f'<path d="M{x - 6:.1f},{f.top - 12} L{x + 6:.1f},{f.top - 12} L{x:.1f},{f.top - 2} Z" '
            f'fill="{MARK}"/></g>'
        )
    return out


def _legend(
    series: Sequence[Series], bands: Sequence[Band], mark: str | None, y: float
) -> list[str]:
    items: list[tuple[str, str]] = []
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        items.append(
            (
                f'<line x1="0" y1="-4" x2="22" y2="-4" stroke="{s.color}" '
                f'stroke-width="2.5"{dash}/>',
                s.name,
            )
        )
    for b in bands:
        items.append(
            (
                f'<rect x="0" y="-10" width="22" height="12" fill="{b.color}" '
                'fill-opacity="0.25"/>',
                b.name,
            )
        )
    if mark:
        items.append((f'<path d="M5,-12 L17,-12 L11,-2 Z" fill="{MARK}"/>', mark))
    out, x = [], 70.0
    for swatch, name in items:
        out.append(f'<g transform="translate({x:.0f},{y:.0f})">{swatch}{text(28, 0, name)}</g>')
        x += 40 + 7.2 * len(name)
    return out


def day_chart(
    days: Sequence[date],
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    y_format: Callable[[float], str],
    y_top: float,
    bands: Sequence[Band] = (),
    marked: Sequence[tuple[date, str]] = (),
    mark_name: str | None = None,
) -> str:
    """Values by day, oldest left; `marked` days get a shaded column and a triangle."""
    width, height, left, top = 720, 330, 64, 52
    top_tick = ticks(y_top if y_top > 0 else 0.1)[-1]
    frame = Frame(
        days[0],
        (days[-1] - days[0]).days,
        left,
        top,
        width - left - 16,
        height - top - 58,
        top_tick,
    )
    body = _axes(frame, days, y_format, y_label)
    body += _marked(frame, marked)
    for band in bands:
        body += _band(frame, days, band)
    for s in series:
        body += _series(frame, days, s)
    body += _legend(series, bands, mark_name if marked else None, 18)
    return svg(width, height, title, body)
