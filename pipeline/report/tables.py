"""HTML tables of model rows (typed columns, rates with intervals, small samples greyed)
and the sections that hold them.

Every cell is escaped here unless its column renders markup itself (`markup=True`), in
which case that column's function is responsible for escaping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.report.format import MISSING, count, esc, format_rate, truncate

Row = dict[str, Any]

SMALL_SAMPLE = 20
"""Rows with fewer completed tasks than this are greyed: their rates are mostly noise."""


@dataclass(frozen=True)
class Column:
    header: str
    render: Callable[[Row], str]
    css: str = "num"
    """num (right-aligned figures), when (kept on one line), rate, or text."""
    limit: int = 60
    """Longer text is cut (full text on hover) so one long identifier cannot widen the table."""
    markup: bool = False
    """render returns escaped HTML (e.g. a link) instead of text."""
    hover: Callable[[Row], str] | None = None
    """Text shown on hover, e.g. the full id behind a display name."""


def value(key: str, fmt: Callable[[object], str] = str) -> Callable[[Row], str]:
    def render(row: Row) -> str:
        item = row.get(key)
        return MISSING if item is None else fmt(item)

    return render


def rate(prefix: str) -> Callable[[Row], str]:
    """The column `prefix` with its `_low` / `_high` companions, e.g. "18% (8–34%)"."""
    return lambda row: format_rate(
        row.get(prefix), row.get(f"{prefix}_low"), row.get(f"{prefix}_high")
    )


def counted(header: str, key: str) -> Column:
    return Column(header, value(key, count))


def rated(header: str, prefix: str) -> Column:
    return Column(header, rate(prefix), css="rate")


def _cell(row: Row, column: Column) -> str:
    text = column.render(row)
    hover = column.hover(row) if column.hover else None
    if column.markup:
        title = f' title="{esc(hover)}"' if hover else ""
        return f'<td class="{column.css}"{title}>{text}</td>'
    shown = truncate(text, column.limit)
    hover = hover or (text if shown != text else None)
    title = f' title="{esc(hover)}"' if hover else ""
    return f'<td class="{column.css}"{title}>{esc(shown)}</td>'


def is_small(row: Row, key: str = "completed_tasks") -> bool:
    n = row.get(key)
    return isinstance(n, int) and n < SMALL_SAMPLE


def table(
    rows: Sequence[Row],
    columns: Sequence[Column],
    empty: str,
    *,
    small: Callable[[Row], bool] = lambda row: False,
    group: Callable[[Row], str | None] | None = None,
    spans: Sequence[tuple[str, int]] = (),
) -> str:
    """A table that scrolls sideways inside its section on a narrow screen.

    `small` greys a row; `group` returns a heading (escaped markup) that opens a new group of
    rows whenever it changes; `spans` (text, columns) is a header row above the column
    headers, so those can stay short.
    """
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f'<th class="{c.css}">{esc(c.header)}</th>' for c in columns)
    if spans:
        above = "".join(
            f'<th class="span" colspan="{n}">{esc(text)}</th>'
            if text
            else f'<th colspan="{n}"></th>'
            for text, n in spans
        )
        head = f"{above}</tr><tr>{head}"
    body: list[str] = []
    current: str | None = None
    for row in rows:
        heading = group(row) if group else None
        if heading is not None and heading != current:
            body.append(f'<tr class="group"><th colspan="{len(columns)}">{heading}</th></tr>')
            current = heading
        css = ' class="small"' if small(row) else ""
        body.append(f"<tr{css}>" + "".join(_cell(row, c) for c in columns) + "</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def section(heading: str, body: str, note: str = "", anchor: str = "") -> str:
    """A titled <section>; `body` and `note` are markup the caller has escaped."""
    ident = f' id="{esc(anchor)}"' if anchor else ""
    note_html = f'<p class="note">{note}</p>' if note else ""
    return f"<section{ident}><h2>{esc(heading)}</h2>{body}{note_html}</section>"


SMALL_NOTE = (
    f"Greyed rows have fewer than {SMALL_SAMPLE} completed tasks: their rates rest on too "
    "few tasks to compare. Rates show the 95% Wilson interval in brackets."
)
