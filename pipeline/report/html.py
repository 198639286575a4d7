"""The self-contained `report.html`: headline figures, what changed, who can fix it, where.

Reads the built models; a model an older warehouse lacks leaves its section out. The page
has inline CSS and inline SVG only, so it opens with no network; every value from the data
is escaped, and the only outside links are catalogue knowledge-base articles (http/https).
Also `top_failure_causes`, the summary the CLI prints.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import duckdb

from pipeline.report.causes import dimension_section, fixability_section
from pipeline.report.data import Row, rows_of
from pipeline.report.durations import duration_section
from pipeline.report.format import count, esc, percent
from pipeline.report.places import connections_section, imodel_section, itwin_section
from pipeline.report.trend import daily_section, verdict, what_changed_section
from pipeline.warehouse.builds import ABSENT, versions_digest
from pipeline.warehouse.export import write_if_changed
from pipeline.warehouse.models import list_models, model_versions

PAGE_TITLE = "iTwin export runs: why exports fail"


class FailureCause(NamedTuple):
    error_code: str
    phase: str
    system: str
    failed_tasks: int
    share: float


def top_failure_causes(con: duckdb.DuckDBPyConnection, n: int = 5) -> list[FailureCause]:
    """The n most frequent (error code, phase, system) among failed tasks, with their share."""
    rows = con.execute(
        """
        with causes as (
            select error_code, phase, system, sum(failed_tasks) as failed_tasks
            from int_daily_failure_cause
            group by error_code, phase, system
        )
        select
            error_code,
            phase,
            system,
            cast(failed_tasks as bigint) as failed_tasks,
            cast(failed_tasks as double) / sum(failed_tasks) over () as share
        from causes
        order by failed_tasks desc, error_code, phase, system
        limit ?
        """,
        [n],
    ).fetchall()
    return [FailureCause(*row) for row in rows]


# ---------------------------------------------------------------- headline


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> Row:
    try:
        found = rows_of(con, sql)
    except duckdb.CatalogException:  # an older or partial warehouse: figures show "–"
        return {}
    return found[0] if found else {}


def _headline(con: duckdb.DuckDBPyConnection) -> Row:
    # Core tables for the totals, failure_daily for completed and failed: marts and the
    # contract's tables only, so the page does not depend on staging's shape.
    totals = _one(
        con, "select (select count(*) from runs) as runs, (select count(*) from tasks) as tasks"
    )
    daily = _one(
        con,
        "select sum(completed_runs) as completed_runs, sum(failed_runs) as failed_runs, "
        "sum(completed_tasks) as completed_tasks, sum(failed_tasks) as failed_tasks, "
        "min(day) as first_day, max(day) as last_day from failure_daily",
    )
    connections = _one(con, "select count(*) as connections from failure_rate_by_connection")
    return {
        k: int(v) if isinstance(v, Decimal) else v
        for k, v in (totals | daily | connections).items()
    }


def _figure(label: str, value: str, note: str = "", css: str = "figure") -> str:
    note_html = f'<div class="note">{esc(note)}</div>' if note else ""
    return (
        f'<div class="{css}"><div class="label">{esc(label)}</div>'
        f'<div class="value">{esc(value)}</div>{note_html}</div>'
    )


def _rate_of(part: object, whole: object) -> float | None:
    return part / whole if isinstance(part, int) and isinstance(whole, int) and whole else None


def _headline_section(h: Row) -> str:
    first, last = h.get("first_day"), h.get("last_day")
    span = f"{first:%Y-%m-%d} → {last:%Y-%m-%d}" if first and last else "no runs yet"
    tasks = h.get("tasks")
    figures = [
        _figure("runs", count(h.get("runs"))),
        _figure("completed runs", count(h.get("completed_runs"))),
        _figure("failed runs", count(h.get("failed_runs")), "Error or TimedOut"),
        _figure(
            "run failure rate", percent(_rate_of(h.get("failed_runs"), h.get("completed_runs")))
        ),
        _figure("completed tasks", count(h.get("completed_tasks")), f"of {count(tasks)} tasks"),
        _figure("failed tasks", count(h.get("failed_tasks"))),
        _figure(
            "task failure rate", percent(_rate_of(h.get("failed_tasks"), h.get("completed_tasks")))
        ),
        _figure("connections", count(h.get("connections"))),
        _figure("run start dates (UTC)", span, css="figure wide"),
    ]
    return '<section class="figures">' + "".join(figures) + "</section>"


# ---------------------------------------------------------------- page

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2937;
margin:24px auto;max-width:1200px;padding:0 16px;line-height:1.4}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #ddd;
padding-bottom:4px}h3{font-size:15px;margin:18px 0 4px}
.meta{color:#666;font-size:13px;margin:0 0 12px}
nav{font-size:13px;margin:0 0 12px}nav a{margin-right:10px;white-space:nowrap}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:10px}
.figure{background:#f6f7f9;border:1px solid #e5e7eb;border-radius:6px;padding:10px 12px}
.figure .label{font-size:12px;color:#555;text-transform:uppercase;letter-spacing:.03em}
.figure .value{font-size:22px;font-weight:600;margin-top:2px}
.figure.wide{grid-column:span 2}.figure.wide .value{font-size:18px}
a.kb{white-space:nowrap}
.verdict{padding:8px 12px;border-radius:6px;background:#ecfdf5;border:1px solid #a7f3d0}
.verdict.worse{background:#fef2f2;border-color:#fecaca}
.note{font-size:12px;color:#666}.empty{color:#666;font-style:italic}.muted{color:#666;font-weight:400}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:8px}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#f6f7f9;font-weight:600}tbody tr:nth-child(even){background:#fafafa}
.num,.rate{text-align:right;font-variant-numeric:tabular-nums}td.rate{white-space:nowrap}
.when{font-variant-numeric:tabular-nums}td.when{white-space:nowrap}.text{overflow-wrap:break-word}
td.wide{min-width:16em}td.id{white-space:nowrap;font-size:12px}
tr.small td{color:#9ca3af}tr.group th{background:#eef2ff;font-weight:600;text-align:left}
td.trend{white-space:nowrap}td.spike{color:#dc2626;font-weight:600}tr.small td.spike{color:#dc2626}
.chart{margin:8px 0;overflow-x:auto}.chart svg{min-width:560px}
th.span{text-align:center;border-bottom:2px solid #d1d5db}
@media (max-width:700px){body{padding:0 10px}
/* rtl: a chart wider than a phone opens scrolled to its newest days */
.chart.days{direction:rtl}.chart.days svg{direction:ltr}
.scroll td:first-child,.scroll thead tr:last-child th:first-child{position:sticky;left:0;
z-index:1;background:#fff}
.scroll tbody tr:nth-child(even) td:first-child{background:#fafafa}
.scroll thead tr:last-child th:first-child{background:#f6f7f9}}
details{margin-top:8px}summary{cursor:pointer;font-size:13px}
code{font-size:12px;background:#f3f4f6;padding:0 3px;border-radius:3px}
"""

