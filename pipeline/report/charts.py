"""Inline SVG charts drawn in Python, so the report page needs no script, font or network.

Every string that reaches the markup goes through `esc`; labels come from API data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.report.format import esc, truncate

FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
AXIS = "#555"
GRID = "#e3e3e3"
BAR = "#c2410c"


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


def svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" font-size="13" style="max-width:{width}px;{FONT}" role="img" '
        f'aria-label="{esc(label)}">'
        f"<title>{esc(label)}</title>" + "".join(body) + "</svg>"
    )


def text(x: float, y: float, content: str, *, anchor: str = "start", extra: str = "") -> str:
    """An escaped SVG label; the font size is set once on the <svg>."""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="#222" {extra}>'
        f"{esc(content)}</text>"
    )


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    value_text: str


def bar_chart(bars: Sequence[Bar], *, title: str, x_label: str) -> str:
    """Horizontal bars, largest first as given; long labels are cut, with the full text on hover."""
    left, right, top, row = 210, 110, 28, 26
    width = 720
    plot = width - left - right
    height = top + row * len(bars) + 48
    axis_ticks = ticks(max((b.value for b in bars), default=1) or 1, integer=True)
    scale = plot / axis_ticks[-1]
    body = [text(0, 16, title, extra='font-weight="600" font-size="13"')]
    axis_y = top + row * len(bars)
    for t in axis_ticks:
        x = left + t * scale
        body.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="{GRID}"/>'
        )
        body.append(text(x, axis_y + 16, f"{t:,.0f}", anchor="middle"))
    for i, bar in enumerate(bars):
        y = top + i * row
        shown = truncate(bar.label, 28)  # characters that fit left of the bars
        body.append(
            f"<g><title>{esc(bar.label)}: {esc(bar.value_text)}</title>"
            + text(left - 8, y + 17, shown, anchor="end")
            + f'<rect x="{left}" y="{y + 4}" width="{max(bar.value * scale, 1):.1f}" '
            f'height="{row - 8}" fill="{BAR}" rx="2"/>'
            + text(left + bar.value * scale + 6, y + 17, bar.value_text)
            + "</g>"
        )
    body.append(
        f'<line x1="{left}" y1="{top - 4}" x2="{left}" y2="{axis_y}" stroke="{AXIS}"/>'
        f'<line x1="{left}" y1="{axis_y}" x2="{left + plot}" y2="{axis_y}" stroke="{AXIS}"/>'
    )
    body.append(text(left + plot / 2, axis_y + 36, x_label, anchor="middle"))
    return svg(width, height, title, body)