NAV = (
    ("changed", "What changed"),
    ("daily", "Daily rate"),
    ("fix", "Who can fix it"),
    ("itwins", "iTwins"),
    ("imodels", "iModels"),
    ("connections", "Connections"),
    ("durations", "Durations"),
)


def _nav(sections: list[str]) -> str:
    page = "".join(sections)
    links = [f'<a href="#{key}">{esc(name)}</a>' for key, name in NAV if f'id="{key}"' in page]
    return f"<nav>{' '.join(links)}</nav>" if links else ""


def render_html(con: duckdb.DuckDBPyConnection, *, generated_at: datetime) -> str:
    """The whole page as a string."""
    sections = [
        what_changed_section(con),
        daily_section(con),
        fixability_section(con),
        dimension_section(con, "error_code", "error code"),
        dimension_section(con, "phase", "phase"),
        dimension_section(con, "system", "system"),
        itwin_section(con),
        imodel_section(con),
        connections_section(con),
        duration_section(con),
    ]
    stamp = generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(PAGE_TITLE)}</title><style>{CSS}</style></head><body>"
        f'<h1>{esc(PAGE_TITLE)}</h1><p class="meta">Generated {esc(stamp)}. A failed task or run '
        "is a completed one whose result is Error or TimedOut.</p>"
        + _nav(sections)
        + _headline_section(_headline(con))
        + verdict(con)
        + "".join(sections)
        + "</body></html>\n"
    )


def write_html_report(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    force: bool = False,
    generated_at: datetime | None = None,
) -> bool:
    """Write the page to `path` atomically unless it was written from the versions the
    tables it reads hold now (`force` rewrites it); returns whether it was written.

    Temp files a killed earlier write left beside `path` are removed first (see
    write_if_changed).
    """
    # The page reads tables only (marts and the day-grain causes): their versions say
    # whether it would change.
    tables = [m.name for m in list_models() if m.materialization == "table"]
    versions = model_versions(con)
    held = [f"{name}={versions[name]}" for name in tables]
    force = force or any(versions[name] == ABSENT for name in tables)

    def write(temp: Path) -> None:
        page = render_html(con, generated_at=generated_at or datetime.now(UTC))
        temp.write_bytes(page.encode("utf-8"))

    return write_if_changed(con, path, versions_digest(held), write, force=force)
